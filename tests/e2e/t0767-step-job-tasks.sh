#!/usr/bin/env bash
# timeout: 180
# phx run (and srun, which calls it) inside a batch job without -n starts
# the job's tasks, laid out as the job's (PHX_TASKS_PER_NODE), as srun does
# inside a Slurm job; with -N alone one task per node (srun's rule), with
# --ntasks-per-node that many on each node, with -x one on each node left;
# -n as given.  Before, phx run without -n always started one task per node.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
bin=$PHX_BUILD/bin

# WHAT BODY: the ranks of the step, in order ("0 1 2 3")
ranks() {
    sed -n "s/^$1 \([0-9]*\) .*/\1/p" <<<"$2" | sort -n | xargs
}

# 1. -N 2 -n 4: two tasks on each node.
cat >"$home/four.sh" <<S
#!/bin/bash
#SBATCH -N 2 -n 4 -t 2
export PATH=$bin:\$PATH
phx run sh -c 'echo "run \$PHX_PROCID \$PHX_NODE"'
echo "run rc=\$?"
srun sh -c 'echo "srun \$PHX_PROCID \$PHX_NODE"'
echo "srun rc=\$?"
phx run -N 2 sh -c 'echo "N2 \$PHX_PROCID \$PHX_NODE"'
phx run -N 1 sh -c 'echo "N1 \$PHX_PROCID \$PHX_NODE"'
srun -N 1 sh -c 'echo "sN1 \$PHX_PROCID \$PHX_NODE"'
phx run --ntasks-per-node=1 sh -c 'echo "tpn \$PHX_PROCID \$PHX_NODE"'
phx run -x "\$PHX_NODE" sh -c 'echo "x \$PHX_PROCID \$PHX_NODE"'
phx run -n 3 sh -c 'echo "n3 \$PHX_PROCID \$PHX_NODE"'
S
chown phxu1 "$home/four.sh"
id=$(as_user phxu1 phx submit --parsable four.sh)
wait_job "$id" COMPLETED 60
body=$(cat "$home/phx-$id.out")
note "$body"
assert_contains "$body" "run rc=0"
assert_contains "$body" "srun rc=0"
assert_eq "0 1 2 3" "$(ranks run "$body")" "phx run: the job's 4 tasks"
assert_eq "2 n1 2 n2" "$(per_node run "$body")" "phx run: the job's layout"
assert_eq "0 1 2 3" "$(ranks srun "$body")" "srun: the job's 4 tasks"
assert_eq "2 n1 2 n2" "$(per_node srun "$body")" "srun: the job's layout"
assert_eq "1 n1 1 n2" "$(per_node N2 "$body")" "phx run -N 2: one task per node"
assert_eq "0" "$(ranks N1 "$body")" "phx run -N 1: one task"
assert_eq "0" "$(ranks sN1 "$body")" "srun -N 1: one task"
assert_eq "1 n1 1 n2" "$(per_node tpn "$body")" "phx run --ntasks-per-node=1"
assert_eq "0" "$(ranks x "$body")" "phx run -x its node: one task on the other"
assert_eq "0 1 2" "$(ranks n3 "$body")" "phx run -n 3"

# 2. -N 2 -n 3: the job's 3 tasks, as many on each node as the job has.
cat >"$home/three.sh" <<S
#!/bin/bash
#SBATCH -N 2 -n 3 -t 2
export PATH=$bin:\$PATH
echo "layout \$PHX_TASKS_PER_NODE first \$PHX_NODE"
phx run sh -c 'echo "run \$PHX_PROCID \$PHX_NODE"'
S
chown phxu1 "$home/three.sh"
id=$(as_user phxu1 phx submit --parsable three.sh)
wait_job "$id" COMPLETED 60
body=$(cat "$home/phx-$id.out")
note "$body"
assert_eq "0 1 2" "$(ranks run "$body")" "phx run: the job's 3 tasks"
read -r _ layout _ first <<<"$(grep '^layout ' <<<"$body")"
other=n1
[[ $first == n1 ]] && other=n2
want="${layout%%,*} $first ${layout##*,} $other"
assert_eq "$want" "$(sed -n 's/^run [0-9]* //p' <<<"$body" | sort | uniq -c |
    awk -v f="$first" '{c[$2]=$1} END {for (n in c) if (n == f) a=c[n] " " n; else b=c[n] " " n; print a " " b}')" \
    "phx run: the job's layout $layout (first node $first)"
note ok
