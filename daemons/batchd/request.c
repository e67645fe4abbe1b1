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
} request_ctx_t;

/* A refused request (the master found the shape unholdable: nodes gone,
 * a shape batchd and the master count differently) is logged, forgotten
 * and asked again in 30 s rather than left standing for 300 s. */
static void request_answered(phx_fwc_t *c, int status, const char *body, void *arg)
{
    (void)c;
    request_ctx_t *ctx = arg;
    bjob_t *j = status == 202 ? NULL : batchd_job_find(ctx->b, ctx->job_id);
    if (j && strcmp(j->request_id, ctx->request_id) == 0) {
        phx_log_warnx("job %" PRIu64 ": gang request %s refused (HTTP %d): %s", j->id,
                      ctx->request_id, status, body);
        batchd_request_forget(ctx->b, j);
        j->request_after = batchd_now() + 30;
    }
    free(ctx);
}

/* The gang request of the reserved job j of pool. */
void batchd_request_send(batchd_t *b, bjob_t *j, uint32_t pool,
                         const phx_bf_decision_t *d, int64_t now)
{
    if ((j->request_id[0] && now < j->request_until && j->request_pool == pool) ||
        now < j->request_after)
        return;
    /* the pool's other jobs' requests go (one outstanding per pool), once
     * this one is built: if it cannot be, they stay and are cancelled later */
    json_t *cancel = json_array();
    for (size_t i = 0; i < b->nrequested; i++) {
        bjob_t *x = b->requested[i];
        if (x == j || x->request_pool == pool) /* its own old one too */
            json_array_append_new(cancel, json_string(x->request_id));
    }
    snprintf(j->request_id, sizeof(j->request_id), "job-%" PRIu64 "-%" PRIu64, j->id,
             ++b->request_seq);
    j->request_until = now + 300;
    j->request_pool = pool;
    json_t *req = batchd_gang_request(b, j, d, j->request_id);
    json_t *call = json_pack("{s:s, s:{s:[], s:o}}", "type", "REQUEST", "request",
                             "requests", "cancel", cancel);
    json_t *reqs = json_object_get(json_object_get(call, "request"), "requests");
    if (!req || !reqs || json_array_append(reqs, req) < 0) {
        phx_log_errx("job %" PRIu64 ": could not build its gang request", j->id);
        batchd_request_forget(b, j);
        json_decref(req);
        json_decref(call);
        return;
    }
    for (size_t i = 0; i < b->nrequested;) {
        bjob_t *x = b->requested[i];
        if (x != j && x->request_pool == pool) {
            batchd_request_forget(b, x); /* cancelled by this call */
            continue;
        }
        i++;
    }
    if (request_track(b, j) < 0) { /* untracked, it could not be cancelled */
        phx_log_errx("job %" PRIu64 ": out of memory for its gang request", j->id);
        batchd_request_forget(b, j);
        json_decref(req);
        json_decref(call);
        return;
    }
    phx_log_info("job %" PRIu64 ": gang request %s for %" JSON_INTEGER_FORMAT
                 " %s bundles of %" JSON_INTEGER_FORMAT " cores",
                 j->id, j->request_id,
                 json_integer_value(json_object_get(req, "bundles")),
                 json_string_value(json_object_get(req, "kind")),
                 json_integer_value(json_object_get(req, "cpus")));
    json_decref(req);
    request_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx) {
        ctx->b = b;
        ctx->job_id = j->id;
        snprintf(ctx->request_id, sizeof(ctx->request_id), "%s", j->request_id);
    }
    if (phx_fwc_call(b->fwc, call, ctx ? request_answered : NULL, ctx) < 0)
        free(ctx);
}

void batchd_sched_parts_changed(batchd_t *b)
{
    b->parts_gen++;
    json_t *cancel = json_array();
    while (b->nrequested > 0) {
        bjob_t *j = b->requested[0];
        json_array_append_new(cancel, json_string(j->request_id));
        batchd_request_forget(b, j);
    }
    if (json_array_size(cancel) > 0 && b->fwc && b->subscribed)
        phx_fwc_call(b->fwc,
                     json_pack("{s:s, s:{s:[], s:O}}", "type", "REQUEST", "request",
                               "requests", "cancel", cancel),
                     NULL, NULL);
    json_decref(cancel);
    batchd_sched_dirty(b);
}

/* (sched.c's) a job ended: its gang request goes. */
void batchd_sched_job_done(batchd_t *b, bjob_t *j)
{
    if (j->request_id[0] && b->fwc && b->subscribed) {
        json_t *call = json_pack("{s:s, s:{s:[], s:[s]}}", "type", "REQUEST", "request",
                                 "requests", "cancel", j->request_id);
        if (call)
            phx_fwc_call(b->fwc, call, NULL, NULL);
    }
    batchd_request_forget(b, j);
    /* its end may make jobs eligible (dependencies, an array's %N) that
     * the priority order left out */
    b->prio_dirty = true;
    batchd_sched_dirty(b);
}
