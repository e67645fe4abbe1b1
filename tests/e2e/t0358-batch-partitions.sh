#!/usr/bin/env bash
# timeout: 150
# Partitions (batchd.partitions, slurm.conf's PartitionName lines): a job
# runs in its partition (-p, #SBATCH -p, else the default one) on that
# partition's nodes only, with its default and maximum time; a full
# partition makes its jobs wait while another's nodes are idle, and does
# not hold up the other's jobs.  phx partitions and sinfo show each
# partition's nodes by state, squeue -p one partition's jobs.  An unknown
# partition, a time beyond the partition's maximum and
# more nodes than it has are refused at submit, naming the problem, as is
# a user outside the partition's AllowGroups and any job of a partition in
# State=DRAIN; a State=DOWN partition's job waits (PartitionDown) until
# a reload (SIGHUP) makes the partition UP.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
getent group phxdbg >/dev/null || groupadd phxdbg
usermod -a -G phxdbg phxu1
PHX_BATCHD_EXTRA='partitions = ["PartitionName=compute Nodes=n[1-2] Default=YES State=UP",
                  "PartitionName=debug Nodes=n3,n9 MaxTime=10 DefaultTime=5 AllowGroups=phxdbg",
                  "PartitionName=maint Nodes=n2 State=DOWN",
                  "PartitionName=old Nodes=n1 State=DRAIN"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2 n3; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2 n3; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\necho "on $PHX_JOB_NODELIST in $PHX_JOB_PARTITION"\n' >"$home/where.sh"
printf '#!/bin/sh\n#SBATCH -p debug\n#SBATCH -n 1\necho "on $PHX_JOB_NODELIST in $PHX_JOB_PARTITION"\n' \
    >"$home/dbg.sh"
printf '#!/bin/sh\n#SBATCH -p debug -n 2\nsleep 300\n' >"$home/fill.sh"
chown phxu1 "$home/where.sh" "$home/dbg.sh" "$home/fill.sh"

# The default partition; the one a directive names, with its default time.
first=$(as phx submit --parsable -N 2 -n 2 where.sh)
wait_job "$first" COMPLETED 30
assert_eq "on n[1-2] in compute" "$(cat "$home/phx-$first.out")"
assert_eq compute "$(job_field "$first" partition)"
id=$(as phx submit --parsable dbg.sh)
wait_job "$id" COMPLETED 30
assert_eq "on n3 in debug" "$(cat "$home/phx-$id.out")"
assert_eq debug "$(psql_q "SELECT partition FROM jobs WHERE id = $id")"
assert_eq 300 "$(job_field "$id" time_limit)" "debug's DefaultTime"
assert_eq 3600 "$(job_field "$first" time_limit)" "compute's: batchd.default_time_limit"

# Refused at submit, naming the problem.
expect_fail as phx submit -p nope where.sh
assert_contains "$PHX_OUT" 'invalid partition "nope" (the partitions are: compute, debug, maint, old)'
# State=DRAIN takes no new job; State=DOWN takes them and runs none
expect_fail as phx submit -p old where.sh
assert_contains "$PHX_OUT" "partition old is DRAIN: it takes no new jobs"
down=$(as phx submit --parsable -p maint where.sh)
expect_fail as phx submit -p debug -t 20 where.sh
assert_contains "$PHX_OUT" "time limit exceeds partition debug's maximum (10:00)"
expect_fail as phx submit -p debug -N 2 where.sh
assert_contains "$PHX_OUT" "2 nodes asked, partition debug has 1"
expect_fail as phx submit -N 3 where.sh
assert_contains "$PHX_OUT" "3 nodes asked, partition compute has 2"
# debug is phxdbg's: phxu2 is not in it (the directive's line is named)
cp "$home/dbg.sh" "$(getent passwd phxu2 | cut -d: -f6)/dbg.sh"
expect_fail as_user phxu2 phx submit dbg.sh
assert_contains "$PHX_OUT" "dbg.sh:2"
assert_contains "$PHX_OUT" "user phxu2 may not use partition debug (AllowGroups=phxdbg)"

# debug full: its next job waits though n1 and n2 are idle; compute's runs.
fill=$(as phx submit --parsable fill.sh)
wait_job "$fill" RUNNING 30
id=$(as phx submit --parsable dbg.sh)
other=$(as phx submit --parsable -n 1 where.sh)
wait_job "$other" COMPLETED 30
[[ $(cat "$home/phx-$other.out") =~ ^on\ n[12]\ in\ compute$ ]] ||
    fail "compute's job: $(cat "$home/phx-$other.out")"
job_state_is "$id" PENDING || fail "job $id left PENDING while debug was full"
assert_eq Resources "$(job_field "$id" reason)"
# the planner sees n3 busy: the debug job is reserved, with a gang request
# for n3 (busy nodes once looked free to it: no job was ever reserved)
wait_for 10 grep -q "job $id: gang request" "$PHX_TEST_DIR/batchd.log"
# sinfo's view (n9 is listed, never registered), squeue -p
compat=$PHX_SRC/scripts/compat
got=$(as "$compat/sinfo" -h | awk '{print $1, $2, $3, $4, $5, $6}')
note "$got"
assert_eq "compute* up infinite 2 idle n[1-2]
debug up 10:00 1 alloc n3
debug up 10:00 1 unk n9
maint down infinite 1 idle n2
old drain infinite 1 idle n1" "$got"
assert_eq PartitionDown "$(job_field "$down" reason)" "maint's job, n2 idle"
assert_eq "debug 10:00 1 alloc n3" "$(as phx partitions -p debug --noheader | awk 'NR == 1 {print $1, $3, $4, $5, $6}')"
assert_contains "$(as phx partitions --json)" '"nodelist": "n9"'
got=$(as "$compat/squeue" -p debug -h | awk '{print $1, $2}')
assert_contains "$got" "$fill debug"
assert_contains "$got" "$id debug"
assert_eq debug "$(awk '{print $2}' <<<"$got" | sort -u)" "squeue -p debug: debug's jobs only"
expect_fail as "$compat/sinfo" -p nope
assert_contains "$PHX_OUT" 'no partition "nope"'
phx cancel "$fill"
wait_job "$id" COMPLETED 30
assert_eq "on n3 in debug" "$(cat "$home/phx-$id.out")"

# A 2-node job waiting in a full compute: its gang request lists compute's
# nodes (it asked for any node: the master held n3 for it, of no use).
printf '#!/bin/sh\n#SBATCH -N 2 -n 4\nsleep 300\n' >"$home/block.sh"
chown phxu1 "$home/block.sh"
block=$(as phx submit --parsable block.sh)
wait_job "$block" RUNNING 30
two=$(as phx submit --parsable -N 2 -n 2 where.sh)
wait_for 20 grep -q "gang request job-$two-" "$PHX_TEST_DIR/master.log"
assert_contains "$(grep "gang request job-$two-" "$PHX_TEST_DIR/master.log" | head -1)" \
    "of 2 listed agents"
phx cancel "$block"
wait_job "$two" COMPLETED 30
job_state_is "$down" PENDING || fail "maint's job left PENDING"
# SIGHUP: maint is UP again, and its job runs on n2
sed -i 's/PartitionName=maint Nodes=n2 State=DOWN/PartitionName=maint Nodes=n2 State=UP/' \
    "$PHX_CONFIG"
kill -HUP "$(daemon_pid batchd)"
wait_job "$down" COMPLETED 30
assert_eq "on n2 in maint" "$(cat "$home/phx-$down.out")"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "reloaded: applied batchd.partitions"
note ok
