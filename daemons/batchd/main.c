/* phx-batchd: the batch framework daemon.
 *
 * main() is an init ladder mirrored by a teardown ladder: configuration,
 * logging, munge, the event loop, the database (queue and nodes loaded
 * synchronously once, then the asynchronous store), the user HTTP API, the
 * framework client (resubscribing with the framework id the master keeps),
 * timers and signals. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/timefmt.h"
#include "db/db.h"
#include "lib/http.h"
#include "lib/http_limit.h"
#include "lib/daemon.h"
#include "lib/log.h"

const phx_conf_key_t batchd_schema[] = {
    {"batchd.http_listen", PHX_CONF_STRING, "127.0.0.1:6060", 0, 0, false,
     "host:port of the user API"},
    {"batchd.advertise_http", PHX_CONF_STRING, "", 0, 0, false,
     "host:port users reach this batchd at, which standbys name while it leads "
     "(default: batchd.http_listen)"},
    {"batchd.standby_poll", PHX_CONF_DOUBLE, "1.0", 0.05, 60, false,
     "seconds between a standby's attempts to take the leader lock"},
    {"batchd.leader_lease", PHX_CONF_DOUBLE, "10", 1, 3600, false,
     "seconds a leader that does not run (stopped, hung) keeps the lock before its "
     "session ends and a standby takes over"},
    {"batchd.master", PHX_CONF_STRLIST, "127.0.0.1:6050", 0, 0, false,
     "host:port of the masters' HTTP API (several: tried in turn)"},
    {"batchd.dsn", PHX_CONF_STRING, "dbname=phalanx", 0, 0, false,
     "libpq connection string of the database"},
    {"batchd.munge_socket", PHX_CONF_STRING, NULL, 0, 0, false,
     "munged socket (default: munge's own)"},
    {"batchd.operators", PHX_CONF_STRLIST, "root", 0, 0, true,
     "users (names or uids) who may see and cancel every job"},
    {"batchd.max_script_size", PHX_CONF_INT, "1048576", 64, 1572864, false,
     "largest job script in bytes"},
    {"batchd.default_time_limit", PHX_CONF_STRING, "1:00:00", 0, 0, false,
     "time limit of jobs that give none (Slurm format; 0 = none)"},
    {"batchd.max_time_limit", PHX_CONF_STRING, "0", 0, 0, false,
     "largest time limit accepted (0 = no bound)"},
    {"batchd.default_mem_per_cpu", PHX_CONF_INT, "512", 0, 1 << 30, false,
     "MiB per core of jobs that ask no memory"},
    {"batchd.partition", PHX_CONF_STRING, "batch", 0, 0, true,
     "the default partition's name; without batchd.partitions, the one partition, "
     "of every node"},
    {"batchd.partitions", PHX_CONF_STRLIST, "", 0, 0, true,
     "partitions as in slurm.conf: \"PartitionName=N Nodes=LIST|ALL [Default=YES] "
     "[MaxTime=T] [DefaultTime=T]\", one string each"},
    {"batchd.node_features", PHX_CONF_STRLIST, "", 0, 0, true,
     "node features as in slurm.conf, for -C/--constraint: \"NodeName=LIST "
     "Features=a,b\", one string each"},
    {"batchd.enforce_accounts", PHX_CONF_BOOL, "false", 0, 0, true,
     "a job's account (-A) must be one of its owner's (account_users), the "
     "default one when none is given"},
    {"batchd.accounts_refresh", PHX_CONF_INT, "60", 0, 86400, true,
     "seconds between reads of account_users while accounts are enforced (0: at "
     "start and SIGHUP only)"},
    {"batchd.kill_grace", PHX_CONF_INT, "30", 0, 3600, false,
     "seconds between SIGTERM and SIGKILL (cancel, time limit)"},
    {"batchd.requeue_count", PHX_CONF_INT, "1", 0, 100, false,
     "times a job is requeued after NODE_FAIL"},
    {"batchd.failover_timeout", PHX_CONF_DOUBLE, "86400", 1, 31536000, false,
     "seconds the master keeps our tasks while batchd is away"},
    {"batchd.refuse_seconds", PHX_CONF_DOUBLE, "1", 0.01, 3600, false,
     "decline filter of unused offers"},
    {"batchd.keep_ended", PHX_CONF_INT, "86400", 0, 31536000, false,
     "seconds a finished job is kept in memory (queue, dependencies)"},
    {"batchd.max_array_index", PHX_CONF_INT, "100000", 1, 4000000, false,
     "highest array index"},
    {"batchd.max_array_tasks", PHX_CONF_INT, "10000", 1, 1000000, false,
     "most tasks in one array"},
    {"batchd.max_jobs", PHX_CONF_INT, "100000", 0, 100000000, true,
     "most jobs pending or running in the queue (0: no limit)"},
    {"batchd.max_jobs_per_user", PHX_CONF_INT, "0", 0, 100000000, true,
     "most jobs pending or running of one user, operators apart (0: no limit)"},
    {"batchd.max_running_jobs_per_user", PHX_CONF_INT, "0", 0, 100000000, true,
     "most running jobs of one user, operators apart (0: no limit)"},
    {"batchd.compat_dir", PHX_CONF_STRING, NULL, 0, 0, false,
     "directory put first on jobs' PATH (srun, sbatch, squeue, scancel, sinfo, "
     "scontrol, sacct wrappers); "
     "default: the installed libexec/phalanx/compat, or the source tree's "
     "scripts/compat; \"\" for none"},
    {"batchd.slurm_env", PHX_CONF_BOOL, "false", 0, 0, false,
     "also give batch scripts Slurm's SLURM_* names of their PHX_* variables"},
    {"batchd.mail_prog", PHX_CONF_STRING, "/usr/bin/mail", 0, 0, false,
     "the program batchd runs as `PROG -s SUBJECT RCPT...` to mail a job's user "
     "at the events of its --mail-type (Slurm's MailProg); \"\" for none"},
    {"batchd.mpirun_env", PHX_CONF_BOOL, "true", 0, 0, false,
     "give batch scripts OpenMPI's settings for mpirun to start its daemons "
     "on the job's nodes through phx-rsh (a step), with the job's nodes and "
     "tasks as its hosts and slots"},
    {"batchd.priority_weight_age", PHX_CONF_INT, "1000", 0, 1000000, true, NULL},
    {"batchd.priority_weight_fairshare", PHX_CONF_INT, "1000", 0, 1000000, true, NULL},
    {"batchd.priority_weight_job_size", PHX_CONF_INT, "0", 0, 1000000, true, NULL},
    {"batchd.priority_weight_partition", PHX_CONF_INT, "0", 0, 1000000, true, NULL},
    {"batchd.priority_max_age", PHX_CONF_INT, "604800", 1, 1e9, true,
     "seconds after which age stops growing"},
    {"batchd.priority_favor_small", PHX_CONF_BOOL, "false", 0, 0, true, NULL},
    {"batchd.fairshare_half_life", PHX_CONF_INT, "604800", 0, 1e9, true,
     "seconds of usage decay (0: none)"},
    {"batchd.bf_window", PHX_CONF_INT, "86400", 0, 1e9, true,
     "seconds: longer jobs are not backfilled (0: no bound)"},
    {"batchd.bf_max_job_test", PHX_CONF_INT, "500", 0, 1e6, true,
     "pending jobs examined per pass (0: all)"},
    {"batchd.max_http_connections", PHX_CONF_INT, "1024", 1, 1000000, true,
     "HTTP connections batchd keeps open at once; past them a new one gets 503 "
     "and is closed"},
    {"batchd.http_timeout", PHX_CONF_DOUBLE, "60", 1, 86400, false,
     "seconds an HTTP connection may stay idle, or a request or reply make no "
     "progress, before it is closed"},
    {"batchd.log_level", PHX_CONF_STRING, "info", 0, 0, true,
     "error, warning, notice, info or debug"},
    {"master", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"agent", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"client", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"acct", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

int64_t batchd_now(void)
{
    return (int64_t)time(NULL);
}

bool batchd_is_operator(const batchd_t *b, uid_t uid)
{
    if (uid == 0)
        return true;
    for (size_t i = 0; i < b->noperators; i++)
        if (b->operators[i] == uid)
            return true;
    return false;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: phx-batchd [options]\n"
                 "  -c, --config FILE     configuration file (group \"batchd\")\n"
                 "  -s, --set KEY=VALUE   override one setting (repeatable)\n"
                 "      --check-config    check the configuration, print it and exit\n"
                 "  -v, --verbose         log at debug level\n"
                 "  -h, --help            this text\n");
}

static bool has_prog(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    return (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path) &&
           stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool has_srun(const char *dir)
{
    return has_prog(dir, "srun");
}

/* The Slurm wrappers put first on jobs' PATH.  Unset: next to the program,
 * installed (<prefix>/sbin/../libexec/phalanx/compat) or in the source tree
 * of a build (<src>/<build...>/bin/../scripts/compat, up to 4 levels up). */
