/* Synchronous connection, results and PostgreSQL error text. */
#include "db/pq_internal.h"
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SQLSTATE_TAG " (SQLSTATE "

bool phx_db_error_sqlstate(const phx_error_t *err, char sqlstate[6])
{
    if (!err)
        return false;
    /* The tag is always the message's tail: ".... (SQLSTATE XXXXX)". */
    size_t len = strnlen(err->text, sizeof(err->text));
    size_t tail = strlen(SQLSTATE_TAG) + 5 + 1;
    if (len < tail)
        return false;
    const char *p = err->text + len - tail;
    if (strncmp(p, SQLSTATE_TAG, strlen(SQLSTATE_TAG)) != 0 ||
        err->text[len - 1] != ')')
        return false;
    memcpy(sqlstate, p + strlen(SQLSTATE_TAG), 5);
    sqlstate[5] = '\0';
    return true;
}

/* Write "prefix: msg (SQLSTATE s)" keeping the suffix when msg is long. */
static int set_error_parts(phx_error_t *err, const char *prefix, const char *msg,
                           const char *sqlstate)
{
    if (!err)
        return -1;
    char suffix[32] = "";
    if (sqlstate && strlen(sqlstate) == 5)
        snprintf(suffix, sizeof(suffix), "%s%s)", SQLSTATE_TAG, sqlstate);
    /* libpq messages end in a newline and may span lines (DETAIL): keep the
     * first line only, the primary message. */
    size_t msglen = strcspn(msg, "\n");
    while (msglen > 0 && msg[msglen - 1] == ' ')
        msglen--;
    size_t room = sizeof(err->text) - 1 - strlen(suffix);
    size_t plen = prefix && *prefix ? strlen(prefix) + 2 : 0;
    if (plen > room / 2)
        plen = room / 2;
    if (msglen > room - plen)
        msglen = room - plen;
    if (plen)
        snprintf(err->text, sizeof(err->text), "%.*s: %.*s%s", (int)(plen - 2), prefix,
                 (int)msglen, msg, suffix);
    else
        snprintf(err->text, sizeof(err->text), "%.*s%s", (int)msglen, msg, suffix);
    return -1;
}

int phx_db_set_state_error(phx_error_t *err, const char *sqlstate, const char *fmt, ...)
{
    int saved = errno;
    char msg[PHX_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_error_parts(err, NULL, msg, sqlstate);
    errno = saved;
    return -1;
}

int phx_db_set_pg_error(phx_error_t *err, const char *prefix, const PGresult *res,
                        const PGconn *conn, const char *fallback_state)
{
    int saved = errno;
    const char *msg = NULL;
    const char *state = NULL;
    if (res) {
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!msg || !*msg)
            msg = PQresultErrorMessage(res);
    }
    if ((!msg || !*msg) && conn)
        msg = PQerrorMessage(conn);
    if (!msg || !*msg)
        msg = "unknown error";
    /* libpq's own messages start with "ERROR:  " or "FATAL:  " only in
     * PQresultErrorMessage; strip it so the text reads like ours. */
    const char *sev = strstr(msg, ":  ");
    if (sev && sev - msg <= 8)
        msg = sev + 3;
    set_error_parts(err, prefix, msg, state ? state : fallback_state);
    errno = saved;
    return -1;
}

const char *phx_db_sql_excerpt(const char *sql, char *buf, size_t len)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t')
        sql++;
    size_t n = strcspn(sql, "\n");
    size_t max = len > 64 ? 60 : len - 4;
    if (n > max)
        snprintf(buf, len, "%.*s...", (int)max, sql);
    else
        snprintf(buf, len, "%.*s", (int)n, sql);
    return buf;
}

PGconn *phx_db_pq_connect(const char *dsn, const char *app, phx_error_t *err)
{
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const values[] = {dsn ? dsn : "", app, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (!pg) {
        errno = ENOMEM;
        phx_db_set_state_error(err, "08001", "could not connect to the database: %s",
                               strerror(ENOMEM));
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        phx_db_set_pg_error(err, "could not connect to the database", NULL, pg,
                            "08001");
        PQfinish(pg);
        errno = ECONNREFUSED;
        return NULL;
    }
    return pg;
}

static void log_notice(void *arg, const char *message)
{
    (void)arg;
    phx_log_debug("database: %.*s", (int)strcspn(message, "\n"), message);
}

phx_db_conn_t *phx_db_connect(const char *dsn, phx_error_t *err)
{
    phx_db_conn_t *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        phx_error_set(err, "could not connect to the database: %s", strerror(errno));
        return NULL;
    }
    conn->pg = phx_db_pq_connect(dsn, "phalanx", err);
    if (!conn->pg) {
        free(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn->pg, log_notice, NULL);
    return conn;
}

void phx_db_conn_close(phx_db_conn_t *conn)
{
    if (!conn)
        return;
    int saved = errno;
    PQfinish(conn->pg);
    free(conn);
    errno = saved;
}

int phx_db_query(phx_db_conn_t *conn, const char *sql, int nparams,
                 const char *const *params, phx_db_result_t **res, phx_error_t *err)
{
    if (!conn || !sql || nparams < 0 || (nparams > 0 && !params)) {
        errno = EINVAL;
        return phx_error_set(err, "invalid query arguments");
    }
    PGresult *pg = PQexecParams(conn->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = pg ? PQresultStatus(pg) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char excerpt[72];
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "query \"%s\" failed",
                 phx_db_sql_excerpt(sql, excerpt, sizeof(excerpt)));
        bool lost = PQstatus(conn->pg) == CONNECTION_BAD;
        phx_db_set_pg_error(err, prefix, pg, conn->pg, lost ? "08006" : NULL);
        PQclear(pg);
        errno = lost ? ECONNRESET : EIO;
        return -1;
    }
    if (!res) {
        PQclear(pg);
        return 0;
    }
    phx_db_result_t *r = phx_db_result_wrap(pg);
    if (!r)
        return phx_error_set(err, "could not store query result: %s", strerror(errno));
    *res = r;
    return 0;
}

