/* db/store row writes: rows of one kind that meet in a group commit are
 * written by one many-row statement, in order per key, never before what was
 * queued ahead of them, with a bad row failing alone; against a private
 * PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/store.h"
#include "db/store_internal.h"
#include "tests/unit/support/storetest.h"

static phx_test_pg_t pg;

static const phx_db_rows_t insert_kv = {
    .one = "INSERT INTO t (k, v) VALUES ($1::int, $2)",
    .many = "INSERT INTO t (k, v) SELECT * FROM unnest($1::int[], $2::text[])",
    .nparams = 2,
    .nkeys = 1,
};

static const phx_db_rows_t update_kv = {
    .one = "UPDATE t SET v = $2 WHERE k = $1::int",
    .many = "UPDATE t SET v = u.v FROM unnest($1::int[], $2::text[]) AS u (k, v) "
            "WHERE t.k = u.k",
    .nparams = 2,
    .nkeys = 1,
};

static void row(store_env_t *e, const phx_db_rows_t *kind, int k, const char *v,
                store_rec_t *r)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", k);
    const char *p[] = {key, v};
    phx_error_t err = {{0}};
    assert_int_equal(phx_db_store_write_row(e->store, kind, p, store_rec_done, r, &err),
                     0);
}

/* v of key k, or "<null>" / "<none>". */
static void value_of(store_env_t *e, int k, char *buf, size_t len)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", k);
    const char *p[] = {key};
    phx_db_result_t *res = NULL;
    phx_error_t err = {{0}};
    assert_int_equal(
        phx_db_query(e->conn, "SELECT coalesce(v, '<null>') FROM t WHERE k = $1::int",
                     1, p, &res, &err),
        0);
    if (phx_db_result_rows(res) == 0)
        snprintf(buf, len, "<none>");
    else
        snprintf(buf, len, "%s", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
}

static void test_rows_meet_in_one_statement(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    /* Texts an array literal must carry exactly. */
    static const char *const values[] = {
        "plain", "it's \"quoted\"", "back\\slash\\", "a,b",       "{braces}", "NULL",
        "",      "  spaced  ",      "new\nline",     "ünïcødé €", "\\\"",     NULL,
    };
    enum { NV = sizeof(values) / sizeof(*values), N = 60 };
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    store_rec_t r[N] = {{0}};
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        r[i].nresults = -1;
        row(e, &insert_kv, i, values[i % NV], &r[i]);
    }
    store_run_until(e, &done, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_false(r[i].failed);
        assert_int_equal(r[i].nresults, 0);
    }
    char got[128];
    for (int i = 0; i < N; i++) {
        value_of(e, i, got, sizeof(got));
        assert_string_equal(got, values[i % NV] ? values[i % NV] : "<null>");
    }
    /* One transaction, one statement for all of them. */
    assert_int_equal(store_count(e, "SELECT count(DISTINCT tx) FROM t"), 1);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.rows_merged, N);
    assert_int_equal(st.committed, N + 1);
    assert_int_equal(st.failed, 0);
    store_env_free(e);
}

static void test_rows_of_one_key_in_order(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_exec(e, "INSERT INTO t (k, v) VALUES (1, '-'), (2, '-'), (3, '-')");
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    store_rec_t r[8] = {{0}};
    for (int i = 0; i < 8; i++)
        r[i].done = &done;
    row(e, &update_kv, 1, "a", &r[0]);
    row(e, &update_kv, 2, "b", &r[1]);
    row(e, &update_kv, 1, "c", &r[2]); /* key 1 again: a later statement */
    row(e, &update_kv, 3, "d", &r[3]);
    row(e, &update_kv, 1, "e", &r[4]);
    row(e, &update_kv, 2, "f", &r[5]);
    /* A plain write queued before a row: the row is never written before it
     * (the run of key 4 ends after the insert). */
    const char *p[] = {"4", "plain"};
    phx_error_t err = {{0}};
    assert_int_equal(phx_db_store_write(e->store,
                                        "INSERT INTO t (k, v) VALUES ($1, $2)", 2, p,
                                        store_rec_done, &r[6], &err),
                     0);
    row(e, &update_kv, 4, "row", &r[7]);
    store_run_until(e, &done, 9);
    char got[64];
    const char *want[] = {"e", "f", "d", "row"};
    for (int k = 1; k <= 4; k++) {
        value_of(e, k, got, sizeof(got));
        assert_string_equal(got, want[k - 1]);
    }
    for (int i = 0; i < 8; i++)
        assert_false(r[i].failed);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_true(st.rows_merged >= 4);
    store_env_free(e);
}

