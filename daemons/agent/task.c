/* phx-agent: the task table and the lifecycle of a task (see task.h):
 * LAUNCH and KILL from the master, the shim's news, the end of a task. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/task.h"
#include "daemons/agent/users.h"
#include "lib/framework.h"
#include "lib/json.h"
#include "lib/log.h"
#include "topology/bind.h"

bool phx_task_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > PHX_TASK_ID_MAX || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    return strspn(
               id,
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
           n;
}

/* Two 64-bit FNV-1a lanes with different bases over "<fw>\0<id>". */
static void hash_ids(const char *framework_id, const char *id, uint64_t h[2])
{
    h[0] = 0xcbf29ce484222325ULL;
    h[1] = 0x84222325cbf29ce4ULL;
    const char *parts[2] = {framework_id, id};
    for (int p = 0; p < 2; p++) {
        const unsigned char *c = (const unsigned char *)parts[p];
        for (size_t i = 0; i == 0 || c[i - 1]; i++)
            for (int k = 0; k < 2; k++) {
                h[k] ^= c[i];
                h[k] *= 0x100000001b3ULL;
                h[k] ^= h[k] >> (29 + k);
            }
    }
}

void phx_task_key(const char *framework_id, const char *id,
                  char key[PHX_TASK_KEY_MAX + 1])
{
    size_t nf = strlen(framework_id), ni = strlen(id);
    if (phx_task_id_valid(framework_id) && framework_id[0] != '.' &&
        phx_task_id_valid(id) && nf + 1 + ni <= PHX_TASK_KEY_MAX) {
        memcpy(key, framework_id, nf);
        key[nf] = '+';
        memcpy(key + nf + 1, id, ni + 1);
        return;
    }
    uint64_t h[2];
    hash_ids(framework_id, id, h);
    snprintf(key, PHX_TASK_KEY_MAX + 1, "h-%016llx%016llx", (unsigned long long)h[0],
             (unsigned long long)h[1]);
}

phx_task_t *phx_task_new(phx_agentd_t *a, const char *framework_id, const char *id)
{
    phx_task_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->a = a;
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->framework_id, sizeof(t->framework_id), "%s", framework_id);
    phx_task_key(t->framework_id, t->id, t->key);
    snprintf(t->label, sizeof(t->label), "%s/%s", t->framework_id, t->id);
    snprintf(t->dir, sizeof(t->dir), "%s/%s", a->records_dir, t->key);
    t->pidfd = t->notify_fd = -1;
    if (!(t->pending = json_array()) || phx_limits_arm(t) < 0) {
        phx_task_free(t);
        return NULL;
    }
    t->next = a->tasks;
    if (a->tasks)
        a->tasks->prev = t;
    a->tasks = t;
    return t;
}

void phx_task_free(phx_task_t *t)
{
    if (!t)
        return;
    phx_agentd_t *a = t->a;
    if (t->prev)
        t->prev->next = t->next;
    else if (a->tasks == t)
        a->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->limit_ev)
        event_free(t->limit_ev);
    if (t->warn_ev)
        event_free(t->warn_ev);
    if (t->kill_ev)
        event_free(t->kill_ev);
    if (t->shim_ev)
        event_free(t->shim_ev);
    if (t->notify_ev)
        event_free(t->notify_ev);
    if (t->pidfd >= 0)
        close(t->pidfd);
    if (t->notify_fd >= 0)
        close(t->notify_fd);
    json_decref(t->spec);
    json_decref(t->pending);
    json_decref(t->last);
    phx_topo_coreset_destroy(t->cores);
    phx_cg_set_clear(&t->cg_was);
    free(t->cpus);
    free(t->mems);
    free(t->gpus);
    free(t->gpu_cg);
    free(t);
}

phx_task_t *phx_task_find(phx_agentd_t *a, const char *framework_id, const char *id)
{
    for (phx_task_t *t = a->tasks; t; t = t->next)
        if (strcmp(t->id, id) == 0 && strcmp(t->framework_id, framework_id) == 0)
            return t;
    return NULL;
}

phx_task_t *phx_task_find_key(phx_agentd_t *a, const char *key)
{
    for (phx_task_t *t = a->tasks; t; t = t->next)
        if (strcmp(t->key, key) == 0)
            return t;
    return NULL;
}

