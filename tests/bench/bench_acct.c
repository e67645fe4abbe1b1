/* Accounting queries over a million jobs (db/migrations/004_accounting.sql),
 * against a private PostgreSQL with every migration applied.
 *
 *   bench_acct [jobs]      (default 1000000)
 *
 * Generates the jobs (three months from 2024-01-01, 200 users with a skewed
 * share, 20 accounts, exponential run times of mean one hour up to two days,
 * sacct-like state mix, one batch step each) with triggers off, builds
 * usage_daily with phx_acct_usage_rebuild(), then prints the median time of
 * 15 runs (client side, round trip included) of February's queries: the
 * usage_daily ones (the target is < 100 ms) and, for comparison, the same
 * answers computed from acct_jobs without the rollup.  Last, the cost of
 * keeping usage_daily current: jobs ended one UPDATE at a time with the
 * triggers on, against the same with the accounting triggers disabled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"

/* Benchmarks link only the libraries: take the test PostgreSQL helper whole. */
#include "tests/unit/support/pgtest.c"

#define RUNS 15

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int exec(phx_db_conn_t *c, const char *sql, phx_db_result_t **res)
{
    phx_error_t err;
    if (phx_db_query(c, sql, 0, NULL, res, &err) < 0) {
        fprintf(stderr, "bench_acct: %s\n  in: %.200s\n", err.text, sql);
        return -1;
    }
    return 0;
}

