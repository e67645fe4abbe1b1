#!/usr/bin/env bash
# timeout: 180
# Job limits: batchd.max_jobs_per_user refuses a user's submission past it
# whole (an array too), stores nothing, and counts submissions in flight (8
# at once with one job of room let one through); max_running_jobs_per_user
# keeps the user's further jobs PENDING (QOSMaxJobsPerUserLimit) while
# another user's and an operator's run; a reload raising it starts them.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='max_jobs_per_user = 3; max_running_jobs_per_user = 1;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:5 pu:1" # room for all
wait_node n1 up
start_batchd
for u in phxu1 phxu2; do
    home=$(getent passwd $u | cut -d: -f6)
    printf '#!/bin/sh\nsleep 60\n' >"$home/s.sh"
    chown $u "$home/s.sh"
done
as() { as_user phxu1 "$@"; }
stored() { psql_q "SELECT count(*) FROM jobs WHERE user_name = 'phxu1'"; }

j1=$(as phx submit --parsable -t 2 s.sh)
wait_job "$j1" RUNNING
j2=$(as phx submit --parsable -t 2 s.sh)
j3=$(as phx submit --parsable -t 2 s.sh)
# one of phxu1's runs; the node has room, but the others wait
wait_for 20 sh -c "phx show $j2 --json | grep -q QOSMaxJobsPerUserLimit"
assert_eq "PENDING QOSMaxJobsPerUserLimit" "$(job_field "$j3" state) $(job_field "$j3" reason)"
assert_contains "$(phx queue)" "(QOSMaxJobsPerUserLimit)"
# another user's and an operator's run beside it
o=$(as_user phxu2 phx submit --parsable -t 2 s.sh)
r=$(cd "$PHX_TEST_DIR" && phx submit --parsable -t 2 --wrap "sleep 60")
wait_job "$o" RUNNING
wait_job "$r" RUNNING

# a fourth is refused, by name, and nothing is stored
out=$(as phx submit -t 2 s.sh 2>&1) && fail "a fourth job was accepted: $out"
note "$out"
assert_contains "$out" "user phxu1 has 3 jobs pending or running and batchd.max_jobs_per_user is 3"
assert_eq 3 "$(stored)"
# with one job of room, an array of 2 is refused whole
as phx cancel "$j3"
wait_job "$j3" CANCELLED
out=$(as phx submit --array=1-2 -t 2 s.sh 2>&1) && fail "an array past the limit was accepted: $out"
assert_contains "$out" "2 more are refused"
assert_eq 3 "$(stored)"
# 8 submissions at once with one job of room: one gets through
pids=()
for i in 1 2 3 4 5 6 7 8; do
    as phx submit --parsable -t 2 s.sh >"$PHX_TEST_DIR/par.$i" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done # not the daemons; 7 fail
assert_eq 1 "$(cat "$PHX_TEST_DIR"/par.* | grep -cE '^[0-9]+$')"
assert_eq 7 "$(cat "$PHX_TEST_DIR"/par.* | grep -c 'max_jobs_per_user')"
assert_eq 4 "$(stored)"

# a reload raising the running limit starts the waiting jobs
sed -i 's/max_running_jobs_per_user = 1;/max_running_jobs_per_user = 3;/' "$PHX_CONFIG"
kill -HUP "$(daemon_pid batchd)"
wait_job "$j2" RUNNING
par=$(cat "$PHX_TEST_DIR"/par.* | grep -E '^[0-9]+$')
wait_job "$par" RUNNING
note ok
