#!/usr/bin/env bash
# timeout: 240
# A cancel of a running job survives a restart of phx-batchd (jobs.cancel_uid,
# migration 012), and changes are answered only once committed:
#  1. PostgreSQL is stopped (SIGSTOP) while a 2-node job whose script traps
#     SIGTERM and takes seconds to end is cancelled, another job requeued, a
#     held job released and another updated: none of phx cancel, requeue,
#     release and update returns until PostgreSQL runs again (SIGCONT).
#     batchd is SIGKILLed right after the answers, the job's
#     processes end meanwhile, and the restarted batchd ends the job
#     CANCELLED (not FAILED), the cancelling uid kept; the requeue is carried
#     out.
#  2. A 2-node job is cancelled while the master is down (the kill cannot be
#     sent), batchd is SIGKILLed, the master and batchd start again: batchd
#     sends the kill once subscribed, the job ends CANCELLED, its processes
#     on both nodes gone.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
# PostgreSQL is stopped for seconds below: a master whose lock session
# does not answer for half the lease (5 s by default) exits; on a loaded
# machine the stop can last that long
PHX_MASTER_EXTRA='leader_lease = 60;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
uid=$(id -u phxu1)
as() { as_user phxu1 "$@"; }
cat >"$home/slowterm.sh" <<'S'
#!/bin/bash
#SBATCH -N 2 -t 5 -o cr-%j.out
trap 'touch "$HOME/cr-term-$PHX_JOB_ID"; sleep 8; exit 143' TERM
echo $$ >"$HOME/cr-pid-$PHX_JOB_ID"
while :; do sleep 1; done
S
printf '#!/bin/sh\n#SBATCH -t 5 -o cr-%%j.out\nsleep 316\n' >"$home/one.sh"
printf '#!/bin/sh\n#SBATCH -N 2 -t 5 -o cr-%%j.out\nsleep 317\n' >"$home/two.sh"
chown phxu1 "$home/slowterm.sh" "$home/one.sh" "$home/two.sh"
rm -f "$home"/cr-*
has() { [[ -e $home/cr-$1 ]]; }
gone() { ! pgrep -u phxu1 -f "$1" >/dev/null; }
# (not curl | grep -q under !: curl killed by SIGPIPE would read as unsubscribed)
unsubscribed() { ! grep -q '"subscribed": *true' <<<"$(curl -sf "http://$PHX_BATCHD/health")"; }

# --- 1. answers wait for the commit; the cancel outlives batchd ---
a=$(as phx submit --parsable slowterm.sh)
c=$(as phx submit --parsable one.sh)
d=$(as phx submit --parsable -H one.sh)
e=$(as phx submit --parsable -H one.sh)
wait_job "$a" RUNNING 30
wait_job "$c" RUNNING 30
wait_for 10 has "pid-$a"
wait_for 10 pgrep -u phxu1 -f "sleep 2147483647"
pa=$(cat "$home/cr-pid-$a")
assert_eq "n[1-2]" "$(job_field "$a" node_list)"

pg=$(postgres_pid)
[[ -n $pg ]] || fail "no postgres"
pgs="$pg $(pgrep -P "$pg" | tr '\n' ' ')"
note "stopping PostgreSQL ($pgs)"
# shellcheck disable=SC2086
kill -STOP $pgs
as phx cancel "$a" >"$PHX_TEST_DIR/cancel.out" 2>&1 &
cancel_pid=$!
as phx requeue "$c" >"$PHX_TEST_DIR/requeue.out" 2>&1 &
requeue_pid=$!
as phx release "$d" >"$PHX_TEST_DIR/release.out" 2>&1 &
release_pid=$!
as phx update "$e" TimeLimit=3 >"$PHX_TEST_DIR/update.out" 2>&1 &
update_pid=$!
sleep 3
waiting=0
for p in $cancel_pid $requeue_pid $release_pid $update_pid; do
    kill -0 "$p" 2>/dev/null && waiting=$((waiting + 1))
done
# shellcheck disable=SC2086
kill -CONT $pgs
note "cancel: $(cat "$PHX_TEST_DIR/cancel.out")"
assert_eq 4 "$waiting" "cancel, requeue, release and update still waiting for the commit"
wait "$cancel_pid" || fail "phx cancel failed: $(cat "$PHX_TEST_DIR/cancel.out")"
# every answer in before batchd goes (on a loaded host a client may not
# even have connected when the cancel is answered)
wait "$requeue_pid" || fail "phx requeue failed: $(cat "$PHX_TEST_DIR/requeue.out")"
wait "$release_pid" || fail "phx release failed: $(cat "$PHX_TEST_DIR/release.out")"
wait "$update_pid" || fail "phx update failed: $(cat "$PHX_TEST_DIR/update.out")"
stop_daemon batchd KILL || true
# what the answers said is committed
assert_eq "RUNNING|$uid" "$(psql_q "SELECT state, cancel_uid FROM jobs WHERE id = $a")"
assert_eq 180 "$(psql_q "SELECT time_limit FROM jobs WHERE id = $e")"
assert_eq 0 "$(psql_q "SELECT count(*) FROM jobs WHERE id = $d AND reason = 'JobHeldUser'")"
assert_eq 1 "$(psql_q "SELECT count(*) FROM jobs WHERE id = $c
                       AND (requeue_asked = 'requeue' OR requeue_count = 1)")"
# the job's processes end while batchd is down (the kill had landed)
wait_for 20 has "term-$a"
wait_for 20 eval "! kill -0 $pa 2>/dev/null"
wait_for 10 gone "sleep 2147483647"
start_batchd
wait_job "$a" CANCELLED 30
assert_eq "CANCELLED|$uid" "$(psql_q "SELECT state, cancel_uid FROM jobs WHERE id = $a")"
assert_eq "RUNNING>CANCELLED" "$(psql_q "SELECT string_agg(from_state || '>' || to_state, '|')
    FROM job_events WHERE job_id = $a AND from_state = 'RUNNING'")"
# (c was RUNNING before: its state alone could be the old run's)
wait_for 30 eval "[[ \$(job_field $c requeue_count) == 1 && \$(job_field $c state) == RUNNING ]]"
as phx cancel "$c" "$d" "$e" >/dev/null
wait_job "$c" CANCELLED 20
wait_for 15 gone "sleep 316"

# --- 2. the kill never left batchd: sent again once subscribed ---
b=$(as phx submit --parsable two.sh)
wait_job "$b" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 317"
wait_for 10 pgrep -u phxu1 -f "sleep 2147483647"
stop_daemon master
wait_for 10 unsubscribed
run_ok as phx cancel "$b"
assert_eq "RUNNING|$uid" "$(psql_q "SELECT state, cancel_uid FROM jobs WHERE id = $b")"
stop_daemon batchd KILL || true
sleep 1
pgrep -u phxu1 -f "sleep 317" >/dev/null || fail "job $b was killed with the master down"
start_master
wait_node n1 up 30
wait_node n2 up 30
start_batchd
wait_job "$b" CANCELLED 40
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" \
    "job $b: its cancel, asked before a restart, goes on"
wait_for 15 gone "sleep (317|2147483647)"
assert_eq "CANCELLED|$uid" "$(psql_q "SELECT state, cancel_uid FROM jobs WHERE id = $b")"
note ok
