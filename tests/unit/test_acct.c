/* Accounting (db/migrations/004_accounting.sql) against a private PostgreSQL
 * with every migration of the repository applied: jobs written the way
 * phx-batchd writes them (tests/unit/support/acctfixture.h) that complete,
 * fail, time out, run out of memory and get cancelled; what acct_jobs,
 * acct_steps (of batch steps) and usage_daily say about them; row-level
 * security for per-user roles, the accountant and the daemons; and every
 * example query of doc/accounting.md.  The numbered steps phx-master records
 * are in test_acct_steps.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "tests/unit/support/acctfixture.h"
#include "tests/unit/support/sqltest.h"

static void test_acct_jobs(void **state)
{
    (void)state;
    char buf[4096];
    phx_db_conn_t *c = phx_acctfixture_db();
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT concat_ws('|', jobid, job_name, user_name, account, state, "
            "exit_code, elapsed_s, elapsed, cpu_time_s, alloc_cpus, total_cpu_s, "
            "max_rss_bytes, wait_s, timelimit) FROM acct_jobs WHERE state <> 'PENDING' "
            "ORDER BY job_id",
            buf, sizeof(buf)),
        "1|sim|alice|physics|COMPLETED|0:0|1801|00:30:01|28816|16|25302|2000000000|55|"
        "01:00:00 "
        "2|fail|alice|physics|FAILED|3:0|120|00:02:00|480|4|120|50000000|30|00:10:00 "
        "3|long|bob|chem|TIMEOUT|0:15|630|00:10:30|5040|8|4800|1000000000|0|00:10:00 "
        "4|big|bob|chem|OUT_OF_MEMORY|0:9|300|00:05:00|600|2|290|1073741824|10|01:00:"
        "00 "
        "5|night|alice|bio|CANCELLED|0:15|14400|04:00:00|115200|8|20000|3000000000|"
        "3600 "
        "6|never|bob|chem|CANCELLED|0:0|0|00:00:00|0|0|00:01:00 "
        "7_0|sweep|carol|physics|COMPLETED|0:0|600|00:10:00|600|1|500|1000000|0|00:20:"
        "00 "
        "7_1|sweep|carol|physics|FAILED|1:0|300|00:05:00|300|1|200|2000000|0|00:20:00 "
        "7_2|sweep|carol|physics|COMPLETED|0:0|600|00:10:00|600|1|550|3000000|0|00:20:"
        "00");
    /* A pending job has waited since it became eligible. */
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobid, state, elapsed_s, cpu_time_s, "
                         "wait_s > 86400, alloc_cpus IS NULL) FROM acct_jobs "
                         "WHERE state = 'PENDING'",
                         buf, sizeof(buf)),
        "10|PENDING|0|0|t|t");
    /* Elapsed matches end - start; CPUTime = Elapsed x AllocCPUS everywhere. */
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT count(*) FROM acct_jobs WHERE start IS NOT NULL AND \"end\" IS NOT "
            "NULL AND (elapsed <> \"end\" - start OR elapsed_s <> extract(epoch FROM "
            "\"end\" - start) OR cpu_time_s <> elapsed_s * alloc_cpus OR cpu_time <> "
            "elapsed * alloc_cpus OR total_cpu_s <> user_cpu_s + system_cpu_s)",
            buf, sizeof(buf)),
        "0");
    /* The request and the allocation. */
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT concat_ws('|', submit, eligible, start, \"end\", req_nodes, "
            "req_cpus, req_mem, alloc_nodes, alloc_mem, node_list, ntasks, "
            "work_dir, submit_line, submit_host, uid, gid, group_name, partition, qos, "
            "nsteps) FROM acct_jobs WHERE job_id = 1",
            buf, sizeof(buf)),
        "2024-03-01 10:00:00+00|2024-03-01 10:00:05+00|2024-03-01 10:01:00+00|"
        "2024-03-01 10:31:01+00|2|16|4096Mn|2|8192|n[01-02]|8|/home/alice|"
        "phx submit sim.sh|login1|1000|100|users|batch|normal|2");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', array_job_id, array_task_id) FROM "
                         "acct_jobs WHERE jobid LIKE '7\\_%' ORDER BY jobid",
                         buf, sizeof(buf)),
        "7|0 7|1 7|2");
    /* A running job's elapsed time runs until now. */
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET state = 'RUNNING', start_time = now() - interval '1 "
           "hour', node_list = 'n01', alloc_nodes = 1, alloc_cpus = 3 "
           "WHERE id = 10");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', state, elapsed_s BETWEEN 3600 AND "
                         "3700, cpu_time_s = 3 * elapsed_s, \"end\" IS NULL) "
                         "FROM acct_jobs WHERE job_id = 10",
                         buf, sizeof(buf)),
        "RUNNING|t|t|t");
    phx_db_conn_close(c);
}

