/* phx-agent: start a task under its shim.
 *
 * The shim (daemons/agent/shim/shim.c, the phx-shim program next to
 * phx-agent) supervises one task: it forks the task's process, records its
 * exit and outlives the agent.  The agent makes the plan here (argv, the
 * clean environment, the user's groups, PUs, cgroup files, output paths, a
 * script), writes it to a memfd and posix_spawns the shim in its own session
 * with the plan on fd 3 and a notify pipe on fd 4.  posix_spawn does not
 * copy the agent's address space, which a fork did for every task (half of
 * the agent's CPU under load).  The shim tells the agent "R <pid>" once the
 * task's exec succeeded; the agent watches the shim with a pidfd. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/shim/proc_start.h"
#include "daemons/agent/task.h"
#include "daemons/agent/users.h"
#include "lib/json.h"

#define PLAN_FD   3 /* the shim's descriptors (shim.c) */
#define NOTIFY_FD 4

/* Everything the forked processes need, made before fork. */
typedef struct plan {
    phx_task_t *t;
    char **argv, **envp;
    int nenv, capenv;
    const char *cwd;
    const char *script; /* or NULL: execvp argv[0] */
    char out[PATH_MAX], err[PATH_MAX];
    const gid_t *groups;
    int ngroups;
} plan_t;

unsigned long long phx_exec_proc_start(pid_t pid)
{
    return phx_proc_start(pid);
}

static int env_set(plan_t *pl, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *kv = malloc(klen + strlen(value) + 2);
    if (!kv)
        return -1;
    sprintf(kv, "%s=%s", key, value);
    for (int i = 0; i < pl->nenv; i++)
        if (strncmp(pl->envp[i], key, klen) == 0 && pl->envp[i][klen] == '=') {
            free(pl->envp[i]);
            pl->envp[i] = kv;
            return 0;
        }
    if (pl->nenv + 1 >= pl->capenv) {
        int cap = pl->capenv ? 2 * pl->capenv : 32;
        char **m = realloc(pl->envp, (size_t)cap * sizeof(*m));
        if (!m) {
            free(kv);
            return -1;
        }
        pl->envp = m;
        pl->capenv = cap;
    }
    pl->envp[pl->nenv++] = kv;
    pl->envp[pl->nenv] = NULL;
    return 0;
}

