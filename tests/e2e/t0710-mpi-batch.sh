#!/usr/bin/env bash
# timeout: 180
# MPI steps in a batch job of a real user: phx-batchd places a 2-node job,
# its script runs `phx run -N2 -n4 mpi_hello` (ranks as the user, on both
# agents) and plain `srun` (found on the job's PATH: batchd's default
# compat_dir, the source tree's scripts/compat); another user cannot start a
# step in that job with its ids; a job's --cpu-bind and -m are its steps'
# defaults; outside a job phx run gets its own allocation.  With
# batchd.slurm_env the script also sees SLURM_* names and the ranks none
# (OpenMPI must not believe it runs under Slurm: the MPI steps still run).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
PHX_BATCHD_EXTRA='slurm_env = true;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
# No compat_dir: batchd finds the wrappers itself (here: scripts/compat).
sed -i '/compat_dir/d' "$PHX_CONFIG"
start_batchd
compat=$(realpath "$PHX_SRC/scripts/compat")
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "batchd.compat_dir: $compat"

as() { as_user "$@"; }
home1=$(getent passwd phxu1 | cut -d: -f6)
# the home outlives tests: what another test left is not ours (doc/testing.md)
rm -f "$home1"/.phx-run-*.out
bin=$PHX_BUILD/bin
hello=$PHX_BUILD/tests/progs/mpi_hello

cat >"$home1/mpi.sh" <<S
#!/bin/bash
#PHX -N 2
#PHX -n 4
#PHX --time=2
export PATH=$bin:\$PATH
echo "ids \$PHX_FRAMEWORK_ID \$PHX_TASK_ID \$PHX_AGENT_SOCKET"
echo "slurm \$SLURM_JOB_ID \$SLURM_JOBID \$SLURM_NTASKS \$SLURM_JOB_NODELIST"
phx run -N1 -n1 sh -c 'echo "rank slurm [\${SLURM_JOB_ID:-none}] [\$(env | grep -c ^SLURM_)]"'
phx run -N2 -n4 $hello
echo "phx run rc=\$?"
echo "srun is \$(command -v srun)"
srun --mpi=pmix -N 2 -n 4 -l $hello
echo "srun rc=\$?"
srun -N 2 -n 2 -c 2 --ntasks-per-node=1 --cpu-bind=cores --label --mpi=pmix \\
    sh -c 'echo srun at \$PHX_NODEID cpus \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
echo "srun -c rc=\$?"
srun --mpi=pmix -x n1 -n 2 $hello
echo "srun -x rc=\$?"
phx run -N1 -n2 --label sh -c 'echo bound \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
phx run -N1 -n2 --label --cpu-bind=sockets sh -c 'echo socket \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
phx run -N1 -n2 --label --cpu-bind=none sh -c 'echo unbound \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
sleep 5
S
chown phxu1 "$home1/mpi.sh"
id=$(as phxu1 phx submit --parsable mpi.sh)
wait_job "$id" RUNNING 30
# Both ranks' lines of the last step (rank 0's may come first alone).
both_unbound() { (($(grep -c '^[01]: unbound' "$home1/phx-$id.out") == 2)); }
wait_for 30 both_unbound
body=$(cat "$home1/phx-$id.out")
note "$body"
assert_eq 8 "$(grep -c 'of 4 sum 10' <<<"$body")" "ranks with size 4 and the right sum"
assert_contains "$body" "phx run rc=0"
# a user's ranks once printed a PMIx error each (ds12's lock is one user's)
assert_not_contains "$body" "PMIX ERROR"
assert_contains "$body" "slurm $id $id 4 n[1-2]"
assert_contains "$body" "rank slurm [none] [0]"
assert_contains "$body" "srun rc=0"
assert_contains "$body" "srun is $compat/srun"
assert_contains "$body" "srun -c rc=0"
# -x n1: an MPI step with no rank where srun runs (the batch node)
assert_contains "$body" "srun -x rc=0"
assert_eq 2 "$(grep -c 'of 2 sum 3 node n2' <<<"$body")" "ranks of srun -x n1 -n 2, on n2"
# -N 2 -n 2 --ntasks-per-node=1 -c 2: one rank per node, each on both cores.
assert_eq 2 "$(grep -c ': srun at ' <<<"$body")" "ranks of srun -n 2"
s0=$(sed -n 's/^0: srun at 0 cpus //p' <<<"$body")
s1=$(sed -n 's/^1: srun at 1 cpus //p' <<<"$body")
[[ $s0 == *[,-]* && $s1 == *[,-]* ]] || fail "srun -c 2: ranks not on 2 cpus each on nodes 0 and 1: '$s0' '$s1'"
assert_contains "$body" "3: rank 3 of 4 sum 10"
assert_eq 2 "$(grep -c '^rank . of 4 .* node n2' <<<"$body")" "ranks on n2 under phx run"
# Bound to one core each, inside the job's cpuset (2 cores on this node).
b0=$(sed -n 's/^0: bound //p' <<<"$body")
b1=$(sed -n 's/^1: bound //p' <<<"$body")
[[ -n $b0 && -n $b1 && $b0 != "$b1" && $b0 != *[,-]* && $b1 != *[,-]* ]] ||
    fail "ranks not bound to distinct single CPUs: '$b0' '$b1'"
