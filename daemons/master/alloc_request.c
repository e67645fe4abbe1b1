/* Allocator: the gang request queue (add, cancel, expiry, removal, the
 * getter).  Serving the requests is alloc_hold.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc_impl.h"

void alloc_request_free(struct alloc_request *r)
{
    if (!r)
        return;
    free(r->id);
    free((void *)r->shape.agents);
    free(r);
}

void alloc_request_remove(phx_alloc_t *a, size_t i, bool tell,
                          phx_alloc_request_end_t why)
{
    struct alloc_request *r = a->reqs[i];
    memmove(&a->reqs[i], &a->reqs[i + 1], (a->nreqs - i - 1) * sizeof(*a->reqs));
    a->nreqs--;
    r->fw->nrequests--;
    a->plan_dirty = true;
    if (tell && a->req_cb)
        a->req_cb(r->fw->id, r->id, why, a->req_arg);
    alloc_request_free(r);
}

void alloc_requests_drop_fw(phx_alloc_t *a, struct alloc_fw *fw)
{
    for (size_t i = 0; i < a->nreqs;)
        if (a->reqs[i]->fw == fw)
            alloc_request_remove(a, i, false, PHX_ALLOC_REQUEST_EXPIRED);
        else
            i++;
}

void alloc_requests_expire(phx_alloc_t *a, double now)
{
    for (size_t i = 0; i < a->nreqs;) {
        struct alloc_request *r = a->reqs[i];
        if (r->expires_at > 0 && r->expires_at <= now) {
            alloc_request_remove(a, i, true, PHX_ALLOC_REQUEST_EXPIRED);
            continue;
        }
        alloc_note_expiry(a, r->expires_at);
        i++;
    }
}

static int fit_empty(const phx_topo_t *t, const phx_alloc_shape_t *s, phx_alloc_t *a)
{
    for (int n = 0; n < phx_topo_nnumas(t); n++) {
        a->numa_cores[n] = phx_topo_numa_ncores(t, n);
        a->numa_mem[n] = phx_topo_numa_memory(t, n);
    }
    return alloc_fit(t, s, a->numa_cores, a->numa_mem, phx_topo_ngpus(t), a->sock_cores,
                     a->sock_mem);
}

/* ---- API ---- */

static int cmp_int_desc(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a < b) - (a > b);
}

static int shape_ok(const phx_alloc_shape_t *s, phx_error_t *err)
{
    if (s->nbundles < 1 || s->cores < 1) {
        errno = EINVAL;
        return phx_error_set(err, "gang request needs at least 1 bundle of 1 core");
    }
    if (s->kind != PHX_ALLOC_BUNDLE_NUMA && s->kind != PHX_ALLOC_BUNDLE_SOCKET &&
        s->kind != PHX_ALLOC_BUNDLE_ANY) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has an unknown bundle kind");
    }
    if (s->gpus < 0 || s->agent_gpus < 0) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has a negative GPU count");
    }
    if (s->per_agent < 0 || s->per_socket < 0 || s->min_agents < 0) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has a negative bundle limit");
    }
    if (s->max_agents < 0 || (s->max_agents > 0 && s->max_agents < s->min_agents)) {
        errno = EINVAL;
        return phx_error_set(err,
                             "gang request wants at most %d agents but at least %d",
                             s->max_agents, s->min_agents);
    }
    if (s->min_agents > s->nbundles) {
        errno = EINVAL;
        return phx_error_set(err,
                             "gang request wants %d agents for %d bundles: at least "
                             "one bundle on each",
                             s->min_agents, s->nbundles);
    }
    if (s->per_socket > 0 && s->kind == PHX_ALLOC_BUNDLE_ANY) {
        errno = EINVAL;
        return phx_error_set(err, "bundles per socket need bundles of kind numa or "
                                  "socket, not any");
    }
    if (s->nagents > 0 && !s->agents) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has an agent count but no agents");
    }
    return 0;
}

static struct alloc_request *request_find(const phx_alloc_t *a,
                                          const struct alloc_fw *fw, const char *id,
                                          size_t *index)
{
    for (size_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i]->fw == fw && strcmp(a->reqs[i]->id, id) == 0) {
            if (index)
                *index = i;
            return a->reqs[i];
        }
    return NULL;
}