void phx_task_remember_done(phx_task_t *t)
{
    phx_agentd_t *a = t->a;
    size_t n = sizeof(a->recent) / sizeof(a->recent[0]);
    struct phx_agent_done *d = &a->recent[a->nrecent++ % n];
    snprintf(d->framework_id, sizeof(d->framework_id), "%s", t->framework_id);
    snprintf(d->task_id, sizeof(d->task_id), "%s", t->id);
}

bool phx_task_recently_done(const phx_agentd_t *a, const char *framework_id,
                            const char *id)
{
    size_t n = sizeof(a->recent) / sizeof(a->recent[0]);
    for (size_t i = 0; i < n && i < a->nrecent; i++)
        if (strcmp(a->recent[i].task_id, id) == 0 &&
            strcmp(a->recent[i].framework_id, framework_id) == 0)
            return true;
    return false;
}

/* The real memory nodes of the task's NUMA domains.  A model of this machine
 * uses the domains' OS indexes; an emulated one maps logical domain L onto
 * the L mod R-th memory node allowed to the agent (R of them), like binding
 * maps emulated PUs (doc/agent.md). */
static char *real_mems(phx_task_t *t, const int *numas, int n)
{
    phx_agentd_t *a = t->a;
    const char *allowed = phx_cg_allowed_mems(a->cg);
    int *ids = NULL, nids = 0, *out = calloc((size_t)n + 1, sizeof(int)), nout = 0;
    if (!allowed || phx_rec_parse_list(allowed, 1 << 16, &ids, &nids) < 0 ||
        nids == 0) {
        free(ids);
        ids = calloc(1, sizeof(int)), nids = ids ? 1 : 0; /* node 0 */
    }
    if (!out || nids == 0) {
        free(ids);
        free(out);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        int os = phx_topo_numa_os_index(a->topo, numas[i]), node = -1;
        for (int k = 0; !phx_topo_emulated(a->topo) && k < nids; k++)
            if (ids[k] == os)
                node = os;
        if (node < 0)
            node = ids[numas[i] % nids];
        bool dup = false;
        for (int k = 0; k < nout; k++)
            dup = dup || out[k] == node;
        if (!dup)
            out[nout++] = node;
    }
    for (int i = 1; i < nout; i++) /* tiny insertion sort */
        for (int k = i; k > 0 && out[k - 1] > out[k]; k--) {
            int x = out[k];
            out[k] = out[k - 1];
            out[k - 1] = x;
        }
    char *s = phx_rec_format_list(out, nout);
    free(ids);
    free(out);
    return s;
}

/* The real PUs binding a core set uses.  phx_topo_bind_cpuset_str loads this
 * machine's topology with hwloc, tens of milliseconds of sysfs reads on the
 * agent's loop for every launch; the PUs of a set are the union of its
 * cores' PUs, so each core's are computed once and kept for the agent's life
 * (the PUs the agent may use, onto which emulated PUs map, do not change
 * while it runs).  One agent topology per process; another resets the
 * cache. */
static const phx_topo_t *pus_topo;
static char **core_pus;

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

static char *cpuset_str(const phx_topo_t *topo, const phx_topo_coreset_t *cores,
                        phx_error_t *err)
{
    int ncores = phx_topo_ncores(topo);
    if (phx_topo_coreset_count(cores) == 0)
        return phx_topo_bind_cpuset_str(topo, cores, err); /* its error */
    if (pus_topo != topo) {
        for (int c = 0; core_pus && c < ncores; c++)
            free(core_pus[c]);
        free(core_pus);
        pus_topo = NULL;
        if (!(core_pus = calloc((size_t)ncores, sizeof(*core_pus))))
            return phx_error_set(err, "out of memory"), NULL;
        pus_topo = topo;
    }
    int *all = NULL, nall = 0;
    for (int c = phx_topo_coreset_next(cores, -1); c >= 0;
         c = phx_topo_coreset_next(cores, c)) {
        if (!core_pus[c]) {
            phx_topo_coreset_t *one = phx_topo_coreset_create(ncores);
            if (!one || phx_topo_coreset_add(one, c) < 0) {
                phx_topo_coreset_destroy(one);
                free(all);
                return phx_error_set(err, "out of memory"), NULL;
            }
            core_pus[c] = phx_topo_bind_cpuset_str(topo, one, err);
            phx_topo_coreset_destroy(one);
            if (!core_pus[c]) {
                free(all);
                return NULL;
            }
        }
        int *ids = NULL, n = 0;
        int *grown = NULL;
        if (phx_rec_parse_list(core_pus[c], 1 << 20, &ids, &n) < 0 ||
            !(grown = realloc(all, (size_t)(nall + n) * sizeof(*all)))) {
            free(ids);
            free(all);
            return phx_error_set(err, "bad PU list \"%s\" of core %d", core_pus[c], c),
                   NULL;
        }
        all = grown;
        memcpy(all + nall, ids, (size_t)n * sizeof(*ids));
        nall += n;
        free(ids);
    }
    qsort(all, (size_t)nall, sizeof(*all), cmp_int);
    int k = 0;
    for (int i = 0; i < nall; i++) /* a PU shared by cores counts once */
        if (k == 0 || all[k - 1] != all[i])
            all[k++] = all[i];
    char *s = phx_rec_format_list(all, k);
    free(all);
    if (!s)
        phx_error_set(err, "out of memory");
    return s;
}

