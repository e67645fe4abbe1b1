/* Leader election (doc/admin.md, "High availability"; the table and the
 * fence are db/migrations/009_master_leader.sql).
 *
 * Every master holds a database connection of its own for its life and
 * takes a session advisory lock on it: the master that has the lock leads.
 * Won: bump master_leader's epoch, record our addresses there, and fence
 * every write transaction of the store with the epoch; then start as a
 * lone master always did (agents re-register, frameworks re-subscribe).
 * Lost: stand by -- the listeners are up but answer every agent and HTTP
 * client with a refusal naming the leader -- and try the lock again every
 * master.standby_poll seconds.
 *
 * A leader whose lock connection goes away, or whose write fails on the
 * fence (another master leads with a newer epoch), exits at once: it must
 * not act as the leader any more; its service manager starts it again,
 * as a standby if another master leads by then.
 *
 * A leader that hangs without dying (stopped, or its loop stuck) must not
 * keep the lock for ever: its lock session has idle_session_timeout set
 * to master.leader_lease, and the loop pings it four times as often.  A
 * leader silent for the lease loses its session, so its lock, and a
 * standby takes over; when the old one runs again its writes are fenced
 * and it sees its lock connection gone, and exits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/master/master.h"
#include "lib/http.h"
#include "lib/log.h"

#define LEADER_LOCK_KEY  "31640063815541092" /* "phxlead" in ASCII */
#define SQLSTATE_DEPOSED "PXL01"             /* phx_master_fence's */

static const char lock_sql[] = "SELECT pg_try_advisory_lock($1::bigint)";
static const char leader_sql[] =
    "SELECT coalesce(agent_address, ''), coalesce(http_address, ''), epoch "
    "FROM master_leader WHERE id = 1";
static const char claim_sql[] =
    "UPDATE master_leader SET epoch = epoch + 1, agent_address = $1, "
    "http_address = $2, host = $3, pid = $4::integer, elected_at = now() "
    "WHERE id = 1 RETURNING epoch";
const char phx_master_fence_sql[] = "SELECT phx_master_fence($1::bigint)";
#define SQLSTATE_LOCK_TIMEOUT "55P03"
/* The transactions that ran the fence and are still open: the fence reads
 * master_leader FOR SHARE, which holds RowShareLock on the table until the
 * transaction ends (a plain read takes AccessShareLock).  Ours has the
 * leader lock, so they are a former leader's, stopped or cut off in the
 * middle of a write; ended, they roll back. */
static const char stuck_sql[] =
    "SELECT l.pid, coalesce(a.state, '?'), coalesce(a.application_name, '?'), "
    "pg_terminate_backend(l.pid) FROM pg_locks l "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'relation' AND l.relation = 'master_leader'::regclass "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.mode = 'RowShareLock' AND l.granted AND l.pid <> pg_backend_pid()";

static void deposed(const char *why)
{
    /* Nothing more may go out as the leader's: no teardown, no flush. */
    phx_log_errx("no longer the leader: %s; exiting at once (started again, a master "
                 "stands by while another leads)",
                 why);
    _exit(1);
}

void phx_master_fenced(const phx_error_t *err)
{
    char state[6];
    if (err && phx_db_error_sqlstate(err, state) &&
        strcmp(state, SQLSTATE_DEPOSED) == 0)
        deposed(err->text);
}

/* Our address for kind ("agent", "http"): master.advertise_KIND, else the
 * listen address. */
static const char *advertised(const phx_master_t *m, const char *kind)
{
    char key[64];
    snprintf(key, sizeof(key), "master.advertise_%s", kind);
    const char *a = phx_conf_str(m->conf, key);
    if (a && *a)
        return a;
    snprintf(key, sizeof(key), "master.%s_listen", kind);
    return phx_conf_str(m->conf, key);
}

/* 1: the lock is ours; 0: another master's; -1: the database failed. */
static int try_lock(phx_master_t *m, phx_error_t *err)
{
    const char *p[] = {LEADER_LOCK_KEY};
    phx_db_result_t *res = NULL;
    if (phx_db_query(m->lock_db, lock_sql, 1, p, &res, err) < 0)
        return -1;
    int won = strcmp(phx_db_result_get(res, 0, 0) ?: "", "t") == 0;
    phx_db_result_destroy(res);
    return won;
}

