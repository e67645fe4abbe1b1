/* Leader election: see db/leader.h and doc/admin.md, "High availability".
 * Taken out of phx-master's leader.c so that phx-batchd elects the same
 * way; only the lock key, the table, the fence and the addresses differ. */
#include "db/leader.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

#define SQLSTATE_LOCK_TIMEOUT "55P03"
#define ADDR_MAX              264

struct phx_db_leader {
    struct event_base *base;
    phx_db_leader_opts_t o; /* strings below are ours */
    char *leader_sql, *claim_sql, *fence_sql, *epoch_sql;
    phx_db_conn_t *lock_db; /* holds the lock (or tries it: standby) */
    struct event *lock_ev;  /* leader: lock_db readable; standby: the poll */
    struct event *ping_ev;  /* leader: keeps lock_db's session busy */
    double last_tick;       /* monotonic: the last phx_db_leader_check */
    bool standby;
    int64_t epoch;
    char leader[PHX_DB_LEADER_ADDRS][ADDR_MAX];
};

static const char lock_sql[] = "SELECT pg_try_advisory_lock($1::bigint)";
/* The transactions that ran the fence and are still open: the fence reads
 * the row FOR SHARE, which holds RowShareLock on the table until the
 * transaction ends (a plain read takes AccessShareLock).  Ours has the lock,
 * so they are a former leader's, stopped or cut off in the middle of a
 * write; ended, they roll back. */
static const char stuck_sql[] =
    "SELECT l.pid, coalesce(a.state, '?'), coalesce(a.application_name, '?'), "
    "pg_terminate_backend(l.pid) FROM pg_locks l "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'relation' AND l.relation = $1::regclass "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.mode = 'RowShareLock' AND l.granted AND l.pid <> pg_backend_pid()";

static void deposed(phx_db_leader_t *l, const char *what, const phx_error_t *err)
{
    char why[PHX_ERROR_TEXT_MAX + 128];
    snprintf(why, sizeof(why), "%s%s%s", what, err ? ": " : "", err ? err->text : "");
    l->o.deposed(why, l->o.arg);
    _exit(1); /* it must not return */
}

void phx_db_leader_fenced(phx_db_leader_t *l, const phx_error_t *err)
{
    char state[6];
    if (l && err && phx_db_error_sqlstate(err, state) &&
        strcmp(state, l->o.deposed_sqlstate) == 0)
        deposed(l, err->text, NULL);
}

static void store_refused(const phx_error_t *err, void *arg)
{
    phx_db_leader_fenced(arg, err);
}

/* 1: the lock is ours; 0: another's; -1: the database failed. */
static int try_lock(phx_db_leader_t *l, phx_error_t *err)
{
    const char *p[] = {l->o.lock_key};
    phx_db_result_t *res = NULL;
    if (phx_db_query(l->lock_db, lock_sql, 1, p, &res, err) < 0)
        return -1;
    int won = strcmp(phx_db_result_get(res, 0, 0) ?: "", "t") == 0;
    phx_db_result_destroy(res);
    return won;
}

/* "agents on A, HTTP on B" of addrs. */
static void describe(const phx_db_leader_t *l, char addrs[][ADDR_MAX], char *buf,
                     size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->o.naddrs && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s %s", i ? ", " : "",
                                l->o.addr_labels[i], *addrs[i] ? addrs[i] : "?");
}