static int parse_cores(phx_task_t *t, phx_error_t *err)
{
    const phx_topo_t *topo = t->a->topo;
    const char *list = json_string_value(json_object_get(t->spec, "cores"));
    int *ids, n;
    if (!list || phx_rec_parse_list(list, phx_topo_ncores(topo), &ids, &n) < 0)
        return phx_error_set(err,
                             "cores \"%s\" are not a list of this node's cores (0-%d)",
                             list ? list : "(missing)", phx_topo_ncores(topo) - 1);
    if (!(t->cores = phx_topo_coreset_create(phx_topo_ncores(topo)))) {
        free(ids);
        return phx_error_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++)
        phx_topo_coreset_add(t->cores, ids[i]);
    free(ids);
    if (!(t->cpus = cpuset_str(topo, t->cores, err)))
        return phx_error_prefix(err, "cores \"%s\"", list);
    /* NUMA domains: as given, or those of the cores. */
    const char *numas = json_string_value(json_object_get(t->spec, "numas"));
    int nn = phx_topo_nnumas(topo), *nids = NULL, nnids = 0;
    if (numas && phx_rec_parse_list(numas, nn, &nids, &nnids) < 0)
        return phx_error_set(err,
                             "numas \"%s\" are not a list of this node's NUMA "
                             "domains (0-%d)",
                             numas, nn - 1);
    if (!numas) {
        if (!(nids = calloc((size_t)nn, sizeof(int))))
            return phx_error_set(err, "out of memory");
        for (int c = phx_topo_coreset_next(t->cores, -1); c >= 0;
             c = phx_topo_coreset_next(t->cores, c)) {
            int d = phx_topo_core_numa(topo, c);
            bool seen = false;
            for (int k = 0; k < nnids; k++)
                seen = seen || nids[k] == d;
            if (!seen && d >= 0)
                nids[nnids++] = d;
        }
    }
    t->mems = real_mems(t, nids, nnids);
    free(nids);
    return t->mems ? 0 : phx_error_set(err, "out of memory");
}

/* "warn" (lib/framework.h) */
static int parse_warn(phx_task_t *t, phx_error_t *err)
{
    phx_task_warn_t w;
    int rc = phx_task_warn_parse(t->spec, &w, err);
    if (rc > 0) {
        t->warn_signal = w.signal;
        t->warn_before = w.before;
        t->warn_main = w.main;
    }
    return rc < 0 ? -1 : 0;
}

