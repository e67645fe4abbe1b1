/* Synchronous PostgreSQL access for start-up, tools and the CLI: one
 * connection, parameterised statements, results.  The daemons' event loops
 * use the asynchronous store (db/store.h) instead; both share the result type.
 *
 * No libpq type appears here: only db/ includes libpq-fe.h. */
#ifndef PHX_DB_H
#define PHX_DB_H

#include <stdbool.h>

#include "lib/error.h"

typedef struct phx_db_conn phx_db_conn_t;
typedef struct phx_db_result phx_db_result_t;

/* Errors from PostgreSQL carry its primary message and end with
 * " (SQLSTATE XXXXX)".  Connection failures use class 08 (08001 could not
 * connect, 08006 connection lost) when the server sent no code of its own.
 * Phalanx's own conditions use class PX, which PostgreSQL never emits. */
#define PHX_DB_SQLSTATE_FENCE "PXF01" /* the store's fence returned no row */

/* Copy the SQLSTATE of err into sqlstate (6 bytes with the NUL) and return
 * true, or return false if err carries none. */
bool phx_db_error_sqlstate(const phx_error_t *err, char sqlstate[6]);

/* Connect with a libpq connection string or URI ("host=/tmp/x dbname=phx").
 * Blocks.  NULL with err (and errno) on failure. */
phx_db_conn_t *phx_db_connect(const char *dsn, phx_error_t *err);
/* NULL is a no-op; errno is preserved. */
void phx_db_conn_close(phx_db_conn_t *conn);

/* Watching an idle connection (phx-master's leader lock, doc/admin.md):
 * its socket (-1 if none), to wait for readability; then check reads what
 * the server sent and returns 0 while the connection is usable, -1 with
 * err (SQLSTATE 08006, or the server's, e.g. 57P01 when terminated) once it
 * is gone. */
int phx_db_conn_socket(const phx_db_conn_t *conn);
int phx_db_conn_check(phx_db_conn_t *conn, phx_error_t *err);
/* Send a trivial query without waiting for it (its answer is read and
 * dropped by check): keeps the session from being idle.  -1 with err if it
 * could not be sent, or (ETIMEDOUT) if the last one has gone unanswered
 * for more than max_wait seconds (0: forever); a ping still unanswered
 * within max_wait is no error (nothing sent). */
int phx_db_conn_ping(phx_db_conn_t *conn, double max_wait, phx_error_t *err);

/* Run one statement with text parameters $1..$nparams (a NULL element is SQL
 * NULL); parameters are never interpolated into the SQL text.  On success
 * returns 0 and, if res is not NULL, a result the caller destroys.  On failure
 * returns -1, sets err to the server's message and SQLSTATE, *res untouched. */
int phx_db_query(phx_db_conn_t *conn, const char *sql, int nparams,
                 const char *const *params, phx_db_result_t **res, phx_error_t *err);

/* Result accessors.  Strings are owned by the result and live until
 * phx_db_result_destroy.  get returns "" for NULL: check isnull.  Out-of-range
 * rows or columns give NULL (get, colname) or true (isnull). */
int phx_db_result_rows(const phx_db_result_t *res);
int phx_db_result_cols(const phx_db_result_t *res);
const char *phx_db_result_get(const phx_db_result_t *res, int row, int col);
bool phx_db_result_isnull(const phx_db_result_t *res, int row, int col);
const char *phx_db_result_colname(const phx_db_result_t *res, int col);
/* Column index by name, or -1. */
int phx_db_result_colnum(const phx_db_result_t *res, const char *name);
/* Rows affected by INSERT/UPDATE/DELETE (also with RETURNING), else 0. */
long phx_db_result_affected(const phx_db_result_t *res);
/* NULL is a no-op. */
void phx_db_result_destroy(phx_db_result_t *res);

#endif
