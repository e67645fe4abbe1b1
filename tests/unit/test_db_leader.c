/* The masters' leader election in the database: migration 009's fence
 * (PXL01 unless the epoch is the current one; a new epoch waits for the old
 * leader's transaction in flight), and watching the lock connection
 * (phx_db_conn_check sees a session the server ended; pings keep it busy). */
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

#include "db/db.h"
#include "db/migrate.h"
#include "tests/unit/support/paths.h"
#include "tests/unit/support/pgtest.h"

static phx_test_pg_t pg;

static phx_db_conn_t *connect_to(const char *dsn)
{
    phx_error_t err = {{0}};
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c)
        fail_msg("connect: %s", err.text);
    return c;
}

/* A fresh database with the project's migrations. */
static phx_db_conn_t *migrated_db(char *dsn, size_t len)
{
    static int serial;
    char name[32], repo[PATH_MAX - 32], dir[PATH_MAX];
    snprintf(name, sizeof(name), "l%d", ++serial);
    assert_int_equal(phx_test_pg_createdb(&pg, name, dsn, len), 0);
    assert_int_equal(phx_test_repo_dir(repo, sizeof(repo)), 0);
    snprintf(dir, sizeof(dir), "%s/db/migrations", repo);
    phx_db_conn_t *c = connect_to(dsn);
    phx_error_t err = {{0}};
    if (phx_db_migrate(c, dir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return c;
}

static int run(phx_db_conn_t *c, const char *sql, phx_error_t *err)
{
    return phx_db_query(c, sql, 0, NULL, NULL, err);
}

static void test_fence(void **state)
{
    (void)state;
    char dsn[256], st[6];
    phx_db_conn_t *c = migrated_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    assert_int_equal(run(c, "SELECT phx_master_fence(0)", &err), 0);
    assert_int_equal(run(c, "UPDATE master_leader SET epoch = epoch + 1", &err), 0);
    assert_int_equal(run(c, "SELECT phx_master_fence(0)", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "PXL01");
    assert_non_null(strstr(err.text, "master epoch 0 is not the current one (1)"));
    assert_int_equal(run(c, "SELECT phx_master_fence(1)", &err), 0);
    /* one row only */
    assert_int_equal(run(c, "INSERT INTO master_leader (id) VALUES (2)", &err), -1);

    /* An old leader's transaction holds the row FOR SHARE: the new
     * leader's bump waits for it (here: gives up after 200 ms). */
    phx_db_conn_t *old = connect_to(dsn);
    assert_int_equal(run(old, "BEGIN", &err), 0);
    assert_int_equal(run(old, "SELECT phx_master_fence(1)", &err), 0);
    assert_int_equal(run(c, "SET lock_timeout = '200ms'", &err), 0);
    assert_int_equal(run(c, "UPDATE master_leader SET epoch = epoch + 1", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "55P03");
    assert_int_equal(run(old, "COMMIT", &err), 0);
    assert_int_equal(run(c, "UPDATE master_leader SET epoch = epoch + 1", &err), 0);
    /* and the old leader's next transaction is refused */
    assert_int_equal(run(old, "SELECT phx_master_fence(1)", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "PXL01");
    phx_db_conn_close(old);
    phx_db_conn_close(c);
}

static void test_watch(void **state)
{
    (void)state;
    char dsn[256];
    phx_db_conn_t *c = migrated_db(dsn, sizeof(dsn));
    phx_db_conn_t *other = connect_to(dsn);
    phx_error_t err = {{0}};
    assert_true(phx_db_conn_socket(c) >= 0);
    assert_int_equal(phx_db_conn_check(c, &err), 0);
    /* pings: sent, answered, the answer dropped; the connection still
     * takes queries */
    assert_int_equal(phx_db_conn_ping(c, 0, &err), 0);
    assert_int_equal(phx_db_conn_ping(c, 0, &err), 0); /* still on its way: no-op */
    usleep(200 * 1000);
    assert_int_equal(phx_db_conn_check(c, &err), 0);
    phx_db_result_t *res = NULL;
    assert_int_equal(phx_db_query(c, "SELECT pg_backend_pid()", 0, NULL, &res, &err),
                     0);
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    /* the server ends the session: the next check says so */
    const char *p[] = {pid};
    assert_int_equal(phx_db_query(other, "SELECT pg_terminate_backend($1::integer)", 1,
                                  p, NULL, &err),
                     0);
    usleep(200 * 1000);
    assert_int_equal(phx_db_conn_check(c, &err), -1);
    assert_non_null(strstr(err.text, "database connection lost"));
    phx_db_conn_close(other);
    phx_db_conn_close(c);
}

PHX_TEST_PG_GROUP_FIXTURES(pg)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fence),
        cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
