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
 * is never sent one.  The agent is root: it signals only processes whose
 * real or saved uid is the task's user, the kernel's rule for a signal
 * from that user (a setuid-root helper the job started is left alone).
 * A task not
 * running (its program not exec'd yet, ending, being killed) is left alone:
 * the master checked it ran, and a kill wins.  Nothing is answered: the
 * outcome is logged here. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/step.h"
#include "daemons/agent/task.h"
#include "lib/framework.h"
#include "lib/json.h"
#include "lib/log.h"

int phx_signal_groups_as(uid_t uid, gid_t gid, const pid_t *groups, int n, int sig)
{
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        int got = 0;
        if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                               setresuid(uid, uid, uid) < 0))
            _exit(0);
        for (int i = 0; i < n; i++)
            got += kill(-groups[i], sig) == 0 || kill(groups[i], sig) == 0;
        _exit(got > 255 ? 255 : got);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

/* May the task's user signal pid (its real or saved uid is the user's, as
 * the kernel requires of an unprivileged sender)?  /proc/PID/status. */
static bool users_process(pid_t pid, uid_t uid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long real, eff, saved;
        if (sscanf(line, "Uid: %lu %lu %lu", &real, &eff, &saved) == 3) {
            ok = real == uid || saved == uid;
            break;
        }
    }
    fclose(f);
    return ok;
}

/* Send sig to pid if the task's user may and it is not a `phx run` client
 * (counted in *spared) nor the shim.  1 sent, 0 not, -1 with errno. */
static int send_one(const phx_task_t *t, pid_t pid, int sig, int *spared)
{
    if (pid == t->shim || !users_process(pid, t->uid))
        return 0;
    if (phx_step_svc_is_client(pid)) {
        (*spared)++;
        return 0;
    }
    return kill(pid, sig) == 0 ? 1 : -1;
}

/* Every process of the task's cgroup (send_one).  How many were
 * signalled, or -1 with errno if none could be. */
#define CG_PIDS_MAX 65536 /* processes of one task signalled at most */

static int signal_cgroup(const phx_task_t *t, int sig, int *spared)
{
    pid_t *pids = malloc(CG_PIDS_MAX * sizeof(*pids));
    if (!pids)
        return -1;
    int np = phx_cg_pids(t->a->cg, t->key, pids, CG_PIDS_MAX), n = 0, err = ESRCH;
    if (np == CG_PIDS_MAX)
        phx_log_warnx("task %s: more than %d processes: those past them not signalled",
                      t->label, CG_PIDS_MAX);
    for (int i = 0; i < np; i++) {
        int r = send_one(t, pids[i], sig, spared);
        n += r > 0;
        err = r < 0 ? errno : err;
    }
    free(pids);
    if (n == 0 && *spared == 0) {
        errno = np < 0 ? EIO : err;
        return -1;
    }
    return n;
}

/* Every process of group pgrp but the `phx run` clients: a scan of /proc
 * (a rare order, bounded by the node's processes); a process that leaves
 * or joins the group meanwhile may be missed, as with kill(-pgrp).  How
 * many were signalled, or -1 with errno if none could be. */
static int signal_group(const phx_task_t *t, pid_t pgrp, int sig, int *spared)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0, err = ESRCH;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || getpgid((pid_t)pid) != pgrp)
            continue;
        int r = send_one(t, (pid_t)pid, sig, spared);
        n += r > 0;
        err = r < 0 ? errno : err;
    }
    closedir(d);
    if (n == 0 && *spared == 0) {
        errno = err;
        return -1;
    }
    return n;
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
        return;
    }
    phx_task_t *t = phx_task_find(a, fw, id);
    if (!t) {
        phx_log_info("SIGNAL for task %.64s/%.64s ignored: no such task here", fw, id);
        return;
    }
    const char *to = phx_task_sig_to_name(s.to);
    if (t->phase != PHX_TASK_RUNNING || t->kill != PHX_KILL_NONE ||
        (s.to != PHX_SIG_TO_STEPS && t->child <= 0)) {
        phx_log_info("task %s: signal %d to its %s not sent: it is %s", t->label,
                     s.signal, to,
                     t->phase < PHX_TASK_RUNNING || t->child <= 0 ? "not started yet"
                                                                  : "ending");
        return;
    }
    int main_ok = -1, steps = 0, main_errno = 0, spared = 0;
    if (s.to == PHX_SIG_TO_MAIN) {
        main_ok = send_one(t, t->child, s.signal, &spared);
        if (main_ok == 0) { /* not the user's now (a setuid program) */
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
    if (s.to == PHX_SIG_TO_STEPS || (s.to == PHX_SIG_TO_ALL && !t->has_cgroup))
        steps = phx_lstep_signal_task(t->framework_id, t->id, s.signal);
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
