/* A running job's tasks are killed for a change (a cancel, a requeue, a
 * time limit lowered under its run time) only once the write recording the
 * change has committed (doc/batchd.md, "When a change is answered").
 *
 * Killed first, a batchd that dies before the commit would leave tasks
 * killed for a change the database does not know: a restarted batchd would
 * end the cancelled job FAILED (its batch step killed by a signal), the
 * requeued one too, never requeued.  So the write's callback is wrapped
 * (batchd_kill_wrap): while such writes of a job are outstanding
 * (bjob_t.kill_wait), nothing kills it for them (batchd_kills_resume and
 * batchd_update_tick wait), and the last one's callback, which the store
 * runs after the commit, sends the kill of a cancel or requeue.  A write
 * that failed sends it too: the change was made in memory and holds until
 * batchd restarts, as the 503 answer says.  A kill that cannot go (not
 * subscribed) goes on subscribing (batchd_kills_resume).
 *
 * Likewise a pending job released or updated is not placed until the write
 * recording its change has committed (batchd_job_persist_placed:
 * bjob_t.place_wait, read by order.c): started first, a batchd that dies
 * before the commit would leave it running while the database says it is
 * held (or of its old shape), a wasted start. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemons/batchd/batchd.h"
#include "lib/log.h"

typedef struct kill_wait {
    batchd_t *b;
    uint64_t id; /* found again: the job may have left memory meanwhile */
    phx_db_done_f cb;
    void *arg;
} kill_wait_t;

void batchd_job_kill_live(batchd_t *b, const bjob_t *j)
{
    for (size_t i = 0; i < j->ntasks; i++)
        if (!j->tasks[i].ended && b->fwc)
            phx_fwc_kill(b->fwc, j->tasks[i].id, j->tasks[i].agent_id);
}

/* A cancel or requeue of j's run asks its tasks killed. */
static bool kill_due(const bjob_t *j)
{
    return j->state == PHX_JOB_RUNNING && !j->ending &&
           (j->requeue_asked || j->cancel_requested);
}

/* The last write of j's change is done: its kill, if the change is one. */
static void kill_settle(batchd_t *b, uint64_t id)
{
    bjob_t *j = batchd_job_find(b, id);
    if (!j || j->kill_wait == 0 || --j->kill_wait > 0 || !kill_due(j))
        return;
    batchd_job_kill_live(b, j);
}

static void kill_written(const phx_error_t *err, phx_db_result_t *const *r, int n,
                         void *arg)
{
    kill_wait_t *w = arg;
    if (err)
        phx_log_warnx("job %" PRIu64 ": its change was not recorded; it holds until "
                      "batchd restarts",
                      w->id);
    /* the kill before the write's own callback, which may answer the
     * change (ack.c): the master is asked first */
    kill_settle(w->b, w->id);
    if (w->cb)
        w->cb(err, r, n, w->arg);
    free(w);
}

bool batchd_kill_wrap(batchd_t *b, bjob_t *j, phx_db_done_f *cb, void **arg)
{
    kill_wait_t *w = malloc(sizeof(*w));
    if (!w) /* its callback unchanged: the caller kills at once */
        return false;
    *w = (kill_wait_t){b, j->id, *cb, *arg};
    j->kill_wait++;
    *cb = kill_written;
    *arg = w;
    return true;
}

void batchd_kill_unwrap(batchd_t *b, phx_db_done_f cb, void *arg)
{
    if (cb != kill_written)
        return;
    kill_wait_t *w = arg;
    kill_settle(b, w->id); /* never written: the change holds in memory */
    free(w);
}

/* j's change was queued unwrapped (no memory): its kill now, unless
 * another write of j's waits (that one's commit sends it). */
static void kill_unwaited(batchd_t *b, bjob_t *j)
{
    if (j->kill_wait == 0 && kill_due(j))
        batchd_job_kill_live(b, j);
}

