/* batchd's row writes (daemons/batchd/rows.c) against the real migrations in
 * a private PostgreSQL: the one-row form, statement by statement, and the
 * many-row form, all rows meeting in one group commit of the store, leave
 * the same jobs, job_events, job_steps and usage_daily behind, for values an
 * array literal must carry exactly (NULLs, quotes, backslashes, commas,
 * braces, newlines, UTF-8, JSON) and for a job's whole life (submission,
 * start with its allocation, end, batch step).  And migration 006 moves the
 * tasks of a run out of jobs.spec, where batchd wrote them before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/batchd/rows.c"
#include "db/migrate.h"
#include "tests/unit/support/paths.h"
#include "tests/unit/support/storetest.h"

static phx_test_pg_t pg;

enum { NJOBS = 6, MAXP = 33 };

/* Rows of one kind: NJOBS of them, params[i][k]. */
typedef struct rowset {
    const phx_db_rows_t *kind;
    const char *params[NJOBS][MAXP];
} rowset_t;

/* Each row alone, with the one-row statement. */
static void write_one_by_one(store_env_t *e, const rowset_t *set)
{
    for (int i = 0; i < NJOBS; i++) {
        phx_error_t err = {{0}};
        if (phx_db_query(e->conn, set->kind->one, set->kind->nparams, set->params[i],
                         NULL, &err) < 0)
            fail_msg("row %d, one-row form: %s", i, err.text);
    }
}

/* Every row queued while the DB thread is held, so that they meet in one
 * group and go as one many-row statement (the store's count says so). */
static void write_together(store_env_t *e, const rowset_t *set)
{
    phx_db_store_stats_t before, after;
    phx_db_store_stats(e->store, &before);
    int done = 0;
    store_rec_t hold = {.done = &done}, r[NJOBS] = {{0}};
    store_hold_thread(e, &hold, "0.3");
    for (int i = 0; i < NJOBS; i++) {
        r[i].done = &done;
        phx_error_t err = {{0}};
        assert_int_equal(phx_db_store_write_row(e->store, set->kind, set->params[i],
                                                store_rec_done, &r[i], &err),
                         0);
    }
    store_run_until(e, &done, NJOBS + 1);
    for (int i = 0; i < NJOBS; i++)
        if (r[i].failed)
            fail_msg("row %d, many-row form: %s", i, r[i].text);
    phx_db_store_stats(e->store, &after);
    assert_int_equal(after.rows_merged - before.rows_merged, NJOBS);
}