static int timed(phx_db_conn_t *c, const char *what, const char *sql, double *ms)
{
    double t0 = now_ms();
    if (exec(c, sql, NULL) < 0)
        return -1;
    *ms = now_ms() - t0;
    printf("bench_acct: %-44s %9.0f ms\n", what, *ms);
    fflush(stdout);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of RUNS runs after one warm-up; -1 on error. */
static double median_ms(phx_db_conn_t *c, const char *sql, int *nrows)
{
    double t[RUNS];
    for (int i = -1; i < RUNS; i++) {
        phx_db_result_t *res = NULL;
        double t0 = now_ms();
        if (exec(c, sql, &res) < 0)
            return -1;
        double dt = now_ms() - t0;
        *nrows = phx_db_result_rows(res);
        phx_db_result_destroy(res);
        if (i >= 0)
            t[i] = dt;
    }
    qsort(t, RUNS, sizeof(t[0]), cmp_double);
    return t[RUNS / 2];
}

static const char generate_jobs[] =
    "INSERT INTO jobs (id, name, uid, gid, user_name, account, partition, qos, state, "
    "  spec, script, work_dir, submit_dir, submit_line, time_limit, nodes_min, "
    "  nodes_max, ntasks, cpus_per_task, mem_per_node, submit_time, eligible_time, "
    "  start_time, end_time, exit_code, exit_signal, node_list, alloc_nodes, "
    "  alloc_cpus, alloc_mem) "
    "SELECT g, 'job' || (g % 997), 1000 + u, 100, 'user' || lpad(u::text, 3, '0'), "
    "  'acct' || lpad((u % 20)::text, 2, '0'), "
    "  CASE WHEN g % 10 = 0 THEN 'gpu' ELSE 'batch' END, 'normal', "
    "  CASE WHEN rs < 0.80 THEN 'COMPLETED' WHEN rs < 0.88 THEN 'FAILED' "
    "       WHEN rs < 0.93 THEN 'CANCELLED' WHEN rs < 0.97 THEN 'TIMEOUT' "
    "       WHEN rs < 0.99 THEN 'OUT_OF_MEMORY' ELSE 'NODE_FAIL' END, "
    "  '{}', '#!/bin/sh', '/home/u', '/home/u', 'phx submit job.sh', 172800, "
    "  1, 1, cpus, 1, 4096, sub, sub, sub + wait, sub + wait + el, "
    "  CASE WHEN rs >= 0.80 AND rs < 0.88 THEN 1 ELSE 0 END, "
    "  CASE WHEN rs >= 0.88 AND rs < 0.97 THEN 15 WHEN rs >= 0.97 AND rs < 0.99 "
    "       THEN 9 ELSE 0 END, "
    "  'n' || lpad((g % 512)::text, 3, '0'), 1, cpus, 4096 "
    "FROM (SELECT g, floor(200 * power(random(), 2))::int AS u, random() AS rs, "
    "        timestamptz '2024-01-01 00:00+00' + random() * interval '91 days' AS sub, "
    "        random() * interval '10 minutes' AS wait, "
    "        least(172800, floor(-ln(1 - random()) * 3600)) * interval '1 second' AS "
    "el, "
    "        (ARRAY[1, 2, 4, 8, 16, 32, 64, 128])[1 + floor(power(random(), 2) * "
    "8)::int] "
    "          AS cpus "
    "      FROM generate_series(1, $N) g) r";

static const char generate_steps[] =
    "INSERT INTO job_steps (job_id, step_id, name, state, start_time, end_time, "
    "  ntasks, nnodes, node_list, alloc_cpus, exit_code, exit_signal, user_cpu_s, "
    "  system_cpu_s, max_rss_bytes) "
    "SELECT id, 'batch', 'batch', state, start_time, end_time, 1, 1, node_list, "
    "  alloc_cpus, exit_code, exit_signal, "
    "  extract(epoch FROM end_time - start_time) * alloc_cpus * random() * 0.9, "
    "  extract(epoch FROM end_time - start_time) * alloc_cpus * random() * 0.05, "
    "  (random() * 4096 * 1048576)::bigint "
    "FROM jobs";

static int load(phx_db_conn_t *c, long njobs)
{
    char sql[4096];
    const char *mark = strstr(generate_jobs, "$N");
    snprintf(sql, sizeof(sql), "%.*s%ld%s", (int)(mark - generate_jobs), generate_jobs,
             njobs, mark + 2);
    double ms;
    char what[64];
    snprintf(what, sizeof(what), "load %ld jobs (triggers off)", njobs);
    if (exec(c, "SET session_replication_role = replica", NULL) < 0 ||
        timed(c, what, sql, &ms) < 0 ||
        timed(c, "load their batch steps", generate_steps, &ms) < 0 ||
        exec(c, "SELECT setval('jobs_id_seq', (SELECT max(id) FROM jobs))", NULL) < 0 ||
        exec(c, "RESET session_replication_role", NULL) < 0 ||
        timed(c, "phx_acct_usage_rebuild()", "SELECT phx_acct_usage_rebuild()", &ms) <
            0 ||
        timed(c, "VACUUM ANALYZE", "VACUUM ANALYZE", &ms) < 0)
        return -1;
    phx_db_result_t *res;
    if (exec(c,
             "SELECT (SELECT count(*) FROM usage_daily) || ' usage_daily rows, ' || "
             "(SELECT count(*) FROM jobs WHERE end_time >= '2024-02-01' AND end_time < "
             "'2024-03-01') || ' jobs ended in February, ' || (SELECT "
             "count(DISTINCT user_name) FROM jobs) || ' users'",
             &res) < 0)
        return -1;
    printf("bench_acct: %s\n", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    return 0;
}

typedef struct query {
    const char *what;
    const char *sql;
    bool target; /* counts against the 100 ms target */
} query_t;

static const query_t queries[] = {
    {"month by user and account (usage_daily)",
     "SELECT user_name, account, sum(jobs), sum(core_hours), sum(total_cpu_s) "
     "FROM usage_daily WHERE day >= '2024-02-01' AND day < '2024-03-01' "
     "GROUP BY user_name, account",
     true},
    {"month's top 10 users (usage_daily)",
     "SELECT user_name, round(sum(core_hours)::numeric, 1), sum(jobs) FROM usage_daily "
     "WHERE day >= '2024-02-01' AND day < '2024-03-01' GROUP BY user_name "
     "ORDER BY sum(core_hours) DESC LIMIT 10",
     true},
    {"month per day of one account (usage_daily)",
     "SELECT day, sum(jobs), sum(core_hours) FROM usage_daily WHERE account = 'acct07' "
     "AND day >= '2024-02-01' AND day < '2024-03-01' GROUP BY day ORDER BY day",
     true},
    {"month's top 10 users (acct_jobs, no rollup)",
     "SELECT user_name, round(sum(cpu_time_s) / 3600.0, 1), count(*) FROM acct_jobs "
     "WHERE \"end\" >= '2024-02-01' AND \"end\" < '2024-03-01' GROUP BY user_name "
     "ORDER BY 2 DESC LIMIT 10",
     false},
    {"one user's week of jobs (acct_jobs)",
     "SELECT jobid, job_name, state, exit_code, elapsed, total_cpu_s, max_rss_bytes "
     "FROM acct_jobs WHERE user_name = 'user042' AND \"end\" >= '2024-02-05' "
     "AND \"end\" < '2024-02-12' ORDER BY job_id",
     false},
};

static int run_queries(phx_db_conn_t *c, const char *role, double *worst)
{
    char set[96];
    snprintf(set, sizeof(set), "SET ROLE %s", role ? role : "NONE");
    if (exec(c, set, NULL) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        int rows = 0;
        double ms = median_ms(c, queries[i].sql, &rows);
        if (ms < 0)
            return -1;
        printf("bench_acct: %-10s %-44s %8.2f ms  (%d rows, median of %d)\n",
               role ? role : "owner", queries[i].what, ms, rows, RUNS);
        if (queries[i].target && ms > *worst)
            *worst = ms;
    }
    return exec(c, "RESET ROLE", NULL);
}

/* Jobs ended one statement each, as the daemon does: with the usage
 * trigger, then without it (ALTER TABLE ... DISABLE TRIGGER), on the same
 * 2000 jobs put back to RUNNING before each pass. */
static int trigger_cost(phx_db_conn_t *c)
{
    static const char end_one[] =
        "UPDATE jobs SET state = 'COMPLETED', end_time = start_time + interval '90 "
        "minutes', exit_code = 0, exit_signal = 0 WHERE id = $1";
    enum { N = 2000 };
    phx_db_result_t *res;
    if (exec(c, "SELECT max(id) - 2000 FROM jobs", &res) < 0)
        return -1;
    long first = atol(phx_db_result_get(res, 0, 0)) + 1;
    phx_db_result_destroy(res);
    for (int pass = 0; pass < 2; pass++) {
        if (exec(
                c,
                "UPDATE jobs SET state = 'RUNNING', end_time = NULL, exit_code = NULL, "
                "exit_signal = NULL WHERE id > (SELECT max(id) FROM jobs) - 2000",
                NULL) < 0 ||
            exec(c, "VACUUM ANALYZE jobs", NULL) < 0)
            return -1;
        if (pass == 1 &&
            exec(c, "ALTER TABLE jobs DISABLE TRIGGER jobs_usage_update", NULL) < 0)
            return -1;
        double t0 = now_ms();
        for (long i = 0; i < N; i++) {
            char id[32];
            snprintf(id, sizeof(id), "%ld", first + i);
            const char *p[] = {id};
            phx_error_t err;
            if (phx_db_query(c, end_one, 1, p, NULL, &err) < 0) {
                fprintf(stderr, "bench_acct: %s\n", err.text);
                return -1;
            }
        }
        double dt = now_ms() - t0;
        printf("bench_acct: %d job ends, one UPDATE each, %-21s %6.0f ends/s  "
               "(%.3f ms each)\n",
               N, pass ? "without usage trigger" : "with usage trigger", N / dt * 1e3,
               dt / N);
    }
    return exec(c, "ALTER TABLE jobs ENABLE TRIGGER jobs_usage_update", NULL);
}

static int repo_migrations(char *dir, size_t len)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return -1;
    exe[n] = '\0';
    for (int i = 0; i < 4; i++) { /* <repo>/<build>/tests/bench/bench_acct */
        char *slash = strrchr(exe, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    snprintf(dir, len, "%.4000s/db/migrations", exe);
    return access(dir, R_OK) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    long njobs = argc > 1 ? atol(argv[1]) : 1000000;
    if (njobs < 10000)
        njobs = 10000;
    char dir[4200];
    if (repo_migrations(dir, sizeof(dir)) < 0) {
        fprintf(stderr, "bench_acct: no db/migrations above the executable\n");
        return 1;
    }
    static phx_test_pg_t pg;
    const char *const settings[] = {"shared_buffers=256MB", "work_mem=64MB",
                                    "max_wal_size=4GB", NULL};
    if (phx_test_pg_start(&pg, settings) < 0)
        return 1;
    char dsn[256];
    if (phx_test_pg_createdb(&pg, "bench", dsn, sizeof(dsn)) < 0)
        return 1;
    phx_error_t err;
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c || phx_db_migrate(c, dir, &err) < 0) {
        fprintf(stderr, "bench_acct: %s\n", err.text);
        return 1;
    }
    double worst = 0;
    int rc = load(c, njobs) < 0 ||
                     exec(c, "SELECT phx_acct_grant_user('user042')", NULL) < 0 ||
                     run_queries(c, NULL, &worst) < 0 ||
                     run_queries(c, "phx_accountant", &worst) < 0 ||
                     run_queries(c, "user042", &worst) < 0 || trigger_cost(c) < 0
                 ? 1
                 : 0;
    if (rc == 0)
        printf(
            "bench_acct: slowest usage_daily month query %.2f ms: target < 100 ms %s\n",
            worst, worst < 100 ? "met" : "MISSED");
    phx_db_conn_close(c);
    phx_test_pg_stop(&pg);
    return rc;
}
