/* phx-master: the cluster's resource manager.
 *
 * main() is an init ladder mirrored by a teardown ladder: configuration,
 * logging, database (migrations, agents), munge, the event loop, the agent
 * listener, HTTP, timers and signals. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "daemons/master/step.h"
#include "db/db.h"
#include "db/migrate.h"
#include "lib/daemon.h"
#include "lib/http_limit.h"
#include "lib/log.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: phx-master [options]\n"
        "  -c, --config FILE     configuration file (libconfig; see phalanx.conf(5))\n"
        "  -s, --set KEY=VALUE   override one setting (repeatable)\n"
        "      --check-config    check the configuration, print it and exit\n"
        "      --init-db         apply database migrations and exit\n"
        "  -v, --verbose         log at debug level\n"
        "  -h, --help            this text\n");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_t *m = arg;
    double now = phx_master_now();
    phx_master_conns_check(m, now);
    if (m->standby)
        return;
    phx_master_leader_check(m, now); /* after a stall: still the leader? */
    phx_master_agents_check(m, now);
    phx_offers_expire(m, now);
    if (now - m->last_heartbeat >= m->framework_heartbeat) {
        m->last_heartbeat = now;
        phx_stream_heartbeat_all(m);
        phx_sched_resend_updates(m); /* until acknowledged */
    }
    if (phx_alloc_pending(m->alloc, phx_master_clock()))
        phx_sched_dirty(m);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    phx_master_t *m = arg;
    phx_log_notice("caught signal %d, shutting down", (int)sig);
    event_base_loopexit(m->base, NULL);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    phx_master_reload(arg);
}

static int migrate(const phx_conf_t *conf, phx_error_t *err)
{
    char dir[4096];
    const char *d = phx_conf_str(conf, "master.migrations_dir");
    if (!d) {
        if (phx_db_migrations_dir(dir, sizeof(dir), err) < 0)
            return -1;
        d = dir;
    }
    phx_db_conn_t *db = phx_db_connect(phx_conf_str(conf, "master.dsn"), err);
    if (!db)
        return -1;
    int rc = phx_db_migrate(db, d, err);
    phx_db_conn_close(db);
    return rc;
}

static int start(phx_master_t *m, phx_error_t *err)
{
    const phx_conf_t *conf = m->conf;
    m->heartbeat_interval = phx_conf_double(conf, "master.heartbeat_interval");
    m->heartbeat_missed = (int)phx_conf_int(conf, "master.heartbeat_missed");
    m->max_frame = (size_t)phx_conf_int(conf, "master.max_frame");
    m->offer_timeout = phx_conf_double(conf, "master.offer_timeout");
    m->framework_heartbeat = phx_conf_double(conf, "master.framework_heartbeat");
    m->allow_unauthenticated = phx_conf_bool(conf, "master.allow_unauthenticated");
    m->last_heartbeat = phx_master_now();
    snprintf(m->master_id, sizeof(m->master_id), "%llx",
             (unsigned long long)phx_master_clock() * 1000ULL);
    LIST_INIT(&m->conns);
    if (!(m->frameworks = phx_hmap_create()) || !(m->offers = phx_hmap_create()) ||
        !(m->agents_by_id = phx_hmap_create()) || !(m->alloc = phx_alloc_create()))
        return phx_error_set(err, "out of memory");
    if (phx_daemon_uid_list(conf, "master.open_users", &m->open_uids, &m->nopen_uids,
                            err) < 0)
        return -1;
    if (phx_daemon_uid_list(conf, "master.agent_users", &m->agent_uids, &m->nagent_uids,
                            err) < 0 ||
        phx_daemon_uid_list(conf, "master.operators", &m->operator_uids,
                            &m->noperator_uids, err) < 0)
        return -1;
    if (m->nagent_uids == 0)
        return phx_error_set(err,
                             "master.agent_users is empty: no agent could register "
                             "(list the uid phx-agent runs as, usually root)");
    if (phx_master_http_read_init(m, err) < 0)
        return -1;
    if (migrate(conf, err) < 0)
        return phx_error_prefix(err, "could not migrate the database");
    if (!(m->munge = phx_munge_create(phx_conf_str(conf, "master.munge_socket"), err)))
        return -1;
    /* Two priorities: the leader lock's connection (leader.c) and the tick
     * go before everything else, the default (1). */
    /* epoll's changelist: an event added and removed again within one loop
     * iteration (a bufferevent's write event, for each frame or reply
     * queued and written out) costs no epoll_ctl; 14 a job were made
     * without it.  The master dup()s no socket (libevent's caveat). */
    struct event_config *cfg = event_config_new();
    if (cfg)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    m->base = cfg ? event_base_new_with_config(cfg) : NULL;
    if (cfg)
        event_config_free(cfg);
    if (!m->base || event_base_priority_init(m->base, 2) < 0)
        return phx_error_set(err, "could not create the event loop");
    /* Leader: loads and recovers here; standby: when it wins the lock. */
    if (phx_master_elect(m, err) < 0)
        return -1;
    if (phx_master_conn_listen(m, phx_conf_str(conf, "master.agent_listen"), err) < 0 ||
        phx_master_http_start(m, phx_conf_str(conf, "master.http_listen"), err) < 0)
        return -1;
    m->tick = event_new(m->base, -1, EV_PERSIST, on_tick, m);
    m->sigint = evsignal_new(m->base, SIGINT, on_signal, m);
    m->sigterm = evsignal_new(m->base, SIGTERM, on_signal, m);
    m->sighup = evsignal_new(m->base, SIGHUP, on_sighup, m);
    double t = m->heartbeat_interval / 2 < 0.5 ? m->heartbeat_interval / 2 : 0.5;
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
    /* The tick first (priority 0), as the leader lock's watch: after a
     * stall its leader check runs before any other timer acts. */
    if (!m->tick || !m->sigint || !m->sigterm || !m->sighup ||
        event_priority_set(m->tick, 0) < 0 || event_add(m->tick, &tv) < 0 ||
        event_add(m->sigint, NULL) < 0 || event_add(m->sigterm, NULL) < 0 ||
        event_add(m->sighup, NULL) < 0)
        return phx_error_set(err, "could not set up timers and signals");
    return 0;
}

