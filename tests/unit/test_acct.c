/* Accounting (db/migrations/004_accounting.sql) against a private PostgreSQL
 * with every migration of the repository applied: jobs written the way
 * phx-batchd writes them (PENDING, RUNNING with an allocation, steps, a final
 * state) that complete, fail, time out, run out of memory and get cancelled;
 * what acct_jobs, acct_steps and usage_daily say about them; row-level
 * security for per-user roles, the accountant and the daemons; and every
 * example query of doc/accounting.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/master/step_record.c"
#include "db/db.h"
#include "db/migrate.h"
#include "tests/unit/support/pgtest.h"

static phx_test_pg_t pg;
static char repo[1024];

/* ------------------------------------------------------------------------- */
/* SQL helpers */

static phx_db_conn_t *fresh_db(void)
{
    static int serial;
    char name[32], dsn[256], dir[1100];
    snprintf(name, sizeof(name), "acct%d", ++serial);
    snprintf(dir, sizeof(dir), "%s/db/migrations", repo);
    assert_int_equal(phx_test_pg_createdb(&pg, name, dsn, sizeof(dsn)), 0);
    phx_error_t err = {{0}};
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c)
        fail_msg("connect: %s", err.text);
    if (phx_db_migrate(c, dir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return c;
}

/* Run sql with parameters; a statement without "$1" gets none. */
static phx_db_result_t *query(phx_db_conn_t *c, const char *sql, int n,
                              const char *const *params)
{
    phx_error_t err = {{0}};
    phx_db_result_t *res = NULL;
    if (!strstr(sql, "$1"))
        n = 0;
    if (phx_db_query(c, sql, n, n ? params : NULL, &res, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
    return res;
}

static void exec_ok(phx_db_conn_t *c, const char *sql)
{
    phx_db_result_destroy(query(c, sql, 0, NULL));
}

/* The first column of every row, joined by " ". */
static const char *rows(phx_db_conn_t *c, const char *sql, char *buf, size_t len)
{
    phx_db_result_t *res = query(c, sql, 0, NULL);
    size_t used = 0;
    buf[0] = '\0';
    for (int r = 0; r < phx_db_result_rows(res); r++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", r ? " " : "",
                                 phx_db_result_get(res, r, 0));
    assert_true(used < len);
    phx_db_result_destroy(res);
    return buf;
}

/* Must fail with SQLSTATE state (42501 insufficient privilege, ...). */
static void exec_refused(phx_db_conn_t *c, const char *sql, const char *state)
{
    phx_error_t err = {{0}};
    char st[6];
    if (phx_db_query(c, sql, 0, NULL, NULL, &err) == 0)
        fail_msg("accepted: %s", sql);
    assert_true(phx_db_error_sqlstate(&err, st));
    if (strcmp(st, state) != 0)
        fail_msg("%s\n  want SQLSTATE %s\n  got %s", sql, state, err.text);
}

static void as_role(phx_db_conn_t *c, const char *role)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SET ROLE %s", role ? role : "NONE");
    exec_ok(c, sql);
}

/* ------------------------------------------------------------------------- */
/* Jobs as phx-batchd writes them.  Times are offsets from a base time
 * (intervals: "10:00" is ten hours); NULL means the job never got there. */

typedef struct step {
    const char *id, *name;
    int cpus;
    const char *start, *end;
    double user_s, sys_s;
    long long rss;
    const char *state;
    int code, sig;
} step_t;

typedef struct job {
    const char *name, *user, *account;
    int uid;
    int array_first; /* 0, or the fixture number (1-based) of the array's first task */
    int array_task;
    int nodes, ntasks, cpus_per_task, alloc_cpus;
    const char *mem_per_node; /* MiB, NULL = none */
    const char *time_limit;   /* seconds, NULL = UNLIMITED */
    const char *submit, *eligible, *start, *end;
    const char *state;
    int code, sig;
    bool steps_after_end; /* the steps' CPU times arrive after the job's end */
    step_t steps[2];
} job_t;

static const job_t fixture[] = {
    /* 1: two nodes, batch step and an MPI step: COMPLETED */
    {"sim",
     "alice",
     "physics",
     1000,
     0,
     0,
     2,
     8,
     2,
     16,
     "4096",
     "3600",
     "10:00",
     "10:00:05",
     "10:01",
     "10:31:01",
     "COMPLETED",
     0,
     0,
     false,
     {{"batch", "", 2, "10:01", "10:31:01", 1, 0.5, 10000000, "COMPLETED", 0, 0},
      {"0", "lmp", 16, "10:01:02", "10:31:00", 25000.5, 300, 2000000000, "COMPLETED", 0,
       0}}},
    /* 2: exits 3: FAILED 3:0 */
    {"fail",
     "alice",
     "physics",
     1000,
     0,
     0,
     1,
     1,
     4,
     4,
     NULL,
     "600",
     "11:00",
     NULL,
     "11:00:30",
     "11:02:30",
     "FAILED",
     3,
     0,
     false,
     {{"batch", "", 4, "11:00:30", "11:02:30", 100, 20, 50000000, "FAILED", 3, 0}}},
    /* 3: runs past its 10 minutes, SIGTERM: TIMEOUT 0:15 */
    {"long",
     "bob",
     "chem",
     1001,
     0,
     0,
     1,
     1,
     8,
     8,
     NULL,
     "600",
     "12:00",
     "12:00",
     "12:00",
     "12:10:30",
     "TIMEOUT",
     0,
     15,
     false,
     {{"batch", "", 8, "12:00", "12:10:30", 4700, 100, 1000000000, "CANCELLED", 0,
       15}}},
    /* 4: killed by the cgroup's memory limit: OUT_OF_MEMORY 0:9 */
    {"big",
     "bob",
     "chem",
     1001,
     0,
     0,
     1,
     1,
     2,
     2,
     "1024",
     "3600",
     "13:00",
     "13:00",
     "13:00:10",
     "13:05:10",
     "OUT_OF_MEMORY",
     0,
     9,
     false,
     {{"batch", "", 2, "13:00:10", "13:05:10", 250, 40, 1073741824, "OUT_OF_MEMORY", 0,
       9}}},
    /* 5: cancelled while running, over midnight; CPU times come in late */
    {"night",
     "alice",
     "bio",
     1000,
     0,
     0,
     1,
     1,
     8,
     8,
     NULL,
     NULL,
     "21:00",
     "21:00",
     "22:00",
     "1 day 02:00",
     "CANCELLED",
     0,
     15,
     true,
     {{"batch", "", 8, "22:00", "1 day 02:00", 19000, 1000, 3000000000, "CANCELLED", 0,
       15}}},
    /* 6: cancelled while pending: never charged */
    {"never", "bob",   "chem", 1001, 0,       0,           1, 1, 1,     0,    NULL,
     "60",    "14:00", NULL,   NULL, "14:30", "CANCELLED", 0, 0, false, {{0}}},
    /* 7-9: array sweep 0-2 of carol's */
    {"sweep",
     "carol",
     "physics",
     1002,
     7,
     0,
     1,
     1,
     1,
     1,
     NULL,
     "1200",
     "15:00",
     "15:00",
     "15:00",
     "15:10",
     "COMPLETED",
     0,
     0,
     false,
     {{"batch", "", 1, "15:00", "15:10", 500, 0, 1000000, "COMPLETED", 0, 0}}},
    {"sweep",
     "carol",
     "physics",
     1002,
     7,
     1,
     1,
     1,
     1,
     1,
     NULL,
     "1200",
     "15:00",
     "15:00",
     "15:00",
     "15:05",
     "FAILED",
     1,
     0,
     false,
     {{"batch", "", 1, "15:00", "15:05", 200, 0, 2000000, "FAILED", 1, 0}}},
    {"sweep",
     "carol",
     "physics",
     1002,
     7,
     2,
     1,
     1,
     1,
     1,
     NULL,
     "1200",
     "15:00",
     "15:10",
     "15:10",
     "15:20",
     "COMPLETED",
     0,
     0,
     false,
     {{"batch", "", 1, "15:10", "15:20", 550, 0, 3000000, "COMPLETED", 0, 0}}},
    /* 10: pending */
    {"queued", "bob",   "chem",  1001, 0,    0,         1, 1, 1,     0,    NULL,
     "60",     "16:00", "16:00", NULL, NULL, "PENDING", 0, 0, false, {{0}}},
};
#define NFIXTURE (sizeof(fixture) / sizeof(fixture[0]))

static void step_start(phx_db_conn_t *c, const char *base, const char *id,
                       const step_t *s)
{
    char cpus[16];
    snprintf(cpus, sizeof(cpus), "%d", s->cpus);
    const char *p[] = {base, id, s->id, s->name, s->start, cpus};
    phx_db_result_destroy(
        query(c,
              "INSERT INTO job_steps (job_id, step_id, name, start_time, ntasks, "
              "nnodes, node_list, alloc_cpus) VALUES ($2, $3, $4, "
              "$1::timestamptz + $5::interval, 1, 1, 'n01', $6)",
              6, p));
}

static void step_end(phx_db_conn_t *c, const char *base, const char *id,
                     const step_t *s)
{
    char user[32], sys[32], rss[32], code[16], sig[16];
    snprintf(user, sizeof(user), "%.3f", s->user_s);
    snprintf(sys, sizeof(sys), "%.3f", s->sys_s);
    snprintf(rss, sizeof(rss), "%lld", s->rss);
    snprintf(code, sizeof(code), "%d", s->code);
    snprintf(sig, sizeof(sig), "%d", s->sig);
    const char *p[] = {base, id, s->id, s->end, s->state, code, sig, user, sys, rss};
    phx_db_result_destroy(
        query(c,
              "UPDATE job_steps SET end_time = $1::timestamptz + $4::interval, state = "
              "$5::text, "
              "exit_code = $6, exit_signal = $7, user_cpu_s = $8, system_cpu_s = $9, "
              "max_rss_bytes = $10 WHERE job_id = $2 AND step_id = $3",
              10, p));
}

/* Insert the fixture with times from base; returns nothing, ids are 1..N. */
static void load_fixture(phx_db_conn_t *c, const char *base)
{
    char ids[NFIXTURE][24];
    for (size_t i = 0; i < NFIXTURE; i++) {
        const job_t *j = &fixture[i];
        char uid[16], nodes[16], ntasks[16], cpt[16], cpus[16], task[16], code[16],
            sig[16];
        snprintf(uid, sizeof(uid), "%d", j->uid);
        snprintf(nodes, sizeof(nodes), "%d", j->nodes);
        snprintf(ntasks, sizeof(ntasks), "%d", j->ntasks);
        snprintf(cpt, sizeof(cpt), "%d", j->cpus_per_task);
        snprintf(cpus, sizeof(cpus), "%d", j->alloc_cpus);
        snprintf(task, sizeof(task), "%d", j->array_task);
        snprintf(code, sizeof(code), "%d", j->code);
        snprintf(sig, sizeof(sig), "%d", j->sig);
        const char *array_of = j->array_first && j->array_task ? ids[j->array_first - 1]
                               : j->array_first                ? ""
                                                               : NULL;
        /* submission: PENDING */
        const char *p[] = {base,       j->name,
                           j->user,    uid,
                           j->account, j->time_limit,
                           nodes,      ntasks,
                           cpt,        j->mem_per_node,
                           j->submit,  j->eligible,
                           array_of,   array_of ? task : NULL};
        phx_db_result_t *res = query(
            c,
            "WITH n AS (SELECT nextval('jobs_id_seq') AS id) "
            "INSERT INTO jobs (id, array_job_id, array_task_id, array_spec, name, uid, "
            "gid, user_name, group_name, account, partition, qos, spec, script, "
            "work_dir, submit_dir, submit_line, submit_host, time_limit, nodes_min, "
            "nodes_max, ntasks, cpus_per_task, mem_per_node, submit_time, "
            "eligible_time) "
            "SELECT n.id, CASE WHEN $13::text IS NULL THEN NULL "
            "  ELSE coalesce(nullif($13::text, '')::bigint, n.id) END, $14::integer, "
            "  CASE WHEN $13::text IS NULL THEN NULL ELSE '0-2' END, $2::text, "
            "  $4::integer, 100, $3::text, 'users', $5::text, 'batch', 'normal', "
            "  jsonb_build_object('job_name', $2::text), '#!/bin/sh', '/home/' || "
            "$3::text, "
            "  '/home/' || $3::text, 'phx submit ' || $2::text || '.sh', 'login1', "
            "$6::integer, "
            "  $7::integer, $7::integer, $8::integer, $9::integer, $10::bigint, "
            "  $1::timestamptz + $11::interval, $1::timestamptz + $12::interval "
            "FROM n RETURNING id",
            14, p);
        snprintf(ids[i], sizeof(ids[i]), "%s", phx_db_result_get(res, 0, 0));
        phx_db_result_destroy(res);
        if (j->start) { /* started: RUNNING with its allocation, steps begin */
            const char *q[] = {base, ids[i], j->start, nodes, cpus};
            phx_db_result_destroy(query(
                c,
                "UPDATE jobs SET state = 'RUNNING', reason = 'None', start_time = "
                "$1::timestamptz + $3::interval, node_list = CASE WHEN $4::int > 1 "
                "THEN 'n[01-0' || $4 || ']' ELSE 'n01' END, alloc_nodes = $4::int, "
                "alloc_cpus = $5::int, alloc_mem = mem_per_node * $4::int "
                "WHERE id = $2",
                5, q));
            for (int s = 0; s < 2 && j->steps[s].id; s++)
                step_start(c, base, ids[i], &j->steps[s]);
            for (int s = 0; s < 2 && j->steps[s].id && !j->steps_after_end; s++)
                step_end(c, base, ids[i], &j->steps[s]);
        }
        if (j->end) { /* the end: final state, exit code */
            const char *q[] = {base, ids[i], j->state, j->end, code, sig};
            phx_db_result_destroy(query(c,
                                        "UPDATE jobs SET state = $3::text, end_time = "
                                        "$1::timestamptz + $4::interval, "
                                        "exit_code = $5::int, exit_signal = $6::int, "
                                        "cancel_uid = CASE WHEN $3::text "
                                        "= 'CANCELLED' THEN uid END WHERE id = $2",
                                        6, q));
        }
        for (int s = 0; s < 2 && j->steps[s].id && j->steps_after_end; s++)
            step_end(c, base, ids[i], &j->steps[s]);
    }
}

#define BASE "2024-03-01 00:00:00+00"

static phx_db_conn_t *loaded_db(void)
{
    phx_db_conn_t *c = fresh_db();
    exec_ok(c, "SET TimeZone = 'UTC'");
    load_fixture(c, BASE);
    return c;
}

/* ------------------------------------------------------------------------- */

static void test_acct_jobs(void **state)
{
    (void)state;
    char buf[4096];
    phx_db_conn_t *c = loaded_db();
    assert_string_equal(
        rows(
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
        rows(c,
             "SELECT concat_ws('|', jobid, state, elapsed_s, cpu_time_s, "
             "wait_s > 86400, alloc_cpus IS NULL) FROM acct_jobs "
             "WHERE state = 'PENDING'",
             buf, sizeof(buf)),
        "10|PENDING|0|0|t|t");
    /* Elapsed matches end - start; CPUTime = Elapsed x AllocCPUS everywhere. */
    assert_string_equal(
        rows(
            c,
            "SELECT count(*) FROM acct_jobs WHERE start IS NOT NULL AND \"end\" IS NOT "
            "NULL AND (elapsed <> \"end\" - start OR elapsed_s <> extract(epoch FROM "
            "\"end\" - start) OR cpu_time_s <> elapsed_s * alloc_cpus OR cpu_time <> "
            "elapsed * alloc_cpus OR total_cpu_s <> user_cpu_s + system_cpu_s)",
            buf, sizeof(buf)),
        "0");
    /* The request and the allocation. */
    assert_string_equal(
        rows(
            c,
            "SELECT concat_ws('|', submit, eligible, start, \"end\", req_nodes, "
            "req_cpus, req_mem, alloc_nodes, alloc_mem, node_list, ntasks, "
            "work_dir, submit_line, submit_host, uid, gid, group_name, partition, qos, "
            "nsteps) FROM acct_jobs WHERE job_id = 1",
            buf, sizeof(buf)),
        "2024-03-01 10:00:00+00|2024-03-01 10:00:05+00|2024-03-01 10:01:00+00|"
        "2024-03-01 10:31:01+00|2|16|4096Mn|2|8192|n[01-02]|8|/home/alice|"
        "phx submit sim.sh|login1|1000|100|users|batch|normal|2");
    assert_string_equal(rows(c,
                             "SELECT concat_ws('|', array_job_id, array_task_id) FROM "
                             "acct_jobs WHERE jobid LIKE '7\\_%' ORDER BY jobid",
                             buf, sizeof(buf)),
                        "7|0 7|1 7|2");
    /* A running job's elapsed time runs until now. */
    exec_ok(c, "UPDATE jobs SET state = 'RUNNING', start_time = now() - interval '1 "
               "hour', node_list = 'n01', alloc_nodes = 1, alloc_cpus = 3 "
               "WHERE id = 10");
    assert_string_equal(rows(c,
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
    phx_db_conn_t *c = loaded_db();
    assert_string_equal(
        rows(c,
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
    assert_string_equal(rows(c,
                             "SELECT count(*) FROM acct_jobs j WHERE total_cpu_s <> "
                             "(SELECT coalesce(sum(total_cpu_s), 0) FROM acct_steps s "
                             "WHERE s.job_id = j.job_id) OR max_rss_bytes IS DISTINCT "
                             "FROM (SELECT max(max_rss_bytes) FROM acct_steps s WHERE "
                             "s.job_id = j.job_id)",
                             buf, sizeof(buf)),
                        "0");
    /* Step ordering: batch, extern, 0, 1, ..., 10 */
    exec_ok(c, "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
               "alloc_cpus) VALUES (1, 'extern', 1, 1, 'n01', 1), (1, '10', 1, 1, "
               "'n01', 1), (1, '2', 1, 1, 'n01', 1)");
    assert_string_equal(rows(c,
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
    phx_db_conn_t *c = loaded_db();
    /* Job 5 spans midnight: 2 h on each day, its TotalCPU split alike; job 6
     * never started and job 10 has not ended: neither is charged. */
    assert_string_equal(rows(c, USAGE_ROWS, buf, sizeof(buf)),
                        "0|alice|bio|0|57600|16|10000.000 "
                        "0|alice|physics|2|29296|8.137777777777778|25422.000 "
                        "0|bob|chem|2|5640|1.5666666666666667|5090.000 "
                        "0|carol|physics|3|1500|0.4166666666666667|1250.000 "
                        "1|alice|bio|1|57600|16|10000.000");
    /* The same totals as the jobs charged. */
    assert_string_equal(
        rows(
            c,
            "SELECT (SELECT sum(cpu_seconds) FROM usage_daily) = (SELECT "
            "sum(cpu_time_s) FROM acct_jobs WHERE state NOT IN ('PENDING', 'RUNNING'))",
            again, sizeof(again)),
        "t");
    /* The rebuild from the jobs table gives what the triggers kept. */
    exec_ok(c, "SELECT phx_acct_usage_rebuild()");
    assert_string_equal(rows(c, USAGE_ROWS, again, sizeof(again)), buf);
    exec_ok(c, "SELECT phx_acct_usage_rebuild('2024-03-02')");
    assert_string_equal(rows(c, USAGE_ROWS, again, sizeof(again)), buf);

    /* A correction of a finished job replaces its charge: job 2 ended a
     * minute later. */
    exec_ok(c,
            "UPDATE jobs SET end_time = end_time + interval '1 minute' WHERE id = 2");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
             "WHERE user_name = 'alice' AND account = 'physics'",
             buf, sizeof(buf)),
        "2|29536");
    /* A step's CPU time reported again after the end is counted once. */
    exec_ok(c, "UPDATE job_steps SET user_cpu_s = 150 WHERE job_id = 2");
    assert_string_equal(rows(c,
                             "SELECT round(total_cpu_s::numeric, 3) FROM usage_daily "
                             "WHERE user_name = 'alice' AND account = 'physics'",
                             buf, sizeof(buf)),
                        "25472.000");
    /* Requeued after NODE_FAIL: the run that ended stays charged, the next
     * run is charged when it ends. */
    exec_ok(c, "UPDATE jobs SET state = 'NODE_FAIL' WHERE id = 3");
    exec_ok(c, "UPDATE jobs SET state = 'PENDING', reason = 'NodeFailRequeued', "
               "requeue_count = 1, start_time = NULL, end_time = NULL, "
               "exit_signal = NULL WHERE id = 3");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
             "WHERE user_name = 'bob'",
             buf, sizeof(buf)),
        "2|5640");
    exec_ok(c, "UPDATE jobs SET state = 'RUNNING', start_time = '2024-03-01 20:00+00', "
               "reason = 'None' WHERE id = 3");
    exec_ok(c, "UPDATE jobs SET state = 'COMPLETED', end_time = '2024-03-01 20:01+00', "
               "exit_code = 0, exit_signal = 0 WHERE id = 3");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
             "WHERE user_name = 'bob'",
             buf, sizeof(buf)),
        "3|6120");
    assert_string_equal(
        rows(c, "SELECT restarts FROM acct_jobs WHERE job_id = 3", buf, sizeof(buf)),
        "1");
    /* Purging jobs leaves the usage (as slurmdbd's rollups); a rebuild
     * recomputes it from the jobs that remain. */
    exec_ok(c, "DELETE FROM jobs WHERE user_name = 'carol'");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', jobs, cpu_seconds) FROM usage_daily "
             "WHERE user_name = 'carol'",
             buf, sizeof(buf)),
        "3|1500");
    exec_ok(c, "SELECT phx_acct_usage_rebuild()");
    assert_string_equal(
        rows(c, "SELECT count(*) FROM usage_daily WHERE user_name = 'carol'", buf,
             sizeof(buf)),
        "0");
    phx_db_conn_close(c);
}

static void test_users_see_their_own(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = loaded_db();
    exec_ok(c, "SELECT phx_acct_grant_user('alice')");
    exec_ok(c, "SELECT phx_acct_grant_user('bob')");
    exec_ok(c, "SELECT phx_acct_grant_user('bob')"); /* again: no error */

    as_role(c, "alice");
    assert_string_equal(rows(c,
                             "SELECT string_agg(jobid, ',' ORDER BY job_id) FROM "
                             "acct_jobs",
                             buf, sizeof(buf)),
                        "1,2,5");
    assert_string_equal(rows(c,
                             "SELECT string_agg(jobid, ',' ORDER BY job_id, "
                             "step_order) FROM acct_steps",
                             buf, sizeof(buf)),
                        "1.batch,1.0,2.batch,5.batch");
    assert_string_equal(
        rows(c, "SELECT string_agg(DISTINCT user_name, ',') FROM usage_daily", buf,
             sizeof(buf)),
        "alice");
    assert_string_equal(
        rows(c,
             "SELECT (SELECT count(*) FROM jobs) || '/' || (SELECT "
             "count(*) FROM job_steps) || '/' || (SELECT count(DISTINCT "
             "job_id) FROM job_events)",
             buf, sizeof(buf)),
        "3/4/3");
    /* Asking for bob's job by id finds nothing. */
    assert_string_equal(rows(c,
                             "SELECT count(*) FROM acct_jobs WHERE job_id = 3 OR "
                             "user_name = 'bob'",
                             buf, sizeof(buf)),
                        "0");
    /* ... and writes nothing. */
    exec_refused(c, "UPDATE jobs SET name = 'x' WHERE id = 1", "42501");
    exec_refused(c, "DELETE FROM jobs WHERE id = 1", "42501");
    exec_refused(c,
                 "INSERT INTO usage_daily (day, user_name, jobs) VALUES "
                 "('2024-01-01', 'alice', 100)",
                 "42501");
    exec_refused(c, "SELECT * FROM agents", "42501");
    as_role(c, NULL);

    as_role(c, "bob");
    assert_string_equal(rows(c,
                             "SELECT string_agg(jobid, ',' ORDER BY job_id) FROM "
                             "acct_jobs",
                             buf, sizeof(buf)),
                        "3,4,6,10");
    assert_string_equal(
        rows(c,
             "SELECT string_agg(user_name || ':' || cpu_seconds, ',') FROM usage_daily",
             buf, sizeof(buf)),
        "bob:5640");
    as_role(c, NULL);

    /* Revoked: nothing readable any more. */
    exec_ok(c, "SELECT phx_acct_revoke_user('bob')");
    as_role(c, "bob");
    exec_refused(c, "SELECT * FROM acct_jobs", "42501");
    as_role(c, NULL);
    exec_ok(c, "SELECT phx_acct_grant_user('bob')");

    /* Names: Unix-like only, never reserved ones, never a role that
     * bypasses row-level security. */
    exec_refused(c, "SELECT phx_acct_grant_user('bad name')", "22023");
    exec_refused(c, "SELECT phx_acct_grant_user('-x')", "22023");
    exec_refused(c, "SELECT phx_acct_grant_user('postgres')", "42939");
    exec_refused(c, "SELECT phx_acct_grant_user('phx_accountant')", "42939");
    exec_refused(c, "SELECT phx_acct_grant_user('pg_monitor')", "42939");
    exec_ok(c, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
               "'rootish') THEN CREATE ROLE rootish BYPASSRLS; END IF; END $$");
    exec_refused(c, "SELECT phx_acct_grant_user('rootish')", "22023");
    /* Users cannot make users. */
    as_role(c, "alice");
    exec_refused(c, "SELECT phx_acct_grant_user('mallory')", "42501");
    as_role(c, NULL);
    phx_db_conn_close(c);
}

static void test_accountant_reads_all_writes_nothing(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = loaded_db();
    as_role(c, "phx_accountant");
    assert_string_equal(
        rows(c,
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
        exec_refused(c, writes[i], "42501");
    /* The views are not writable either (not automatically updatable). */
    exec_refused(c, "DELETE FROM acct_jobs", "55000");
    as_role(c, NULL);
    assert_string_equal(rows(c, "SELECT count(*) FROM jobs", buf, sizeof(buf)), "10");
    phx_db_conn_close(c);
}

static void test_daemon_role(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = fresh_db();
    exec_ok(c, "SET TimeZone = 'UTC'");
    as_role(c, "phx_daemon");
    load_fixture(c, BASE); /* the daemon writes jobs and steps... */
    /* ... sees every row, and the triggers keep usage_daily for it */
    assert_string_equal(rows(c, "SELECT count(*) FROM acct_jobs", buf, sizeof(buf)),
                        "10");
    assert_string_equal(
        rows(c, "SELECT sum(jobs) || '/' || sum(cpu_seconds) FROM usage_daily", buf,
             sizeof(buf)),
        "8/151636");
    /* which it cannot write itself */
    exec_refused(c, "UPDATE usage_daily SET jobs = 0", "42501");
    exec_refused(c,
                 "INSERT INTO usage_daily (day, user_name) VALUES ('2024-01-01', 'x')",
                 "42501");
    exec_refused(c, "SELECT phx_acct_usage_rebuild()", "42501");
    exec_ok(c, "DELETE FROM jobs WHERE id = 6");
    as_role(c, NULL);
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
    snprintf(path, sizeof(path), "%s/doc/accounting.md", repo);
    char *doc = read_file(path);
    if (!doc)
        fail_msg("could not read %s", path);
    char *section = strstr(doc, "\n## Example queries");
    assert_non_null(section);
    char *end = strstr(section + 1, "\n## ");
    if (end)
        *end = '\0';

    phx_db_conn_t *c = fresh_db();
    phx_db_result_t *res = query(
        c, "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'", 0,
        NULL);
    char base[64];
    snprintf(base, sizeof(base), "%s", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    load_fixture(c, base);
    exec_ok(c, "SELECT phx_acct_grant_user('alice')");

    int examples = 0;
    for (char *p = section; (p = strstr(p, "\n```sql\n")) != NULL;) {
        char *sql = p + strlen("\n```sql\n");
        char *close = strstr(sql, "\n```");
        assert_non_null(close);
        *close = '\0';
        p = close + 1;
        examples++;
        as_role(c, "phx_accountant");
        res = query(c, sql, 0, NULL);
        int n = phx_db_result_rows(res);
        printf("example %d: %d rows, first: %s | %s\n", examples, n,
               n ? phx_db_result_get(res, 0, 0) : "-",
               n && phx_db_result_cols(res) > 1 ? phx_db_result_get(res, 0, 1) : "-");
        if (n == 0)
            fail_msg("example %d returned no rows:\n%s", examples, sql);
        phx_db_result_destroy(res);
        as_role(c, "alice"); /* users run them too, on their own rows */
        phx_db_result_destroy(query(c, sql, 0, NULL));
        as_role(c, NULL);
    }
    printf("%d example queries\n", examples);
    assert_true(examples >= 8);
    phx_db_conn_close(c);
    free(doc);
}

/* ------------------------------------------------------------------------- */
/* Numbered steps as phx-master records them (daemons/master/step_record.c). */

#define E2     "\xc3\xa9\xc3\xa9" /* "éé" */
#define E10    E2 E2 E2 E2 E2
#define E30    E10 E10 E10
#define E31    E30 "\xc3\xa9"
#define CLEF   "\xf0\x9d\x84\x9e" /* U+1D11E */
#define CLEF5  CLEF CLEF CLEF CLEF CLEF
#define CLEF15 CLEF5 CLEF5 CLEF5
#define CLEF16 CLEF15 CLEF

static void test_step_outcome(void **state)
{
    (void)state;
    int code, sig;
    const struct {
        int max_code, max_sig;
        bool aborted;
        int abort_code;
        phx_step_cause_t cause;
        const char *state;
        int code, sig;
    } cases[] = {
        {0, 0, false, 0, PHX_STEP_CAUSE_NONE, "COMPLETED", 0, 0},
        {3, 0, false, 0, PHX_STEP_CAUSE_NONE, "FAILED", 3, 0},
        {0, 9, false, 0, PHX_STEP_CAUSE_NONE, "FAILED", 0, 9},
        {1, 9, true, 42, PHX_STEP_CAUSE_NONE, "FAILED", 42, 0},  /* MPI_Abort(42) */
        {0, 9, true, 300, PHX_STEP_CAUSE_NONE, "FAILED", 44, 0}, /* as exit() */
        {0, 9, true, 130, PHX_STEP_CAUSE_CANCEL, "CANCELLED", 0, 9},
        {0, 15, true, 137, PHX_STEP_CAUSE_NODE_FAIL, "NODE_FAIL", 0, 15},
        {999, 999, false, 0, PHX_STEP_CAUSE_NONE, "FAILED", 255, 127},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *st =
            phx_step_rec_outcome(cases[i].max_code, cases[i].max_sig, cases[i].aborted,
                                 cases[i].abort_code, cases[i].cause, &code, &sig);
        assert_string_equal(st, cases[i].state);
        assert_int_equal(code, cases[i].code);
        assert_int_equal(sig, cases[i].sig);
    }
    phx_step_rec_t r = {0};
    phx_step_rec_set_name(&r, "/usr/bin/python3");
    assert_string_equal(r.name, "python3");
    phx_step_rec_set_name(&r, "lmp");
    assert_string_equal(r.name, "lmp");
    phx_step_rec_set_name(&r, NULL);
    assert_string_equal(r.name, "");
    /* Names are bytes: cut between UTF-8 characters, bad bytes become '?'. */
    const struct {
        const char *argv0, *name;
    } names[] = {
        {"/bin/\xe2\x82\xac", "\xe2\x82\xac"},
        {"ab" E31, "ab" E30}, /* 64 bytes: the last é does not fit */
        {"a\xff"
         "b" E31,
         "a?b" E30},                  /* 63 bytes once the 0xff is a '?' */
        {CLEF16, CLEF15},             /* 4-byte characters */
        {"x\xc0\xafy", "x??y"},       /* overlong '/' */
        {"\xed\xa0\x80", "???"},      /* a UTF-16 surrogate */
        {"\xf4\x90\x80\x80", "????"}, /* past U+10FFFF */
        {"ok\xe2\x82", "ok??"},       /* cut short */
        {"\x80z\xfe", "?z?"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        phx_step_rec_set_name(&r, names[i].argv0);
        if (strcmp(r.name, names[i].name) != 0)
            fail_msg("name %zu: \"%s\", want \"%s\"", i, r.name, names[i].name);
    }
    phx_step_rec_add_node(&r, "n01");
    phx_step_rec_add_node(&r, "n02");
    assert_string_equal(r.node_list, "n01,n02");
    for (int i = 0; i < 400; i++) /* bounded: a cut list ends in "+" */
        phx_step_rec_add_node(&r, "node1234");
    size_t len = strlen(r.node_list);
    assert_true(len < sizeof(r.node_list));
    assert_int_equal(r.node_list[len - 1], '+');
    /* Running: no end, exit or usage; ended: all of them. */
    phx_step_rec_params_t p;
    r.gang_id = 7;
    r.number = 2;
    r.start = 100.5;
    r.end = -1;
    phx_step_rec_params(&r, &p);
    assert_string_equal(p.p[0], "7");
    assert_string_equal(p.p[1], "2");
    assert_string_equal(p.p[3], "RUNNING");
    assert_null(p.p[5]);
    assert_null(p.p[10]);
    assert_null(p.p[12]);
    r.end = 99; /* a clock step back: never before the start */
    r.state = "FAILED";
    r.exit_code = 3;
    r.have_usage = true;
    r.user_s = 1.25;
    r.max_rss = 4096;
    phx_step_rec_params(&r, &p);
    assert_string_equal(p.p[5], "100.500000");
    assert_string_equal(p.p[10], "3");
    assert_string_equal(p.p[11], "0");
    assert_string_equal(p.p[12], "1.250000");
    assert_string_equal(p.p[14], "4096");
    /* the cut list goes as it is; a whole one compressed as Slurm does */
    assert_int_equal(p.p[8][strlen(p.p[8]) - 1], '+');
    phx_step_rec_t q = {0};
    phx_step_rec_add_node(&q, "n03");
    phx_step_rec_add_node(&q, "n01");
    phx_step_rec_add_node(&q, "n02");
    phx_step_rec_add_node(&q, "login1");
    phx_step_rec_params(&q, &p);
    assert_string_equal(p.p[8], "n[01-03],login1");
}

/* Record a step of argv0 as the master does: "job|linkable", the job id it
 * found ("" for none) and whether a job may still come (t/f). */
static const char *record_named(phx_db_conn_t *c, int64_t gang, int number,
                                const char *state, double user_s, const char *argv0,
                                char *buf, size_t len)
{
    phx_step_rec_t r = {.gang_id = gang,
                        .number = number,
                        .ntasks = 4,
                        .nnodes = 2,
                        .alloc_cpus = 4,
                        .state = state};
    phx_step_rec_set_name(&r, argv0);
    phx_step_rec_add_node(&r, "n01");
    phx_step_rec_add_node(&r, "n02");
    r.start = 1709290800; /* 2024-03-01 11:00 UTC */
    r.end = strcmp(state, "RUNNING") == 0 ? -1 : r.start + 60;
    if (r.end >= 0) {
        r.have_usage = true;
        r.user_s = user_s;
        r.system_s = 0.5;
        r.max_rss = 1 << 20;
    }
    phx_step_rec_params_t p;
    phx_step_rec_params(&r, &p);
    phx_db_result_t *res = query(c, phx_step_rec_sql, PHX_STEP_REC_NPARAMS, p.p);
    assert_int_equal(phx_db_result_rows(res), 1);
    snprintf(buf, len, "%s|%s", phx_db_result_get(res, 0, 0),
             phx_db_result_get(res, 0, 1));
    phx_db_result_destroy(res);
    return buf;
}

/* The job id the record found, "" for none. */
static const char *record_step(phx_db_conn_t *c, int64_t gang, int number,
                               const char *state, double user_s, char *buf, size_t len)
{
    record_named(c, gang, number, state, user_s, "/opt/lmp", buf, len);
    *strchr(buf, '|') = '\0';
    return buf;
}

/* A restarted master closes the numbered steps left running (CANCELLED, end
 * now, never before the start), nothing else.  Job 10 has step 0 of gang 4
 * running and step 1 ended; phx_daemon. */
static void test_step_close(phx_db_conn_t *c)
{
    char buf[1024];
    const char *p[] = {"CANCELLED"};
    assert_string_equal(record_step(c, 4, 2, "RUNNING", 0, buf, sizeof(buf)), "10");
    as_role(c, NULL);
    exec_ok(c, "UPDATE job_steps SET start_time = now() + interval '1 day' "
               "WHERE job_id = 10 AND step_id = '2'"); /* a clock ahead */
    /* not the master's: phx-batchd's batch step, a numbered step without a
     * gang (written by hand), an extern step */
    exec_ok(c, "INSERT INTO job_steps (job_id, step_id, name, state, start_time, "
               "ntasks, nnodes, node_list, alloc_cpus, gang_id) SELECT 10, s, s, "
               "'RUNNING', now() - interval '1 hour', 1, 1, 'n01', 1, g FROM (VALUES "
               "('batch', NULL), ('7', NULL), ('extern', 4)) v (s, g)");
    as_role(c, "phx_daemon");
    phx_db_result_t *res = query(c, phx_step_rec_close_sql, 1, p);
    assert_int_equal(phx_db_result_affected(res), 2);
    phx_db_result_destroy(res);
    assert_string_equal(
        rows(c,
             "SELECT string_agg(concat_ws('|', step_id, state, CASE WHEN end_time IS "
             "NULL THEN 'open' WHEN end_time = start_time THEN 'start' WHEN end_time "
             "BETWEEN now() - interval '1 minute' AND now() THEN 'now' ELSE 'before' "
             "END), ' ' ORDER BY step_id) FROM job_steps WHERE job_id = 10",
             buf, sizeof(buf)),
        "0|CANCELLED|now 1|COMPLETED|before 2|CANCELLED|start 7|RUNNING|open "
        "batch|RUNNING|open extern|RUNNING|open");
    res = query(c, phx_step_rec_close_sql, 1, p); /* nothing left */
    assert_int_equal(phx_db_result_affected(res), 0);
    phx_db_result_destroy(res);
    as_role(c, NULL);
    exec_ok(c, "DELETE FROM job_steps WHERE job_id = 10 AND step_id IN ('2', '7', "
               "'batch', 'extern')");
    as_role(c, "phx_daemon");
}

/* A long program name of multibyte characters and a byte that is not
 * UTF-8: recorded (cut between characters, the byte a '?'), where the bytes
 * as they came are refused for good (SQLSTATE 22021: no retry). */
static void test_step_bad_names(phx_db_conn_t *c)
{
    char buf[1024];
    assert_string_equal(record_named(c, 4, 5, "COMPLETED", 1.0,
                                     "/opt/a\xff"
                                     "b" E31,
                                     buf, sizeof(buf)),
                        "10|t");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', job_name = 'a?b' || repeat('\xc3\xa9', 30), "
             "octet_length(job_name), state) FROM acct_steps WHERE job_id = 10 AND "
             "step_id = '5'",
             buf, sizeof(buf)),
        "t|63|COMPLETED");
    phx_step_rec_t r = {.gang_id = 4, .number = 5, .state = "RUNNING", .end = -1};
    phx_step_rec_params_t p;
    phx_error_t err = {{0}};
    char st[6];
    phx_step_rec_params(&r, &p);
    p.p[2] = "ab" E30 "\xc3"; /* what a cut in a character left */
    assert_int_equal(
        phx_db_query(c, phx_step_rec_sql, PHX_STEP_REC_NPARAMS, p.p, NULL, &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "22021");
    assert_true(phx_step_rec_permanent(st));
    assert_true(phx_step_rec_permanent("23505"));
    assert_false(phx_step_rec_permanent("40001")); /* serialization: retried */
    assert_false(phx_step_rec_permanent("08006")); /* connection lost: retried */
    assert_false(phx_step_rec_permanent(NULL));
    as_role(c, NULL);
    exec_ok(c, "DELETE FROM job_steps WHERE job_id = 10 AND step_id = '5'");
    as_role(c, "phx_daemon");
}

static void test_step_records(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = loaded_db();
    /* Job 10 (bob) runs in gang 1 of phx-batchd's framework; a framework of
     * another user has a task of the same id in its gang 2. */
    exec_ok(c, "INSERT INTO agents (name, topology, sockets, numas, cores, pus, "
               "memory_bytes) VALUES ('n01', '{}', 1, 1, 4, 4, 0)");
    exec_ok(c, "INSERT INTO frameworks (id, name, user_name) VALUES "
               "('fw-b', 'phx-batchd', 'root'), ('fw-m', 'phx-batchd', 'mallory'), "
               "('fw-s', 'spark', 'carol'), ('fw-o', 'old-batch', 'root')");
    exec_ok(c, "INSERT INTO gangs (id, framework_id, ntasks, nagents) VALUES "
               "(1, 'fw-b', 2, 2), (2, 'fw-m', 1, 1), (4, 'fw-b', 1, 1), "
               "(5, 'fw-s', 1, 1), (6, 'fw-o', 1, 1)");
    exec_ok(c,
            "INSERT INTO tasks (framework_id, task_id, gang_id, agent_id, user_name, "
            "uid, cores, cpus, memory_bytes, command) SELECT f, t, g, a.id, 'bob', "
            "1001, '0', 1, 0, '{}' FROM agents a, (VALUES ('fw-b', '10.0', 1), "
            "('fw-b', '10.1', 1), ('fw-m', '10.0', 2), ('fw-b', '10.r1.0', 4), "
            "('fw-s', '10.0', 5), ('fw-o', 'w1', 6)) v (f, t, g)");
    /* fw-o ran job 6 once (under another name): it runs batch jobs */
    exec_ok(c, "UPDATE jobs SET framework_id = 'fw-o', batch_task_id = 'w0' "
               "WHERE id = 6");
    exec_ok(c,
            "UPDATE jobs SET state = 'RUNNING', start_time = '" BASE "'::timestamptz "
            "+ interval '10:59', node_list = 'n[01-02]', alloc_nodes = 2, "
            "alloc_cpus = 4, framework_id = 'fw-b', batch_task_id = '10.0' "
            "WHERE id = 10");
    as_role(c, "phx_daemon");
    assert_string_equal(record_step(c, 1, 0, "RUNNING", 0, buf, sizeof(buf)), "10");
    assert_string_equal(rows(c,
                             "SELECT concat_ws('|', jobid, job_name, state, exit_code, "
                             "ntasks, alloc_nodes, node_list, alloc_cpus, \"end\" IS "
                             "NULL, user_name) FROM acct_steps WHERE job_id = 10",
                             buf, sizeof(buf)),
                        "10.0|lmp|RUNNING|0:0|4|2|n[01-02]|4|t|bob");
    /* Not the job's: the other framework's gang, or no gang at all. */
    assert_string_equal(record_step(c, 2, 1, "RUNNING", 0, buf, sizeof(buf)), "");
    assert_string_equal(record_step(c, 3, 1, "RUNNING", 0, buf, sizeof(buf)), "");
    /* No job will ever come (no retries) only for a gang, visible, of a
     * framework that never ran a batch job and is not named phx-batchd
     * (whose first job's link may still be on its way). */
    const struct {
        int64_t gang;
        const char *want;
    } links[] = {{1, "10|t"}, {2, "|t"}, {3, "|t"}, {5, "|f"}, {6, "|t"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        assert_string_equal(
            record_named(c, links[i].gang, 0, "RUNNING", 0, "lmp", buf, sizeof(buf)),
            links[i].want);
    /* The end; a late RUNNING record of the same run changes nothing. */
    assert_string_equal(record_step(c, 1, 0, "FAILED", 2.0, buf, sizeof(buf)), "10");
    assert_string_equal(record_step(c, 1, 0, "RUNNING", 0, buf, sizeof(buf)), "10");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', jobid, state, exit_code, elapsed_s, "
             "cpu_time_s, total_cpu_s, max_rss_bytes) FROM acct_steps "
             "WHERE job_id = 10",
             buf, sizeof(buf)),
        "10.0|FAILED|0:0|60|240|2.5|1048576");
    assert_string_equal(
        rows(c,
             "SELECT concat_ws('|', nsteps, total_cpu_s) FROM acct_jobs "
             "WHERE job_id = 10",
             buf, sizeof(buf)),
        "1|2.5");
    assert_string_equal(record_step(c, 1, 1, "COMPLETED", 1.0, buf, sizeof(buf)), "10");
    /* Requeued: the new run (gang 4) replaces the old run's step 0; the old
     * gang is not the job's any more. */
    as_role(c, NULL);
    exec_ok(c, "UPDATE jobs SET batch_task_id = '10.r1.0' WHERE id = 10");
    as_role(c, "phx_daemon");
    assert_string_equal(record_step(c, 4, 0, "RUNNING", 0, buf, sizeof(buf)), "10");
    assert_string_equal(record_step(c, 1, 2, "RUNNING", 0, buf, sizeof(buf)), "");
    assert_string_equal(
        rows(c,
             "SELECT string_agg(concat_ws('|', jobid, state), ' ' ORDER "
             "BY step_order) FROM acct_steps WHERE job_id = 10",
             buf, sizeof(buf)),
        "10.0|RUNNING 10.1|COMPLETED");
    assert_string_equal(rows(c,
                             "SELECT string_agg(gang_id::text, ' ' ORDER BY step_id) "
                             "FROM job_steps WHERE job_id = 10",
                             buf, sizeof(buf)),
                        "4 1");
    test_step_close(c);
    test_step_bad_names(c);
    as_role(c, NULL);
    /* The job's end charges its steps' CPU (step 1's; the new step 0 has
     * reported none yet). */
    exec_ok(c, "CREATE TEMP TABLE before AS SELECT total_cpu_s FROM usage_daily "
               "WHERE user_name = 'bob' AND day = '2024-03-01'");
    exec_ok(c, "UPDATE jobs SET state = 'COMPLETED', end_time = start_time + interval "
               "'2 minutes', exit_code = 0, exit_signal = 0 WHERE id = 10");
    assert_string_equal(rows(c,
                             "SELECT u.total_cpu_s - b.total_cpu_s FROM usage_daily u, "
                             "before b WHERE u.user_name = 'bob' AND u.day = "
                             "'2024-03-01'",
                             buf, sizeof(buf)),
                        "1.5");
    /* Row-level security: the owner's steps only. */
    exec_ok(c, "SELECT phx_acct_grant_user('alice')");
    exec_ok(c, "SELECT phx_acct_grant_user('bob')");
    as_role(c, "alice");
    assert_string_equal(rows(c,
                             "SELECT (SELECT count(*) FROM acct_steps WHERE job_id = "
                             "10) || '/' || (SELECT count(*) FROM job_steps WHERE "
                             "job_id = 10)",
                             buf, sizeof(buf)),
                        "0/0");
    exec_refused(c, "UPDATE job_steps SET state = 'COMPLETED' WHERE job_id = 10",
                 "42501");
    as_role(c, "bob");
    assert_string_equal(rows(c,
                             "SELECT string_agg(jobid, ' ' ORDER BY step_order) FROM "
                             "acct_steps WHERE job_id = 10",
                             buf, sizeof(buf)),
                        "10.0 10.1");
    as_role(c, "phx_accountant");
    assert_string_equal(
        rows(c, "SELECT count(*) FROM acct_steps WHERE job_id = 10", buf, sizeof(buf)),
        "2");
    exec_refused(c, "DELETE FROM job_steps WHERE job_id = 10", "42501");
    as_role(c, NULL);
    phx_db_conn_close(c);
}

static int setup(void **state)
{
    (void)state;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return -1;
    exe[n] = '\0';
    for (int i = 0; i < 4; i++) /* <repo>/<build>/tests/unit/test_acct */
        *strrchr(exe, '/') = '\0';
    snprintf(repo, sizeof(repo), "%.1000s", exe);
    return phx_test_pg_start(&pg, NULL);
}

static int teardown(void **state)
{
    (void)state;
    phx_test_pg_stop(&pg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acct_jobs),
        cmocka_unit_test(test_acct_steps),
        cmocka_unit_test(test_usage_daily),
        cmocka_unit_test(test_users_see_their_own),
        cmocka_unit_test(test_accountant_reads_all_writes_nothing),
        cmocka_unit_test(test_daemon_role),
        cmocka_unit_test(test_doc_examples),
        cmocka_unit_test(test_step_outcome),
        cmocka_unit_test(test_step_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
