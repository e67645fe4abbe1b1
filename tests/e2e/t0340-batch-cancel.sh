#!/usr/bin/env bash
# timeout: 90
# Cancelling a running 2-node job kills its processes on every node (the
# script on the first, the holder on the second); the time limit ends a job
# as TIMEOUT; the sbatch/squeue/scancel wrappers work inside a job.
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
printf '#!/bin/sh\n#SBATCH -N 2 -t 5\nsleep 307\n' >"$home/two.sh"
chown phxu1 "$home/two.sh"
id=$(as phx submit --parsable two.sh)
wait_job "$id" RUNNING 30
wait_for 10 pgrep -u phxu1 -f "sleep 307"
wait_for 10 pgrep -u phxu1 -f "sleep 2147483647"
assert_eq "n[1-2]" "$(job_field "$id" node_list)"
as phx cancel "$id"
wait_job "$id" CANCELLED 20
wait_for 15 sh -c '! pgrep -u phxu1 -f "sleep (307|2147483647)" >/dev/null'
assert_eq "CANCELLED|$(id -u phxu1)" "$(psql_q "SELECT state, cancel_uid FROM jobs WHERE id = $id")"

# Time limit: TIMEOUT.
printf '#!/bin/sh\n#SBATCH -t 0:02\nsleep 308\n' >"$home/slow.sh"
chown phxu1 "$home/slow.sh"
id2=$(as phx submit --parsable slow.sh)
wait_job "$id2" TIMEOUT 30
wait_for 10 sh -c '! pgrep -u phxu1 -f "sleep 308" >/dev/null'

# The Slurm wrappers on the job's PATH.
cat >"$home/wrap.sh" <<'S'
#!/bin/sh
#SBATCH -t 1
inner=$(sbatch --wrap 2>&1 | head -1)
printf '#!/bin/sh\nsleep 30\n' > "$HOME/inner.sh"
out=$(sbatch "$HOME/inner.sh")
echo "$out"
id=${out##* }
squeue --me | grep -q " $id " && echo "squeue sees $id"
scancel "$id" && echo "scancel ok"
S
chown phxu1 "$home/wrap.sh"
id3=$(as phx submit --parsable wrap.sh)
wait_job "$id3" COMPLETED 30
out=$(cat "$home/phx-$id3.out")
note "$out"
assert_contains "$out" "Submitted batch job"
assert_contains "$out" "squeue sees"
assert_contains "$out" "scancel ok"
note ok
