#!/usr/bin/env bash
# timeout: 240
# What one step request may cost the master and an agent is bounded.  Any
# user inside a job may ask for any -n and -c (up to 2^20 ranks of 65536
# cores each): the master once listed, for every rank, cpus_per_task cores
# (wrapping over the job's few), so `-n 128 -c 65536` on a one-core task
# made a STEP_LAUNCH of 8 million core numbers, above the frame limit:
# never sent, and the step hung; `-n 1048576 -c 65536` would have made the
# master fill 256 GiB (and k * cpus_per_task overflowed an int).  A rank's
# list now names each of its cores once, and a node takes at most
# master.max_step_tasks_per_node ranks (1024 by default; an agent forks,
# pipes and serves PMIx for every one of them).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
start_master
master_pid=$PHX_LAST_PID
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
phx="$PHX_BUILD/bin/phx"

STEP_AGENTS=1 step_job "
timeout 40 $phx run -n 128 -c 65536 sh -c 'grep Cpus_allowed_list: /proc/self/status' >$PHX_TEST_DIR/wide
echo \"wide rc=\$?\"
sort $PHX_TEST_DIR/wide | uniq -c
timeout 40 $phx run -n 1025 true; echo \"many rc=\$?\"
timeout 40 $phx run --ntasks-per-node 1025 true; echo \"per-node rc=\$?\"
timeout 40 $phx run -n 1048576 -c 65536 true; echo \"huge rc=\$?\"
"
out=$(cat "$PHX_TEST_DIR/out")
# 128 ranks, each bound to the job's core on the node, launched and ended
assert_contains "$out" "128 Cpus_allowed_list:	0"
assert_contains "$out" "wide rc=0"
# more ranks than a node may take: refused at once, saying why
assert_contains "$out" "1025 tasks on one node: at most 1024 (master.max_step_tasks_per_node)"
assert_not_contains "$out" "many rc=0"
assert_not_contains "$out" "many rc=124"
assert_not_contains "$out" "per-node rc=0"
assert_not_contains "$out" "per-node rc=124"
assert_contains "$out" "1048576 tasks on one node"
assert_not_contains "$out" "huge rc=0"
assert_not_contains "$out" "huge rc=124"
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$master_pid/status")
note "master peak RSS: $rss kB"
((rss < 200000)) || fail "the master grew to $rss kB"
curl -sf "http://$PHX_MASTER/health" >/dev/null || fail "the master does not answer"
note ok