static void test_acct_steps(void **state)
{
    (void)state;
    char buf[4096];
    phx_db_conn_t *c = phx_acctfixture_db();
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT concat_ws('|', jobid, job_name, state, exit_code, elapsed_s, "
            "alloc_cpus, cpu_time_s, total_cpu_s, max_rss_bytes, user_name) "
            "FROM acct_steps ORDER BY job_id, step_order",
            buf, sizeof(buf)),
        "1.batch|batch|COMPLETED|0:0|1801|2|3602|1.5|10000000|alice "
        "1.0|lmp|COMPLETED|0:0|1798|16|28768|25300.5|2000000000|alice "
        "2.batch|batch|FAILED|3:0|120|4|480|120|50000000|alice "
        "3.batch|batch|CANCELLED|0:15|630|8|5040|4800|1000000000|bob "
        "4.batch|batch|OUT_OF_MEMORY|0:9|300|2|600|290|1073741824|bob "
        "5.batch|batch|CANCELLED|0:15|14400|8|115200|20000|3000000000|alice "
        "7_0.batch|batch|COMPLETED|0:0|600|1|600|500|1000000|carol "
        "7_1.batch|batch|FAILED|1:0|300|1|300|200|2000000|carol "
        "7_2.batch|batch|COMPLETED|0:0|600|1|600|550|3000000|carol");
    /* The job's TotalCPU is the sum of its steps', MaxRSS their maximum. */
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT count(*) FROM acct_jobs j WHERE total_cpu_s <> "
                         "(SELECT coalesce(sum(total_cpu_s), 0) FROM acct_steps s "
                         "WHERE s.job_id = j.job_id) OR max_rss_bytes IS DISTINCT "
                         "FROM (SELECT max(max_rss_bytes) FROM acct_steps s WHERE "
                         "s.job_id = j.job_id)",
                         buf, sizeof(buf)),
        "0");
    /* Step ordering: batch, extern, 0, 1, ..., 10 */
    phx_sqltest_exec_ok(
        c, "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
           "alloc_cpus) VALUES (1, 'extern', 1, 1, 'n01', 1), (1, '10', 1, 1, "
           "'n01', 1), (1, '2', 1, 1, 'n01', 1)");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT jobid FROM acct_steps WHERE job_id = 1 "
                         "ORDER BY step_order",
                         buf, sizeof(buf)),
        "1.batch 1.extern 1.0 1.2 1.10");
    phx_db_conn_close(c);
}

#define USAGE_ROWS                                                                     \
    "SELECT concat_ws('|', day - date '2024-03-01', user_name, account, jobs, "        \
    "cpu_seconds, core_hours, round(total_cpu_s::numeric, 3)) FROM usage_daily "       \
    "ORDER BY day, user_name, account"

