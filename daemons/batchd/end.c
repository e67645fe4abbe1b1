/* Job ends, from the master's task status updates.
 *
 * The batch step (task 0) decides the job's end: TASK_FINISHED → COMPLETED;
 * TASK_FAILED → TIMEOUT (REASON_MAX_COMPLETION_TIME_REACHED, or killed
 * once the job has run its time limit: killed_at_limit), OUT_OF_MEMORY
 * (REASON_CONTAINER_LIMITATION_MEMORY) or FAILED with its exit code or
 * signal; TASK_KILLED → CANCELLED after a cancel, else NODE_FAIL when a node
 * of the job was lost, else FAILED; TASK_LOST/TASK_DROPPED or an agent
 * reason → NODE_FAIL, requeued batchd.requeue_count times unless the job
 * said --no-requeue: the run lost is recorded first, as a run ended for
 * phx requeue is (its jobs row NODE_FAIL, charged in usage_daily, its
 * batch step), then the job is PENDING (NodeFailRequeued).  The other
 * nodes' holders are killed when the script ends.  The job's end and a
 * job_steps row "batch" (CPU times, max RSS from the update's usage) are
 * written; the user's fair-share usage grows by the job's cpus × elapsed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/rows.h"
#include "lib/log.h"

static bool terminal(const char *s)
{
    return strcmp(s, "TASK_FINISHED") == 0 || strcmp(s, "TASK_FAILED") == 0 ||
           strcmp(s, "TASK_KILLED") == 0 || strcmp(s, "TASK_LOST") == 0 ||
           strcmp(s, "TASK_ERROR") == 0 || strcmp(s, "TASK_DROPPED") == 0 ||
           strcmp(s, "TASK_GONE") == 0;
}

static bool node_lost(const char *state, const char *reason)
{
    return strcmp(state, "TASK_LOST") == 0 || strcmp(state, "TASK_DROPPED") == 0 ||
           strcmp(state, "TASK_GONE") == 0 ||
           (reason && strncmp(reason, "REASON_AGENT_", 13) == 0);
}

static void step_written(const phx_error_t *err, phx_db_result_t *const *r, int n,
                         void *arg)
{
    (void)r;
    (void)n;
    if (err)
        phx_log_errx("job %" PRIu64 ": could not record its batch step: %s",
                     (uint64_t)(uintptr_t)arg, err->text);
}

static void write_step(batchd_t *b, bjob_t *j, const json_t *phx)
{
    json_t *u = json_object_get(phx, "usage");
    char id[24], st[24], en[24], cpus[16], ec[8], es[8], ucpu[32], scpu[32], rss[32];
    snprintf(id, sizeof(id), "%" PRIu64, j->id);
    snprintf(st, sizeof(st), "%lld", (long long)j->start_time);
    snprintf(en, sizeof(en), "%lld", (long long)j->end_time);
    snprintf(cpus, sizeof(cpus), "%u", j->ntasks ? j->tasks[0].cpus : 1);
    snprintf(ec, sizeof(ec), "%d", j->exit_code & 255);
    snprintf(es, sizeof(es), "%d", j->exit_signal & 127);
    json_t *v;
    const char *p[11] = {id,
                         phx_job_state_name(j->state),
                         st,
                         en,
                         j->ntasks ? j->tasks[0].host : "?",
                         cpus,
                         ec,
                         es};
    if ((v = json_object_get(u, "user_cpu_s")) && json_is_number(v)) {
        snprintf(ucpu, sizeof(ucpu), "%.6f", json_number_value(v));
        p[8] = ucpu;
    }
    if ((v = json_object_get(u, "system_cpu_s")) && json_is_number(v)) {
        snprintf(scpu, sizeof(scpu), "%.6f", json_number_value(v));
        p[9] = scpu;
    }
    if ((v = json_object_get(u, "max_rss_bytes")) && json_is_integer(v)) {
        snprintf(rss, sizeof(rss), "%lld", (long long)json_integer_value(v));
        p[10] = rss;
    }
    phx_error_t err;
    if (phx_db_store_write_row(b->store, &batchd_batch_step_rows, p, step_written,
                               (void *)(uintptr_t)j->id, &err) < 0)
        phx_log_errx("job %" PRIu64 ": could not queue its batch step: %s", j->id,
                     err.text);
}

void batchd_job_finish(batchd_t *b, bjob_t *j, phx_job_state_t st, phx_job_reason_t why)
{
    int64_t now = batchd_now();
    j->end_time = now < j->start_time ? j->start_time : now;
    if (j->start_time >= 0)
        batchd_usage_add(b, j->user,
                         (double)j->alloc_cpus * (double)(j->end_time - j->start_time),
                         now);
    if (j->requeue_asked && j->cancel_requested)
        j->requeue_asked = BATCHD_REQUEUE_NO; /* a cancel after it wins */
    bool requeue = st == PHX_JOB_NODE_FAIL && j->spec.requeue != 0 &&
                   j->requeue_count < b->max_requeue && !j->cancel_requested &&
                   !j->requeue_asked;
    if (requeue) /* recorded as it ended, then requeued, as a requeue asked */
        j->requeue_asked = BATCHD_REQUEUE_NODE_FAIL;
    /* a requeue (asked: requeue.c; after a node failure, above) records the
     * run as it ended first (its jobs row final, so charged in usage_daily;
     * its batch step written: batch_ended), then requeues it */
    batchd_job_set_state(b, j, st, why);
    phx_log_info("job %" PRIu64 ": %s, exit %d:%d%s", j->id, phx_job_state_name(st),
                 j->exit_code, j->exit_signal, requeue ? " (to be requeued)" : "");
    b->ended++;
    if (!j->requeue_asked) /* else batch_ended, once the run is recorded */
        batchd_sched_job_done(b, j);
}

