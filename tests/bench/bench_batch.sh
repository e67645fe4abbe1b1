#!/usr/bin/env bash
# timeout: 900
# bench_batch: phx-batchd on an appliance of 4 emulated agents (32 cores
# each), `/bin/true` jobs submitted through the HTTP API by many concurrent
# clients (bench_batch_client).  No pass/fail.  Two phases:
#   1. queue: every node is held by an exclusive job; BENCH_JOBS jobs are
#      submitted (the durable submission rate, scheduler passes included),
#      then the holders are cancelled and the queue drains (execution
#      throughput: holders' cancel to the last job's end);
#   2. stream: BENCH_JOBS more jobs submitted while they run (end to end,
#      first submission to last end).
#   BENCH_JOBS (5000), BENCH_CLIENTS (32); BENCH_PG_STATEMENTS=1 also prints
#   PostgreSQL's busiest statements (pg_stat_statements; costs a little).
. "$PHX_SRC/tests/e2e/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

jobs=${BENCH_JOBS:-5000}
clients=${BENCH_CLIENTS:-32}
# The default heartbeat (1 s, lost after 5 missed), not the e2e tests' quick
# 0.2 s: a host loaded by other work lost agents after 1 s of silence
# (NODE_FAIL requeues in the figures).
PHX_HEARTBEAT=1.0
# "Durable" means it: PostgreSQL flushes every commit to disk (fsync and
# synchronous_commit on, as in production), not the tests' fsync = off.
PHX_PG_DURABLE=1
[[ ${BENCH_PG_STATEMENTS:-0} == 1 ]] &&
    PHX_PG_EXTRA="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all"
PHX_AGENT_EXTRA='allow_root = true;'
PHX_BATCHD_EXTRA='log_level = "notice"; bf_max_job_test = 200; keep_ended = 3600;'
PHX_MASTER_EXTRA='log_level = "notice";'
phx_setup
start_master
for n in n1 n2 n3 n4; do start_agent $n "synthetic:pack:2 numa:2 core:8 pu:1"; done
for n in n1 n2 n3 n4; do wait_node $n up; done
[[ ${BENCH_PG_STATEMENTS:-0} == 1 ]] && psql_q "CREATE EXTENSION pg_stat_statements" >/dev/null
start_batchd
echo "PostgreSQL: fsync $(psql_q 'SHOW fsync'), synchronous_commit $(psql_q 'SHOW synchronous_commit'), data on $(df --output=fstype "$PHX_TEST_DIR" | tail -n 1)"
printf '#!/bin/sh\n#SBATCH -t 5 -o /dev/null\n/bin/true\n' >"$PHX_TEST_DIR/true.sh"
cd "$PHX_TEST_DIR"
# Until at least N jobs ended: batchd's /health counter (no SQL while
# measuring), polled every 20 ms over one connection (a curl per poll cost
# ~2 % of the CPU being measured).
wait_ended() { "$PHX_BUILD/tests/bench/bench_batch_client" --wait-ended "$PHX_BATCHD" "$1" 800; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.0f}')" "$@"; }

echo "== phase 1: a queue of $jobs jobs behind 4 exclusive holders, then drained"
printf '#!/bin/sh\n#SBATCH -N 1 --exclusive -t 10 -o /dev/null\nexec sleep 600\n' >"$PHX_TEST_DIR/hold.sh"
holders=()
for n in 1 2 3 4; do holders+=("$(phx submit --parsable hold.sh)"); done
running_holders() { [[ $(psql_q "SELECT count(*) FROM jobs WHERE state = 'RUNNING'") -eq 4 ]]; }
wait_for 30 running_holders
"$PHX_BUILD/tests/bench/bench_batch_client" "$PHX_BATCHD" "$jobs" "$clients" true.sh |
    sed 's/^/  queue: /'
psql_q "SELECT '  queue: pending ' || count(*) || ', reason ' || min(reason) FROM jobs WHERE state = 'PENDING'"
t0=$(date +%s.%N)
phx cancel "${holders[@]}"
wait_ended $((jobs + 4))
t1=$(date +%s.%N)
echo "  drain: $jobs jobs in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s from the holders' cancel: $(rate "$jobs" "$t0" "$t1") jobs/s"

echo "== phase 2: $jobs jobs submitted while they run"
t0=$(date +%s.%N)
"$PHX_BUILD/tests/bench/bench_batch_client" "$PHX_BATCHD" "$jobs" "$clients" true.sh |
    sed 's/^/  stream: /'
