#!/usr/bin/env bash
# timeout: 120
# A reserved job asking a node shape is not starved by a stream of 1-core
# jobs: its gang request lists the nodes that have the shape.  n1 and n2
# have one socket, n3 and n4 two; the job asks 2 sockets per node.  The
# master used to hold the nodes freeing first (n1, n2: lower ids), give
# them to the job, which could not use them, and hold them again, until
# the stream stopped.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2; do start_agent $n "synthetic:pack:1 numa:1 core:4 pu:1"; done
for n in n3 n4; do start_agent $n "synthetic:pack:2 numa:1 core:2 pu:1"; done
for n in n1 n2 n3 n4; do wait_node $n up; done
start_batchd
big_behind_stream phxu1 "-N 2 -n 2 --sockets-per-node=2 -t 2" 10 12 40 60 "n[3-4] 1(x2)"
as_user phxu1 phx cancel --user phxu1
note ok