static void test_usage_daily(void **state)
{
    (void)state;
    char buf[4096], again[4096];
    phx_db_conn_t *c = phx_acctfixture_db();
    /* Job 5 spans midnight: 2 h on each day, its TotalCPU split alike; job 6
     * never started and job 10 has not ended: neither is charged. */
    assert_string_equal(phx_sqltest_rows(c, USAGE_ROWS, buf, sizeof(buf)),
                        "0|alice|bio|0|57600|16|10000.000 "
                        "0|alice|physics|2|29296|8.137777777777778|25422.000 "
                        "0|bob|chem|2|5640|1.5666666666666667|5090.000 "
                        "0|carol|physics|3|1500|0.4166666666666667|1250.000 "
                        "1|alice|bio|1|57600|16|10000.000");
    /* The same totals as the jobs charged. */
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT (SELECT sum(cpu_seconds) FROM usage_daily) = (SELECT "
            "sum(cpu_time_s) FROM acct_jobs WHERE state NOT IN ('PENDING', 'RUNNING'))",
            again, sizeof(again)),
        "t");
    /* The rebuild from the jobs table gives what the triggers kept. */
    phx_sqltest_exec_ok(c, "SELECT phx_acct_usage_rebuild()");
    assert_string_equal(phx_sqltest_rows(c, USAGE_ROWS, again, sizeof(again)), buf);
    phx_sqltest_exec_ok(c, "SELECT phx_acct_usage_rebuild('2024-03-02')");
    assert_string_equal(phx_sqltest_rows(c, USAGE_ROWS, again, sizeof(again)), buf);

    /* A correction of a finished job replaces its charge: job 2 ended a
     * minute later. */
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET end_time = end_time + interval '1 minute' WHERE id = 2");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
                         "WHERE user_name = 'alice' AND account = 'physics'",
                         buf, sizeof(buf)),
        "2|29536");
    /* A step's CPU time reported again after the end is counted once. */
    phx_sqltest_exec_ok(c, "UPDATE job_steps SET user_cpu_s = 150 WHERE job_id = 2");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT round(total_cpu_s::numeric, 3) FROM usage_daily "
                         "WHERE user_name = 'alice' AND account = 'physics'",
                         buf, sizeof(buf)),
        "25472.000");
    /* Requeued after NODE_FAIL: the run that ended stays charged, the next
     * run is charged when it ends. */
    phx_sqltest_exec_ok(c, "UPDATE jobs SET state = 'NODE_FAIL' WHERE id = 3");
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET state = 'PENDING', reason = 'NodeFailRequeued', "
           "requeue_count = 1, start_time = NULL, end_time = NULL, "
           "exit_signal = NULL WHERE id = 3");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
                         "WHERE user_name = 'bob'",
                         buf, sizeof(buf)),
        "2|5640");
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET state = 'RUNNING', start_time = '2024-03-01 20:00+00', "
           "reason = 'None' WHERE id = 3");
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET state = 'COMPLETED', end_time = '2024-03-01 20:01+00', "
           "exit_code = 0, exit_signal = 0 WHERE id = 3");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
                         "WHERE user_name = 'bob'",
                         buf, sizeof(buf)),
        "3|6120");
    assert_string_equal(
        phx_sqltest_rows(c, "SELECT restarts FROM acct_jobs WHERE job_id = 3", buf,
                         sizeof(buf)),
        "1");
    /* Purging jobs leaves the usage (as slurmdbd's rollups); a rebuild
     * recomputes it from the jobs that remain. */
    phx_sqltest_exec_ok(c, "DELETE FROM jobs WHERE user_name = 'carol'");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
                         "WHERE user_name = 'carol'",
                         buf, sizeof(buf)),
        "3|1500");
    phx_sqltest_exec_ok(c, "SELECT phx_acct_usage_rebuild()");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT count(*) FROM usage_daily WHERE user_name = 'carol'",
                         buf, sizeof(buf)),
        "0");
    phx_db_conn_close(c);
}

/* The batch step row as phx-batchd writes it at a run's end (rows.c):
 * inserted, or a later run's overwriting the last run's. */
#define BATCH_STEP(start, end, cpu)                                                    \
    "INSERT INTO job_steps (job_id, step_id, name, state, start_time, end_time, "      \
    "ntasks, nnodes, node_list, alloc_cpus, user_cpu_s, system_cpu_s) VALUES (10, "    \
    "'batch', 'batch', 'FAILED', '2024-03-01 " start "+00', '2024-03-01 " end "+00', " \
    "1, 1, 'n01', 4, " cpu ", 0) ON CONFLICT (job_id, step_id) DO UPDATE SET "         \
    "state = EXCLUDED.state, start_time = EXCLUDED.start_time, end_time = "            \
    "EXCLUDED.end_time, user_cpu_s = EXCLUDED.user_cpu_s, system_cpu_s = "             \
    "EXCLUDED.system_cpu_s"
#define RUN_START(t)                                                                   \
    "UPDATE jobs SET state = 'RUNNING', reason = 'None', alloc_cpus = 4, "             \
    "node_list = 'n01', alloc_nodes = 1, "                                             \
    "start_time = '2024-03-01 " t "+00' WHERE id = 10"
#define RUN_END(t)                                                                     \
    "UPDATE jobs SET state = 'FAILED', end_time = '2024-03-01 " t "+00', "             \
    "exit_code = 0, exit_signal = 15 WHERE id = 10"
#define REQUEUED                                                                       \
    "UPDATE jobs SET state = 'PENDING', reason = 'Priority', start_time = NULL, "      \
    "end_time = NULL, requeue_count = requeue_count + 1 WHERE id = 10"