int phx_task_parse(phx_task_t *t, phx_error_t *err)
{
    const json_t *s = t->spec;
    const char *user, *str;
    long long uid, gid, gang = 0, grace = (long long)t->a->default_grace;
    json_t *argv, *env = NULL, *v;
    if (phx_json_str(s, "user", true, &user, err) < 0 ||
        phx_json_int(s, "uid", true, 0, UINT32_MAX - 1, &uid, err) < 0 ||
        phx_json_int(s, "gid", true, 0, UINT32_MAX - 1, &gid, err) < 0 ||
        phx_json_int(s, "gang_id", false, INT64_MIN, INT64_MAX, &gang, err) < 0 ||
        phx_json_arr(s, "argv", true, &argv, err) < 0 ||
        phx_json_obj(s, "env", false, &env, err) < 0 ||
        phx_json_str(s, "cwd", false, &str, err) < 0 ||
        phx_json_int(s, "memory", false, 0, INT64_MAX, &t->memory, err) < 0 ||
        phx_json_int(s, "time_limit", false, 0, PHX_TASK_TIME_LIMIT_MAX, &t->time_limit,
                     err) < 0 ||
        phx_json_int(s, "kill_grace", false, 0, 86400, &grace, err) < 0 ||
        phx_json_bool(s, "append", false, &(bool){false}, err) < 0)
        return -1;
    t->uid = (uid_t)uid;
    t->gid = (gid_t)gid;
    t->kill_grace = grace;
    if (parse_warn(t, err) < 0)
        return -1;
    size_t i;
    if (json_array_size(argv) == 0)
        return phx_error_set(err, "argv is empty");
    json_array_foreach(argv, i, v) if (!json_is_string(v)) return phx_error_set(
        err, "argv[%zu] is not a string", i);
    const char *key;
    json_object_foreach(env, key, v)
    {
        if (!json_is_string(v) || !*key || strchr(key, '='))
            return phx_error_set(err, "env \"%s\" is not NAME: string", key);
    }
    str = NULL;
    if (phx_json_str(s, "script", false, &str, err) < 0)
        return -1;
    if (str && (strncmp(str, "#!", 2) != 0 || strlen(str) > PHX_TASK_SCRIPT_MAX))
        return phx_error_set(err, "script must start with #! and hold at most %d bytes",
                             PHX_TASK_SCRIPT_MAX);
    static const char *const outputs[] = {"stdout", "stderr"};
    for (int k = 0; k < 2; k++) {
        str = NULL;
        if (phx_json_str(s, outputs[k], false, &str, err) < 0)
            return -1;
        if (str && (str[0] != '/' || strlen(str) >= PATH_MAX))
            return phx_error_set(err, "%s \"%s\" is not an absolute path", outputs[k],
                                 str);
    }
    return parse_cores(t, err) < 0 ? -1 : phx_task_parse_gpus(t, err);
}

/* The user must exist here with the uid the master gave (a cached lookup:
 * users.h). */
static const phx_user_t *check_user(phx_task_t *t, const char **reason,
                                    phx_error_t *err)
{
    const char *user = json_string_value(json_object_get(t->spec, "user"));
    *reason = "REASON_TASK_INVALID";
    const phx_user_t *pw = phx_users_get(t->a->users, user, t->gid, phx_users_now());
    if (!pw) {
        int e = errno;
        if (e == ENOENT)
            phx_error_set(err, "user \"%s\" does not exist on node \"%s\"", user,
                          t->a->name);
        else
            phx_error_set(err, "could not look up user \"%s\" on node \"%s\": %s", user,
                          t->a->name, strerror(e));
        return NULL;
    }
    if (pw->uid != t->uid) {
        phx_error_set(err, "user \"%s\" has uid %u on node \"%s\", not %u", user,
                      (unsigned)pw->uid, t->a->name, (unsigned)t->uid);
        return NULL;
    }
    if (t->uid == 0 && !t->a->allow_root) {
        *reason = "REASON_TASK_UNAUTHORIZED";
        phx_error_set(err,
                      "tasks may not run as root on node \"%s\" "
                      "(agent.allow_root is false)",
                      t->a->name);
        return NULL;
    }
    return pw;
}

static void read_notify(phx_task_t *t)
{
    char buf[64];
    ssize_t n;
    while (t->notify_fd >= 0 && (n = read(t->notify_fd, buf, sizeof(buf) - 1)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            break;
        }
        buf[n] = '\0';
        int pid;
        if (sscanf(buf, "R %d", &pid) == 1 && t->phase == PHX_TASK_STARTING) {
            t->child = (pid_t)pid;
            t->phase = PHX_TASK_RUNNING;
            phx_status_emit(t, "TASK_RUNNING", NULL, NULL, -1, -1, NULL);
        }
    }
    if (t->notify_ev) {
        event_free(t->notify_ev);
        t->notify_ev = NULL;
    }
    if (t->notify_fd >= 0)
        close(t->notify_fd);
    t->notify_fd = -1;
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    read_notify(arg);
}

static void on_shim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_task_t *t = arg;
    if (t->pidfd < 0 && t->shim_start && phx_exec_proc_start(t->shim) == t->shim_start)
        return; /* polling: still there (a start of 0: it ended before we looked) */
    int st;
    waitpid(t->shim, &st, WNOHANG); /* ours: reap it; adopted: ECHILD */
    event_free(t->shim_ev);
    t->shim_ev = NULL;
    if (t->pidfd >= 0)
        close(t->pidfd);
    t->pidfd = -1;
    phx_task_shim_gone(t);
}

