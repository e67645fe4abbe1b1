/* db/store: group commit, isolation of failures, atomic transactions, fence,
 * reconnect and destroy, against a private PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/store.h"
#include "tests/unit/support/storetest.h"

static phx_test_pg_t pg;

static int write_kv(store_env_t *e, int k, const char *v, store_rec_t *r)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", k);
    const char *p[] = {key, v};
    phx_error_t err = {{0}};
    return phx_db_store_write(e->store,
                              "INSERT INTO t (k, v) VALUES ($1, $2) RETURNING id", 2, p,
                              store_rec_done, r, &err);
}

static void check_committed(const phx_error_t *err, phx_db_result_t *const *results,
                            int n, void *arg)
{
    store_rec_t *r = arg;
    store_rec_done(err, results, n, arg);
    /* Another connection must already see the row: the callback came after
     * COMMIT. */
    const char *p[] = {r->value};
    phx_db_result_t *res = NULL;
    phx_error_t qerr = {{0}};
    assert_int_equal(phx_db_query(r->env->conn, "SELECT count(*) FROM t WHERE id = $1",
                                  1, p, &res, &qerr),
                     0);
    r->committed_when_called = strcmp(phx_db_result_get(res, 0, 0), "1") == 0;
    phx_db_result_destroy(res);
}

static void test_write_callback_after_commit(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    int done = 0;
    store_rec_t r = {.done = &done, .env = e};
    const char *p[] = {"1", "it's \"quoted\"; DROP TABLE t; --"};
    phx_error_t err = {{0}};
    assert_int_equal(phx_db_store_write(
                         e->store, "INSERT INTO t (k, v) VALUES ($1, $2) RETURNING id",
                         2, p, check_committed, &r, &err),
                     0);
    assert_int_equal(r.calls, 0); /* never from inside the queuing call */
    store_run_until(e, &done, 1);
    assert_false(r.failed);
    assert_int_equal(r.nresults, 1);
    assert_int_equal(r.rows, 1);
    assert_string_equal(r.value, "1");
    assert_true(r.committed_when_called);
    assert_int_equal(store_count(e, "SELECT count(*) FROM t WHERE v = "
                                    "'it''s \"quoted\"; DROP TABLE t; --'"),
                     1);
    /* A second loop pass delivers nothing more. */
    event_base_loop(e->base, EVLOOP_NONBLOCK);
    assert_int_equal(r.calls, 1);
    store_env_free(e);
}

static void test_group_commit_batches(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    enum { N = 1000 };
    store_rec_t *r = calloc(N, sizeof(*r));
    int done = 0;
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        assert_int_equal(write_kv(e, i, "x", &r[i]), 0);
    }
    store_run_until(e, &done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_false(r[i].failed);
    }
    long txs = store_count(e, "SELECT count(DISTINCT tx) FROM t");
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), N);
    assert_true(txs >= 1 && txs <= 20);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.committed, N);
    assert_int_equal(st.transactions, (uint64_t)txs);
    assert_true(st.max_group >= 50);
    assert_int_equal(st.queued, 0);
    /* RETURNING rows reach their own callback. */
    assert_int_equal(store_count(e, "SELECT id FROM t WHERE k = 500"),
                     strtol(r[500].value, NULL, 10));
    free(r);
    store_env_free(e);
}

static void test_failing_statement_fails_alone(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_exec(e, "INSERT INTO t (k, v) VALUES (5, 'already there')");
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    enum { N = 10 };
    store_rec_t r[N] = {{0}};
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        assert_int_equal(write_kv(e, i, "new", &r[i]), 0);
    }
    store_run_until(e, &done, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].failed, i == 5);
    }
    assert_string_equal(r[5].sqlstate, "23505");
    assert_non_null(strstr(r[5].text, "INSERT INTO t"));
    assert_int_equal(store_count(e, "SELECT count(*) FROM t WHERE v = 'new'"), N - 1);
    /* The nine others still committed together, in one transaction. */
    assert_int_equal(store_count(e, "SELECT count(DISTINCT tx) FROM t WHERE v = 'new'"),
                     1);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.group_retries, 1);
    assert_int_equal(st.failed, 1);
    store_env_free(e);
}

static void test_many_failures_fall_back_to_single(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    enum { N = 40 };
    store_rec_t r[N] = {{0}};
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        /* Every third key collides with an earlier write in the same group. */
        assert_int_equal(write_kv(e, i % 3 == 2 ? i - 1 : i, "v", &r[i]), 0);
    }
    store_run_until(e, &done, N + 1);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].failed, i % 3 == 2);
        failed += r[i].failed;
    }
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), N - failed);
    store_env_free(e);
}

