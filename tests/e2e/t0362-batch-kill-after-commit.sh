#!/usr/bin/env bash
# timeout: 180
# The kill of a cancel or requeue goes to the master only once the change is
# committed (daemons/batchd/kill.c): with PostgreSQL stopped (SIGSTOP), a
# running job is cancelled and another requeued; their processes must still
# run when batchd is SIGKILLed before the commit.  (Killed first, as before
# the fix, the tasks were gone while the database did not know the cancel,
# and a restarted batchd ended the cancelled job as a failure.)  Once
# PostgreSQL runs again and batchd restarts, each job is in a state its row
# explains: the change committed (the job ends CANCELLED, or is requeued),
# or not (the job runs on, untouched); the cancelled one never FAILED.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
# PostgreSQL is stopped for seconds below: a master whose lock session does
# not answer for half its lease exits (5 s by default, too short for the
# waits below on a loaded machine)
PHX_MASTER_EXTRA='leader_lease = 60;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -t 5 -o kc-%%j.out\nsleep 318\n' >"$home/can.sh"
printf '#!/bin/sh\n#SBATCH -t 5 -o kc-%%j.out\nsleep 319\n' >"$home/req.sh"
chown phxu1 "$home/can.sh" "$home/req.sh"
rm -f "$home"/kc-*
runs() { pgrep -u phxu1 -f "$1" >/dev/null; }

a=$(as phx submit --parsable can.sh)
c=$(as phx submit --parsable req.sh)
wait_job "$a" RUNNING 30
wait_job "$c" RUNNING 30
wait_for 10 runs "sleep 318"
wait_for 10 runs "sleep 319"

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
# a kill sent at once reaches the agent within this (the master needs no
# PostgreSQL to pass it on).  (wait_for 1 and 2, as before, were 0 to 2 s:
# wait_for counts whole seconds, and the clients may take that long to
# connect on a loaded machine; the master's lease allows 30 s.)
wait_for 10 grep -q "job $a: cancel by uid" "$PHX_TEST_DIR/batchd.log"
wait_for 10 grep -q "job $c: requeue by uid" "$PHX_TEST_DIR/batchd.log"
sleep 1.5
stop_daemon batchd KILL || true
sleep 0.5
alive_a=yes alive_c=yes
runs "sleep 318" || alive_a=no
runs "sleep 319" || alive_c=no
# shellcheck disable=SC2086
kill -CONT $pgs
[[ $alive_a == yes ]] || fail "job $a was killed before its cancel was committed"
[[ $alive_c == yes ]] || fail "job $c was killed before its requeue was committed"
wait "$cancel_pid" "$requeue_pid" || true
note "cancel: $(cat "$PHX_TEST_DIR/cancel.out"); requeue: $(cat "$PHX_TEST_DIR/requeue.out")"

start_batchd
# what the row says decides: committed (the pipeline's COMMIT may have been
# in PostgreSQL's socket already), or not
if [[ -n $(psql_q "SELECT cancel_uid FROM jobs WHERE id = $a") ]]; then
    note "job $a: cancel committed"
    wait_job "$a" CANCELLED 30
else
    note "job $a: cancel not committed"
    sleep 2
    assert_eq RUNNING "$(job_field "$a" state)"
    runs "sleep 318" || fail "job $a was killed, its cancel not committed"
    run_ok as phx cancel "$a"
    wait_job "$a" CANCELLED 30
fi
if [[ $(psql_q "SELECT requeue_asked FROM jobs WHERE id = $c") == requeue ]]; then
    note "job $c: requeue committed"
    wait_for 30 eval "[[ \$(psql_q \"SELECT requeue_count FROM jobs WHERE id = $c\") == 1 ]]"
else
    note "job $c: requeue not committed"
    assert_eq RUNNING "$(job_field "$c" state)"
    runs "sleep 319" || fail "job $c was killed, its requeue not committed"
fi
# (a requeued run is recorded FAILED, doc/jobs.md "Requeue": job a only)
assert_eq 0 "$(psql_q "SELECT count(*) FROM job_events WHERE job_id = $a
                       AND to_state = 'FAILED'")"
as phx cancel "$c" >/dev/null
wait_job "$c" CANCELLED 30
wait_for 15 eval "! runs 'sleep 31[89]'"
note ok