static int env_setf(plan_t *pl, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int env_setf(plan_t *pl, const char *key, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return env_set(pl, key, buf);
}

static void plan_clear(plan_t *pl)
{
    for (int i = 0; pl->envp && i < pl->nenv; i++)
        free(pl->envp[i]);
    free(pl->envp);
    free(pl->argv);
}

/* Clean environment: the user's basics, the task's variables, then ours. */
static int plan_env(plan_t *pl, const phx_user_t *pw)
{
    phx_task_t *t = pl->t;
    json_t *env = json_object_get(t->spec, "env"), *v;
    const char *key;
    if (env_set(pl, "PATH", "/usr/local/bin:/usr/bin:/bin") < 0 ||
        env_set(pl, "HOME", pw->dir) < 0 || env_set(pl, "USER", pw->name) < 0 ||
        env_set(pl, "LOGNAME", pw->name) < 0 || env_set(pl, "SHELL", pw->shell) < 0)
        return -1;
    json_object_foreach(env, key,
                        v) if (env_set(pl, key, json_string_value(v)) < 0) return -1;
    char *cores = phx_topo_coreset_str(t->cores);
    const char *numas = json_string_value(json_object_get(t->spec, "numas"));
    int rc = env_set(pl, "PHX_TASK_ID", t->id) < 0 ||
                     env_set(pl, "PHX_FRAMEWORK_ID", t->framework_id) < 0 ||
                     env_setf(pl, "PHX_GANG_ID", "%lld",
                              (long long)json_integer_value(
                                  json_object_get(t->spec, "gang_id"))) < 0 ||
                     env_set(pl, "PHX_NODE", t->a->name) < 0 ||
                     env_setf(pl, "PHX_CPUS_ON_NODE", "%d",
                              phx_topo_coreset_count(t->cores)) < 0 ||
                     env_set(pl, "PHX_CORES", cores ? cores : "") < 0 ||
                     env_set(pl, "PHX_CPUSET", t->cpus) < 0 ||
                     env_set(pl, "PHX_NUMAS", numas ? numas : "") < 0 ||
                     env_setf(pl, "PHX_MEM_LIMIT", "%lld", t->memory) < 0 ||
                     env_setf(pl, "PHX_TIME_LIMIT", "%lld", t->time_limit) < 0 ||
                     (*phx_agentd_step_socket() &&
                      env_set(pl, "PHX_AGENT_SOCKET", phx_agentd_step_socket()) < 0)
                 ? -1
                 : 0;
    /* Its GPUs by index in the node's GPU order, which is PCI order (doc/agent.md). */
    for (size_t i = 0; rc == 0 && t->gpus && i < PHX_GPU_ENV_VARS; i++)
        rc = env_set(pl, phx_gpu_env_vars[i], t->gpus);
    if (rc == 0 && t->gpus)
        rc = env_set(pl, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    free(cores);
    return rc;
}

/* Output paths: null means <state_dir>/tasks/<key>/{stdout,stderr}, in a
 * folder the agent makes for the user. */
static int plan_outputs(plan_t *pl, const phx_user_t *pw, phx_error_t *err)
{
    phx_task_t *t = pl->t;
    const char *out = json_string_value(json_object_get(t->spec, "stdout"));
    const char *errp = json_string_value(json_object_get(t->spec, "stderr"));
    if (!out || !errp) {
        char dir[PATH_MAX - 16];
        snprintf(dir, sizeof(dir), "%s/%s", t->a->outputs_dir, t->key);
        if (phx_rec_mkdir(dir, 0700, err) < 0)
            return -1;
        if (chown(dir, t->uid, t->gid) < 0)
            return phx_error_set(err, "could not give \"%s\" to user %s: %s", dir,
                                 pw->name, strerror(errno));
        snprintf(pl->out, sizeof(pl->out), "%s/stdout", dir);
        snprintf(pl->err, sizeof(pl->err), "%s/stderr", dir);
    }
    if (out)
        snprintf(pl->out, sizeof(pl->out), "%s", out);
    if (errp)
        snprintf(pl->err, sizeof(pl->err), "%s", errp);
    return 0;
}

static int plan_make(plan_t *pl, phx_task_t *t, const phx_user_t *pw, phx_error_t *err)
{
    memset(pl, 0, sizeof(*pl));
    pl->t = t;
    json_t *argv = json_object_get(t->spec, "argv");
    size_t n = json_array_size(argv);
    if (!(pl->argv = calloc(n + 1, sizeof(char *))))
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        pl->argv[i] = (char *)json_string_value(json_array_get(argv, i));
    pl->script = json_string_value(json_object_get(t->spec, "script"));
    pl->cwd = json_string_value(json_object_get(t->spec, "cwd"));
    if (!pl->cwd || !*pl->cwd)
        pl->cwd = pw->dir;
    if (plan_env(pl, pw) < 0)
        return phx_error_set(err, "out of memory");
    pl->groups = pw->groups; /* made for t->gid (check_user) */
    pl->ngroups = pw->ngroups;
    return plan_outputs(pl, pw, err);
}

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* The plan as the shim reads it: NUL-terminated key and value strings. */
typedef struct planbuf {
    char *data;
    size_t len, cap;
    bool failed;
} planbuf_t;

static void put(planbuf_t *b, const char *key, const char *value)
{
    size_t kl = strlen(key) + 1, vl = strlen(value) + 1;
    if (b->failed)
        return;
    if (b->len + kl + vl > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + kl + vl)
            cap *= 2;
        char *m = realloc(b->data, cap);
        if (!m) {
            b->failed = true;
            return;
        }
        b->data = m;
        b->cap = cap;
    }
    memcpy(b->data + b->len, key, kl);
    memcpy(b->data + b->len + kl, value, vl);
    b->len += kl + vl;
}

static void putf(planbuf_t *b, const char *key, long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", v);
    put(b, key, num);
}

static int plan_encode(const plan_t *pl, planbuf_t *b)
{
    phx_task_t *t = pl->t;
    put(b, "dir", t->dir);
    put(b, "sync", phx_rec_get_sync() ? "1" : "0");
    putf(b, "uid", (long long)t->uid);
    putf(b, "gid", (long long)t->gid);
    for (int i = 0; i < pl->ngroups; i++)
        putf(b, "group", (long long)pl->groups[i]);
    if (t->cpus)
        put(b, "cpus", t->cpus);
    if (t->has_cgroup) {
        static char files[PHX_CG_MAX_HIER][PHX_CG_PATH];
        int n = t->a->cg->ops->procs_files(t->a->cg, t->key, files, PHX_CG_MAX_HIER);
        if (n != (t->a->cg->mode == PHX_CG_V1 ? t->a->cg->nmounts : 1))
            return -2; /* a path too long: never run outside the cgroups */
        for (int i = 0; i < n; i++)
            put(b, "cgroup", files[i]);
    }
    if (t->gpu_cg) /* devices: the node's other GPUs denied (gpu.c) */
        put(b, "cgroup", t->gpu_cg);
    if (pl->cwd)
        put(b, "cwd", pl->cwd);
    put(b, "out", pl->out);
    put(b, "err", pl->err);
    if (json_is_true(json_object_get(pl->t->spec, "append")))
        put(b, "append", "1");
    if (pl->script)
        put(b, "script", pl->script);
    for (int i = 0; pl->argv[i]; i++)
        put(b, "arg", pl->argv[i]);
    for (int i = 0; i < pl->nenv; i++)
        put(b, "env", pl->envp[i]);
    return b->failed ? -1 : 0;
}

/* A memfd holding the plan, at offset 0. */
static int plan_fd(const plan_t *pl, phx_error_t *err)
{
    planbuf_t b = {0};
    int rc = plan_encode(pl, &b);
    if (rc < 0) {
        free(b.data);
        return phx_error_set(err, rc == -2 ? "a cgroup path of the task is too long"
                                           : "out of memory");
    }
    /* data, never code: sealed non-executable where the kernel knows how
     * (6.3+, which otherwise logs a warning about the missing flag) */
    int fd = memfd_create("phx-plan", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("phx-plan", MFD_CLOEXEC);
    size_t off = 0;
    while (fd >= 0 && off < b.len) {
        ssize_t n = pwrite(fd, b.data + off, b.len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    free(b.data);
    if (fd < 0 || off < b.len) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return phx_error_set(err, "could not write the shim's plan: %s", strerror(e));
    }
    return fd;
}

/* phx-shim next to our own executable. */
static const char *shim_path(phx_error_t *err)
{
    static char path[PATH_MAX];
    if (*path)
        return path;
    char self[PATH_MAX - 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return phx_error_set(err, "could not read /proc/self/exe: %s", strerror(errno)),
               NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    char found[PATH_MAX];
    snprintf(found, sizeof(found), "%s/phx-shim", self);
    /* it runs as root with every task's plan: ours, and only ours to change */
    struct stat st;
    if (stat(found, &st) < 0)
        return phx_error_set(err, "no shim %s: %s", found, strerror(errno)), NULL;
    if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
        (st.st_mode & (S_IWGRP | S_IWOTH)))
        return phx_error_set(
                   err,
                   "shim %s must be a file owned by root (or the agent's user) "
                   "that no one else may write",
                   found),
               NULL;
    memcpy(path, found, sizeof(path));
    return path;
}

static int spawn_shim(const char *shim, int planfd, int notify, pid_t *pid,
                      phx_error_t *err)
{
    /* Both above 2..4 first, so that neither dup2 below overwrites the other
     * (dup2 clears close-on-exec on the copies: the shim gets fds 3 and 4);
     * in the running agent they are above already (its event loop's and
     * connections' descriptors come first): no copies then. */
    bool above = planfd > NOTIFY_FD && notify > NOTIFY_FD;
    int p = above ? planfd : fcntl(planfd, F_DUPFD_CLOEXEC, 10);
    int n = above ? notify : fcntl(notify, F_DUPFD_CLOEXEC, 10);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int rc = p < 0 || n < 0 ? errno : 0;
    if (rc == 0 && (rc = posix_spawn_file_actions_init(&fa)) == 0) {
        if ((rc = posix_spawnattr_init(&at)) == 0) {
            if ((rc = posix_spawn_file_actions_adddup2(&fa, p, PLAN_FD)) == 0 &&
                (rc = posix_spawn_file_actions_adddup2(&fa, n, NOTIFY_FD)) == 0 &&
                (rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
                                                        POSIX_SPAWN_SETSIGMASK |
                                                        POSIX_SPAWN_SETSIGDEF)) == 0 &&
                (rc = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
                (rc = posix_spawnattr_setsigdefault(&at, &all)) == 0) {
                char *argv[] = {"phx-shim", NULL}, *envp[] = {NULL};
                rc = posix_spawn(pid, shim, &fa, &at, argv, envp);
            }
            posix_spawnattr_destroy(&at);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    if (p >= 0 && !above)
        close(p);
    if (n >= 0 && !above)
        close(n);
    if (rc != 0)
        return phx_error_set(err, "could not start the shim %s: %s", shim,
                             strerror(rc));
    return 0;
}

int phx_exec_spawn(phx_task_t *t, const phx_user_t *pw, phx_error_t *err)
{
    plan_t pl = {0};
    int nfd[2] = {-1, -1}, planfd = -1;
    const char *shim = shim_path(err);
    pid_t pid;
    if (!shim || plan_make(&pl, t, pw, err) < 0 || (planfd = plan_fd(&pl, err)) < 0)
        goto error;
    /* Non-blocking for the agent's loop (the shim writes one line to it,
     * never more than the pipe holds): no fcntl to make it so. */
    if (pipe2(nfd, O_CLOEXEC | O_NONBLOCK) < 0) {
        phx_error_set(err, "could not make a pipe: %s", strerror(errno));
        goto error;
    }
    if (spawn_shim(shim, planfd, nfd[1], &pid, err) < 0)
        goto error;
    close(nfd[1]);
    close(planfd);
    plan_clear(&pl);
    t->shim = pid;
    t->shim_start = 0; /* read only if it must be polled (phx_task_watch_shim) */
    t->notify_fd = nfd[0];
    return 0;
error:
    if (nfd[0] >= 0) {
        close(nfd[0]);
        close(nfd[1]);
    }
    if (planfd >= 0)
        close(planfd);
    plan_clear(&pl);
    return -1;
}
