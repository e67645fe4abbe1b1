/* db/: synchronous queries and migrations against a private PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "tests/unit/support/pgtest.h"
#include "tests/unit/support/paths.h"

static phx_test_pg_t pg;
static char fixtures[1024];

/* A fresh database per test. */
static phx_db_conn_t *fresh_db(char *dsn, size_t len)
{
    static int serial;
    char name[32];
    snprintf(name, sizeof(name), "t%d", ++serial);
    assert_int_equal(phx_test_pg_createdb(&pg, name, dsn, len), 0);
    phx_error_t err = {{0}};
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c)
        fail_msg("connect: %s", err.text);
    return c;
}

/* One value of a one-row query, copied into buf. */
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

static void test_query_params(void **state)
{
    (void)state;
    char dsn[256], buf[64];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    assert_int_equal(phx_db_query(c, "CREATE TABLE t (id serial, v text, n text)", 0,
                                  NULL, NULL, &err),
                     0);
    const char *evil = "x'); DROP TABLE t; --";
    const char *p1[] = {evil, NULL};
    phx_db_result_t *res = NULL;
    assert_int_equal(phx_db_query(c,
                                  "INSERT INTO t (v, n) VALUES ($1, $2) RETURNING id",
                                  2, p1, &res, &err),
                     0);
    assert_int_equal(phx_db_result_affected(res), 1);
    assert_string_equal(phx_db_result_colname(res, 0), "id");
    assert_string_equal(phx_db_result_get(res, 0, 0), "1");
    phx_db_result_destroy(res);

    const char *p2[] = {"1"};
    res = NULL;
    assert_int_equal(
        phx_db_query(c, "SELECT v, n, id FROM t WHERE id = $1", 1, p2, &res, &err), 0);
    assert_int_equal(phx_db_result_rows(res), 1);
    assert_int_equal(phx_db_result_cols(res), 3);
    assert_string_equal(phx_db_result_get(res, 0, 0), evil);
    assert_false(phx_db_result_isnull(res, 0, 0));
    assert_true(phx_db_result_isnull(res, 0, 1));
    assert_int_equal(phx_db_result_colnum(res, "id"), 2);
    assert_null(phx_db_result_get(res, 1, 0));
    assert_null(phx_db_result_colname(res, 3));
    phx_db_result_destroy(res);
    /* The table survived the "injection". */
    assert_string_equal(scalar(c, "SELECT count(*) FROM t", buf, sizeof(buf)), "1");
    phx_db_conn_close(c);
}

static void test_query_errors(void **state)
{
    (void)state;
    char dsn[256], st[6];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    assert_int_equal(
        phx_db_query(c, "CREATE TABLE u (k int PRIMARY KEY)", 0, NULL, NULL, &err), 0);
    assert_false(phx_db_error_sqlstate(&err, st));
    const char *p[] = {"7"};
    assert_int_equal(phx_db_query(c, "INSERT INTO u VALUES ($1)", 1, p, NULL, &err), 0);
    phx_db_result_t *res = (phx_db_result_t *)&err; /* must stay untouched */
    assert_int_equal(phx_db_query(c, "INSERT INTO u VALUES ($1)", 1, p, &res, &err),
                     -1);
    assert_ptr_equal(res, (phx_db_result_t *)&err);
    assert_non_null(strstr(err.text, "duplicate key value violates unique constraint"));
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "23505");

    assert_int_equal(phx_db_query(c, "SELEC 1", 0, NULL, NULL, &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "42601");
    assert_non_null(strstr(err.text, "SELEC 1"));

    /* An invalid parameter is the server's error, not an interpolation. */
    const char *bad[] = {"not a number"};
    assert_int_equal(phx_db_query(c, "SELECT $1::int", 1, bad, NULL, &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "22P02");
    phx_db_conn_close(c);

    char nodsn[300];
    snprintf(nodsn, sizeof(nodsn), "host=%s port=%d dbname=nosuchdb user=postgres",
             pg.dir, pg.port);
    assert_null(phx_db_connect(nodsn, &err));
    assert_non_null(strstr(err.text, "could not connect"));
    assert_non_null(strstr(err.text, "nosuchdb"));
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "08001"); /* libpq gives no code before login */
}

static void test_error_sqlstate_survives_truncation(void **state)
{
    (void)state;
    char dsn[256], st[6];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    char *big = malloc(2000);
    assert_non_null(big);
    memset(big, 'z', 1500);
    big[1500] = '\0';
    const char *p[] = {big};
    phx_error_t err = {{0}};
    assert_int_equal(phx_db_query(c, "SELECT $1::int", 1, p, NULL, &err), -1);
    assert_non_null(strstr(err.text, "invalid input syntax"));
    assert_int_equal(strlen(err.text), PHX_ERROR_TEXT_MAX - 1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "22P02");
    free(big);
    phx_db_conn_close(c);
}