int phx_task_watch_shim(phx_task_t *t)
{
    t->pidfd = (int)syscall(SYS_pidfd_open, t->shim, 0);
    if (t->pidfd >= 0) {
        t->shim_ev = event_new(t->a->base, t->pidfd, EV_READ, on_shim, t);
        return t->shim_ev && event_add(t->shim_ev, NULL) == 0 ? 0 : -1;
    }
    /* No pidfd (Linux < 5.3): look at /proc twice a second for the process
     * that started when ours did (an adopted shim's start is its record's;
     * ours is our child, so no other process has its pid yet). */
    if (!t->shim_start)
        t->shim_start = phx_exec_proc_start(t->shim);
    struct timeval tv = {0, 500000};
    t->shim_ev = event_new(t->a->base, -1, EV_PERSIST, on_shim, t);
    return t->shim_ev && event_add(t->shim_ev, &tv) == 0 ? 0 : -1;
}

void phx_task_shim_gone(phx_task_t *t)
{
    read_notify(t);
    if (t->phase >= PHX_TASK_ENDING)
        return;
    t->phase = PHX_TASK_ENDING;
    phx_limits_sweep(t);
}

static json_t *usage_json(phx_task_t *t, const json_t *exit, phx_cg_usage_t *u)
{
    memset(u, 0, sizeof(*u));
    if (t->has_cgroup)
        t->a->cg->ops->usage(t->a->cg, t->key, &t->cg_base, u);
    double user = json_number_value(json_object_get(exit, "user_cpu_s"));
    double sys = json_number_value(json_object_get(exit, "system_cpu_s"));
    json_int_t rss = json_integer_value(json_object_get(exit, "max_rss_bytes"));
    if (u->have_cpu) { /* the cgroup counted the step ranks too */
        user = u->user_s - t->step_user_s > 0 ? u->user_s - t->step_user_s : 0;
        sys = u->system_s - t->step_system_s > 0 ? u->system_s - t->step_system_s : 0;
    }
    return json_pack("{s:f, s:f, s:I}", "user_cpu_s", user, "system_cpu_s", sys,
                     "max_rss_bytes", u->have_rss ? (json_int_t)u->max_rss : rss);
}

void phx_task_finish(phx_task_t *t)
{
    if (t->phase != PHX_TASK_ENDING)
        return;
    phx_limits_clear(t);
    json_t *exit = phx_rec_read(t->dir, "exit");
    phx_cg_usage_t u;
    json_t *usage = usage_json(t, exit, &u);
    const char *error = json_string_value(json_object_get(exit, "error"));
    json_t *stv = json_object_get(exit, "status");
    int st = (int)json_integer_value(stv);
    int code = json_is_integer(stv) && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    int sig = json_is_integer(stv) && WIFSIGNALED(st) ? WTERMSIG(st) : -1;
    char msg[PHX_ERROR_TEXT_MAX];
    const char *state = "TASK_FAILED", *reason = NULL;
    if (code >= 0)
        snprintf(msg, sizeof(msg), "exited with status %d", code);
    else
        snprintf(msg, sizeof(msg), "killed by signal %d (%s)", sig, strsignal(sig));
    if (!exit || (!error && !json_is_integer(stv))) {
        reason = "REASON_EXECUTOR_TERMINATED";
        snprintf(msg, sizeof(msg),
                 "the task's supervisor died without recording how "
                 "the task ended");
    } else if (error) {
        state = "TASK_ERROR";
        reason = "REASON_COMMAND_EXECUTOR_FAILED";
        snprintf(msg, sizeof(msg), "could not start: %s", error);
    } else if (t->kill == PHX_KILL_MASTER) {
        state = "TASK_KILLED";
        reason = "REASON_TASK_KILLED";
        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " after a kill");
    } else if (t->kill == PHX_KILL_TIMEOUT) {
        reason = "REASON_MAX_COMPLETION_TIME_REACHED";
        snprintf(msg, sizeof(msg), "time limit of %lld s reached (%s)", t->time_limit,
                 code >= 0 ? "it exited during the grace period" : "terminated");
    } else if (u.oom_kills > 0) {
        reason = "REASON_CONTAINER_LIMITATION_MEMORY";
        snprintf(msg, sizeof(msg),
                 "memory limit of %lld bytes reached (%llu OOM kill%s)", t->memory,
                 (unsigned long long)u.oom_kills, u.oom_kills > 1 ? "s" : "");
    } else if (code == 0) {
        state = "TASK_FINISHED";
    }
    if (error)
        json_decref(usage), usage = NULL;
    phx_status_emit(t, state, reason, msg, code, sig, usage);
    json_decref(exit);
    phx_task_gpu_cgroup_remove(t);
    /* The sweep read its processes (none) just before calling us: the pool
     * need not read them again, unless that read failed. */
    if (t->has_cgroup &&
        phx_cg_release(t->a->cg, t->key, t->cg_wrote ? t->cpus : NULL, t->mems,
                       t->memory, !t->froze && t->swept_empty) < 0)
        phx_log_warn("task %s: could not remove its cgroup", t->label);
    else
        t->has_cgroup = false; /* pooled or removed: another task's now */
}

