#include "tests/unit/support/sqltest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db/migrate.h"
#include "tests/unit/support/pgtest.h"
#include "tests/unit/support/paths.h"

static phx_test_pg_t pg;
static char repo[1024];

int phx_sqltest_setup(void **state)
{
    (void)state;
    if (phx_test_repo_dir(repo, sizeof(repo)) < 0)
        return -1;
    return phx_test_pg_start(&pg, NULL);
}

int phx_sqltest_teardown(void **state)
{
    (void)state;
    phx_test_pg_stop(&pg);
    return 0;
}

const char *phx_sqltest_repo(void)
{
    return repo;
}

phx_db_conn_t *phx_sqltest_fresh_db(void)
{
    static int serial;
    char name[32], dsn[256], dir[1100];
    snprintf(name, sizeof(name), "sql%d", ++serial);
    snprintf(dir, sizeof(dir), "%s/db/migrations", repo);
    assert_int_equal(phx_test_pg_createdb(&pg, name, dsn, sizeof(dsn)), 0);
    phx_error_t err = {{0}};
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c)
        fail_msg("connect: %s", err.text);
    if (phx_db_migrate(c, dir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return c;
}

phx_db_result_t *phx_sqltest_query(phx_db_conn_t *c, const char *sql, int n,
                                   const char *const *params)
{
    phx_error_t err = {{0}};
    phx_db_result_t *res = NULL;
    if (!strstr(sql, "$1"))
        n = 0;
    if (phx_db_query(c, sql, n, n ? params : NULL, &res, &err) < 0)
        fail_msg("%s: %s", sql, err.text);
    return res;
}

void phx_sqltest_exec_ok(phx_db_conn_t *c, const char *sql)
{
    phx_db_result_destroy(phx_sqltest_query(c, sql, 0, NULL));
}

const char *phx_sqltest_rows(phx_db_conn_t *c, const char *sql, char *buf, size_t len)
{
    phx_db_result_t *res = phx_sqltest_query(c, sql, 0, NULL);
    size_t used = 0;
    buf[0] = '\0';
    for (int r = 0; r < phx_db_result_rows(res); r++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", r ? " " : "",
                                 phx_db_result_get(res, r, 0));
    assert_true(used < len);
    phx_db_result_destroy(res);
    return buf;
}

void phx_sqltest_exec_refused(phx_db_conn_t *c, const char *sql, const char *state)
{
    phx_error_t err = {{0}};
    char st[6];
    if (phx_db_query(c, sql, 0, NULL, NULL, &err) == 0)
        fail_msg("accepted: %s", sql);
    assert_true(phx_db_error_sqlstate(&err, st));
    if (strcmp(st, state) != 0)
        fail_msg("%s\n  want SQLSTATE %s\n  got %s", sql, state, err.text);
}

void phx_sqltest_as_role(phx_db_conn_t *c, const char *role)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SET ROLE %s", role ? role : "NONE");
    phx_sqltest_exec_ok(c, sql);
}
