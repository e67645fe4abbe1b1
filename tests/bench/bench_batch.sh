#!/usr/bin/env bash
# timeout: 900
# bench_batch: phx-batchd on an appliance of 4 emulated agents (32 cores
# each), 5,000 `/bin/true` jobs submitted through the HTTP API by many
# concurrent clients (bench_batch_client).  Prints the durable submission
# rate and the end-to-end throughput to COMPLETED.  No pass/fail.
#   BENCH_JOBS (5000), BENCH_CLIENTS (32)
. "$PHX_SRC/tests/e2e/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

jobs=${BENCH_JOBS:-5000}
clients=${BENCH_CLIENTS:-32}
PHX_AGENT_EXTRA='allow_root = true;'
PHX_BATCHD_EXTRA='log_level = "notice"; bf_max_job_test = 200; keep_ended = 3600;'
PHX_MASTER_EXTRA='log_level = "notice";'
phx_setup
start_master
for n in n1 n2 n3 n4; do start_agent $n "synthetic:pack:2 numa:2 core:8 pu:1"; done
for n in n1 n2 n3 n4; do wait_node $n up; done
start_batchd
printf '#!/bin/sh\n#SBATCH -t 5 -o /dev/null\n/bin/true\n' >"$PHX_TEST_DIR/true.sh"
cd "$PHX_TEST_DIR"
t0=$(date +%s.%N)
"$PHX_BUILD/tests/bench/bench_batch_client" "$PHX_BATCHD" "$jobs" "$clients" true.sh
done_count() {
    [[ $(psql_q "SELECT count(*) FROM jobs WHERE state <> 'PENDING' AND state <> 'RUNNING'") -ge $jobs ]]
}
wait_for 800 done_count
t1=$(date +%s.%N)
psql_q "SELECT state, count(*) FROM jobs GROUP BY state ORDER BY 1" | sed 's/^/  jobs: /'
python3 - "$t0" "$t1" "$jobs" <<'P'
import sys
t0, t1, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"end to end: {n} jobs from first submission to last end in {t1 - t0:.1f} s: "
      f"{n / (t1 - t0):.0f} jobs/s")
P
psql_q "SELECT 'execution (first start to last end): ' || round(count(*) / greatest(extract(epoch FROM max(end_time) - min(start_time)), 0.001)) || ' jobs/s' FROM jobs"
psql_q "SELECT state, coalesce(reason, '-'), left(coalesce(message, '-'), 120), count(*) FROM tasks WHERE state <> 'TASK_FINISHED' GROUP BY 1, 2, 3" | sed 's/^/  unfinished tasks: /'
psql_q "SELECT 'mean wait submit->start: ' || round(avg(extract(epoch FROM start_time - submit_time))::numeric, 2) || ' s' FROM jobs"
# Where a job's time goes, from the master's task records.
psql_q "SELECT 'task: gang commit -> RUNNING ' || round(avg(extract(epoch FROM started_at - created_at)) * 1000, 1) || ' ms, RUNNING -> end ' || round(avg(extract(epoch FROM ended_at - started_at)) * 1000, 1) || ' ms' FROM tasks"
psql_q "SELECT 'gangs committed per second (busiest second): ' || max(n) FROM (SELECT count(*) n FROM tasks GROUP BY date_trunc('second', created_at)) x"
psql_q "SELECT 'job: end -> next start on the freed slot, mean submit -> start ' || round(avg(extract(epoch FROM start_time - submit_time)) * 1000) || ' ms' FROM jobs"
echo "batchd: $(curl -s "http://$PHX_BATCHD/health")"
# CPU each daemon used (its own threads; for agents also their reaped shims
# and tasks), in ms per job: where the machine's two cores went.
cpu_ms() { # PID FIELDS...: sum of /proc/PID/stat fields, in ms
    local pid=$1
    shift
    awk -v hz="$(getconf CLK_TCK)" -v f="$*" \
        '{n = split(f, k, " "); t = 0; for (i = 1; i <= n; i++) t += $k[i]; print t * 1000 / hz}' \
        "/proc/$pid/stat" 2>/dev/null || echo 0
}
per_job() { python3 -c "import sys; print(f'{sum(map(float, sys.argv[2:])) / int(sys.argv[1]):.2f}')" "$jobs" "$@"; }
pm=$(head -n 1 "$PHX_TEST_DIR/pg/data/postmaster.pid" 2>/dev/null)
pg=()
[[ -n $pm ]] && for p in $pm $(pgrep -P "$pm"); do pg+=("$(cpu_ms "$p" 14 15 16 17)"); done
ag=() sh=()
for n in n1 n2 n3 n4; do
    p=$(daemon_pid "agent-$n")
    ag+=("$(cpu_ms "$p" 14 15)") sh+=("$(cpu_ms "$p" 16 17)")
done
echo "cpu ms per job: master $(per_job "$(cpu_ms "$(daemon_pid master)" 14 15)")," \
    "batchd $(per_job "$(cpu_ms "$(daemon_pid batchd)" 14 15)")," \
    "agents $(per_job "${ag[@]}") (+ shims and tasks $(per_job "${sh[@]}"))," \
    "postgres $(per_job "${pg[@]}")"
note ok
