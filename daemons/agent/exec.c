/* phx-agent: start a task under its shim.
 *
 * The agent forks the shim: a copy of the agent (no exec: it runs the code
 * below and nothing else) in its own session, so that neither a kill of the
 * agent's process group nor the agent's death touches it.  The shim writes
 * its pid and start time into the task's records ("shim"), forks the task's
 * process, which joins the task's cgroup, binds itself with hwloc, becomes
 * the user and execs the program.  Set-up errors come back to the shim over
 * a close-on-exec pipe.  The shim tells the agent "R <pid>" once the exec
 * succeeded, waits for the program and writes its wait status and resource
 * usage to the records ("exit", atomically) before it exits: the exit status
 * survives the agent's death.  The agent watches the shim with a pidfd. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/task.h"
#include "lib/json.h"
#include "topology/bind.h"

/* Everything the forked processes need, made before fork. */
typedef struct plan {
    phx_task_t *t;
    char **argv, **envp;
    int nenv, capenv;
    const char *cwd;
    const char *script; /* or NULL: execvp argv[0] */
    char out[PATH_MAX], err[PATH_MAX];
    gid_t groups[4096];
    int ngroups;
    cpu_set_t *pus; /* t->cpus, for sched_setaffinity in the child */
    size_t pus_size;
} plan_t;

unsigned long long phx_exec_proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    /* After "pid (comm)": state is field 3, starttime field 22. */
    char state = p[2];
    if (state == 'Z' || state == 'X')
        return 0;
    p += 2;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
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
    if (pl->pus)
        CPU_FREE(pl->pus);
}

/* The PUs the task binds to, from the list the agent computed for its cgroup
 * (the same mapping phx_topo_bind applies): binding with it in the child
 * costs one system call, where phx_topo_bind would load this machine's
 * topology again in every task. */
static int plan_pus(plan_t *pl, phx_error_t *err)
{
    int *ids = NULL, n = 0, max = 0;
    if (!pl->t->cpus)
        return 0; /* the child falls back on phx_topo_bind */
    if (phx_rec_parse_list(pl->t->cpus, 1 << 20, &ids, &n) < 0 || n == 0) {
        free(ids);
        return phx_error_set(err, "bad PU list \"%s\"", pl->t->cpus);
    }
    for (int i = 0; i < n; i++)
        if (ids[i] > max)
            max = ids[i];
    if (!(pl->pus = CPU_ALLOC(max + 1))) {
        free(ids);
        return phx_error_set(err, "out of memory");
    }
    pl->pus_size = CPU_ALLOC_SIZE(max + 1);
    CPU_ZERO_S(pl->pus_size, pl->pus);
    for (int i = 0; i < n; i++)
        CPU_SET_S(ids[i], pl->pus_size, pl->pus);
    free(ids);
    return 0;
}

/* Clean environment: the user's basics, the task's variables, then ours. */
static int plan_env(plan_t *pl, const struct passwd *pw)
{
    phx_task_t *t = pl->t;
    json_t *env = json_object_get(t->spec, "env"), *v;
    const char *key;
    if (env_set(pl, "PATH", "/usr/local/bin:/usr/bin:/bin") < 0 ||
        env_set(pl, "HOME", pw->pw_dir) < 0 || env_set(pl, "USER", pw->pw_name) < 0 ||
        env_set(pl, "LOGNAME", pw->pw_name) < 0 ||
        env_set(pl, "SHELL", pw->pw_shell) < 0)
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
    free(cores);
    return rc;
}

/* Output paths: null means <state_dir>/tasks/<key>/{stdout,stderr}, in a
 * folder the agent makes for the user. */
static int plan_outputs(plan_t *pl, const struct passwd *pw, phx_error_t *err)
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
                                 pw->pw_name, strerror(errno));
        snprintf(pl->out, sizeof(pl->out), "%s/stdout", dir);
        snprintf(pl->err, sizeof(pl->err), "%s/stderr", dir);
    }
    if (out)
        snprintf(pl->out, sizeof(pl->out), "%s", out);
    if (errp)
        snprintf(pl->err, sizeof(pl->err), "%s", errp);
    return 0;
}

static int plan_make(plan_t *pl, phx_task_t *t, const struct passwd *pw,
                     phx_error_t *err)
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
        pl->cwd = pw->pw_dir;
    if (plan_env(pl, pw) < 0)
        return phx_error_set(err, "out of memory");
    pl->ngroups = (int)(sizeof(pl->groups) / sizeof(*pl->groups));
    if (getgrouplist(pw->pw_name, t->gid, pl->groups, &pl->ngroups) < 0)
        return phx_error_set(err, "user %s is in too many groups", pw->pw_name);
    if (plan_pus(pl, err) < 0)
        return -1;
    return plan_outputs(pl, pw, err);
}

