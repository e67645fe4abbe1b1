/* Shared by the db/store tests: a database with table
 *   t (id serial PRIMARY KEY, k int UNIQUE, v text, tx bigint = txid)
 * in a private PostgreSQL, a store on an event base, and a callback that
 * records what it saw. */
#ifndef PHX_TEST_STORETEST_H
#define PHX_TEST_STORETEST_H

#include <stdbool.h>

#include "db/db.h"
#include "db/store.h"
#include "lib/error.h"
#include "tests/unit/support/pgtest.h"

struct event_base;

typedef struct store_env {
    char dsn[256];
    phx_db_conn_t *conn; /* synchronous, for set-up and checks */
    struct event_base *base;
    phx_db_store_t *store;
} store_env_t;

/* What one callback saw. */
typedef struct store_rec {
    int calls;
    bool failed;
    char sqlstate[6];
    char text[PHX_ERROR_TEXT_MAX];
    int nresults;
    char value[64]; /* results[0] row 0 col 0 */
    int rows;
    bool committed_when_called; /* checked from another connection */
    int *done;                  /* incremented on each call */
    store_env_t *env;
} store_rec_t;

/* A new database of pg with table t and a store on it (opts may be NULL). */
store_env_t *store_env_new(phx_test_pg_t *pg, const phx_db_store_opts_t *opts);
/* store_env_new, then the project's migrations (db/migrations) applied. */
store_env_t *store_env_migrated(phx_test_pg_t *pg);
void store_env_free(store_env_t *e);
/* phx_db_done_f: arg is a store_rec_t. */
void store_rec_done(const phx_error_t *err, phx_db_result_t *const *results, int n,
                    void *arg);
void store_exec(store_env_t *e, const char *sql);
/* The first column of the first row, as a number. */
long store_count(store_env_t *e, const char *sql);
/* Run the loop until *counter reaches target (10 s at most). */
void store_run_until(store_env_t *e, int *counter, int target);
/* Run the loop until the store has done everything queued (10 s at most). */
void store_drain(store_env_t *e);
/* A write that keeps the DB thread busy for seconds, so that the next ones
 * queue up and meet in one group. */
void store_hold_thread(store_env_t *e, store_rec_t *r, const char *seconds);

#endif
