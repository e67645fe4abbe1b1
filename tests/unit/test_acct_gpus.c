/* GPU accounting (db/migrations/014_gpu_accounting.sql) against a private
 * PostgreSQL: a job whose run_tasks name its GPUs (as phx-batchd writes
 * them) has alloc_gpus, gpu_time_s and sacct's AllocTRES in acct_jobs, and
 * its GPU seconds split by day in usage_daily, kept by the triggers and
 * given again by phx_acct_usage_rebuild; a job without GPUs has none.  The
 * e2e test t0368 checks it with real jobs.  acct_run_gpus' answers on odd
 * run_tasks are pinned too (020 rewrote it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "tests/unit/support/sqltest.h"

/* A job of user gina from start to end (UTC), its run_tasks given. */
static void job(phx_db_conn_t *c, const char *id, const char *start, const char *end,
                const char *tasks, int cpus, int mem)
{
    char n[16], m[16];
    snprintf(n, sizeof(n), "%d", cpus);
    snprintf(m, sizeof(m), "%d", mem);
    const char *p[] = {id, start}, *run[] = {id, start, tasks, n, m},
               *fin[] = {id, end};
    phx_db_result_destroy(phx_sqltest_query(
        c,
        "INSERT INTO jobs (id, name, uid, gid, user_name, group_name, account, "
        "partition, qos, spec, script, work_dir, submit_dir, submit_line, submit_host, "
        "time_limit, nodes_min, nodes_max, ntasks, cpus_per_task, submit_time, "
        "eligible_time) VALUES ($1::bigint, 'g', 1002, 100, 'gina', 'users', 'ml', "
        "'batch', 'normal', '{}', '#!/bin/sh', '/home/gina', '/home/gina', 'phx "
        "submit g.sh', 'login1', 7200, 1, 2, 2, 1, $2::timestamptz, $2::timestamptz)",
        2, p));
    phx_db_result_destroy(phx_sqltest_query(
        c,
        "UPDATE jobs SET state = 'RUNNING', reason = 'None', start_time = $2, "
        "node_list = 'n[01-02]', alloc_nodes = jsonb_array_length($3::jsonb), "
        "alloc_cpus = $4::int, alloc_mem = $5::bigint, run_tasks = $3::jsonb "
        "WHERE id = $1::bigint",
        5, run));
    phx_db_result_destroy(
        phx_sqltest_query(c,
                          "UPDATE jobs SET state = 'COMPLETED', end_time = $2, "
                          "exit_code = 0, exit_signal = 0 WHERE id = $1::bigint",
                          2, fin));
}

static void test_gpu_accounting(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = phx_sqltest_fresh_db();
    phx_sqltest_exec_ok(c, "SET TimeZone = 'UTC'");
    /* 3 GPUs on 2 nodes, 23:00 to 01:00: an hour on each day */
    job(c, "101", "2024-03-01 23:00Z", "2024-03-02 01:00Z",
        "[{\"id\": \"101.0\", \"gpus\": [0, 1]}, {\"id\": \"101.1\", \"gpus\": [2]}]",
        4, 8192);
    /* no GPU (a row of before 014 has no "gpus" at all) */
    job(c, "102", "2024-03-02 10:00Z", "2024-03-02 10:10Z",
        "[{\"id\": \"102.0\", \"gpus\": []}, {\"id\": \"102.1\"}]", 2, 1500);
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobid, alloc_gpus, gpu_time_s, "
                         "gpu_time, alloc_tres) FROM acct_jobs ORDER BY job_id",
                         buf, sizeof(buf)),
        "101|3|21600|06:00:00|cpu=4,mem=8G,node=2,gres/gpu=3 "
        "102|0|0|00:00:00|cpu=2,mem=1500M,node=2");
    const char *usage = "SELECT concat_ws('|', day, jobs, cpu_seconds, gpu_seconds, "
                        "gpu_hours) FROM usage_daily ORDER BY day";
    assert_string_equal(phx_sqltest_rows(c, usage, buf, sizeof(buf)),
                        "2024-03-01|0|14400|10800|3 2024-03-02|2|15600|10800|3");
    /* the GPUs of a finished job corrected: its charge is replaced */
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET run_tasks = '[{\"gpus\": [0]}]' WHERE id = 101");
    assert_string_equal(phx_sqltest_rows(c, usage, buf, sizeof(buf)),
                        "2024-03-01|0|14400|3600|1 2024-03-02|2|15600|3600|1");
    /* the rebuild gives the same */
    phx_sqltest_exec_ok(c, "SELECT phx_acct_usage_rebuild()");
    assert_string_equal(phx_sqltest_rows(c, usage, buf, sizeof(buf)),
                        "2024-03-01|0|14400|3600|1 2024-03-02|2|15600|3600|1");
    /* a pending job has no AllocTRES and no GPUs */
    phx_sqltest_exec_ok(
        c,
        "INSERT INTO jobs (id, name, uid, gid, user_name, group_name, partition, qos, "
        "spec, script, work_dir, submit_dir, submit_line, submit_host, nodes_min, "
        "nodes_max, ntasks, cpus_per_task, submit_time) VALUES (103, 'p', 1002, "
        "100, 'gina', 'users', 'batch', 'normal', '{}', '', '/', '/', '', '', 1, 1, "
        "1, 1, now())");
    assert_string_equal(phx_sqltest_rows(c,
                                         "SELECT concat_ws('|', alloc_gpus, "
                                         "coalesce(alloc_tres, 'null')) FROM acct_jobs "
                                         "WHERE job_id = 103",
                                         buf, sizeof(buf)),
                        "0|null");
    phx_db_conn_close(c);
}

/* acct_run_gpus (014, rewritten by 020) on every shape run_tasks may take:
 * only the "gpus" arrays of the array's object elements count, each by its
 * number of elements. */
static void test_run_gpus_answers(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = phx_sqltest_fresh_db();
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT string_agg(coalesce(acct_run_gpus(j)::text, 'NULL'), ' ' ORDER BY "
            "i) "
            "FROM (VALUES (1, NULL::jsonb), (2, 'null'), (3, '5'), (4, '\"x\"'), "
            "(5, '{}'), (6, '{\"gpus\": [0, 1]}'), (7, '[]'), (8, '[null, 3, \"a\"]'), "
            "(9, '[{}]'), (10, '[{\"gpus\": null}]'), (11, '[{\"gpus\": 3}]'), "
            "(12, '[{\"gpus\": \"01\"}]'), (13, '[{\"gpus\": {\"a\": 1}}]'), "
            "(14, '[{\"gpus\": []}]'), (15, '[{\"gpus\": [0]}]'), "
            "(16, '[{\"gpus\": [0, 1]}, {\"gpus\": [2]}]'), "
            "(17, '[{\"gpus\": [[0, 1], [2]]}]'), (18, '[[{\"gpus\": [1]}]]'), "
            "(19, '[{\"x\": {\"gpus\": [1]}}]'), "
            "(20, '[{\"gpus\": [0, 1]}, {\"id\": \"a\"}, {\"gpus\": 5}, 7, null, "
            "[{\"gpus\": [1]}], {\"gpus\": [null, {}]}, {\"GPUS\": [1]}]')) v (i, j)",
            buf, sizeof(buf)),
        "0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 3 2 0 0 4");
    phx_db_conn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpu_accounting),
        cmocka_unit_test(test_run_gpus_answers),
    };
    return cmocka_run_group_tests(tests, phx_sqltest_setup, phx_sqltest_teardown);
}