assert_eq "$(sed -n 's/^0: unbound //p' <<<"$body")" "$(sed -n 's/^1: unbound //p' <<<"$body")"
[[ $(sed -n 's/^0: unbound //p' <<<"$body") == *[,-]* ]] || fail "--cpu-bind=none should leave the job's cpuset"
# One socket here: --cpu-bind=sockets binds each rank to both cores of it.
assert_eq "$(sed -n 's/^0: unbound //p' <<<"$body")" "$(sed -n 's/^1: socket //p' <<<"$body")"

# Another user, with the job's ids and socket: refused.
read -r fw task sock < <(sed -n 's/^ids //p' "$home1/phx-$id.out")
out=$(runuser -u phxu2 -- env PHX_FRAMEWORK_ID="$fw" PHX_TASK_ID="$task" \
    PHX_AGENT_SOCKET="$sock" "$bin/phx" run -n1 true 2>&1) && fail "phxu2 ran a step in phxu1's job"
note "$out"
assert_contains "$out" "permission denied"
# The job's own user, but from outside the job: refused too.
out=$(runuser -u phxu1 -- env PHX_FRAMEWORK_ID="$fw" PHX_TASK_ID="$task" \
    PHX_AGENT_SOCKET="$sock" "$bin/phx" run -n1 true 2>&1) && fail "a step from outside the job ran"
assert_contains "$out" "permission denied"
wait_job "$id" COMPLETED 30

# The job's --cpu-bind and -m are the defaults of phx run and srun in it;
# a value phx run cannot use is ignored with a warning.
cat >"$home1/inherit.sh" <<S
#!/bin/bash
#SBATCH -N 2 -n 4 -t 2
#SBATCH --cpu-bind=verbose,sockets
#SBATCH -m cyclic:block
#SBATCH --ntasks-per-core=1
export PATH=$bin:\$PATH
echo "env \$PHX_CPU_BIND \$PHX_DISTRIBUTION"
phx run -N2 -n4 --label sh -c 'echo run \$PHX_NODEID \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
srun -N2 -n4 --label sh -c 'echo srun \$PHX_NODEID \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
srun -N2 -n4 --label -m block --cpu-bind=cores sh -c 'echo given \$PHX_NODEID \$(grep Cpus_allowed_list /proc/self/status | cut -f2)'
PHX_CPU_BIND=map_cpu:1 PHX_DISTRIBUTION=plane=2 phx run -N1 -n1 true 2>&1
echo "old rc=\$?"
srun -u --export=ALL,T_EXPORT_A=a1,T_EXPORT_B -n1 sh -c 'echo "export \$T_EXPORT_A"'
srun --export=NONE -n1 true 2>&1
srun --exclusive -n1 true 2>&1
echo "exclusive rc=\$?"
srun --overlap --ntasks-per-core=1 -n1 sh -c 'echo overlap ok'
srun --ntasks-per-core=2 -n1 true 2>&1
echo "per-core rc=\$?"
S
chown phxu1 "$home1/inherit.sh"
id=$(as phxu1 phx submit --parsable inherit.sh)
wait_job "$id" COMPLETED 60
body=$(cat "$home1/phx-$id.out")
note "$body"
assert_contains "$body" "env verbose,sockets cyclic:block"
for how in run srun; do
    # cyclic: ranks 0 and 2 on node 0, 1 and 3 on node 1; sockets: each rank
    # on both cores of its node's one socket.
    assert_eq "0 1 0 1" "$(for r in 0 1 2 3; do sed -n "s/^$r: $how \([01]\) .*/\1/p" <<<"$body"; done | xargs)" "$how: cyclic"
    for r in 0 1 2 3; do
        [[ $(sed -n "s/^$r: $how [01] //p" <<<"$body") == *[,-]* ]] || fail "$how: rank $r not bound to its socket"
    done
done
# Given on the command line: block, one core each.
assert_eq "0 0 1 1" "$(for r in 0 1 2 3; do sed -n "s/^$r: given \([01]\) .*/\1/p" <<<"$body"; done | xargs)" "-m block given"
for r in 0 1 2 3; do
    [[ $(sed -n "s/^$r: given [01] //p" <<<"$body") != *[,-]* ]] || fail "given --cpu-bind=cores: rank $r not on one core"
done
assert_contains "$body" "ignoring the job's --cpu-bind=map_cpu:1"
assert_contains "$body" "ignoring the job's --distribution=plane=2"
assert_contains "$body" "old rc=0"
# srun -u: nothing to change; --export=ALL,NAME=value; --export=NONE and
# --exclusive refused with a reason.
assert_contains "$body" "export a1"
assert_contains "$body" "srun: --export=NONE is not supported"
assert_contains "$body" "srun: --exclusive is not supported"
assert_contains "$body" "exclusive rc=2"
# --overlap: what steps do here; --ntasks-per-core=1 only.
assert_contains "$body" "overlap ok"
assert_contains "$body" "srun: --ntasks-per-core=2: only 1 is accepted (a task never shares a core)"
assert_contains "$body" "per-core rc=2"

# Outside a job: phx run gets an allocation from batchd for the step.
out=$(as phxu1 phx run -N2 -n4 --label $hello 2>&1) || fail "phx run outside a job: $out"
note "$out"
assert_eq 4 "$(grep -c 'of 4 sum 10' <<<"$out")" "ranks of an allocated step"
assert_contains "$out" "holds the allocation of this step"
rc=0
as phxu1 phx run -N2 -n4 $PHX_BUILD/tests/progs/mpi_abort >/dev/null 2>&1 || rc=$?
assert_eq 7 "$rc" "exit code of MPI_Abort(7) in an allocated step"
assert_eq "" "$(ls -A "$home1" | grep '^.phx-run-' || true)" "temporary output files"
note ok
