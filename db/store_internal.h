/* Shared by store.c (queue, thread, completions) and store_exec.c (pipeline
 * execution on the DB thread).  Not for use outside db/. */
#ifndef PHX_DB_STORE_INTERNAL_H
#define PHX_DB_STORE_INTERNAL_H

#include <stdbool.h>

#include "db/pq_internal.h"
#include "db/store.h"

#define PHX_DB_MAX_PARAMS 65535

typedef struct stmt {
    char *sql;
    int nparams;
    char **params; /* NULL elements are SQL NULL */
} stmt_t;

typedef enum req_kind {
    REQ_WRITE, /* one or more statements, committed together */
    REQ_READ,  /* one statement, its own implicit transaction */
} req_kind_t;

/* A request: the txn builder is a write request under construction. */
struct phx_db_txn {
    struct phx_db_txn *next;
    req_kind_t kind;
    stmt_t *stmts;
    int nstmts;
    int cap;
    /* Filled on the DB thread; read on the loop thread after hand-over under
     * the store's mutex. */
    phx_db_result_t *resv;     /* nstmts slots, pg NULL until a result */
    phx_db_result_t **results; /* pointers into resv, for the callback */
    bool failed;
    phx_error_t err;
    phx_db_done_f cb;
    void *arg;
    /* Row writes (phx_db_store_write_row): stmts[0] is kind->one. */
    const phx_db_rows_t *rows;
    bool unmerged; /* DB thread: its many-row statement failed; write it alone */
    int run;       /* DB thread: its run in the current plan, -1 if none */
    bool written;  /* rows->returns: its row was returned (written) */
};
typedef struct phx_db_txn request_t;

typedef struct stmt_cache stmt_cache_t;

/* ---- row writes merged into many-row statements (store_rows.c) ---- */

typedef struct row_run {
    const phx_db_rows_t *kind;
    request_t **rows;
    size_t n, cap;
    size_t bytes; /* of the rows' parameters */
    size_t last;  /* the group index of its last row: where it is written */
    bool open;
} row_run_t;

typedef struct row_plan {
    row_run_t *runs;
    size_t n, cap;
} row_plan_t;

/* Sort the row writes of reqs[0..n) into runs (every request's run set, -1
 * for requests written alone).  -1 on ENOMEM: then every row is alone. */
int phx_db_rows_plan(row_plan_t *plan, request_t **reqs, size_t n);
void phx_db_rows_plan_clear(row_plan_t *plan);
/* The many-row statement of run (its params are array literals); -1 on
 * ENOMEM.  Free with phx_db_stmt_free. */
int phx_db_rows_stmt(const row_run_t *run, stmt_t *out);

/* The DB thread's connection and everything tied to it. */
typedef struct db_session {
    PGconn *pg;
    stmt_cache_t *cache;
    stmt_t *fence;              /* owned copy, NULL: none */
    phx_db_store_stats_t delta; /* counters to merge into the store's */
    row_plan_t plan;            /* of the write transaction being run */
    long run_warned_at;         /* CLOCK_MONOTONIC s of the last such warning */
    int64_t plans_at;           /* CLOCK_MONOTONIC ms of the last DISCARD PLANS */
} db_session_t;

/* The statement that makes the session's plans again ("DISCARD PLANS";
 * tests set a failing one: it must fail no write). */
extern const char *phx_db_plans_sql;

void phx_db_stmt_free(stmt_t *s);
/* Deep copy into dst; -1 with errno on ENOMEM (dst then holds nothing). */
int phx_db_stmt_copy(stmt_t *dst, const char *sql, int nparams,
                     const char *const *params);

/* Free the results of req (after a failed attempt or after delivery). */
void phx_db_request_clear_results(request_t *req);

int phx_db_session_open(db_session_t *s, const char *dsn, phx_error_t *err);
void phx_db_session_close(db_session_t *s);
/* False if the server closed the idle connection (the session is then
 * closed). */
bool phx_db_session_check(db_session_t *s);
/* Run a batch: writes group-committed (in order), then reads.  On return
 * every request has its results or failed set.  Returns -1 if the connection
 * was lost (the session is then closed), else 0. */
int phx_db_session_run(db_session_t *s, request_t **writes, size_t nwrites,
                       request_t **reads, size_t nreads);

#endif