static int compat_dir(batchd_t *b, phx_error_t *err)
{
    const char *set = phx_conf_str(b->conf, "batchd.compat_dir");
    if (set) {
        if (!*set)
            return 0; /* "": none */
        if (!has_srun(set))
            return phx_error_set(err,
                                 "batchd.compat_dir: \"%s\" has no srun wrapper "
                                 "(install scripts/compat there, or set \"\" for none)",
                                 set);
        return (b->compat_dir = strdup(set)) ? 0 : phx_error_set(err, "out of memory");
    }
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(cand, sizeof(cand), "%s/../libexec/phalanx/compat", exe);
        for (int up = 1; !has_srun(cand) && up <= 4; up++) {
            size_t off = (size_t)snprintf(cand, sizeof(cand), "%s", exe);
            for (int i = 0; i < up && off < sizeof(cand); i++)
                off += (size_t)snprintf(cand + off, sizeof(cand) - off, "/..");
            if (off < sizeof(cand))
                snprintf(cand + off, sizeof(cand) - off, "/scripts/compat");
        }
        if (has_srun(cand) && (b->compat_dir = realpath(cand, NULL))) {
            phx_log_info("batchd.compat_dir: %s", b->compat_dir);
            return 0;
        }
    }
    phx_log_warnx("batchd.compat_dir: no srun/sbatch wrappers found near the program; "
                  "jobs' PATH gets none (set batchd.compat_dir)");
    return 0;
}

