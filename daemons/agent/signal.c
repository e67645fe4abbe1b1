/* phx-agent: SIGNAL, a signal now to a running task (scancel -s; doc/agent.md).
 *
 *   {"type":"SIGNAL", "framework_id":F, "task_id":T, "signal":10, "to":"steps"}
 *
 * "to" (lib/framework.h): "steps", the process groups of the ranks of the
 * steps running in the task on this node (as sbatch --signal without B:);
 * "main", the task's program alone (the batch shell: --signal=B:, scancel
 * -b); "all", every process of the task: those of its cgroup (the shell,
 * its children, also those that left its process group with setsid, and
 * the steps' ranks, which join it), as Slurm signals the step's cgroup;
 * without cgroups the program's process group and the steps' ranks.  Not
 * the `phx run` clients: they have no handlers, would end of most signals
 * and take their steps with them (Slurm's srun forwards them instead; here
 * the ranks get the signal directly, once).  The shim ignores signals and
 * is never sent one.  The agent is root: every signal goes from a child
 * that takes the task's user's uid and gid first (kill_as), so the kernel
 * signals only what that user may (a process whose real or saved uid is
 * the user's; a setuid-root helper the job started is left alone), at
 * the kill itself: no check of /proc then a kill that a reused pid could
 * slip between.  A task not
 * running (its program not exec'd yet, ending, being killed) is left alone:
 * the master checked it ran, and a kill wins.  The outcome is logged here
 * and, when the SIGNAL carries "reply" (a master that waits for it: this
 * agent's REGISTER says "features": ["signal_done"]), answered:
 *
 *   {"type":"SIGNAL_DONE", "reply":N, "framework_id":F, "task_id":T,
 *    "sent":n, "error":"..."}
 *
 * sent: the processes (or rank process groups) that got the signal; with
 * none, "error" says why (no such task, not running, not the user's, no
 * step running there, could not signal as the user). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/step.h"
#include "daemons/agent/task.h"
#include "lib/framework.h"
#include "lib/json.h"
#include "lib/log.h"

/* What the child of kill_as tells its parent. */
typedef struct kill_report {
    int sent;  /* targets that got the signal */
    int err;   /* errno of the last kill refused, 0: none */
    int setup; /* errno of taking the user's credentials, 0: done */
} kill_report_t;

/* Send sig to targets[0..n) (their process groups, else the processes
 * themselves, when groups) from a child that takes uid and gid first, so
 * that the kernel's permission check is the user's.  The agent has threads
 * (PMIx's): between fork and _exit the child calls only async-signal-safe
 * functions (raw set*id syscalls, which act on the calling thread, the
 * child's only one; kill, write), and runs with every signal blocked, so
 * that no agent handler runs in it.  How many got it, *last_err the errno
 * of the last refusal (EPERM: not the user's); -1 with errno when the
 * child could not be made or become the user (nothing sent). */
static int kill_as(uid_t uid, gid_t gid, const pid_t *targets, int n, int sig,
                   bool groups, int *last_err)
{
    *last_err = 0;
    if (n <= 0)
        return 0;
    bool root = geteuid() == 0; /* else the kernel checks the agent's uid */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        kill_report_t r = {0, 0, 0};
        if (root && (syscall(SYS_setgroups, 0, NULL) < 0 ||
                     syscall(SYS_setresgid, gid, gid, gid) < 0 ||
                     syscall(SYS_setresuid, uid, uid, uid) < 0))
            r.setup = errno ? errno : EPERM;
        for (int i = 0; !r.setup && i < n; i++) {
            if ((groups && kill(-targets[i], sig) == 0) || kill(targets[i], sig) == 0)
                r.sent++;
            else
                r.err = errno;
        }
        _exit(write(p[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        errno = fork_errno;
        return -1;
    }
    kill_report_t r;
    ssize_t got;
    do
        got = read(p[0], &r, sizeof(r));
    while (got < 0 && errno == EINTR);
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof(r)) { /* died before its report */
        errno = ECHILD;
        return -1;
    }
    if (r.setup) {
        errno = r.setup;
        return -1;
    }
    *last_err = r.err;
    return r.sent;
}

int phx_signal_groups_as(uid_t uid, gid_t gid, const pid_t *groups, int n, int sig)
{
    int last_err, sent = kill_as(uid, gid, groups, n, sig, true, &last_err);
    if (sent < 0) {
        phx_log_warnx("signal %d to %d process groups as uid %u not sent: could not "
                      "signal as that user: %s",
                      sig, n, (unsigned)uid, strerror(errno));
        return 0;
    }
    return sent;
}

int phx_signal_pid_as(uid_t uid, gid_t gid, pid_t pid, int sig)
{
    int last_err, sent = kill_as(uid, gid, &pid, 1, sig, false, &last_err);
    if (sent < 0)
        phx_log_warnx("signal %d to pid %d as uid %u not sent: could not signal as "
                      "that user: %s",
                      sig, (int)pid, (unsigned)uid, strerror(errno));
    return sent > 0;
}

/* The processes to signal among pids[0..n), in place: not the shim, nor a
 * `phx run` client (counted in *spared).  How many are left. */
static int targets_of(const phx_task_t *t, pid_t *pids, int n, int *spared)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (pids[i] == t->shim)
            continue;
        if (phx_step_svc_is_client(pids[i])) {
            (*spared)++;
            continue;
        }
        pids[k++] = pids[i];
    }
    return k;
}

