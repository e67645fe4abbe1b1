/* batchd's gang requests (doc/scheduler-api.md): the reserved job of each
 * pool of partitions asks the master to hold nodes for it as they free up
 * (sched.c decides which).  One request is outstanding per pool; the jobs
 * that have one are kept in b->requested, so that a new request cancels its
 * pool's others without a walk over every job. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "lib/log.h"

void batchd_request_forget(batchd_t *b, bjob_t *j)
{
    j->request_id[0] = 0;
    for (size_t i = 0; i < b->nrequested; i++)
        if (b->requested[i] == j) {
            b->requested[i] = b->requested[--b->nrequested];
            return;
        }
}

/* The master holds a request at most this long after it was sent: a
 * cancel not made by then is moot. */
#define REQUEST_EXPIRES 300

/* Request id is to be cancelled at the master: kept in b->cancels until
 * batchd_request_flush sends it. */
static void cancel_later(batchd_t *b, const char *id, int64_t now)
{
    size_t out = 0;
    for (size_t i = 0; i < b->ncancels; i++)
        if (b->cancels[i].until > now && strcmp(b->cancels[i].id, id) != 0)
            b->cancels[out++] = b->cancels[i];
    b->ncancels = out;
    if (!*id)
        return;
    if (b->ncancels == b->cancels_cap) {
        size_t cap = b->cancels_cap ? 2 * b->cancels_cap : 16;
        batchd_cancel_t *m = realloc(b->cancels, cap * sizeof(*m));
        if (!m) {
            phx_log_errx("gang request %s: out of memory to cancel it; held until "
                         "it expires",
                         id);
            return;
        }
        b->cancels = m;
        b->cancels_cap = cap;
    }
    batchd_cancel_t *c = &b->cancels[b->ncancels++];
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->until = now + REQUEST_EXPIRES;
}

void batchd_request_drop(batchd_t *b, bjob_t *j)
{
    cancel_later(b, j->request_id, batchd_now());
    batchd_request_forget(b, j);
}

void batchd_request_flush(batchd_t *b)
{
    if (b->ncancels == 0 || !b->fwc || !b->subscribed)
        return;
    int64_t now = batchd_now();
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < b->ncancels; i++)
        if (b->cancels[i].until > now &&
            json_array_append_new(ids, json_string(b->cancels[i].id)) < 0) {
            json_decref(ids);
            ids = NULL;
        }
    json_t *call = ids ? json_pack("{s:s, s:{s:[], s:O}}", "type", "REQUEST", "request",
                                   "requests", "cancel", ids)
                       : NULL;
    json_decref(ids);
    /* kept for the next try when it cannot go */
    if (call && phx_fwc_call(b->fwc, call, NULL, NULL) == 0)
        b->ncancels = 0;
}

void batchd_request_clear(batchd_t *b)
{
    free(b->requested);
    b->requested = NULL;
    b->nrequested = b->requested_cap = 0;
    free(b->cancels);
    b->cancels = NULL;
    b->ncancels = b->cancels_cap = 0;
}

/* j's request_id is set: keep it in b->requested.  -1 on ENOMEM. */
static int request_track(batchd_t *b, bjob_t *j)
{
    for (size_t i = 0; i < b->nrequested; i++)
        if (b->requested[i] == j)
            return 0;
    if (b->nrequested == b->requested_cap) {
        size_t cap = b->requested_cap ? 2 * b->requested_cap : 16;
        bjob_t **m = realloc(b->requested, cap * sizeof(*m));
        if (!m)
            return -1;
        b->requested = m;
        b->requested_cap = cap;
    }
    b->requested[b->nrequested++] = j;
    return 0;
}

typedef struct request_ctx {
    batchd_t *b;
    uint64_t job_id;
    char request_id[48];
    json_t *cancel; /* the call's cancels, or NULL */
} request_ctx_t;

/* A refused request (the master found the shape unholdable: nodes gone,
 * a shape batchd and the master count differently) is logged, forgotten
 * and asked again in 30 s rather than left standing for 300 s: the master
 * made the call's cancels and holds none of its requests.  A call without
 * an answer may have been held, or not made: its request and its cancels
 * are cancelled. */
static void request_answered(phx_fwc_t *c, int status, const char *body, void *arg)
{
    (void)c;
    request_ctx_t *ctx = arg;
    if (status == 0) {
        int64_t now = batchd_now();
        size_t i;
        json_t *id;
        json_array_foreach(ctx->cancel, i, id)
            cancel_later(ctx->b, json_string_value(id), now);
        cancel_later(ctx->b, ctx->request_id, now);
    }
    bjob_t *j = status == 202 ? NULL : batchd_job_find(ctx->b, ctx->job_id);
    if (j && strcmp(j->request_id, ctx->request_id) == 0) {
        phx_log_warnx("job %" PRIu64 ": gang request %s %s (HTTP %d): %s", j->id,
                      ctx->request_id, status ? "refused" : "got no answer", status,
                      body);
        batchd_request_forget(ctx->b, j);
        j->request_after = batchd_now() + 30;
    }
    json_decref(ctx->cancel);
    free(ctx);
}