static int settings(batchd_t *b, phx_error_t *err)
{
    const phx_conf_t *c = b->conf;
    b->max_script = (size_t)phx_conf_int(c, "batchd.max_script_size");
    if (batchd_conf_check(c, err) < 0)
        return -1;
    phx_time_parse(phx_conf_str(c, "batchd.default_time_limit"), &b->default_time, err);
    phx_time_parse(phx_conf_str(c, "batchd.max_time_limit"), &b->max_time, err);
    b->default_mem_per_cpu = phx_conf_int(c, "batchd.default_mem_per_cpu");
    b->kill_grace = (int)phx_conf_int(c, "batchd.kill_grace");
    b->max_requeue = (int)phx_conf_int(c, "batchd.requeue_count");
    b->keep_ended = phx_conf_int(c, "batchd.keep_ended");
    b->refuse_seconds = phx_conf_double(c, "batchd.refuse_seconds");
    if (batchd_parts_make(c, b->default_time, b->max_time, &b->parts, err) < 0)
        return -1;
    b->partition = b->parts.v[b->parts.deflt].name;
    if (batchd_features_make(c, &b->features, err) < 0)
        return -1;
    b->slurm_env = phx_conf_bool(c, "batchd.slurm_env");
    b->mpirun_env = phx_conf_bool(c, "batchd.mpirun_env");
    batchd_conf_reloadable(b);
    b->limits.max_array_index = (uint32_t)phx_conf_int(c, "batchd.max_array_index");
    b->limits.max_array_tasks = (uint32_t)phx_conf_int(c, "batchd.max_array_tasks");
    if (compat_dir(b, err) < 0)
        return -1;
    if (b->mpirun_env && (!b->compat_dir || !has_prog(b->compat_dir, "phx-rsh"))) {
        if (b->compat_dir)
            phx_log_warnx("batchd.mpirun_env: \"%s\" has no phx-rsh wrapper: mpirun in "
                          "jobs is not set up to reach the job's other nodes",
                          b->compat_dir);
        b->mpirun_env = false;
    }
    return phx_daemon_uid_list(c, "batchd.operators", &b->operators, &b->noperators,
                               err);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    batchd_t *b = arg;
    if (b->standby)
        return;
    batchd_leader_check(b); /* after a stall: still the leader? */
    int64_t now = batchd_now();
    batchd_queue_expire(b, now);
    batchd_accounts_tick(b, now);
    batchd_update_tick(b, now);
    batchd_mail_tick(b, now);
    if (now - b->nodes_loaded >= 5)
        batchd_nodes_refresh(b);
    if (b->npending > 0)
        batchd_sched_dirty(b);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    batchd_t *b = arg;
    phx_log_notice("caught signal %d, shutting down", (int)sig);
    event_base_loopexit(b->base, NULL);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    batchd_t *b = arg;
    if (b->standby) {
        phx_log_notice("standing by: the configuration is read again once this batchd "
                       "leads");
        b->reload_pending = true;
        return;
    }
    batchd_reload(b);
}