#define PIDS_MAX 65536 /* processes of one task signalled at most */

/* Send sig as the task's user to the processes pids[0..np) (targets_of).
 * How many were signalled, or -1 with errno if none could be (EPERM:
 * none was the user's; ESRCH: none left). */
static int signal_pids(const phx_task_t *t, pid_t *pids, int np, int sig, int *spared)
{
    int last_err, n = targets_of(t, pids, np, spared);
    int sent = kill_as(t->uid, t->gid, pids, n, sig, false, &last_err);
    if (sent < 0) {
        int e = errno;
        phx_log_warnx("task %s: could not signal as uid %u: %s", t->label,
                      (unsigned)t->uid, strerror(e));
        errno = e;
        return -1;
    }
    if (sent == 0 && *spared == 0) {
        errno = last_err ? last_err : ESRCH;
        return -1;
    }
    return sent;
}

/* Every process of the task's cgroup (signal_pids). */
static int signal_cgroup(const phx_task_t *t, int sig, int *spared)
{
    pid_t *pids = malloc(PIDS_MAX * sizeof(*pids));
    if (!pids)
        return -1;
    int np = phx_cg_pids(t->a->cg, t->key, pids, PIDS_MAX);
    if (np == PIDS_MAX)
        phx_log_warnx("task %s: more than %d processes: those past them not signalled",
                      t->label, PIDS_MAX);
    int n = np < 0 ? -1 : signal_pids(t, pids, np, sig, spared);
    if (np < 0)
        errno = EIO;
    int e = errno;
    free(pids);
    errno = e;
    return n;
}

/* Every process of group pgrp but the `phx run` clients: a scan of /proc
 * (a rare order, bounded by the node's processes); a process that leaves
 * or joins the group meanwhile may be missed, as with kill(-pgrp).
 * signal_pids. */
static int signal_group(const phx_task_t *t, pid_t pgrp, int sig, int *spared)
{
    pid_t *pids = malloc(PIDS_MAX * sizeof(*pids));
    DIR *d = pids ? opendir("/proc") : NULL;
    if (!d) {
        free(pids);
        return -1;
    }
    int np = 0;
    struct dirent *e;
    while ((e = readdir(d)) && np < PIDS_MAX) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (!*end && pid > 0 && getpgid((pid_t)pid) == pgrp)
            pids[np++] = (pid_t)pid;
    }
    closedir(d);
    if (np == PIDS_MAX)
        phx_log_warnx("task %s: more than %d processes: those past them not signalled",
                      t->label, PIDS_MAX);
    int n = signal_pids(t, pids, np, sig, spared), err = errno;
    free(pids);
    errno = err;
    return n;
}

/* SIGNAL_DONE for a master that waits for it (f's "reply"): sent, or with
 * none, why (printf-style). */
