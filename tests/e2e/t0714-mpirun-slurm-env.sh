#!/usr/bin/env bash
# timeout: 180
# With batchd.slurm_env (SLURM_* in batch scripts), OpenMPI's mpirun
# believes it runs under Slurm and starts its daemons with
#   srun --ntasks-per-node=1 --kill-on-bad-exit --cpu_bind=none ... orted
# which the srun wrapper maps onto phx run (it refused --kill-on-bad-exit
# before, so mpirun failed in every such job).  -K ends a step on every
# node as soon as a rank exits badly; without it the others run on.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
PHX_BATCHD_EXTRA='slurm_env = true;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
start_batchd
home1=$(getent passwd phxu1 | cut -d: -f6)
bin=$PHX_BUILD/bin
hello=$PHX_BUILD/tests/progs/mpi_hello
rm -f "$home1"/phx-*.out

cat >"$home1/slurm.sh" <<S
#!/bin/bash
#SBATCH -N 2
#SBATCH -n 4
#SBATCH --time=2
export PATH=$bin:\$PATH
echo "job \$SLURM_JOB_ID nodes \$SLURM_JOB_NODELIST"
mpirun -np 4 $hello | sort
echo "mpirun rc=\${PIPESTATUS[0]}"
# rank 1 fails at once: with -K rank 0's sleep is killed, the step ends 3
t0=\$(date +%s)
srun -K -n 2 sh -c 'if [ \$PHX_PROCID = 1 ]; then exit 3; fi; sleep 60'
echo "killed rc=\$? after \$((\$(date +%s) - t0)) s"
srun --kill-on-bad-exit=0 -n 2 sh -c 'if [ \$PHX_PROCID = 1 ]; then exit 3; fi; sleep 2; echo rank0 done'
echo "kept rc=\$?"
S
chown phxu1 "$home1/slurm.sh"
id=$(as_user phxu1 phx submit --parsable slurm.sh)
wait_job "$id" COMPLETED 150
body=$(cat "$home1/phx-$id.out")
note "$body"
assert_contains "$body" "job $id nodes n[1-2]"
assert_contains "$body" "mpirun rc=0"
assert_eq 4 "$(grep -c '^rank [0-3] of 4 sum 10' <<<"$body")" "ranks of mpirun -np 4"
assert_eq 2 "$(grep -c '^rank [0-3] of 4 sum 10 node n2' <<<"$body")" "of them on n2"
assert_not_contains "$body" "not supported"
secs=$(sed -n 's/^killed rc=3 after \([0-9]*\) s$/\1/p' <<<"$body")
[[ -n $secs && $secs -lt 30 ]] || fail "srun -K did not end the step at rank 1's exit: $body"
assert_contains "$body" "rank0 done"
assert_contains "$body" "kept rc=3"
assert_contains "$(cat "$PHX_TEST_DIR"/agent-n*.log)" "exited with code 3 (--kill-on-bad-exit)"
note ok
