/* Topology-aware packing of one job's tasks into one offer.
 *
 * The offer's "topology" lists its free cores per NUMA domain.  Each task
 * gets cpus_per_task cores: inside one NUMA domain when one has room (the
 * fullest domain that still fits, so domains fill before new ones are
 * opened), else inside one socket, else anywhere (a task larger than any
 * socket's free cores; sched.c chooses offers where that happens only as
 * the last resort).  --ntasks-per-socket caps the tasks of one socket; a cyclic
 * socket distribution starts each task on the socket with the fewest tasks.
 * Exclusive jobs take every core of the node.
 *
 * A task goes into a socket whenever one has room, so the tasks an offer
 * holds are those phx_bf_socket_tasks counts over its free cores per socket
 * (batchd_offer_tasks): sched.c chooses offers by that count. */
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"

void batchd_offer_clear(boffer_t *o)
{
    for (int i = 0; i < o->nnumas; i++)
        free(o->numas[i].cores);
    free(o->numas);
    o->numas = NULL;
    o->nnumas = 0;
}

int batchd_offer_parse(boffer_t *o, const json_t *offer)
{
    batchd_offer_clear(o);
    const char *id =
        json_string_value(json_object_get(json_object_get(offer, "id"), "value"));
    const char *agent =
        json_string_value(json_object_get(json_object_get(offer, "agent_id"), "value"));
    const char *host = json_string_value(json_object_get(offer, "hostname"));
    if (!id || !agent)
        return -1;
    snprintf(o->id, sizeof(o->id), "%s", id);
    snprintf(o->agent_id, sizeof(o->agent_id), "%s", agent);
    snprintf(o->host, sizeof(o->host), "%s", host ? host : agent);
    const char *rq = json_string_value(json_object_get(offer, "request_id"));
    snprintf(o->request_id, sizeof(o->request_id), "%s", rq ? rq : "");
    json_t *rb = json_object_get(json_object_get(offer, "release_by"), "nanoseconds");
    o->release_by = json_is_integer(rb) ? (double)json_integer_value(rb) / 1e9 : 0;
    o->cpus = 0;
    o->mem = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(offer, "resources"), i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        double v =
            json_number_value(json_object_get(json_object_get(r, "scalar"), "value"));
        if (name && strcmp(name, "mem") == 0)
            o->mem = (uint64_t)v;
    }
    json_t *topo = json_object_get(offer, "topology");
    json_t *numas = json_object_get(topo, "numa");
    o->gpus = batchd_gpu_mask(json_object_get(topo, "gpu_ids"));
    size_t n = json_array_size(numas);
    o->numas = calloc(n ? n : 1, sizeof(*o->numas));
    if (!o->numas)
        return -1;
    json_t *d;
    json_array_foreach(numas, i, d)
    {
        struct bo_numa *bn = &o->numas[o->nnumas];
        json_t *cores = json_object_get(d, "cores");
        bn->numa = (int)json_integer_value(json_object_get(d, "numa"));
        bn->socket = (int)json_integer_value(json_object_get(d, "socket"));
        bn->mem = (int64_t)(json_integer_value(json_object_get(d, "mem")) >> 20);
        bn->cores = calloc(json_array_size(cores) + 1, sizeof(int));
        if (!bn->cores)
            return -1;
        size_t k;
        json_t *c;
        bn->lo = bn->hi = -1;
        json_array_foreach(cores, k, c)
        {
            int core = (int)json_integer_value(c);
            bn->cores[bn->ncores++] = core;
            bn->lo = bn->lo < 0 || core < bn->lo ? core : bn->lo;
            bn->hi = core > bn->hi ? core : bn->hi;
        }
        bn->gpus = batchd_gpu_mask(json_object_get(d, "gpus"));
        o->cpus += (uint32_t)bn->ncores;
        o->nnumas++;
    }
    return 0;
}

static void take_cores(struct bo_numa *bn, uint32_t count, int *cores, uint32_t *n)
{
    for (uint32_t i = 0; i < count && bn->ncores > 0; i++) {
        cores[(*n)++] = bn->cores[0];
        memmove(bn->cores, bn->cores + 1, (size_t)(bn->ncores - 1) * sizeof(int));
        bn->ncores--;
    }
}

static int max_socket(const boffer_t *o)
{
    int m = 0;
    for (int i = 0; i < o->nnumas; i++)
        if (o->numas[i].socket > m)
            m = o->numas[i].socket;
    return m;
}