/* Standby: who leads.  Logs a change. */
static void read_leader(phx_db_leader_t *l)
{
    phx_db_result_t *res = NULL;
    phx_error_t err;
    if (phx_db_query(l->lock_db, l->leader_sql, 0, NULL, &res, &err) < 0) {
        phx_log_warnx("could not read who leads: %s", err.text);
        return;
    }
    char now[PHX_DB_LEADER_ADDRS][ADDR_MAX];
    bool changed = false;
    for (int i = 0; i < l->o.naddrs; i++) {
        snprintf(now[i], ADDR_MAX, "%s", phx_db_result_get(res, 0, i) ?: "");
        changed |= strcmp(now[i], l->leader[i]) != 0;
        memcpy(l->leader[i], now[i], ADDR_MAX);
    }
    if (changed) {
        char text[4 * ADDR_MAX + 128];
        describe(l, now, text, sizeof(text));
        phx_log_notice("standing by: the leader (epoch %s) has %s",
                       phx_db_result_get(res, 0, l->o.naddrs) ?: "?", text);
    }
    phx_db_result_destroy(res);
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_db_leader_t *l = arg;
    phx_error_t err;
    /* unanswered for half the lease: the server (which ends the session
     * after a lease without pings) may have given the lock to a standby */
    if (phx_db_conn_ping(l->lock_db, l->o.lease / 2, &err) < 0)
        deposed(l, "the connection holding the leader lock failed", &err);
}

static struct timeval tv_of(double t)
{
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
    return tv;
}

/* The lease: started once leading began (loading the state may take
 * longer than the lease, and the loop does not run meanwhile). */
static int start_lease(phx_db_leader_t *l, phx_error_t *err)
{
    char ms[32];
    snprintf(ms, sizeof(ms), "%.0f", l->o.lease * 1000);
    const char *p[] = {ms};
    if (phx_db_query(l->lock_db, "SELECT set_config('idle_session_timeout', $1, false)",
                     1, p, NULL, err) < 0)
        return phx_error_prefix(err, "could not set the leader lease");
    struct timeval tv = tv_of(l->o.lease / 4);
    l->ping_ev = event_new(l->base, -1, EV_PERSIST, on_ping, l);
    if (!l->ping_ev || event_add(l->ping_ev, &tv) < 0)
        return phx_error_set(err, "could not set up the leader lease's timer");
    return 0;
}

int phx_db_leader_fenced_query(phx_db_leader_t *l, phx_db_conn_t *db, const char *sql,
                               int nparams, const char *const *params,
                               phx_db_result_t **res, phx_error_t *err)
{
    char epoch[24];
    snprintf(epoch, sizeof(epoch), "%" PRId64, l->epoch);
    const char *fp[] = {epoch};
    if (phx_db_query(db, "BEGIN", 0, NULL, NULL, err) < 0)
        return -1;
    if (phx_db_query(db, l->fence_sql, 1, fp, NULL, err) == 0 &&
        phx_db_query(db, sql, nparams, params, res, err) == 0) {
        if (phx_db_query(db, "COMMIT", 0, NULL, NULL, err) == 0)
            return 0;
        if (res) {
            phx_db_result_destroy(*res);
            *res = NULL;
        }
    } else {
        phx_error_t rerr;
        phx_db_query(db, "ROLLBACK", 0, NULL, NULL, &rerr);
    }
    phx_db_leader_fenced(l, err);
    return -1;
}

int phx_db_leader_fence_store(phx_db_leader_t *l, phx_db_store_t *store,
                              phx_error_t *err)
{
    char epoch[24];
    snprintf(epoch, sizeof(epoch), "%" PRId64, l->epoch);
    const char *p[] = {epoch};
    if (phx_db_store_set_fence(store, l->fence_sql, 1, p, err) < 0)
        return phx_error_prefix(err, "could not fence the store");
    phx_db_store_on_refused(store, l->o.deposed_sqlstate, store_refused, l);
    return 0;
}

void phx_db_leader_check(phx_db_leader_t *l, double now)
{
    if (!l || l->standby || l->epoch <= 0)
        return;
    double stalled = l->last_tick > 0 ? now - l->last_tick : 0;
    l->last_tick = now;
    if (stalled < l->o.lease / 2)
        return;
    phx_log_warnx("the loop did not run for %.1f s: checking that this process still "
                  "leads",
                  stalled);
    phx_db_result_t *res = NULL;
    phx_error_t err;
    if (phx_db_query(l->lock_db, l->epoch_sql, 0, NULL, &res, &err) < 0)
        deposed(l, "the connection holding the leader lock failed", &err);
    const char *e = phx_db_result_get(res, 0, 0);
    long long epoch = e ? strtoll(e, NULL, 10) : -1;
    phx_db_result_destroy(res);
    if (epoch != l->epoch) {
        char why[96];
        snprintf(why, sizeof(why), "the epoch is %lld, ours %lld", epoch,
                 (long long)l->epoch);
        deposed(l, why, NULL);
    }
}

