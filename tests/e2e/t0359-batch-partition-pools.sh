#!/usr/bin/env bash
# timeout: 150
# Partitions on nodes of their own are planned apart: with compute and
# debug both full, each one's blocked job is reserved and keeps its own
# gang request (batchd used to keep one for all partitions, cancelling the
# other's), listing its own partition's nodes, and the master holds the
# free cores of both partitions' nodes at once (/state's held_cores).  A
# job of several partitions (-p debug,compute, as sbatch takes them) runs
# in the first that can start it without delaying a reservation, and is
# of that one from then on; partitions that could never take it are left
# out at submit with a warning; an unknown name in the list is refused.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='partitions = ["PartitionName=compute Nodes=n[1-2] Default=YES",
                  "PartitionName=debug Nodes=n3 MaxTime=10 DefaultTime=5"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2 n3; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2 n3; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\necho "on $PHX_JOB_NODELIST in $PHX_JOB_PARTITION"\n' >"$home/where.sh"
printf '#!/bin/sh\nsleep 300\n' >"$home/hold.sh"
chown phxu1 "$home/where.sh" "$home/hold.sh"

# Refused: an unknown partition in the list.
expect_fail as phx submit -p debug,nope where.sh
assert_contains "$PHX_OUT" 'invalid partition "nope" (the partitions are: compute, debug)'
# debug's MaxTime is 10 minutes: left out of a 20-minute job's list.
id=$(as phx submit --parsable -p debug,compute -t 20 where.sh 2>"$PHX_TEST_DIR/warn")
assert_contains "$(cat "$PHX_TEST_DIR/warn")" \
    "warning: partition debug left out: time limit exceeds partition debug's maximum (10:00)"
wait_job "$id" COMPLETED 30
[[ $(cat "$home/phx-$id.out") =~ ^on\ n[12]\ in\ compute$ ]] || fail "$(cat "$home/phx-$id.out")"
# Every partition of the list refuses: the first one's error.
expect_fail as phx submit -p debug,compute -N 3 where.sh
assert_contains "$PHX_OUT" "3 nodes asked, partition debug has 1"

# debug full: a job of debug,compute runs in compute, with the time of the
# first partition that took it at submit (debug's DefaultTime).
fill=$(as phx submit --parsable -p debug -n 2 hold.sh)
wait_job "$fill" RUNNING 30
id=$(as phx submit --parsable -p debug,compute -n 1 where.sh)
wait_job "$id" COMPLETED 30
[[ $(cat "$home/phx-$id.out") =~ ^on\ n[12]\ in\ compute$ ]] || fail "$(cat "$home/phx-$id.out")"
assert_eq compute "$(job_field "$id" partition)"
assert_eq 300 "$(job_field "$id" time_limit)" "debug's DefaultTime: the first that took it"

# Both partitions nearly full: a 2-node compute job and a debug job each
# wait with a gang request of their own, for their own partition's nodes,
# and the master holds the free core of every node for them at once (it
# held for one request at a time).
phx cancel "$fill"
wait_job "$fill" CANCELLED 30
fill=$(as phx submit --parsable -p debug -n 1 hold.sh)
block=$(as phx submit --parsable -N 2 -n 2 -t 5 hold.sh)
wait_job "$fill" RUNNING 30
wait_job "$block" RUNNING 30
big=$(as phx submit --parsable -N 2 -n 4 where.sh)
dbg=$(as phx submit --parsable -p debug -n 2 where.sh)
wait_for 20 grep -q "gang request job-$big-" "$PHX_TEST_DIR/master.log"
wait_for 20 grep -q "gang request job-$dbg-" "$PHX_TEST_DIR/master.log"
assert_contains "$(grep "gang request job-$big-" "$PHX_TEST_DIR/master.log" | head -1)" \
    "of 2 listed agents"
assert_contains "$(grep "gang request job-$dbg-" "$PHX_TEST_DIR/master.log" | head -1)" \
    "of 1 listed agents"
held() { # the agents' held cores: "n1:1 n2:1 n3:1"
    master_state | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(f"{a['"'"'name'"'"']}:{a.get('"'"'held_cores'"'"')}" for a in sorted(s["agents"], key=lambda a: a["name"])))
print(sum(f["requests"] for f in s["frameworks"]))'
}
got=
for _ in $(seq 50); do
    got=$(held | tr '\n' ' ')
    [[ $got == "n1:1 n2:1 n3:1 2 " ]] && break
    sleep 0.2
done
assert_eq "n1:1 n2:1 n3:1 2 " "$got" "held cores by node, gang requests outstanding"
for j in "$big" "$dbg"; do job_state_is "$j" PENDING || fail "job $j left PENDING"; done
# squeue -p takes a list too
got=$(as "$PHX_SRC/scripts/compat/squeue" -p compute,debug -h -t PD | awk '{print $1}' | sort -n | tr '\n' ' ')
assert_eq "$big $dbg " "$got" "squeue -p compute,debug -t PD"
got=$(as "$PHX_SRC/scripts/compat/squeue" -p debug -t r,PD -h | awk '{print $1}' | sort -n | tr '\n' ' ')
assert_eq "$fill $dbg " "$got" "squeue -p debug -t r,PD"
expect_fail as phx queue -t PD,XX
assert_contains "$PHX_OUT" 'unknown state "XX"'
# debug frees: its reserved job runs; then a job of debug,compute that
# would end after compute's reserved start (block's end, in 5 minutes) is
# kept off n1 and n2 and runs in debug; one that ends first runs in
# compute, the first partition, on the cores held for that reservation
# (lent until then)
phx cancel "$fill"
wait_job "$dbg" COMPLETED 30
assert_eq "on n3 in debug" "$(cat "$home/phx-$dbg.out")"
multi=$(as phx submit --parsable -p debug,compute -n 2 -t 10 where.sh)
wait_job "$multi" COMPLETED 30
assert_eq "on n3 in debug" "$(cat "$home/phx-$multi.out")"
assert_eq debug "$(job_field "$multi" partition)"
assert_eq debug "$(psql_q "SELECT partition FROM acct_jobs WHERE jobid = '$multi'")" "sacct's"
short=$(as phx submit --parsable -p debug,compute -n 2 -t 2 where.sh)
wait_job "$short" COMPLETED 30
assert_eq "on n[1-2] in compute" "$(cat "$home/phx-$short.out")"
job_state_is "$big" PENDING || fail "compute's job started while compute was full"
phx cancel "$block"
wait_job "$big" COMPLETED 30
assert_eq "on n[1-2] in compute" "$(cat "$home/phx-$big.out")"
note ok