#define BOB_CHEM                                                                       \
    "SELECT concat_ws('|', sum(jobs), sum(cpu_seconds), round(sum(total_cpu_s)::"      \
    "numeric, 3)) FROM usage_daily WHERE user_name = 'bob' AND account = 'chem'"

/* A requeued job (scontrol requeue) has several runs: each one's TotalCPU
 * is charged once in usage_daily, whatever the order in which its steps
 * and its job's states are written (db/migrations/010_run_cpu.sql). */
static void test_usage_requeued_runs(void **state)
{
    (void)state;
    char buf[256];
    phx_db_conn_t *c = phx_acctfixture_db();
    assert_string_equal(phx_sqltest_rows(c, BOB_CHEM, buf, sizeof(buf)),
                        "2|5640|5090.000");
    /* run 1 (job 10, pending in the fixture): a numbered step of 100 s CPU,
     * the end, then PENDING again before its batch step (7 s) is written,
     * as phx-batchd's store may order them */
    phx_sqltest_exec_ok(c, RUN_START("12:00"));
    phx_sqltest_exec_ok(
        c, "INSERT INTO job_steps (job_id, step_id, name, state, start_time, "
           "end_time, ntasks, nnodes, node_list, alloc_cpus, user_cpu_s, system_cpu_s) "
           "VALUES (10, '0', 'app', 'COMPLETED', '2024-03-01 12:00:10+00', "
           "'2024-03-01 12:05+00', 4, 1, 'n01', 4, 90, 10)");
    phx_sqltest_exec_ok(c, RUN_END("12:10"));
    phx_sqltest_exec_ok(c, REQUEUED);
    phx_sqltest_exec_ok(c, BATCH_STEP("12:00", "12:10", "7"));
    assert_string_equal(phx_sqltest_rows(c, BOB_CHEM, buf, sizeof(buf)),
                        "3|8040|5197.000");
    /* run 2: its batch step (20 s) overwrites run 1's after its end; run
     * 1's numbered step is not charged again */
    phx_sqltest_exec_ok(c, RUN_START("13:00"));
    phx_sqltest_exec_ok(c, RUN_END("13:10"));
    phx_sqltest_exec_ok(c, BATCH_STEP("13:00", "13:10", "20"));
    assert_string_equal(phx_sqltest_rows(c, BOB_CHEM, buf, sizeof(buf)),
                        "4|10440|5217.000");
    /* run 3: its batch step (30 s) written while it runs, then its end */
    phx_sqltest_exec_ok(c, REQUEUED);
    phx_sqltest_exec_ok(c, RUN_START("14:00"));
    phx_sqltest_exec_ok(c, BATCH_STEP("14:00", "14:10", "30"));
    phx_sqltest_exec_ok(c, RUN_END("14:10"));
    assert_string_equal(phx_sqltest_rows(c, BOB_CHEM, buf, sizeof(buf)),
                        "5|12840|5247.000");
    /* a correction of the last run replaces its charge alone */
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET end_time = '2024-03-01 14:20+00' WHERE id = 10");
    assert_string_equal(phx_sqltest_rows(c, BOB_CHEM, buf, sizeof(buf)),
                        "5|15240|5247.000");
    phx_db_conn_close(c);
}

/* Steps of a finished job written late, with little CPU time, none, or
 * theirs written after (020: a step written without CPU time does not call
 * the trigger's function): each one's CPU time charged once. */
#define LATE_STEP(id, cpu)                                                             \
    "INSERT INTO job_steps (job_id, step_id, state, start_time, end_time, ntasks, "    \
    "nnodes, node_list, alloc_cpus, user_cpu_s, system_cpu_s) SELECT 2, '" id "', "    \
    "'COMPLETED', start_time, end_time, 1, 1, 'n01', 1, " cpu                          \
    " FROM jobs WHERE id = 2"
#define ALICE_PHYSICS_CPU                                                              \
    "SELECT round(total_cpu_s::numeric, 3) FROM usage_daily "                          \
    "WHERE user_name = 'alice' AND account = 'physics'"