static void on_lock_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_db_leader_t *l = arg;
    phx_error_t err;
    if (phx_db_conn_check(l->lock_db, &err) < 0)
        deposed(l, "the connection holding the leader lock failed", &err);
}

/* End the former leader's transactions that keep us from claiming. */
static void end_stuck(phx_db_leader_t *l)
{
    phx_db_result_t *res = NULL;
    phx_error_t err;
    const char *p[] = {l->o.table};
    if (phx_db_query(l->lock_db, stuck_sql, 1, p, &res, &err) < 0) {
        phx_log_warnx("could not end the former leader's open transactions (the "
                      "role needs to be the same, or a member of "
                      "pg_signal_backend): %s; waiting for them",
                      err.text);
        return;
    }
    for (int r = 0; r < phx_db_result_rows(res); r++)
        phx_log_notice(
            "ended the session %s (%s, %s) of a former leader: its transaction "
            "was open on the fence and kept this process from leading%s",
            phx_db_result_get(res, r, 0), phx_db_result_get(res, r, 2),
            phx_db_result_get(res, r, 1),
            strcmp(phx_db_result_get(res, r, 3), "t") ? " (not ended)" : "");
    phx_db_result_destroy(res);
}

/* Bump the epoch in one transaction that waits at most a quarter of the
 * lease for the row: the fence of a former leader's transaction still open
 * holds it FOR SHARE.  Such transactions are ended, then it tries again:
 * a stopped leader that lost its lock session keeps its store's sessions,
 * and waiting for them would leave no leader until it ran again or
 * PostgreSQL ended them. */
static int claim(phx_db_leader_t *l, const char *const *p, phx_db_result_t **res,
                 phx_error_t *err)
{
    double wait = l->o.lease / 4;
    char ms[32];
    snprintf(ms, sizeof(ms), "%.0f", wait < 0.1 ? 100 : wait > 2 ? 2000 : wait * 1000);
    const char *tp[] = {ms};
    for (;;) {
        if (phx_db_query(l->lock_db, "BEGIN", 0, NULL, NULL, err) < 0)
            return -1;
        if (phx_db_query(l->lock_db, "SELECT set_config('lock_timeout', $1, true)", 1,
                         tp, NULL, err) == 0 &&
            phx_db_query(l->lock_db, l->claim_sql, l->o.naddrs + 2, p, res, err) == 0) {
            if (phx_db_query(l->lock_db, "COMMIT", 0, NULL, NULL, err) == 0)
                return 0;
            phx_db_result_destroy(*res);
            *res = NULL;
            return -1;
        }
        phx_error_t rerr;
        char state[6];
        bool timeout = phx_db_error_sqlstate(err, state) &&
                       strcmp(state, SQLSTATE_LOCK_TIMEOUT) == 0;
        if (phx_db_query(l->lock_db, "ROLLBACK", 0, NULL, NULL, &rerr) < 0 || !timeout)
            return -1;
        phx_log_warnx("claiming the lead waited %s ms for a former leader's open "
                      "transaction",
                      ms);
        end_stuck(l);
    }
}