phx_db_result_t *phx_db_result_wrap(PGresult *pg)
{
    phx_db_result_t *r = malloc(sizeof(*r));
    if (!r) {
        PQclear(pg);
        return NULL;
    }
    r->pg = pg;
    return r;
}

int phx_db_result_rows(const phx_db_result_t *res)
{
    return res ? PQntuples(res->pg) : 0;
}

int phx_db_result_cols(const phx_db_result_t *res)
{
    return res ? PQnfields(res->pg) : 0;
}

static bool in_range(const phx_db_result_t *res, int row, int col)
{
    return res && row >= 0 && col >= 0 && row < PQntuples(res->pg) &&
           col < PQnfields(res->pg);
}

const char *phx_db_result_get(const phx_db_result_t *res, int row, int col)
{
    return in_range(res, row, col) ? PQgetvalue(res->pg, row, col) : NULL;
}

bool phx_db_result_isnull(const phx_db_result_t *res, int row, int col)
{
    return in_range(res, row, col) ? PQgetisnull(res->pg, row, col) != 0 : true;
}

const char *phx_db_result_colname(const phx_db_result_t *res, int col)
{
    if (!res || col < 0 || col >= PQnfields(res->pg))
        return NULL;
    return PQfname(res->pg, col);
}

int phx_db_result_colnum(const phx_db_result_t *res, const char *name)
{
    return res && name ? PQfnumber(res->pg, name) : -1;
}

long phx_db_result_affected(const phx_db_result_t *res)
{
    if (!res)
        return 0;
    const char *n = PQcmdTuples(res->pg);
    return n && *n ? strtol(n, NULL, 10) : 0;
}

void phx_db_result_destroy(phx_db_result_t *res)
{
    if (!res)
        return;
    int saved = errno;
    PQclear(res->pg);
    free(res);
    errno = saved;
}

int phx_db_conn_socket(const phx_db_conn_t *conn)
{
    return conn ? PQsocket(conn->pg) : -1;
}

int phx_db_conn_check(phx_db_conn_t *conn, phx_error_t *err)
{
    if (!conn) {
        errno = EINVAL;
        return phx_error_set(err, "no connection");
    }
    /* Twice: a server that ends the session sends a FATAL message, then
     * closes; the first read may get the message only. */
    if (!PQconsumeInput(conn->pg) || !PQconsumeInput(conn->pg) ||
        PQstatus(conn->pg) == CONNECTION_BAD) {
        phx_db_set_pg_error(err, "database connection lost", NULL, conn->pg, "08006");
        errno = ECONNRESET;
        return -1;
    }
    /* the answers to pings, and any notification, are dropped */
    while (!PQisBusy(conn->pg)) {
        PGresult *r = PQgetResult(conn->pg);
        if (!r)
            break;
        PQclear(r);
    }
    PGnotify *n;
    while ((n = PQnotifies(conn->pg)))
        PQfreemem(n);
    return 0;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int phx_db_conn_ping(phx_db_conn_t *conn, double max_wait, phx_error_t *err)
{
    if (!conn) {
        errno = EINVAL;
        return phx_error_set(err, "no connection");
    }
    if (PQtransactionStatus(conn->pg) == PQTRANS_ACTIVE) {
        /* the last one is still on its way: a server that does not answer
         * (its host gone, a partition: no reset reaches us) is a failure
         * once max_wait has passed */
        double waited = mono_now() - conn->ping_sent;
        if (max_wait > 0 && waited > max_wait) {
            errno = ETIMEDOUT;
            return phx_error_set(err, "the database has not answered a ping for %.1f s",
                                 waited);
        }
        return 0;
    }
    conn->ping_sent = mono_now();
    if (!PQsendQuery(conn->pg, "SELECT 1")) {
        phx_db_set_pg_error(err, "could not ping the database", NULL, conn->pg,
                            "08006");
        errno = ECONNRESET;
        return -1;
    }
    return 0;
}
