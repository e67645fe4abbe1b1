/* Requeue, as Slurm's scontrol requeue and requeuehold (doc/jobs.md,
 * "Requeue"):
 *
 *   POST /api/v1/jobs/ID/requeue       back to PENDING
 *   POST /api/v1/jobs/ID/requeuehold   back to PENDING, held
 *
 * ID: a job id, A_T (task T of array A), or an array job id A: every task
 * of the array that is running or has ended (pending ones are left as they
 * are).  A running job's tasks are killed, and once its batch step has
 * ended (its processes gone) it is PENDING again; a job that has ended and
 * is still in batchd's memory (batchd.keep_ended) is PENDING at once.
 * Either way its restart count (requeue_count) goes up by one, its age
 * starts again, and the next run gets new nodes, a new batch step and
 * output files opened as its --open-mode says (truncated by default, as
 * Slurm's).  A running job's run is first recorded as it ended (its state,
 * FAILED when killed for the requeue; its charge in usage_daily, its batch
 * step), then the job is PENDING with no start time.  Its dependency,
 * satisfied when it started, is dropped (as Slurm shows it "(null)" once
 * met): the job it named may be long gone.  Refused, by name: a pending job, a job
 * submitted with
 * --no-requeue (Slurm's "never be requeued under any circumstances"), and
 * another user's job (404, as the rest of the API).  The owner or an
 * operator may requeue; requeuehold holds as hold does (an operator's is an
 * admin hold).  A requeue asked for a running job is kept in its jobs row
 * (requeue_asked, migration 011) until it is carried out, so that a
 * restarted batchd still carries it out when the batch step ends (and
 * kills the job's tasks again once subscribed: batchd_kills_resume, which
 * does the same for a cancel kept in jobs.cancel_uid); its tasks are
 * killed once that is committed (kill.c).  A requeue clears
 * jobs.cancel_uid: it names who cancelled the job's current run.  The
 * answer comes once the change is committed (batchd_reply). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "lib/http.h"
#include "lib/log.h"

/* The reason a requeued job waits with: the hold asked for, else the
 * scheduler's (the next pass sets its eligible time and its reason; its
 * dependency is gone: batchd_requeue_dep_clear). */
static phx_job_reason_t requeued_reason(const bjob_t *j)
{
    switch (j->requeue_asked) {
    case BATCHD_REQUEUE_HOLD: return PHX_REASON_HELD;
    case BATCHD_REQUEUE_HOLD_ADMIN: return PHX_REASON_HELD_ADMIN;
    case BATCHD_REQUEUE_NODE_FAIL: return PHX_REASON_NODE_FAIL_REQUEUED;
    default:
        return j->account_invalid ? PHX_REASON_INVALID_ACCOUNT : PHX_REASON_PRIORITY;
    }
}

void batchd_requeue_dep_clear(batchd_t *b, bjob_t *j)
{
    if (!j->spec.dependency && j->dep.count == 0)
        return;
    phx_depend_clear(&j->dep);
    free(j->spec.dependency);
    j->spec.dependency = NULL;
    batchd_job_persist_spec(b, j);
}

/* A cancel of its last run no longer applies to the job (nor to a
 * restarted batchd: queue.c's loader reads jobs.cancel_uid). */
static void cancel_clear(batchd_t *b, const bjob_t *j)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, j->id);
    const char *p[] = {id};
    phx_error_t err;
    if (batchd_write(b,
                     "UPDATE jobs SET cancel_uid = NULL, cancel_time = NULL "
                     "WHERE id = $1 AND cancel_uid IS NOT NULL",
                     1, p, batchd_job_written, (void *)(uintptr_t)j->id, &err) < 0)
        phx_log_errx("job %" PRIu64 ": could not queue its requeue: %s", j->id,
                     err.text);
}

void batchd_requeue_reset(batchd_t *b, bjob_t *j)
{
    batchd_requeue_dep_clear(b, j);
    j->requeue_count++;
    int64_t end = j->end_time >= j->start_time ? j->end_time : batchd_now();
    j->requeued_run = j->start_time >= 0 ? end - j->start_time : -1; /* mailed */
    j->start_time = j->end_time = -1; /* its run is in the jobs row's history */
    j->eligible_time = -1;            /* its age starts again (order.c sets it) */
    j->ending = j->node_fail = j->cancel_requested = false;
    /* an ended job was not re-checked when its user left the account */
    j->account_invalid = b->enforce_accounts &&
                         !batchd_accounts_member(b->accounts, j->user, j->spec.account);
    b->prio_n = 0; /* the priority order left it out: made again */
    b->prio_dirty = true;
}

void batchd_requeue_now(batchd_t *b, bjob_t *j)
{
    cancel_clear(b, j);
    batchd_requeue_reset(b, j);
    phx_job_reason_t why = requeued_reason(j);
    bool node_fail = j->requeue_asked == BATCHD_REQUEUE_NODE_FAIL;
    j->requeue_asked = BATCHD_REQUEUE_NO;
    batchd_job_set_state(b, j, PHX_JOB_PENDING, why);
    if (node_fail)
        phx_log_notice("job %" PRIu64 ": node failure; requeued (%d of %d)", j->id,
                       j->requeue_count, b->max_requeue);
    else
        phx_log_notice("job %" PRIu64 ": requeued (restart %d)%s", j->id,
                       j->requeue_count, batchd_job_held(j) ? ", held" : "");
}