static char *text_of(store_env_t *e, const char *sql)
{
    phx_error_t err = {{0}};
    phx_db_result_t *res = NULL;
    if (phx_db_query(e->conn, sql, 0, NULL, &res, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
    char *s = strdup(phx_db_result_isnull(res, 0, 0) ? "<null>"
                                                     : phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    return s;
}

/* The tables as JSON, without what now() writes. */
static const char *const TABLES[] = {
    "SELECT jsonb_agg(to_jsonb(j) - 'updated_at' ORDER BY id) FROM jobs j",
    "SELECT jsonb_agg(to_jsonb(e) - 'id' ORDER BY job_id, time, to_state) "
    "FROM job_events e",
    "SELECT jsonb_agg(to_jsonb(s) ORDER BY job_id, step_id) FROM job_steps s",
    "SELECT jsonb_agg(to_jsonb(u) ORDER BY day, user_name, account) "
    "FROM usage_daily u",
};

static void assert_same_tables(store_env_t *a, store_env_t *b, const char *after)
{
    for (size_t t = 0; t < sizeof(TABLES) / sizeof(*TABLES); t++) {
        char *x = text_of(a, TABLES[t]), *y = text_of(b, TABLES[t]);
        if (strcmp(x, y) != 0)
            fail_msg("after %s, %s differs:\none-row:  %s\nmany-row: %s", after,
                     TABLES[t], x, y);
        free(x);
        free(y);
    }
}

static void write_both(store_env_t *a, store_env_t *b, const rowset_t *set,
                       const char *what)
{
    write_one_by_one(a, set);
    write_together(b, set);
    assert_same_tables(a, b, what);
}

static void test_a_jobs_life_same_either_way(void **state)
{
    (void)state;
    store_env_t *a = store_env_migrated(&pg), *b = store_env_migrated(&pg);
    static const char *const names[NJOBS] = {
        "plain", "it's \"quoted\"", "back\\slash\\", "a,b {braces}",
        "NULL",  "ünïcødé €",
    };
    static const char *const scripts[NJOBS] = {
        "#!/bin/sh\n/bin/true\n",
        "#!/bin/sh\necho \"$HOME\" 'x' \\\n  y\n",
        "#!/bin/bash\n#SBATCH -J {a,b}\nprintf '%s\\n' \"\\\\\"\n",
        "",
        "\t  spaced  \n",
        "#!/bin/sh\necho ünïcødé\n",
    };
    static const char *const specs[NJOBS] = {
        "{}",
        "{\"batchd\": {\"env\": {\"A\": \"x\\\"y\", \"B\": \"{1,2}\"}, \"tasks\": []}}",
        "{\"k\": \"back\\\\slash\", \"n\": null, \"t\": [1, 2.5, true]}",
        "{\"batchd\": {\"tasks\": [], \"args\": [\"a b\", \"\"]}}",
        "{\"u\": \"ünï\"}",
        "{\"nested\": {\"deep\": {\"x\": \"NULL\"}}}",
    };
    static const char *const keys[NJOBS] = {
        NULL, "k-1", "k,\"2\"", NULL, "k-4", "k-5",
    };
    rowset_t ins = {.kind = &batchd_job_insert_rows};
    char ids[NJOBS][8];
    for (int i = 0; i < NJOBS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%d", 100 + i);
        const char *p[MAXP] = {
            ids[i],
            names[i],
            i % 2 ? "1000" : "0",
            "100",
            i % 2 ? "alice" : "root",
            i == 3 ? NULL : "grp",
            i == 2 ? NULL : "acct-\"x\"",
            "batch",
            i == 4 ? NULL : "normal",
            i == 1 ? "Dependency" : "Priority",
            "0",
            specs[i],
            scripts[i],
            "/home/a b/{w}",
            "/tmp",
            "phx submit -J \"x\" job.sh",
            i == 5 ? NULL : "host,1",
            i == 1 ? "afterok:1" : NULL,
            i == 0 ? NULL : "3600",
            "1",
            i == 2 ? "4" : "1",
            i == 2 ? "8" : "1",
            i == 3 ? "2" : NULL,
            "1",
            i == 4 ? "0" : NULL,
            i == 5 ? "512" : NULL,
            i % 3 == 0 ? "true" : "false",
            i % 2 ? "true" : "false",
            i == 0 ? "1893456000" : NULL,
            i == 1 ? NULL : "1793456000",
            "1793456000",
            i % 3 == 0 ? NULL : keys[i],
            i % 3 == 0 ? NULL : "0123456789abcdef\"{,}",
        };
        memcpy(ins.params[i], p, sizeof(p));
    }
    write_both(a, b, &ins, "the submissions");

    /* Started (with an allocation, outputs, the batch task), then ended;
     * job 101 stays pending with a new reason and priority. */
    rowset_t run = {.kind = &batchd_job_state_rows}, end = run;
    for (int i = 0; i < NJOBS; i++) {
        bool pend = i == 1;
        const char *p[MAXP] = {
            ids[i],
            pend ? "PENDING" : "RUNNING",
            pend ? "Resources" : "None",
            pend ? "4294967295" : "12345",
            pend ? "1793456001" : "1793456000",
            pend ? NULL : "1793456010",
            NULL,
            NULL,
            NULL,
            "0",
            pend ? NULL : "n[01-02],x\"y",
            pend ? NULL : "3",
            pend ? NULL : "2",
            pend ? NULL : "1024",
            pend ? NULL : "2(x2)",
            pend ? "[]" : "[{\"id\": \"t,1\", \"host\": \"n\\\"01\"}]",
            pend ? NULL : "fw-1",
            pend ? NULL : "batch-{x}",
            i == 2 ? "/o/%j \"x\".out" : NULL,
            i == 2 ? "/e/err" : NULL,
            i == 3 ? "debug" : NULL, /* the partition it runs in, of its list */
            i == 0   ? "hold_admin"
            : i == 3 ? "requeue"
                     : NULL, /* requeue asked */
        };
        memcpy(run.params[i], p, sizeof(p));
        static const char *const ends[NJOBS] = {"COMPLETED", "CANCELLED",
                                                "FAILED",    "TIMEOUT",
                                                "NODE_FAIL", "OUT_OF_MEMORY"};
        const char *q[MAXP] = {
            ids[i],
            ends[i],
            "None",
            "12345",
            "1793456000",
            pend ? NULL : "1793456010",
            "1793456099",
            i == 2 ? "255" : "0",
            i == 3 ? "9" : "0",
            i == 4 ? "1" : "0",
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            "[{\"id\": \"t,1\", \"ended\": true}]",
            NULL,
            NULL,
            NULL,
            NULL,
        };
        memcpy(end.params[i], q, sizeof(q));
    }
    write_both(a, b, &run, "the starts");
    /* the batch steps, first as started, then ended (ON CONFLICT) */
    rowset_t step = {.kind = &batchd_batch_step_rows}, stepped = step;
    for (int i = 0; i < NJOBS; i++) {
        const char *p[MAXP] = {
            ids[i], "RUNNING", "1793456010", NULL, i == 3 ? "n\"01" : "n01", "2", NULL,
            NULL,   NULL,      NULL,         NULL};
        memcpy(step.params[i], p, sizeof(p));
        const char *q[MAXP] = {ids[i],
                               "COMPLETED",
                               "1793456010",
                               "1793456099",
                               "n01",
                               "2",
                               i == 2 ? "255" : "0",
                               "0",
                               i == 0 ? NULL : "1.250000",
                               "0.000001",
                               i == 5 ? NULL : "1048576"};
        memcpy(stepped.params[i], q, sizeof(q));
    }
    for (int i = 0; i < NJOBS; i++) /* job 101 never started */
        if (i == 1) {
            step.params[i][1] = "CANCELLED";
            step.params[i][3] = "1793456099";
        }
    write_both(a, b, &step, "the batch steps' starts");
    write_both(a, b, &end, "the ends");
    write_both(a, b, &stepped, "the batch steps' ends");
    /* not vacuous: every job went through, with its usage */
    char *n = text_of(a, "SELECT count(*) || ' ' || count(end_time) || ' ' || "
                         "count(node_list) FROM jobs");
    assert_string_equal(n, "6 6 5");
    free(n);
    n = text_of(a, "SELECT count(*) FROM job_events");
    assert_string_equal(n, "17"); /* 6 submitted, 5 started, 6 ended */
    free(n);
    n = text_of(a, "SELECT count(*) > 0 FROM usage_daily");
    assert_string_equal(n, "t");
    free(n);
    store_env_free(a);
    store_env_free(b);
}

/* A submission key is stored once per uid: a row whose uid has its key is
 * not written, and its callback says so (nresults 0, else 1), in the
 * many-row form (the same key twice in one statement too) and alone. */
static void test_insert_keyed_once(void **state)
{
    (void)state;
    store_env_t *e = store_env_migrated(&pg);
    enum { N = 4 };
    static const char *const ids[N + 1] = {"200", "201", "202", "203", "204"};
    static const char *const uids[N + 1] = {"1000", "1000", "1001", "1000", "1000"};
    static const char *const keys[N + 1] = {"key-a", "key-a", "key-a", NULL, "key-a"};
    int done = 0;
    store_rec_t hold = {.done = &done}, r[N + 1] = {{0}};
    store_hold_thread(e, &hold, "0.3");
    for (int i = 0; i <= N; i++) {
        const char *p[MAXP] = {ids[i],        "j",     uids[i],
                               "100",         "u",     NULL,
                               NULL,          "batch", NULL,
                               "Priority",    "0",     "{}",
                               "#!/bin/sh\n", "/tmp",  "/tmp",
                               "phx submit",  NULL,    NULL,
                               NULL,          "1",     "1",
                               "1",           NULL,    "1",
                               NULL,          NULL,    "false",
                               "true",        NULL,    "1793456000",
                               "1793456000",  keys[i], keys[i] ? "d" : NULL};
        r[i].done = &done;
        phx_error_t err = {{0}};
        assert_int_equal(phx_db_store_write_row(e->store, &batchd_job_insert_rows, p,
                                                store_rec_done, &r[i], &err),
                         0);
        if (i == N - 1) /* the last one alone, in a later group */
            store_run_until(e, &done, N + 1);
    }
    store_run_until(e, &done, N + 2);
    static const int written[N + 1] = {1, 0, 1, 1, 0};
    for (int i = 0; i <= N; i++) {
        assert_false(r[i].failed);
        assert_int_equal(r[i].nresults, written[i]);
    }
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs"), 3);
    assert_int_equal(store_count(e, "SELECT id FROM jobs WHERE uid = 1000 AND "
                                    "submit_key = 'key-a'"),
                     200);
    store_env_free(e);
}

/* The same when the many-row statement fails (a bad row: its rows are
 * written one by one): the bad row fails alone, each other row's callback
 * still tells whether it was written (a key its uid has: 0). */
static void test_insert_keyed_one_by_one(void **state)
{
    (void)state;
    store_env_t *e = store_env_migrated(&pg);
    enum { N = 4 };
    static const char *const ids[N] = {"300", "301", "302", "303"};
    static const char *const keys[N] = {"key-b", "key-b", "key-c", NULL};
    static const char *const tl[N] = {"1", "1", "not-a-number", "1"};
    int done = 0;
    store_rec_t hold = {.done = &done}, r[N] = {{0}};
    store_hold_thread(e, &hold, "0.3");
    for (int i = 0; i < N; i++) {
        const char *p[MAXP] = {ids[i],        "j",     "1000",
                               "100",         "u",     NULL,
                               NULL,          "batch", NULL,
                               "Priority",    "0",     "{}",
                               "#!/bin/sh\n", "/tmp",  "/tmp",
                               "phx submit",  NULL,    NULL,
                               tl[i],         "1",     "1",
                               "1",           NULL,    "1",
                               NULL,          NULL,    "false",
                               "true",        NULL,    "1793456000",
                               "1793456000",  keys[i], keys[i] ? "d" : NULL};
        r[i].done = &done;
        phx_error_t err = {{0}};
        assert_int_equal(phx_db_store_write_row(e->store, &batchd_job_insert_rows, p,
                                                store_rec_done, &r[i], &err),
                         0);
    }
    store_run_until(e, &done, N + 1);
    assert_false(r[0].failed);
    assert_int_equal(r[0].nresults, 1);
    assert_false(r[1].failed);
    assert_int_equal(r[1].nresults, 0);
    assert_true(r[2].failed);
    assert_false(r[3].failed);
    assert_int_equal(r[3].nresults, 1);
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs"), 2);
    store_env_free(e);
}

/* Migrations up to 005, a job as batchd wrote it then (its run's tasks in
 * spec.batchd.tasks), then 006: the tasks are in run_tasks, spec keeps the
 * rest; a job without them gets []. */
static void test_migration_moves_run_tasks(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    char repo[1024], dir[] = "/tmp/phx-batch-rows.XXXXXX", from[1500], to[1500];
    assert_int_equal(phx_test_repo_dir(repo, sizeof(repo)), 0);
    assert_non_null(mkdtemp(dir));
    static const char *const before[] = {"001_agents.sql", "002_frameworks_tasks.sql",
                                         "003_jobs.sql", "004_accounting.sql",
                                         "005_numbered_steps.sql"};
    for (size_t i = 0; i < sizeof(before) / sizeof(*before); i++) {
        snprintf(from, sizeof(from), "%s/db/migrations/%s", repo, before[i]);
        snprintf(to, sizeof(to), "%s/%s", dir, before[i]);
        assert_int_equal(symlink(from, to), 0);
    }
    phx_error_t err = {{0}};
    if (phx_db_migrate(e->conn, dir, &err) < 0)
        fail_msg("migrate to 005: %s", err.text);
    store_exec(
        e, "INSERT INTO jobs (id, name, uid, gid, user_name, partition, spec, "
           "script, work_dir, submit_dir, submit_line, nodes_min, nodes_max, "
           "ntasks, state, start_time, node_list, alloc_cpus, alloc_nodes) "
           "VALUES (7, 'j', 0, 0, 'root', 'batch', "
           "'{\"x\": 1, \"batchd\": {\"env\": {\"A\": \"b\"}, \"max_run\": 0, "
           "\"tasks\": [{\"id\": \"t7\", \"host\": \"n01\", \"cpus\": 2}]}}', "
           "'#!/bin/sh', '/', '/', 'x', 1, 1, 1, 'RUNNING', now(), 'n01', 2, 1), "
           "(8, 'j', 0, 0, 'root', 'batch', '{\"batchd\": {\"env\": {}}}', "
           "'#!/bin/sh', '/', '/', 'x', 1, 1, 1, 'PENDING', NULL, NULL, NULL, NULL)");
    snprintf(from, sizeof(from), "%s/db/migrations/006_job_run_tasks.sql", repo);
    snprintf(to, sizeof(to), "%s/006_job_run_tasks.sql", dir);
    assert_int_equal(symlink(from, to), 0);
    if (phx_db_migrate(e->conn, dir, &err) < 0)
        fail_msg("migrate to 006: %s", err.text);
    char *got = text_of(e, "SELECT jsonb_agg(jsonb_build_array(id, run_tasks, spec) "
                           "ORDER BY id) FROM jobs");
    assert_string_equal(got, "[[7, [{\"id\": \"t7\", \"cpus\": 2, \"host\": \"n01\"}], "
                             "{\"x\": 1, \"batchd\": {\"env\": {\"A\": \"b\"}, "
                             "\"max_run\": 0}}], "
                             "[8, [], {\"batchd\": {\"env\": {}}}]]");
    free(got);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    store_env_free(e);
}

PHX_TEST_PG_GROUP_FIXTURES(pg)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_jobs_life_same_either_way),
        cmocka_unit_test(test_migration_moves_run_tasks),
        cmocka_unit_test(test_insert_keyed_once),
        cmocka_unit_test(test_insert_keyed_one_by_one),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