static void test_usage_late_steps(void **state)
{
    (void)state;
    char buf[256];
    phx_db_conn_t *c = phx_acctfixture_db();
    assert_string_equal(phx_sqltest_rows(c, ALICE_PHYSICS_CPU, buf, sizeof(buf)),
                        "25422.000");
    phx_sqltest_exec_ok(c, LATE_STEP("7", "0, 0.5"));
    phx_sqltest_exec_ok(c, LATE_STEP("8", "NULL, 0"));
    phx_sqltest_exec_ok(c, LATE_STEP("9", "0, NULL"));
    assert_string_equal(phx_sqltest_rows(c, ALICE_PHYSICS_CPU, buf, sizeof(buf)),
                        "25422.500");
    phx_sqltest_exec_ok(c, "UPDATE job_steps SET user_cpu_s = 2 WHERE job_id = 2 "
                           "AND step_id IN ('8', '9')");
    assert_string_equal(phx_sqltest_rows(c, ALICE_PHYSICS_CPU, buf, sizeof(buf)),
                        "25426.500");
    phx_sqltest_exec_ok(c, "SELECT phx_acct_usage_rebuild()");
    assert_string_equal(phx_sqltest_rows(c, ALICE_PHYSICS_CPU, buf, sizeof(buf)),
                        "25426.500");
    phx_db_conn_close(c);
}

static void test_users_see_their_own(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = phx_acctfixture_db();
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('alice')");
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('bob')");
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('bob')"); /* again: no error */

    phx_sqltest_as_role(c, "alice");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(jobid, ',' ORDER BY job_id) FROM "
                         "acct_jobs",
                         buf, sizeof(buf)),
        "1,2,5");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(jobid, ',' ORDER BY job_id, "
                         "step_order) FROM acct_steps",
                         buf, sizeof(buf)),
        "1.batch,1.0,2.batch,5.batch");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(DISTINCT user_name, ',') FROM usage_daily",
                         buf, sizeof(buf)),
        "alice");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT (SELECT count(*) FROM jobs) || '/' || (SELECT "
                         "count(*) FROM job_steps) || '/' || (SELECT count(DISTINCT "
                         "job_id) FROM job_events)",
                         buf, sizeof(buf)),
        "3/4/3");
    /* Asking for bob's job by id finds nothing. */
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT count(*) FROM acct_jobs WHERE job_id = 3 OR "
                         "user_name = 'bob'",
                         buf, sizeof(buf)),
        "0");
    /* ... and writes nothing. */
    phx_sqltest_exec_refused(c, "UPDATE jobs SET name = 'x' WHERE id = 1", "42501");
    phx_sqltest_exec_refused(c, "DELETE FROM jobs WHERE id = 1", "42501");
    phx_sqltest_exec_refused(c,
                             "INSERT INTO usage_daily (day, user_name, jobs) VALUES "
                             "('2024-01-01', 'alice', 100)",
                             "42501");
    phx_sqltest_exec_refused(c, "SELECT * FROM agents", "42501");
    phx_sqltest_as_role(c, NULL);

    phx_sqltest_as_role(c, "bob");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(jobid, ',' ORDER BY job_id) FROM "
                         "acct_jobs",
                         buf, sizeof(buf)),
        "3,4,6,10");
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT string_agg(user_name || ':' || cpu_seconds, ',') FROM usage_daily",
            buf, sizeof(buf)),
        "bob:5640");
    phx_sqltest_as_role(c, NULL);

    /* Revoked: nothing readable any more. */
    phx_sqltest_exec_ok(c, "SELECT phx_acct_revoke_user('bob')");
    phx_sqltest_as_role(c, "bob");
    phx_sqltest_exec_refused(c, "SELECT * FROM acct_jobs", "42501");
    phx_sqltest_as_role(c, NULL);
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('bob')");

    /* Names: Unix-like only, never reserved ones, never a role that
     * bypasses row-level security. */
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('bad name')", "22023");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('-x')", "22023");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('postgres')", "42939");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('phx_accountant')",
                             "42939");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('pg_monitor')", "42939");
    phx_sqltest_exec_ok(
        c, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
           "'rootish') THEN CREATE ROLE rootish BYPASSRLS; END IF; END $$");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('rootish')", "22023");
    /* Users cannot make users. */
    phx_sqltest_as_role(c, "alice");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_grant_user('mallory')", "42501");
    phx_sqltest_as_role(c, NULL);
    phx_db_conn_close(c);
}

