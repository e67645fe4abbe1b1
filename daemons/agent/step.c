/* phx-agent: the steps hosted here: STEP_LAUNCH registers the namespace and
 * forks the local ranks inside the job task's cgroup, as its user, bound to
 * their cores; exits are collected and reported; STEP_KILL kills. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/step.h"
#include "daemons/agent/step_bound.h"
#include "daemons/agent/task.h"
#include "lib/json.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "topology/bind.h"

static struct {
    phx_agentd_t *a;
    phx_pmix_t *pmix;
    phx_lstep_t *steps;
    char socket[1024];
} st;

/* LeakSanitizer's hook (a sanitizer's name, not ours): libpmix keeps
 * allocations past PMIx_server_finalize; they are not the agent's leaks.
 * Without a sanitizer nothing calls it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpmix.so\n";
}

phx_agentd_t *phx_step_agent(void)
{
    return st.a;
}

phx_pmix_t *phx_step_pmix(void)
{
    return st.pmix;
}

const char *phx_agentd_step_socket(void)
{
    return st.socket;
}

phx_lstep_t *phx_lstep_by_id(uint64_t id)
{
    for (phx_lstep_t *s = st.steps; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

phx_lstep_t *phx_lstep_by_nspace(const char *nspace)
{
    for (phx_lstep_t *s = st.steps; s; s = s->next)
        if (strcmp(s->nspace, nspace) == 0)
            return s;
    return NULL;
}

static void lstep_free(phx_lstep_t *s)
{
    for (phx_lstep_t **pp = &st.steps; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (s->watch_ev)
        event_free(s->watch_ev);
    if (s->spawn_ev)
        event_free(s->spawn_ev);
    json_decref(s->launch);
    if (s->registered && st.pmix)
        phx_pmix_step_deregister(st.pmix, s->nspace);
    phx_lstep_input_end(s);
    for (int i = 0; s->local && i < s->nlocal; i++) {
        phx_step_rank_t *r = &s->local[i];
        free(r->gpus);
        if (r->exit_ev)
            event_free(r->exit_ev);
        if (r->pidfd >= 0)
            close(r->pidfd);
        for (int k = 0; k < 2; k++) {
            if (r->out_ev[k])
                event_free(r->out_ev[k]);
            if (r->fds[k] >= 0)
                close(r->fds[k]);
        }
    }
    free(s->local);
    for (int i = 0; i < s->map.nnodes; i++) {
        free(s->nodes ? s->nodes[i] : NULL);
        free(s->ranks ? s->ranks[i] : NULL);
    }
    free(s->nodes);
    free(s->nranks);
    free(s->ranks);
    free(s);
}

void phx_lstep_abort(phx_lstep_t *s, int status, bool cancel, const char *why)
{
    if (s->abort_sent)
        return;
    s->abort_sent = true;
    phx_log_notice("step %s: %s", s->nspace, why);
    phx_agentd_send(st.a,
                    json_pack("{s:s, s:I, s:i, s:s, s:b}", "type", "STEP_ABORT", "step",
                              (json_int_t)s->id, "status", status, "message", why,
                              "cancel", cancel),
                    NULL, 0);
}

/* Every local rank is gone: report, clean up. */
static void lstep_end(phx_lstep_t *s)
{
    if (s->fences > 0)
        phx_log_info("step %s: %d cross-agent fences, round trip min %.3f ms, mean "
                     "%.3f ms, max %.3f ms",
                     s->nspace, s->fences, s->fence_min * 1e3,
                     s->fence_sum * 1e3 / s->fences, s->fence_max * 1e3);
    if (s->dmodex > 0)
        phx_log_info("step %s: %d direct-modex requests", s->nspace, s->dmodex);
    /* Ranks killed with the job's task (cancel, time limit, end of the
     * script): the step was cancelled, it did not fail. */
    phx_task_t *t = phx_task_find(st.a, s->framework_id, s->task_id);
    if (!t || t->phase > PHX_TASK_RUNNING || t->kill != PHX_KILL_NONE)
        phx_lstep_abort(s, 137, true, "the job's task ended");
    phx_step_exits_t ex = {0};
    for (int i = 0; i < s->nlocal; i++) {
        phx_step_rank_t *r = &s->local[i];
        phx_step_exits_add(&ex, r->rank,
                           WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 0,
                           WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0);
    }
    json_t *h = phx_step_exits_json(&ex, s->id);
    if (h) {
        json_object_set_new(h, "user_cpu_s", json_real(s->user_s));
        json_object_set_new(h, "system_cpu_s", json_real(s->system_s));
        json_object_set_new(h, "max_rss_bytes", json_integer((json_int_t)s->max_rss));
    }
    phx_agentd_send(st.a, h, NULL, 0);
    lstep_free(s);
}