static void fixture(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", fixtures, name);
}

static void test_migrate_order_and_idempotent(void **state)
{
    (void)state;
    char dsn[256], dir[1100], buf[128];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    fixture(dir, sizeof(dir), "migrations_ok");
    int n = phx_db_migrate(c, dir, &err);
    if (n < 0)
        fail_msg("migrate: %s", err.text);
    assert_int_equal(n, 3);
    /* 002 altered what 001 created: order held. */
    assert_string_equal(scalar(c, "SELECT owner FROM items", buf, sizeof(buf)),
                        "migration-2");
    assert_string_equal(scalar(c,
                               "SELECT string_agg(version || ':' || name, ',' "
                               "ORDER BY version) FROM schema_version",
                               buf, sizeof(buf)),
                        "1:items,2:items_owner,3:slow");
    /* sha256sum of the file. */
    assert_string_equal(
        scalar(c, "SELECT length(checksum) FROM schema_version WHERE version = 1", buf,
               sizeof(buf)),
        "64");
    assert_int_equal(phx_db_migrate(c, dir, &err), 0);
    assert_int_equal(phx_db_migrate(c, dir, &err), 0);
    assert_string_equal(scalar(c, "SELECT count(*) FROM items", buf, sizeof(buf)), "1");
    phx_db_conn_close(c);
}

