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
note ok