static void deliver(phx_lstep_t *s, int rank, int stream, const void *buf, size_t n)
{
    if (strcmp(s->origin, st.a->name) == 0) {
        phx_step_svc_output(s->id, rank, stream, buf, n);
        return;
    }
    phx_agentd_send(st.a,
                    json_pack("{s:s, s:I, s:i, s:i}", "type", "STEP_OUTPUT", "step",
                              (json_int_t)s->id, "rank", rank, "stream", stream),
                    buf, n);
}

/* Read what is there (all: even while its `phx run` client is behind);
 * false once the pipe is closed. */
static bool read_output(phx_step_rank_t *r, int k, bool all)
{
    char buf[PHX_STEP_OUTPUT_READ];
    bool local = strcmp(r->step->origin, st.a->name) == 0;
    for (;;) {
        if (!all && local && phx_step_svc_output_waits(r->step->id)) {
            event_del(r->out_ev[k]); /* phx_lstep_output_resume */
            return true;
        }
        ssize_t n = read(r->fds[k], buf, sizeof(buf));
        if (n > 0) {
            deliver(r->step, r->rank, k + 1, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        event_del(r->out_ev[k]);
        close(r->fds[k]); /* a terminal's master: EIO once the slave closed */
        r->fds[k] = -1;
        return false;
    }
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_step_rank_t *r = arg;
    read_output(r, r->fds[0] == fd ? 0 : 1, false);
}

void phx_lstep_output_resume(uint64_t step)
{
    phx_lstep_t *s = phx_lstep_by_id(step);
    for (int i = 0; s && i < s->nlocal; i++)
        for (int k = 0; k < 2; k++)
            if (s->local[i].fds[k] >= 0 && s->local[i].out_ev[k])
                event_add(s->local[i].out_ev[k], NULL);
}

/* A rank's CPU times count for its step and, since the rank ran in the job
 * task's cgroup, are taken out of that task's own (task.c): the batch step's
 * TotalCPU is then the script's, as Slurm's, and a job's sum of steps counts
 * every second once. */
static void add_usage(phx_lstep_t *s, const struct rusage *ru)
{
    double user = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6;
    double sys = (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
    int64_t rss = (int64_t)ru->ru_maxrss * 1024;
    s->user_s += user;
    s->system_s += sys;
    if (rss > s->max_rss)
        s->max_rss = rss;
    phx_task_t *t = phx_task_find(st.a, s->framework_id, s->task_id);
    if (t) {
        t->step_user_s += user;
        t->step_system_s += sys;
    }
}

static void on_rank_exit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_step_rank_t *r = arg;
    phx_lstep_t *s = r->step;
    int status;
    struct rusage ru;
    pid_t got = wait4(r->pid, &status, WNOHANG, &ru);
    if (got == 0)
        return;
    if (got == r->pid)
        add_usage(s, &ru);
    phx_pmix_drain(st.pmix); /* a finalize comes before the exit it preceded */
    event_del(r->exit_ev);
    r->exited = true;
    r->status = got == r->pid ? status : 0;
    for (int k = 0; k < 2; k++)
        if (r->fds[k] >= 0 && read_output(r, k, true)) {
            event_del(r->out_ev[k]);
            close(r->fds[k]);
            r->fds[k] = -1;
        }
    phx_lstep_input_close(r); /* the others read on */
    s->live--;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!s->killed && r->connected && !r->finalized) {
        char why[160];
        snprintf(why, sizeof(why), "rank %d exited without MPI_Finalize", r->rank);
        phx_lstep_abort(s, code ? code : 1, false, why);
    } else if (!s->killed && s->kill_on_bad_exit && got == r->pid && code != 0) {
        char why[160]; /* srun -K: OpenMPI's mpirun asks it for its daemons */
        snprintf(why, sizeof(why), "rank %d exited with %s %d (--kill-on-bad-exit)",
                 r->rank, WIFEXITED(status) ? "code" : "signal",
                 WIFEXITED(status) ? code : WTERMSIG(status));
        phx_lstep_abort(s, code, false, why);
    }
    if (s->live == 0 && s->spawned == s->nlocal)
        lstep_end(s);
}

static char **env_of(phx_lstep_t *s, const phx_task_t *t, const json_t *launch,
                     const phx_step_rank_t *r, int *n, phx_error_t *err)
{
    char **env = calloc(1, sizeof(*env));
    *n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(launch, "env"), k, v)
    {
        /* The caller's OMPI_MCA_* pass (ours override theirs below). */
        if (json_is_string(v) && strncmp(k, "PMIX_", 5) != 0 &&
            strncmp(k, "OMPI_COMM_WORLD_", 16) != 0 && strncmp(k, "PHX_", 4) != 0 &&
            phx_pmix_env_set(&env, n, k, json_string_value(v)) < 0)
            goto error;
    }
    /* The caller's PHX_* and GPUs describe its node: these describe this
     * one (the rank's GPUs: gpu_split.c). */
    if (phx_gpu_env_put(&env, n, t->gpus ? r->gpus : NULL) < 0 ||
        phx_pmix_env_set(&env, n, "PHX_NODE", st.a->name) < 0 ||
        phx_pmix_env_set(&env, n, "PHX_TASK_ID", t->id) < 0 ||
        phx_pmix_env_set(&env, n, "PHX_FRAMEWORK_ID", t->framework_id) < 0 ||
        phx_pmix_env_set(&env, n, "PHX_AGENT_SOCKET", st.socket) < 0)
        goto error;
    char num[16];
    snprintf(num, sizeof(num), "%d", s->number);
    if (s->number >= 0 && phx_pmix_env_set(&env, n, "PHX_STEP_ID", num) < 0)
        goto error;
    if (phx_pmix_rank_env(st.pmix, &s->map, r->rank, &env, n, err) < 0)
        goto error;
    return env;
error:
    for (int i = 0; env && i < *n; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static int spawn_rank(phx_lstep_t *s, phx_step_rank_t *r, const phx_task_t *t,
                      const json_t *launch, const json_t *cores, phx_error_t *err)
{
    json_t *jargv = json_object_get(launch, "argv");
    size_t argc = json_array_size(jargv);
    char **argv = calloc(argc + 1, sizeof(*argv));
    int nenv = 0, out[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1}, rc = -1;
    char **env = argv ? env_of(s, t, launch, r, &nenv, err) : NULL;
    phx_topo_coreset_t *set = NULL;
    struct passwd *pw = getpwuid(t->uid);
    gid_t groups[1024];
    int ngroups = 1024;
    groups[0] = t->gid;
    if (!pw || getgrouplist(pw->pw_name, t->gid, groups, &ngroups) < 0)
        ngroups = 1;
    if (!argv || !env)
        goto out;
    for (size_t i = 0; i < argc; i++)
        argv[i] = (char *)json_string_value(json_array_get(jargv, i));
    if (json_array_size(cores) > 0) {
        set = phx_topo_coreset_create(phx_topo_coreset_size(t->cores));
        size_t i;
        json_t *c;
        json_array_foreach(cores, i, c)
        {
            if (set)
                phx_topo_coreset_add(set, (int)json_integer_value(c));
        }
    }
    r->tty = s->pty.rows > 0 && r->rank == 0;
    if (r->tty) { /* out: the terminal's master and slave; inp[1] the master */
        if (phx_lstep_pty_open(s, t->uid, out, err) < 0)
            goto out;
        if ((inp[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 3)) < 0) {
            phx_error_set(err, "could not dup: %s", strerror(errno));
            goto out;
        }
    } else if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        phx_error_set(err, "could not make a pipe: %s", strerror(errno));
        goto out;
    } else if (phx_lstep_input_pipe(s, r, inp, err) < 0)
        goto out;
    const char *cwd = json_string_value(json_object_get(launch, "cwd"));
    char devices[PHX_CG_PATH];
    if (phx_task_gpu_cg_rank(t, r->gpus, devices, sizeof(devices), err) < 0)
        goto out;
    pid_t pid = fork();
    if (pid < 0) {
        phx_error_set(err, "could not fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        phx_lstep_exec_rank(s, r, t, devices, set, argv, env, cwd, groups, ngroups, out,
                            errp, inp);
    if (!r->tty) /* as the child does: its group exists for kill(-pid); a
                  * terminal's rank makes its own session (setsid would
                  * fail in a group made here) */
        setpgid(pid, pid);
    phx_lstep_input_started(r, inp);
    r->pid = pid;
    r->fds[0] = out[0];
    r->fds[1] = errp[0];
    out[0] = errp[0] = -1;
    r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (int k = 0; k < 2 && r->fds[k] >= 0; k++) { /* a terminal: one */
        fcntl(r->fds[k], F_SETFL, O_NONBLOCK);
        r->out_ev[k] =
            event_new(st.a->base, r->fds[k], EV_READ | EV_PERSIST, on_output, r);
        event_add(r->out_ev[k], NULL);
    }
    r->exit_ev = event_new(st.a->base, r->pidfd, EV_READ | EV_PERSIST, on_rank_exit, r);
    if (r->pidfd < 0 || !r->exit_ev || event_add(r->exit_ev, NULL) < 0) {
        phx_error_set(err, "could not watch rank %d: %s", r->rank, strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, &r->status, 0);
        r->exited = true;
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (inp[i] >= 0)
            close(inp[i]);
    }
    phx_topo_coreset_destroy(set);
    for (int i = 0; env && i < nenv; i++)
        free(env[i]);
    free(env);
    free(argv);
    return rc;
}

/* The map from STEP_LAUNCH: nodes, ranks per node, this node. */
static int parse_map(phx_lstep_t *s, const json_t *h, const phx_task_t *t,
                     phx_error_t *err)
{
    json_t *nodes = json_object_get(h, "nodes"), *ranks = json_object_get(h, "ranks");
    int nn = (int)json_array_size(nodes);
    long long node = -1, size = 0;
    if (nn < 1 || (int)json_array_size(ranks) != nn ||
        phx_json_int(h, "node", true, 0, nn - 1, &node, err) < 0 ||
        phx_json_int(h, "size", true, 1, 1 << 20, &size, err) < 0)
        return phx_error_set(err, "malformed step map");
    s->nodes = calloc((size_t)nn, sizeof(char *));
    s->nranks = calloc((size_t)nn, sizeof(int));
    s->ranks = calloc((size_t)nn, sizeof(int *));
    if (!s->nodes || !s->nranks || !s->ranks)
        return phx_error_set(err, "out of memory");
    s->map.nnodes = nn;
    for (int i = 0; i < nn; i++) {
        json_t *rl = json_array_get(ranks, (size_t)i);
        s->nodes[i] = strdup(json_string_value(json_array_get(nodes, (size_t)i)) ?: "");
        s->nranks[i] = (int)json_array_size(rl);
        s->ranks[i] = calloc((size_t)s->nranks[i] + 1, sizeof(int));
        if (!s->nodes[i] || !s->ranks[i])
            return phx_error_set(err, "out of memory");
        for (int k = 0; k < s->nranks[i]; k++)
            s->ranks[i][k] = (int)json_integer_value(json_array_get(rl, (size_t)k));
    }
    s->map.nspace = s->nspace;
    s->map.size = (int)size;
    s->map.nodes = (const char *const *)s->nodes;
    s->map.nranks = s->nranks;
    s->map.ranks = (const int *const *)s->ranks;
    s->map.node = (int)node;
    s->map.uid = t->uid;
    s->map.gid = t->gid;
    s->map.oversubscribed = json_is_true(json_object_get(h, "oversubscribed"));
    s->nlocal = s->nranks[node];
    return 0;
}

static void kill_ranks(phx_lstep_t *s)
{
    s->killed = true;
    for (int i = 0; i < s->nlocal; i++)
        if (!s->local[i].exited && s->local[i].pid > 0) {
            kill(-s->local[i].pid, SIGKILL);
            kill(s->local[i].pid, SIGKILL);
        }
}

int phx_lstep_signal_task(const char *framework_id, const char *task_id, int sig)
{
    const phx_task_t *t = phx_task_find(st.a, framework_id, task_id);
    pid_t groups[256];
    int n = 0, sent = 0, found = 0;
    for (phx_lstep_t *s = st.steps; t && s; s = s->next) {
        if (s->killed || strcmp(s->framework_id, framework_id) != 0 ||
            strcmp(s->task_id, task_id) != 0)
            continue;
        for (int i = 0; i < s->nlocal; i++) {
            if (s->local[i].exited || s->local[i].pid <= 0)
                continue;
            groups[n++] = s->local[i].pid;
            found++;
            if (n == (int)(sizeof(groups) / sizeof(groups[0]))) {
                sent += phx_signal_groups_as(t->uid, t->gid, groups, n, sig);
                n = 0;
            }
        }
    }
    /* as the job's user: a setuid-root program in a rank's group is left
     * alone, as a signal of the user's own would be */
    if (t && n)
        sent += phx_signal_groups_as(t->uid, t->gid, groups, n, sig);
    /* ranks there, none signalled (gone meanwhile, or not the user's): not
     * "no step" */
    return found > 0 && sent == 0 ? -1 : sent;
}

void phx_lstep_kill(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    phx_lstep_t *s = phx_lstep_by_id(
        (uint64_t)json_integer_value(json_object_get(f->header, "step")));
    if (s)
        kill_ranks(s);
}

/* Ranks outside the task's cgroup (no cgroups here) would outlive it. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_lstep_t *s = arg;
    phx_task_t *t = phx_task_find(st.a, s->framework_id, s->task_id);
    if (s->killed || (t && t->phase <= PHX_TASK_RUNNING))
        return;
    phx_lstep_abort(s, 137, true, "the job's task ended");
    kill_ranks(s);
}

/* A launch that cannot run here: every local rank failed. */
static void launch_failed(phx_agentd_t *a, uint64_t id, const json_t *h,
                          const char *why)
{
    phx_log_warnx("step %llu: %s", (unsigned long long)id, why);
    json_t *rl = json_array_get(json_object_get(h, "ranks"),
                                (size_t)json_integer_value(json_object_get(h, "node")));
    phx_step_exits_t ex = {0};
    size_t i;
    json_t *v;
    json_array_foreach(rl, i, v)
    {
        phx_step_exits_add(&ex, (int)json_integer_value(v), 127, 0);
    }
    phx_agentd_send(a,
                    json_pack("{s:s, s:I, s:i, s:s}", "type", "STEP_ABORT", "step",
                              (json_int_t)id, "status", 127, "message", why),
                    NULL, 0);
    phx_agentd_send(a, phx_step_exits_json(&ex, id), NULL, 0);
}

/* Local ranks started per loop pass: a fork of the agent and a rank's
 * pipes take milliseconds, and the 1024 ranks a node may get took seconds
 * (the agent's heartbeats stopped meanwhile: four such steps at once made
 * the master declare the node lost, and kill every job on it). */
#define SPAWN_BATCH 32

/* Start the next SPAWN_BATCH local ranks of s; the others on a later loop
 * pass.  A rank not started because the step was killed meanwhile (or its
 * task ended) counts as killed by SIGKILL. */
static void spawn_ranks(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_lstep_t *s = arg;
    phx_task_t *t = phx_task_find(st.a, s->framework_id, s->task_id);
    json_t *cores = json_object_get(s->launch, "cores");
    phx_error_t err;
    for (int n = 0; s->spawned < s->nlocal && n < SPAWN_BATCH; n++) {
        int k = s->spawned++;
        phx_step_rank_t *r = &s->local[k];
        if (s->killed || !t || t->phase > PHX_TASK_RUNNING) {
            r->exited = true;
            r->status = SIGKILL;
            continue;
        }
        if (spawn_rank(s, r, t, s->launch, json_array_get(cores, (size_t)k), &err) <
            0) {
            r->exited = true;
            r->status = 127 << 8;
            char why[PHX_ERROR_TEXT_MAX + 40];
            snprintf(why, sizeof(why), "rank %d: %s", r->rank, err.text);
            phx_lstep_abort(s, 127, false, why);
            continue;
        }
        s->live++;
    }
    struct timeval zero = {0, 0};
    if (s->spawned < s->nlocal && !s->killed && s->spawn_ev &&
        evtimer_add(s->spawn_ev, &zero) == 0)
        return;
    for (int k = s->spawned; k < s->nlocal; k++) { /* could not wait: given up */
        s->local[k].exited = true;
        s->local[k].status = SIGKILL;
    }
    s->spawned = s->nlocal;
    json_decref(s->launch);
    s->launch = NULL;
    phx_log_info("step %s: %d local ranks started for %s", s->nspace, s->live,
                 s->origin);
    if (s->live == 0)
        lstep_end(s);
}

static void launch(phx_agentd_t *a, const json_t *h)
{
    phx_error_t err;
    long long id = 0;
    const char *nspace, *origin, *fw_id, *task_id;
    if (phx_json_int(h, "step", true, 1, INT64_MAX, &id, &err) < 0 ||
        phx_json_str(h, "nspace", true, &nspace, &err) < 0 ||
        phx_json_str(h, "origin", true, &origin, &err) < 0 ||
        phx_json_str(h, "framework_id", true, &fw_id, &err) < 0 ||
        phx_json_str(h, "task_id", true, &task_id, &err) < 0) {
        phx_log_warnx("malformed STEP_LAUNCH ignored: %s", err.text);
        return;
    }
    phx_task_t *t = phx_task_find(a, fw_id, task_id);
    if (!st.pmix || !t || t->phase > PHX_TASK_RUNNING) {
        launch_failed(a, (uint64_t)id, h,
                      !st.pmix ? "this agent has no PMIx server"
                               : "the job's task does not run here");
        return;
    }
    phx_lstep_t *s = calloc(1, sizeof(*s));
    if (!s) {
        launch_failed(a, (uint64_t)id, h, "out of memory");
        return;
    }
    s->id = (uint64_t)id;
    s->number = -1;
    s->input = PHX_STEP_INPUT_NONE;
    if (json_object_get(h, "pty") && !json_is_null(json_object_get(h, "pty")) &&
        phx_winsize_parse(json_object_get(h, "pty"), &s->pty, &err) < 0)
        phx_log_warnx("step %lld: rank 0 gets no terminal: %s", id, err.text);
    if (json_is_integer(json_object_get(h, "input")))
        s->input = (int)json_integer_value(json_object_get(h, "input"));
    s->kill_on_bad_exit = json_is_true(json_object_get(h, "kill_on_bad_exit"));
    if (json_is_integer(json_object_get(h, "number")))
        s->number = (int)json_integer_value(json_object_get(h, "number"));
    snprintf(s->nspace, sizeof(s->nspace), "%s", nspace);
    snprintf(s->origin, sizeof(s->origin), "%s", origin);
    snprintf(s->framework_id, sizeof(s->framework_id), "%s", fw_id);
    snprintf(s->task_id, sizeof(s->task_id), "%s", task_id);
    s->next = st.steps;
    st.steps = s;
    struct timeval sec = {1, 0};
    if ((s->watch_ev = event_new(a->base, -1, EV_PERSIST, on_watch, s)))
        event_add(s->watch_ev, &sec);
    bool bad = parse_map(s, h, t, &err) < 0;
    if (!bad && !(s->local = calloc((size_t)s->nlocal + 1, sizeof(*s->local))))
        bad = phx_error_set(&err, "out of memory") < 0;
    for (int i = 0; !bad && i <= s->nlocal; i++) /* none open: none closed on failure */
        s->local[i].pidfd = s->local[i].fds[0] = s->local[i].fds[1] =
            s->local[i].in_fd = -1;
    if (bad || phx_lstep_gpus(s, t, h, &err) < 0 ||
        phx_pmix_step_register(st.pmix, &s->map, &err) < 0) {
        launch_failed(a, s->id, h, err.text);
        lstep_free(s);
        return;
    }
    s->registered = true;
    if (json_integer_value(json_object_get(h, "req")) > 0 &&
        strcmp(origin, a->name) == 0)
        phx_step_on_started(a, (uint64_t)json_integer_value(json_object_get(h, "req")),
                            s->id, s->number, s->map.size,
                            json_object_get(h, "input_to"));
    for (int k = 0; k < s->nlocal; k++) {
        s->local[k].step = s;
        s->local[k].rank = s->ranks[s->map.node][k];
        s->local[k].local = k;
    }
    s->launch = json_incref((json_t *)h);
    if (!(s->spawn_ev = evtimer_new(a->base, spawn_ranks, s))) {
        phx_lstep_abort(s, 1, false, "out of memory for starting its ranks");
        s->killed = true; /* none starts: the step ends at once */
    }
    spawn_ranks(-1, 0, s);
}

void phx_lstep_launch(phx_agentd_t *a, const phx_frame_t *f)
{
    phx_error_t err;
    json_t *h = phx_lstep_launch_join(f, &err),
           *id = json_object_get(f->header, "step");
    if (h)
        launch(a, h);
    else if (json_is_integer(id) && json_integer_value(id) > 0)
        launch_failed(a, (uint64_t)json_integer_value(id), f->header, err.text);
    json_decref(h);
}

/* STEP_STARTED: a step of a `phx run` here has no rank here (-w, -x). */
static void on_started_elsewhere(phx_agentd_t *a, const phx_frame_t *f)
{
    const json_t *h = f->header;
    long long id, req, number, size;
    phx_error_t err;
    if (phx_json_int(h, "step", true, 1, INT64_MAX, &id, &err) < 0 ||
        phx_json_int(h, "req", true, 1, INT64_MAX, &req, &err) < 0 ||
        phx_json_int(h, "number", true, -1, INT32_MAX, &number, &err) < 0 ||
        phx_json_int(h, "size", true, 0, INT32_MAX, &size, &err) < 0) {
        phx_log_warnx("malformed STEP_STARTED ignored: %s", err.text);
        return;
    }
    phx_step_on_started(a, (uint64_t)req, (uint64_t)id, (int)number, (int)size,
                        json_object_get(h, "input_to"));
}

void phx_agentd_on_step(phx_agentd_t *a, const phx_frame_t *f)
{
    static const struct {
        const char *type;
        void (*fn)(phx_agentd_t *, const phx_frame_t *);
    } table[] = {
        {"STEP_LAUNCH", phx_lstep_launch},
        {"STEP_KILL", phx_lstep_kill},
        {"STEP_REFUSED", phx_step_on_refused},
        {"STEP_STARTED", on_started_elsewhere},
        {"STEP_DONE", phx_step_on_done},
        {"STEP_OUTPUT", phx_step_on_output},
        {"STEP_INPUT", phx_step_on_input},
        {"STEP_INPUT_ACK", phx_step_on_input_ack},
        {"STEP_WINSIZE", phx_step_on_winsize},
        {"FENCE_DONE", phx_step_on_fence_done},
        {"DMODEX_REQ", phx_step_on_dmodex_req},
        {"DMODEX_DONE", phx_step_on_dmodex_done},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(f->type, table[i].type) == 0) {
            table[i].fn(a, f);
            return;
        }
}

/* Without the master a step can neither fence nor end: kill it, tell its
 * `phx run`. */
void phx_agentd_steps_link_lost(phx_agentd_t *a)
{
    (void)a;
    for (phx_lstep_t *s = st.steps; s; s = s->next)
        if (!s->killed) {
            phx_log_notice("step %s: lost the master; killing its local ranks",
                           s->nspace);
            kill_ranks(s);
        }
    phx_step_svc_fail_all("lost the master during the step");
}

int phx_agentd_steps_start(phx_agentd_t *a, phx_error_t *err)
{
    st.a = a;
    const char *dir = phx_conf_str(a->conf, "agent.state_dir");
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s/pmix", dir);
    snprintf(st.socket, sizeof(st.socket), "%s/step.sock", dir);
    if (!(st.pmix = phx_pmix_create(a->base, a->name, tmp, &phx_step_pmix_ops, a, err)))
        phx_log_warnx("MPI steps are disabled on this agent: %s", err->text);
    if (phx_step_svc_start(a, st.socket, err) < 0) {
        phx_pmix_destroy(st.pmix);
        st.pmix = NULL;
        st.socket[0] = '\0';
        return -1;
    }
    return 0;
}

void phx_agentd_steps_stop(phx_agentd_t *a)
{
    (void)a;
    phx_step_svc_stop();
    while (st.steps) {
        phx_lstep_t *s = st.steps;
        for (int i = 0; i < s->nlocal; i++)
            if (!s->local[i].exited && s->local[i].pid > 0)
                kill(-s->local[i].pid, SIGKILL);
        lstep_free(s);
    }
    phx_step_pmix_clear();
    phx_pmix_destroy(st.pmix);
    st.pmix = NULL;
    st.socket[0] = '\0';
}
