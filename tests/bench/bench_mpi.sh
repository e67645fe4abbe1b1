#!/usr/bin/env bash
# timeout: 900
# MPI steps against mpirun: paired runs, inside one job on 2 agents, of
#   phx run -N2 -n4 mpi_hello        (ranks on both agents, PMIx by the agents)
#   mpirun -np 4 mpi_hello           (OpenMPI's own launcher, on the job's node)
# wall time from the command's start to its end, the median ratio, and the
# round trip of one cross-agent fence (agent → master → agents) as the
# agents measure it.  PHX_BENCH_MPI_RUNS pairs (default 15).
. "$(dirname "$0")/../e2e/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

RUNS=${PHX_BENCH_MPI_RUNS:-15}
PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
D=$PHX_TEST_DIR
hello=$PHX_BUILD/tests/progs/mpi_hello
phx=$PHX_BUILD/bin/phx
cat >"$D/bench.sh" <<SH
if [ "\$PHX_NODE" = n1 ]; then
    now() { date +%s.%N; }
    for i in \$(seq $RUNS); do
        t0=\$(now); $phx run -N2 -n4 $hello >/dev/null || echo fail phx >>"$D/times"
        t1=\$(now); mpirun --allow-run-as-root --oversubscribe -np 4 $hello >/dev/null 2>&1 || echo fail mpirun >>"$D/times"
        t2=\$(now)
        echo "\$t0 \$t1 \$t2" >>"$D/times"
    done
    touch "$D/done"
else
    while [ ! -e "$D/done" ]; do sleep 0.1; done
fi
SH
"$PHX_BUILD/examples/simple-framework" --agents 2 --cmd "sh $D/bench.sh" >"$D/fw.out" 2>&1 ||
    fail "the benchmark job failed: $(cat "$D/fw.out")"
if grep -q fail "$D/times"; then
    fail "some runs failed: $(grep fail "$D/times" | sort | uniq -c)"
fi
python3 - "$D/times" "$D"/agent-n1.log <<'PY'
import re, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
phx = [b - a for a, b, c in rows]
mpi = [c - b for a, b, c in rows]
ratio = [p / m for p, m in zip(phx, mpi)]
print("bench_mpi: %d paired runs, 4 ranks" % len(rows))
print("  phx run -N2 -n4 mpi_hello   median %.3f s  (min %.3f, max %.3f)" %
      (statistics.median(phx), min(phx), max(phx)))
print("  mpirun -np 4 mpi_hello      median %.3f s  (min %.3f, max %.3f)" %
      (statistics.median(mpi), min(mpi), max(mpi)))
print("  ratio phx/mpirun            median %.2f  (target <= 1.0)" % statistics.median(ratio))
fmin, fmean = [], []
for l in open(sys.argv[2]):
    m = re.search(r"(\d+) cross-agent fences, round trip min ([\d.]+) ms, mean ([\d.]+) ms", l)
    if m:
        fmin.append(float(m.group(2)))
        fmean.append(float(m.group(3)))
if fmin:
    print("  cross-agent fence round trip: median of per-step minimum %.3f ms, "
          "median of per-step mean %.3f ms (%d steps)" %
          (statistics.median(fmin), statistics.median(fmean), len(fmin)))
PY
