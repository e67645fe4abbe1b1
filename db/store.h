/* The asynchronous store: the daemons' only way to PostgreSQL.
 *
 * One DB thread with its own connection is fed by a bounded queue; the loop
 * thread never waits on libpq.  Writes queued while the DB thread is busy are
 * group-committed: one transaction, all statements sent in one libpq pipeline,
 * prepared statements cached per SQL text.  Completions come back to the
 * event_base's thread through an eventfd watched by the loop.
 *
 * Threads: every function here must be called on the thread that runs the
 * event_base given to phx_db_store_create (the loop thread).
 *
 * Callbacks (libuv rule): a callback runs on the loop thread, from the loop,
 * exactly once per successfully queued request, never from inside the call
 * that queued it, and never if that call failed.  A write's callback runs
 * only after its transaction committed (err NULL) or after it was rolled back
 * or lost (err set).  See doc/db.md. */
#ifndef PHX_DB_STORE_H
#define PHX_DB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct event_base;

typedef struct phx_db_store phx_db_store_t;
typedef struct phx_db_txn phx_db_txn_t;

/* err is NULL on success; then results[i] is statement i's result (rows for
 * SELECT or RETURNING), nresults the number of statements (1 for a write or a
 * read).  On failure results is NULL and nresults 0.  err and the results
 * are borrowed: they are freed when the callback returns.  The callback may
 * queue more work and may call phx_db_store_destroy. */
typedef void (*phx_db_done_f)(const phx_error_t *err, phx_db_result_t *const *results,
                              int nresults, void *arg);

typedef struct phx_db_store_opts {
    size_t max_queue;          /* requests queued and not yet done; 0: 10000 */
    size_t max_batch;          /* statements per group commit; 0: 1000 */
    unsigned reconnect_min_ms; /* first reconnect delay; 0: 100 */
    unsigned reconnect_max_ms; /* backoff cap; 0: 5000 */
} phx_db_store_opts_t;

typedef struct phx_db_store_stats {
    uint64_t transactions;  /* write transactions committed */
    uint64_t committed;     /* write requests committed (a txn counts once) */
    uint64_t failed;        /* requests failed (writes, txns and reads) */
    uint64_t reads;         /* reads answered */
    uint64_t group_retries; /* groups re-run after one of their statements failed */
    uint64_t reconnects;    /* connections made after the first */
    uint64_t max_group;     /* most requests committed in one transaction */
    uint64_t rows_merged;   /* row writes committed by a many-row statement */
    size_t queued;          /* requests queued or running now */
} phx_db_store_stats_t;

/* Start the DB thread and connect (the first connection is made
 * synchronously, so a bad DSN fails here).  opts may be NULL.  base is
 * borrowed and must outlive the store.  NULL with err on failure. */
phx_db_store_t *phx_db_store_create(struct event_base *base, const char *dsn,
                                    const phx_db_store_opts_t *opts, phx_error_t *err);

/* Refuse new work, let the DB thread finish everything queued (failing it
 * with SQLSTATE 08003 if the database cannot be reached), deliver every
 * outstanding callback from inside this call, then free the store.  Blocks
 * until then.  Called from a store callback, the wait and the free happen when
 * that callback returns.  NULL is a no-op. */
void phx_db_store_destroy(phx_db_store_t *store);

/* Set (or with sql NULL, clear) the fence: one statement run first in every
 * write transaction; the transaction is abandoned unless it returns at least
 * one row, and every request in it fails with the fence's error or with
 * SQLSTATE PXF01.  Applies to transactions started after this call.  sql and
 * params are copied.  -1 with err on bad arguments or ENOMEM. */
int phx_db_store_set_fence(phx_db_store_t *store, const char *sql, int nparams,
                           const char *const *params, phx_error_t *err);

/* Call cb(err, arg) on the loop thread before the callback of every
 * request that failed with SQLSTATE sqlstate (5 characters: a fence's
 * refusal, db/leader.h); cb NULL: none.  cb may exit the process. */
