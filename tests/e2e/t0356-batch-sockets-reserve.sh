#!/usr/bin/env bash
# timeout: 120
# A reserved job capped per socket behind a stream of 1-core jobs starts,
# asking the master for its tasks (4 socket bundles of 1 core, 2 per node,
# 1 per socket) and no later job jumps ahead of it.  This end-to-end run
# does not reproduce the old requests' failure (cores per node: two free
# cores of one socket given to a job needing one on each); the unit tests
# do (test_alloc_gang per_socket/max_agents, test_batch_sched gang request).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:2 numa:1 core:2 pu:1"; done
for n in n1 n2; do wait_node $n up; done
start_batchd
big_behind_stream phxu1 "-N 2 -n 4 --ntasks-per-socket=1 -t 2" 6 8 40 50 "n[1-2] 2(x2)"
assert_contains "$(grep "job $big: gang request" "$PHX_TEST_DIR/batchd.log")" "for 4 socket bundles of 1 cores"
as_user phxu1 phx cancel --user phxu1
note ok