/* The lock is ours: claim the epoch, then start leading. */
static int lead(phx_db_leader_t *l, phx_error_t *err)
{
    char host[256] = "", pid[24];
    gethostname(host, sizeof(host) - 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    const char *p[PHX_DB_LEADER_ADDRS + 2];
    for (int i = 0; i < l->o.naddrs; i++)
        p[i] = l->o.addrs[i];
    p[l->o.naddrs] = host;
    p[l->o.naddrs + 1] = pid;
    phx_db_result_t *res = NULL;
    if (claim(l, p, &res, err) < 0)
        return phx_error_prefix(err, "could not claim the lead");
    const char *e = phx_db_result_get(res, 0, 0);
    l->epoch = e ? strtoll(e, NULL, 10) : 0;
    phx_db_result_destroy(res);
    if (l->epoch <= 0)
        return phx_error_set(err, "could not claim the lead: no %s row", l->o.table);
    l->standby = false;
    for (int i = 0; i < l->o.naddrs; i++)
        snprintf(l->leader[i], ADDR_MAX, "%s", l->o.addrs[i]);
    char text[4 * ADDR_MAX + 128];
    describe(l, l->leader, text, sizeof(text));
    phx_log_notice("elected leader with epoch %" PRId64 " (%s)", l->epoch, text);
    if (l->lock_ev)
        event_free(l->lock_ev);
    l->lock_ev = event_new(l->base, phx_db_conn_socket(l->lock_db),
                           EV_READ | EV_PERSIST, on_lock_readable, l);
    /* Before anything else the loop has to do: a leader that was stopped
     * learns first that the database ended its session. */
    if (!l->lock_ev || event_priority_set(l->lock_ev, 0) < 0 ||
        event_add(l->lock_ev, NULL) < 0)
        return phx_error_set(err, "could not watch the leader lock's connection");
    if (l->o.lead(l, l->o.arg, err) < 0)
        return -1;
    return start_lease(l, err);
}

static void on_standby_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_db_leader_t *l = arg;
    phx_error_t err;
    if (!l->lock_db && !(l->lock_db = phx_db_connect(l->o.dsn, &err))) {
        phx_log_warnx("standing by, cannot reach the database: %s", err.text);
        return;
    }
    int won = try_lock(l, &err);
    if (won < 0) {
        phx_log_warnx("standing by, could not try the leader lock: %s", err.text);
        phx_db_conn_close(l->lock_db); /* a new one next time */
        l->lock_db = NULL;
        return;
    }
    if (!won) {
        read_leader(l);
        return;
    }
    if (lead(l, &err) < 0)
        l->o.failed(&err, l->o.arg);
}

int phx_db_leader_elect(phx_db_leader_t *l, phx_error_t *err)
{
    if (!(l->lock_db = phx_db_connect(l->o.dsn, err)))
        return phx_error_prefix(err, "could not connect for the leader lock");
    int won = try_lock(l, err);
    if (won < 0)
        return phx_error_prefix(err, "could not try the leader lock");
    if (won)
        return lead(l, err);
    l->standby = true;
    read_leader(l);
    l->lock_ev = event_new(l->base, -1, EV_PERSIST, on_standby_poll, l);
    struct timeval tv = tv_of(l->o.standby_poll);
    if (!l->lock_ev || event_add(l->lock_ev, &tv) < 0)
        return phx_error_set(err, "could not set up the standby's timer");
    return 0;
}

static char *sql_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sql_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, copy);
    va_end(copy);
    va_end(ap);
    return s;
}

/* The row's statements; table, columns and function are the daemon's
 * constants, never input. */
static int make_sql(phx_db_leader_t *l)
{
    char cols[512] = "", sets[512] = "";
    size_t co = 0, so = 0;
    for (int i = 0; i < l->o.naddrs; i++) {
        co += (size_t)snprintf(cols + co, sizeof(cols) - co, "coalesce(%s, ''), ",
                               l->o.addr_cols[i]);
        so += (size_t)snprintf(sets + so, sizeof(sets) - so, "%s = $%d, ",
                               l->o.addr_cols[i], i + 1);
        if (co >= sizeof(cols) || so >= sizeof(sets))
            return -1;
    }
    int n = l->o.naddrs;
    l->leader_sql = sql_printf("SELECT %sepoch FROM %s WHERE id = 1", cols, l->o.table);
    l->claim_sql = sql_printf("UPDATE %s SET epoch = epoch + 1, %shost = $%d, "
                              "pid = $%d::integer, elected_at = now() WHERE id = 1 "
                              "RETURNING epoch",
                              l->o.table, sets, n + 1, n + 2);
    l->fence_sql = sql_printf("SELECT %s($1::bigint)", l->o.fence_fn);
    l->epoch_sql = sql_printf("SELECT epoch FROM %s WHERE id = 1", l->o.table);
    return l->leader_sql && l->claim_sql && l->fence_sql && l->epoch_sql ? 0 : -1;
}