static void test_migrate_checksum_matches_sha256sum(void **state)
{
    (void)state;
    char dsn[256], dir[1100], cmd[1200], want[80] = "", buf[80];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    fixture(dir, sizeof(dir), "migrations_ok");
    assert_int_equal(phx_db_migrate(c, dir, &err), 3);
    snprintf(cmd, sizeof(cmd), "sha256sum %s/001_items.sql", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%64s", want), 1);
    pclose(p);
    assert_string_equal(scalar(c,
                               "SELECT checksum FROM schema_version WHERE version = 1",
                               buf, sizeof(buf)),
                        want);
    phx_db_conn_close(c);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[2600];
    snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_migrate_refuses_changed_file(void **state)
{
    (void)state;
    char dsn[256], src[1100], tmp[] = "/tmp/phx-mig-XXXXXX";
    char path[1200], from[1200];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    assert_non_null(mkdtemp(tmp));
    fixture(src, sizeof(src), "migrations_ok");
    snprintf(from, sizeof(from), "%s/001_items.sql", src);
    snprintf(path, sizeof(path), "%s/001_items.sql", tmp);
    copy_file(from, path);
    assert_int_equal(phx_db_migrate(c, tmp, &err), 1);

    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("-- an innocent-looking edit\n", f);
    fclose(f);
    /* A new migration must not be applied past the changed one either. */
    snprintf(from, sizeof(from), "%s/002_items_owner.sql", src);
    snprintf(path, sizeof(path), "%s/002_items_owner.sql", tmp);
    copy_file(from, path);
    assert_int_equal(phx_db_migrate(c, tmp, &err), -1);
    assert_non_null(strstr(err.text, "001_items.sql"));
    assert_non_null(strstr(err.text, "changed after it was applied"));
    char buf[16];
    assert_string_equal(
        scalar(c, "SELECT count(*) FROM schema_version", buf, sizeof(buf)), "1");

    /* Removing an applied migration's file is refused too. */
    snprintf(path, sizeof(path), "%s/001_items.sql", tmp);
    unlink(path);
    assert_int_equal(phx_db_migrate(c, tmp, &err), -1);
    assert_non_null(strstr(err.text, "missing migration 001"));
    snprintf(path, sizeof(path), "rm -rf %s", tmp);
    assert_int_equal(system(path), 0);
    phx_db_conn_close(c);
}

static void test_migrate_refuses_gap_and_duplicate(void **state)
{
    (void)state;
    char dsn[256], dir[1100], buf[16];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    fixture(dir, sizeof(dir), "migrations_gap");
    assert_int_equal(phx_db_migrate(c, dir, &err), -1);
    assert_non_null(strstr(err.text, "missing migration 002"));
    assert_non_null(strstr(err.text, "003_slow.sql"));
    fixture(dir, sizeof(dir), "migrations_dup");
    assert_int_equal(phx_db_migrate(c, dir, &err), -1);
    assert_non_null(strstr(err.text, "duplicate migration number 001"));
    assert_non_null(strstr(err.text, "001_items.sql"));
    assert_non_null(strstr(err.text, "001_other.sql"));
    /* Nothing was applied: the plan is checked before any transaction. */
    assert_string_equal(scalar(c,
                               "SELECT count(*) FROM pg_tables WHERE tablename IN "
                               "('items', 'other', 'schema_version')",
                               buf, sizeof(buf)),
                        "0");

    char tmp[] = "/tmp/phx-mig-XXXXXX", path[PATH_MAX];
    assert_non_null(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/1-items.sql", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(phx_db_migrate(c, tmp, &err), -1);
    assert_non_null(strstr(err.text, "malformed migration file name"));
    assert_non_null(strstr(err.text, "1-items.sql"));
    unlink(path);
    rmdir(tmp);
    phx_db_conn_close(c);
}

static void test_migrate_failure_rolls_back_that_file(void **state)
{
    (void)state;
    char dsn[256], dir[1100], buf[16], st[6];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    fixture(dir, sizeof(dir), "migrations_fail");
    assert_int_equal(phx_db_migrate(c, dir, &err), -1);
    assert_non_null(strstr(err.text, "002_broken.sql"));
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "42P01");
    assert_string_equal(
        scalar(c, "SELECT max(version) FROM schema_version", buf, sizeof(buf)), "1");
    assert_string_equal(scalar(c,
                               "SELECT count(*) FROM pg_tables WHERE tablename = "
                               "'half_done'",
                               buf, sizeof(buf)),
                        "0");
    /* The connection is usable afterwards. */
    assert_string_equal(scalar(c, "SELECT count(*) FROM items", buf, sizeof(buf)), "1");
    phx_db_conn_close(c);
}

typedef struct migrator {
    const char *dsn;
    const char *dir;
    int applied;
    phx_error_t err;
} migrator_t;

static void *run_migrator(void *arg)
{
    migrator_t *m = arg;
    phx_db_conn_t *c = phx_db_connect(m->dsn, &m->err);
    m->applied = c ? phx_db_migrate(c, m->dir, &m->err) : -1;
    phx_db_conn_close(c);
    return NULL;
}

static void test_migrate_concurrent(void **state)
{
    (void)state;
    char dsn[256], dir[1100], buf[16];
    phx_db_conn_t *c = fresh_db(dsn, sizeof(dsn));
    fixture(dir, sizeof(dir), "migrations_ok");
    migrator_t m[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        m[i] = (migrator_t){.dsn = dsn, .dir = dir};
        assert_int_equal(pthread_create(&t[i], NULL, run_migrator, &m[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (m[i].applied < 0)
            fail_msg("migrator %d: %s", i, m[i].err.text);
        total += m[i].applied;
    }
    assert_int_equal(total, 3);
    assert_string_equal(
        scalar(c, "SELECT count(*) FROM schema_version", buf, sizeof(buf)), "3");
    phx_db_conn_close(c);
}

static void test_migrations_dir(void **state)
{
    (void)state;
    char buf[PATH_MAX];
    phx_error_t err = {{0}};
    setenv("PHX_MIGRATIONS_DIR", "/some/where", 1);
    assert_int_equal(phx_db_migrations_dir(buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "/some/where");
    unsetenv("PHX_MIGRATIONS_DIR");
    /* From <build>/tests/unit/test_db: the source tree's db/migrations when
     * the build directory is inside it, else an error that says what to
     * set (a build directory elsewhere, as scripts/run-tests allows). */
    char parent[PATH_MAX - 32], want[PATH_MAX];
    assert_int_equal(phx_test_dir_up(4, parent, sizeof(parent)), 0);
    snprintf(want, sizeof(want), "%s/db/migrations", parent);
    char *real = realpath(want, NULL);
    if (real) {
        assert_int_equal(phx_db_migrations_dir(buf, sizeof(buf), &err), 0);
        assert_string_equal(buf, real);
        free(real);
        assert_int_equal(phx_db_migrations_dir(buf, 4, &err), -1);
    } else {
        assert_int_equal(phx_db_migrations_dir(buf, sizeof(buf), &err), -1);
        assert_non_null(strstr(err.text, "set PHX_MIGRATIONS_DIR"));
    }
}

static int setup(void **state)
{
    (void)state;
    char repo[PATH_MAX - 32];
    if (phx_test_repo_dir(repo, sizeof(repo)) < 0)
        return -1;
    snprintf(fixtures, sizeof(fixtures), "%.900s/tests/unit/fixtures", repo);
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
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_error_sqlstate_survives_truncation),
        cmocka_unit_test(test_migrate_order_and_idempotent),
        cmocka_unit_test(test_migrate_checksum_matches_sha256sum),
        cmocka_unit_test(test_migrate_refuses_changed_file),
        cmocka_unit_test(test_migrate_refuses_gap_and_duplicate),
        cmocka_unit_test(test_migrate_failure_rolls_back_that_file),
        cmocka_unit_test(test_migrate_concurrent),
        cmocka_unit_test(test_migrations_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
