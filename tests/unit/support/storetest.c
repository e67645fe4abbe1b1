/* Helpers of the db/store tests (storetest.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/migrate.h"
#include "tests/unit/support/paths.h"
#include "tests/unit/support/storetest.h"

void store_rec_done(const phx_error_t *err, phx_db_result_t *const *results, int n,
                    void *arg)
{
    store_rec_t *r = arg;
    r->calls++;
    if (r->done)
        (*r->done)++;
    r->failed = err != NULL;
    r->nresults = n;
    if (err) {
        snprintf(r->text, sizeof(r->text), "%s", err->text);
        if (!phx_db_error_sqlstate(err, r->sqlstate))
            r->sqlstate[0] = '\0';
        assert_null(results);
        return;
    }
    if (n == 0 || !results) /* row writes: no results (returns: nresults only) */
        return;
    r->rows = phx_db_result_rows(results[0]);
    if (r->rows > 0 && phx_db_result_cols(results[0]) > 0)
        snprintf(r->value, sizeof(r->value), "%s", phx_db_result_get(results[0], 0, 0));
}

void store_exec(store_env_t *e, const char *sql)
{
    phx_error_t err = {{0}};
    if (phx_db_query(e->conn, sql, 0, NULL, NULL, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
}

long store_count(store_env_t *e, const char *sql)
{
    phx_error_t err = {{0}};
    phx_db_result_t *res = NULL;
    if (phx_db_query(e->conn, sql, 0, NULL, &res, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
    long n = strtol(phx_db_result_get(res, 0, 0), NULL, 10);
    phx_db_result_destroy(res);
    return n;
}

void store_run_until(store_env_t *e, int *counter, int target)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (*counter < target) {
        event_base_loop(e->base, EVLOOP_NONBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 10)
            fail_msg("timed out: %d of %d callbacks", *counter, target);
        if (*counter < target)
            usleep(500);
    }
}

void store_drain(store_env_t *e)
{
    for (int i = 0; i < 1000; i++) {
        phx_db_store_stats_t st;
        phx_db_store_stats(e->store, &st);
        if (st.queued == 0)
            return;
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(10000);
    }
    fail_msg("the store did not drain");
}

store_env_t *store_env_new(phx_test_pg_t *pg, const phx_db_store_opts_t *opts)
{
    static int serial;
    store_env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    char name[32];
    snprintf(name, sizeof(name), "s%d", ++serial);
    assert_int_equal(phx_test_pg_createdb(pg, name, e->dsn, sizeof(e->dsn)), 0);
    phx_error_t err = {{0}};
    e->conn = phx_db_connect(e->dsn, &err);
    assert_non_null(e->conn);
    store_exec(e, "CREATE TABLE t (id serial PRIMARY KEY, k int UNIQUE, v text, "
                  "tx bigint DEFAULT txid_current())");
    e->base = event_base_new();
    e->store = phx_db_store_create(e->base, e->dsn, opts, &err);
    if (!e->store)
        fail_msg("store: %s", err.text);
    return e;
}

store_env_t *store_env_migrated(phx_test_pg_t *pg)
{
    store_env_t *e = store_env_new(pg, NULL);
    char repo[1024], dir[1200];
    assert_int_equal(phx_test_repo_dir(repo, sizeof(repo)), 0);
    snprintf(dir, sizeof(dir), "%s/db/migrations", repo);
    phx_error_t err = {{0}};
    if (phx_db_migrate(e->conn, dir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return e;
}

void store_env_free(store_env_t *e)
{
    phx_db_store_destroy(e->store);
    event_base_free(e->base);
    phx_db_conn_close(e->conn);
    free(e);
}

void store_hold_thread(store_env_t *e, store_rec_t *r, const char *seconds)
{
    const char *p[] = {seconds};
    phx_error_t err = {{0}};
    assert_int_equal(phx_db_store_write(e->store, "SELECT pg_sleep($1::float8)", 1, p,
                                        store_rec_done, r, &err),
                     0);
    usleep(50000); /* let the DB thread take it alone */
}