void batchd_requeue_resume(batchd_t *b)
{
    bool any = false;
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (!phx_job_state_is_final(j->state) || !j->requeue_asked)
            continue;
        phx_log_notice("job %" PRIu64 ": its %s run was recorded, not its requeue: "
                       "requeued now",
                       j->id, phx_job_state_name(j->state));
        batchd_requeue_now(b, j);
        any = true;
    }
    if (any)
        batchd_sched_dirty(b);
}

/* Requeue j for by: 1 done or under way, -1 with err (and the HTTP status
 * in *status). */
static int requeue_job(batchd_t *b, bjob_t *j, uid_t by, bool hold, int *status,
                       phx_error_t *err)
{
    char name[48];
    batchd_job_text(j, name, sizeof(name));
    if (j->state == PHX_JOB_PENDING) {
        *status = 409;
        return phx_error_set(err,
                             "job %s is pending: only a running or ended job can "
                             "be requeued",
                             name);
    }
    if (j->spec.requeue == 0) {
        *status = 409;
        return phx_error_set(err,
                             "job %s was submitted with --no-requeue: it is never "
                             "requeued",
                             name);
    }
    if (j->state == PHX_JOB_RUNNING && (j->cancel_requested || j->ending)) {
        *status = 409;
        return phx_error_set(err, "job %s is ending (%s): it cannot be requeued", name,
                             j->cancel_requested ? "cancelled" : "its script ended");
    }
    j->requeue_asked = !hold                       ? BATCHD_REQUEUE_YES
                       : batchd_is_operator(b, by) ? BATCHD_REQUEUE_HOLD_ADMIN
                                                   : BATCHD_REQUEUE_HOLD;
    phx_log_info("job %s: requeue%s by uid %u (%s)", name, hold ? "hold" : "",
                 (unsigned)by, phx_job_state_name(j->state));
    if (j->state != PHX_JOB_RUNNING) {
        batchd_requeue_now(b, j);
        batchd_sched_dirty(b);
        return 1;
    }
    /* end.c requeues it once the batch step has ended; kept in its row
     * until then, for a restart of batchd meanwhile, and its tasks killed
     * once that is committed (kill.c) */
    batchd_job_persist_kill(b, j);
    return 1;
}

void batchd_api_requeue(batchd_t *b, struct evhttp_request *req, uid_t uid,
                        const char *idtext, size_t len, bool hold)
{
    char *end;
    uint64_t id = strtoull(idtext, &end, 10);
    bjob_t *one = NULL;
    bool array = false;
    if (len > 0 && end == idtext + len && id > 0) {
        bjob_t *j = batchd_job_find(b, id);
        array = (!j || (j->array_job_id == id)) && batchd_array_any_task(b, id);
        one = j;
    } else if (end > idtext && *end == '_' && end[1] >= '0' && end[1] <= '9') {
        char *tend;
        unsigned long long t = strtoull(end + 1, &tend, 10);
        if (tend == idtext + len && t <= INT64_MAX)
            one = batchd_array_task_find(b, id, (int64_t)t);
    }
    int n = 0, status = 0, refused = 0;
    phx_error_t err = {0}, first = {0};
    if (array) { /* every running or ended task of array id */
        bool seen = false;
        for (size_t i = 0; i < b->njobs; i++) {
            bjob_t *x = b->order[i];
            if (x->array_job_id != id || !batchd_may_act(b, uid, x))
                continue;
            seen = true;
            if (x->state == PHX_JOB_PENDING)
                continue;
            int st = 0;
            if (requeue_job(b, x, uid, hold, &st, &err) < 0) {
                if (refused++ == 0)
                    first = err, status = st;
            } else {
                n++;
            }
        }
        if (!seen) {
            phx_http_reply_error(req, 404, "invalid job id %.*s", (int)len, idtext);
            return;
        }
        if (n == 0 && refused == 0) {
            phx_http_reply_error(req, 409,
                                 "array %" PRIu64 " has no running or ended task to "
                                 "requeue",
                                 id);
            return;
        }
    } else {
        bjob_t *j = one;
        if (!j || !batchd_may_act(b, uid, j)) {
            phx_http_reply_error(req, 404, "invalid job id %.*s", (int)len, idtext);
            return;
        }
        if (requeue_job(b, j, uid, hold, &status, &first) < 0)
            refused = 1;
        else
            n = 1;
    }
    if (refused && n == 0) {
        phx_http_reply_error(req, status, "%s", first.text);
        return;
    }
    json_t *r = json_pack("{s:s#, s:i, s:i}", "job_id", idtext, (int)len, "requeued", n,
                          "refused", refused);
    if (r && refused)
        json_object_set_new(r, "error", json_string(first.text));
    batchd_reply(b, req, 200, r); /* once committed */
}
