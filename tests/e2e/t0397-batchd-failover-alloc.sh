#!/usr/bin/env bash
# timeout: 240
# phx alloc waits through a failover of batchd (doc/jobs.md, "Interactive
# allocations"): its job pending (the node held by another job), the
# leading batchd is killed -9; while no batchd leads (a session of this
# test holds the batchd lock for a few seconds, so the gap is certain) the
# standby answers 503 naming the dead leader and the leader refuses
# connections.  phx alloc used to take that as batchd gone, cancel the job
# and give up; now it says so once and goes on waiting.  The holder is
# released, the standby leads, starts the allocation, and phx alloc's
# command runs (srun in it too) and the job completes.  `phx run` outside
# a job (its own allocation, pending likewise) waits through it too.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA=$'    standby_poll = 0.5;\n    leader_lease = 2;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
A=127.0.0.1:$PHX_BATCHD_PORT B=127.0.0.1:$(free_port)
LOCK_KEY=31640063647511652 # daemons/batchd/leader.c

health() { # ADDR: "CODE BODY" of GET /health
    curl -s -o "$PHX_TEST_DIR/health" -w '%{http_code}' "http://$1/health" || true
    echo " $(cat "$PHX_TEST_DIR/health" 2>/dev/null)"
}
subscribed() { [[ $(health "$1") == 200*'"subscribed":true'* ]]; }
stands_by() { [[ $(health "$1") == 503*'"standby":true'* ]]; }
lock_waiter() { # the test's session waits for the batchd lock
    [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                 AND query LIKE '%pg_advisory_lock($LOCK_KEY)%'") == 1 ]]
}

start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_daemon batchd phx-batchd -c "$PHX_CONFIG"
wait_for 30 subscribed "$A"
start_daemon batchd-b phx-batchd -c "$PHX_CONFIG" -s "batchd.http_listen=$B"
wait_for 30 stands_by "$B"
export PHX_BATCHD="$A,$B"

home=$(getent passwd phxu1 | cut -d: -f6)
rm -f "$home"/.phx-alloc-*.out "$home"/.phx-run-*.out "$home/release"
printf '#!/bin/sh\n#SBATCH -t 2\n#SBATCH -n 2\nwhile [ ! -e release ]; do sleep 0.2; done\necho released\n' \
    >"$home/hold.sh"
chown phxu1 "$home/hold.sh"
holder=$(as_user phxu1 phx submit --parsable hold.sh)
wait_job "$holder" RUNNING 30

# phx alloc for the same two cores: pending behind the holder.
as_user phxu1 "phx alloc -n 2 -t 2 sh -c 'echo alloc-ran \$PHX_JOB_ID; srun -n1 echo via-srun'" \
    >"$PHX_TEST_DIR/a.out" 2>"$PHX_TEST_DIR/a.err" &
apid=$!
wait_for 30 grep -q 'Pending job allocation' "$PHX_TEST_DIR/a.err"
id=$(sed -n 's/^.*Pending job allocation \([0-9]*\)$/\1/p' "$PHX_TEST_DIR/a.err")
# phx run outside a job: its own job, pending behind both.
as_user phxu1 "phx run -n 2 echo run-ran" >"$PHX_TEST_DIR/r.out" 2>"$PHX_TEST_DIR/r.err" &
rpid=$!
wait_for 30 grep -q 'holds the allocation of this step' "$PHX_TEST_DIR/r.err"
rid=$(sed -n 's/^phx run: job \([0-9]*\) holds.*$/\1/p' "$PHX_TEST_DIR/r.err")
sleep 1
assert_eq PENDING "$(job_field "$id" state)"
assert_eq PENDING "$(job_field "$rid" state)"

# The lock taken by this test as soon as the leader lets it go, held 5 s.
psql_q "SELECT pg_advisory_lock($LOCK_KEY); SELECT pg_sleep(5)" >/dev/null &
locker=$!
wait_for 10 lock_waiter
stop_daemon batchd KILL || true
touch "$home/release"
chown phxu1 "$home/release"
sleep 2
assert_contains "$(health "$B")" "\"leader\":\"$A\"" "the standby still names the dead leader"
wait "$locker"
wait_for 30 subscribed "$B"
note "B leads"

rc=0
wait "$apid" || rc=$?
note "$(cat "$PHX_TEST_DIR/a.err")"
note "$(cat "$PHX_TEST_DIR/a.out")"
assert_eq 0 "$rc" "phx alloc's exit code: $(cat "$PHX_TEST_DIR/a.err")"
err=$(cat "$PHX_TEST_DIR/a.err")
assert_contains "$err" "phx alloc: no batchd answers (a failover?): still waiting for job $id"
assert_contains "$err" "phx alloc: Granted job allocation $id"
assert_not_contains "$err" "revoked"
assert_contains "$(cat "$PHX_TEST_DIR/a.out")" "alloc-ran $id"
assert_contains "$(cat "$PHX_TEST_DIR/a.out")" "via-srun"
wait_job "$id" COMPLETED 30
rc=0
wait "$rpid" || rc=$?
note "$(cat "$PHX_TEST_DIR/r.err")"
assert_eq 0 "$rc" "phx run's exit code"
assert_contains "$(cat "$PHX_TEST_DIR/r.err")" "phx run: no batchd answers (a failover?): still waiting for job $rid"
assert_eq "run-ran
run-ran" "$(cat "$PHX_TEST_DIR/r.out")" "phx run's output"
wait_job "$rid" COMPLETED 30
assert_eq "" "$(ls -A "$home" | grep '^.phx-run-' || true)" "phx run's output file left"
wait_job "$holder" COMPLETED 30
assert_contains "$(cat "$home/phx-$holder.out")" "released"
assert_eq "" "$(ls -A "$home" | grep '^.phx-alloc-' || true)" "output files left"
note ok
