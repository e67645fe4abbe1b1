#!/usr/bin/env bash
# timeout: 120
# phx acct against a private PostgreSQL migrated by phx-master --init-db:
# jobs written as phx-batchd writes them (completed, failed, timed out, out
# of memory, cancelled, an array, one running); the sacct-like table, -P,
# --json, the filters, where the DSN comes from, and row-level security:
# a user's role sees only its jobs, the accountant all, others nothing.
. "$(dirname "$0")/lib.sh"

start_postgres
run_ok phx-master --init-db -s "master.dsn=$PHX_DSN" \
    -s "master.migrations_dir=$PHX_SRC/db/migrations"
# every migration of the tree applied (004 is accounting, later ones add to it)
nmig=$(find "$PHX_SRC/db/migrations" -name '[0-9][0-9][0-9]_*.sql' | wc -l)
assert_eq "$nmig" "$(psql -XAt -c 'SELECT max(version) FROM schema_version')"
export TZ=UTC # phx acct prints local times

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
-- A job's life as batchd writes it: submitted PENDING, RUNNING with its
-- allocation, steps started, steps ended with their cgroup figures, the end.
CREATE FUNCTION pg_temp.job(p_name text, p_user text, p_uid int, p_account text,
                            p_cpus int, p_nodes int, p_submit timestamptz,
                            p_start timestamptz, p_end timestamptz, p_state text,
                            p_code int, p_sig int, p_limit int,
                            p_array bigint DEFAULT NULL, p_task int DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE v_id bigint := nextval('jobs_id_seq');
BEGIN
    INSERT INTO jobs (id, array_job_id, array_task_id, name, uid, gid, user_name,
                      account, partition, spec, script, work_dir, submit_dir,
                      submit_line, time_limit, nodes_min, nodes_max, ntasks,
                      cpus_per_task, mem_per_node, submit_time, eligible_time)
    VALUES (v_id, CASE WHEN p_task IS NOT NULL THEN coalesce(p_array, v_id) END, p_task,
            p_name, p_uid, 100, p_user, p_account, 'batch', '{}', '#!/bin/sh',
            '/home/' || p_user, '/home/' || p_user, 'phx submit ' || p_name || '.sh',
            p_limit, p_nodes, p_nodes, p_nodes, p_cpus / p_nodes, 1024, p_submit,
            p_submit);
    IF p_start IS NOT NULL THEN
        UPDATE jobs SET state = 'RUNNING', start_time = p_start,
               node_list = CASE WHEN p_nodes = 1 THEN 'n01' ELSE 'n[01-0' || p_nodes || ']' END,
               alloc_nodes = p_nodes, alloc_cpus = p_cpus, alloc_mem = 1024 * p_nodes
        WHERE jobs.id = v_id;
    END IF;
    IF p_end IS NOT NULL THEN
        UPDATE jobs SET state = p_state, end_time = p_end, exit_code = p_code,
               exit_signal = p_sig WHERE jobs.id = v_id;
    END IF;
    RETURN v_id;
END $$;
CREATE FUNCTION pg_temp.step(p_job bigint, p_step text, p_name text, p_cpus int,
                             p_start timestamptz, p_end timestamptz, p_state text,
                             p_code int, p_sig int, p_user double precision,
                             p_sys double precision, p_rss bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO job_steps (job_id, step_id, name, start_time, ntasks, nnodes, node_list,
                           alloc_cpus)
    VALUES (p_job, p_step, p_name, p_start, 1, 1, 'n01', p_cpus);
    UPDATE job_steps SET state = p_state, end_time = p_end, exit_code = p_code,
           exit_signal = p_sig, user_cpu_s = p_user, system_cpu_s = p_sys,
           max_rss_bytes = p_rss
    WHERE job_id = p_job AND step_id = p_step;
$$;

SELECT pg_temp.job('sim', 'alice', 1000, 'physics', 16, 2, '2024-03-01 10:00',
                   '2024-03-01 10:01', '2024-03-01 10:31:01', 'COMPLETED', 0, 0, 3600);
SELECT pg_temp.step(1, 'batch', '', 2, '2024-03-01 10:01', '2024-03-01 10:31:01',
                    'COMPLETED', 0, 0, 1, 0.5, 10485760);
SELECT pg_temp.step(1, '0', 'lmp', 16, '2024-03-01 10:01:02', '2024-03-01 10:31',
                    'COMPLETED', 0, 0, 25000.5, 300, 2147483648);
SELECT pg_temp.job('fail', 'alice', 1000, 'physics', 4, 1, '2024-03-01 11:00',
                   '2024-03-01 11:00:30', '2024-03-01 11:02:30', 'FAILED', 3, 0, 600);
SELECT pg_temp.step(2, 'batch', '', 4, '2024-03-01 11:00:30', '2024-03-01 11:02:30',
                    'FAILED', 3, 0, 100, 20, 52428800);
SELECT pg_temp.job('long', 'bob', 1001, 'chem', 8, 1, '2024-03-01 12:00',
                   '2024-03-01 12:00', '2024-03-01 12:10:30', 'TIMEOUT', 0, 15, 600);
SELECT pg_temp.step(3, 'batch', '', 8, '2024-03-01 12:00', '2024-03-01 12:10:30',
                    'CANCELLED', 0, 15, 4700, 100, 1073741824);
SELECT pg_temp.job('big', 'bob', 1001, 'chem', 2, 1, '2024-03-01 13:00',
                   '2024-03-01 13:00:10', '2024-03-01 13:05:10', 'OUT_OF_MEMORY', 0, 9, 3600);
SELECT pg_temp.step(4, 'batch', '', 2, '2024-03-01 13:00:10', '2024-03-01 13:05:10',
                    'OUT_OF_MEMORY', 0, 9, 250, 40, 1073741824);
SELECT pg_temp.job('night', 'alice', 1000, 'bio', 8, 1, '2024-03-01 21:00',
                   '2024-03-01 22:00', '2024-03-02 02:00', 'CANCELLED', 0, 15, NULL);
SELECT pg_temp.job('sweep', 'carol', 1002, 'physics', 1, 1, '2024-03-01 15:00',
                   '2024-03-01 15:00', '2024-03-01 15:10', 'COMPLETED', 0, 0, 1200, NULL, 0);
SELECT pg_temp.job('sweep', 'carol', 1002, 'physics', 1, 1, '2024-03-01 15:00',
                   '2024-03-01 15:00', '2024-03-01 15:05', 'FAILED', 1, 0, 1200, 6, 1);
-- running since an hour ago
SELECT pg_temp.job('live', 'bob', 1001, 'chem', 4, 1, now() - interval '2 hours',
                   now() - interval '1 hour', NULL, NULL, NULL, NULL, 7200);
SQL

# The default sacct columns, steps under their job.
out=$(phx acct -S 2024-03-01)
note "$out"
assert_eq "JobID           JobName  Partition    Account  AllocCPUS      State ExitCode
------------ ---------- ---------- ---------- ---------- ---------- --------
1                   sim      batch    physics         16  COMPLETED      0:0
1.batch           batch               physics          2  COMPLETED      0:0
1.0                 lmp               physics         16  COMPLETED      0:0
2                  fail      batch    physics          4     FAILED      3:0
2.batch           batch               physics          4     FAILED      3:0
3                  long      batch       chem          8    TIMEOUT     0:15
3.batch           batch                  chem          8  CANCELLED     0:15
4                   big      batch       chem          2 OUT_OF_ME+      0:9
4.batch           batch                  chem          2 OUT_OF_ME+      0:9
5                 night      batch        bio          8  CANCELLED     0:15
6_0               sweep      batch    physics          1  COMPLETED      0:0
6_1               sweep      batch    physics          1     FAILED      1:0
8                  live      batch       chem          4    RUNNING      0:0" "$out"

# Chosen columns, parsable: Elapsed = End - Start, CPUTime = Elapsed x CPUs.
run_ok phx acct -S 2024-03-01 -E 2024-03-01T23:59 -X -P \
    --format jobid,User,Start,End,Elapsed,AllocCPUS,CPUTime,TotalCPU,MaxRSS,Timelimit,ReqMem
note "$PHX_OUT"
assert_eq "JobID|User|Start|End|Elapsed|AllocCPUS|CPUTime|TotalCPU|MaxRSS|Timelimit|ReqMem
1|alice|2024-03-01T10:01:00|2024-03-01T10:31:01|00:30:01|16|08:00:16|07:01:42|2G|01:00:00|1024Mn
2|alice|2024-03-01T11:00:30|2024-03-01T11:02:30|00:02:00|4|00:08:00|00:02:00|50M|00:10:00|1024Mn
3|bob|2024-03-01T12:00:00|2024-03-01T12:10:30|00:10:30|8|01:24:00|01:20:00|1G|00:10:00|1024Mn
4|bob|2024-03-01T13:00:10|2024-03-01T13:05:10|00:05:00|2|00:10:00|00:04:50|1G|01:00:00|1024Mn
5|alice|2024-03-01T22:00:00|2024-03-02T02:00:00|04:00:00|8|1-08:00:00|00:00:00||UNLIMITED|1024Mn
6_0|carol|2024-03-01T15:00:00|2024-03-01T15:10:00|00:10:00|1|00:10:00|00:00:00||00:20:00|1024Mn
6_1|carol|2024-03-01T15:00:00|2024-03-01T15:05:00|00:05:00|1|00:05:00|00:00:00||00:20:00|1024Mn" "$PHX_OUT"

# --json: typed values under the views' column names.
run_ok phx acct -S 2024-03-01 --json
printf '%s\n' "$PHX_OUT" >acct.json
assert_eq "1 COMPLETED 0:0 1801 28816 25302 2147483648
1.batch COMPLETED 0:0 1801 3602 1.5 10485760
1.0 COMPLETED 0:0 1798 28768 25300.5 2147483648
2 FAILED 3:0 120 480 120 52428800
2.batch FAILED 3:0 120 480 120 52428800
3 TIMEOUT 0:15 630 5040 4800 1073741824
3.batch CANCELLED 0:15 630 5040 4800 1073741824
4 OUT_OF_MEMORY 0:9 300 600 290 1073741824
4.batch OUT_OF_MEMORY 0:9 300 600 290 1073741824
5 CANCELLED 0:15 14400 115200 0 None
6_0 COMPLETED 0:0 600 600 0 None
6_1 FAILED 1:0 300 300 0 None" "$(python3 - <<'PY'
import json
for r in json.load(open("acct.json")):
    if r["state"] == "RUNNING":
        continue
    print(r["jobid"], r["state"], r["exit_code"], r["elapsed_s"], r["cpu_time_s"],
          r["total_cpu_s"], r["max_rss_bytes"])
PY
)"
run_ok phx acct -j 6 --json --format JobID,ArrayJobID,ArrayTaskID,Start,Elapsed -X
assert_eq '[
  {
    "jobid": "6_0",
    "array_job_id": 6,
    "array_task_id": 0,
    "start": "2024-03-01T15:00:00+00:00",
    "elapsed": "00:10:00"
  },
  {
    "jobid": "6_1",
    "array_job_id": 6,
    "array_task_id": 1,
    "start": "2024-03-01T15:00:00+00:00",
    "elapsed": "00:05:00"
  }
]' "$PHX_OUT"

# Filters.
ids() { phx acct -X -P --format JobID "$@" | tail -n +2 | paste -sd ' '; }
assert_eq "3 4 8" "$(ids -S 2024-03-01 -u bob)"
assert_eq "1 2 6_0 6_1" "$(ids -S 2024-03-01 -A physics)"
assert_eq "2 3 4 6_1" "$(ids -S 2024-03-01 -s F,TO,oom)"
assert_eq "6_1" "$(ids -j 6_1)"
assert_eq "1 6_0 6_1" "$(ids -j 1,6)"
assert_eq "8" "$(ids)" "default: jobs not ended before midnight today"
assert_eq "5 8" "$(ids -S 2024-03-02T01:00)"
assert_eq "1 2" "$(ids -S 2024-03-01 -E 2024-03-01T11:30)"
# sacct's other forms: MM/DD[/YY][-HH:MM[:SS]], MMDD[YY], HH:MM (today)
assert_eq "1 2" "$(ids -S 03/01/24 -E 03/01/2024-11:30)"
assert_eq "1 2" "$(ids -S 030124 -E 03/01/24-11:30:00)"
assert_eq "5 8" "$(ids -S 03/02/24-01:00)"
assert_eq "8" "$(ids -S 0301)" "March 1st of this year or last"
assert_eq "8" "$(ids -S 00:00)"
# now-N with sacct's units, singular or plural, blanks allowed; job 8 was
# submitted two hours ago.
all7="1 2 3 4 5 6_0 6_1"
assert_eq "$all7 8" "$(ids -S 2024-03-01 -E now-1hour)"
assert_eq "$all7" "$(ids -S 2024-03-01 -E now-3hour)"
assert_eq "$all7 8" "$(ids -S 2024-03-01 -E now-90minute)"
assert_eq "$all7" "$(ids -S 2024-03-01 -E now-150minutes)"
assert_eq "$all7" "$(ids -S 2024-03-01 -E now-1day)"
assert_eq "$all7" "$(ids -S 2024-03-01 -E now-1week)"
assert_eq "$all7" "$(ids -S 2024-03-01 -E 'now - 2 days')"
assert_eq "$all7 8" "$(ids -S 2024-03-01 -E now-3600second)"
# A date without a year is in the past, as sacct's: a month later than this
# one is last year's (the same date this year would still be ahead, and
# would take job 8 in).
m=$(date +%-m)
if ((m < 12)); then
    nm=$(printf '%02d/01' $((m + 1)))
    assert_eq "$all7" "$(ids -S 2024-03-01 -E "$nm")" "-E $nm: last year's"
    assert_eq "$all7" "$(ids -S 2024-03-01 -E "${nm/\//}")" "-E ${nm/\//}: last year's"
else
    note "December: no month after this one (tests/unit/test_cli_acct_time.c has them)"
fi
expect_fail phx acct -S 13/01/24
assert_contains "$PHX_OUT" 'invalid time "13/01/24"'
# -u takes uids too; -a, -u and --me: the last one counts (root has no jobs).
assert_eq "3 4 8" "$(ids -S 2024-03-01 -u 1001)"
assert_eq "1 2 3 4 5 8" "$(ids -S 2024-03-01 -u alice,1001)"
assert_eq "1 2 3 4 5 6_0 6_1 8" "$(ids -S 2024-03-01 -u bob -a)"
assert_eq "" "$(ids -S 2024-03-01 -u bob --me)"
assert_eq "3 4 8" "$(ids -S 2024-03-01 --me -u bob)"
assert_eq "1 2 3 4 5 6_0 6_1 8" "$(ids -S 2024-03-01 --me --allusers)"
assert_eq "1 6_0 6_1" "$(ids -S 2024-03-01 --name sweep,sim)"
# Repeated list options add up, as sacct's.
assert_eq "1 6_0 6_1" "$(ids -j 1 -j 6)"
assert_eq "1 6_0 6_1" "$(ids -S 2024-03-01 --name sweep --name sim)"
assert_eq "1 2 3 4 5 8" "$(ids -S 2024-03-01 -u alice -u 1001)"
assert_eq "2 3 6_1" "$(ids -S 2024-03-01 -s F -s TO)"
assert_eq "3 4 5 8" "$(ids -S 2024-03-01 -A chem -A bio)"
assert_eq "1 2 3 4 5 6_0 6_1 8" "$(ids -S 2024-03-01 -r batch -r gpu)"
expect_fail phx acct -j 1 -j ""
assert_contains "$PHX_OUT" "-j needs a job id"
expect_fail phx acct -A "$(printf '%04000d' 0)" -A "$(printf '%0100d' 0)"
assert_contains "$PHX_OUT" "the values of -A are longer than 4095 characters"
# -n: no header; -p: a '|' after the last field as well (header and rows).
assert_eq "2|FAILED|
2.batch|FAILED|" "$(phx acct -j 2 -p -n --format JobID,State)"
assert_eq "JobID|State|
2|FAILED|" "$(phx acct -j 2 -X --parsable --format JobID,State)"
assert_eq "2|FAILED" "$(phx acct -j 2 -X -p -P -n --format JobID,State)" "-P after -p"
assert_eq "2                FAILED" "$(phx acct -j 2 -X --noheader --format JobID,State)"
assert_eq "2,FAILED,3:0," "$(phx acct -j 2 -X -p -n --delimiter , --format JobID,State,ExitCode)"
assert_eq "6_0 6_1" "$(ids -S 2024-03-01 -r batch -A physics -u carol)"
assert_eq "" "$(ids -S 2024-03-01 --partition debug,gpu)"
psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE jobs SET qos = 'high' WHERE id IN (2, 3)"
assert_eq "2 3" "$(ids -S 2024-03-01 -q high,low)"
assert_eq "" "$(ids -S 2024-03-01 --qos normal)"
assert_eq "2 3" "$(ids -S 2024-03-01 -q high -q low)"
assert_eq "2|16|2|16" "$(phx acct -j 1 -X -P -n --format NNodes,NCPUS,AllocNodes,alloc_cpus)"
expect_fail phx acct -j ""
assert_contains "$PHX_OUT" "-j needs a job id"
expect_fail phx acct -s DONE
assert_contains "$PHX_OUT" 'unknown job state "DONE"'
expect_fail phx acct -j "1;DROP TABLE jobs"
assert_contains "$PHX_OUT" 'invalid job id'
expect_fail phx acct --format JobID,Nope
assert_contains "$PHX_OUT" 'unknown column "Nope"'
expect_fail phx acct -S tomorrowish
assert_contains "$PHX_OUT" 'invalid time "tomorrowish"'

# Where the DSN comes from: --dsn, then PHX_DSN, then client.dsn.
dsn=$PHX_DSN
unset PHX_DSN
export PHX_CONFIG=$PHX_TEST_DIR/phalanx.conf
echo "client: { dsn = \"$dsn\"; };" >"$PHX_CONFIG"
assert_eq "1" "$(ids -j 1)" "client.dsn"
echo "client: { dsn = \"host=$PHX_TEST_DIR/nowhere dbname=x\"; };" >"$PHX_CONFIG"
expect_fail phx acct -j 1
assert_contains "$PHX_OUT" "could not connect to the accounting database"
assert_contains "$PHX_OUT" "(SQLSTATE 08001)"
assert_eq "1" "$(ids -j 1 --dsn "$dsn")" "--dsn"
assert_eq "1" "$(PHX_DSN=$dsn ids -j 1)" "PHX_DSN"

# Roles: alice and bob see their own jobs, the accountant everyone's,
# a role outside phx_user nothing at all.
psql -X -q -v ON_ERROR_STOP=1 -c "SELECT phx_acct_grant_user('alice')" \
    -c "SELECT phx_acct_grant_user('bob')" \
    -c "CREATE ROLE auditor LOGIN IN ROLE phx_accountant" \
    -c "CREATE ROLE carol LOGIN" >/dev/null
as() { printf '%s user=%s' "${dsn% user=postgres}" "$1"; }
assert_eq "1 2 5" "$(ids -S 2024-03-01 --dsn "$(as alice)")"
assert_eq "" "$(ids -S 2024-03-01 -u bob --dsn "$(as alice)")" "alice asks for bob's"
assert_eq "3 4 8" "$(ids -S 2024-03-01 --dsn "$(as bob)")"
assert_eq "1 2 3 4 5 6_0 6_1 8" "$(ids -S 2024-03-01 --dsn "$(as auditor)")"
run_ok phx acct -S 2024-03-01 -j 1 --dsn "$(as alice)"
assert_contains "$PHX_OUT" "1.0                 lmp               physics         16  COMPLETED      0:0"
expect_fail phx acct -S 2024-03-01 --dsn "$(as carol)"
assert_contains "$PHX_OUT" "permission denied for view acct_jobs (SQLSTATE 42501)"
# the accountant reads, never writes
expect_fail psql -X -v ON_ERROR_STOP=1 "$(as auditor)" -c "DELETE FROM jobs"
assert_contains "$PHX_OUT" "permission denied for table jobs"
assert_eq 8 "$(psql -XAt -c 'SELECT count(*) FROM jobs')" "the accountant deleted nothing"
