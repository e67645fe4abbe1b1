#!/usr/bin/env bash
# timeout: 150
# sbatch --signal: with B: the batch shell alone gets the signal, that many
# seconds before the time limit (not its children); without B: the ranks of
# the job's steps on every node get it, and not the batch shell.  Bad values
# are refused at submission with file:line, nothing stored.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='kill_grace = 1;'
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

# B: the batch shell, 15 s before a 20 s limit: about 5 s after the start.
# A child of the shell that would report the signal must not get it.
cat >"$home/batch.sh" <<'S'
#!/bin/sh
#SBATCH -t 0:20 --signal=B:USR1@15
start=$(date +%s)
sh -c 'trap "echo child got USR1" USR1; while :; do sleep 0.2; done' &
trap 'echo "shell got USR1 after $(( $(date +%s) - start )) s"; kill $!; exit 0' USR1
echo started
while :; do sleep 0.2; done
S
chown phxu1 "$home/batch.sh"
id=$(as phx submit --parsable batch.sh)
assert_eq "B:USR1@15" "$(phx show "$id" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["spec"]["signal"])')" \
    "canonical --signal in phx show --json"
wait_job "$id" COMPLETED 40
out=$(cat "$home/phx-$id.out")
note "$out"
assert_contains "$out" "started"
assert_contains "$out" "shell got USR1 after"
assert_not_contains "$out" "child got USR1"
after=$(printf '%s\n' "$out" | sed -n 's/.*after \([0-9]*\) s/\1/p')
[[ $after -ge 3 && $after -le 9 ]] || fail "signal came $after s after the start, not ~5"
wait_for 10 grep -q "signal 10, 15 s before its time limit: 1 program (the task.s own)" \
    "$PHX_TEST_DIR"/agent-n[12].log

# Without B: the ranks of a 2-node step, not the batch shell (whose trap
# would print after the step returns).
cat >"$home/steps.sh" <<'S'
#!/bin/sh
#SBATCH -N 2 -n 2 -t 0:20 --signal=USR2@15
trap 'echo "batch shell got USR2"' USR2
phx run -N 2 -n 2 sh -c 'trap "echo rank \$PHX_PROCID on \$PHX_NODE got USR2; exit 0" USR2; while :; do sleep 0.2; done'
echo "step ended $?"
sleep 1
S
chown phxu1 "$home/steps.sh"
id2=$(as phx submit --parsable steps.sh)
wait_job "$id2" COMPLETED 40
out=$(cat "$home/phx-$id2.out")
note "$out"
got=$(grep -o 'rank [01] on n[12] got USR2' <<<"$out" | sort | tr '\n' ' ')
[[ $got == "rank 0 on n1 got USR2 rank 1 on n2 got USR2 " ||
    $got == "rank 0 on n2 got USR2 rank 1 on n1 got USR2 " ]] ||
    fail "both ranks, one on each node, should get USR2: $got"
assert_contains "$out" "step ended 0"
assert_not_contains "$out" "batch shell got USR2"
wait_for 10 grep -q "signal 12, 15 s before its time limit: 1 process groups of its steps' ranks" \
    "$PHX_TEST_DIR"/agent-n[12].log
assert_eq 2 "$(cat "$PHX_TEST_DIR"/agent-n[12].log | grep -c "signal 12, 15 s before its time limit: 1 process groups")" \
    "each node's agent signalled its rank"

# Refused, with where it came from; nothing stored.
before=$(psql_q "SELECT count(*) FROM jobs")
printf '#!/bin/sh\n#SBATCH -t 5\n#SBATCH --signal=R:USR1\ntrue\n' >"$home/bad.sh"
chown phxu1 "$home/bad.sh"
expect_fail as phx submit bad.sh
assert_contains "$PHX_OUT" "bad.sh:3"
assert_contains "$PHX_OUT" "R: (a signal at the end of a reservation) is not supported"
expect_fail as phx submit --signal=FOO@10 batch.sh
assert_contains "$PHX_OUT" 'unknown signal "FOO"'
expect_fail as phx submit --signal=USR1@70000 batch.sh
assert_contains "$PHX_OUT" "0 to 65535 seconds"
assert_eq "$before" "$(psql_q "SELECT count(*) FROM jobs")" "nothing stored"
# A warning at or above the time limit is taken, with a warning.
out=$(as phx submit -t 0:10 --signal=USR1@30 --begin=now+3600 batch.sh 2>&1)
assert_contains "$out" "--signal=USR1@30: the time limit is 10 s, so the signal comes as the job starts"
as phx cancel "$(sed -n 's/^Submitted job //p' <<<"$out")"
note "ok"