typedef void (*phx_db_refused_f)(const phx_error_t *err, void *arg);
void phx_db_store_on_refused(phx_db_store_t *store, const char *sqlstate,
                             phx_db_refused_f cb, void *arg);

/* Queue one statement to be committed in the next group.  sql and params
 * (text; NULL is SQL NULL) are copied.  Returns 0, or -1 with errno and err:
 * EAGAIN when the queue is full, ESHUTDOWN after destroy, EINVAL, ENOMEM. */
int phx_db_store_write(phx_db_store_t *store, const char *sql, int nparams,
                       const char *const *params, phx_db_done_f cb, void *arg,
                       phx_error_t *err);

/* Rows: one statement that can be written for many rows at once.
 *
 * A row write is one execution of `one` with its nparams parameters.  Row
 * writes of the same kind (the same phx_db_rows_t) that meet in a group
 * commit are written by one execution of `many` instead, whose parameter $k
 * is a PostgreSQL array literal of the rows' $k values in queue order (SQL
 * NULL elements for NULL), read with unnest($1::bigint[], $2::text[], ...).
 * Rows whose first nkeys parameters are equal never share an execution: the
 * later one goes in a later one, so one key's rows are written in order.
 * Keys are compared as texts: give them in one canonical form ("1", never
 * "01" for the same row).
 *
 * Ordering: the rows of one execution are written at the place of the last
 * of them in the group.  A row write may thus run after writes queued after
 * it, never before writes queued before it: use it for writes that nothing
 * queued later depends on having run first.  A group commits as a whole, so
 * a write queued later still commits with it (barriers keep working).
 *
 * If `many` fails, the group's rows of its kind are retried one by one with
 * `one`: a bad row fails alone, as with phx_db_store_write.  The callback runs after
 * the commit with no results (nresults 0).  kind is kept by pointer: it must outlive
 * the store (make it static const).
 *
 * returns: both statements may leave rows out (INSERT ... ON CONFLICT DO
 * NOTHING) and return, in their first column, the $1 (as text, in the
 * canonical form of the key) of every row they wrote (RETURNING).  A row's
 * callback then tells it with nresults: 1 if its row was written, 0 if not
 * (results stay NULL).  With nkeys 1 and $1 unique within a run, so that a
 * returned key names one row. */
typedef struct phx_db_rows {
    const char *one;
    const char *many;
    int nparams; /* 1..PHX_DB_ROWS_MAX_PARAMS */
    int nkeys;   /* 1..nparams: the leading parameters that name the row */
    bool returns;
} phx_db_rows_t;

#define PHX_DB_ROWS_MAX_PARAMS 64

int phx_db_store_write_row(phx_db_store_t *store, const phx_db_rows_t *kind,
                           const char *const *params, phx_db_done_f cb, void *arg,
                           phx_error_t *err);

/* Queue one query run outside any write transaction (its own implicit
 * transaction, after the writes taken with it).  Same rules as write. */
int phx_db_store_read(phx_db_store_t *store, const char *sql, int nparams,
                      const char *const *params, phx_db_done_f cb, void *arg,
                      phx_error_t *err);

/* Several statements that commit together or not at all, with one callback
 * (results[i] for statement i).  Build with create/add, then hand it to
 * phx_db_store_txn, which always consumes it (also when it fails). */
phx_db_txn_t *phx_db_txn_create(void);
int phx_db_txn_add(phx_db_txn_t *txn, const char *sql, int nparams,
                   const char *const *params, phx_error_t *err);
/* NULL is a no-op.  Only for a txn never handed to phx_db_store_txn. */
void phx_db_txn_destroy(phx_db_txn_t *txn);
int phx_db_store_txn(phx_db_store_t *store, phx_db_txn_t *txn, phx_db_done_f cb,
                     void *arg, phx_error_t *err);

/* A consistent snapshot of the counters. */
void phx_db_store_stats(phx_db_store_t *store, phx_db_store_stats_t *out);

#endif
