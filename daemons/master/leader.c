/* Leader election (doc/admin.md, "High availability"; the table and the
 * fence are db/migrations/009_master_leader.sql, the election db/leader.c,
 * shared with phx-batchd).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/master/master.h"
#include "db/leader.h"
#include "lib/http.h"
#include "lib/log.h"

#define LEADER_LOCK_KEY  "31640063815541092" /* "phxlead" in ASCII */
#define SQLSTATE_DEPOSED "PXL01"             /* phx_master_fence's */

static phx_db_leader_t *the_leader; /* phx_master_fenced has no master */

static void deposed(const char *why, void *arg)
{
    (void)arg;
    /* Nothing more may go out as the leader's: no teardown, no flush. */
    phx_log_errx("no longer the leader: %s; exiting at once (started again, a master "
                 "stands by while another leads)",
                 why);
    _exit(1);
}

void phx_master_fenced(const phx_error_t *err)
{
    phx_db_leader_fenced(the_leader, err);
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

int phx_master_fenced_query(phx_master_t *m, phx_db_conn_t *db, const char *sql,
                            int nparams, const char *const *params,
                            phx_db_result_t **res, phx_error_t *err)
{
    return phx_db_leader_fenced_query(m->leader, db, sql, nparams, params, res, err);
}

void phx_master_leader_check(phx_master_t *m, double now)
{
    phx_db_leader_check(m->leader, now);
}

static int lead(phx_db_leader_t *l, void *arg, phx_error_t *err)
{
    phx_master_t *m = arg;
    m->standby = false;
    m->epoch = phx_db_leader_epoch(l);
    return phx_master_start_leading(m, err);
}

static void lead_failed(const phx_error_t *err, void *arg)
{
    phx_master_t *m = arg;
    phx_log_errx("%s", err->text);
    m->failed = true;
    event_base_loopexit(m->base, NULL);
}

int phx_master_elect(phx_master_t *m, phx_error_t *err)
{
    phx_db_leader_opts_t o = {
        .dsn = phx_conf_str(m->conf, "master.dsn"),
        .lock_key = LEADER_LOCK_KEY,
        .table = "master_leader",
        .fence_fn = "phx_master_fence",
        .deposed_sqlstate = SQLSTATE_DEPOSED,
        .naddrs = 2,
        .addr_cols = {"agent_address", "http_address"},
        .addr_labels = {"agents on", "HTTP on"},
        .addrs = {advertised(m, "agent"), advertised(m, "http")},
        .standby_poll = phx_conf_double(m->conf, "master.standby_poll"),
        .lease = phx_conf_double(m->conf, "master.leader_lease"),
        .lead = lead,
        .deposed = deposed,
        .failed = lead_failed,
        .arg = m,
    };
    if (!(m->leader = phx_db_leader_create(m->base, &o, err)))
        return -1;
    the_leader = m->leader;
    m->standby = true; /* until lead runs */
    if (phx_db_leader_elect(m->leader, err) < 0)
        return -1;
    m->standby = phx_db_leader_standby(m->leader);
    return 0;
}

void phx_master_leader_stop(phx_master_t *m)
{
    phx_db_leader_destroy(m->leader); /* ends the session: the lock goes */
    m->leader = NULL;
    the_leader = NULL;
}

int phx_master_fence_store(phx_master_t *m, phx_error_t *err)
{
    return phx_db_leader_fence_store(m->leader, m->store, err);
}

/* A standby's answer: the leader for this kind of client, and why. */
json_t *phx_master_standby_refusal(const phx_master_t *m, bool http)
{
    const char *agent = phx_db_leader_addr(m->leader, 0);
    const char *web = phx_db_leader_addr(m->leader, 1);
    const char *leader = http ? web : agent;
    char msg[600];
    if (*leader)
        snprintf(msg, sizeof(msg),
                 "standby: this master is not the leader; the leader is at %s", leader);
    else
        snprintf(msg, sizeof(msg),
                 "standby: this master is not the leader; no leader "
                 "is known yet");
    return json_pack("{s:s, s:b, s:s, s:s, s:s}", http ? "error" : "message", msg,
                     "standby", 1, "leader", leader, "leader_agent", agent,
                     "leader_http", web);
}

void phx_master_standby_http(phx_master_t *m, struct evhttp_request *req)
{
    phx_http_reply_json(req, 503, phx_master_standby_refusal(m, true));
}