static void test_rows_bad_row_fails_alone(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_exec(e, "INSERT INTO t (k, v) VALUES (7, 'already there')");
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    enum { N = 20 };
    store_rec_t r[N] = {{0}};
    for (int i = 0; i < N; i++) {
        r[i].done = &done;
        row(e, &insert_kv, i, "new", &r[i]);
    }
    store_run_until(e, &done, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].failed, i == 7);
    }
    /* The error is the row's own statement's, not the many-row one's. */
    assert_string_equal(r[7].sqlstate, "23505");
    assert_non_null(strstr(r[7].text, "INSERT INTO t (k, v) VALUES"));
    assert_int_equal(store_count(e, "SELECT count(*) FROM t WHERE v = 'new'"), N - 1);
    assert_int_equal(store_count(e, "SELECT count(DISTINCT tx) FROM t WHERE v = 'new'"),
                     1);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.rows_merged, 0); /* they were committed one by one */
    /* Later rows merge again. */
    hold = (store_rec_t){.done = &done};
    store_hold_thread(e, &hold, "0.2");
    store_rec_t more[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        more[i].done = &done;
        row(e, &insert_kv, 100 + i, "later", &more[i]);
    }
    store_run_until(e, &done, N + 1 + 4);
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.rows_merged, 3);
    store_env_free(e);
}

/* A failed many-row statement must not let a key's earlier row, merged in
 * an earlier run, be written after its later row, now written alone. */
static void test_rows_key_order_after_a_failed_run(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_exec(e, "INSERT INTO t (k, v) VALUES (1, '-'), (2, '-'), (3, '-')");
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    store_rec_t r[6] = {{0}};
    static const char *const rows[6][2] = {
        {"1", "old"}, /* run A */
        {"1", "new"}, /* key 1 again: run B */
        {"2", "b1"},  /* run B */
        {"x", "bad"}, /* run B: not an integer, fails B */
        {"2", "b2"},  /* key 2 again: run C */
        {"3", "c"},   /* run C */
    };
    for (int i = 0; i < 6; i++) {
        r[i].done = &done;
        phx_error_t err = {{0}};
        assert_int_equal(phx_db_store_write_row(e->store, &update_kv, rows[i],
                                                store_rec_done, &r[i], &err),
                         0);
    }
    store_run_until(e, &done, 7);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].failed, i == 3);
    }
    char got[64];
    const char *want[] = {"new", "b2", "c"};
    for (int k = 1; k <= 3; k++) {
        value_of(e, k, got, sizeof(got));
        assert_string_equal(got, want[k - 1]);
    }
    store_env_free(e);
}

/* A many-row form that can never run (a bug): every row is still written,
 * one by one, nothing fails, and it costs one retry of the group however many
 * runs its rows make. */
static void test_rows_broken_many_one_retry(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    static const phx_db_rows_t broken = {
        .one = "UPDATE t SET v = $2 WHERE k = $1::int",
        .many = "UPDATE t SET v = u.v FROM unnest($1::int[], $2::text[]) AS u (k, v) "
                "WHERE t.k = u.k AND no_such_column",
        .nparams = 2,
        .nkeys = 1,
    };
    store_exec(e, "INSERT INTO t (k, v) VALUES (0, '-'), (1, '-')");
    int done = 0;
    store_rec_t hold = {.done = &done};
    store_hold_thread(e, &hold, "0.3");
    enum { N = 200 }; /* keys 0, 1, 0, 1...: 100 runs of 2 */
    store_rec_t r[N] = {{0}};
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        r[i].done = &done;
        row(e, &broken, i % 2, v, &r[i]);
    }
    store_run_until(e, &done, N + 1);
    for (int i = 0; i < N; i++)
        assert_false(r[i].failed);
    char got[64];
    value_of(e, 0, got, sizeof(got));
    assert_string_equal(got, "v198");
    value_of(e, 1, got, sizeof(got));
    assert_string_equal(got, "v199");
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.group_retries, 1);
    assert_int_equal(st.rows_merged, 0);
    store_env_free(e);
}

/* PER rows of kind with keys first.. written by one many-row statement. */
static void merged_round(store_env_t *e, const phx_db_rows_t *kind, int first)
{
    enum { PER = 3 };
    int done = 0;
    store_rec_t r[PER + 1];
    memset(r, 0, sizeof(r));
    r[PER].done = &done;
    store_hold_thread(e, &r[PER], "0.05");
    for (int k = 0; k < PER; k++) {
        r[k].done = &done;
        row(e, kind, first + k, "v", &r[k]);
    }
    store_run_until(e, &done, PER + 1);
    for (int k = 0; k < PER; k++)
        assert_false(r[k].failed);
}

/* The first column of sql's first row, read through the store (its own
 * session). */
