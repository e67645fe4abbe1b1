/* batchd: the jobs schema (db/migrations/NNN_jobs.sql) against a private
 * PostgreSQL: it applies after the earlier migrations, takes a job through
 * its life with a step, records every transition, refuses bad rows, and
 * yields the accounting fields of issue 9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "tests/unit/support/pgtest.h"
#include "tests/unit/support/paths.h"

static phx_test_pg_t pg;
static char repo[1024];
static char migdir[256];

static phx_db_conn_t *fresh_db(void)
{
    static int serial;
    char name[32], dsn[256];
    snprintf(name, sizeof(name), "j%d", ++serial);
    assert_int_equal(phx_test_pg_createdb(&pg, name, dsn, sizeof(dsn)), 0);
    phx_error_t err = {{0}};
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c)
        fail_msg("connect: %s", err.text);
    if (phx_db_migrate(c, migdir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return c;
}

static void exec_ok(phx_db_conn_t *c, const char *sql)
{
    phx_error_t err = {{0}};
    if (phx_db_query(c, sql, 0, NULL, NULL, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
}

/* Must fail with SQLSTATE state (23514 check, 23502 not null, ...). */
static void exec_refused(phx_db_conn_t *c, const char *sql, const char *state,
                         const char *what)
{
    phx_error_t err = {{0}};
    char st[6];
    if (phx_db_query(c, sql, 0, NULL, NULL, &err) == 0)
        fail_msg("accepted: %s", sql);
    assert_true(phx_db_error_sqlstate(&err, st));
    if (strcmp(st, state) || (what && !strstr(err.text, what))) {
        fprintf(stderr, "%s\n  want %s \"%s\"\n  got %s\n", sql, state,
                what ? what : "", err.text);
        fail();
    }
}

