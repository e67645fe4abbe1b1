#!/usr/bin/env bash
# timeout: 150
# GPUs: an agent loaded from an XML topology with 3 GPUs (and a co-processor,
# which is not one) offers them; a framework accepting 2 GPUs by device id
# gets a task whose environment names them; a second ACCEPT of one of them
# is refused naming it, one by count gets the free one; the master records
# the tasks' GPUs and, restarted, allocates them again.  The GPUs' device
# files come from a fake tree ($PHX_GPU_SYSROOT): GPU 0 is NVIDIA minor 0,
# GPU 1's DRM render node is /dev/full (1:7), so the devices cgroup of a
# task without GPU 1 denies /dev/full.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxfw
PHX_MASTER_EXTRA='allow_unauthenticated = true; open_users = ["phxfw"]; offer_timeout = 30.0;'
phx_setup
start_master
root=$PHX_TEST_DIR/sysroot
mkdir -p "$root/proc/driver/nvidia/gpus/0000:01:00.0" \
    "$root/sys/bus/pci/devices/0000:02:00.0/drm/renderD129"
printf 'Model: \t\t A100\nDevice Minor: \t 0\n' >"$root/proc/driver/nvidia/gpus/0000:01:00.0/information"
echo 1:7 >"$root/sys/bus/pci/devices/0000:02:00.0/drm/renderD129/dev"
PHX_GPU_SYSROOT=$root start_agent n1 "xml:$PHX_SRC/tests/unit/fixtures/topo/gpu-2s2n8c-3gpu.xml"
wait_node n1 up
export FW_USER=phxfw
fw=("python3" "$PHX_SRC/tests/e2e/tools/gpu_fw.py" "$PHX_MASTER")
mkdir -m 1777 "$PHX_TEST_DIR/out"

out=$("${fw[@]}" first "$PHX_TEST_DIR/fw.json" "$PHX_TEST_DIR/out/a")
note "$out"
assert_contains "$out" "offer gpus 3 ids [0, 1, 2] numa [[0, 1], [2]]"
assert_contains "$out" "gpu-a TASK_RUNNING"
wait_for 10 test -s "$PHX_TEST_DIR/out/a"
assert_eq "CVD=0,1 ROCR=0,1 ORD=0,1 ORDER=PCI_BUS_ID PHX=0,1 full=ok" "$(cat "$PHX_TEST_DIR/out/a")"
# Its devices cgroup denies GPU 2's files: none here, so it denies nothing,
# but is made all the same (its steps' ranks' own would be below it).
devroot=/sys/fs/cgroup/devices/phx-test-$(basename "$PHX_TEST_DIR")
cga=$(find "$devroot" -mindepth 2 -type d -name '*gpu-a' 2>/dev/null)
[[ -n $cga ]] || fail "gpu-a has no devices cgroup"
assert_eq "a *:* rwm" "$(cat "$cga/devices.list")"
assert_eq "0-1" "$(psql_q "SELECT gpus FROM tasks WHERE task_id = 'gpu-a'")"

# GPUs 0 and 1 are gpu-a's: offered no more, and refused by name.
out=$("${fw[@]}" second b "$PHX_TEST_DIR/out/b")
note "$out"
assert_contains "$out" "offer gpus 1 ids [2] numa [[], [2]]"
assert_contains "$out" 'task b-taken on agent \"n1\": gpus[0]: GPU 0 (cuda0) is not in the offer'
assert_contains "$out" "b-count TASK_FINISHED"
assert_eq "CVD=2 ROCR=2 ORD=2 ORDER=PCI_BUS_ID PHX=2 full=denied" "$(cat "$PHX_TEST_DIR/out/b")"
# b-count's devices cgroup went with it.
wait_for 10 sh -c "! find '$devroot' -type d -name '*b-count' 2>/dev/null | grep -q ."
assert_eq "2" "$(psql_q "SELECT gpus FROM tasks WHERE task_id = 'b-count'")"
assert_eq "0" "$(psql_q "SELECT count(*) FROM tasks WHERE task_id = 'b-taken'")"

# A restarted master takes gpu-a's GPUs back from the database.
stop_daemon master
start_master
wait_node n1 up
pgrep -f "[s]leep 607" >/dev/null || fail "the master restart killed gpu-a"
out=$("${fw[@]}" second c "$PHX_TEST_DIR/out/c")
note "$out"
assert_contains "$out" "offer gpus 1 ids [2]"
assert_contains "$out" "GPU 0 (cuda0) is not in the offer"
assert_eq "CVD=2 ROCR=2 ORD=2 ORDER=PCI_BUS_ID PHX=2 full=denied" "$(cat "$PHX_TEST_DIR/out/c")"

# gpu-a ends: all three GPUs are offered again.
"${fw[@]}" teardown "$PHX_TEST_DIR/fw.json"
wait_for 20 sh -c '! pgrep -f "[s]leep 607" >/dev/null'
out=$("${fw[@]}" offer)
note "$out"
assert_contains "$out" "offer gpus 3 ids [0, 1, 2]"
note ok
