/* The eligible pending jobs in priority order, for a pass (sched.c): who
 * may start (eligibility: not held, begin time, dependencies, an account
 * its user may use (InvalidAccount), an array's %N, its user's running jobs
 * (userlim.c)), and the multifactor
 * order of priority.h, kept for up to a second between passes. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "lib/log.h"

static bool eligible(batchd_t *b, bjob_t *j, int64_t now, uint32_t *arr_running)
{
    phx_job_reason_t was = j->reason;
    if (batchd_job_held(j))
        return false; /* until released (hold.c) */
    if (j->place_wait > 0)
        return false; /* its release or update is not committed yet (ack.c) */
    if (j->spec.begin_time != PHX_UNSET && j->spec.begin_time > now) {
        j->reason = PHX_REASON_BEGIN_TIME;
        goto wait;
    }
    if (j->dep.count > 0) {
        phx_dep_env_t env;
        batchd_dep_env(b, j, &env);
        phx_dep_result_t r = phx_depend_eval(&j->dep, &env, now);
        if (r == PHX_DEP_NEVER) {
            j->end_time = now;
            batchd_job_set_state(b, j, PHX_JOB_CANCELLED, PHX_REASON_DEPENDENCY_NEVER);
            phx_log_info("job %" PRIu64 ": dependency never satisfied; cancelled",
                         j->id);
            batchd_request_drop(b, j); /* cancelled by the pass's flush */
            b->prio_dirty = true;      /* its own dependents may now be decided */
            return false;
        }
        if (r == PHX_DEP_WAITING) {
            j->reason = PHX_REASON_DEPENDENCY;
            goto wait;
        }
    }
    if (j->account_invalid) { /* until its user may use it again */
        if (j->reason != PHX_REASON_INVALID_ACCOUNT && j->request_id[0])
            batchd_request_drop(b, j); /* the master stops holding nodes */
        j->reason = PHX_REASON_INVALID_ACCOUNT;
        goto wait;
    }
    if (j->eligible_time < 0 || j->reason == PHX_REASON_INVALID_ACCOUNT) {
        if (j->eligible_time < 0)
            j->eligible_time = now;
        j->reason = PHX_REASON_PRIORITY;
        batchd_job_persist(b, j);
    }
    if (j->array_job_id && j->array_max_run) {
        if (*arr_running == UINT32_MAX)
            *arr_running = batchd_array_running(b, j->array_job_id);
        if (*arr_running >= j->array_max_run) {
            if (j->request_id[0]) /* the master stops holding nodes for it */
                batchd_request_drop(b, j);
            j->reason = PHX_REASON_JOB_ARRAY_TASK_LIMIT;
            goto wait;
        }
    }
    if (!batchd_userlim_may_run(b, j->uid)) { /* batchd.max_running_jobs_per_user */
        if (j->request_id[0]) /* the master stops holding nodes for it */
            batchd_request_drop(b, j);
        j->reason = PHX_REASON_QOS_MAX_JOBS_PER_USER;
        goto wait;
    }
    return true;
wait:
    if (j->reason != was)
        batchd_job_persist(b, j);
    return false;
}

static int cmp_prio(const void *a, const void *b)
{
    return phx_priority_cmp(a, b);
}

/* The pending jobs in priority order, computed at most once per second
 * (Slurm recomputes every PriorityCalcPeriod, 5 minutes by default): a pass
 * over a queue of thousands then reads the first jobs of the order instead
 * of prioritising and sorting them all.  A pass rebuilds it when it is older,
 * or when it runs dry while jobs were queued since (batchd->prio_dirty).
 * Pointers into it never outlive their jobs: an expiry empties it. */
static void prio_cache_store(batchd_t *b, bjob_t **cand, const phx_prio_job_t *prio,
                             size_t n, int64_t now)
{
    bjob_t **order = realloc(b->prio_order, (n + 1) * sizeof(*order));
    uint32_t *value = realloc(b->prio_value, (n + 1) * sizeof(*value));
    if (order)
        b->prio_order = order;
    if (value)
        b->prio_value = value;
    b->prio_n = 0;
    if (!order || !value)
        return;
    for (size_t i = 0; i < n; i++) {
        order[i] = cand[prio[i].id];
        value[i] = prio[i].priority;
    }
    b->prio_n = n;
    b->prio_at = now;
    b->prio_dirty = false;
}

/* The jobs of the order are far apart in memory and walked in priority
 * order, a cache miss or more each: what eligible() reads of a job is asked
 * for this many jobs ahead. */
