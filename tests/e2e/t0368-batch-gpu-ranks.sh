#!/usr/bin/env bash
# timeout: 150
# GPUs split among a step's ranks, and GPU accounting.
# --gpus-per-task (the job's, or srun's) gives each rank of a step its own
# GPUs of the job's on its node (CUDA_VISIBLE_DEVICES names them),
# --gpu-bind=closest (the default) those nearest the rank's cores, none all
# of them; a step asking more GPUs than the job has on a node is refused;
# other --gpu-bind values are refused by name.  acct_jobs records the
# GPUs (alloc_gpus, AllocTRES's gres/gpu, gpu_time_s), usage_daily the GPU
# seconds, and phx acct / sacct show them.  phx run outside a job asks its
# allocation for --gpus-per-task too.
# n1 has 4 GPUs: the 3-GPU XML fixture (two on NUMA domain 0, one on 1)
# with a fourth A100 added on NUMA domain 1 (PCI 0000:84:00.0).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxgr1
phx_setup
chmod a+x "$PHX_TEST_DIR"
sed -i "/^client: {/a\\    dsn = \"$PHX_DSN\";" "$PHX_CONFIG"
xml=$PHX_TEST_DIR/gpu4.xml
python3 - "$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml" "$xml" <<'PY'
import copy, sys
import xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
root = tree.getroot()
parent = next(b for b in root.iter("object") if b.get("gp_index") == "1025")
gpu = copy.deepcopy(next(d for d in root.iter("object") if d.get("pci_busid") == "0000:82:00.0"))
gpu.set("pci_busid", "0000:84:00.0")
for i, o in enumerate(gpu.iter("object")):
    o.set("gp_index", str(2000 + i))
    if o.get("name"):
        o.set("name", {"card3": "card4", "renderD130": "renderD131", "nvml2": "nvml3",
                       "cuda2": "cuda3"}[o.get("name")])
parent.insert(1, gpu)
tree.write(sys.argv[2], encoding="UTF-8", xml_declaration=True)
PY
start_master
start_agent n1 "xml:$xml"
wait_node n1 up
start_batchd

as() { as_user "$@"; }
home=$(getent passwd phxgr1 | cut -d: -f6)
rm -f "$home"/phx-*.out

# 1. --gpus-per-task=1 -n 2: the script sees both GPUs, each srun rank its
#    own; --gpu-bind=none gives both all; too many, or single:N, refused.
cat >"$home/split.sh" <<'S'
#!/bin/bash
#SBATCH --gpus-per-task=1 -n 2 -t 1
echo "script CVD=$CUDA_VISIBLE_DEVICES PGPT=$PHX_GPUS_PER_TASK"
srun -n 2 -l sh -c 'echo "CVD=$CUDA_VISIBLE_DEVICES ROCR=$ROCR_VISIBLE_DEVICES PHX_GPUS=$PHX_GPUS"' | sort
srun -n 2 -l --gpu-bind=none sh -c 'echo "none CVD=$CUDA_VISIBLE_DEVICES"' | sort
srun -n 2 --gpus-per-task=2 true 2>&1
srun --gpu-bind=single:1 true 2>&1
sleep 1
S
chown phxgr1 "$home/split.sh"
split=$(as phxgr1 phx submit --parsable split.sh)
wait_job "$split" COMPLETED 60
out=$(cat "$home/phx-$split.out")
note "$out"
assert_contains "$out" "script CVD=0,1 PGPT=1"
assert_contains "$out" "0: CVD=0 ROCR=0 PHX_GPUS=0
1: CVD=1 ROCR=1 PHX_GPUS=1"
assert_contains "$out" "0: none CVD=0,1
1: none CVD=0,1"
assert_contains "$out" 'phx run: --gpus-per-task=2: 2 tasks on "n1" need 4 GPUs, the job has 2 there'
assert_contains "$out" "srun: --gpu-bind=single:1 is not supported (closest or none)"

# phx run outside a job: its allocation asks --gpus-per-task (a job of its
# own, counted in the accounting below), and its ranks split the GPUs.
out=$(as phxgr1 "phx run -n 2 -l --gpus-per-task=1 sh -c 'echo \"alone CVD=\$CUDA_VISIBLE_DEVICES\"' 2>&1 | sort")
note "$out"
assert_contains "$out" "0: alone CVD=0
1: alone CVD=1"

# 2. closest: ranks on NUMA domains 0 and 1 of a job with all 4 GPUs get
#    GPU 0 (domain 0) and GPU 2 (domain 1), not 0 and 1; without
#    --gpus-per-task every rank sees the job's 4.
cat >"$home/near.sh" <<'S'
#!/bin/bash
#SBATCH --gres=gpu:4 -n 2 -c 4 -t 1
srun -n 2 -l -c 4 --gpus-per-task=1 sh -c 'echo "near CVD=$CUDA_VISIBLE_DEVICES"' | sort
srun -n 2 -l -c 4 sh -c 'echo "all CVD=$CUDA_VISIBLE_DEVICES"' | sort
S
chown phxgr1 "$home/near.sh"
near=$(as phxgr1 phx submit --parsable near.sh)
wait_job "$near" COMPLETED 60
out=$(cat "$home/phx-$near.out")
note "$out"
assert_contains "$out" "0: near CVD=0
1: near CVD=2"
assert_contains "$out" "0: all CVD=0,1,2,3
1: all CVD=0,1,2,3"

# 3. Accounting: the jobs' GPUs, AllocTRES, GPU time, usage_daily's GPU
#    seconds, and phx acct / sacct showing them.
row() { psql_q "SELECT concat_ws('|', $2) FROM acct_jobs WHERE job_id = $1"; }
assert_eq "2|t" "$(row "$split" "alloc_gpus, gpu_time_s = 2 * elapsed_s AND elapsed_s >= 1")"
tres=$(row "$split" alloc_tres)
note "AllocTRES of $split: $tres"
[[ $tres =~ ^cpu=2,mem=[0-9]+[MG],node=1,gres/gpu=2$ ]] || fail "AllocTRES of $split: $tres"
assert_eq "4" "$(row "$near" alloc_gpus)"
assert_contains "$(row "$near" alloc_tres)" "cpu=8,"
assert_contains "$(row "$near" alloc_tres)" ",node=1,gres/gpu=4"
assert_eq "t" "$(psql_q "SELECT sum(u.gpu_seconds) > 0
    AND sum(u.gpu_seconds) = (SELECT sum(gpu_time_s) FROM acct_jobs WHERE user_name = 'phxgr1')
    AND abs(sum(u.gpu_hours) - sum(u.gpu_seconds) / 3600.0) < 1e-9
    FROM usage_daily u WHERE user_name = 'phxgr1'")"
# The rebuild gives the same GPU seconds.
before=$(psql_q "SELECT sum(gpu_seconds) FROM usage_daily WHERE user_name = 'phxgr1'")
psql_q "SELECT phx_acct_usage_rebuild()" >/dev/null
assert_eq "$before" "$(psql_q "SELECT sum(gpu_seconds) FROM usage_daily WHERE user_name = 'phxgr1'")"
out=$(phx acct -X -P -n -a -j "$split" --format JobID,AllocGPUS,AllocTRES)
assert_eq "$split|2|$tres" "$out"
out=$("$PHX_SRC/scripts/compat/sacct" -X -P -n -a -j "$near" -o JobID,AllocTRES,GPUTimeRAW)
note "$out"
[[ $out =~ ^$near\|cpu=8,mem=[0-9]+[MG],node=1,gres/gpu=4\|[0-9]+$ ]] || fail "sacct: $out"
note ok
