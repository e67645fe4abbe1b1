#!/usr/bin/env bash
# timeout: 150
# phx cancel -s when one node of a running job does not get the signal
# (its agent away): the others still get it, and the answer says so per
# node ("signalled on 1 of 2 nodes; n2: agent "n2" is unreachable"), exit
# status 1; before, the whole job was reported failed ("could not signal")
# though a node had got it.  The agent back but without the step it ran:
# it signals nothing there (SIGNAL_DONE: no step of the job runs), which is
# not a failure: exit 0.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
d=$home/t0352.$$
mkdir "$d"
chown phxu1 "$d"

# One rank per node, each writing the signals it traps to $d/got.NODE.
cat >"$home/sig.sh" <<S
#!/bin/sh
#SBATCH -N 2 -n 2 -t 2
echo "batch on \$PHX_NODE"
phx run -N 2 -n 2 sh -c 'trap "echo USR1 >>$d/got.\$PHX_NODE" USR1
touch $d/ready.\$PHX_NODE
while [ ! -e $d/stop ]; do sleep 0.2; done' &
step=\$!
while [ ! -e $d/stop ]; do sleep 0.2; done
wait \$step
echo "step ended \$?"
S
chown phxu1 "$home/sig.sh"
id=$(as phx submit --parsable sig.sh)
wait_job "$id" RUNNING 30
wait_for 30 test -e "$d/ready.n1" -a -e "$d/ready.n2"
bn=$(sed -n 's/^batch on //p' "$home/phx-$id.out")
[[ $bn == n1 || $bn == n2 ]] || fail "batch node: '$bn'"
other=$([[ $bn == n1 ]] && echo n2 || echo n1)

# The node without the batch shell (and phx run) loses its agent: the
# master refuses its SIGNAL, the batch node gets it.
stop_daemon "agent-$other" KILL || true
wait_node "$other" unreachable 20
expect_fail as phx cancel -s USR1 "$id"
assert_contains "$PHX_OUT" "phx cancel: job $id: signalled on 1 of 2 nodes; $other: agent \"$other\" is unreachable"
wait_for 15 grep -q USR1 "$d/got.$bn"
[[ ! -e $d/got.$other ]] || fail "the node whose agent was away got it: $(cat "$d/got.$other")"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "signalled on 1 of 2 nodes"
assert_eq RUNNING "$(job_field "$id" state)" "the job runs on"

# Back: the agent recovers its task but not the step it ran there (a
# restarted agent knows no step): it takes the SIGNAL and finds nothing to
# signal, which is not a failure (as a node where no step runs); the batch
# node's rank gets it again, exit 0.
start_agent "$other" "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node "$other" up 30
wait_for 20 phx cancel -s USR1 "$id"
wait_for 15 eval "[[ \$(grep -c USR1 '$d/got.$bn') -ge 2 ]]"
[[ ! -e $d/got.$other ]] || fail "the node whose agent forgot its step got it: $(cat "$d/got.$other")"
phx cancel "$id"
wait_job "$id" CANCELLED 30
rm -rf "$d"
note ok
