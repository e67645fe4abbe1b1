/* Durable single-row inserts per second through the store's group commit,
 * against a private PostgreSQL with fsync=on and synchronous_commit=on.
 *
 *   bench_db [writes]      (default 20000)
 *
 * Three shapes: everything queued at once; a closed loop of C callers each
 * waiting for its commit before the next write (C = 1, 16, 256). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/store.h"

/* Benchmarks link only the libraries: take the test PostgreSQL helper whole. */
#include "tests/unit/support/pgtest.c"

typedef struct bench {
    phx_db_store_t *store;
    int total; /* writes to issue */
    int issued;
    int done;
    int failed;
} bench_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_done(const phx_error_t *err, phx_db_result_t *const *results, int n,
                    void *arg);

static int issue(bench_t *b)
{
    char k[16];
    snprintf(k, sizeof(k), "%d", b->issued);
    const char *p[] = {k, "payload of a typical status row"};
    phx_error_t err;
    if (phx_db_store_write(b->store, "INSERT INTO bench (k, v) VALUES ($1, $2)", 2, p,
                           on_done, b, &err) < 0) {
        fprintf(stderr, "bench_db: %s\n", err.text);
        return -1;
    }
    b->issued++;
    return 0;
}

static void on_done(const phx_error_t *err, phx_db_result_t *const *results, int n,
                    void *arg)
{
    (void)results;
    (void)n;
    bench_t *b = arg;
    b->done++;
    if (err && b->failed++ == 0)
        fprintf(stderr, "bench_db: %s\n", err->text);
    if (b->issued < b->total)
        issue(b);
}

static int run(struct event_base *base, const char *dsn, int total, int concurrency)
{
    phx_error_t err;
    phx_db_store_opts_t opts = {.max_queue = (size_t)total + 1};
    bench_t b = {.total = total};
    b.store = phx_db_store_create(base, dsn, &opts, &err);
    if (!b.store) {
        fprintf(stderr, "bench_db: %s\n", err.text);
        return -1;
    }
    double t0 = now_s();
    for (int i = 0; i < concurrency && b.issued < total; i++)
        if (issue(&b) < 0)
            return -1;
    while (b.done < total)
        event_base_loop(base, EVLOOP_ONCE);
    double dt = now_s() - t0;
    phx_db_store_stats_t st;
    phx_db_store_stats(b.store, &st);
    char shape[32];
    if (concurrency >= total)
        snprintf(shape, sizeof(shape), "all queued");
    else
        snprintf(shape, sizeof(shape), "%d callers", concurrency);
    printf("bench_db: %-11s %6d writes  %9.0f writes/s  %6llu commits  "
           "mean batch %6.1f  max %4llu  failed %d\n",
           shape, total, total / dt, (unsigned long long)st.transactions,
           st.transactions ? (double)st.committed / (double)st.transactions : 0.0,
           (unsigned long long)st.max_group, b.failed);
    phx_db_store_destroy(b.store);
    return b.failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    int total = argc > 1 ? atoi(argv[1]) : 20000;
    if (total <= 0)
        total = 20000;
    static phx_test_pg_t pg;
    const char *const durable[] = {"fsync=on", "synchronous_commit=on", NULL};
    if (phx_test_pg_start(&pg, durable) < 0)
        return 1;
    char dsn[256];
    if (phx_test_pg_createdb(&pg, "bench", dsn, sizeof(dsn)) < 0)
        return 1;
    phx_error_t err;
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c ||
        phx_db_query(c,
                     "CREATE TABLE bench (id bigserial PRIMARY KEY, k int, v text, "
                     "at timestamptz DEFAULT now())",
                     0, NULL, NULL, &err) < 0) {
        fprintf(stderr, "bench_db: %s\n", err.text);
        return 1;
    }
    phx_db_conn_close(c);
    struct event_base *base = event_base_new();
    int rc = 0;
    rc |= run(base, dsn, total, total);
    rc |= run(base, dsn, total, 256);
    rc |= run(base, dsn, total / 4, 16);
    rc |= run(base, dsn, total / 20 > 0 ? total / 20 : 1, 1);
    event_base_free(base);
    phx_test_pg_stop(&pg);
    return rc ? 1 : 0;
}
