#!/usr/bin/env bash
# timeout: 180
# mpirun in a batch job (doc/jobs.md, "mpirun in a job"): OpenMPI's mpirun,
# unchanged, spans the job's nodes.  batchd gives the script OpenMPI's
# settings (batchd.mpirun_env): the job's nodes and tasks per node as
# mpirun's hosts and slots, and scripts/compat/phx-rsh as its "ssh", which
# starts each node's orted as a one-rank step of the job (phx run -w NODE):
# no ssh, no SLURM_* variables.  A 2-node job: `mpirun -np 4` and `mpirun`
# (the slots: 4) run ranks on both nodes, as the user, in the job's steps;
# a direct launch (`./prog`, a singleton) still works; a job submitted from
# that job gets its own nodes, not its parent's; a submitter's own
# launcher setting is kept; phx-rsh outside a job refuses.
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
home1=$(getent passwd phxu1 | cut -d: -f6)
bin=$PHX_BUILD/bin
hello=$PHX_BUILD/tests/progs/mpi_hello

cat >"$home1/inner.sh" <<S
#!/bin/sh
#PHX -N 1 -n 1 -t 1
echo "inner hosts \$OMPI_MCA_orte_default_dash_host"
S
cat >"$home1/mpirun.sh" <<S
#!/bin/bash
#PHX -N 2
#PHX -n 4
#PHX --time=2
export PATH=$bin:\$PATH
echo "hosts \$OMPI_MCA_orte_default_dash_host"
echo "agent \$OMPI_MCA_plm_rsh_agent"
mpirun -np 4 $hello | sort
echo "mpirun -np 4 rc=\${PIPESTATUS[0]}"
mpirun $hello | sed 's/^/slots: /' | sort
echo "mpirun rc=\${PIPESTATUS[0]}"
$hello | sed 's/^/singleton: /'
echo "singleton rc=\${PIPESTATUS[0]}"
inner=\$(phx submit --parsable inner.sh)
echo "inner \$inner"
S
chown phxu1 "$home1/mpirun.sh" "$home1/inner.sh"
id=$(as_user phxu1 phx submit --parsable mpirun.sh)
wait_job "$id" COMPLETED 120
body=$(cat "$home1/phx-$id.out")
note "$body"
# the batch node first: either of them (the order of the agents' offers)
grep -Eq '^hosts (n1:2,n2:2|n2:2,n1:2)$' <<<"$body" ||
    fail "mpirun's hosts are not the job's nodes: $body"
assert_contains "$body" "agent $(realpath "$PHX_SRC/scripts/compat")/phx-rsh"
assert_contains "$body" "mpirun -np 4 rc=0"
assert_eq 4 "$(grep -c '^rank [0-3] of 4 sum 10' <<<"$body")" "ranks of mpirun -np 4"
assert_eq 2 "$(grep -c '^rank [0-3] of 4 sum 10 node n2' <<<"$body")" "of them on n2"
assert_contains "$body" "mpirun rc=0"
assert_eq 4 "$(grep -c '^slots: rank [0-3] of 4 sum 10' <<<"$body")" "ranks of mpirun with the job's slots"
assert_contains "$body" "singleton: rank 0 of 1"
assert_contains "$body" "singleton rc=0"
assert_not_contains "$body" "ssh"
# each mpirun's daemons were steps of the job, one per node, as the user
assert_eq 4 "$(psql_q "SELECT count(*) FROM job_steps WHERE job_id = $id AND step_id ~ '^[0-9]+\$' AND nnodes = 1 AND state = 'COMPLETED'")"
inner=$(sed -n 's/^inner //p' <<<"$body")
wait_job "$inner" COMPLETED 60
inner_out=$(cat "$home1/phx-$inner.out")
assert_contains "$inner_out" "inner hosts n"
assert_not_contains "$inner_out" ":2,"
# the submitter's own launcher is kept
cat >"$home1/own.sh" <<'S'
#!/bin/sh
#PHX -N 1 -n 1 -t 1
echo "own agent $OMPI_MCA_plm_rsh_agent hosts [${OMPI_MCA_orte_default_dash_host:-}]"
S
chown phxu1 "$home1/own.sh"
own=$(as_user phxu1 OMPI_MCA_plm_rsh_agent=my-ssh phx submit --parsable own.sh)
wait_job "$own" COMPLETED 60
assert_contains "$(cat "$home1/phx-$own.out")" "own agent my-ssh hosts []"
# outside a job
rc=0
out=$("$PHX_SRC/scripts/compat/phx-rsh" n1 true 2>&1) || rc=$?
assert_eq 255 "$rc" "phx-rsh's exit outside a job (ssh's for its own errors)"
assert_contains "$out" "phx-rsh: not inside a job"