int phx_alloc_request_add(phx_alloc_t *a, const char *framework, const char *request_id,
                          const phx_alloc_shape_t *shape, double duration,
                          double expires_at, double now, phx_error_t *err)
{
    struct alloc_fw *fw = alloc_fw_find(a, framework);
    if (!fw) {
        errno = ENOENT;
        return phx_error_set(err, "unknown framework %s", framework ? framework : "");
    }
    if (!request_id || !*request_id) {
        errno = EINVAL;
        return phx_error_set(err, "gang request id is empty");
    }
    if (shape_ok(shape, err) < 0)
        return phx_error_prefix(err, "gang request %s", request_id);
    if (request_find(a, fw, request_id, NULL)) {
        errno = EEXIST;
        return phx_error_set(err, "gang request %s of framework %s already exists",
                             request_id, framework);
    }
    phx_alloc_shape_t sorted = *shape;
    if (shape->agents && !(sorted.agents = alloc_shape_agents_copy(shape))) {
        errno = ENOMEM;
        return phx_error_set(err, "could not add gang request %s: out of memory",
                             request_id);
    }
    long capacity = 0, agents = 0;
    int most_gpus = 0; /* on one available (listed) agent */
    int *fits = calloc(a->nagents + 1, sizeof(*fits));
    if (!fits) {
        free((void *)sorted.agents);
        errno = ENOMEM;
        return phx_error_set(err, "could not add gang request %s: out of memory",
                             request_id);
    }
    for (size_t i = 0; i < a->nagents; i++)
        if (a->agents[i]->available && alloc_shape_allows(&sorted, a->agents[i]->id)) {
            int fit = fit_empty(a->agents[i]->topo, &sorted, a);
            int ng = phx_topo_ngpus(a->agents[i]->topo);
            most_gpus = ng > most_gpus ? ng : most_gpus;
            fits[agents] = fit;
            agents += fit > 0;
        }
    /* the most bundles: over all agents, or the max_agents holding most */
    if (sorted.max_agents > 0 && agents > sorted.max_agents)
        qsort(fits, (size_t)agents, sizeof(*fits), cmp_int_desc);
    for (long i = 0; i < agents && (sorted.max_agents == 0 || i < sorted.max_agents);
         i++)
        capacity += fits[i];
    free(fits);
    if (agents == 0 && (shape->gpus > 0 || shape->agent_gpus > 0) &&
        (long)shape->gpus + shape->agent_gpus > most_gpus) {
        free((void *)sorted.agents);
        errno = ENOSPC;
        return phx_error_set(err,
                             "gang request %s needs %ld GPUs on an agent (%d per "
                             "bundle, %d more per agent) but the available%s agents "
                             "have at most %d",
                             request_id, (long)shape->gpus + shape->agent_gpus,
                             shape->gpus, shape->agent_gpus,
                             shape->agents ? " listed" : "", most_gpus);
    }
    if (agents < shape->min_agents) {
        free((void *)sorted.agents);
        errno = ENOSPC;
        return phx_error_set(err,
                             "gang request %s needs %d agents but only %ld of the "
                             "available%s agents can hold one of its bundles",
                             request_id, shape->min_agents, agents,
                             shape->agents ? " listed" : "");
    }
    if (capacity < shape->nbundles) {
        free((void *)sorted.agents);
        char gpus[80] = "";
        if (shape->gpus > 0 || shape->agent_gpus > 0)
            snprintf(gpus, sizeof(gpus),
                     "; %d GPUs per bundle and %d more on each agent", shape->gpus,
                     shape->agent_gpus);
        errno = ENOSPC;
        return phx_error_set(
            err,
            "gang request %s needs %d %s bundles of %d cores and %llu bytes (at most "
            "%d per agent, %d per socket, on at most %d agents, 0: any; on %s agents; "
            "%llu bytes more on each agent%s%s) but the available cluster can hold at "
            "most %ld",
            request_id, shape->nbundles, phx_alloc_bundle_kind_name(shape->kind),
            shape->cores, (unsigned long long)shape->mem, shape->per_agent,
            shape->per_socket, shape->max_agents, shape->agents ? "the listed" : "any",
            (unsigned long long)shape->agent_mem, gpus,
            shape->whole_agent ? ", whole agents"
            : shape->whole_mem ? ", all of its memory"
                               : "",
            capacity);
    }
    struct alloc_request *r = calloc(1, sizeof(*r));
    struct alloc_request **reqs = realloc(a->reqs, (a->nreqs + 1) * sizeof(*reqs));
    if (reqs)
        a->reqs = reqs;
    if (!r || !reqs || !(r->id = strdup(request_id))) {
        free((void *)sorted.agents);
        free(r);
        errno = ENOMEM;
        return phx_error_set(err, "could not add gang request %s: out of memory",
                             request_id);
    }
    r->fw = fw;
    r->shape = sorted;
    r->added_at = now;
    r->duration = duration;
    r->expires_at = expires_at > 0 ? expires_at : 0;
    r->seq = a->next_seq++;
    r->position = (int)a->nreqs;
    a->reqs[a->nreqs++] = r;
    fw->nrequests++;
    alloc_note_expiry(a, r->expires_at);
    a->plan_dirty = true;
    return 0;
}

int phx_alloc_request_cancel(phx_alloc_t *a, const char *framework,
                             const char *request_id)
{
    struct alloc_fw *fw = alloc_fw_find(a, framework);
    size_t i;
    if (!fw || !request_id || !request_find(a, fw, request_id, &i)) {
        errno = ENOENT;
        return -1;
    }
    alloc_request_remove(a, i, false, PHX_ALLOC_REQUEST_EXPIRED);
    return 0;
}

int phx_alloc_request_info(const phx_alloc_t *a, const char *framework,
                           const char *request_id, phx_alloc_request_info_t *out)
{
    const struct alloc_fw *fw = alloc_fw_find(a, framework);
    const struct alloc_request *r =
        fw && request_id ? request_find(a, fw, request_id, NULL) : NULL;
    if (!r) {
        errno = ENOENT;
        return -1;
    }
    bool holding = r->holding;
    *out = (phx_alloc_request_info_t){
        .state = holding ? PHX_ALLOC_REQUEST_HOLDING : PHX_ALLOC_REQUEST_WAITING,
        .shape = r->shape,
        .added_at = r->added_at,
        .duration = r->duration,
        .expires_at = r->expires_at,
        .position = r->position,
        .held_bundles = holding ? r->held_bundles : 0,
        .hold_agents = holding ? r->hold_agents : 0,
        .satisfiable_at = holding ? r->satisfiable_at : 0,
    };
    return 0;
}
