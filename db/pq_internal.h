/* Shared by the files of db/ only: the libpq side of the public types. */
#ifndef PHX_DB_PQ_INTERNAL_H
#define PHX_DB_PQ_INTERNAL_H

#include <libpq-fe.h>

#include "db/db.h"

struct phx_db_result {
    PGresult *pg;
};

struct phx_db_conn {
    PGconn *pg;
    double ping_sent; /* CLOCK_MONOTONIC seconds of the ping on its way */
};

/* Take ownership of pg (a successful result); NULL with errno on ENOMEM, in
 * which case pg has been cleared. */
phx_db_result_t *phx_db_result_wrap(PGresult *pg);

/* "prefix: message (SQLSTATE XXXXX)" from a failed result (or, if res is
 * NULL or has no message, from the connection).  The SQLSTATE suffix always
 * survives truncation.  fallback_state is used when the server sent none
 * (NULL: no suffix).  Returns -1. */
int phx_db_set_pg_error(phx_error_t *err, const char *prefix, const PGresult *res,
                        const PGconn *conn, const char *fallback_state);
/* Same layout from plain text. */
int phx_db_set_state_error(phx_error_t *err, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Connect with expand_dbname so dsn may be a string or URI; application_name
 * defaults to app.  Blocks.  Returns NULL with err on failure. */
PGconn *phx_db_pq_connect(const char *dsn, const char *app, phx_error_t *err);

/* Shorten SQL for messages: first line, at most 60 bytes, into buf. */
const char *phx_db_sql_excerpt(const char *sql, char *buf, size_t len);

#endif