static void test_accountant_reads_all_writes_nothing(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = phx_acctfixture_db();
    phx_sqltest_as_role(c, "phx_accountant");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT (SELECT count(*) FROM acct_jobs) || '/' || (SELECT "
                         "count(*) FROM acct_steps) || '/' || (SELECT count(*) FROM "
                         "usage_daily) || '/' || (SELECT count(*) FROM job_events) "
                         "|| '/' || (SELECT count(*) FROM agents)",
                         buf, sizeof(buf)),
        "10/9/5/27/0");
    static const char *const writes[] = {
        "INSERT INTO jobs (name, uid, gid, user_name, partition, spec, script, "
        "work_dir, submit_dir, submit_line, nodes_min, nodes_max, ntasks) VALUES "
        "('x', 1, 1, 'x', 'b', '{}', 's', '/', '/', 's', 1, 1, 1)",
        "UPDATE jobs SET state = 'COMPLETED' WHERE id = 10",
        "DELETE FROM jobs WHERE id = 1",
        "UPDATE job_steps SET user_cpu_s = 0",
        "DELETE FROM job_steps",
        "INSERT INTO job_events (job_id, to_state) VALUES (1, 'FAILED')",
        "DELETE FROM job_events",
        "INSERT INTO usage_daily (day, user_name) VALUES ('2024-01-01', 'x')",
        "UPDATE usage_daily SET jobs = 0",
        "DELETE FROM usage_daily",
        "TRUNCATE jobs CASCADE",
        "TRUNCATE usage_daily",
        "UPDATE agents SET drained = true",
        "SELECT nextval('jobs_id_seq')",
        "SELECT phx_acct_usage_rebuild()",
        "SELECT phx_acct_grant_user('mallory')",
        "CREATE TABLE mine (x int)",
        "ALTER TABLE jobs DISABLE ROW LEVEL SECURITY",
        "DROP VIEW acct_jobs",
    };
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
        phx_sqltest_exec_refused(c, writes[i], "42501");
    /* The views are not writable either (not automatically updatable). */
    phx_sqltest_exec_refused(c, "DELETE FROM acct_jobs", "55000");
    phx_sqltest_as_role(c, NULL);
    assert_string_equal(
        phx_sqltest_rows(c, "SELECT count(*) FROM jobs", buf, sizeof(buf)), "10");
    phx_db_conn_close(c);
}

/* Migration 017: the accountant reads every column of jobs and tasks but the
 * private ones (a job's script and environment, a task's command); the
 * owner reads them, and so does a user for their own jobs.  The column
 * list comes from the catalog, so a later migration that adds a column and
 * forgets to grant it fails here. */
static void test_accountant_not_private(void **state)
{
    (void)state;
    char buf[8192], sql[8400];
    phx_db_conn_t *c = phx_acctfixture_db();
    static const struct {
        const char *table, *private_cols;
    } tables[] = {{"jobs", "'spec', 'script'"}, {"tasks", "'command'"}};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM "
                 "pg_attribute WHERE attrelid = '%s'::regclass AND attnum > 0 AND NOT "
                 "attisdropped AND attname NOT IN (%s)",
                 tables[i].table, tables[i].private_cols);
        char cols[4096];
        snprintf(cols, sizeof(cols), "%s", phx_sqltest_rows(c, sql, buf, sizeof(buf)));
        assert_true(strlen(cols) > 100); /* the catalog query found the columns */
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT %s FROM %s) t", cols,
                 tables[i].table);
        phx_sqltest_as_role(c, "phx_accountant");
        phx_sqltest_rows(c, sql, buf, sizeof(buf));
        snprintf(sql, sizeof(sql), "SELECT * FROM %s", tables[i].table);
        phx_sqltest_exec_refused(c, sql, "42501");
        phx_sqltest_as_role(c, NULL);
    }
    phx_sqltest_as_role(c, "phx_accountant");
    assert_string_equal(
        phx_sqltest_rows(c, "SELECT count(*) FROM jobs", buf, sizeof(buf)), "10");
    phx_sqltest_exec_refused(c, "SELECT spec FROM jobs", "42501");
    phx_sqltest_exec_refused(c, "SELECT script FROM jobs WHERE id = 1", "42501");
    phx_sqltest_exec_refused(c, "SELECT command FROM tasks", "42501");
    phx_sqltest_exec_refused(c, "SELECT phx_accountant_grant_columns()", "42501");
    phx_sqltest_as_role(c, "alice"); /* her own jobs' scripts */
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT count(*) FROM jobs WHERE script <> '' "
                         "AND spec IS NOT NULL",
                         buf, sizeof(buf)),
        phx_sqltest_rows(c, "SELECT count(*) FROM jobs", buf + 4096, 4096));
    phx_sqltest_as_role(c, NULL);
    phx_db_conn_close(c);
}

