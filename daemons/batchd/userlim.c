/* Per-user and queue-wide job limits (batchd.h, doc/batchd.md "Limits").
 *
 * batchd.max_jobs bounds the jobs pending or running in the queue (Slurm's
 * MaxJobCount), batchd.max_jobs_per_user a user's (a QOS's
 * MaxSubmitJobsPerUser: every array task is a job): a submission past
 * either is refused whole, and nothing is stored.  A submission's jobs are
 * counted from the moment it is checked until its rows are committed (then
 * they are in the queue) or refused: 8 parallel submissions of a user one
 * job under the limit let one through, not 8.  batchd.max_running_jobs_per_user
 * (MaxJobsPerUser) keeps a user's further jobs PENDING with the reason
 * QOSMaxJobsPerUserLimit.  Operators (batchd.operators) are held to
 * max_jobs only.  The counts live in memory, kept by every state change
 * (queue.c) and rebuilt with the queue at start. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemons/batchd/batchd.h"

typedef struct bulim {
    uint32_t live; /* pending or running */
    uint32_t running;
    uint32_t inflight; /* of submissions not committed yet */
} bulim_t;

static bulim_t *user_of(batchd_t *b, uid_t uid, bool make)
{
    char key[16];
    snprintf(key, sizeof(key), "%u", (unsigned)uid);
    if (!b->users && (!make || !(b->users = phx_hmap_create())))
        return NULL;
    bulim_t *u = phx_hmap_get(b->users, key);
    if (!u && make && (u = calloc(1, sizeof(*u))) &&
        phx_hmap_put(b->users, key, u) < 0) {
        free(u);
        u = NULL;
    }
    return u;
}

static bool live(phx_job_state_t s)
{
    return s == PHX_JOB_PENDING || s == PHX_JOB_RUNNING;
}

void batchd_userlim_move(batchd_t *b, uid_t uid, phx_job_state_t from,
                         phx_job_state_t to)
{
    bool was = from != PHX_JOB_STATE_COUNT && live(from), is = live(to);
    bool ran = from == PHX_JOB_RUNNING, runs = to == PHX_JOB_RUNNING;
    if (was == is && ran == runs)
        return;
    bulim_t *u = user_of(b, uid, true);
    if (!u)
        return; /* out of memory: the limits of this user are not kept */
    if (is && !was)
        u->live++;
    else if (was && !is && u->live > 0)
        u->live--;
    if (runs && !ran)
        u->running++;
    else if (ran && !runs && u->running > 0)
        u->running--;
}

int batchd_userlim_reserve(batchd_t *b, uid_t uid, const char *user, uint32_t n,
                           int *status, phx_error_t *err)
{
    size_t queued = b->npending + b->nrunning + b->inflight;
    if (b->max_jobs && queued + n > b->max_jobs) {
        *status = 429; /* a busy queue: try again later, as sbatch does */
        return phx_error_set(err,
                             "the queue holds %zu jobs and batchd.max_jobs is %" PRIu32
                             ": %" PRIu32 " more cannot be queued now (MaxJobCount)",
                             queued, b->max_jobs, n);
    }
    bool bound = b->max_jobs_per_user && !batchd_is_operator(b, uid);
    bulim_t *u = user_of(b, uid, true);
    if (!u) {
        *status = 500;
        return phx_error_set(err, "out of memory");
    }
    uint64_t mine = (uint64_t)u->live + u->inflight;
    if (bound && mine + n > b->max_jobs_per_user) {
        *status = 403;
        return phx_error_set(err,
                             "user %s has %" PRIu64 " jobs pending or running and "
                             "batchd.max_jobs_per_user is %" PRIu32 ": %" PRIu32
                             " more are refused (QOSMaxSubmitJobPerUserLimit)",
                             user, mine, b->max_jobs_per_user, n);
    }
    u->inflight += n;
    b->inflight += n;
    return 0;
}

void batchd_userlim_release(batchd_t *b, uid_t uid, uint32_t n)
{
    bulim_t *u = user_of(b, uid, false);
    if (u)
        u->inflight = u->inflight > n ? u->inflight - n : 0;
    b->inflight = b->inflight > n ? b->inflight - n : 0;
}

bool batchd_userlim_may_run(const batchd_t *b, uid_t uid)
{
    if (!b->max_running_per_user || !b->users || batchd_is_operator(b, uid))
        return true;
    char key[16];
    snprintf(key, sizeof(key), "%u", (unsigned)uid);
    const bulim_t *u = phx_hmap_get(b->users, key);
    return !u || u->running < b->max_running_per_user;
}

void batchd_userlim_clear(batchd_t *b)
{
    if (!b->users)
        return;
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(b->users, &pos, NULL, &v))
        free(v);
    phx_hmap_destroy(b->users);
    b->users = NULL;
}
