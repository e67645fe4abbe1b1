#!/usr/bin/env bash
# timeout: 150
# What a requeue keeps (from a review's failing tests): the run a requeue
# of a running job ends is recorded and charged (usage_daily has both
# runs); the job is then PENDING with no start (acct_jobs: no elapsed, no
# CPU time growing while held); a requeued job whose dependency left
# batchd's memory (keep_ended) runs again instead of being cancelled as
# DependencyNeverSatisfied, its dependency dropped as met.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='keep_ended = 2;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -n 1 -t 5 -o /dev/null\nexec sleep 300\n' >"$home/long.sh"
printf '#!/bin/sh\n#SBATCH -n 1 -t 5 -o /dev/null\nsleep 2\n' >"$home/short.sh"
chown phxu1 "$home"/*.sh
st() { psql_q "SELECT state || ' ' || reason FROM jobs WHERE id = $1"; }

# 1. The first run is charged: usage_daily counts both runs' seconds.
j=$(as phx submit --parsable long.sh)
wait_job "$j" RUNNING 20
sleep 5 # the first run: >= 5 core-seconds
run_ok as phx requeue "$j"
wait_for 20 eval "[[ \$(job_field $j requeue_count) == 1 && \$(job_field $j state) == RUNNING ]]"
as phx cancel "$j"
wait_job "$j" CANCELLED 20
wait_for 10 eval "[[ \$(psql_q \"SELECT coalesce(sum(cpu_seconds), 0) >= 5 FROM usage_daily WHERE user_name = 'phxu1'\") == t ]]"
assert_eq "-PENDING PENDING-RUNNING RUNNING-FAILED FAILED-PENDING PENDING-RUNNING RUNNING-CANCELLED" \
    "$(psql_q "SELECT string_agg(coalesce(from_state::text, '') || '-' || to_state, ' ' ORDER BY id)
               FROM job_events WHERE job_id = $j")" \
    "the requeued run ends (FAILED: killed), then PENDING, then the second run"

# 2. Held after the requeue: PENDING with no start, nothing growing.
k=$(as phx submit --parsable long.sh)
wait_job "$k" RUNNING 20
sleep 2
run_ok as phx requeue --hold "$k"
wait_for 20 job_state_is "$k" PENDING
sleep 2
assert_eq "PENDING|t|0|0" \
    "$(psql_q "SELECT concat_ws('|', state, start IS NULL, elapsed_s, cpu_time_s) FROM acct_jobs WHERE job_id = $k")" \
    "a pending (requeued, held) job has no start, no elapsed"
as phx cancel "$k"

# 3. The dependency of a requeued job was met: not evaluated again.
x=$(as phx submit --parsable short.sh)
a=$(as phx submit --parsable --dependency=afterok:"$x" long.sh)
wait_for 30 eval "[[ \$(st $a) == RUNNING* ]]"
# x ended more than keep_ended ago: gone from memory (batchd's tick, every
# second, counting whole seconds: a fixed sleep could come first)
wait_for 15 eval "! as phx show $x >/dev/null 2>&1"
expect_fail as phx show "$x"
run_ok as phx requeue "$a"
wait_for 20 eval "[[ \$(job_field $a requeue_count) == 1 && \$(job_field $a state) == RUNNING ]]"
assert_eq "" "$(job_field "$a" dependency)" "its dependency dropped (met)"
assert_eq "" "$(psql_q "SELECT dependency FROM jobs WHERE id = $a")"
as phx cancel "$a"
