#!/usr/bin/env bash
# timeout: 240
# What a step's launch costs the master grows with the environment plus the
# nodes, not with their product.  Every agent's STEP_LAUNCH carried the
# whole request (argv, env of up to 4 MiB, cwd) and the step's whole node
# and rank map in its own serialised header: a 1000-node step with a 4 MiB
# environment made the master queue about 4 GB.  The parts common to every
# agent are now serialised once and queued on each agent's connection by
# reference (doc/steps.md, "Launch frames").  Here 10 agents run one step
# whose environment holds 1.5 MB: the master's peak RSS rose by some 10
# copies of it before, by a few now.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
nagents=10
phx_setup
start_master
master_pid=$PHX_LAST_PID
for i in $(seq 1 $nagents); do
    start_agent "n$i" "synthetic:pack:1 numa:1 core:1 pu:1"
done
for i in $(seq 1 $nagents); do
    wait_node "n$i" up 60
done
phx="$PHX_BUILD/bin/phx"
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$master_pid/status"; }
# let the agents' registrations settle before the baseline
sleep 2
base=$(kb VmHWM)
note "master before the step: VmRSS $(kb VmRSS) kB, VmHWM $base kB"

# 15 variables of 100,000 bytes (execve takes at most 128 KiB in one)
STEP_AGENTS=$nagents step_job "
i=0
while [ \$i -lt 15 ]; do
    eval \"export T_BIGENV\$i=\$(head -c 100000 /dev/zero | tr '\\0' x)\"
    i=\$((i + 1))
done
env | wc -c
timeout 60 $phx run -N $nagents -n $nagents sh -c 'echo \"rank \$PHX_PROCID env \${#T_BIGENV14}\"'
echo \"rc=\$?\"
"
out=$(cat "$PHX_TEST_DIR/out")
assert_contains "$out" "rc=0"
assert_eq $nagents "$(grep -c 'env 100000$' <<<"$out")" "ranks that got the environment"
peak=$(kb VmHWM)
grew=$((peak - base))
note "master after the step: VmRSS $(kb VmRSS) kB, VmHWM $peak kB: the peak rose by $grew kB"
# one copy of the environment is 1.5 MB: the request's frame, its parsed
# JSON and the shared launch text make about 5 (7 MB); one per agent made
# 10 more (26 MB before)
((grew < 12000)) || fail "the master's peak grew by $grew kB for a 1.5 MB environment on $nagents agents"
curl -sf "http://$PHX_MASTER/health" >/dev/null || fail "the master does not answer"
note ok
