#!/usr/bin/env bash
# timeout: 150
# mpirun in a job whose nodes have dotted (FQDN) names (doc/jobs.md, "mpirun
# in a job").  OpenMPI's mpirun cuts the domain off the host names it is
# given (orte_keep_fqdn_hostnames defaults to false), so without
# OMPI_MCA_orte_keep_fqdn_hostnames=1 it ran `phx-rsh n1 ...` for node
# n1.phx and `phx run -w n1` found no such node of the job: mpirun failed.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_HEARTBEAT=0.5
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1.phx "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2.phx "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1.phx up
wait_node n2.phx up
start_batchd
home1=$(getent passwd phxu1 | cut -d: -f6)
bin=$PHX_BUILD/bin
hello=$PHX_BUILD/tests/progs/mpi_hello

cat >"$home1/fqdn.sh" <<S
#!/bin/bash
#PHX -N 2
#PHX -n 4
#PHX --time=2
export PATH=$bin:\$PATH
echo "hosts \$OMPI_MCA_orte_default_dash_host"
echo "fqdn [\${OMPI_MCA_orte_keep_fqdn_hostnames:-}]"
mpirun -np 4 $hello 2>&1 | sort
echo "mpirun -np 4 rc=\${PIPESTATUS[0]}"
S
chown phxu1 "$home1/fqdn.sh"
id=$(as_user phxu1 phx submit --parsable fqdn.sh)
wait_job "$id" COMPLETED 120
body=$(cat "$home1/phx-$id.out")
note "$body"
# the batch node first: either of them
grep -Eq '^hosts (n1\.phx:2,n2\.phx:2|n2\.phx:2,n1\.phx:2)$' <<<"$body" ||
    fail "mpirun's hosts are not the job's nodes: $body"
assert_contains "$body" "mpirun -np 4 rc=0"
assert_eq 2 "$(grep -c '^rank [0-3] of 4 sum 10 node n2.phx' <<<"$body")" "ranks on n2.phx"
assert_eq 2 "$(grep -c '^rank [0-3] of 4 sum 10 node n1.phx' <<<"$body")" "ranks on n1.phx"
assert_contains "$body" "fqdn [1]"