static void store_value(store_env_t *e, const char *sql, char *buf, size_t len)
{
    int done = 0;
    store_rec_t r = {.done = &done};
    phx_error_t err = {{0}};
    assert_int_equal(
        phx_db_store_read(e->store, sql, 0, NULL, store_rec_done, &r, &err), 0);
    store_run_until(e, &done, 1);
    assert_false(r.failed);
    snprintf(buf, len, "%s", r.rows > 0 ? r.value : "<none>");
}

/* The many-row statement is prepared and runs its generic plan: it was once
 * planned anew at every execution (PostgreSQL kept custom plans for array
 * parameters). */
static void test_rows_generic_plans(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    for (int i = 0; i < 8; i++)
        merged_round(e, &insert_kv, 3 * i);
    assert_int_equal(store_count(e, "SELECT count(*) FROM t"), 24);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.rows_merged, 24);
    char got[64];
    store_value(
        e,
        "SELECT generic_plans || '/' || custom_plans FROM pg_prepared_statements "
        "WHERE statement LIKE 'INSERT INTO t (k, v) SELECT%'",
        got, sizeof(got));
    assert_string_equal(got, "8/0");
    store_env_free(e);
}

/* A generic plan made while t was nearly empty (a scan of t) is made again
 * once t has grown: within a second the many-row UPDATE finds its rows by
 * t's index, not by scanning 100,000 rows each time. */
static void test_rows_plans_follow_growth(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    merged_round(e, &insert_kv, 0);
    merged_round(e, &update_kv, 0); /* planned now, over 3 rows */
    store_exec(
        e, "INSERT INTO t (k, v) SELECT g, 'x' FROM generate_series(100, 100099) g");
    usleep(1100 * 1000);
    char before[64], after[64];
    store_value(e, "SELECT pg_stat_force_next_flush()::text", before, sizeof(before));
    store_value(e, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 't'",
                before, sizeof(before));
    for (int i = 0; i < 5; i++)
        merged_round(e, &update_kv, 100 + 3 * i);
    store_value(e, "SELECT pg_stat_force_next_flush()::text", after, sizeof(after));
    store_value(e, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 't'",
                after, sizeof(after));
    assert_string_equal(after, before);
    store_env_free(e);
}

/* A refresh of the plans that fails (a pooler that refuses DISCARD, say)
 * is only logged: the writes of its group commit. */
static void test_rows_plans_refresh_fails_alone(void **state)
{
    (void)state;
    const char *was = phx_db_plans_sql;
    phx_db_plans_sql = "DISCARD PLANZ";
    store_env_t *e = store_env_new(&pg, NULL);
    merged_round(e, &insert_kv, 0);
    usleep(1100 * 1000);
    merged_round(e, &update_kv, 0); /* a second refresh, inside a group */
    phx_db_plans_sql = was;
    assert_int_equal(store_count(e, "SELECT count(*) FROM t WHERE v = 'v'"), 3);
    phx_db_store_stats_t st;
    phx_db_store_stats(e->store, &st);
    assert_int_equal(st.failed, 0);
    store_env_free(e);
}

static void test_rows_bad_calls(void **state)
{
    (void)state;
    store_env_t *e = store_env_new(&pg, NULL);
    store_rec_t r = {0};
    const char *p[] = {"1", "x"};
    phx_error_t err = {{0}};
    phx_db_rows_t bad = insert_kv;
    bad.nkeys = 0;
    errno = 0;
    assert_int_equal(
        phx_db_store_write_row(e->store, &bad, p, store_rec_done, &r, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "row statement"));
    bad = insert_kv;
    bad.many = NULL;
    assert_int_equal(
        phx_db_store_write_row(e->store, &bad, p, store_rec_done, &r, &err), -1);
    assert_int_equal(
        phx_db_store_write_row(e->store, NULL, p, store_rec_done, &r, &err), -1);
    assert_int_equal(phx_db_store_write_row(e->store, &insert_kv, p, NULL, &r, &err),
                     -1);
    assert_int_equal(r.calls, 0);
    store_env_free(e);
}

PHX_TEST_PG_GROUP_FIXTURES(pg)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_meet_in_one_statement),
        cmocka_unit_test(test_rows_of_one_key_in_order),
        cmocka_unit_test(test_rows_bad_row_fails_alone),
        cmocka_unit_test(test_rows_key_order_after_a_failed_run),
        cmocka_unit_test(test_rows_broken_many_one_retry),
        cmocka_unit_test(test_rows_generic_plans),
        cmocka_unit_test(test_rows_plans_follow_growth),
        cmocka_unit_test(test_rows_plans_refresh_fails_alone),
        cmocka_unit_test(test_rows_bad_calls),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
