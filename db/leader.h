/* Leader election among the processes of one daemon kind on one database
 * (doc/admin.md, "High availability"): phx-master (master_leader, 009) and
 * phx-batchd (batchd_leader, 015) use it with a lock key, a table and a
 * fence function of their own.
 *
 * Every process holds a connection of its own for its life and takes a
 * session advisory lock on it: the one that has the lock leads.  Won: it
 * bumps the epoch of the table's one row (id 1), records its addresses
 * there, and the daemon's lead callback starts it as the leader; its write
 * transactions are then fenced with the epoch (phx_db_leader_fence_store,
 * phx_db_leader_fenced_query).  Lost: it stands by, reads who leads, and
 * tries the lock again every standby_poll seconds.
 *
 * A leader whose lock connection goes away, whose write fails on the fence,
 * or whose loop stalled past half the lease while another took over, is
 * deposed: the deposed callback runs and must not return (the daemon exits
 * at once; its service manager starts it again, as a standby).  A leader
 * that hangs without dying loses the lock: its lock session has
 * idle_session_timeout set to the lease, and is pinged four times as often.
 *
 * The table: id smallint (1), epoch bigint, the address columns (text),
 * host text, pid integer, elected_at timestamptz.  The fence function
 * (bigint) → bigint reads the row FOR SHARE and raises deposed_sqlstate
 * unless its argument is the current epoch.
 *
 * Threads: the loop thread of base only.  Needs no event priorities; with
 * them, the lock watch runs at priority 0. */
#ifndef PHX_DB_LEADER_H
#define PHX_DB_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "db/store.h"

struct event_base;

typedef struct phx_db_leader phx_db_leader_t;

#define PHX_DB_LEADER_ADDRS 4

/* The lock was won: start leading (blocking is fine).  -1 with err fails
 * the election (elect's caller, or failed from the standby's timer). */
typedef int (*phx_db_lead_f)(phx_db_leader_t *l, void *arg, phx_error_t *err);
/* No longer the leader, why: must not return. */
typedef void (*phx_db_deposed_f)(const char *why, void *arg);
/* A standby won the lock but could not start leading (err). */
typedef void (*phx_db_lead_failed_f)(const phx_error_t *err, void *arg);

typedef struct phx_db_leader_opts {
    const char *dsn;
    const char *lock_key;         /* the advisory lock, a decimal bigint */
    const char *table;            /* "master_leader" */
    const char *fence_fn;         /* "phx_master_fence" */
    const char *deposed_sqlstate; /* what the fence raises: "PXL01" */
    int naddrs;                   /* 1..PHX_DB_LEADER_ADDRS */
    const char *addr_cols[PHX_DB_LEADER_ADDRS];   /* "http_address" */
    const char *addr_labels[PHX_DB_LEADER_ADDRS]; /* logs: "HTTP on" */
    const char *addrs[PHX_DB_LEADER_ADDRS];       /* ours (copied) */
    double standby_poll;                          /* seconds */
    double lease;                                 /* seconds */
    phx_db_lead_f lead;
    phx_db_deposed_f deposed;
    phx_db_lead_failed_f failed;
    void *arg;
} phx_db_leader_opts_t;

/* Nothing is connected yet.  opts' strings are copied, base is borrowed.
 * NULL with err on a bad option or ENOMEM. */
phx_db_leader_t *phx_db_leader_create(struct event_base *base,
                                      const phx_db_leader_opts_t *opts,
                                      phx_error_t *err);
/* Connect and try the lock: won, lead runs from inside this call; lost,
 * stand by (the poll runs from the loop).  -1 with err when the database
 * cannot be reached, or lead failed. */
int phx_db_leader_elect(phx_db_leader_t *l, phx_error_t *err);
/* Closes the lock connection (a leader's lock goes).  NULL is a no-op. */
void phx_db_leader_destroy(phx_db_leader_t *l);

bool phx_db_leader_standby(const phx_db_leader_t *l);
/* Ours once elected, else 0. */
int64_t phx_db_leader_epoch(const phx_db_leader_t *l);
/* The leader's address i as of the last read ("": none known). */
const char *phx_db_leader_addr(const phx_db_leader_t *l, int i);

/* Fence every write transaction of store with our epoch; a request that
 * fails on the fence deposes us before its callback runs.  Leader only. */
int phx_db_leader_fence_store(phx_db_leader_t *l, phx_db_store_t *store,
                              phx_error_t *err);
/* err from a write: deposes us if the fence refused it. */
void phx_db_leader_fenced(phx_db_leader_t *l, const phx_error_t *err);
/* One statement on a connection of its own (db), in a transaction fenced
 * with our epoch: for writes made before the store exists.  Deposes us if
 * the fence refuses it; else as phx_db_query. */
int phx_db_leader_fenced_query(phx_db_leader_t *l, phx_db_conn_t *db, const char *sql,
                               int nparams, const char *const *params,
                               phx_db_result_t **res, phx_error_t *err);
/* Call from a periodic tick with a monotonic now: when the loop did not
 * run for half the lease (stopped, stuck), ask the database whether we
 * still lead, before anything acts on the time that passed. */
void phx_db_leader_check(phx_db_leader_t *l, double now);

#endif