static void test_txn_is_atomic(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    int done = 0;
    phx_error_t err = {{0}};
    store_rec_t bad = {.done = &done}, good = {.done = &done};
    phx_db_txn_t *txn = phx_db_txn_create();
    const char *k1[] = {"1"}, *k2[] = {"2"};
    assert_int_equal(phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1)", 1, k1, &err),
                     0);
    assert_int_equal(phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1)", 1, k2, &err),
                     0);
    assert_int_equal(phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1)", 1, k1, &err),
                     0);
    assert_int_equal(phx_db_store_txn(e->store, txn, store_rec_done, &bad, &err), 0);

    txn = phx_db_txn_create();
    assert_int_equal(
        phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1) RETURNING k", 1, k1, &err),
        0);
    assert_int_equal(
        phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1) RETURNING k", 1, k2, &err),
        0);
    assert_int_equal(phx_db_store_txn(e->store, txn, store_rec_done, &good, &err), 0);
    store_run_until(e, &done, 2);

    assert_true(bad.failed);
    assert_string_equal(bad.sqlstate, "23505");
    assert_non_null(strstr(bad.text, "statement 3 of 3"));
    assert_false(good.failed);
    assert_int_equal(good.nresults, 2);
    assert_string_equal(good.value, "1");
    /* Only the good transaction's rows. */
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), 2);
    assert_int_equal(store_count(e, "SELECT count(DISTINCT tx) FROM t"), 1);

    /* An empty transaction is refused and consumed. */
    assert_int_equal(
        phx_db_store_txn(e->store, phx_db_txn_create(), store_rec_done, &bad, &err),
        -1);
    assert_int_equal(errno, EINVAL);
    store_env_free(e);
}

static void test_txn_results_in_order(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    int done = 0;
    phx_error_t err = {{0}};
    store_rec_t r = {.done = &done};
    phx_db_txn_t *txn = phx_db_txn_create();
    const char *a[] = {"10"}, *b[] = {"20"};
    phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1) RETURNING k", 1, a, &err);
    phx_db_txn_add(txn, "INSERT INTO t (k) VALUES ($1) RETURNING k", 1, b, &err);
    phx_db_txn_add(txn, "SELECT count(*) FROM t", 0, NULL, &err);
    assert_int_equal(phx_db_store_txn(e->store, txn, store_rec_done, &r, &err), 0);
    store_run_until(e, &done, 1);
    assert_false(r.failed);
    assert_int_equal(r.nresults, 3);
    assert_string_equal(r.value, "10");
    store_env_free(e);
}

static void test_fence(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_exec(e, "CREATE TABLE leader (epoch int)");
    store_exec(e, "INSERT INTO leader VALUES (7)");
    const char *fence = "SELECT 1 FROM leader WHERE epoch = $1 FOR SHARE";
    phx_error_t err = {{0}};
    int done = 0;
    store_rec_t ok = {.done = &done}, deposed = {.done = &done},
                broken = {.done = &done}, cleared = {.done = &done};

    const char *seven[] = {"7"};
    assert_int_equal(phx_db_store_set_fence(e->store, fence, 1, seven, &err), 0);
    assert_int_equal(write_kv(e, 1, "epoch 7", &ok), 0);
    store_run_until(e, &done, 1);
    assert_false(ok.failed);

    const char *six[] = {"6"};
    assert_int_equal(phx_db_store_set_fence(e->store, fence, 1, six, &err), 0);
    assert_int_equal(write_kv(e, 2, "epoch 6", &deposed), 0);
    store_run_until(e, &done, 2);
    assert_true(deposed.failed);
    assert_string_equal(deposed.sqlstate, PHX_DB_SQLSTATE_FENCE);
    assert_non_null(strstr(deposed.text, "fence"));

    assert_int_equal(
        phx_db_store_set_fence(e->store, "SELECT 1 FROM no_leader", 0, NULL, &err), 0);
    assert_int_equal(write_kv(e, 3, "broken fence", &broken), 0);
    store_run_until(e, &done, 3);
    assert_true(broken.failed);
    assert_string_equal(broken.sqlstate, "42P01");

    assert_int_equal(phx_db_store_set_fence(e->store, NULL, 0, NULL, &err), 0);
    assert_int_equal(write_kv(e, 4, "no fence", &cleared), 0);
    store_run_until(e, &done, 4);
    assert_false(cleared.failed);
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), 2);
    assert_int_equal(store_count(e, "SELECT count(*) FROM t WHERE k IN (2, 3)"), 0);
    store_env_free(e);
}