static const char *scalar(phx_db_conn_t *c, const char *sql, char *buf, size_t len)
{
    phx_error_t err = {{0}};
    phx_db_result_t *res = NULL;
    if (phx_db_query(c, sql, 0, NULL, &res, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
    assert_int_equal(phx_db_result_rows(res), 1);
    snprintf(buf, len, "%s", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    return buf;
}

#define INSERT_JOB                                                                     \
    "INSERT INTO jobs (name, uid, gid, user_name, account, partition, spec, script, "  \
    "work_dir, submit_dir, submit_line, time_limit, nodes_min, nodes_max, ntasks, "    \
    "cpus_per_task, mem_per_node, submit_time) VALUES ('sim', 1000, 100, 'alice', "    \
    "'physics', 'batch', '{\"job_name\":\"sim\",\"ntasks\":8}', '#!/bin/sh\necho', "   \
    "'/home/alice', '/home/alice', 'phx submit -n 8 sim.sh', 3600, 2, 2, 8, 2, 4096, " \
    "'2024-01-01 10:00:00+00') RETURNING id"

static void test_job_life_and_accounting(void **state)
{
    (void)state;
    char buf[256];
    phx_db_conn_t *c = fresh_db();
    assert_string_equal(scalar(c, INSERT_JOB, buf, sizeof(buf)), "1");
    assert_string_equal(
        scalar(c, "SELECT state || '/' || reason FROM jobs", buf, sizeof(buf)),
        "PENDING/None");
    assert_string_equal(
        scalar(c, "SELECT spec->>'job_name' FROM jobs WHERE id = 1", buf, sizeof(buf)),
        "sim");
    /* The queue index serves the daemon's scan. */
    exec_ok(c,
            "UPDATE jobs SET priority = 4294967295, reason = 'Priority' WHERE id = 1");
    exec_ok(c, "UPDATE jobs SET eligible_time = '2024-01-01 10:00:05+00' WHERE id = 1");
    exec_ok(c, "UPDATE jobs SET state = 'RUNNING', reason = 'None', "
               "start_time = '2024-01-01 10:01:00+00', node_list = 'n[01-02]', "
               "alloc_nodes = 2, alloc_cpus = 16, alloc_mem = 8192, "
               "tasks_per_node = '4(x2)' WHERE id = 1");
    exec_ok(c,
            "INSERT INTO job_steps (job_id, step_id, name, start_time, ntasks, nnodes, "
            "node_list, alloc_cpus) VALUES (1, 'batch', 'batch', "
            "'2024-01-01 10:01:00+00', 1, 1, 'n01', 2)");
    exec_ok(c,
            "INSERT INTO job_steps (job_id, step_id, name, start_time, ntasks, nnodes, "
            "node_list, alloc_cpus) VALUES (1, '0', 'lmp', "
            "'2024-01-01 10:01:02+00', 8, 2, 'n[01-02]', 16)");
    exec_ok(c, "UPDATE job_steps SET state = 'COMPLETED', end_time = '2024-01-01 "
               "10:31:00+00', exit_code = 0, exit_signal = 0, user_cpu_s = 25000.5, "
               "system_cpu_s = 300, max_rss_bytes = 2000000000 WHERE step_id = '0'");
    exec_ok(c, "UPDATE job_steps SET state = 'FAILED', end_time = '2024-01-01 "
               "10:31:01+00', exit_code = 0, exit_signal = 9, user_cpu_s = 1, "
               "system_cpu_s = 0.5, max_rss_bytes = 10000000 WHERE step_id = 'batch'");
    exec_ok(c, "UPDATE jobs SET state = 'FAILED', end_time = '2024-01-01 10:31:01+00', "
               "exit_code = 0, exit_signal = 9 WHERE id = 1");

    /* Every transition, in order, with its time. */
    assert_string_equal(
        scalar(
            c,
            "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state || '@' || "
            "to_char(time AT TIME ZONE 'UTC', 'HH24:MI:SS'), ' ' ORDER BY id) "
            "FROM job_events WHERE job_id = 1",
            buf, sizeof(buf)),
        "->PENDING@10:00:00 PENDING>RUNNING@10:01:00 RUNNING>FAILED@10:31:01");

    /* The sacct fields of issue 9, derived. */
    assert_string_equal(
        scalar(c,
               "SELECT concat_ws('|', j.id, j.user_name, j.account, j.partition, "
               " to_char(j.submit_time AT TIME ZONE 'UTC', 'HH24:MI:SS'), "
               " to_char(j.eligible_time AT TIME ZONE 'UTC', 'HH24:MI:SS'), "
               " extract(epoch FROM j.end_time - j.start_time)::bigint, " /* Elapsed */
               " j.time_limit, j.alloc_cpus, j.alloc_nodes, "
               " coalesce(j.mem_per_node || 'M', j.mem_per_cpu || 'Mc'), " /* ReqMem */
               " extract(epoch FROM j.end_time - j.start_time)::bigint * j.alloc_cpus, "
               " (SELECT sum(user_cpu_s + system_cpu_s) FROM job_steps s "
               "   WHERE s.job_id = j.id), " /* TotalCPU */
               " (SELECT max(max_rss_bytes) FROM job_steps s WHERE s.job_id = j.id), "
               " j.state, j.exit_code || ':' || j.exit_signal, j.node_list, j.ntasks, "
               " j.work_dir, j.submit_line) FROM jobs j WHERE j.id = 1",
               buf, sizeof(buf)),
        "1|alice|physics|batch|10:00:00|10:00:05|1801|3600|16|2|4096M|28816|25302|"
        "2000000000|FAILED|0:9|n[01-02]|8|/home/alice|phx submit -n 8 sim.sh");
    assert_string_equal(
        scalar(c,
               "SELECT string_agg(job_id || '.' || step_id, ',' ORDER BY "
               "start_time) FROM job_steps",
               buf, sizeof(buf)),
        "1.batch,1.0");
    /* Deleting a job takes its steps and events with it. */
    exec_ok(c, "DELETE FROM jobs WHERE id = 1");
    assert_string_equal(scalar(c, "SELECT count(*) FROM job_events", buf, sizeof(buf)),
                        "0");
    assert_string_equal(scalar(c, "SELECT count(*) FROM job_steps", buf, sizeof(buf)),
                        "0");
    phx_db_conn_close(c);
}

/* A hold and a release change the reason of a job that stays PENDING:
 * recorded (008), unlike the scheduler's Priority/Resources. */
static void test_holds_recorded(void **state)
{
    (void)state;
    char buf[512];
    phx_db_conn_t *c = fresh_db();
    assert_string_equal(scalar(c, INSERT_JOB, buf, sizeof(buf)), "1");
    exec_ok(c, "UPDATE jobs SET reason = 'Priority' WHERE id = 1");
    exec_ok(c,
            "UPDATE jobs SET state = 'PENDING', reason = 'JobHeldUser' WHERE id = 1");
    exec_ok(c, "UPDATE jobs SET reason = 'JobHeldAdmin' WHERE id = 1");
    exec_ok(c, "UPDATE jobs SET reason = 'Priority' WHERE id = 1");
    exec_ok(c, "UPDATE jobs SET reason = 'Resources' WHERE id = 1");
    exec_ok(c, "UPDATE jobs SET priority = 5 WHERE id = 1");
    assert_string_equal(
        scalar(
            c,
            "SELECT string_agg(coalesce(from_state::text, '-') || '>' || to_state || "
            "'/' || reason, ' ' ORDER BY id) FROM job_events WHERE job_id = 1",
            buf, sizeof(buf)),
        "->PENDING/None PENDING>PENDING/JobHeldUser PENDING>PENDING/JobHeldAdmin "
        "PENDING>PENDING/Priority");
    phx_db_conn_close(c);
}

static void test_constraints_refuse(void **state)
{
    (void)state;
    char buf[64];
    phx_db_conn_t *c = fresh_db();
    assert_string_equal(scalar(c, INSERT_JOB, buf, sizeof(buf)), "1");
    exec_refused(c, "UPDATE jobs SET state = 'DONE' WHERE id = 1", "23514",
                 "job_state");
    exec_refused(c, "UPDATE jobs SET state = 'running' WHERE id = 1", "23514", NULL);
    exec_refused(
        c,
        "UPDATE jobs SET state = 'RUNNING', node_list = 'n1', alloc_nodes = 2, "
        "alloc_cpus = 2 WHERE id = 1",
        "23514", "jobs_started");
    exec_refused(c,
                 "UPDATE jobs SET state = 'RUNNING', start_time = now() WHERE id = 1",
                 "23514", "jobs_allocated");
    exec_refused(c,
                 "UPDATE jobs SET state = 'COMPLETED', start_time = now() WHERE id = 1",
                 "23514", "jobs_ended");
    exec_refused(c,
                 "UPDATE jobs SET start_time = '2024-01-02', end_time = '2024-01-01' "
                 "WHERE id = 1",
                 "23514", "jobs_order");
    exec_refused(c, "UPDATE jobs SET mem_per_cpu = 100 WHERE id = 1", "23514",
                 "jobs_one_mem");
    exec_refused(c, "UPDATE jobs SET ntasks = 1 WHERE id = 1", "23514", "jobs_ntasks");
    exec_refused(c, "UPDATE jobs SET nodes_max = 1 WHERE id = 1", "23514",
                 "jobs_nodes");
    exec_refused(c, "UPDATE jobs SET array_task_id = 3 WHERE id = 1", "23514",
                 "jobs_array_ids");
    exec_refused(c, "UPDATE jobs SET exit_code = 256 WHERE id = 1", "23514", NULL);
    exec_refused(c, "UPDATE jobs SET priority = 4294967296 WHERE id = 1", "23514",
                 NULL);
    exec_refused(c, "UPDATE jobs SET spec = '[1]' WHERE id = 1", "23514", NULL);
    exec_refused(c, "UPDATE jobs SET time_limit = 0 WHERE id = 1", "23514", NULL);
    exec_refused(c, "UPDATE jobs SET cpus_per_task = 0 WHERE id = 1", "23514", NULL);
    exec_refused(c, "UPDATE jobs SET name = NULL WHERE id = 1", "23502", NULL);
    /* A cancelled pending job has no start; that is allowed. */
    exec_ok(c, "UPDATE jobs SET state = 'CANCELLED', end_time = now(), cancel_uid = 0 "
               "WHERE id = 1");
    /* Steps */
    exec_refused(c,
                 "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
                 "alloc_cpus) VALUES (1, 'x1', 1, 1, 'n01', 1)",
                 "23514", NULL);
    exec_refused(c,
                 "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
                 "alloc_cpus, state) VALUES (1, '0', 1, 1, 'n01', 1, 'ZOMBIE')",
                 "23514", "job_state");
    exec_refused(c,
                 "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
                 "alloc_cpus, state) VALUES (1, '0', 1, 1, 'n01', 1, 'COMPLETED')",
                 "23514", "job_steps_ended");
    exec_refused(c,
                 "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
                 "alloc_cpus) VALUES (99, '0', 1, 1, 'n01', 1)",
                 "23503", NULL);
    exec_ok(c, "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
               "alloc_cpus) VALUES (1, '12', 1, 1, 'n01', 1)");
    exec_refused(c,
                 "INSERT INTO job_steps (job_id, step_id, ntasks, nnodes, node_list, "
                 "alloc_cpus) VALUES (1, '12', 1, 1, 'n01', 1)",
                 "23505", NULL);
    exec_refused(c, "INSERT INTO job_events (job_id, to_state) VALUES (1, 'LOST')",
                 "23514", NULL);
    phx_db_conn_close(c);
}

static void test_arrays_and_queue_order(void **state)
{
    (void)state;
    char buf[256];
    phx_db_conn_t *c = fresh_db();
    /* The first task's id is the array's id, written in the same statement. */
    exec_ok(c,
            "WITH first AS (SELECT nextval('jobs_id_seq') AS id) "
            "INSERT INTO jobs (id, array_job_id, array_task_id, array_spec, name, uid, "
            "gid, user_name, partition, spec, script, work_dir, submit_dir, "
            "submit_line, nodes_min, nodes_max, ntasks, priority) "
            "SELECT first.id + t, first.id, t, '0-2', 'arr', 1, 1, 'bob', 'batch', "
            "'{}', '#!/bin/sh', '/', '/', 'phx submit -a 0-2 a.sh', 1, 1, 1, 10 - t "
            "FROM first, generate_series(0, 2) t");
    exec_ok(c, "SELECT setval('jobs_id_seq', (SELECT max(id) FROM jobs))");
    assert_string_equal(scalar(c, INSERT_JOB, buf, sizeof(buf)), "4");
    assert_string_equal(
        scalar(c,
               "SELECT string_agg(array_job_id || '_' || array_task_id, "
               "' ' ORDER BY id) FROM jobs WHERE array_job_id IS NOT NULL",
               buf, sizeof(buf)),
        "1_0 1_1 1_2");
    exec_refused(
        c,
        "INSERT INTO jobs (array_job_id, array_task_id, name, uid, gid, "
        "user_name, partition, spec, script, work_dir, submit_dir, submit_line, "
        "nodes_min, nodes_max, ntasks) VALUES (1, 2, 'dup', 1, 1, 'bob', 'b', "
        "'{}', 's', '/', '/', 's', 1, 1, 1)",
        "23505", "jobs_array");
    assert_string_equal(
        scalar(c,
               "SELECT string_agg(id::text, ',' ORDER BY priority DESC, "
               "submit_time, id) FROM jobs WHERE state = 'PENDING'",
               buf, sizeof(buf)),
        "1,2,3,4");
    phx_db_conn_close(c);
}

/* Copy the .sql files of db/migrations into a private directory, renumbered 001, 002...
 * in their order, so that this test checks the jobs schema after whatever
 * precedes it, whatever numbers the files carry. */
static int prepare_migrations(void)
{
    char src[1200];
    snprintf(src, sizeof(src), "%s/db/migrations", repo);
    snprintf(migdir, sizeof(migdir), "/tmp/phx-batch-schema.XXXXXX");
    if (!mkdtemp(migdir))
        return -1;
    struct dirent **list;
    int n = scandir(src, &list, NULL, alphasort);
    if (n < 0)
        return -1;
    int v = 0;
    bool jobs = false;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        size_t len = strlen(name);
        const char *us = strchr(name, '_');
        if (len > 4 && !strcmp(name + len - 4, ".sql") && us) {
            char from[1500], to[600], cmd[2200];
            snprintf(from, sizeof(from), "%s/%s", src, name);
            snprintf(to, sizeof(to), "%s/%03d%s", migdir, ++v, us);
            snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
            if (system(cmd) != 0)
                return -1;
            jobs |= strstr(name, "_jobs.sql") != NULL;
        }
        free(list[i]);
    }
    free(list);
    return jobs ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    if (phx_test_repo_dir(repo, sizeof(repo)) < 0)
        return -1;
    if (prepare_migrations() < 0) {
        fprintf(stderr, "could not prepare the migrations\n");
        return -1;
    }
    return phx_test_pg_start(&pg, NULL);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    phx_test_pg_stop(&pg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", migdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_life_and_accounting),
        cmocka_unit_test(test_constraints_refuse),
        cmocka_unit_test(test_holds_recorded),
        cmocka_unit_test(test_arrays_and_queue_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
