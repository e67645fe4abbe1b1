#!/usr/bin/env bash
# timeout: 120
# A job that others depend on stays known past batchd.keep_ended while they
# wait: in memory, and across a batchd restart (loaded with them).  Before,
# the waiter found it gone and was cancelled (DependencyNeverSatisfied)
# although the dependency had been met.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='keep_ended = 1;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -t 5\necho "$PHX_JOB_NAME ran"\n' >"$home/j.sh"
chown phxu1 "$home/j.sh"
a=$(as phx submit --parsable -J A j.sh)
arr=$(as phx submit --parsable -J R --array=0-1 j.sh)
# B waits for A, the array and its begin time, long after keep_ended.
# Submitted at once: submitted once A had ended (as before), it was
# refused when a loaded machine took past keep_ended (1 s) to get there
# ("dependency on job A which does not exist": nothing named A yet).  Its
# begin time outlasts the waits below even on a slow machine (B started
# meanwhile would make "B still waits" fail).
b=$(as phx submit --parsable -J B -d "afterok:$a:$arr" --begin=now+30 j.sh)
wait_job "$a" COMPLETED 20
wait_job "${arr}_1" COMPLETED 20
wait_job "${arr}_0" COMPLETED 20
other=$(as phx submit --parsable -J O j.sh)
wait_job "$other" COMPLETED 20
# A, the array and O are past keep_ended once batchd's tick expired O (a
# fixed sleep could end before the tick: keep_ended is counted in whole
# seconds and the tick runs every second)
wait_for 15 eval "! phx show $other >/dev/null 2>&1"
assert_eq PENDING "$(job_field "$b" state)" "B still waits"
assert_eq COMPLETED "$(job_field "$a" state)" "A is kept: B names it"
expect_fail phx show "$other"
assert_contains "$PHX_OUT" "invalid job id $other"
# Across a restart: A and the array are loaded with B.
stop_daemon batchd
start_batchd
assert_eq COMPLETED "$(job_field "$a" state)" "A loaded again: B names it"
assert_eq COMPLETED "$(job_field "${arr}_0" state)" "the array too"
wait_job "$b" COMPLETED 60
assert_contains "$(cat "$home/phx-$b.out")" "B ran"
note ok
