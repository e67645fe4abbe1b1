/* phx-agent: time limits and kills.
 *
 * A kill (time limit or KILL frame) sends SIGTERM to every process of the
 * task and, after the grace period, sweeps: freeze the cgroup, SIGKILL every
 * process listed, thaw, and again until the shim is gone and the cgroup is
 * empty (v2 with cgroup.kill: write it instead).  The sweep also runs when a
 * task ends on its own, to kill what its program left behind.  It is driven
 * by a timer on the loop: never a blocking wait.  The kill's reason and
 * deadline are recorded ("kill") so a restarted agent carries on.
 *
 * A spec's "warn" (sbatch --signal) sends its signal `before` seconds ahead
 * of the time limit, once (record "warned"), to the task's program or to
 * the ranks of the steps in it (step.c). */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/step.h"
#include "daemons/agent/task.h"
#include "lib/log.h"

static void tv_of(double s, struct timeval *tv)
{
    if (s < 0)
        s = 0;
    tv->tv_sec = (time_t)s;
    tv->tv_usec = (suseconds_t)((s - (double)tv->tv_sec) * 1e6);
}

static void later_ev(struct event *ev, double s)
{
    struct timeval tv;
    tv_of(s, &tv);
    evtimer_add(ev, &tv);
}

static void later(phx_task_t *t, double s)
{
    later_ev(t->kill_ev, s);
}

static void signal_all(phx_task_t *t, int sig)
{
    if (t->has_cgroup)
        phx_cg_signal(t->a->cg, t->key, sig);
    else if (t->child > 0)
        kill(-t->child, sig);
}

static void sweep_tick(phx_task_t *t)
{
    phx_cg_t *cg = t->a->cg;
    if (++t->sweep_ticks == 500)
        phx_log_warnx("task %s: processes still alive after many SIGKILLs "
                      "(stuck in the kernel?), still trying",
                      t->label);
    if (!t->has_cgroup) {
        if (t->child > 0) {
            kill(-t->child, SIGKILL);
            kill(t->child, SIGKILL);
        }
        if (t->phase == PHX_TASK_ENDING)
            phx_task_finish(t);
        else
            later(t, 0.2);
        return;
    }
    pid_t pids[8];
    int n = phx_cg_pids(cg, t->key, pids, 8);
    t->swept_empty = n == 0; /* not a failed read (-1) */
    if (n <= 0 && t->sweep_step == 0) {
        if (t->phase == PHX_TASK_ENDING)
            phx_task_finish(t);
        else
            later(t, 0.1);
        return;
    }
    if (cg->ops->kill_all(cg, t->key) == 0) {
        later(t, 0.05);
        return;
    }
    if (t->sweep_step == 0) {
        /* Frozen, nobody forks while we read the list and kill it. */
        cg->ops->freeze(cg, t->key, true);
        t->froze = true;
        t->sweep_step = 1;
        later(t, 0.005);
        return;
    }
    if (cg->ops->frozen(cg, t->key) == 1 || t->sweep_step++ > 40) {
        phx_cg_signal(cg, t->key, SIGKILL);
        cg->ops->freeze(cg, t->key, false);
        t->sweep_step = 0;
        later(t, 0.02);
        return;
    }
    later(t, 0.005);
}

static void on_kill_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_task_t *t = arg;
    if (!t->sweeping) {
        phx_log_info("task %s: grace period over, killing every process", t->label);
        t->sweeping = true;
    }
    sweep_tick(t);
}

static void on_limit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_task_t *t = arg;
    phx_log_notice("task %s: time limit of %lld s reached, terminating it", t->label,
                   t->time_limit);
    phx_limits_kill(t, PHX_KILL_TIMEOUT, (double)t->kill_grace);
}

static void on_warn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_task_t *t = arg;
    if (t->warned || t->kill != PHX_KILL_NONE || t->phase > PHX_TASK_RUNNING)
        return;
    if (t->phase < PHX_TASK_RUNNING || (t->warn_main && t->child <= 0)) {
        /* its program is not exec'd yet; an adopted task stuck so is given
         * up on a minute after the warning was due */
        double due = t->started_at + (double)(t->time_limit - t->warn_before);
        if (phx_rec_now() < due + 60)
            later_ev(t->warn_ev, 0.1);
        else
            phx_log_warnx("task %s: its program never ran; signal %d not sent",
                          t->label, t->warn_signal);
        return;
    }
    /* Recorded first: at most once, even if the agent dies right after. */
    t->warned = true;
    json_t *rec = json_pack("{s:f}", "at", phx_rec_now());
    phx_error_t err;
    if (!rec || phx_rec_write(t->dir, "warned", rec, &err) < 0)
        phx_log_warnx("task %s: could not record the warning signal: %s", t->label,
                      rec ? err.text : "out of memory");
    json_decref(rec);
    int n = t->warn_main
                ? phx_signal_pid_as(t->uid, t->gid, t->child, t->warn_signal)
                : phx_lstep_signal_task(t->framework_id, t->id, t->warn_signal);
    phx_log_info("task %s: signal %d, %d s before its time limit: %d %s", t->label,
                 t->warn_signal, t->warn_before, n,
                 t->warn_main ? "program (the task's own)"
                              : "process groups of its steps' ranks");
}

