#!/usr/bin/env bash
# timeout: 240
# An agent starts a step's ranks a few at a time, between the other work of
# its loop.  It forked them all in one go, on the loop, at about 2 ms each
# here: a node's 1024 ranks (master.max_step_tasks_per_node) stopped its
# heartbeats for 2 s, so a user with a job on the node who started a few
# such steps at once (`phx run -n 1024 true &` four times) made the master
# declare the node lost, and kill every job on it, other users' too.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5 # lost after 3 s without a heartbeat
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
phx="$PHX_BUILD/bin/phx"

STEP_AGENTS=1 step_job "
for i in 1 2 3 4; do (timeout 60 $phx run -n 1024 true; echo \"step \$i rc=\$?\") & done
wait
"
out=$(cat "$PHX_TEST_DIR/out")
for i in 1 2 3 4; do assert_contains "$out" "step $i rc=0"; done
log=$(cat "$PHX_TEST_DIR/master.log")
assert_not_contains "$log" 'agent "n1": up -> unreachable'
note ok
