/* phx-agent: the PMIx server's requests (on the loop thread, handed over by
 * pmix/) turned into frames to the master, and the master's answers back
 * into PMIx: fences, direct modex, abort, connect/finalize, lost ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemons/agent/step.h"
#include "lib/json.h"
#include "lib/log.h"

/* DMODEX_REQ being answered by the local PMIx server. */
typedef struct dmx_req {
    struct dmx_req *next;
    uint64_t req;
    uint64_t step, id;
    char to[256];
} dmx_req_t;

static dmx_req_t *dmx_reqs;
static uint64_t next_req;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static phx_step_rank_t *rank_of(const char *nspace, int rank)
{
    phx_lstep_t *s = phx_lstep_by_nspace(nspace);
    for (int i = 0; s && i < s->nlocal; i++)
        if (s->local[i].rank == rank)
            return &s->local[i];
    return NULL;
}

static void op_fence(void *arg, const char *nspace, uint64_t token, const void *data,
                     size_t len)
{
    phx_agentd_t *a = arg;
    phx_lstep_t *s = phx_lstep_by_nspace(nspace);
    if (!s) {
        phx_pmix_fence_done(phx_step_pmix(), token, -1, NULL, 0);
        return;
    }
    s->fence_token = token;
    s->fence_t0 = mono();
    if (phx_agentd_send(a,
                        json_pack("{s:s, s:I, s:I}", "type", "FENCE", "step",
                                  (json_int_t)s->id, "seq", (json_int_t)s->fence_seq++),
                        data, len) < 0) {
        phx_pmix_fence_done(phx_step_pmix(), token, -1, NULL, 0);
        phx_lstep_abort(s, 1, false, "could not send a fence to the master");
    }
}

void phx_step_on_fence_done(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    phx_lstep_t *s = phx_lstep_by_id(
        (uint64_t)json_integer_value(json_object_get(f->header, "step")));
    if (!s || !s->fence_token)
        return;
    uint64_t token = s->fence_token;
    s->fence_token = 0;
    double dt = mono() - s->fence_t0;
    if (s->fences == 0 || dt < s->fence_min)
        s->fence_min = dt;
    if (dt > s->fence_max)
        s->fence_max = dt;
    s->fence_sum += dt;
    s->fences++;
    phx_pmix_fence_done(phx_step_pmix(), token, 0, f->attach, f->attach_len);
}

static void op_dmodex(void *arg, const char *nspace, int rank, uint64_t token)
{
    phx_agentd_t *a = arg;
    phx_lstep_t *s = phx_lstep_by_nspace(nspace);
    if (s)
        s->dmodex++;
    if (!s || rank < 0 ||
        phx_agentd_send(a,
                        json_pack("{s:s, s:I, s:i, s:I}", "type", "DMODEX", "step",
                                  (json_int_t)s->id, "rank", rank, "id",
                                  (json_int_t)token),
                        NULL, 0) < 0)
        phx_pmix_dmodex_done(phx_step_pmix(), token, -1, NULL, 0);
}

void phx_step_on_dmodex_done(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    json_t *id = json_object_get(f->header, "id");
    int status = (int)json_integer_value(json_object_get(f->header, "status"));
    if (json_is_integer(id))
        phx_pmix_dmodex_done(phx_step_pmix(), (uint64_t)json_integer_value(id), status,
                             f->attach, f->attach_len);
}

/* Another agent wants the data of one of our ranks. */
void phx_step_on_dmodex_req(phx_agentd_t *a, const phx_frame_t *f)
{
    const json_t *h = f->header;
    phx_lstep_t *s =
        phx_lstep_by_id((uint64_t)json_integer_value(json_object_get(h, "step")));
    const char *to = json_string_value(json_object_get(h, "to"));
    uint64_t id = (uint64_t)json_integer_value(json_object_get(h, "id"));
    int rank = (int)json_integer_value(json_object_get(h, "rank"));
    dmx_req_t *d = s && to ? calloc(1, sizeof(*d)) : NULL;
    if (!d) {
        if (s && to)
            phx_agentd_send(a,
                            json_pack("{s:s, s:I, s:I, s:s, s:i}", "type",
                                      "DMODEX_DATA", "step", (json_int_t)s->id, "id",
                                      (json_int_t)id, "to", to, "status", -1),
                            NULL, 0);
        return;
    }
    d->req = ++next_req;
    d->step = s->id;
    d->id = id;
    snprintf(d->to, sizeof(d->to), "%s", to);
    d->next = dmx_reqs;
    dmx_reqs = d;
    if (phx_pmix_dmodex_request(phx_step_pmix(), s->nspace, rank, d->req) < 0) {
        dmx_reqs = d->next;
        phx_agentd_send(a,
                        json_pack("{s:s, s:I, s:I, s:s, s:i}", "type", "DMODEX_DATA",
                                  "step", (json_int_t)s->id, "id", (json_int_t)id, "to",
                                  to, "status", -1),
                        NULL, 0);
        free(d);
    }
}

static void op_dmodex_data(void *arg, uint64_t req, int status, const void *data,
                           size_t len)
{
    phx_agentd_t *a = arg;
    for (dmx_req_t **pp = &dmx_reqs; *pp; pp = &(*pp)->next) {
        dmx_req_t *d = *pp;
        if (d->req != req)
            continue;
        *pp = d->next;
        phx_agentd_send(a,
                        json_pack("{s:s, s:I, s:I, s:s, s:i}", "type", "DMODEX_DATA",
                                  "step", (json_int_t)d->step, "id", (json_int_t)d->id,
                                  "to", d->to, "status", status),
                        data, len);
        free(d);
        return;
    }
}

static void op_abort(void *arg, const char *nspace, int rank, int status,
                     const char *msg)
{
    (void)arg;
    phx_lstep_t *s = phx_lstep_by_nspace(nspace);
    if (!s)
        return;
    char why[300];
    snprintf(why, sizeof(why), "rank %d called MPI_Abort (%d)%s%s", rank, status,
             msg && *msg ? ": " : "", msg ? msg : "");
    phx_lstep_abort(s, status, false, why);
}

static void op_connected(void *arg, const char *nspace, int rank)
{
    (void)arg;
    phx_step_rank_t *r = rank_of(nspace, rank);
    if (r)
        r->connected = true;
}

static void op_finalized(void *arg, const char *nspace, int rank)
{
    (void)arg;
    phx_step_rank_t *r = rank_of(nspace, rank);
    if (r)
        r->finalized = true;
}

static void op_lost(void *arg, const char *nspace, int rank)
{
    (void)arg;
    phx_step_rank_t *r = rank_of(nspace, rank);
    if (!r || r->finalized || r->step->killed)
        return;
    char why[160];
    snprintf(why, sizeof(why), "rank %d lost its PMIx connection without MPI_Finalize",
             rank);
    phx_lstep_abort(r->step, 1, false, why);
}

void phx_step_pmix_clear(void)
{
    while (dmx_reqs) {
        dmx_req_t *d = dmx_reqs;
        dmx_reqs = d->next;
        free(d);
    }
}

const phx_pmix_ops_t phx_step_pmix_ops = {
    .fence = op_fence,
    .dmodex = op_dmodex,
    .dmodex_data = op_dmodex_data,
    .abort = op_abort,
    .connected = op_connected,
    .finalized = op_finalized,
    .lost = op_lost,
};
