#!/usr/bin/env bash
# timeout: 180
# GPU isolation of steps, the cases t0371 leaves out: a job with all of the
# node's GPUs still gets a devices cgroup, so that its ranks under
# --gpus-per-task each see only their own GPU (its cgroup denied nothing,
# so none was made, and the ranks saw every GPU); and a job whose devices
# cgroup went while the agent was away has it made again when the restarted
# agent adopts the job (its ranks ran with every GPU of the node).
# Same fixture and fake device files as t0371: n1 has 3 GPUs, GPU 0 is 1:5
# (as /dev/zero), GPU 1 1:7 (/dev/full), GPU 2 1:8 (/dev/random).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

[[ -w /sys/fs/cgroup/devices ]] || fail "needs a writable cgroup v1 devices hierarchy"
test_user phxgw
phx_setup
chmod a+x "$PHX_TEST_DIR"
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
xml="xml:$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml"
start_master
PHX_GPU_SYSROOT=$root start_agent n1 "$xml"
wait_node n1 up
start_batchd
devroot=/sys/fs/cgroup/devices/phx-test-$(basename "$PHX_TEST_DIR")
home=$(getent passwd phxgw | cut -d: -f6)
rm -f "$home"/go.* "$home"/phx-*.out

# A probe line sees only the GPU its CUDA_VISIBLE_DEVICES names.
only_own() {
    local line=$1 cvd
    cvd=${line#*CVD=}
    cvd=${cvd%% *}
    [[ $cvd =~ ^[0-2]$ ]] || fail "not one GPU: $line"
    [[ $(grep -o '=ok' <<<"$line" | wc -l) == 1 && $line == *"g$cvd=ok"* ]] ||
        fail "a rank sees more than its GPU $cvd: $line"
}

# 1. All three GPUs: the script sees them all, each rank only its own.
cat >"$home/whole.sh" <<S
#!/bin/bash
#SBATCH -n 3 --gres=gpu:3 -t 1
echo "script \$($probe)"
srun -n 3 -l --gpus-per-task=1 $probe | sort
S
chown phxgw "$home/whole.sh"
job=$(as_user phxgw phx submit --parsable whole.sh)
wait_job "$job" COMPLETED 60
out=$(cat "$home/phx-$job.out")
note "$out"
assert_contains "$out" "script CVD=0,1,2 g0=ok g1=ok g2=ok"
n=0
while read -r line; do
    only_own "$line"
    n=$((n + 1))
done < <(grep '^[0-2]: CVD=' <<<"$out")
assert_eq 3 "$n"
wait_for 10 sh -c "! find '$devroot' -mindepth 1 -type d 2>/dev/null | grep -q ."

# 2. The job's devices cgroup gone while the agent was away (its script
#    moved out by hand): the restarted agent makes it again for its steps.
cat >"$home/gone.sh" <<S
#!/bin/bash
#SBATCH -n 1 --gres=gpu:1 -t 1
while [ ! -e "\$HOME/go.\$PHX_JOB_ID" ]; do sleep 0.2; done
srun -n 1 sh -c 'echo "adopted \$($probe)"' 2>&1; echo "rc=\$?"
S
chown phxgw "$home/gone.sh"
job2=$(as_user phxgw phx submit --parsable gone.sh)
wait_job "$job2" RUNNING 30
wait_for 10 sh -c "find '$devroot' -mindepth 2 -maxdepth 2 -type d | grep -q ."
cg=$(find "$devroot" -mindepth 2 -maxdepth 2 -type d | head -1)
stop_daemon agent-n1
for _ in $(seq 50); do
    pids=$(cat "$cg/cgroup.procs")
    [[ -z $pids ]] && break
    for p in $pids; do echo "$p" >/sys/fs/cgroup/devices/cgroup.procs 2>/dev/null || true; done
done
rmdir "$cg"
PHX_GPU_SYSROOT=$root start_agent n1 "$xml"
wait_node n1 up
wait_for 10 grep -q "adopted, running" "$PHX_TEST_DIR/agent-n1.log"
[[ -d $cg ]] || fail "the adopted job's devices cgroup was not made again"
touch "$home/go.$job2"
wait_job "$job2" COMPLETED 60
out=$(cat "$home/phx-$job2.out")
note "$out"
assert_contains "$out" "rc=0"
only_own "$(grep '^adopted ' <<<"$out")"
note ok