/* Launch checks, in order; a refusal is a TASK_ERROR, durable like any status.
 * The launch's signature was checked before the task was recorded. */
static void launch(phx_task_t *t)
{
    phx_agentd_t *a = t->a;
    phx_error_t err;
    const char *reason = "REASON_TASK_INVALID";
    const phx_user_t *pw = NULL;
    if (phx_task_parse(t, &err) < 0 || !(pw = check_user(t, &reason, &err)))
        goto refuse;
    reason = "REASON_COMMAND_EXECUTOR_FAILED";
    if (a->cg->mode != PHX_CG_NONE) {
        if (a->cg->ops->create(a->cg, t->key, t->cg_reused, &t->cg_was, t->cpus,
                               t->mems, t->memory, &err) < 0) {
            t->cg_reused = false; /* removed */
            goto refuse;
        }
        t->has_cgroup = t->cg_wrote = true;
    }
    if (phx_task_gpu_cgroup(t, &err) < 0 || phx_exec_spawn(t, pw, &err) < 0)
        goto refuse;
    phx_log_info(
        "task %s: started as %s (uid %u) on cores %s (PUs %s, memory nodes %s), "
        "shim pid %d",
        t->label, pw->name, (unsigned)t->uid,
        json_string_value(json_object_get(t->spec, "cores")), t->cpus, t->mems,
        (int)t->shim);
    /* notify_fd is non-blocking already (exec.c) */
    t->notify_ev = event_new(a->base, t->notify_fd, EV_READ | EV_PERSIST, on_notify, t);
    if (!t->notify_ev || event_add(t->notify_ev, NULL) < 0 ||
        phx_task_watch_shim(t) < 0 || phx_limits_arm(t) < 0)
        phx_log_errx("task %s: could not watch its shim", t->label);
    return;
refuse:
    phx_task_gpu_cgroup_remove(t);
    if (t->has_cgroup || t->cg_reused) /* nothing ran in it */
        phx_cg_release(a->cg, t->key, NULL, NULL, 0, false);
    t->has_cgroup = t->cg_reused = false;
    phx_status_emit(t, "TASK_ERROR", reason, err.text, -1, -1, NULL);
}

/* The task record: the task without a script (up to 4 MiB, on a tmpfs: an
 * adopted task never starts again), its start, what a reused cgroup had
 * counted (phx_cg_base_t; absent: a new cgroup). */
