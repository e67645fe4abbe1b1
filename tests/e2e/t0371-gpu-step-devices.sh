#!/usr/bin/env bash
# timeout: 180
# GPU isolation of steps: the ranks of `srun`/`phx run` inside a job run in
# the job's devices cgroup (v1), so a rank cannot open the device file of a
# GPU of the node that is not the job's; under --gpus-per-task each rank
# only its own GPUs' (a child cgroup of the job's).  So are the ranks of a
# job adopted by a restarted agent.  acct_steps records each step's GPUs
# (alloc_gpus, AllocTRES's gres/gpu), as phx acct shows them.
# n1 is the 3-GPU XML fixture (GPUs 0 and 1 on NUMA domain 0, GPU 2 on 1);
# a fake tree ($PHX_GPU_SYSROOT) gives each GPU one DRM render node, which
# the test makes as device files of its own: GPU 0 is 1:5 (as /dev/zero),
# GPU 1 1:7 (/dev/full), GPU 2 1:8 (/dev/random).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

[[ -w /sys/fs/cgroup/devices ]] || fail "needs a writable cgroup v1 devices hierarchy"
test_user phxgi
phx_setup
chmod a+x "$PHX_TEST_DIR"
sed -i "/^client: {/a\\    dsn = \"$PHX_DSN\";" "$PHX_CONFIG"
root=$PHX_TEST_DIR/sysroot
dev=$PHX_TEST_DIR/dev
mkdir -p "$dev"
chmod a+rx "$dev"
minor=(5 7 8)
pci=(0000:01:00.0 0000:02:00.0 0000:82:00.0)
for g in 0 1 2; do
    d=$root/sys/bus/pci/devices/${pci[$g]}/drm/renderD$((128 + g))
    mkdir -p "$d"
    echo "1:${minor[$g]}" >"$d/dev"
    mknod -m 0666 "$dev/gpu$g" c 1 "${minor[$g]}"
done
# What a process can open: "CVD=0,1 g0=ok g1=ok g2=denied".
cat >"$PHX_TEST_DIR/probe.sh" <<S
#!/bin/sh
printf 'CVD=%s' "\${CUDA_VISIBLE_DEVICES-unset}"
for g in 0 1 2; do
    if (: <"$dev/gpu\$g") 2>/dev/null; then printf ' g%s=ok' \$g; else printf ' g%s=denied' \$g; fi
done
echo
S
chmod a+rx "$PHX_TEST_DIR/probe.sh"
probe=$PHX_TEST_DIR/probe.sh
start_master
PHX_GPU_SYSROOT=$root start_agent n1 "xml:$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml"
wait_node n1 up
start_batchd
devroot=/sys/fs/cgroup/devices/phx-test-$(basename "$PHX_TEST_DIR")

as() { as_user "$@"; }
home=$(getent passwd phxgi | cut -d: -f6)
rm -f "$home"/go.* "$home"/phx-*.out

# 1. A job with GPUs 0 and 1: its script and every rank of its steps can
#    open those, not GPU 2's; with --gpus-per-task=1 a rank only its own.
cat >"$home/steps.sh" <<S
#!/bin/bash
#SBATCH -n 2 --gres=gpu:2 -t 1
echo "script \$($probe)"
srun -n 2 -l $probe | sort
srun -n 2 -l --gpus-per-task=1 $probe | sort
srun -n 1 --gpus-per-task=1 sh -c 'echo "one \$($probe)"'
S
chown phxgi "$home/steps.sh"
job=$(as phxgi phx submit --parsable steps.sh)
wait_job "$job" COMPLETED 60
out=$(cat "$home/phx-$job.out")
note "$out"
assert_contains "$out" "script CVD=0,1 g0=ok g1=ok g2=denied"
assert_contains "$out" "0: CVD=0,1 g0=ok g1=ok g2=denied
1: CVD=0,1 g0=ok g1=ok g2=denied"
assert_contains "$out" "0: CVD=0 g0=ok g1=denied g2=denied
1: CVD=1 g0=denied g1=ok g2=denied"
assert_contains "$out" "one CVD=0 g0=ok g1=denied g2=denied"
# The job's devices cgroup and its steps' children went with it.
wait_for 10 sh -c "! find '$devroot' -mindepth 1 -type d 2>/dev/null | grep -q ."