wait_ended $((2 * jobs + 4))
t1=$(date +%s.%N)
echo "  end to end: $jobs jobs from first submission to last end in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s: $(rate "$jobs" "$t0" "$t1") jobs/s"
psql_q "SELECT state, count(*) FROM jobs GROUP BY state ORDER BY 1" | sed 's/^/  jobs: /'
psql_q "SELECT state, coalesce(reason, '-'), left(coalesce(message, '-'), 120), count(*) FROM tasks WHERE state NOT IN ('TASK_FINISHED', 'TASK_KILLED') GROUP BY 1, 2, 3" | sed 's/^/  unfinished tasks: /'
# Where a job's time goes, from the master's task records (phase 2).
psql_q "SELECT '  phase 2 task: gang commit -> RUNNING ' || round(avg(extract(epoch FROM started_at - created_at)) * 1000, 1) || ' ms, RUNNING -> end ' || round(avg(extract(epoch FROM ended_at - started_at)) * 1000, 1) || ' ms' FROM tasks WHERE created_at >= to_timestamp($t0)"
psql_q "SELECT '  phase 2 mean wait submit -> start: ' || round(avg(extract(epoch FROM start_time - submit_time)) * 1000) || ' ms' FROM jobs WHERE submit_time >= to_timestamp($t0)"
echo "batchd: $(curl -s "http://$PHX_BATCHD/health")"
# Rows written per job (both phases), by table: what PostgreSQL's CPU pays for.
psql_q "SELECT relname || ': ' || round(n_tup_ins::numeric / $((2 * jobs)), 2) || ' inserts, ' || round(n_tup_upd::numeric / $((2 * jobs)), 2) || ' updates (' || n_tup_hot_upd * 100 / greatest(n_tup_upd, 1) || '% HOT)' FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY n_tup_ins + n_tup_upd DESC" | sed 's/^/  rows per job: /'
[[ ${BENCH_PG_STATEMENTS:-0} == 1 ]] &&
    psql_q "SELECT round(total_exec_time::numeric / $((2 * jobs)), 3) || ' ms/job ' || calls || ' calls ' || left(regexp_replace(query, '\s+', ' ', 'g'), 150) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25" |
    sed 's/^/  statement: /'
# CPU each daemon used (its own threads; for agents also their reaped shims
# and tasks), in ms per job: where the machine's two cores went.
cpu_ms() { # PID FIELDS...: sum of /proc/PID/stat fields, in ms
    local pid=$1
    shift
    awk -v hz="$(getconf CLK_TCK)" -v f="$*" \
        '{n = split(f, k, " "); t = 0; for (i = 1; i <= n; i++) t += $k[i]; print t * 1000 / hz}' \
        "/proc/$pid/stat" 2>/dev/null || echo 0
}
per_job() { python3 -c "import sys; print(f'{sum(map(float, sys.argv[2:])) / int(sys.argv[1]):.2f}')" "$((2 * jobs))" "$@"; }
pm=$(head -n 1 "$PHX_TEST_DIR/pg/data/postmaster.pid" 2>/dev/null)
pg=()
[[ -n $pm ]] && for p in $pm $(pgrep -P "$pm"); do pg+=("$(cpu_ms "$p" 14 15 16 17)"); done
ag=() sh=()
for n in n1 n2 n3 n4; do
    p=$(daemon_pid "agent-$n")
    ag+=("$(cpu_ms "$p" 14 15)") sh+=("$(cpu_ms "$p" 16 17)")
done
mu=$(cpu_ms "$(daemon_pid munge)" 14 15)
ma=$(per_job "$(cpu_ms "$(daemon_pid master)" 14 15)")
bd=$(per_job "$(cpu_ms "$(daemon_pid batchd)" 14 15)")
pq=$(per_job "${pg[@]}")
echo "cpu ms per job (both phases): master $ma, batchd $bd, postgres $pq, munged $(per_job "$mu")," \
    "agents $(per_job "${ag[@]}") (+ shims and tasks $(per_job "${sh[@]}"))"
# On a real cluster the agents, shims and tasks run on the compute nodes:
# what the controller's machine (master, batchd, PostgreSQL, munged) pays.
python3 - "$ma" "$bd" "$pq" "$(per_job "$mu")" "$(nproc)" <<'P'
import sys
ms = sum(map(float, sys.argv[1:5]))
cores = int(sys.argv[5])
print(f"controller cpu per job: {ms:.2f} ms: at most {cores * 1000 / ms:.0f} jobs/s on "
      f"{cores} cores if agents ran on their own nodes (a projection, not a measurement)")
P
note ok