static uint32_t socket_free(const boffer_t *o, int s)
{
    uint32_t n = 0;
    for (int i = 0; i < o->nnumas; i++)
        if (o->numas[i].socket == s)
            n += (uint32_t)o->numas[i].ncores;
    return n;
}

uint32_t batchd_job_per_socket(const phx_jobspec_t *s)
{
    if (s->ntasks_per_socket != PHX_UNSET && s->ntasks_per_socket > 0)
        return (uint32_t)s->ntasks_per_socket;
    return s->hint && strcmp(s->hint, "memory_bound") == 0 ? 1 : 0;
}

uint32_t batchd_offer_tasks(const boffer_t *o, uint32_t cpt, uint32_t per_socket,
                            bool spread)
{
    uint32_t few[16], *sf = few;
    size_t n = (size_t)max_socket(o) + 1;
    if (n > sizeof(few) / sizeof(few[0]) && !(sf = calloc(n, sizeof(*sf))))
        return 0;
    for (size_t s = 0; s < n; s++)
        sf[s] = socket_free(o, (int)s);
    uint32_t t = phx_bf_socket_tasks(sf, n, cpt, per_socket, spread);
    if (sf != few)
        free(sf);
    return t;
}

/* One task: its cores into cores[*n...]; the socket used, or -1. */
static int place_task(boffer_t *o, uint32_t cpt, const uint32_t *per_sock, uint32_t cap,
                      bool cyclic, int *cores, uint32_t *n)
{
    int best = -1;
    for (int i = 0; i < o->nnumas; i++) {
        struct bo_numa *bn = &o->numas[i];
        if ((uint32_t)bn->ncores < cpt || (cap && per_sock[bn->socket] >= cap))
            continue;
        if (best < 0) {
            best = i;
            continue;
        }
        struct bo_numa *bb = &o->numas[best];
        if (cyclic && per_sock[bn->socket] != per_sock[bb->socket]) {
            if (per_sock[bn->socket] < per_sock[bb->socket])
                best = i;
        } else if (bn->ncores < bb->ncores) {
            best = i;
        }
    }
    if (best >= 0) {
        take_cores(&o->numas[best], cpt, cores, n);
        return o->numas[best].socket;
    }
    int sockets = max_socket(o) + 1, bs = -1;
    for (int s = 0; s < sockets; s++) {
        uint32_t f = socket_free(o, s);
        if (f < cpt || (cap && per_sock[s] >= cap))
            continue;
        if (bs < 0 || (cyclic ? per_sock[s] < per_sock[bs] : f < socket_free(o, bs)))
            bs = s;
    }
    uint32_t need = cpt;
    for (int i = 0; bs >= 0 && i < o->nnumas && need > 0; i++) {
        if (o->numas[i].socket != bs)
            continue;
        uint32_t k =
            (uint32_t)o->numas[i].ncores < need ? (uint32_t)o->numas[i].ncores : need;
        take_cores(&o->numas[i], k, cores, n);
        need -= k;
    }
    if (bs >= 0)
        return bs;
    /* larger than any socket's free cores: spread, only without a cap */
    if (cap || o->cpus < cpt)
        return -1;
    uint32_t total = 0;
    for (int i = 0; i < o->nnumas; i++)
        total += (uint32_t)o->numas[i].ncores;
    if (total < cpt)
        return -1;
    for (int i = 0; i < o->nnumas && need > 0; i++) {
        uint32_t k =
            (uint32_t)o->numas[i].ncores < need ? (uint32_t)o->numas[i].ncores : need;
        take_cores(&o->numas[i], k, cores, n);
        need -= k;
    }
    return o->numas[0].socket;
}

int batchd_place(boffer_t *o, uint32_t tasks, uint32_t cpt, uint32_t per_socket,
                 bool cyclic, bool whole, int *cores, uint32_t *ncores)
{
    *ncores = 0;
    if (whole) {
        for (int i = 0; i < o->nnumas; i++)
            take_cores(&o->numas[i], (uint32_t)o->numas[i].ncores, cores, ncores);
        return *ncores >= tasks * cpt ? 0 : -1;
    }
    int sockets = max_socket(o) + 1;
    uint32_t *per_sock = calloc((size_t)sockets, sizeof(*per_sock));
    if (!per_sock)
        return -1;
    for (uint32_t t = 0; t < tasks; t++) {
        int s = place_task(o, cpt, per_sock, per_socket, cyclic, cores, ncores);
        if (s < 0) {
            free(per_sock);
            return -1;
        }
        per_sock[s]++;
    }
    free(per_sock);
    return 0;
}