/* The framework id the master keeps for us, to resubscribe with. */
static char *framework_id(const char *dsn, phx_error_t *err)
{
    phx_db_conn_t *db = phx_db_connect(dsn, err);
    if (!db)
        return NULL;
    phx_db_result_t *res = NULL;
    const char *p[] = {BATCHD_FRAMEWORK_NAME};
    char *id = NULL;
    if (phx_db_query(db,
                     "SELECT id FROM frameworks WHERE name = $1 AND state <> 'removed' "
                     "ORDER BY registered_at DESC LIMIT 1",
                     1, p, &res, err) == 0) {
        if (phx_db_result_rows(res) == 1)
            id = strdup(phx_db_result_get(res, 0, 0));
        phx_db_result_destroy(res);
    }
    phx_db_conn_close(db);
    return id;
}

static void fw_subscribed(phx_fwc_t *c, const char *id, void *arg)
{
    (void)c;
    batchd_t *b = arg;
    phx_log_notice("subscribed to the master as framework %s", id);
    b->subscribed = true;
    batchd_sched_subscribed(b);
}

static void fw_offers(phx_fwc_t *c, const json_t *offers, void *arg)
{
    (void)c;
    batchd_sched_offers(arg, offers);
}

typedef struct ack {
    batchd_t *b;
    json_t *status;
} ack_t;

static void acked_after_commit(const phx_error_t *err, phx_db_result_t *const *r, int n,
                               void *arg)
{
    (void)r;
    (void)n;
    ack_t *a = arg;
    /* Without the commit the master resends the update: no ack then. */
    if (!err && a->b->fwc)
        phx_fwc_acknowledge(a->b->fwc, a->status);
    json_decref(a->status);
    free(a);
}

/* An update is acknowledged only once what it changed is committed: the
 * store runs writes in order, so a write queued after the job's changes
 * completes after them. */
static void fw_update(phx_fwc_t *c, const json_t *status, void *arg)
{
    batchd_t *b = arg;
    batchd_on_update(b, status);
    if (!json_object_get(status, "uuid"))
        return;
    ack_t *a = calloc(1, sizeof(*a));
    phx_error_t err;
    if (!a)
        return;
    a->b = b;
    a->status = json_deep_copy(status);
    if (!a->status || phx_db_store_write(b->store, "SELECT 1", 0, NULL,
                                         acked_after_commit, a, &err) < 0) {
        json_decref(a->status);
        free(a);
        phx_fwc_acknowledge(c, status); /* the master would resend forever */
    }
}

static void fw_error(phx_fwc_t *c, const char *msg, void *arg)
{
    (void)c;
    (void)arg;
    phx_log_warnx("master: %s", msg);
}

static void fw_disconnected(phx_fwc_t *c, const char *why, void *arg)
{
    (void)c;
    batchd_t *b = arg;
    b->subscribed = false;
    b->suppressed = false;
    phx_log_warnx("lost the master's event stream (%s); resubscribing", why);
}

