#!/usr/bin/env bash
# timeout: 90
# Placement by sockets and node shape: on nodes of 2 sockets, a job of
# 4 tasks at one per socket starts on 2 nodes (it pended forever when
# batchd counted cores only); one that no set of nodes can hold, or that
# asks a node shape no node has, is refused at submit naming the option; a
# job asking 2 threads per core runs on the node that has them.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:2 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:2 numa:1 core:2 pu:1"
start_agent n3 "synthetic:pack:1 numa:1 core:2 pu:2"
for n in n1 n2 n3; do wait_node $n up; done
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -t 1\necho "on $PHX_JOB_NODELIST $PHX_TASKS_PER_NODE"\n' >"$home/where.sh"
chown phxu1 "$home/where.sh"

id=$(as phx submit --parsable -n 4 --ntasks-per-socket=1 where.sh)
wait_job "$id" COMPLETED 30
assert_eq "on n[1-2] 2(x2)" "$(cat "$home/phx-$id.out")"

expect_fail as phx submit -n 6 --ntasks-per-socket=1 where.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "requested node configuration is not available"
expect_fail as phx submit --sockets-per-node=4 where.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "no node has 4 sockets (--sockets-per-node"
expect_fail as phx submit -B 2:2:2 where.sh
note "$PHX_OUT"
assert_contains "$PHX_OUT" "-B 2:2:2"

id=$(as phx submit --parsable --threads-per-core=2 where.sh)
wait_job "$id" COMPLETED 30
assert_eq "on n3 1" "$(cat "$home/phx-$id.out")"
id=$(as phx submit --parsable -B 2 -n 2 -N 1 where.sh)
wait_job "$id" COMPLETED 30
assert_contains "$(cat "$home/phx-$id.out")" "2"
assert_not_contains "$(cat "$home/phx-$id.out")" "n3"
note ok
