#!/usr/bin/env bash
# timeout: 240
# scontrol update for jobs (phx update): a held job's TimeLimit, JobName,
# NumNodes and Partition change, seen by phx show and in the jobs row (its
# columns and spec), and kept across a batchd restart; the job then runs
# with them.  Another user's job is not found; an unknown field is refused
# by name; a value submission would refuse (MaxTime, the cluster fit, a
# partition the user may not use, a dependency on no job) refuses the
# whole update, nothing changed; Nice goes up only.  A running job: only a
# lower TimeLimit (raising and Partition refused by name); lowered, the job
# is killed at the new limit (TIMEOUT), by a restarted batchd too.
# scontrol update NodeName= State=DRAIN/RESUME maps to phx nodes.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='partitions = ["PartitionName=a Nodes=n1,n2 Default=YES MaxTime=30",
                  "PartitionName=b Nodes=n2 MaxTime=30",
                  "PartitionName=c Nodes=n1 AllowGroups=root"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
scontrol() { as "$PHX_SRC/scripts/compat/scontrol" "$@"; }
row() { psql_q "SELECT $2 FROM jobs WHERE id = $1"; }
row_is() { [[ $(row "$1" "$2") == "$3" ]]; }
# wait_row ID COLUMNS WANT: the row says WANT once the store committed
wait_row() { wait_for 10 row_is "$@" || assert_eq "$3" "$(row "$1" "$2")" "jobs row"; }
printf '#!/bin/sh\necho "ran $PHX_JOB_NAME in $PHX_JOB_PARTITION on $PHX_JOB_NODELIST"\n' \
    >"$home/j.sh"
chown phxu1 "$home/j.sh"

# 1. A held job: TimeLimit, JobName, NumNodes at once.
h=$(as phx submit --parsable -H -t 20 -J first j.sh)
out=$(as phx update "$h" TimeLimit=10 jobname=second NumNodes=2)
assert_eq "job $h: TimeLimit=10:00 JobName=second NumNodes=2" "$out"
assert_eq "600 second 2 2" "$(job_field "$h" time_limit) $(job_field "$h" name) \
$(job_field "$h" nodes) $(job_field "$h" ntasks)"
assert_contains "$(as phx show "$h")" "TimeLimit=10:00"
wait_row "$h" "name, time_limit, nodes_min, nodes_max, ntasks, partition" "second|600|2|2|2|a"
assert_eq "second|600|2" "$(row "$h" "spec->>'job_name', spec->>'time_limit', spec->>'nodes_min'")"
assert_contains "$(row "$h" "spec->'batchd'->>'env'")" "HOME"

# Partition b has one node: two do not fit (submission's words), nothing
# changes; with NumNodes=1 they do (scontrol's JobId= form).
expect_fail scontrol update "JobId=$h" Partition=b
assert_contains "$PHX_OUT" "job $h: "
assert_eq "a 2" "$(job_field "$h" partition) $(job_field "$h" nodes)"
out=$(scontrol update "JobId=$h" Partition=b NumNodes=1)
assert_eq "job $h: Partition=b NumNodes=1" "$out"
assert_eq "b 1" "$(job_field "$h" partition) $(job_field "$h" nodes)"
# a partition the user may not use
expect_fail as phx update "$h" Partition=c
assert_contains "$PHX_OUT" "job $h: user phxu1 may not use partition c (AllowGroups=root)"
# a raise: an operator's only (as Slurm's)
expect_fail as phx update "$h" TimeLimit=15
assert_contains "$PHX_OUT" "job $h: TimeLimit=15:00: only an operator may raise a time limit (it is 10:00)"
# all or nothing (an operator): the name is fine, the time limit over b's
# MaxTime
expect_fail phx update "$h" JobName=zz TimeLimit=40
assert_contains "$PHX_OUT" "job $h: time limit exceeds partition b's maximum (30:00)"
assert_eq "second 600" "$(job_field "$h" name) $(job_field "$h" time_limit)"
# a malformed value, a dependency on no job
expect_fail as phx update "$h" JobName=zz NumNodes=x
assert_contains "$PHX_OUT" "NumNodes=x: "
expect_fail as phx update "$h" Dependency=afterok:999999
assert_contains "$PHX_OUT" "dependency on job 999999 which does not exist"
# an unknown field, by name; another user's job is not found
expect_fail scontrol update "JobId=$h" Shared=yes
assert_contains "$PHX_OUT" "field Shared is not supported"
expect_fail as_user phxu2 phx update "$h" TimeLimit=1
assert_contains "$PHX_OUT" "invalid job id $h"
# Nice: up by its owner, not down; an operator may
as phx update "$h" Nice=10 >/dev/null
expect_fail as phx update "$h" Nice=5
assert_contains "$PHX_OUT" "only an operator may lower a job's nice value"
assert_eq "job $h: Nice=0" "$(phx update "$h" Nice=0)"
wait_row "$h" "name, time_limit, partition, nodes_min, nice" "second|600|b|1|0"

