#!/usr/bin/env bash
# timeout: 150
# A node whose GPUs change model, their ids the same (a GPU swapped, the
# agent restarted): batchd's node refresh sees it, and a pending job of the
# new type may then run there (its nodes of the type are made again).
# n1 starts with 3 NVIDIA A100, n2 with 3 NVIDIA H100 (the same XML with
# the model renamed).  A model is the agent's text: n3's first GPU has a
# model with a newline in it ("NVIDIA L4\n7=NVIDIA L4"), which must not
# make a second L4 (a GPU 7) appear.
# n4 has GPUs of two models (GPU 0 an A100, 1 and 2 V100s): the planner
# counts them by model, so a job waiting for the A100 is reserved (a start
# time, a gang request), not planned to start on the free V100s.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxg1
phx_setup
chmod a+x "$PHX_TEST_DIR"
a100="$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml"
h100="$PHX_TEST_DIR/h100.xml"
sed 's/A100-SXM4-40GB/H100-SXM5-80GB/g; s/A100 SXM4 40GB/H100 SXM5 80GB/g' "$a100" >"$h100"
nl="$PHX_TEST_DIR/nl.xml"
sed '0,/NVIDIA A100-SXM4-40GB/s//NVIDIA L4\&#10;7=NVIDIA L4/' "$a100" >"$nl"
mixed="$PHX_TEST_DIR/mixed.xml"
sed '/name="nvml1"/,$ s/NVIDIA A100-SXM4-40GB/Tesla V100-SXM2-16GB/' "$a100" >"$mixed"
start_master
start_agent n1 "xml:$a100"
start_agent n2 "xml:$h100"
start_agent n3 "xml:$nl"
start_agent n4 "xml:$mixed"
wait_node n1 up
wait_node n2 up
wait_node n3 up
wait_node n4 up
start_batchd

as() { as_user "$@"; }
home=$(getent passwd phxg1 | cut -d: -f6)
rm -f "$home"/go.* "$home"/phx-*.out

cat >"$home/gpu.sh" <<'S'
#!/bin/bash
#SBATCH -t 2
echo "node=$PHX_JOB_NODELIST CVD=${CUDA_VISIBLE_DEVICES-unset}"
while [ ! -e "$HOME/go.$PHX_JOB_ID" ]; do sleep 0.2; done
S
chown phxg1 "$home/gpu.sh"

# n3 has one L4: 2 are refused at submit, 1 runs.
out=$(as phxg1 phx submit --gres=gpu:l4:2 gpu.sh 2>&1) && fail "2 L4 accepted: $out"
assert_contains "$out" 'no node of the cluster has 2 GPUs of type "l4" (the most on one: 1)'
l4=$(as phxg1 phx submit --parsable --gres=gpu:l4:1 gpu.sh)
wait_job "$l4" RUNNING 30
touch "$home/go.$l4"
wait_job "$l4" COMPLETED 30

# n2's H100s all taken; a 1-H100 job waits (n1 has none).
hold=$(as phxg1 phx submit --parsable --gres=gpu:h100:3 gpu.sh)
wait_job "$hold" RUNNING 30
one=$(as phxg1 phx submit --parsable --gres=gpu:h100:1 gpu.sh)
sleep 3
assert_eq PENDING "$(job_field "$one" state)"

# n1's GPUs become H100s (same ids): the job runs there.
stop_daemon agent-n1
start_agent n1 "xml:$h100"
wait_node n1 up
wait_job "$one" RUNNING 30
wait_for 10 test -s "$home/phx-$one.out"
assert_eq "node=n1 CVD=0" "$(cat "$home/phx-$one.out")"
touch "$home/go.$one" "$home/go.$hold"
wait_job "$one" COMPLETED 30
wait_job "$hold" COMPLETED 30

# n4's A100 taken: another a100 job is reserved at the first one's end,
# though n4 has 2 GPUs free (V100s: the master, which counts GPUs but not
# their models, may hold one of them for it), and then runs on the A100.
a1=$(as phxg1 phx submit --parsable -w n4 --gres=gpu:a100:1 gpu.sh)
wait_job "$a1" RUNNING 30
a2=$(as phxg1 phx submit --parsable -w n4 --gres=gpu:a100:1 -t 1 gpu.sh)
wait_for 20 grep -q "job $a2: gang request" "$PHX_TEST_DIR/batchd.log"
assert_eq PENDING "$(job_field "$a2" state)"
[[ -n $(job_field "$a2" expected_start) ]] || fail "job $a2 shows no expected start"
touch "$home/go.$a1"
wait_job "$a2" RUNNING 30
wait_for 10 test -s "$home/phx-$a2.out"
assert_eq "node=n4 CVD=0" "$(cat "$home/phx-$a2.out")"
touch "$home/go.$a2"
for id in "$a1" "$a2"; do wait_job "$id" COMPLETED 30; done
note ok