/* Standby: who leads (from master_leader).  Logs a change. */
static void read_leader(phx_master_t *m)
{
    phx_db_result_t *res = NULL;
    phx_error_t err;
    if (phx_db_query(m->lock_db, leader_sql, 0, NULL, &res, &err) < 0) {
        phx_log_warnx("could not read who leads: %s", err.text);
        return;
    }
    const char *agent = phx_db_result_get(res, 0, 0) ?: "";
    const char *http = phx_db_result_get(res, 0, 1) ?: "";
    if (strcmp(agent, m->leader_agent) != 0 || strcmp(http, m->leader_http) != 0)
        phx_log_notice(
            "standing by: the leader (epoch %s) has agents on %s, HTTP on %s",
            phx_db_result_get(res, 0, 2) ?: "?", *agent ? agent : "?",
            *http ? http : "?");
    snprintf(m->leader_agent, sizeof(m->leader_agent), "%s", agent);
    snprintf(m->leader_http, sizeof(m->leader_http), "%s", http);
    phx_db_result_destroy(res);
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_t *m = arg;
    phx_error_t err;
    /* unanswered for half the lease: the server (which ends the session
     * after a lease without pings) may have given the lock to a standby */
    if (phx_db_conn_ping(m->lock_db, m->leader_lease / 2, &err) < 0) {
        char why[PHX_ERROR_TEXT_MAX + 64];
        snprintf(why, sizeof(why), "the connection holding the leader lock failed: %s",
                 err.text);
        deposed(why);
    }
}

/* The lease: started once leading began (loading the state may take
 * longer than the lease, and the loop does not run meanwhile). */
static int start_lease(phx_master_t *m, phx_error_t *err)
{
    char ms[32];
    snprintf(ms, sizeof(ms), "%.0f", m->leader_lease * 1000);
    const char *p[] = {ms};
    if (phx_db_query(m->lock_db, "SELECT set_config('idle_session_timeout', $1, false)",
                     1, p, NULL, err) < 0)
        return phx_error_prefix(err, "could not set the leader lease");
    double t = m->leader_lease / 4;
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
    m->ping_ev = event_new(m->base, -1, EV_PERSIST, on_ping, m);
    if (!m->ping_ev || event_add(m->ping_ev, &tv) < 0)
        return phx_error_set(err, "could not set up the leader lease's timer");
    return 0;
}

int phx_master_fenced_query(phx_master_t *m, phx_db_conn_t *db, const char *sql,
                            int nparams, const char *const *params,
                            phx_db_result_t **res, phx_error_t *err)
{
    char epoch[24];
    snprintf(epoch, sizeof(epoch), "%" PRId64, m->epoch);
    const char *fp[] = {epoch};
    if (phx_db_query(db, "BEGIN", 0, NULL, NULL, err) < 0)
        return -1;
    if (phx_db_query(db, phx_master_fence_sql, 1, fp, NULL, err) == 0 &&
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
    phx_master_fenced(err);
    return -1;
}

void phx_master_leader_check(phx_master_t *m, double now)
{
    double stalled = m->last_tick > 0 ? now - m->last_tick : 0;
    m->last_tick = now;
    if (stalled < m->leader_lease / 2)
        return;
    phx_log_warnx("the loop did not run for %.1f s: checking that this master still "
                  "leads",
                  stalled);
    phx_db_result_t *res = NULL;
    phx_error_t err;
    char why[PHX_ERROR_TEXT_MAX + 64];
    if (phx_db_query(m->lock_db, "SELECT epoch FROM master_leader WHERE id = 1", 0,
                     NULL, &res, &err) < 0) {
        snprintf(why, sizeof(why), "the connection holding the leader lock failed: %s",
                 err.text);
        deposed(why);
    }
    const char *e = phx_db_result_get(res, 0, 0);
    long long epoch = e ? strtoll(e, NULL, 10) : -1;
    phx_db_result_destroy(res);
    if (epoch != m->epoch) {
        snprintf(why, sizeof(why), "the epoch is %lld, ours %lld", epoch,
                 (long long)m->epoch);
        deposed(why);
    }
}

static void on_lock_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_t *m = arg;
    phx_error_t err;
    if (phx_db_conn_check(m->lock_db, &err) < 0) {
        char why[PHX_ERROR_TEXT_MAX + 64];
        snprintf(why, sizeof(why), "the connection holding the leader lock failed: %s",
                 err.text);
        deposed(why);
    }
}

