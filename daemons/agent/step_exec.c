/* phx-agent: a step's rank from fork to exec: its standard streams (pipes,
 * or a terminal under --pty: step_pty.c), the job's cgroup, its GPUs' devices
 * cgroup (gpu_cg.c), its cores, the
 * user's identity, its directory, the descriptors it must not keep. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/step.h"
#include "daemons/agent/task.h"
#include "lib/daemon.h"
#include "topology/bind.h"

void phx_lstep_exec_rank(phx_lstep_t *s, phx_step_rank_t *r, const phx_task_t *t,
                         const char *devices, phx_topo_coreset_t *cores, char **argv,
                         char **env, const char *cwd, const gid_t *groups, int ngroups,
                         int out[2], int err[2], int inp[2])
{
    (void)s;
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (r->tty) { /* out: the terminal's master and slave */
        close(inp[1]);
        if (phx_lstep_pty_child(out) < 0)
            _exit(127);
    } else {
        setpgid(0, 0);
        close(out[0]);
        close(err[0]);
        int in = inp[0] >= 0 ? inp[0] : open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(127);
    }
    phx_agentd_t *a = phx_step_agent();
    if (t->has_cgroup && a->cg->ops->join(a->cg, t->key, getpid()) < 0) {
        dprintf(2, "phx: rank %d: could not join the job's cgroup: %s\n", r->rank,
                strerror(errno));
        _exit(127);
    }
    /* the devices restriction of the job's task (its GPUs), or a narrower
     * one (the rank's own): never run with more GPUs than that */
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    int fd = *devices ? open(devices, O_WRONLY | O_CLOEXEC) : -1;
    if (*devices && (fd < 0 || write(fd, pid, strlen(pid)) != (ssize_t)strlen(pid))) {
        dprintf(2, "phx: rank %d: could not join the devices cgroup of its GPUs: %s\n",
                r->rank, strerror(errno));
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    phx_error_t e;
    if (phx_topo_bind(a->topo, cores ? cores : t->cores, &e) < 0) {
        dprintf(2, "phx: rank %d: could not bind: %s\n", r->rank, e.text);
        _exit(127);
    }
    if (setgroups((size_t)ngroups, groups) < 0 || setgid(t->gid) < 0 ||
        setuid(t->uid) < 0 || (t->uid != 0 && setuid(0) == 0)) {
        dprintf(2, "phx: rank %d: could not become uid %d\n", r->rank, (int)t->uid);
        _exit(127);
    }
    if (cwd && *cwd && chdir(cwd) < 0)
        dprintf(2, "phx: rank %d: could not change to \"%s\": %s\n", r->rank, cwd,
                strerror(errno));
    /* a rank gets 0, 1 and 2 only: not the agent's connection to the
     * master, its step socket or PMIx's (a rank once wrote into the
     * master connection and cut the node off) */
    phx_daemon_close_inherited();
    /* glibc's execvpe searches the PATH of our own environment, the
     * agent's: the rank's is the user's (srun's ranks find what the
     * user's PATH does).  This process is a copy of the agent's: ours to
     * change. */
    environ = env;
    execvp(argv[0] ? argv[0] : "", argv);
    dprintf(2, "phx: rank %d: could not execute \"%s\": %s\n", r->rank,
            argv[0] ? argv[0] : "", strerror(errno));
    _exit(127);
}
