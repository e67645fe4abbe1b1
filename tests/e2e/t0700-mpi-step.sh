#!/usr/bin/env bash
# timeout: 300
# MPI steps: a job of 2 agents (made by the example framework) whose task on
# n1 runs `phx run -N2 -n4`: real OpenMPI ranks wired up by the agents' PMIx
# servers, fences routed through the master.  Also mpi4py, MPI_Abort, a rank
# without MPI_Finalize, and five steps in a row leaving nothing behind.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5 # a loaded host must not lose the agents mid-step
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"
progs="$PHX_BUILD/tests/progs"
D=$PHX_TEST_DIR

# A job on both agents (phx.sh step_job): the task on n1 runs SCRIPT.
job() { step_job "$1"; }

# Shared-memory segments, OpenMPI session dirs and our per-step dirs (other
# test clusters may run on this host: what existed before is not ours).
leftovers() {
    ls -d /dev/shm/vader_segment.* /tmp/ompi.*/jf.* /tmp/ompi.*/pid.* \
        "/dev/shm/phx-n1-$(daemon_pid agent-n1)-"* "/dev/shm/phx-n2-$(daemon_pid agent-n2)-"* \
        "$D"/agent-n*/pmix/*phx.* 2>/dev/null | sort || true
}

# 2 agents × 2 ranks: every rank sees size 4 and the sum 1+2+3+4.
job "$phx run -N2 -n4 $progs/mpi_hello"
assert_eq 0 "$(cat "$D/rc")" "mpi_hello exit code"
for r in 0 1 2 3; do
    assert_contains "$(cat "$D/out")" "rank $r of 4 sum 10"
done
assert_eq 2 "$(grep -c 'node n1' "$D/out")" "ranks on n1"
assert_eq 2 "$(grep -c 'node n2' "$D/out")" "ranks on n2"

# Data-less fences: every rank's data comes by direct modex, routed by the
# master to the agent hosting the rank.
job "OMPI_MCA_pmix_base_collect_data=0 $phx run -N2 -n4 $progs/mpi_hello"
assert_eq 0 "$(cat "$D/rc")" "mpi_hello with direct modex"
assert_eq 4 "$(grep -c 'of 4 sum 10' "$D/out")"
grep -q "direct-modex requests" "$D"/agent-n*.log || fail "no direct-modex request was made"

# --label and cyclic distribution.
job "$phx run -N2 -n4 --label --distribution=cyclic $progs/mpi_hello"
assert_eq 0 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "1: rank 1 of 4 sum 10 node n2"
assert_contains "$(cat "$D/out")" "2: rank 2 of 4 sum 10 node n1"

# Not MPI: the highest rank exit code, 128+signal, a missing program.
job "$phx run -N2 -n3 sh -c 'echo on \$PHX_NODE; exit \$((PHX_PROCID + 3))'"
assert_eq 5 "$(cat "$D/rc")" "highest rank exit code"
assert_contains "$(cat "$D/out")" "on n2"
job "$phx run -N2 -n2 sh -c 'kill -TERM \$\$'"
assert_eq 143 "$(cat "$D/rc")" "128+SIGTERM"
job "$phx run -N2 -n2 /no/such/program"
assert_eq 127 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "could not execute"

# mpi4py across 2 agents.
if /usr/bin/python3 -c 'import mpi4py' 2>/dev/null; then
    cat >"$D/allreduce.py" <<'PY'
from mpi4py import MPI
c = MPI.COMM_WORLD
print("py rank %d of %d sum %d" % (c.rank, c.size, c.allreduce(c.rank + 1)))
PY
    job "$phx run -N2 -n4 /usr/bin/python3 $D/allreduce.py"
    assert_eq 0 "$(cat "$D/rc")" "mpi4py exit code"
    assert_eq 4 "$(grep -c 'of 4 sum 10' "$D/out")" "mpi4py ranks with the right sum"
else
    fail "python3-mpi4py is not installed"
fi

# MPI_Abort(..., 7): every rank on both agents gone within seconds, code 7.
start=$(date +%s)
job "$phx run -N2 -n4 $progs/mpi_abort"
assert_eq 7 "$(cat "$D/rc")" "exit code of an MPI_Abort(7) step"
[ $(($(date +%s) - start)) -lt 30 ] || fail "the aborted step took too long"
wait_for 5 sh -c '! pgrep -f progs/[m]pi_abort >/dev/null'

# A rank exiting without MPI_Finalize fails the step; nothing is left.
job "$phx run -N2 -n4 $progs/mpi_nofinalize"
rc=$(cat "$D/rc")
[ "$rc" -ne 0 ] || fail "a step with a rank that did not finalize succeeded"
wait_for 5 sh -c '! pgrep -f progs/[m]pi_nofinalize >/dev/null'

# Five steps in a row in one job leave no segment or session dir behind.
before=$(leftovers)
job "for i in 1 2 3 4 5; do $phx run -N2 -n4 $progs/mpi_hello || exit 1; done"
assert_eq 0 "$(cat "$D/rc")"
assert_eq 20 "$(grep -c 'of 4 sum 10' "$D/out")"
assert_eq "" "$(comm -13 <(echo "$before") <(leftovers))" "leftovers of OpenMPI"
ls /dev/shm/phx-n1-$(daemon_pid agent-n1)-* >/dev/null 2>&1 && fail "a step directory is left"

# The job ends while its step runs: no rank outlives it, on either node.
job "$phx run -N2 -n2 sleep 313 & sleep 2; pgrep -f '^sleep 313' | wc -l"
assert_eq 2 "$(tail -n 1 "$D/out")" "ranks of the step running"
wait_for 10 sh -c '! pgrep -f "^sleep 313" >/dev/null'

# A master restart during a step: the agents end it, phx run fails.
job "$phx run -N2 -n2 sleep 315" &
jobpid=$!
wait_for 20 sh -c '[ "$(pgrep -f "^sleep 315" | wc -l)" = 2 ]'
stop_daemon master
wait_for 20 test -e "$D/rc"
[ "$(cat "$D/rc")" -ne 0 ] || fail "a step that lost its master succeeded"
assert_contains "$(cat "$D/out")" "lost the master during the step"
wait_for 10 sh -c '! pgrep -f "^sleep 315" >/dev/null'
start_master
wait_node n1 up
wait_node n2 up
wait_for 30 sh -c "! kill -0 $jobpid 2>/dev/null"
rm -f "$D/done"

# An agent lost during a step: the step ends on the others, code 137.
job "$phx run -N2 -n2 sleep 314" &
wait_for 20 sh -c '[ "$(pgrep -f "^sleep 314" | wc -l)" = 2 ]'
stop_daemon agent-n2
wait_for 20 test -e "$D/rc"
assert_eq 137 "$(cat "$D/rc")" "exit code of a step that lost an agent"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" 'agent "n2" was lost'
note ok