/* End the former leader's transactions that keep us from claiming. */
static void end_stuck(phx_master_t *m)
{
    phx_db_result_t *res = NULL;
    phx_error_t err;
    if (phx_db_query(m->lock_db, stuck_sql, 0, NULL, &res, &err) < 0) {
        phx_log_warnx("could not end the former leader's open transactions (the "
                      "masters' role needs to be the same, or a member of "
                      "pg_signal_backend): %s; waiting for them",
                      err.text);
        return;
    }
    for (int r = 0; r < phx_db_result_rows(res); r++)
        phx_log_notice(
            "ended the session %s (%s, %s) of a former leader: its transaction "
            "was open on the fence and kept this master from leading%s",
            phx_db_result_get(res, r, 0), phx_db_result_get(res, r, 2),
            phx_db_result_get(res, r, 1),
            strcmp(phx_db_result_get(res, r, 3), "t") ? " (not ended)" : "");
    phx_db_result_destroy(res);
}

/* Bump the epoch in one transaction that waits at most a quarter of the
 * lease for the row: the fence of a former leader's transaction still open
 * holds it FOR SHARE.  Such transactions are ended, then it tries again:
 * a stopped leader that lost its lock session keeps its store's sessions,
 * and waiting for them would leave the cluster without a leader until it
 * ran again or PostgreSQL ended them. */
static int claim(phx_master_t *m, const char *const *p, phx_db_result_t **res,
                 phx_error_t *err)
{
    double wait = m->leader_lease / 4;
    char ms[32];
    snprintf(ms, sizeof(ms), "%.0f", wait < 0.1 ? 100 : wait > 2 ? 2000 : wait * 1000);
    const char *tp[] = {ms};
    for (;;) {
        if (phx_db_query(m->lock_db, "BEGIN", 0, NULL, NULL, err) < 0)
            return -1;
        if (phx_db_query(m->lock_db, "SELECT set_config('lock_timeout', $1, true)", 1,
                         tp, NULL, err) == 0 &&
            phx_db_query(m->lock_db, claim_sql, 4, p, res, err) == 0) {
            if (phx_db_query(m->lock_db, "COMMIT", 0, NULL, NULL, err) == 0)
                return 0;
            phx_db_result_destroy(*res);
            *res = NULL;
            return -1;
        }
        phx_error_t rerr;
        char state[6];
        bool timeout = phx_db_error_sqlstate(err, state) &&
                       strcmp(state, SQLSTATE_LOCK_TIMEOUT) == 0;
        if (phx_db_query(m->lock_db, "ROLLBACK", 0, NULL, NULL, &rerr) < 0 || !timeout)
            return -1;
        phx_log_warnx("claiming the lead waited %s ms for a former leader's open "
                      "transaction",
                      ms);
        end_stuck(m);
    }
}

