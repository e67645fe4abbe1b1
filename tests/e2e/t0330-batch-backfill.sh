#!/usr/bin/env bash
# timeout: 90
# EASY backfill with gang requests: a 4-node job that needs every core is
# not starved by a steady stream of 1-core jobs submitted before and after it.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
for n in n1 n2 n3 n4; do start_agent $n "synthetic:pack:1 numa:1 core:2 pu:1"; done
for n in n1 n2 n3 n4; do wait_node $n up; done
start_batchd
big_behind_stream phxu1 "-N 4 --ntasks-per-node=2 -t 2" 5 6 25 40 "n[1-4] 2(x4)"
assert_eq "" "$(psql_q "SELECT 1 FROM jobs WHERE id = $big AND start_time - submit_time < interval '2 s'")" "the cluster was busy when it came"
as_user phxu1 phx cancel --user phxu1
note ok
