/* SQL helpers for unit tests against a private PostgreSQL (pgtest.h): one
 * server per test binary, started and stopped as the cmocka group setup and
 * teardown, and on it a fresh database with every migration of the
 * repository applied for each test.  The helpers fail the running test
 * (cmocka) on any unexpected error, so callers check nothing. */
#ifndef PHX_TEST_SQLTEST_H
#define PHX_TEST_SQLTEST_H

#include <stddef.h>

#include "db/db.h"

/* Group setup and teardown for cmocka_run_group_tests: find the repository
 * from the binary's path (<repo>/<build>/tests/unit/<test>) and start the
 * server; stop it. */
int phx_sqltest_setup(void **state);
int phx_sqltest_teardown(void **state);
/* The repository's top directory; valid after phx_sqltest_setup. */
const char *phx_sqltest_repo(void);

/* A new database with db/migrations applied; the caller closes it. */
phx_db_conn_t *phx_sqltest_fresh_db(void);
/* Run sql with n parameters (a statement without "$1" gets none); the
 * caller destroys the result. */
phx_db_result_t *phx_sqltest_query(phx_db_conn_t *c, const char *sql, int n,
                                   const char *const *params);
void phx_sqltest_exec_ok(phx_db_conn_t *c, const char *sql);
/* The first column of every row, joined by " ", in buf; returns buf. */
const char *phx_sqltest_rows(phx_db_conn_t *c, const char *sql, char *buf, size_t len);
/* sql must fail with SQLSTATE state (42501 insufficient privilege, ...). */
void phx_sqltest_exec_refused(phx_db_conn_t *c, const char *sql, const char *state);
/* SET ROLE role; NULL goes back to the session's own role. */
void phx_sqltest_as_role(phx_db_conn_t *c, const char *role);

#endif