/* The lock is ours: claim the epoch, then start leading. */
static int lead(phx_master_t *m, phx_error_t *err)
{
    char host[256] = "", pid[24];
    gethostname(host, sizeof(host) - 1);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    const char *p[] = {advertised(m, "agent"), advertised(m, "http"), host, pid};
    phx_db_result_t *res = NULL;
    if (claim(m, p, &res, err) < 0)
        return phx_error_prefix(err, "could not claim the lead");
    const char *e = phx_db_result_get(res, 0, 0);
    m->epoch = e ? strtoll(e, NULL, 10) : 0;
    phx_db_result_destroy(res);
    if (m->epoch <= 0)
        return phx_error_set(err, "could not claim the lead: no master_leader row");
    m->standby = false;
    snprintf(m->leader_agent, sizeof(m->leader_agent), "%s", p[0]);
    snprintf(m->leader_http, sizeof(m->leader_http), "%s", p[1]);
    phx_log_notice("elected leader with epoch %" PRId64 " (agents on %s, HTTP on %s)",
                   m->epoch, p[0], p[1]);
    if (m->lock_ev)
        event_free(m->lock_ev);
    m->lock_ev = event_new(m->base, phx_db_conn_socket(m->lock_db),
                           EV_READ | EV_PERSIST, on_lock_readable, m);
    /* Before anything else the loop has to do: a leader that was stopped
     * learns first that the database ended its session. */
    if (!m->lock_ev || event_priority_set(m->lock_ev, 0) < 0 ||
        event_add(m->lock_ev, NULL) < 0)
        return phx_error_set(err, "could not watch the leader lock's connection");
    if (phx_master_start_leading(m, err) < 0)
        return -1;
    return start_lease(m, err);
}

static void on_standby_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_t *m = arg;
    phx_error_t err;
    if (!m->lock_db &&
        !(m->lock_db = phx_db_connect(phx_conf_str(m->conf, "master.dsn"), &err))) {
        phx_log_warnx("standing by, cannot reach the database: %s", err.text);
        return;
    }
    int won = try_lock(m, &err);
    if (won < 0) {
        phx_log_warnx("standing by, could not try the leader lock: %s", err.text);
        phx_db_conn_close(m->lock_db); /* a new one next time */
        m->lock_db = NULL;
        return;
    }
    if (!won) {
        read_leader(m);
        return;
    }
    if (lead(m, &err) < 0) {
        phx_log_errx("%s", err.text);
        m->failed = true;
        event_base_loopexit(m->base, NULL);
    }
}

int phx_master_elect(phx_master_t *m, phx_error_t *err)
{
    m->standby_poll = phx_conf_double(m->conf, "master.standby_poll");
    m->leader_lease = phx_conf_double(m->conf, "master.leader_lease");
    if (!(m->lock_db = phx_db_connect(phx_conf_str(m->conf, "master.dsn"), err)))
        return phx_error_prefix(err, "could not connect for the leader lock");
    int won = try_lock(m, err);
    if (won < 0)
        return phx_error_prefix(err, "could not try the leader lock");
    if (won)
        return lead(m, err);
    m->standby = true;
    read_leader(m);
    m->lock_ev = event_new(m->base, -1, EV_PERSIST, on_standby_poll, m);
    double t = m->standby_poll;
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
    if (!m->lock_ev || event_add(m->lock_ev, &tv) < 0)
        return phx_error_set(err, "could not set up the standby's timer");
    return 0;
}

void phx_master_leader_stop(phx_master_t *m)
{
    if (m->lock_ev)
        event_free(m->lock_ev);
    if (m->ping_ev)
        event_free(m->ping_ev);
    m->lock_ev = m->ping_ev = NULL;
    phx_db_conn_close(m->lock_db); /* ends the session: the lock goes */
    m->lock_db = NULL;
}

/* A standby's answer: the leader for this kind of client, and why. */
json_t *phx_master_standby_refusal(const phx_master_t *m, bool http)
{
    const char *leader = http ? m->leader_http : m->leader_agent;
    char msg[600];
    if (*leader)
        snprintf(msg, sizeof(msg),
                 "standby: this master is not the leader; the leader is at %s", leader);
    else
        snprintf(msg, sizeof(msg),
                 "standby: this master is not the leader; no leader "
                 "is known yet");
    return json_pack("{s:s, s:b, s:s, s:s, s:s}", http ? "error" : "message", msg,
                     "standby", 1, "leader", leader, "leader_agent", m->leader_agent,
                     "leader_http", m->leader_http);
}

void phx_master_standby_http(phx_master_t *m, struct evhttp_request *req)
{
    phx_http_reply_json(req, 503, phx_master_standby_refusal(m, true));
}