/* Elected (leader.c): the database's state, and writes fenced with our
 * epoch.  Blocking, before the loop runs or from the standby's timer. */
int phx_master_start_leading(phx_master_t *m, phx_error_t *err)
{
    const char *dsn = phx_conf_str(m->conf, "master.dsn");
    if (phx_master_agents_load(m, dsn, err) < 0)
        return phx_error_prefix(err, "could not load agents");
    if (phx_master_recover(m, dsn, err) < 0)
        return phx_error_prefix(err, "could not recover frameworks and tasks");
    if (!(m->store = phx_db_store_create(m->base, dsn, NULL, err)))
        return -1;
    if (phx_master_fence_store(m, err) < 0)
        return -1;
    phx_master_recover_start_timers(m);
    phx_master_policy_audit(m);
    return 0;
}

static void stop(phx_master_t *m)
{
    if (m->tick)
        event_free(m->tick);
    if (m->sigint)
        event_free(m->sigint);
    if (m->sigterm)
        event_free(m->sigterm);
    if (m->sighup)
        event_free(m->sighup);
    if (m->http) {
        /* End open event streams and SIGNAL calls still waiting (503), and
         * let the loop write their last chunk and free them: evhttp_free
         * leaks a reply still in progress. */
        phx_sigwaits_destroy(m);
        if (m->frameworks) {
            size_t pos = 0;
            void *v;
            while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
                phx_fw_t *fw = v;
                phx_stream_close(fw->stream);
                fw->stream = NULL;
            }
            for (int i = 0; i < 3; i++)
                event_base_loop(m->base, EVLOOP_NONBLOCK);
        }
        evhttp_free(m->http);
    }
    phx_http_limit_destroy(m->http_limit); /* after evhttp_free: counts its closes */
    /* The store delivers its last callbacks, which may touch connections,
     * frameworks and tasks. */
    phx_db_store_destroy(m->store);
    phx_master_leader_stop(m); /* after the last write: the lock goes */
    phx_step_acct_clear();     /* step records that were waiting for a retry */
    phx_fws_destroy(m);
    if (m->offers) {
        size_t pos = 0;
        void *v;
        while (phx_hmap_next(m->offers, &pos, NULL, &v))
            phx_offer_free(v);
        phx_hmap_destroy(m->offers);
    }
    if (m->alloc_ev)
        event_free(m->alloc_ev);
    /* The allocator releases holds into the agents' trackers: before them. */
    phx_alloc_destroy(m->alloc);
    phx_master_conns_destroy(m);
    phx_master_agents_destroy(m);
    if (m->base)
        event_base_free(m->base);
    phx_munge_destroy(m->munge);
    phx_master_http_read_clear(m);
    free(m->agent_uids);
    free(m->open_uids);
    free(m->operator_uids);
    phx_conf_destroy(m->conf);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 'C'},
        {"init-db", no_argument, NULL, 'I'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = getenv("PHX_CONFIG");
    char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    int nsets = 0, check = 0, init_db = 0, verbose = 0, c;
    while ((c = getopt_long(argc, argv, "c:s:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'C': check = 1; break;
        case 'I': init_db = 1; break;
        case 'v': verbose = 1; break;
        case 'h':
            usage(stdout);
            free(sets);
            return 0;
        default:
            usage(stderr);
            free(sets);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "phx-master: unexpected argument \"%s\"\n", argv[optind]);
        free(sets);
        return 2;
    }
    phx_log_init("phx-master", PHX_LOG_STDERR, LOG_INFO);
    phx_master_t m = {0};
    phx_error_t err;
    m.conf = phx_daemon_conf("phx-master", phx_master_schema, file, sets, nsets,
                             "master.log_level", verbose);
    if (!m.conf) {
        free(sets);
        return 1;
    }
    if (check || init_db) {
        int rc = 0;
        if (check) {
            phx_daemon_check_config(m.conf);
        } else if ((rc = migrate(m.conf, &err)) < 0) {
            phx_log_errx("could not migrate the database: %s", err.text);
        } else {
            phx_log_notice("database schema is current");
        }
        phx_conf_destroy(m.conf);
        free(sets);
        return rc < 0 ? 1 : 0;
    }
    /* kept for reloading (SIGHUP) */
    m.conf_file = file;
    m.conf_sets = sets;
    m.conf_nsets = nsets;
    m.verbose = verbose;
    signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    if (start(&m, &err) < 0) {
        phx_log_errx("%s", err.text);
        rc = 1;
    } else {
        phx_log_notice("phx-master %s: agents on %s, HTTP on %s%s", PHX_VERSION,
                       phx_conf_str(m.conf, "master.agent_listen"),
                       phx_conf_str(m.conf, "master.http_listen"),
                       m.standby ? " (standing by)" : "");
        if (event_base_dispatch(m.base) < 0) {
            phx_log_errx("event loop failed");
            rc = 1;
        }
        if (m.failed)
            rc = 1;
    }
    stop(&m);
    free(sets);
    return rc;
}
