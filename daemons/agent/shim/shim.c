/* phx-shim: the supervisor of one task, started by phx-agent.
 *
 *   phx-shim        (fd 3: the plan, fd 4: the agent's notify pipe)
 *
 * The agent spawns it (posix_spawn: no copy of the agent's address space)
 * in its own session, so that neither a kill of the agent's process group
 * nor the agent's death touches it.  The shim writes its pid and start time
 * into the task's records ("shim"), vforks the task's process, which joins
 * the task's cgroups, binds itself to its PUs, becomes the user and execs
 * the program.  Set-up errors come back to the shim over a close-on-exec
 * pipe.  The shim tells the agent "R <pid>" once the exec succeeded, waits
 * for the program and writes its wait status and resource usage to the
 * records ("exit", atomically) before it exits: the exit status survives
 * the agent's death.  Only SIGKILL ends the shim.
 *
 * A task with a script runs it from memory: the child writes it to a memfd,
 * reopens that read-only (a file open for writing cannot be executed) and
 * execs it, so the interpreter reads /dev/fd/N, the script's $0, and
 * nothing is written to or removed from a file system.
 *
 * The plan (daemons/agent/exec.c writes it): NUL-terminated keys and values
 * dir, sync, uid, gid, group*, cpus, cgroup*, cwd, out, err, script?, arg+,
 * env*, and interpreter=1 to run a script through its "#!" interpreter (as
 * the shim does when a memfd may not be executed, vm.memfd_noexec = 2; tests
 * use it).  libc only, linked statically: it starts in a fraction of a ms. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemons/agent/shim/proc_start.h"

/* The 32-bit id calls: on i386 and 32-bit ARM, SYS_setuid & co take 16-bit
 * ids (uid 100000 would become 34464); elsewhere there is only one kind. */
#ifdef SYS_setuid32
#define SHIM_SYS_SETUID    SYS_setuid32
#define SHIM_SYS_SETGID    SYS_setgid32
#define SHIM_SYS_SETGROUPS SYS_setgroups32
#else
#define SHIM_SYS_SETUID    SYS_setuid
#define SHIM_SYS_SETGID    SYS_setgid
#define SHIM_SYS_SETGROUPS SYS_setgroups
#endif

#define PLAN_FD    3
#define NOTIFY_FD  4
#define PLAN_MAX   (64u << 20)
#define MSG_MAX    1024
#define MAX_GROUPS 65536

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

typedef struct plan {
    const char *dir, *cwd, *out, *err, *script, *cpus;
    int sync;
    bool via_interpreter; /* run a script through its "#!" interpreter */
    bool append;          /* outputs appended to, not truncated */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int ngroups;
    const char **cgroups, **argv, **envp;
    int ncgroups, nargv, nenvp;
    /* Made before the vfork, so that the child allocates nothing in the
     * memory it shares with the shim: cpus as a set (NULL if malformed),
     * and room for the argv of an interpreter (nargv + 3 entries): a
     * script's "#!" one (run_interpreter) or /bin/sh (exec_file). */
    cpu_set_t *cpuset;
    size_t cpuset_size;
    const char **exec_argv;
} plan_t;

/* ------------------------------------------------------------------------ */
/* Records: JSON; a fresh one created in place, a replacement renamed. */

/* openat(AT_FDCWD, ...), not open: musl's open adds an fcntl(F_SETFD)
 * after an O_CLOEXEC open (for kernels before 2.6.23), its openat not. */
static pid_t self;      /* getpid(), once: the shim never forks but its child */
static bool null_stdin; /* fd 0 is /dev/null, read-only, not close-on-exec */

/* The task's records folder, opened at the first record: the records are
 * then made and renamed relative to it (one path component to walk, not
 * the whole /run/phalanx/agent/<key>/...).  AT_FDCWD and absolute paths if
 * it cannot be opened. */
