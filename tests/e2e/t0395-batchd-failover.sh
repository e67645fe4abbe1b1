#!/usr/bin/env bash
# timeout: 240
# phx-batchd high availability (doc/admin.md, "High availability"): two
# batchd on one database elect a leader with an advisory lock of their own
# (batchd_leader, epoch 1); the other stands by and answers every request
# with 503 naming the leader; phx configured with both follows the refusal
# and skips a batchd that refuses connections.  kill -9 of the leader with
# a job running and two queued: the standby leads within seconds (epoch 2),
# resumes the same framework at the master, adopts the running job (not
# killed, completes) and runs the queued ones.  The old leader started
# again stands by.  A leader that hangs (SIGSTOP) loses the lock after
# batchd.leader_lease; continued, it exits without writing.  A leader
# whose write the epoch fence refuses (PXL02) exits before answering.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA=$'    standby_poll = 0.5;\n    leader_lease = 2;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
A=127.0.0.1:$PHX_BATCHD_PORT B=127.0.0.1:$(free_port)

health() { # ADDR: "CODE BODY" of GET /health
    curl -s -o "$PHX_TEST_DIR/health" -w '%{http_code}' "http://$1/health" || true
    echo " $(cat "$PHX_TEST_DIR/health" 2>/dev/null)"
}
subscribed() { [[ $(health "$1") == 200*'"subscribed":true'* ]]; }
stands_by() { [[ $(health "$1") == 503*'"standby":true'* ]]; }
gone() { ! alive "$1"; }
start_a() { start_daemon batchd phx-batchd -c "$PHX_CONFIG"; }
start_b() { start_daemon batchd-b phx-batchd -c "$PHX_CONFIG" -s "batchd.http_listen=$B"; }
leader_row() { psql_q "SELECT epoch, http_address FROM batchd_leader" | tr '|' ' '; }

start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up

# A leads, B stands by and names A.
start_a
wait_for 30 subscribed "$A"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "elected leader with epoch 1 (users on $A)"
start_b
wait_for 30 stands_by "$B"
assert_contains "$(health "$B")" "\"leader\":\"$A\""
assert_contains "$(cat "$PHX_TEST_DIR/batchd-b.log")" "standing by: the leader (epoch 1) has users on $A"
assert_eq "1 $A" "$(leader_row)"
# phx at the standby alone: refused, naming the leader
expect_fail env PHX_BATCHD="$B" phx queue
assert_contains "$PHX_OUT" "standby: this batchd is not the leader; the leader is at $A"
# the standby first: its refusal is followed to the leader
PHX_BATCHD="$B,$A" phx queue >/dev/null
export PHX_BATCHD="$A,$B"

home=$(getent passwd phxu1 | cut -d: -f6)
printf '#!/bin/sh\n#SBATCH -t 2\n#SBATCH -n 2\necho start $$\nsleep 12\necho survived\n' >"$home/long.sh"
printf '#!/bin/sh\n#SBATCH -t 1\necho queued ran\n' >"$home/short.sh"
chown phxu1 "$home/long.sh" "$home/short.sh"
id=$(as_user phxu1 phx submit --parsable long.sh)
wait_job "$id" RUNNING 30
wait_for 10 test -s "$home/phx-$id.out"
q1=$(as_user phxu1 phx submit --parsable short.sh)
q2=$(as_user phxu1 phx submit --parsable short.sh)
sleep 1
assert_eq PENDING "$(job_field "$q1" state)"
fw=$(psql_q "SELECT id FROM frameworks WHERE name = 'phx-batchd'")

# kill -9 of the leader: B leads within seconds, with epoch 2, and resumes
# the framework.
t0=$SECONDS
stop_daemon batchd KILL || true
wait_for 10 subscribed "$B"
note "B leads and is subscribed $((SECONDS - t0)) s after the leader was killed"
assert_contains "$(cat "$PHX_TEST_DIR/batchd-b.log")" "elected leader with epoch 2 (users on $B)"
assert_contains "$(cat "$PHX_TEST_DIR/batchd-b.log")" "resuming framework $fw"
assert_eq "2 $B" "$(leader_row)"
assert_eq "$fw" "$(psql_q "SELECT id FROM frameworks WHERE name = 'phx-batchd'")"
# phx with A first: A refuses connections, B answers
assert_contains "$(phx queue)" "$id"
assert_eq RUNNING "$(job_field "$id" state)"
wait_job "$id" COMPLETED 60
assert_contains "$(cat "$home/phx-$id.out")" "survived"
assert_eq 1 "$(grep -c '^start ' "$home/phx-$id.out")"
wait_job "$q1" COMPLETED 60
wait_job "$q2" COMPLETED 60
assert_contains "$(cat "$home/phx-$q2.out")" "queued ran"

# A started again stands by, naming B.
start_a
wait_for 30 stands_by "$A"
assert_contains "$(health "$A")" "\"leader\":\"$B\""

# The fence: a write of an older epoch is refused (SQLSTATE PXL02).
expect_fail psql_q "SELECT phx_batchd_fence(1)"
assert_contains "$PHX_OUT" "batchd epoch 1 is not the current one (2)"

# A leader that hangs: after the lease (2 s) its lock session ends and A
# leads; continued, B writes nothing (fenced) and exits; the job running
# meanwhile completes.
id4=$(as_user phxu1 phx submit --parsable long.sh)
wait_job "$id4" RUNNING 30
b=$(daemon_pid batchd-b)
kill -STOP "$b"
t0=$SECONDS
wait_for 15 subscribed "$A"
note "A leads $((SECONDS - t0)) s after the leader was stopped"
assert_eq "3 $A" "$(leader_row)"
id5=$(as_user phxu1 phx submit --parsable short.sh)
kill -CONT "$b"
wait_for 10 gone "$b"
assert_contains "$(cat "$PHX_TEST_DIR/batchd-b.log")" "no longer the leader: "
note "$(grep "no longer the leader" "$PHX_TEST_DIR/batchd-b.log" | tail -1)"
assert_eq "3 $A" "$(leader_row)"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "resuming framework $fw"
wait_job "$id4" COMPLETED 60
assert_contains "$(cat "$home/phx-$id4.out")" "survived"
wait_job "$id5" COMPLETED 60
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs WHERE state <> 'COMPLETED'")"

# A leader whose write the fence refuses (another epoch: as if another
# batchd had been elected) exits at once without answering; the job it
# was writing does not exist; B, started again, takes over.
start_b
wait_for 30 stands_by "$B"
njobs=$(psql_q "SELECT count(*) FROM jobs")
psql_q "UPDATE batchd_leader SET epoch = epoch + 1"
a=$(daemon_pid batchd)
PHX_BATCHD=$A expect_fail as_user phxu1 phx submit --parsable short.sh
wait_for 10 gone "$a"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "no longer the leader: "
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "(SQLSTATE PXL02)"
assert_eq "$njobs" "$(psql_q "SELECT count(*) FROM jobs")"
wait_for 15 subscribed "$B"
assert_eq "5 $B" "$(leader_row)"
id6=$(as_user phxu1 phx submit --parsable short.sh)
wait_job "$id6" COMPLETED 60
