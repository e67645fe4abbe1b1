#!/usr/bin/env bash
# timeout: 180
# A job laid out "1,2" (its first node, by its node list n[1-2], holds one
# task, the other two): PHX_TASKS_PER_NODE follows PHX_JOB_NODELIST and the
# script runs on n1, as in Slurm, and a bare `phx run` or `srun` starts the
# job's tasks as the job has them: 1 on n1 (rank 0), 2 on n2, block or
# cyclic.  An explicit -n spreads evenly instead, as srun's options
# override the job's layout.  Before, the master spread the job's 3 tasks
# evenly, node 0 taking the extra one: 2 on n1 and 1 on n2 (t0767 failed so
# once the job's nodes followed their list); and before that the job's
# nodes followed the offers, the script on the node of 2.
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

# WHAT BODY: "rank:node" of each rank, by rank ("0:n1 1:n2 2:n2")
rank_nodes() {
    sed -n "s/^$1 \([0-9]*\) \(.*\)/\1:\2/p" <<<"$2" | sort -n | xargs
}

# one core of n1 taken: a job of 3 tasks on 2 nodes then gets 1 there
cat >"$home/hold.sh" <<S
#!/bin/bash
#SBATCH -w n1 -n 1 -t 2
sleep 120
S
chown phxu1 "$home/hold.sh"
hold=$(as_user phxu1 phx submit --parsable hold.sh)
wait_job "$hold" RUNNING 30

cat >"$home/three.sh" <<S
#!/bin/bash
#SBATCH -N 2 -n 3 -t 2
export PATH=$bin:\$PATH
echo "layout \$PHX_TASKS_PER_NODE list \$PHX_JOB_NODELIST node \$PHX_NODE id \$PHX_NODEID"
phx run sh -c 'echo "run \$PHX_PROCID \$PHX_NODE"'
srun sh -c 'echo "srun \$PHX_PROCID \$PHX_NODE"'
phx run -m cyclic sh -c 'echo "cyc \$PHX_PROCID \$PHX_NODE"'
srun -l -c 1 sh -c 'echo "c1 \$PHX_PROCID \$PHX_NODE"' | sed 's/^[0-9]*: //'
phx run -n 3 sh -c 'echo "n3 \$PHX_PROCID \$PHX_NODE"'
S
chown phxu1 "$home/three.sh"
id=$(as_user phxu1 phx submit --parsable three.sh)
wait_job "$id" COMPLETED 90
body=$(cat "$home/phx-$id.out")
note "$body"
assert_contains "$body" "layout 1,2 list n[1-2] node n1 id 0" \
    "the job's layout and node 0 follow its node list"
assert_eq "0:n1 1:n2 2:n2" "$(rank_nodes run "$body")" "phx run: the job's layout, block"
assert_eq "1 n1 2 n2" "$(per_node run "$body")" "phx run: the job's layout"
assert_eq "0:n1 1:n2 2:n2" "$(rank_nodes srun "$body")" "srun: the job's layout"
assert_eq "0:n1 1:n2 2:n2" "$(rank_nodes cyc "$body")" "cyclic within the job's layout"
assert_eq "0:n1 1:n2 2:n2" "$(rank_nodes c1 "$body")" "srun -l -c 1: the job's layout"
assert_eq "0:n1 1:n1 2:n2" "$(rank_nodes n3 "$body")" "-n 3: spread evenly"
as_user phxu1 phx cancel "$hold"
note ok