static int records_at(const plan_t *p, char *buf, size_t len, const char *name)
{
    static int fd = -2;
    if (fd == -2)
        fd = openat(AT_FDCWD, p->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        snprintf(buf, len, "%s", name);
        return fd;
    }
    snprintf(buf, len, "%s/%s", p->dir, name);
    return AT_FDCWD;
}

/* A fresh record (the first "shim", "exit") is created in place, no
 * rename: "exit" is read once the shim is gone, "shim" by an agent
 * restarted meanwhile, which takes a cut one (no JSON) for none, as before
 * it was written.  The second "shim" is renamed into place. */
static void record(const plan_t *p, const char *name, const char *json, bool fresh)
{
    char path[4200], tmp[4200], tmpname[300];
    int at = records_at(p, path, sizeof(path), name);
    int fd = -1;
    if (fresh) {
        fd = openat(at, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        snprintf(tmp, sizeof(tmp), "%s", path);
    }
    if (fd < 0) { /* not fresh, or there after all */
        fresh = false;
        snprintf(tmpname, sizeof(tmpname), ".%s.%d.tmp", name, (int)self);
        records_at(p, tmp, sizeof(tmp), tmpname);
        fd = openat(at, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return;
    size_t len = strlen(json), off = 0;
    while (off < len) {
        ssize_t n = write(fd, json + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (off < len || (p->sync && fsync(fd) < 0)) {
        close(fd);
        unlinkat(at, tmp, 0);
        return;
    }
    close(fd);
    if (!fresh && renameat(at, tmp, at, path) < 0) {
        unlinkat(at, tmp, 0);
        return;
    }
    if (p->sync) {
        int d = openat(AT_FDCWD, p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
            fsync(d);
            close(d);
        }
    }
}

/* The length of the valid UTF-8 sequence at c (1-4), 0 if invalid or cut. */
static int utf8_len(const unsigned char *c)
{
    int n = c[0] < 0x80             ? 1
            : (c[0] & 0xe0) == 0xc0 ? 2
            : (c[0] & 0xf0) == 0xe0 ? 3
            : (c[0] & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 2 && c[0] < 0xc2)
        return 0; /* overlong */
    for (int i = 1; i < n; i++)
        if ((c[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* "{"error":"<msg, JSON-escaped>"}": bytes that are not UTF-8 (a path
 * needs not be, a message may be cut) become '?'. */
static void record_error(const plan_t *p, const char *msg)
{
    char json[MSG_MAX * 6 + 32];
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"error\":\"");
    for (const unsigned char *c = (const unsigned char *)msg; *c;) {
        int len = utf8_len(c);
        if (n + 8 >= sizeof(json))
            break;
        if (len == 0) {
            json[n++] = '?';
            c++;
            continue;
        }
        if (*c == '"' || *c == '\\')
            n += (size_t)snprintf(json + n, sizeof(json) - n, "\\%c", *c);
        else if (*c < 0x20)
            n += (size_t)snprintf(json + n, sizeof(json) - n, "\\u%04x", *c);
        else
            for (int i = 0; i < len; i++)
                json[n++] = (char)c[i];
        c += len;
    }
    snprintf(json + n, sizeof(json) - n, "\"}");
    record(p, "exit", json, true);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* The plan */

static char *read_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf)
            return NULL;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            if (cap >= PLAN_MAX) {
                free(buf);
                return NULL;
            }
            char *m = realloc(buf, 2 * cap + 1);
            if (!m)
                free(buf);
            buf = m;
            cap *= 2;
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int push(const char ***v, int *n, const char *s)
{
    const char **m = realloc(*v, (size_t)(*n + 2) * sizeof(*m));
    if (!m)
        return -1;
    m[(*n)++] = s;
    m[*n] = NULL;
    *v = m;
    return 0;
}

static long long number(const char *s, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || *end || end == s || v < 0 || v > max ? -1 : v;
}

/* 0, or -1 with why set. */
static int plan_parse(plan_t *p, char *buf, size_t len, const char **why)
{
    memset(p, 0, sizeof(*p));
    long long uid = -1, gid = -1;
    int cap = 0;
    for (size_t off = 0; off < len;) {
        const char *key = buf + off;
        size_t kl = strlen(key);
        if (off + kl + 1 >= len)
            return *why = "plan: a key without a value", -1;
        const char *val = key + kl + 1;
        off += kl + 1 + strlen(val) + 1;
        int rc = 0;
        if (strcmp(key, "dir") == 0)
            p->dir = val;
        else if (strcmp(key, "sync") == 0)
            p->sync = strcmp(val, "1") == 0;
        else if (strcmp(key, "interpreter") == 0)
            p->via_interpreter = strcmp(val, "1") == 0;
        else if (strcmp(key, "uid") == 0)
            uid = number(val, (long long)UINT32_MAX - 1);
        else if (strcmp(key, "gid") == 0)
            gid = number(val, (long long)UINT32_MAX - 1);
        else if (strcmp(key, "group") == 0) {
            long long g = number(val, (long long)UINT32_MAX - 1);
            if (g < 0 || p->ngroups >= MAX_GROUPS)
                return *why = "plan: bad supplementary group", -1;
            if (p->ngroups == cap) {
                cap = cap ? 2 * cap : 32;
                gid_t *m = realloc(p->groups, (size_t)cap * sizeof(gid_t));
                if (!m)
                    return *why = "out of memory", -1;
                p->groups = m;
            }
            p->groups[p->ngroups++] = (gid_t)g;
        } else if (strcmp(key, "cpus") == 0)
            p->cpus = val;
        else if (strcmp(key, "cgroup") == 0)
            rc = push(&p->cgroups, &p->ncgroups, val);
        else if (strcmp(key, "cwd") == 0)
            p->cwd = val;
        else if (strcmp(key, "out") == 0)
            p->out = val;
        else if (strcmp(key, "err") == 0)
            p->err = val;
        else if (strcmp(key, "append") == 0)
            p->append = strcmp(val, "1") == 0;
        else if (strcmp(key, "script") == 0)
            p->script = val;
        else if (strcmp(key, "arg") == 0)
            rc = push(&p->argv, &p->nargv, val);
        else if (strcmp(key, "env") == 0)
            rc = push(&p->envp, &p->nenvp, val);
        else
            return *why = "plan: unknown key", -1;
        if (rc < 0)
            return *why = "out of memory", -1;
    }
    if (!p->dir || !p->out || !p->err || !p->nargv || uid < 0 || gid < 0)
        return *why = "plan: dir, out, err, arg, uid or gid missing", -1;
    if (!p->envp && push(&p->envp, &p->nenvp, "PATH=/usr/bin:/bin") < 0)
        return *why = "out of memory", -1;
    p->uid = (uid_t)uid;
    p->gid = (gid_t)gid;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The task's process, from vfork to exec */

static void fail(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void fail(int fd, const char *fmt, ...)
{
    char buf[MSG_MAX];
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

static int write_file(const char *path, const char *text)
{
    int fd = openat(AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

#define PU_MAX (1 << 20)

/* "0-3,8,10-11" into a set of *size bytes (CPU_FREE it); NULL on a malformed
 * list or without memory. */
static cpu_set_t *parse_cpus(const char *list, size_t *size)
{
    long max = -1;
    for (const char *s = list; *s;) { /* the highest id, to size the set */
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= PU_MAX)
            return NULL;
        max = v > max ? v : max;
        s = *end ? end + 1 : end;
    }
    if (max < 0)
        return NULL;
    cpu_set_t *set = CPU_ALLOC((int)max + 1);
    if (!set)
        return NULL;
    *size = CPU_ALLOC_SIZE((int)max + 1);
    CPU_ZERO_S(*size, set);
    const char *s = list;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (*end == '-') {
            s = end + 1;
            b = strtol(s, &end, 10);
            if (end == s || b < a)
                break;
        }
        for (long c = a; c <= b; c++)
            CPU_SET_S((int)c, *size, set);
        if (*end == ',')
            end++;
        else if (*end)
            break;
        s = end;
    }
    if (*s || CPU_COUNT_S(*size, set) == 0) {
        CPU_FREE(set);
        return NULL;
    }
    return set;
}

/* A read-only descriptor of a memfd holding script, for fexecve; it stays
 * open across the exec (the interpreter opens /dev/fd/N). */
static int script_fd(const char *script, bool *exec_ok)
{
    *exec_ok = true;
    int fd = memfd_create("phx-script", MFD_CLOEXEC | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* kernels before 6.3 */
        fd = memfd_create("phx-script", MFD_CLOEXEC);
    if (fd < 0 && errno == EACCES) { /* vm.memfd_noexec = 2 */
        *exec_ok = false;
        fd = memfd_create("phx-script", MFD_CLOEXEC);
    }
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

/* Run the script the way the kernel would, for a memfd that may not be
 * executed: the interpreter of its "#!" line (at most one argument, as
 * Linux splits it), then /dev/fd/N, then the task's arguments.  Never
 * returns. */
static void run_interpreter(const plan_t *p, int sfd, int errfd)
    __attribute__((noreturn));
static void run_interpreter(const plan_t *p, int sfd, int errfd)
{
    char line[256];
    size_t i = 0;
    for (const char *c = p->script + 2; *c && *c != '\n' && i + 1 < sizeof(line); c++)
        line[i++] = *c;
    line[i] = '\0';
    char *interp = line + strspn(line, " \t"), *arg = NULL;
    char *sp = interp + strcspn(interp, " \t");
    if (*sp) {
        *sp++ = '\0';
        arg = sp + strspn(sp, " \t");
        for (char *e = arg + strlen(arg); e > arg && (e[-1] == ' ' || e[-1] == '\t');)
            *--e = '\0';
        if (!*arg)
            arg = NULL;
    }
    if (!*interp)
        fail(errfd, "the script's first line names no interpreter");
    char dev[32];
    snprintf(dev, sizeof(dev), "/dev/fd/%d", sfd);
    const char **argv = p->exec_argv; /* nargv + 3 entries, zeroed */
    int n = 0;
    argv[n++] = interp;
    if (arg)
        argv[n++] = arg;
    argv[n++] = dev;
    for (int k = 1; k < p->nargv; k++)
        argv[n++] = p->argv[k];
    execve(interp, (char *const *)argv, (char *const *)p->envp);
    fail(errfd, "could not execute the script's interpreter \"%s\": %s", interp,
         strerror(errno));
}

static int open_output(const char *path, bool append)
{
    return openat(AT_FDCWD, path,
                  O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC |
                      O_NOCTTY,
                  0644);
}

/* The signals the shim ignores (main), which its child must not: every
 * other disposition is the default already (the agent spawns the shim with
 * all signals default, POSIX_SPAWN_SETSIGDEF, exec.c), and exec resets
 * the caught ones.  Four syscalls instead of one per signal (64). */
static const int shim_ignores[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};

/* posix_spawn ignores glibc's own signals (32 and 33, SIGCANCEL, SIGSETXID)
 * in the shim it execs, and glibc's sigaction refuses to touch them: the
 * kernel's does.  Else every task starts with them ignored. */
static void default_libc_signals(void)
{
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } dfl = {0}; /* SIG_DFL, no flags, nothing blocked */
    for (int sig = 32; sig < SIGRTMIN; sig++)
        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
}

/* execve path, or, for a file the kernel does not know how to run
 * (ENOEXEC: no "#!", not a binary), /bin/sh with it, as execvp does.
 * Returns with errno set if neither ran. */
static void exec_file(const plan_t *p, const char *path)
{
    char *const *envp = (char *const *)p->envp;
    execve(path, (char *const *)p->argv, envp);
    if (errno != ENOEXEC)
        return;
    const char **sh = p->exec_argv; /* nargv + 3 entries */
    int n = 0;
    sh[n++] = "/bin/sh";
    sh[n++] = path;
    for (int k = 1; k < p->nargv; k++)
        sh[n++] = p->argv[k];
    sh[n] = NULL;
    execve("/bin/sh", (char *const *)sh, envp);
    errno = ENOEXEC;
}

/* Run argv[0] as execvp would with the task's environment: a name with a
 * slash as it is, else the first file of that name in the task's PATH
 * ("/bin:/usr/bin" without one; an empty element is the current folder)
 * that runs; EACCES if none ran and one was refused, ENOENT if none was
 * found; an error other than those, ENOTDIR, ESTALE, ENODEV or ETIMEDOUT
 * ends the search (glibc's rules).  Written out rather than libc's
 * execvp, which searches the shim's own environ and, in musl, runs no
 * shell for a file without "#!".  Never returns. */
static void exec_search(const plan_t *p, int errfd) __attribute__((noreturn));
static void exec_search(const plan_t *p, int errfd)
{
    const char *file = p->argv[0];
    if (!*file || strchr(file, '/')) {
        errno = ENOENT;
        if (*file)
            exec_file(p, file);
        fail(errfd, "could not execute \"%s\": %s", file, strerror(errno));
    }
    const char *path = "/bin:/usr/bin";
    for (int i = 0; i < p->nenvp; i++)
        if (strncmp(p->envp[i], "PATH=", 5) == 0) {
            path = p->envp[i] + 5; /* the first, as getenv */
            break;
        }
    size_t flen = strlen(file);
    bool denied = false;
    char buf[PATH_MAX];
    for (const char *s = path;;) {
        const char *e = strchrnul(s, ':');
        size_t dlen = (size_t)(e - s);
        if (dlen + 1 + flen < sizeof(buf)) {
            memcpy(buf, s, dlen);
            if (dlen)
                buf[dlen++] = '/';
            memcpy(buf + dlen, file, flen + 1);
            exec_file(p, buf);
            if (errno == EACCES)
                denied = true;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
                     errno != ENODEV && errno != ETIMEDOUT)
                fail(errfd, "could not execute \"%s\": %s", file, strerror(errno));
        }
        if (!*e)
            break;
        s = e + 1;
    }
    fail(errfd, "could not execute \"%s\": %s", file,
         strerror(denied ? EACCES : ENOENT));
}

/* The task's process, between vfork and exec: it shares the shim's memory
 * (not its descriptors or signal dispositions), so it writes nothing the
 * shim reads afterwards and allocates nothing (what it needs was made
 * before), and it ends in an exec or _exit (fail). */
/* Not inlined: the child's locals then live in a frame of their own, never
 * in start_task's, which the shim uses again once the child has exec'd. */
static void run_child(const plan_t *p, int errfd) __attribute__((noreturn, noinline));
static void run_child(const plan_t *p, int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    for (size_t i = 0; i < sizeof(shim_ignores) / sizeof(*shim_ignores); i++)
        signal(shim_ignores[i], SIG_DFL);
    default_libc_signals();
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(NOTIFY_FD); /* the child's copy: the agent's pipe stays the shim's */
    setpgid(0, 0);
    if (p->cpus && !p->cpuset)
        fail(errfd, "bad PU list \"%s\"", p->cpus);
    /* Bound before the joins too: a move to another PU is made here, not in
     * the v1 cpuset's join under the kernel's cgroup mutex.  A join writes
     * "0", itself: in v1's "tasks" without the global lock that a pid in
     * "cgroup.procs" takes against every fork and exit (doc/agent.md). */
    if (p->cpuset && p->ncgroups > 0)
        (void)sched_setaffinity(0, p->cpuset_size, p->cpuset);
    for (int i = 0; i < p->ncgroups; i++)
        if (write_file(p->cgroups[i], "0") < 0)
            fail(errfd, "could not join cgroup %s: %s", p->cgroups[i], strerror(errno));
    if (p->cpuset && sched_setaffinity(0, p->cpuset_size, p->cpuset) < 0)
        fail(errfd, "could not bind to cores: %s", strerror(errno));
    /* The system calls themselves: a libc's wrappers may synchronise every
     * thread of the process (glibc's when threaded, musl's always), which
     * in a vfork child means taking locks in the shim's memory.  Linux
     * changes the credentials of the calling thread: the whole child. */
    if (syscall(SHIM_SYS_SETGROUPS, (size_t)p->ngroups, p->groups) < 0)
        fail(errfd, "could not set the supplementary groups: %s", strerror(errno));
    if (syscall(SHIM_SYS_SETGID, p->gid) < 0)
        fail(errfd, "could not set gid %d: %s", (int)p->gid, strerror(errno));
    if (syscall(SHIM_SYS_SETUID, p->uid) < 0)
        fail(errfd, "could not set uid %d: %s", (int)p->uid, strerror(errno));
    if (p->uid != 0 && syscall(SHIM_SYS_SETUID, 0) == 0)
        fail(errfd, "could regain root after dropping it");
    umask(022);
    if (p->cwd && chdir(p->cwd) < 0)
        fail(errfd, "could not change to directory \"%s\": %s", p->cwd,
             strerror(errno));
    /* stdin: the shim's own /dev/null (fd 0, read-only), else opened */
    int in = null_stdin ? 0 : openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open_output(p->out, p->append);
    if (out < 0)
        fail(errfd, "could not open stdout \"%s\": %s", p->out, strerror(errno));
    int errout = strcmp(p->out, p->err) == 0 ? out : open_output(p->err, p->append);
    if (errout < 0)
        fail(errfd, "could not open stderr \"%s\": %s", p->err, strerror(errno));
    if (in < 0 || (in != 0 && dup2(in, 0) < 0) || dup2(out, 1) < 0 ||
        dup2(errout, 2) < 0)
        fail(errfd, "could not set up standard streams: %s", strerror(errno));
    char *const *argv = (char *const *)p->argv;
    char *const *envp = (char *const *)p->envp;
    if (p->script) {
        bool exec_ok;
        int sfd = script_fd(p->script, &exec_ok);
        if (sfd < 0)
            fail(errfd, "could not hold the script in memory: %s", strerror(errno));
        if (exec_ok && !p->via_interpreter) {
            fexecve(sfd, argv, envp);
            if (errno != EACCES) /* EACCES: a noexec memfd or /proc */
                fail(errfd, "could not execute the script: %s", strerror(errno));
        }
        run_interpreter(p, sfd, errfd);
    }
    exec_search(p, errfd);
}

/* Start the task's process: vfork, not fork.  A fork copied the shim's
 * page tables, then both processes took a copy-on-write fault at every
 * page either wrote, the child faulted in again every page of program text
 * it ran (fork copies no page table of a file mapping), and its exec tore
 * the copy down: about a fifth of the shim's CPU per task (page faults are
 * dear in a virtual machine).  The shim is single-threaded and waits for
 * the child's exec anyway (the error pipe), which vfork makes it do
 * suspended; glibc's posix_spawn runs its child so too, set-uid included.
 * After setuid the shared memory is not dumpable (the kernel marks it so
 * at the credential change), so the task's user cannot ptrace the child
 * into the shim's memory.  -1 if the process could not be made. */
static pid_t start_task(const plan_t *p, int errfd) __attribute__((noinline));
static pid_t start_task(const plan_t *p, int errfd)
{
    pid_t pid = vfork();
    if (pid == 0)
        run_child(p, errfd);
    return pid;
}

/* ------------------------------------------------------------------------ */

/* The end of the shim: what it allocated freed (for the sanitizers' leak
 * check), exit status 0 (the task's status is in the records). */
static int done(plan_t *p, char *buf)
{
    free(p->groups);
    if (p->cpuset)
        CPU_FREE(p->cpuset);
    free(p->exec_argv);
    free(p->cgroups);
    free(p->argv);
    free(p->envp);
    free(buf);
    return 0;
}

/* The shim starts with every signal's disposition the default and none
 * blocked: the agent spawns it so (POSIX_SPAWN_SETSIGDEF of all signals,
 * POSIX_SPAWN_SETSIGMASK empty; exec.c), and so must anyone who runs it
 * (tests), since the task inherits what the shim does not change.
 * (Resetting all 64 here, then again in the child, was 128 syscalls per
 * task.) */
int main(void)
{
    setsid(); /* posix_spawn made the session already; harmless if so */
    self = getpid();
    for (size_t i = 0; i < sizeof(shim_ignores) / sizeof(*shim_ignores); i++)
        signal(shim_ignores[i], SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    size_t len = 0;
    char *buf = read_all(PLAN_FD, &len);
    close(PLAN_FD);
    /* Read-only: fd 0 is the task's stdin too (run_child). */
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        null_stdin = (null == 0 || dup2(null, 0) == 0) && dup2(null, 1) == 1 &&
                     dup2(null, 2) == 2;
        if (null > 2)
            close(null);
    }
    if (syscall(SYS_close_range, NOTIFY_FD + 1U, ~0U, 0U) < 0) { /* before Linux 5.9 */
        long open_max = sysconf(_SC_OPEN_MAX);
        for (long fd = NOTIFY_FD + 1; fd < (open_max > 0 ? open_max : 1 << 20); fd++)
            close((int)fd);
    }
    plan_t p = {0};
    const char *why = "could not read the plan";
    if (!buf || plan_parse(&p, buf, len, &why) < 0) {
        /* Without a records dir there is nowhere to say it: the agent sees
         * the shim end without "R" and reports the task failed. */
        if (buf && p.dir)
            record_error(&p, why);
        return done(&p, buf);
    }

    char json[512];
    unsigned long long start = phx_proc_start(self);
    snprintf(json, sizeof(json), "{\"pid\":%d,\"start\":%llu}", (int)self, start);
    record(&p, "shim", json, true);
    if (p.cpus)
        p.cpuset = parse_cpus(p.cpus, &p.cpuset_size); /* NULL: the child says */
    if (!(p.exec_argv = calloc((size_t)p.nargv + 3, sizeof(*p.exec_argv)))) {
        record_error(&p, "out of memory");
        return done(&p, buf);
    }
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        record_error(&p, "could not make a pipe");
        return done(&p, buf);
    }
    pid_t child = start_task(&p, ep[1]);
    close(ep[1]);
    char msg[MSG_MAX] = "";
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
        record_error(&p, child < 0 ? "could not fork the task" : msg);
        return done(&p, buf);
    }
    snprintf(json, sizeof(json),
             "{\"child\":%d,\"exec\":true,\"pid\":%d,\"start\":%llu}", (int)child,
             (int)self, start);
    record(&p, "shim", json, false);
    char note[32];
    int nn = snprintf(note, sizeof(note), "R %d\n", (int)child);
    ssize_t w = write(NOTIFY_FD, note, (size_t)nn); /* the agent may be gone */
    (void)w;
    close(NOTIFY_FD);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(child, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    snprintf(json, sizeof(json),
             "{\"ended_at\":%.6f,\"max_rss_bytes\":%lld,\"status\":%d,"
             "\"system_cpu_s\":%.6f,\"user_cpu_s\":%.6f}",
             now(), (long long)ru.ru_maxrss * 1024, st,
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
             (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6);
    record(&p, "exit", json, true);
    return done(&p, buf);
}
