#!/usr/bin/env bash
# timeout: 180
# A requeue asked for a running job survives a restart of phx-batchd
# (jobs.requeue_asked, migration 011): two jobs whose scripts trap SIGTERM
# and take seconds to end are requeued (one with --hold); batchd stops while
# they end and starts again once their shells are gone; the master's
# updates then put them back in the queue (restart count 1, the hold kept),
# and both run again.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
cat >"$home/slowterm.sh" <<'S'
#!/bin/bash
#SBATCH -t 5 --open-mode=append -o rqr-%j.out
echo "run $PHX_JOB_ID $$"
trap 'echo "term $PHX_JOB_ID"; touch "$HOME/rqr-term-$PHX_JOB_ID"; sleep 5; exit 143' TERM
echo $$ >"$HOME/rqr-pid-$PHX_JOB_ID"
while :; do sleep 1; done
S
chown phxu1 "$home/slowterm.sh"
rm -f "$home"/rqr-*
runs() { grep -c "^run $1 " "$home/rqr-$1.out"; }
has() { [[ -s $home/rqr-$1 ]] || [[ -e $home/rqr-$1 && $2 == any ]]; }

a=$(as phx submit --parsable slowterm.sh)
h=$(as phx submit --parsable slowterm.sh)
wait_job "$a" RUNNING 20
wait_job "$h" RUNNING 20
wait_for 10 has "pid-$a"
wait_for 10 has "pid-$h"
pa=$(cat "$home/rqr-pid-$a")
ph=$(cat "$home/rqr-pid-$h")
rm -f "$home/rqr-pid-$a" "$home/rqr-pid-$h"

run_ok as phx requeue "$a"
run_ok as phx requeue --hold "$h"
# their shells got SIGTERM and take 5 s to end: batchd stops meanwhile
wait_for 10 has "term-$a" any
wait_for 10 has "term-$h" any
stop_daemon batchd
assert_eq "RUNNING requeue|RUNNING hold" \
    "$(psql_q "SELECT string_agg(state || ' ' || requeue_asked, '|' ORDER BY id)
               FROM jobs WHERE id IN ($a, $h)")"
wait_for 20 eval "! kill -0 $pa 2>/dev/null && ! kill -0 $ph 2>/dev/null"
start_batchd
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "resuming framework"

# back in the queue as asked, then run again; the held one once released
wait_for 20 has "pid-$a"
assert_eq RUNNING "$(job_field "$a" state)"
assert_eq 1 "$(job_field "$a" requeue_count)"
assert_eq 2 "$(runs "$a")" "two runs of $a in its output"
wait_for 20 job_state_is "$h" PENDING
assert_eq JobHeldUser "$(job_field "$h" reason)"
assert_eq 1 "$(job_field "$h" requeue_count)"
assert_eq "FAILED>PENDING|FAILED>PENDING" \
    "$(psql_q "SELECT string_agg(from_state || '>' || to_state, '|' ORDER BY job_id)
               FROM job_events WHERE job_id IN ($a, $h) AND to_state = 'PENDING'
               AND from_state IS NOT NULL")"
assert_eq "0" "$(psql_q "SELECT count(*) FROM jobs WHERE id IN ($a, $h)
                         AND requeue_asked IS NOT NULL")"
as phx release "$h"
wait_for 20 has "pid-$h"
assert_eq 2 "$(runs "$h")" "two runs of $h in its output"
assert_eq 1 "$(job_field "$h" requeue_count)"
as phx cancel "$a" "$h"
wait_job "$a" CANCELLED 40
wait_job "$h" CANCELLED 40
