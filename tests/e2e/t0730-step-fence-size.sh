#!/usr/bin/env bash
# timeout: 200
# A fence whose gathered data cannot fit in one frame (master.max_frame)
# fails its step at once, with the reason on the stderr of `phx run`,
# instead of leaving the ranks in the fence until the job's time limit; a
# fence that fits still works, before and after.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0; max_frame = 1048576;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"
progs="$PHX_BUILD/tests/progs"
D=$PHX_TEST_DIR

# A job on both agents (phx.sh step_job): the task on n1 runs SCRIPT.
job() { step_job "$1"; }

# 2 × 100 kB gathered: fits.
job "$phx run -N2 -n2 $progs/pmix_fence 100000"
assert_eq 0 "$(cat "$D/rc")" "a fence that fits"
assert_eq 2 "$(grep -c 'fence SUCCESS' "$D/out")"

# 2 × 700 kB: each agent's share fits in a frame, the whole does not.
start=$(date +%s)
job "timeout 90 $phx run -N2 -n2 $progs/pmix_fence 700000"
rc=$(cat "$D/rc")
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "the step should fail at once, not hang (rc $rc)"
[ $(($(date +%s) - start)) -lt 30 ] || fail "the failed fence took too long"
assert_contains "$(cat "$D/out")" "failed: fence 0: the fence's data of 2 agents"
assert_contains "$(cat "$D/out")" "(master.max_frame 1048576)"
wait_for 10 sh -c '! pgrep -f "progs/[p]mix_fence" >/dev/null'
assert_contains "$(cat "$D/master.log")" "the fence's data of 2 agents"

# The master and agents serve on.
job "$phx run -N2 -n2 $progs/pmix_fence 1000"
assert_eq 0 "$(cat "$D/rc")" "a fence after the failed one"

# Two of three parts already too big while the third has not fenced (its
# rank sleeps 60 s): the step fails at once; the master held the data
# until the last part came, then failed.
start_agent n3 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n3 up
start=$(date +%s)
STEP_AGENTS=3 job "timeout 90 $phx run -N3 -n3 $progs/pmix_fence 600000 2 60"
[ "$(cat "$D/rc")" -ne 0 ] || fail "the step should fail"
[ $(($(date +%s) - start)) -lt 30 ] || fail "the fence failed only once its last part came"
assert_contains "$(cat "$D/out")" "the fence's data of 2 agents"
note ok
