#!/usr/bin/env bash
# timeout: 120
# One agent per run_dir and per state_dir: a second phx-agent given either
# folder of a running agent is refused at start, naming the folder and the
# holder's pid, before it registers or adopts anything; the running agent
# keeps its node, its task and its step socket; a restarted agent takes its
# folders back while its task still runs.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
cd "$PHX_TEST_DIR"
printf '#!/bin/sh\n#SBATCH -t 5 -o job.out\necho started\nexec sleep 300\n' >hold.sh
job=$(phx submit --parsable hold.sh)
wait_job "$job" RUNNING
sock_inode=$(stat -c %i "$PHX_TEST_DIR/agent-n1/step.sock")
n1_pid=$(daemon_pid agent-n1)

spec="synthetic:pack:1 numa:1 core:2 pu:1"
note "the same run_dir as n1's"
mkdir -p "$PHX_TEST_DIR/agent-n2"
expect_fail timeout 20 phx-agent -c "$PHX_CONFIG" -n n2 -t "$spec" \
    -d "$PHX_TEST_DIR/agent-n2" -r "$PHX_RUN_DIR/agent-n1"
assert_contains "$PHX_OUT" "agent.run_dir \"$PHX_RUN_DIR/agent-n1\" is in use by another phx-agent (pid $n1_pid)"

note "the same state_dir as n1's, its own run_dir"
expect_fail timeout 20 phx-agent -c "$PHX_CONFIG" -n n2 -t "$spec" \
    -d "$PHX_TEST_DIR/agent-n1" -r "$PHX_RUN_DIR/agent-n2"
assert_contains "$PHX_OUT" "agent.state_dir \"$PHX_TEST_DIR/agent-n1\" is in use by another phx-agent (pid $n1_pid)"

note "n1 is untouched: registered alone, its job running, its step socket its own"
assert_eq "" "$(phx nodes --json | python3 -c 'import json, sys; print(" ".join(a["name"] for a in json.load(sys.stdin) if a["name"] != "n1"))')" "other nodes"
node_state_is n1 up || fail "n1 is not up"
assert_eq RUNNING "$(job_field "$job" state)" "the job on n1"
assert_eq "$sock_inode" "$(stat -c %i "$PHX_TEST_DIR/agent-n1/step.sock")" "n1's step socket"
kill -0 "$n1_pid" || fail "agent n1 died"

note "a restarted n1 takes its folders back and adopts the running job"
stop_daemon agent-n1 || true
start_agent n1 "$spec"
wait_node n1 up
assert_eq "$(daemon_pid agent-n1)" "$(tr -d '\n' <"$PHX_RUN_DIR/agent-n1/.agent.lock")" "pid in the lock file"
assert_eq RUNNING "$(job_field "$job" state)" "the job after the restart"
phx cancel "$job"
wait_job "$job" CANCELLED