static void test_reads(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_exec(e, "INSERT INTO t (k, v) VALUES (1, 'one'), (2, 'two')");
    phx_error_t err = {{0}};
    int done = 0;
    store_rec_t r[3] = {{.done = &done}, {.done = &done}, {.done = &done}};
    const char *p[] = {"2"};
    assert_int_equal(phx_db_store_read(e->store, "SELECT v FROM t WHERE k = $1", 1, p,
                                       store_rec_done, &r[0], &err),
                     0);
    assert_int_equal(
        phx_db_store_read(e->store, "SELECT 1/0", 0, NULL, store_rec_done, &r[1], &err),
        0);
    assert_int_equal(phx_db_store_read(e->store, "SELECT count(*) FROM t", 0, NULL,
                                       store_rec_done, &r[2], &err),
                     0);
    store_run_until(e, &done, 3);
    assert_false(r[0].failed);
    assert_string_equal(r[0].value, "two");
    assert_true(r[1].failed);
    assert_string_equal(r[1].sqlstate, "22012");
    assert_false(r[2].failed);
    assert_string_equal(r[2].value, "2");
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.reads, 2);
    store_env_free(e);
}

static void test_queue_bound_and_bad_calls(void **state)
{
    (void)state;
    phx_db_store_opts_t opts = {.max_queue = 5};
    store_env_t *e = store_env_new(&pg, &opts);
    int done = 0;
    store_rec_t r[6] = {{0}};
    for (int i = 0; i < 6; i++)
        r[i].done = &done;
    for (int i = 0; i < 5; i++)
        assert_int_equal(write_kv(e, i, "q", &r[i]), 0);
    phx_error_t err = {{0}};
    const char *p[] = {"99", "q"};
    assert_int_equal(phx_db_store_write(e->store,
                                        "INSERT INTO t (k, v) VALUES ($1, $2)", 2, p,
                                        store_rec_done, &r[5], &err),
                     -1);
    assert_int_equal(errno, EAGAIN);
    assert_non_null(strstr(err.text, "queue is full"));
    assert_int_equal(
        phx_db_store_write(e->store, NULL, 0, NULL, store_rec_done, &r[5], &err), -1);
    assert_int_equal(errno, EINVAL);
    store_run_until(e, &done, 5);
    usleep(100000);
    event_base_loop(e->base, EVLOOP_NONBLOCK);
    assert_int_equal(r[5].calls, 0); /* failed calls never call back */
    assert_int_equal(done, 5);
    /* Room again once the callbacks ran. */
    assert_int_equal(write_kv(e, 100, "q", &r[5]), 0);
    store_run_until(e, &done, 6);
    assert_false(r[5].failed);
    store_env_free(e);
}

static void test_reconnect(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, &(phx_db_store_opts_t){.reconnect_min_ms = 10});
    int done = 0;
    store_rec_t killed = {.done = &done}, after = {.done = &done},
                idle = {.done = &done};
    phx_error_t err = {{0}};
    /* In flight: the statement kills its own backend. */
    assert_int_equal(phx_db_store_write(e->store,
                                        "SELECT pg_terminate_backend(pg_backend_pid())",
                                        0, NULL, store_rec_done, &killed, &err),
                     0);
    store_run_until(e, &done, 1);
    assert_true(killed.failed);
    assert_non_null(strstr(killed.text, "connection to the database was lost"));
    assert_true(strcmp(killed.sqlstate, "57P01") == 0 ||
                strncmp(killed.sqlstate, "08", 2) == 0);
    assert_int_equal(write_kv(e, 1, "after", &after), 0);
    store_run_until(e, &done, 2);
    assert_false(after.failed);

    /* Killed while idle: noticed before the next batch, which succeeds. */
    store_exec(e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = 'phalanx-store'");
    usleep(100000);
    assert_int_equal(write_kv(e, 2, "idle", &idle), 0);
    store_run_until(e, &done, 3);
    assert_false(idle.failed);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.reconnects, 2);
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), 2);
    store_env_free(e);
}

/* Callbacks that try to queue more work while the store is being destroyed. */
static int refused;
static void requeue_on_done(const phx_error_t *err, phx_db_result_t *const *results,
                            int n, void *arg)
{
    store_rec_t *r = arg;
    store_rec_done(err, results, n, arg);
    phx_error_t e2 = {{0}};
    const char *p[] = {"-1", "late"};
    if (phx_db_store_write(r->env->store, "INSERT INTO t (k, v) VALUES ($1, $2)", 2, p,
                           store_rec_done, r, &e2) < 0 &&
        errno == ESHUTDOWN)
        refused++;
}

