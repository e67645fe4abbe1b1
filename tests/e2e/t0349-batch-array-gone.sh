#!/usr/bin/env bash
# timeout: 120
# An array job id names the array once job A itself (task 0) has left
# memory (batchd.keep_ended after it ended) while other tasks are pending:
# phx hold, hold --user, cancel, show and cancel -s (signal) of A act on
# those tasks (show: the first one still known).  Before, they answered 404
# (invalid job id A).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='keep_ended = 1;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
reason() { job_field "$1" reason; }
# outputs of an earlier run (job ids start again with each database) would
# be read before the task's own truncates them
rm -f "$home"/phx-*.out
printf '#!/bin/sh\n#SBATCH -t 5\necho "task $PHX_ARRAY_TASK_ID"\n' >"$home/j.sh"
chown phxu1 "$home/j.sh"

a=$(as phx submit --parsable -H --array=0-2 j.sh)
as phx release "${a}_0"
wait_job "${a}_0" COMPLETED 20
# past keep_ended: batchd's tick expires job A (every second, counting whole
# seconds: a fixed sleep could come first, and show A itself)
wait_for 15 sh -c "! phx show ${a}_0 >/dev/null 2>&1"
# show: the array's first task still known (was: invalid job id)
run_ok phx show "$a"
assert_contains "$PHX_OUT" "ArrayJobId=$a ArrayTaskId=1"
assert_contains "$PHX_OUT" "JobState=PENDING"
run_ok as phx show "$a"
assert_contains "$PHX_OUT" "ArrayJobId=$a ArrayTaskId=1"
expect_fail as_user phxu2 phx show "$a"
assert_contains "$PHX_OUT" "invalid job id $a"
expect_fail as phx cancel -s USR1 "$a"
assert_contains "$PHX_OUT" "job $a is pending: only a running job can be signalled"
assert_eq "PENDING JobHeldUser" "$(job_field "${a}_1" state) $(reason "${a}_1")"

# hold: the operator's hold of the array's pending tasks
phx hold "$a"
assert_eq "JobHeldAdmin JobHeldAdmin" "$(reason "${a}_1") $(reason "${a}_2")"
expect_fail as phx release "$a"
assert_contains "$PHX_OUT" "held by an operator"
phx hold --user "$a"
assert_eq "JobHeldUser JobHeldUser" "$(reason "${a}_1") $(reason "${a}_2")"
# another user (not the operator): as if it did not exist
expect_fail as_user phxu2 phx hold "$a"
assert_contains "$PHX_OUT" "invalid job id $a"
expect_fail as_user phxu2 phx cancel "$a"
assert_contains "$PHX_OUT" "invalid job id $a"

# cancel: every task of the array still there
as phx cancel "$a"
wait_job "${a}_1" CANCELLED 20
wait_job "${a}_2" CANCELLED 20

# signal: the running tasks of an array whose task 0 has left memory
d=$home/t0349.$$ # the tasks' marks (the home is shared by the tests)
mkdir "$d"
chown phxu1 "$d"
cat >"$home/s.sh" <<S
#!/bin/sh
#SBATCH -t 5
[ "\$PHX_ARRAY_TASK_ID" = 0 ] && exit 0
trap 'echo "task \$PHX_ARRAY_TASK_ID got USR1"' USR1
touch "$d/ready.\$PHX_ARRAY_TASK_ID"
while [ ! -e "$d/stop" ]; do sleep 0.2; done
echo "task \$PHX_ARRAY_TASK_ID done"
S
chown phxu1 "$home/s.sh"
s=$(as phx submit --parsable --array=0-1 s.sh)
wait_job "${s}_0" COMPLETED 20
wait_for 20 test -e "$d/ready.1"
# past keep_ended: job A goes
wait_for 15 sh -c "! phx show ${s}_0 >/dev/null 2>&1"
expect_fail as_user phxu2 phx cancel -b -s USR1 "$s"
assert_contains "$PHX_OUT" "invalid job id $s"
run_ok as phx cancel -b -s USR1 "$s"
wait_for 15 grep -q "task 1 got USR1" "$home/phx-${s}_1.out"
assert_eq RUNNING "$(job_field "${s}_1" state)"
touch "$d/stop"
wait_job "${s}_1" COMPLETED 20
rm -rf "$d"
note ok