static void answer(phx_agentd_t *a, const phx_frame_t *f, const char *fw,
                   const char *id, int sent, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void answer(phx_agentd_t *a, const phx_frame_t *f, const char *fw,
                   const char *id, int sent, const char *fmt, ...)
{
    json_t *reply = json_object_get(f->header, "reply");
    if (!json_is_integer(reply) || !fw || !id)
        return; /* an older master: nothing awaited */
    json_t *h = json_pack("{s:s, s:O, s:s, s:s, s:i}", "type", "SIGNAL_DONE", "reply",
                          reply, "framework_id", fw, "task_id", id, "sent", sent);
    if (h && sent <= 0 && fmt) {
        char why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        json_object_set_new(h, "error", json_string(why));
    }
    if (!h || phx_agentd_send(a, h, NULL, 0) < 0)
        phx_log_warnx("task %.64s/%.64s: could not answer SIGNAL", fw, id);
}

void phx_agentd_on_signal(phx_agentd_t *a, const phx_frame_t *f)
{
    const char *id = NULL, *fw = NULL;
    phx_task_signal_t s;
    phx_error_t err;
    if (phx_json_str(f->header, "task_id", true, &id, &err) < 0 ||
        phx_json_str(f->header, "framework_id", true, &fw, &err) < 0 ||
        phx_task_signal_parse(f->header, &s, &err) < 0) {
        phx_log_warnx("SIGNAL ignored: %s", err.text);
        answer(a, f, fw, id, 0, "bad SIGNAL: %s", err.text);
        return;
    }
    phx_task_t *t = phx_task_find(a, fw, id);
    if (!t) {
        phx_log_info("SIGNAL for task %.64s/%.64s ignored: no such task here", fw, id);
        answer(a, f, fw, id, 0, "no such task on its node");
        return;
    }
    const char *to = phx_task_sig_to_name(s.to);
    if (t->phase != PHX_TASK_RUNNING || t->kill != PHX_KILL_NONE ||
        (s.to != PHX_SIG_TO_STEPS && t->child <= 0)) {
        const char *why =
            t->phase < PHX_TASK_RUNNING || t->child <= 0 ? "not started yet" : "ending";
        phx_log_info("task %s: signal %d to its %s not sent: it is %s", t->label,
                     s.signal, to, why);
        answer(a, f, fw, id, 0, "not sent: the task is %s", why);
        return;
    }
    int main_ok = -1, steps = 0, main_errno = 0, spared = 0;
    if (s.to == PHX_SIG_TO_MAIN) {
        pid_t one = t->child; /* EPERM: not the user's now (a setuid program) */
        main_ok = signal_pids(t, &one, 1, s.signal, &spared);
        if (main_ok == 0) { /* a `phx run` client (exec'd by the script) */
            main_ok = -1;
            errno = EPERM;
        }
    } else if (s.to == PHX_SIG_TO_ALL) {
        main_ok = t->has_cgroup ? signal_cgroup(t, s.signal, &spared)
                                : signal_group(t, t->child, s.signal, &spared);
    }
    if (main_ok < 0)
        main_errno = errno;
    /* the ranks are in the task's cgroup: signalled once already */
    bool steps_failed = false; /* ranks there, none signalled */
    if (s.to == PHX_SIG_TO_STEPS || (s.to == PHX_SIG_TO_ALL && !t->has_cgroup))
        steps = phx_lstep_signal_task(t->framework_id, t->id, s.signal);
    if (steps < 0) {
        steps_failed = true;
        steps = 0;
    }
    int sent = (main_ok > 0 ? main_ok : 0) + steps;
    if (s.to == PHX_SIG_TO_STEPS && steps_failed)
        answer(a, f, fw, id, 0,
               "none of the steps' ranks on its node could be signalled");
    else if (s.to == PHX_SIG_TO_STEPS)
        answer(a, f, fw, id, steps, PHX_SIGNAL_NO_STEP);
    else if (main_ok < 0 && steps == 0)
        answer(a, f, fw, id, 0, "could not signal %s (pid %d): %s",
               s.to == PHX_SIG_TO_MAIN ? "the batch shell" : "its processes",
               (int)t->child, strerror(main_errno));
    else
        answer(a, f, fw, id, sent, "no process of the task left to signal");
    if (s.to == PHX_SIG_TO_STEPS)
        phx_log_info("task %s: signal %d on request to its steps: %d rank process "
                     "groups",
                     t->label, s.signal, steps);
    else if (main_ok < 0)
        phx_log_warnx("task %s: could not send signal %d to its program (pid %d): %s; "
                      "%d step rank process groups got it",
                      t->label, s.signal, (int)t->child, strerror(main_errno), steps);
    else if (s.to == PHX_SIG_TO_MAIN)
        phx_log_info("task %s: signal %d on request to its program (pid %d)", t->label,
                     s.signal, (int)t->child);
    else
        phx_log_info("task %s: signal %d on request to %d processes of its %s (pid "
                     "%d; %d phx run spared), and %d step rank process groups",
                     t->label, s.signal, main_ok,
                     t->has_cgroup ? "cgroup" : "program's group", (int)t->child,
                     spared, steps);
}