# Kept across a restart of batchd; then it runs as changed.
stop_daemon batchd
start_batchd
assert_eq "second 600 b 1" "$(job_field "$h" name) $(job_field "$h" time_limit) \
$(job_field "$h" partition) $(job_field "$h" nodes)"
as phx release "$h"
wait_job "$h" COMPLETED 30
assert_eq "ran second in b on n2" "$(cat "$home/phx-$h.out")"

# An array job id: every pending task; A_T one.
a=$(as phx submit --parsable -H -t 7 --array=0-1 j.sh)
out=$(as phx update "$a" Name=arr)
assert_contains "$out" "job ${a}_0: JobName=arr"
assert_contains "$out" "job ${a}_1: JobName=arr"
assert_eq "job ${a}_1: TimeLimit=02:00" "$(scontrol update "JobId=${a}_1" TimeLimit=2)"
assert_eq "arr 420 arr 120" "$(job_field "${a}_0" name) $(job_field "${a}_0" time_limit) \
$(job_field "${a}_1" name) $(job_field "${a}_1" time_limit)"
as phx cancel "$a"

# A dependency set on a held job holds it back once released; cleared
# ("Dependency="), the job runs.
blocker=$(as phx submit --parsable -H j.sh)
d=$(as phx submit --parsable -H j.sh)
assert_eq "job $d: Dependency=afterok:$blocker" \
    "$(as phx update "$d" "Dependency=afterok:$blocker")"
as phx release "$d"
sleep 2
assert_eq "PENDING Dependency" "$(job_field "$d" state) $(job_field "$d" reason)"
wait_row "$d" "dependency" "afterok:$blocker"
assert_eq "job $d: Dependency=(null)" "$(as phx update "$d" Dependency=)"
wait_job "$d" COMPLETED 30
as phx cancel "$blocker"

# 2. A running job: a lower TimeLimit only, then killed at it (TIMEOUT),
# by a batchd restarted in between.
printf '#!/bin/sh\n#SBATCH -t 5\nexec sleep 3511\n' >"$home/long.sh"
chown phxu1 "$home/long.sh"
r=$(as phx submit --parsable long.sh)
wait_job "$r" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 3511"
expect_fail as phx update "$r" TimeLimit=6
assert_contains "$PHX_OUT" "job $r: TimeLimit=06:00: a running job's time limit can only be lowered"
expect_fail phx update "$r" TimeLimit=6
assert_contains "$PHX_OUT" "can only be lowered"
expect_fail scontrol update "JobId=$r" Partition=b
assert_contains "$PHX_OUT" "job $r: field Partition can only be changed while the job is pending"
assert_eq "job $r: TimeLimit=00:20" "$(scontrol update "jobid=$r" TimeLimit=0:20)"
wait_row "$r" "time_limit, spec->>'time_limit'" "20|20"
stop_daemon batchd
start_batchd
wait_job "$r" TIMEOUT 40
ran=$(psql_q "SELECT extract(epoch FROM end_time - start_time)::int FROM jobs WHERE id = $r")
note "ran $ran s"
((ran >= 19 && ran <= 30)) || fail "killed after $ran s, not at its 20 s limit"
wait_for 10 sh -c '! pgrep -u phxu1 -f "sleep 3511" >/dev/null'

# 3. scontrol update NodeName: DRAIN with a reason, RESUME; others refused.
expect_fail "$PHX_SRC/scripts/compat/scontrol" update NodeName=n2 State=DOWN
assert_contains "$PHX_OUT" "State=DOWN is not supported"
"$PHX_SRC/scripts/compat/scontrol" update NodeName=n2 State=DRAIN Reason="disk swap"
assert_contains "$(phx nodes show n2)" "disk swap"
"$PHX_SRC/scripts/compat/scontrol" update NodeName=n2 State=RESUME
wait_for 10 sh -c '! phx nodes show n2 | grep -q "disk swap"'
note ok