static int framework_start(batchd_t *b, phx_error_t *err)
{
    phx_masters_t masters;
    if (phx_masters_from_conf(&masters, b->conf, "batchd.master", err) < 0)
        return -1;
    phx_error_t ferr;
    char *id = framework_id(b->dsn, &ferr);
    if (id)
        phx_log_notice("resuming framework %s", id);
    phx_fwc_opts_t o = {.masters = &masters,
                        .name = BATCHD_FRAMEWORK_NAME,
                        .user = "root",
                        .role = "batch",
                        .failover_timeout =
                            phx_conf_double(b->conf, "batchd.failover_timeout"),
                        .framework_id = id,
                        .munge_socket = phx_conf_str(b->conf, "batchd.munge_socket"),
                        .authenticate = true,
                        .auto_ack = false};
    phx_fwc_callbacks_t cbs = {.subscribed = fw_subscribed,
                               .offers = fw_offers,
                               .update = fw_update,
                               .error = fw_error,
                               .disconnected = fw_disconnected};
    b->fwc = phx_fwc_create(b->base, &o, &cbs, b, err);
    free(id);
    if (!b->fwc || phx_fwc_start(b->fwc, err) < 0)
        return -1;
    return 0;
}

/* Elected (leader.c): the database's state, writes fenced with our epoch,
 * the framework.  Blocking, before the loop runs or from the standby's
 * timer. */
int batchd_start_leading(batchd_t *b, phx_error_t *err)
{
    if (batchd_nodes_load_sync(b, err) < 0)
        return phx_error_prefix(err, "could not load the nodes");
    if (batchd_queue_load(b, err) < 0)
        return phx_error_prefix(err, "could not load the queue");
    if (batchd_accounts_start(b, err) < 0)
        return -1;
    phx_db_store_opts_t so = {.max_queue = 200000, .max_batch = 2000};
    if (!(b->store = phx_db_store_create(b->base, b->dsn, &so, err)) ||
        batchd_fence_store(b, err) < 0)
        return -1;
    if (batchd_jobids_init(b) < 0)
        return phx_error_set(err, "out of memory");
    if (batchd_mail_start(b, err) < 0)
        return -1;
    batchd_requeue_resume(b); /* its writes fenced, before any pass */
    if (framework_start(b, err) < 0)
        return -1;
    if (b->reload_pending) {
        b->reload_pending = false;
        batchd_reload(b);
    }
    phx_log_notice("leading: %zu jobs loaded", b->njobs);
    return 0;
}

static int start(batchd_t *b, phx_error_t *err)
{
    if (settings(b, err) < 0)
        return -1;
    if (!(b->dsn = strdup(phx_conf_str(b->conf, "batchd.dsn"))) ||
        !(b->jobs = phx_hmap_create()) || !(b->array_tasks = phx_hmap_create()) ||
        !(b->tasks = phx_hmap_create()) || !(b->usage = phx_hmap_create()))
        return phx_error_set(err, "out of memory");
    if (!(b->munge =
              phx_munge_create(phx_conf_str(b->conf, "batchd.munge_socket"), err)))
        return -1;
    /* Two priorities: the leader lock's connection (db/leader.c) and the
     * tick go before everything else, the default (1). */
    if (!(b->base = event_base_new()) || event_base_priority_init(b->base, 2) < 0)
        return phx_error_set(err, "could not create the event loop");
    if (batchd_api_start(b, phx_conf_str(b->conf, "batchd.http_listen"), err) < 0)
        return -1;
    /* Leader: loads and subscribes here; standby: when it wins the lock. */
    if (batchd_elect(b, err) < 0)
        return -1;
    b->tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
    b->sigint = evsignal_new(b->base, SIGINT, on_signal, b);
    b->sigterm = evsignal_new(b->base, SIGTERM, on_signal, b);
    b->sighup = evsignal_new(b->base, SIGHUP, on_sighup, b);
    struct timeval tv = {1, 0};
    /* The tick first (priority 0), as the leader lock's watch: after a
     * stall its leader check runs before any other timer acts. */
    if (!b->tick || !b->sigint || !b->sigterm || !b->sighup ||
        event_priority_set(b->tick, 0) < 0 || event_add(b->tick, &tv) < 0 ||
        event_add(b->sigint, NULL) < 0 || event_add(b->sigterm, NULL) < 0 ||
        event_add(b->sighup, NULL) < 0)
        return phx_error_set(err, "could not set up timers and signals");
    return 0;
}