static void fail(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(int fd, const char *fmt, ...)
{
    char buf[PHX_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t w =
            write(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
        (void)w;
    }
    _exit(127);
}

static int open_output(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* A read-only descriptor of a memfd holding script, for fexecve; it stays
 * open across the exec (the interpreter opens /dev/fd/N). */
static int script_fd(const char *script)
{
    int fd = memfd_create("phx-script", MFD_CLOEXEC | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* kernels before 6.3 */
        fd = memfd_create("phx-script", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(script), off = 0;
    while (off < len) {
        ssize_t n = write(fd, script + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY);
    int e = errno;
    close(fd);
    errno = e;
    return ro;
}

/* The task's process, from fork to exec; never returns. */
static void run_child(plan_t *pl, int errfd)
{
    phx_task_t *t = pl->t;
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (t->has_cgroup && t->a->cg->ops->join(t->a->cg, t->key, getpid()) < 0)
        fail(errfd, "could not join cgroup %s: %s", t->key, strerror(errno));
    phx_error_t err;
    if (pl->pus ? sched_setaffinity(0, pl->pus_size, pl->pus) < 0
                : phx_topo_bind(t->a->topo, t->cores, &err) < 0)
        fail(errfd, "could not bind to cores: %s",
             pl->pus ? strerror(errno) : err.text);
    if (setgroups((size_t)pl->ngroups, pl->groups) < 0)
        fail(errfd, "could not set the supplementary groups: %s", strerror(errno));
    if (setgid(t->gid) < 0)
        fail(errfd, "could not set gid %d: %s", (int)t->gid, strerror(errno));
    if (setuid(t->uid) < 0)
        fail(errfd, "could not set uid %d: %s", (int)t->uid, strerror(errno));
    if (t->uid != 0 && setuid(0) == 0)
        fail(errfd, "could regain root after dropping it");
    umask(022);
    if (pl->cwd && chdir(pl->cwd) < 0)
        fail(errfd, "could not change to directory \"%s\": %s", pl->cwd,
             strerror(errno));
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open_output(pl->out);
    if (out < 0)
        fail(errfd, "could not open stdout \"%s\": %s", pl->out, strerror(errno));
    int errout = strcmp(pl->out, pl->err) == 0 ? out : open_output(pl->err);
    if (errout < 0)
        fail(errfd, "could not open stderr \"%s\": %s", pl->err, strerror(errno));
    if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errout, 2) < 0)
        fail(errfd, "could not set up standard streams: %s", strerror(errno));
    extern char **environ;
    if (pl->script) {
        int sfd = script_fd(pl->script);
        if (sfd < 0)
            fail(errfd, "could not hold the script in memory: %s", strerror(errno));
        fexecve(sfd, pl->argv, pl->envp);
        fail(errfd, "could not execute the script: %s", strerror(errno));
    }
    environ = pl->envp;
    execvp(pl->argv[0], pl->argv);
    fail(errfd, "could not execute \"%s\": %s", pl->argv[0], strerror(errno));
}

static void write_record(const char *dir, const char *name, json_t *v)
{
    if (v)
        phx_rec_write(dir, name, v, NULL);
    json_decref(v);
}

/* The shim, from fork to _exit. */
static void run_shim(plan_t *pl, int notify)
{
    phx_task_t *t = pl->t;
    setsid();
    prctl(PR_SET_NAME, "phx-shim", 0, 0, 0);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    /* Only SIGKILL ends the shim: a task's end is what it waits for. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    if (notify != 3) {
        dup2(notify, 3);
        notify = 3;
    }
    if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
        for (int fd = 4; fd < 1024; fd++)
            close(fd);
    unsigned long long start = phx_exec_proc_start(getpid());
    write_record(
        t->dir, "shim",
        json_pack("{s:i, s:I}", "pid", (int)getpid(), "start", (json_int_t)start));
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        write_record(t->dir, "exit",
                     json_pack("{s:s}", "error", "could not make a pipe"));
        _exit(0);
    }
    pid_t child = fork();
    if (child == 0) {
        close(ep[0]);
        close(notify);
        run_child(pl, ep[1]);
    }
    close(ep[1]);
    char msg[PHX_ERROR_TEXT_MAX] = "";
    size_t got = 0;
    ssize_t n;
    while (child > 0 && got + 1 < sizeof(msg) &&
           ((n = read(ep[0], msg + got, sizeof(msg) - 1 - got)) > 0 ||
            (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    msg[got] = '\0';
    close(ep[0]);
    if (child < 0 || got > 0) {
        int st;
        if (child > 0)
            while (waitpid(child, &st, 0) < 0 && errno == EINTR)
                ;
        write_record(
            t->dir, "exit",
            json_pack("{s:s}", "error", child < 0 ? "could not fork the task" : msg));
        _exit(0);
    }
    write_record(t->dir, "shim",
                 json_pack("{s:i, s:I, s:i, s:b}", "pid", (int)getpid(), "start",
                           (json_int_t)start, "child", (int)child, "exec", 1));
    dprintf(notify, "R %d\n", (int)child);
    close(notify);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(child, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    write_record(
        t->dir, "exit",
        json_pack("{s:i, s:f, s:f, s:I, s:f}", "status", st, "user_cpu_s",
                  (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
                  "system_cpu_s",
                  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
                  "max_rss_bytes", (json_int_t)ru.ru_maxrss * 1024, "ended_at",
                  phx_rec_now()));
    _exit(0);
}

int phx_exec_spawn(phx_task_t *t, const struct passwd *pw, phx_error_t *err)
{
    plan_t pl;
    int nfd[2] = {-1, -1};
    if (plan_make(&pl, t, pw, err) < 0)
        goto error;
    if (pipe2(nfd, O_CLOEXEC) < 0) {
        phx_error_set(err, "could not make a pipe: %s", strerror(errno));
        goto error;
    }
    pid_t pid = fork();
    if (pid < 0) {
        phx_error_set(err, "could not fork: %s", strerror(errno));
        goto error;
    }
    if (pid == 0) {
        close(nfd[0]);
        run_shim(&pl, nfd[1]);
    }
    close(nfd[1]);
    plan_clear(&pl);
    t->shim = pid;
    t->shim_start = phx_exec_proc_start(pid);
    t->notify_fd = nfd[0];
    return 0;
error:
    if (nfd[0] >= 0) {
        close(nfd[0]);
        close(nfd[1]);
    }
    plan_clear(&pl);
    return -1;
}