static void test_daemon_role(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = phx_sqltest_fresh_db();
    phx_sqltest_exec_ok(c, "SET TimeZone = 'UTC'");
    phx_sqltest_as_role(c, "phx_daemon");
    phx_acctfixture_load(
        c, PHX_ACCTFIXTURE_BASE); /* the daemon writes jobs and steps... */
    /* ... sees every row, and the triggers keep usage_daily for it */
    assert_string_equal(
        phx_sqltest_rows(c, "SELECT count(*) FROM acct_jobs", buf, sizeof(buf)), "10");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT sum(jobs) || '/' || sum(cpu_seconds) FROM usage_daily",
                         buf, sizeof(buf)),
        "8/151636");
    /* which it cannot write itself */
    phx_sqltest_exec_refused(c, "UPDATE usage_daily SET jobs = 0", "42501");
    phx_sqltest_exec_refused(
        c, "INSERT INTO usage_daily (day, user_name) VALUES ('2024-01-01', 'x')",
        "42501");
    phx_sqltest_exec_refused(c, "SELECT phx_acct_usage_rebuild()", "42501");
    phx_sqltest_exec_ok(c, "DELETE FROM jobs WHERE id = 6");
    phx_sqltest_as_role(c, NULL);
    phx_db_conn_close(c);
}

/* ------------------------------------------------------------------------- */
/* doc/accounting.md: every ```sql block under "## Example queries" runs
 * against the fixture placed in the current month, as the accountant, and
 * returns rows. */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    fclose(mem);
    return text;
}

static void test_doc_examples(void **state)
{
    (void)state;
    char path[1200];
    snprintf(path, sizeof(path), "%s/doc/accounting.md", phx_sqltest_repo());
    char *doc = read_file(path);
    if (!doc)
        fail_msg("could not read %s", path);
    char *section = strstr(doc, "\n## Example queries");
    assert_non_null(section);
    char *end = strstr(section + 1, "\n## ");
    if (end)
        *end = '\0';

    phx_db_conn_t *c = phx_sqltest_fresh_db();
    phx_db_result_t *res = phx_sqltest_query(
        c, "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'", 0,
        NULL);
    char base[64];
    snprintf(base, sizeof(base), "%s", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    phx_acctfixture_load(c, base);
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('alice')");

    int examples = 0;
    for (char *p = section; (p = strstr(p, "\n```sql\n")) != NULL;) {
        char *sql = p + strlen("\n```sql\n");
        char *close = strstr(sql, "\n```");
        assert_non_null(close);
        *close = '\0';
        p = close + 1;
        examples++;
        phx_sqltest_as_role(c, "phx_accountant");
        res = phx_sqltest_query(c, sql, 0, NULL);
        int n = phx_db_result_rows(res);
        printf("example %d: %d rows, first: %s | %s\n", examples, n,
               n ? phx_db_result_get(res, 0, 0) : "-",
               n && phx_db_result_cols(res) > 1 ? phx_db_result_get(res, 0, 1) : "-");
        if (n == 0)
            fail_msg("example %d returned no rows:\n%s", examples, sql);
        phx_db_result_destroy(res);
        phx_sqltest_as_role(c, "alice"); /* users run them too, on their own rows */
        phx_db_result_destroy(phx_sqltest_query(c, sql, 0, NULL));
        phx_sqltest_as_role(c, NULL);
    }
    printf("%d example queries\n", examples);
    assert_true(examples >= 8);
    phx_db_conn_close(c);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acct_jobs),
        cmocka_unit_test(test_acct_steps),
        cmocka_unit_test(test_usage_daily),
        cmocka_unit_test(test_usage_requeued_runs),
        cmocka_unit_test(test_usage_late_steps),
        cmocka_unit_test(test_users_see_their_own),
        cmocka_unit_test(test_accountant_reads_all_writes_nothing),
        cmocka_unit_test(test_accountant_not_private),
        cmocka_unit_test(test_daemon_role),
        cmocka_unit_test(test_doc_examples),
    };
    return cmocka_run_group_tests(tests, phx_sqltest_setup, phx_sqltest_teardown);
}