static void stop(batchd_t *b)
{
    if (b->tick)
        event_free(b->tick);
    if (b->sigint)
        event_free(b->sigint);
    if (b->sigterm)
        event_free(b->sigterm);
    if (b->sighup)
        event_free(b->sighup);
    if (b->sched_ev)
        event_free(b->sched_ev);
    phx_fwc_destroy(b->fwc);
    b->fwc = NULL; /* the store's last callbacks acknowledge nothing now */
    if (b->http)
        evhttp_free(b->http);
    phx_http_limit_destroy(b->http_limit); /* after evhttp_free: counts its closes */
    /* The store delivers its last callbacks, which touch jobs. */
    phx_db_store_destroy(b->store);
    batchd_leader_stop(b); /* after the last write: the lock goes */
    batchd_jobids_destroy(b);
    batchd_queue_destroy(b);
    if (b->usage) {
        size_t pos = 0;
        void *v;
        while (phx_hmap_next(b->usage, &pos, NULL, &v))
            free(v);
        phx_hmap_destroy(b->usage);
    }
    phx_hmap_destroy(b->tasks);
    phx_hmap_destroy(b->array_tasks);
    phx_hmap_destroy(b->jobs);
    phx_hmap_destroy(b->node_index);
    phx_hmap_destroy(b->node_names);
    free(b->nodes_none);
    batchd_nodes_free(b->nodes, b->nnodes);
    batchd_parts_clear(&b->parts);
    batchd_features_clear(&b->features);
    batchd_accounts_destroy(b->accounts);
    batchd_mail_stop(b);
    if (b->base)
        event_base_free(b->base);
    phx_munge_destroy(b->munge);
    free(b->operators);
    free(b->compat_dir);
    free(b->dsn);
    phx_conf_destroy(b->conf);
}

int main(int argc, char **argv)
{
    /* No fastbins: jansson's trees of small objects filled them, and each
     * allocation of 1 KiB or more then merged them all (malloc_consolidate:
     * 11 % of batchd's CPU in bench_batch; its malloc and free 25 % -> 20 %
     * without). */
    mallopt(M_MXFAST, 0);
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 'C'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *file = getenv("PHX_CONFIG");
    char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    int nsets = 0, check = 0, verbose = 0, c;
    while ((c = getopt_long(argc, argv, "c:s:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'C': check = 1; break;
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
        fprintf(stderr, "phx-batchd: unexpected argument \"%s\"\n", argv[optind]);
        free(sets);
        return 2;
    }
    phx_log_init("phx-batchd", PHX_LOG_STDERR, LOG_INFO);
    batchd_t b = {0};
    phx_error_t err;
    b.conf = phx_daemon_conf("phx-batchd", batchd_schema, file, sets, nsets,
                             "batchd.log_level", verbose);
    if (!b.conf) {
        free(sets);
        return 1;
    }
    int bad = batchd_conf_check(b.conf, &err);
    if (bad < 0 || check) {
        if (bad < 0)
            fprintf(stderr, "phx-batchd: %s\n", err.text);
        else
            phx_daemon_check_config(b.conf);
        phx_conf_destroy(b.conf);
        free(sets);
        return bad < 0 ? 1 : 0;
    }
    /* kept for reloading (SIGHUP) */
    b.conf_file = file;
    b.conf_sets = sets;
    b.conf_nsets = nsets;
    b.verbose = verbose;
    signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    if (start(&b, &err) < 0) {
        phx_log_errx("%s", err.text);
        rc = 1;
    } else {
        char masters[1024];
        phx_masters_t ml;
        phx_masters_from_conf(&ml, b.conf, "batchd.master", NULL);
        phx_log_notice("phx-batchd %s: users on %s, master at %s, %zu jobs loaded%s",
                       PHX_VERSION, phx_conf_str(b.conf, "batchd.http_listen"),
                       phx_masters_all(&ml, masters, sizeof(masters)), b.njobs,
                       b.standby ? " (standing by)" : "");
        if (event_base_dispatch(b.base) < 0) {
            phx_log_errx("event loop failed");
            rc = 1;
        }
    }
    if (b.failed)
        rc = 1;
    stop(&b);
    free(sets);
    return rc;
}