void batchd_job_persist_kill(batchd_t *b, bjob_t *j)
{
    phx_db_done_f cb = batchd_job_written;
    void *arg = (void *)(uintptr_t)j->id;
    bool waits = batchd_kill_wrap(b, j, &cb, &arg);
    if (batchd_job_persist_cb(b, j, cb, arg) < 0)
        batchd_kill_unwrap(b, cb, arg);
    else if (!waits)
        kill_unwaited(b, j);
}

void batchd_kills_resume(batchd_t *b)
{
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (!kill_due(j) || j->kill_wait > 0) /* else its commit kills it */
            continue;
        phx_log_info("job %" PRIu64 ": its %s, asked before a restart, goes on", j->id,
                     j->cancel_requested                      ? "cancel"
                     : j->requeue_asked == BATCHD_REQUEUE_YES ? "requeue"
                                                              : "requeuehold");
        batchd_job_kill_live(b, j);
    }
}

void batchd_job_cancel(batchd_t *b, bjob_t *j, uid_t by)
{
    char id[24], uid[16], now[24];
    snprintf(id, sizeof(id), "%" PRIu64, j->id);
    snprintf(uid, sizeof(uid), "%u", (unsigned)by);
    /* batchd's clock, as start_time: the loader compares them */
    snprintf(now, sizeof(now), "%" PRId64, batchd_now());
    const char *p[] = {id, uid, now};
    bool running = j->state == PHX_JOB_RUNNING;
    if (running) {
        j->cancel_requested = true;
        if (j->requeue_asked) { /* a cancel after it wins, across a restart too */
            j->requeue_asked = BATCHD_REQUEUE_NO;
            batchd_job_persist(b, j);
        }
    }
    phx_db_done_f cb = batchd_job_written;
    void *arg = (void *)(uintptr_t)j->id;
    /* a running job's tasks killed once jobs.cancel_uid is committed */
    bool waits = running && batchd_kill_wrap(b, j, &cb, &arg);
    phx_error_t err;
    if (batchd_write(b,
                     "UPDATE jobs SET cancel_uid = $2, cancel_time = "
                     "to_timestamp($3::bigint) WHERE id = $1",
                     3, p, cb, arg, &err) < 0) {
        phx_log_errx("job %" PRIu64 ": could not queue its cancel: %s", j->id,
                     err.text);
        batchd_kill_unwrap(b, cb, arg);
        waits = true; /* done by the unwrap */
    }
    if (j->state == PHX_JOB_PENDING) {
        j->end_time = batchd_now();
        batchd_job_set_state(b, j, PHX_JOB_CANCELLED, PHX_REASON_NONE);
        batchd_sched_job_done(b, j);
        return;
    }
    if (running && !waits)
        kill_unwaited(b, j);
}

typedef struct place_wait {
    batchd_t *b;
    uint64_t id; /* found again: the job may have left memory meanwhile */
} place_wait_t;

static void place_written(const phx_error_t *err, phx_db_result_t *const *r, int n,
                          void *arg)
{
    place_wait_t *w = arg;
    batchd_job_written(err, r, n, (void *)(uintptr_t)w->id);
    bjob_t *j = batchd_job_find(w->b, w->id);
    /* committed (or failed: the change holds in memory, as the 503 answer
     * says): the job may be placed, by a pass asked now; the priority
     * order, made without it, is made again */
    if (j && j->place_wait > 0 && --j->place_wait == 0 && j->state == PHX_JOB_PENDING) {
        w->b->prio_n = 0;
        w->b->prio_dirty = true;
        batchd_sched_dirty(w->b);
    }
    free(w);
}

void batchd_job_persist_placed(batchd_t *b, bjob_t *j)
{
    place_wait_t *w = malloc(sizeof(*w));
    if (!w) { /* no memory to wait: placed at once, as before */
        batchd_job_persist(b, j);
        return;
    }
    *w = (place_wait_t){b, j->id};
    j->place_wait++;
    if (batchd_job_persist_cb(b, j, place_written, w) < 0) { /* never written */
        j->place_wait--;
        free(w);
    }
}