/* Every task of a job has the job's time limit, and the first to reach it
 * may end the others before their own limit does: a batch step killed by a
 * signal (or ending as a killed command's 128+n) once the job has run its
 * time limit, within a second, is the job's TIMEOUT, as in Slurm. */
static bool killed_at_limit(const bjob_t *j, long long code, long long sig)
{
    int64_t limit = j->spec.time_limit;
    return limit > 0 && j->start_time >= 0 && (sig != 0 || code > 128) &&
           batchd_now() - j->start_time >= limit - 1;
}

/* The batch step ended: the job's state from its status. */
static void batch_ended(batchd_t *b, bjob_t *j, const char *state, const char *reason,
                        const json_t *phx)
{
    long long code = json_integer_value(json_object_get(phx, "exit_code"));
    long long sig = json_integer_value(json_object_get(phx, "signal"));
    j->exit_code = (int)code;
    j->exit_signal = (int)sig;
    phx_job_state_t st;
    if (strcmp(state, "TASK_FINISHED") == 0) {
        st = PHX_JOB_COMPLETED;
    } else if (reason && strcmp(reason, "REASON_MAX_COMPLETION_TIME_REACHED") == 0) {
        st = PHX_JOB_TIMEOUT;
    } else if (reason && strcmp(reason, "REASON_CONTAINER_LIMITATION_MEMORY") == 0) {
        st = PHX_JOB_OUT_OF_MEMORY;
    } else if (j->cancel_requested && strcmp(state, "TASK_KILLED") == 0) {
        st = PHX_JOB_CANCELLED;
    } else if (j->node_fail || node_lost(state, reason)) {
        st = PHX_JOB_NODE_FAIL;
    } else if (!j->cancel_requested && killed_at_limit(j, code, sig)) {
        st = PHX_JOB_TIMEOUT;
    } else {
        st = j->cancel_requested ? PHX_JOB_CANCELLED : PHX_JOB_FAILED;
        if (st == PHX_JOB_FAILED && code == 0 && sig == 0)
            j->exit_code = 1; /* launch error, killed by the master */
    }
    j->ending = true;
    batchd_job_finish(b, j, st, PHX_REASON_NONE);
    if (phx_job_state_is_final(j->state))
        write_step(b, j, phx);
    batchd_job_kill_live(b, j);
    if (j->requeue_asked && phx_job_state_is_final(j->state)) {
        batchd_requeue_now(b, j); /* the run recorded: back in the queue */
        batchd_sched_job_done(b, j);
    }
}

void batchd_on_update(batchd_t *b, const json_t *status)
{
    const char *id =
        json_string_value(json_object_get(json_object_get(status, "task_id"), "value"));
    const char *state = json_string_value(json_object_get(status, "state"));
    const char *reason = json_string_value(json_object_get(status, "reason"));
    const char *msg = json_string_value(json_object_get(status, "message"));
    if (!id || !state)
        return;
    bjob_t *j = phx_hmap_get(b->tasks, id);
    if (!j) {
        if (!terminal(state) && strcmp(state, "TASK_LOST") != 0) {
            const char *agent = json_string_value(
                json_object_get(json_object_get(status, "agent_id"), "value"));
            phx_log_warnx("task %s is unknown: killing it", id);
            phx_fwc_kill(b->fwc, id, agent);
        }
        return;
    }
    size_t idx = SIZE_MAX;
    for (size_t i = 0; i < j->ntasks; i++)
        if (strcmp(j->tasks[i].id, id) == 0)
            idx = i;
    if (!terminal(state)) {
        if (idx == SIZE_MAX && j->state != PHX_JOB_RUNNING)
            phx_fwc_kill(b->fwc, id, NULL);
        return;
    }
    phx_hmap_del(b->tasks, id);
    if (idx == SIZE_MAX) /* a task of an earlier run of a requeued job */
        return;
    bj_task_t *t = &j->tasks[idx];
    if (t->ended)
        return;
    t->ended = true;
    if (j->tasks_live > 0)
        j->tasks_live--;
    phx_log_debug("task %s of job %" PRIu64 ": %s%s%s", id, j->id, state,
                  reason ? " " : "", reason ? reason : "");
    if (node_lost(state, reason))
        j->node_fail = true;
    if (j->state != PHX_JOB_RUNNING || j->ending)
        return;
    if (idx == 0) {
        if (msg && strcmp(state, "TASK_FINISHED") != 0)
            phx_log_info("job %" PRIu64 ": batch step %s: %s", j->id, state, msg);
        batch_ended(b, j, state, reason, json_object_get(status, "phx"));
    } else if (j->node_fail) {
        /* the master kills the rest of the gang; make sure of it */
        batchd_job_kill_live(b, j);
    }
}
