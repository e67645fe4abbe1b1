#!/usr/bin/env bash
# timeout: 180
# A step whose launch cannot be sent to one of its agents fails, cleanly.
# A STEP_LAUNCH above max_frame was not sent (logged only), and nothing else
# happened: the agents launched went on, `phx run` waited forever, and the
# step's record stayed RUNNING.  Now `phx run` is told why and exits 1, the
# ranks already launched are killed, the step ends FAILED, and the job's
# next step runs.  Here the launch for n2 (512 ranks of 32 cores each) is
# above a 32 KiB max_frame, n1's (one core each) is not: n1's ranks start
# and are killed.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxlf1
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
PHX_MASTER_EXTRA='max_frame = 32768;'
PHX_AGENT_EXTRA='max_frame = 32768;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:1 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:32 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd

home=$(getent passwd phxlf1 | cut -d: -f6)
bin=$PHX_BUILD/bin
cat >"$home/big.sh" <<S
#!/bin/bash
#PHX -N 2
#PHX --exclusive
#PHX --time=3
export PATH=$bin:\$PATH
timeout 60 phx run -N 2 -n 1024 -c 32 sleep 37
echo "big rc=\$?"
phx run -N 2 -n 2 sh -c 'echo next on \$PHX_NODE'
echo "next rc=\$?"
S
chown phxlf1 "$home/big.sh"
id=$(as_user phxlf1 phx submit --parsable big.sh)
wait_job "$id" COMPLETED 90
body=$(cat "$home/phx-$id.out")
note "$body"
assert_contains "$body" 'phx run: step failed: could not launch on agent "n2": frame "STEP_LAUNCH" of '
assert_contains "$body" "exceeds the maximum of 32512"
assert_contains "$body" "big rc=1"
assert_contains "$body" "next on n1"
assert_contains "$body" "next on n2"
assert_contains "$body" "next rc=0"
log=$(cat "$PHX_TEST_DIR/master.log")
assert_contains "$log" 'could not launch on agent "n2"'
assert_contains "$log" "ended with exit code 1 (FAILED 1:0)"
# n1's ranks were launched, and killed
assert_contains "$(cat "$PHX_TEST_DIR/agent-n1.log")" "local ranks started"
[[ -z $(pgrep -u phxlf1 -f "sleep 37") ]] || fail "ranks of the failed step still run"
step() {
    psql_q "SELECT concat_ws('|', $2) FROM acct_steps WHERE job_id = $id AND step_id = '$1'"
}
wait_for 10 eval '[[ $(step 1 state) == COMPLETED ]]'
assert_eq "FAILED|1:0|1024|2" "$(step 0 "state, exit_code, ntasks, alloc_nodes")"
curl -sf "http://$PHX_MASTER/health" >/dev/null || fail "the master does not answer"
note ok