static void test_destroy_delivers_everything_once(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    enum { N = 300 };
    store_rec_t *r = calloc(N, sizeof(*r));
    int done = 0;
    phx_error_t err = {{0}};
    refused = 0;
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        r[i].env = e;
        char key[16];
        snprintf(key, sizeof(key), "%d", i);
        const char *p[] = {key, "d"};
        if (i % 10 == 9)
            assert_int_equal(phx_db_store_read(e->store, "SELECT $1::int", 1, p,
                                               requeue_on_done, &r[i], &err),
                             0);
        else
            assert_int_equal(phx_db_store_write(e->store,
                                                "INSERT INTO t (k, v) VALUES ($1, $2)",
                                                2, p, requeue_on_done, &r[i], &err),
                             0);
    }
    phx_db_store_destroy(e->store);
    e->store = NULL;
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_false(r[i].failed);
    }
    assert_int_equal(refused, N);
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), N - N / 10);
    free(r);
    store_env_free(e);
}

static void test_destroy_fails_work_when_database_unreachable(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, &(phx_db_store_opts_t){.reconnect_min_ms = 10});
    char sql[512];
    const char *db = strstr(e->dsn, "dbname=") + 7;
    snprintf(sql, sizeof(sql), "ALTER DATABASE %.*s ALLOW_CONNECTIONS false",
             (int)strcspn(db, " "), db);
    char admin_dsn[300];
    snprintf(admin_dsn, sizeof(admin_dsn),
             "host=%s port=%d dbname=postgres user=postgres", pg.dir, pg.port);
    phx_error_t err = {{0}};
    phx_db_conn_t *admin = phx_db_connect(admin_dsn, &err);
    assert_non_null(admin);
    assert_int_equal(phx_db_query(admin, sql, 0, NULL, NULL, &err), 0);
    phx_db_conn_close(admin);
    store_exec(e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = 'phalanx-store'");
    usleep(100000);
    enum { N = 50 };
    store_rec_t r[N] = {{0}};
    int done = 0;
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        assert_int_equal(write_kv(e, i, "never", &r[i]), 0);
    }
    phx_db_store_destroy(e->store);
    e->store = NULL;
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_true(r[i].failed);
        assert_true(strcmp(r[i].sqlstate, "08001") == 0 ||
                    strcmp(r[i].sqlstate, "08003") == 0);
    }
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), 0);
    store_env_free(e);
}

static void destroy_from_callback(const phx_error_t *err,
                                  phx_db_result_t *const *results, int n, void *arg)
{
    store_rec_t *r = arg;
    store_rec_done(err, results, n, arg);
    phx_db_store_destroy(r->env->store);
}

static void test_destroy_from_callback(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    int done = 0;
    phx_error_t err = {{0}};
    store_rec_t first = {.done = &done, .env = e};
    store_rec_t rest[20] = {{0}};
    const char *p[] = {"1"};
    assert_int_equal(phx_db_store_write(e->store, "INSERT INTO t (k) VALUES ($1)", 1, p,
                                        destroy_from_callback, &first, &err),
                     0);
    for (int i = 0; i < 20; i++) {
        rest[i].done = &done;
        assert_int_equal(write_kv(e, 100 + i, "rest", &rest[i]), 0);
    }
    store_run_until(e, &done, 21);
    for (int i = 0; i < 20; i++)
        assert_int_equal(rest[i].calls, 1);
    assert_int_equal(first.calls, 1);
    e->store = NULL; /* destroyed by the callback */
    store_env_free(e);
}

static void test_create_fails_cleanly(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    phx_error_t err = {{0}};
    char dsn[300], st[6];
    snprintf(dsn, sizeof(dsn), "host=%s port=%d dbname=nosuch user=postgres", pg.dir,
             pg.port);
    assert_null(phx_db_store_create(base, dsn, NULL, &err));
    assert_non_null(strstr(err.text, "nosuch"));
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "08001");
    event_base_free(base);
}

PHX_TEST_PG_GROUP_FIXTURES(pg)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_callback_after_commit),
        cmocka_unit_test(test_group_commit_batches),
        cmocka_unit_test(test_failing_statement_fails_alone),
        cmocka_unit_test(test_many_failures_fall_back_to_single),
        cmocka_unit_test(test_txn_is_atomic),
        cmocka_unit_test(test_txn_results_in_order),
        cmocka_unit_test(test_fence),
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_queue_bound_and_bad_calls),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_destroy_delivers_everything_once),
        cmocka_unit_test(test_destroy_fails_work_when_database_unreachable),
        cmocka_unit_test(test_destroy_from_callback),
        cmocka_unit_test(test_create_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