static json_t *task_record(const phx_task_t *t)
{
    json_t *spec =
        json_object_get(t->spec, "script") ? json_copy(t->spec) : json_incref(t->spec);
    if (spec)
        json_object_del(spec, "script");
    json_t *rec =
        spec ? json_pack("{s:o, s:f}", "task", spec, "started_at", t->started_at)
             : NULL;
    const phx_cg_base_t *b = &t->cg_base;
    if (rec && t->cg_reused &&
        json_object_set_new(rec, "cgroup_base",
                            json_pack("{s:I, s:I, s:I}", "user", (json_int_t)b->user,
                                      "system", (json_int_t)b->system, "oom_kills",
                                      (json_int_t)b->oom_kills)) < 0) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

void phx_agentd_on_launch(phx_agentd_t *a, const phx_frame_t *f)
{
    json_t *task = json_object_get(f->header, "task");
    const char *id = json_string_value(json_object_get(task, "task_id"));
    const char *fw = json_string_value(json_object_get(task, "framework_id"));
    if (!json_is_object(task) || !id || !phx_task_id_valid(id) || !fw || !*fw ||
        strlen(fw) > PHX_TASK_FW_MAX) {
        phx_status_send_unrecorded(
            a, fw ? fw : "", id ? id : "", "TASK_ERROR", "REASON_TASK_INVALID",
            "LAUNCH needs a task object with a task_id of 1 to 128 "
            "characters [A-Za-z0-9._:-] and a framework_id");
        return;
    }
    phx_task_t *t = phx_task_find(a, fw, id);
    bool known = t || phx_task_recently_done(a, fw, id);
    /* The signature first: an unsigned or forged LAUNCH leaves nothing behind
     * (no record, no cgroup, no entry among the known tasks), so it cannot
     * stand in for the master's own launch of that task.  Its refusal is not
     * recorded; for a task this node knows, not even sent (the master's task
     * is not the forger's to fail). */
    phx_error_t auth;
    if (phx_launch_auth_check(a, task, f->header, &auth) < 0) {
        phx_log_warnx("task %s/%s: launch refused: %s", fw, id, auth.text);
        if (!known)
            phx_status_send_unrecorded(a, fw, id, "TASK_ERROR",
                                       "REASON_TASK_UNAUTHORIZED", auth.text);
        return;
    }
    if (known) {
        phx_log_info("task %s/%s: duplicate launch ignored", fw, id);
        if (t && t->last && phx_agentd_link_ready(a))
            phx_agentd_send(a, json_deep_copy(t->last), NULL, 0);
        return;
    }
    char key[PHX_TASK_KEY_MAX + 1];
    phx_task_key(fw, id, key);
    if ((t = phx_task_find_key(a, key))) { /* a hash collision: astronomically rare */
        phx_error_t err;
        phx_error_set(&err, "its local key %s is that of task %s on node \"%s\"", key,
                      t->label, a->name);
        phx_status_send_unrecorded(a, fw, id, "TASK_ERROR",
                                   "REASON_COMMAND_EXECUTOR_FAILED", err.text);
        return;
    }
    if (!(t = phx_task_new(a, fw, id))) {
        phx_log_errx("task %s/%s: out of memory", fw, id);
        return;
    }
    t->spec = json_incref(task);
    t->started_at = phx_rec_now();
    /* A pooled cgroup now, so that the record holds what it had counted. */
    t->cg_reused = phx_cg_take(a->cg, t->key, &t->cg_base, &t->cg_was) == 1;
    phx_error_t err;
    json_t *rec = task_record(t);
    if (!rec)
        phx_error_set(&err, "out of memory");
    if (!rec || phx_rec_mkdir(t->dir, 0700, &err) < 0 ||
        phx_rec_create(t->dir, "task", rec, &err) < 0) {
        json_decref(rec);
        phx_log_errx("task %s: %s", t->label, err.text);
        phx_status_send_unrecorded(a, fw, id, "TASK_ERROR",
                                   "REASON_COMMAND_EXECUTOR_FAILED", err.text);
        if (t->cg_reused)
            phx_cg_release(a->cg, t->key, NULL, NULL, 0, false);
        phx_rec_remove_dir(t->dir);
        phx_task_free(t);
        return;
    }
    json_decref(rec);
    launch(t);
}

/* KILL names the task by framework_id and task_id, both required. */
void phx_agentd_on_kill(phx_agentd_t *a, const phx_frame_t *f)
{
    const char *id = NULL, *fw = NULL;
    double grace = -1;
    phx_error_t err;
    if (phx_json_str(f->header, "task_id", true, &id, &err) < 0 ||
        phx_json_str(f->header, "framework_id", true, &fw, &err) < 0 ||
        phx_json_num(f->header, "grace", false, 0, 86400, &grace, &err) < 0) {
        phx_log_warnx("KILL ignored: %s", err.text);
        return;
    }
    phx_task_t *t = phx_task_find(a, fw, id);
    if (!t) {
        if (!phx_task_recently_done(a, fw, id))
            phx_status_send_unrecorded(a, fw, id, "TASK_LOST", "REASON_TASK_UNKNOWN",
                                       "no such task on this node");
        return;
    }
    if (t->phase == PHX_TASK_DONE) {
        phx_status_send_task(t);
        return;
    }
    phx_log_notice("task %s: kill requested by the master", t->label);
    phx_limits_kill(t, PHX_KILL_MASTER, grace >= 0 ? grace : (double)t->kill_grace);
}
