#!/usr/bin/env bash
# timeout: 150
# GPUs in batch jobs: Slurm's --gres=gpu[:TYPE]:N, --gpus-per-node and -G
# place jobs only where the GPUs are free, and the script sees its GPUs in
# CUDA_VISIBLE_DEVICES (node-local indexes); a type names the GPUs' model;
# what no node has is refused at submit; a job without GPUs gets none; a
# job blocked on GPUs sends a gang request for them and the master holds
# them for it.
# n1 is loaded from an XML topology with 3 GPUs (NVIDIA A100, two on NUMA
# domain 0 and one on 1) and a co-processor; n2 has no GPU.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxg1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "xml:$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml"
start_agent n2 "synthetic:pack:2 numa:1 core:4 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd

as() { as_user "$@"; }
home=$(getent passwd phxg1 | cut -d: -f6)
rm -f "$home"/go.* "$home"/phx-*.out # a user's home outlives a run

# Each job prints what it sees and holds its GPUs until its file appears.
cat >"$home/gpu.sh" <<'S'
#!/bin/bash
#SBATCH -t 2
echo "node=$PHX_JOB_NODELIST CVD=${CUDA_VISIBLE_DEVICES-unset} PHX_GPUS=${PHX_GPUS-unset}"
while [ ! -e "$HOME/go.$PHX_JOB_ID" ]; do sleep 0.2; done
S
chown phxg1 "$home/gpu.sh"

two=$(as phxg1 phx submit --parsable --gres=gpu:a100:2 gpu.sh)
wait_job "$two" RUNNING 30
wait_for 10 test -s "$home/phx-$two.out"
assert_eq "node=n1 CVD=0,1 PHX_GPUS=0,1" "$(cat "$home/phx-$two.out")"
show=$(as phxg1 phx show "$two")
assert_contains "$show" "TresPerNode=gres/gpu:a100:2"

# One GPU left on n1: -G 1 gets it (index 2); a job without GPUs gets none.
one=$(as phxg1 phx submit --parsable -G 1 gpu.sh)
none=$(as phxg1 phx submit --parsable -w n1 gpu.sh)
wait_job "$one" RUNNING 30
wait_job "$none" RUNNING 30
wait_for 10 test -s "$home/phx-$one.out"
wait_for 10 test -s "$home/phx-$none.out"
assert_eq "node=n1 CVD=2 PHX_GPUS=2" "$(cat "$home/phx-$one.out")"
assert_eq "node=n1 CVD=unset PHX_GPUS=unset" "$(cat "$home/phx-$none.out")"

# No GPU free: a GPU job waits, though n1 and n2 have free cores.
wait3=$(as phxg1 phx submit --parsable --gpus-per-node=1 gpu.sh)
sleep 3
assert_eq PENDING "$(job_field "$wait3" state)"
touch "$home/go.$one"
wait_job "$one" COMPLETED 30
wait_job "$wait3" RUNNING 30
wait_for 10 test -s "$home/phx-$wait3.out"
assert_eq "node=n1 CVD=2 PHX_GPUS=2" "$(cat "$home/phx-$wait3.out")"

# EASY with GPUs: a job of all 3 GPUs waits for them, reserved at the end of
# the jobs holding them; a later 1-GPU job that would run past that start
# does not take the GPU freed meanwhile, though it is free and first.
big=$(as phxg1 phx submit --parsable --gres=gpu:3 -t 1 gpu.sh)
small=$(as phxg1 phx submit --parsable --gres=gpu:1 -t 10 gpu.sh)
touch "$home/go.$wait3"
wait_job "$wait3" COMPLETED 30
sleep 3
assert_eq "PENDING PENDING" "$(job_field "$big" state) $(job_field "$small" state)"
# The big job asks the master for its GPUs (a gang request of 3 GPUs on a
# node: n1 only), and the master holds n1's free GPU for it, not only cores
# (/state's held_gpus; lent to batchd now and then, so asked a few times).
wait_for 20 grep -q "job $big: gang request job-$big-[0-9]* for 1 any bundles of 1 cores and 0 GPUs each, 3 GPUs per node" "$PHX_TEST_DIR/batchd.log"
req=$(grep "gang request job-$big-" "$PHX_TEST_DIR/master.log" | tail -1)
assert_contains "$req" "MB and 3 GPUs more"
assert_contains "$req" "of 1 listed agents"
held_gpus() {
    master_state | python3 -c '
import json, sys
print(" ".join(f"{a['"'"'name'"'"']}:{a.get('"'"'held_gpus'"'"')}" for a in sorted(json.load(sys.stdin)["agents"], key=lambda a: a["name"])))'
}
got=
for _ in $(seq 50); do
    got=$(held_gpus)
    [[ $got == "n1:1 n2:0" ]] && break
    sleep 0.2
done
assert_eq "n1:1 n2:0" "$got" "GPUs held for job $big by node"
touch "$home/go.$two"
wait_job "$big" RUNNING 30
wait_for 10 test -s "$home/phx-$big.out"
assert_eq "node=n1 CVD=0,1,2 PHX_GPUS=0,1,2" "$(cat "$home/phx-$big.out")"
assert_eq PENDING "$(job_field "$small" state)"
touch "$home/go.$big"
wait_job "$small" RUNNING 30
touch "$home/go.$small"

# What no node has is refused at submit, naming the directive.
printf '#!/bin/sh\n#SBATCH --gres=gpu:h100:1\ntrue\n' >"$home/h100.sh"
out=$(as phxg1 phx submit h100.sh 2>&1) && fail "h100 accepted: $out"
note "$out"
assert_contains "$out" 'h100.sh:2: requested node configuration is not available: no node of the cluster has 1 GPU of type "h100" (the most on one: 0)'
out=$(as phxg1 phx submit --gres=gpu:4 gpu.sh 2>&1) && fail "gpu:4 accepted: $out"
assert_contains "$out" "has 4 GPUs (the most on one: 3)"
out=$(as phxg1 phx submit --gres=fpga:1 gpu.sh 2>&1) && fail "fpga accepted: $out"
assert_contains "$out" 'generic resource "fpga" is not supported'
assert_eq 6 "$(psql_q "SELECT count(*) FROM jobs")"

# The master recorded the GPUs of the jobs' tasks.
assert_eq "0-1" "$(psql_q "SELECT gpus FROM tasks WHERE task_id = '$two.0'")"
touch "$home/go.$none"
for id in "$two" "$none" "$wait3" "$big" "$small"; do wait_job "$id" COMPLETED 30; done

# A step of a GPU job (srun) sees the job's GPUs of its node.
cat >"$home/step.sh" <<'S'
#!/bin/bash
#SBATCH --gres=gpu:2 -t 1
srun -n1 sh -c 'echo "step CVD=$CUDA_VISIBLE_DEVICES PHX_GPUS=$PHX_GPUS"'
S
chown phxg1 "$home/step.sh"
step=$(as phxg1 phx submit --parsable step.sh)
wait_job "$step" COMPLETED 30
assert_eq "step CVD=0,1 PHX_GPUS=0,1" "$(cat "$home/phx-$step.out")"
note ok
