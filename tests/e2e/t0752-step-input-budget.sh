#!/usr/bin/env bash
# timeout: 400
# The bounds on a step's standard input (1 MiB held by an agent, 1 MiB in
# flight) are per step, and nothing bounds how many steps a user runs at
# once: before, an agent (a root daemon, outside the job's cgroup) held
# about 1 MiB or more per step whose ranks read nothing from </dev/zero,
# without limit.  Now every agent has one input budget
# (agent.input_budget, 16 MiB by default) shared by all steps: the origin
# stops reading `phx run` when it is used up, a receiving agent lets the
# origin send only what is left, and each step may still have a chunk in
# flight, so a step whose ranks read gets every byte meanwhile.
#   STEPS steps on n1 and n2 whose ranks sleep, fed from /dev/zero, then one
#   whose ranks read 8 MB: the peak RSS of either agent grows by less than
#   the budget, 256 KiB per step and 4 MiB, and the reader's ranks get all
#   8 MB meanwhile.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"
D=$PHX_TEST_DIR
STEPS=${STEPS:-40}
STEP_MEM=1024 # the job holds STEPS phx run and their ranks
budget_kb=16384 # agent.input_budget's default

status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

size=8000000
head -c $size /dev/urandom >"$D/in.bin"

# $1: the idle steps' stdin.  They start, sleep $2 s while the reader runs,
# and end.
steps_script() {
    cat <<S
for i in \$(seq $STEPS); do
    timeout 90 $phx run -N2 -n2 sleep $2 <$1 >/dev/null 2>&1 &
done
sleep 10
timeout 60 $phx run -N2 -n2 --label sh -c 'wc -c' <$D/in.bin
echo "reader rc=\$?"
wait
echo "idle steps done"
S
}

a1=$(daemon_pid agent-n1)
a2=$(daemon_pid agent-n2)
# Once with /dev/null (no input at all): what as many steps cost without
# input, and the agents' allocations for them made once.
steps_script /dev/null 10 >"$D/null.sh"
h1=$(status_kb "$a1" VmHWM) h2=$(status_kb "$a2" VmHWM)
step_job "sh $D/null.sh"
assert_contains "$(cat "$D/out")" "0: $size"
assert_contains "$(cat "$D/out")" "1: $size"
n1=$(($(status_kb "$a1" VmHWM) - h1)) n2=$(($(status_kb "$a2" VmHWM) - h2))
note "peak RSS growth for $STEPS steps without input: agent-n1 $n1 kB, agent-n2 $n2 kB"

# Now from /dev/zero, read by no rank.
steps_script /dev/zero 20 >"$D/zero.sh"
h1=$(status_kb "$a1" VmHWM) h2=$(status_kb "$a2" VmHWM)
step_job "sh $D/zero.sh"
g1=$(($(status_kb "$a1" VmHWM) - h1)) g2=$(($(status_kb "$a2" VmHWM) - h2))
note "peak RSS growth for $STEPS steps fed from /dev/zero: agent-n1 $g1 kB, agent-n2 $g2 kB"
assert_contains "$(cat "$D/out")" "reader rc=0"
assert_contains "$(cat "$D/out")" "0: $size" "the reader's rank on n1 got every byte"
assert_contains "$(cat "$D/out")" "1: $size" "the reader's rank on n2 got every byte"
assert_contains "$(cat "$D/out")" "idle steps done"
# the budget; per step the chunk it may always take (64 KiB) and the frame
# buffer of its phx run's connection (128 KiB while it is read): 256 KiB;
# and 4 MiB for the rest.  Before, 40 steps grew n1 by 86 MiB, n2 by 44.
max=$((budget_kb + STEPS * 256 + 4096))
((g1 < max && g2 < max)) || fail "an agent held more than its input budget (kB: $g1 $g2, max $max)"
alive "$a1" && alive "$a2" || fail "an agent died"
note ok