#define PREFETCH 8
static void prefetch_job(const bjob_t *j)
{
    __builtin_prefetch(&j->state);
    __builtin_prefetch(&j->spec.begin_time);
    __builtin_prefetch(&j->array_job_id);
}

/* Up to want eligible jobs from the cached order into cand/prio, in order. */
static size_t prio_cache_take(batchd_t *b, int64_t now, bjob_t **cand,
                              phx_prio_job_t *prio, size_t want)
{
    size_t n = 0;
    uint64_t last_array = 0;
    uint32_t arr_running = UINT32_MAX;
    for (size_t i = 0; i < b->prio_n && n < want; i++) {
        bjob_t *j = b->prio_order[i];
        if (i + PREFETCH < b->prio_n)
            prefetch_job(b->prio_order[i + PREFETCH]);
        if (j->state != PHX_JOB_PENDING)
            continue;
        if (j->array_job_id != last_array) { /* count an array's running once */
            last_array = j->array_job_id;
            arr_running = UINT32_MAX;
        }
        if (!eligible(b, j, now, &arr_running))
            continue;
        if (j->array_job_id && j->array_max_run && arr_running != UINT32_MAX)
            arr_running++; /* counted as if it started; it may */
        cand[n] = j;
        prio[n] = (phx_prio_job_t){.id = n, .priority = b->prio_value[i]};
        n++;
    }
    return n;
}

size_t batchd_order(batchd_t *b, int64_t now, size_t want, bjob_t **cand,
                    phx_prio_job_t *prio)
{
    size_t n = 0, live = batchd_live_from(b);
    if (!want || want > b->npending)
        want = b->npending;
    /* dry below bf_max_job_test jobs (all of them are asked for when there
     * are several pools: fewer is not dry then) */
    size_t dry =
        b->bf.max_job_test && want > b->bf.max_job_test ? b->bf.max_job_test : want;
    /* a clock stepped back rebuilds the order too */
    if (b->prio_n > 0 && now >= b->prio_at && now - b->prio_at < 1) {
        n = prio_cache_take(b, now, cand, prio, want);
        if (n < dry && b->prio_dirty)
            n = 0; /* dry, and newer jobs wait: prioritise again */
        else       /* want of them: more may be eligible (suppress_or_revive) */
            return b->neligible = n < want ? n : b->npending;
    }
    uint64_t last_array = 0;
    uint32_t arr_running = UINT32_MAX;
    /* fair share: every user's decayed usage against the total, once per
     * pass and once per run of jobs of the same user */
    double total = 0, fairshare = 0;
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(b->usage, &pos, NULL, &v))
        total += phx_usage_value(v, now, b->weights.half_life);
    size_t users = phx_hmap_count(b->usage) ? phx_hmap_count(b->usage) : 1;
    uid_t last_uid = 0;
    bool have_last = false;
    for (size_t i = live; i < b->njobs && n < b->npending; i++) {
        bjob_t *j = b->order[i];
        if (j->state != PHX_JOB_PENDING)
            continue;
        if (j->array_job_id != last_array) {
            last_array = j->array_job_id;
            arr_running = UINT32_MAX;
        }
        if (!eligible(b, j, now, &arr_running))
            continue;
        if (j->array_job_id && j->array_max_run && arr_running != UINT32_MAX)
            arr_running++; /* counted as if it started; it may */
        cand[n] = j;
        prio[n].id = n;
        prio[n].submit_time = j->submit_time;
        prio[n].eligible_time = j->eligible_time;
        prio[n].cpus = phx_jobspec_cpus(&j->spec);
        prio[n].nice = j->spec.nice == PHX_UNSET ? 0 : j->spec.nice;
        /* by uid, not name: a pass reads every pending job */
        if (!have_last || j->uid != last_uid) {
            double u = batchd_usage_get(b, j->user, now);
            fairshare =
                phx_fairshare_factor(total > 0 ? u / total : 0, 1.0 / (double)users);
            last_uid = j->uid;
            have_last = true;
        }
        prio[n].fairshare = fairshare;
        prio[n].partition = batchd_parts_prio(&b->parts, j->spec.partition);
        n++;
    }
    int64_t ccpus = batchd_cluster_cpus(b);
    for (size_t i = 0; i < n; i++)
        prio[i].priority = phx_priority_compute(&b->weights, &prio[i], ccpus, now);
    qsort(prio, n, sizeof(*prio), cmp_prio);
    prio_cache_store(b, cand, prio, n, now);
    return b->neligible = n;
}