/* The REQUEST call of j's new request: the pool's other requests and j's
 * own old one are cancelled (one outstanding per pool).  j is tracked;
 * when the call cannot be built, nothing changed but the tracking (an old
 * request is tracked already, so that never fails then). */
static json_t *request_call(batchd_t *b, bjob_t *j, uint32_t pool,
                            const phx_bf_decision_t *d, const char *id)
{
    json_t *req = batchd_gang_request(b, j, d, id);
    json_t *cancel = json_array();
    for (size_t i = 0; cancel && i < b->nrequested; i++) {
        bjob_t *x = b->requested[i];
        if ((x == j || x->request_pool == pool) &&
            json_array_append_new(cancel, json_string(x->request_id)) < 0) {
            json_decref(cancel);
            cancel = NULL;
        }
    }
    json_t *call = req && cancel
                       ? json_pack("{s:s, s:{s:[O], s:O}}", "type", "REQUEST",
                                   "request", "requests", req, "cancel", cancel)
                       : NULL;
    json_decref(req);
    json_decref(cancel);
    if (call && request_track(b, j) < 0) {
        json_decref(call);
        call = NULL;
    }
    return call;
}

/* The gang request of the reserved job j of pool. */
void batchd_request_send(batchd_t *b, bjob_t *j, uint32_t pool,
                         const phx_bf_decision_t *d, int64_t now)
{
    if ((j->request_id[0] && now < j->request_until && j->request_pool == pool) ||
        now < j->request_after)
        return;
    char id[sizeof(j->request_id)];
    snprintf(id, sizeof(id), "job-%" PRIu64 "-%" PRIu64, j->id, ++b->request_seq);
    json_t *call = request_call(b, j, pool, d, id);
    if (!call) {
        /* its old request (expired, or of another pool) goes all the same;
         * the pool's others stay, cancelled by its next request */
        phx_log_errx("job %" PRIu64 ": could not build its gang request", j->id);
        batchd_request_drop(b, j);
        j->request_after = now + 30;
        return;
    }
    json_t *r = json_object_get(call, "request");
    json_t *req = json_array_get(json_object_get(r, "requests"), 0);
    json_t *cancel = json_object_get(r, "cancel");
    for (size_t i = 0; i < b->nrequested;) {
        bjob_t *x = b->requested[i];
        if (x != j && x->request_pool == pool) {
            batchd_request_forget(b, x); /* cancelled by this call */
            continue;
        }
        i++;
    }
    snprintf(j->request_id, sizeof(j->request_id), "%s", id);
    j->request_until = now + REQUEST_EXPIRES;
    j->request_pool = pool;
    char what[160]; /* for the log, once sent (the call goes with req) */
    int len = snprintf(what, sizeof(what),
                       "%" JSON_INTEGER_FORMAT " %s bundles of %" JSON_INTEGER_FORMAT
                       " cores",
                       json_integer_value(json_object_get(req, "bundles")),
                       json_string_value(json_object_get(req, "kind")),
                       json_integer_value(json_object_get(req, "cpus")));
    json_int_t gpus = json_integer_value(json_object_get(req, "gpus"));
    json_int_t agent_gpus = json_integer_value(json_object_get(req, "agent_gpus"));
    if (len > 0 && (size_t)len < sizeof(what) && (gpus || agent_gpus))
        snprintf(what + len, sizeof(what) - (size_t)len,
                 " and %" JSON_INTEGER_FORMAT " GPUs each, %" JSON_INTEGER_FORMAT
                 " GPUs per node",
                 gpus, agent_gpus);
    request_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx) {
        ctx->b = b;
        ctx->job_id = j->id;
        snprintf(ctx->request_id, sizeof(ctx->request_id), "%s", id);
        ctx->cancel = json_incref(cancel);
    }
    json_incref(cancel);
    if (phx_fwc_call(b->fwc, call, ctx ? request_answered : NULL, ctx) < 0) {
        /* not sent (not subscribed): its cancels wait, its request was
         * never held */
        size_t i;
        json_t *x;
        json_array_foreach(cancel, i, x) cancel_later(b, json_string_value(x), now);
        batchd_request_forget(b, j);
        if (ctx)
            json_decref(ctx->cancel);
        free(ctx);
    } else {
        phx_log_info("job %" PRIu64 ": gang request %s for %s", j->id, id, what);
    }
    json_decref(cancel);
}

void batchd_sched_parts_changed(batchd_t *b)
{
    b->parts_gen++;
    while (b->nrequested > 0)
        batchd_request_drop(b, b->requested[0]);
    batchd_request_flush(b);
    batchd_sched_dirty(b);
}

/* (sched.c's) a job ended: its gang request goes. */
void batchd_sched_job_done(batchd_t *b, bjob_t *j)
{
    batchd_request_drop(b, j);
    batchd_request_flush(b);
    /* its end may make jobs eligible (dependencies, an array's %N) that
     * the priority order left out */
    b->prio_dirty = true;
    batchd_sched_dirty(b);
}