static int arm_warn(phx_task_t *t)
{
    if (!t->warn_signal || t->warned || t->time_limit <= 0 ||
        t->kill != PHX_KILL_NONE || t->started_at <= 0)
        return 0;
    json_t *rec = phx_rec_read(t->dir, "warned"); /* sent before a restart */
    if (rec) {
        t->warned = true;
        json_decref(rec);
        return 0;
    }
    if (!t->warn_ev && !(t->warn_ev = evtimer_new(t->a->base, on_warn, t)))
        return -1;
    later_ev(t->warn_ev,
             t->started_at + (double)(t->time_limit - t->warn_before) - phx_rec_now());
    return 0;
}

int phx_limits_arm(phx_task_t *t)
{
    if (!t->limit_ev && !(t->limit_ev = evtimer_new(t->a->base, on_limit, t)))
        return -1;
    if (!t->kill_ev && !(t->kill_ev = evtimer_new(t->a->base, on_kill_ev, t)))
        return -1;
    if (t->time_limit <= 0 || t->kill != PHX_KILL_NONE)
        return 0;
    struct timeval tv;
    tv_of(t->started_at + (double)t->time_limit - phx_rec_now(), &tv);
    if (evtimer_add(t->limit_ev, &tv) < 0)
        return -1;
    return arm_warn(t);
}

void phx_limits_kill(phx_task_t *t, phx_task_kill_t why, double grace)
{
    if (t->phase >= PHX_TASK_ENDING)
        return;
    if (t->kill != PHX_KILL_NONE) {
        /* Already dying: a shorter grace may still hurry it. */
        double deadline = phx_rec_now() + grace;
        if (!t->sweeping && deadline < t->kill_deadline) {
            t->kill_deadline = deadline;
            later(t, grace);
        }
        return;
    }
    t->kill = why;
    t->kill_deadline = phx_rec_now() + grace;
    evtimer_del(t->limit_ev);
    if (t->warn_ev)
        evtimer_del(t->warn_ev);
    json_t *rec =
        json_pack("{s:s, s:f}", "why", why == PHX_KILL_TIMEOUT ? "timeout" : "kill",
                  "deadline", t->kill_deadline);
    phx_error_t err;
    if (!rec || phx_rec_write(t->dir, "kill", rec, &err) < 0)
        phx_log_warnx("task %s: could not record the kill: %s", t->label,
                      rec ? err.text : "out of memory");
    json_decref(rec);
    signal_all(t, SIGTERM);
    signal_all(t, SIGCONT);
    later(t, grace);
}

void phx_limits_sweep(phx_task_t *t)
{
    t->sweeping = true;
    evtimer_del(t->limit_ev);
    evtimer_del(t->kill_ev);
    if (t->warn_ev)
        evtimer_del(t->warn_ev);
    sweep_tick(t);
}

void phx_limits_clear(phx_task_t *t)
{
    if (t->limit_ev)
        evtimer_del(t->limit_ev);
    if (t->warn_ev)
        evtimer_del(t->warn_ev);
    if (t->kill_ev)
        evtimer_del(t->kill_ev);
    if (t->has_cgroup && t->sweep_step != 0)
        t->a->cg->ops->freeze(t->a->cg, t->key, false);
    t->sweep_step = 0;
}

int phx_limits_load_kill(phx_task_t *t)
{
    json_t *rec = phx_rec_read(t->dir, "kill");
    if (!rec)
        return 0;
    const char *why = json_string_value(json_object_get(rec, "why"));
    t->kill = why && strcmp(why, "timeout") == 0 ? PHX_KILL_TIMEOUT : PHX_KILL_MASTER;
    t->kill_deadline = json_number_value(json_object_get(rec, "deadline"));
    json_decref(rec);
    if (t->phase < PHX_TASK_ENDING)
        later(t, t->kill_deadline - phx_rec_now());
    return 1;
}