# 2. acct_steps: the GPUs of each step (the batch step's: the job's on its
#    node), sacct's AllocTRES, and phx acct showing them.
assert_eq "batch|2|cpu=2,node=1,gres/gpu=2 0|2|cpu=2,node=1,gres/gpu=2 1|2|cpu=2,node=1,gres/gpu=2 2|1|cpu=1,node=1,gres/gpu=1" \
    "$(psql_q "SELECT string_agg(concat_ws('|', step_id, alloc_gpus,
        regexp_replace(alloc_tres, ',mem=[0-9]+[MG]', '')), ' ' ORDER BY step_order)
        FROM acct_steps WHERE job_id = $job")"
assert_eq "t" "$(psql_q "SELECT bool_and(gpu_time_s = elapsed_s * alloc_gpus)
        FROM acct_steps WHERE job_id = $job")"
out=$(phx acct -P -n -a -j "$job" --format JobID,AllocGPUS)
note "$out"
assert_eq "$job|2
$job.batch|2
$job.0|2
$job.1|2
$job.2|1" "$out"

# 3. A job adopted by a restarted agent: its step's rank joins its devices
#    cgroup too (found again at the restart).
cat >"$home/adopted.sh" <<S
#!/bin/bash
#SBATCH -n 1 --gres=gpu:1 -t 1
while [ ! -e "\$HOME/go.\$PHX_JOB_ID" ]; do sleep 0.2; done
srun -n 1 sh -c 'echo "adopted \$($probe)"'
S
chown phxgi "$home/adopted.sh"
job2=$(as phxgi phx submit --parsable adopted.sh)
wait_job "$job2" RUNNING 30
stop_daemon agent-n1
PHX_GPU_SYSROOT=$root start_agent n1 "xml:$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml"
wait_node n1 up
wait_for 10 grep -q "adopted, running" "$PHX_TEST_DIR/agent-n1.log"
touch "$home/go.$job2"
wait_job "$job2" COMPLETED 60
out=$(cat "$home/phx-$job2.out")
note "$out"
assert_contains "$out" "adopted CVD=0 g0=ok g1=denied g2=denied"

# 4. Fail closed: the job's devices cgroup gone (its script moved out of
#    it by hand), a rank that cannot join it, or make its own child of it,
#    does not run.
cat >"$home/gone.sh" <<S
#!/bin/bash
#SBATCH -n 1 --gres=gpu:1 -t 1
while [ ! -e "\$HOME/go.\$PHX_JOB_ID" ]; do sleep 0.2; done
srun -n 1 $probe 2>&1; echo "rc=\$?"
S
chown phxgi "$home/gone.sh"
job3=$(as phxgi phx submit --parsable gone.sh)
wait_job "$job3" RUNNING 30
wait_for 10 sh -c "find '$devroot' -mindepth 2 -maxdepth 2 -type d | grep -q ."
cg=$(find "$devroot" -mindepth 2 -maxdepth 2 -type d | head -1)
for _ in $(seq 50); do
    pids=$(cat "$cg/cgroup.procs")
    [[ -z $pids ]] && break
    for p in $pids; do echo "$p" >/sys/fs/cgroup/devices/cgroup.procs 2>/dev/null || true; done
done
rmdir "$cg"
touch "$home/go.$job3"
wait_job "$job3" COMPLETED 60
out=$(cat "$home/phx-$job3.out")
note "$out"
assert_contains "$out" "could not join the devices cgroup of its GPUs"
assert_contains "$out" "rc=127"
case $out in *g0=*) fail "a rank ran outside its job's devices cgroup" ;; esac
note ok