phx_db_leader_t *phx_db_leader_create(struct event_base *base,
                                      const phx_db_leader_opts_t *opts,
                                      phx_error_t *err)
{
    if (!base || !opts || !opts->dsn || !opts->lock_key || !opts->table ||
        !opts->fence_fn || !opts->deposed_sqlstate || opts->naddrs < 1 ||
        opts->naddrs > PHX_DB_LEADER_ADDRS || !opts->lead || !opts->deposed ||
        !opts->failed || !(opts->standby_poll > 0) || !(opts->lease > 0)) {
        errno = EINVAL;
        phx_error_set(err, "invalid leader election options");
        return NULL;
    }
    phx_db_leader_t *l = calloc(1, sizeof(*l));
    if (!l)
        goto nomem;
    l->base = base;
    l->o = (phx_db_leader_opts_t){.naddrs = opts->naddrs,
                                  .standby_poll = opts->standby_poll,
                                  .lease = opts->lease,
                                  .lead = opts->lead,
                                  .deposed = opts->deposed,
                                  .failed = opts->failed,
                                  .arg = opts->arg};
    /* copies of the strings (kept in l->o) */
    if (!(l->o.dsn = strdup(opts->dsn)) || !(l->o.lock_key = strdup(opts->lock_key)) ||
        !(l->o.table = strdup(opts->table)) ||
        !(l->o.fence_fn = strdup(opts->fence_fn)) ||
        !(l->o.deposed_sqlstate = strdup(opts->deposed_sqlstate)))
        goto nomem;
    for (int i = 0; i < l->o.naddrs; i++)
        if (!(l->o.addr_cols[i] = strdup(opts->addr_cols[i] ?: "")) ||
            !(l->o.addr_labels[i] = strdup(opts->addr_labels[i] ?: "")) ||
            !(l->o.addrs[i] = strdup(opts->addrs[i] ?: "")))
            goto nomem;
    if (make_sql(l) < 0)
        goto nomem;
    return l;
nomem:
    phx_db_leader_destroy(l);
    errno = ENOMEM;
    phx_error_set(err, "out of memory");
    return NULL;
}

void phx_db_leader_destroy(phx_db_leader_t *l)
{
    if (!l)
        return;
    int saved = errno;
    if (l->lock_ev)
        event_free(l->lock_ev);
    if (l->ping_ev)
        event_free(l->ping_ev);
    phx_db_conn_close(l->lock_db); /* ends the session: the lock goes */
    free((char *)l->o.dsn);
    free((char *)l->o.lock_key);
    free((char *)l->o.table);
    free((char *)l->o.fence_fn);
    free((char *)l->o.deposed_sqlstate);
    for (int i = 0; i < l->o.naddrs; i++) {
        free((char *)l->o.addr_cols[i]);
        free((char *)l->o.addr_labels[i]);
        free((char *)l->o.addrs[i]);
    }
    free(l->leader_sql);
    free(l->claim_sql);
    free(l->fence_sql);
    free(l->epoch_sql);
    free(l);
    errno = saved;
}

bool phx_db_leader_standby(const phx_db_leader_t *l)
{
    return l && l->standby;
}

int64_t phx_db_leader_epoch(const phx_db_leader_t *l)
{
    return l ? l->epoch : 0;
}

const char *phx_db_leader_addr(const phx_db_leader_t *l, int i)
{
    return l && i >= 0 && i < l->o.naddrs ? l->leader[i] : "";
}
