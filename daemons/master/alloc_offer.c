/* Allocator: one framework's standing on an agent (its slot), making an
 * offer, offers coming back (return, used), task usage. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc_impl.h"

void alloc_task_free(struct alloc_task *t)
{
    if (!t)
        return;
    free(t->id);
    alloc_res_fini(&t->res);
    free(t);
}

struct alloc_slot *alloc_slot_find(struct alloc_agent *ag, const struct alloc_fw *fw)
{
    for (int i = 0; i < ag->nslots; i++)
        if (ag->slots[i].fw == fw)
            return &ag->slots[i];
    return NULL;
}

/* fw's slot on ag, made if missing (reusing an unused one); NULL on ENOMEM. */
struct alloc_slot *alloc_slot_get(struct alloc_agent *ag, struct alloc_fw *fw)
{
    struct alloc_slot *s = alloc_slot_find(ag, fw);
    if (s)
        return s;
    s = alloc_slot_find(ag, NULL);
    if (!s) {
        size_t cap = (size_t)ag->cap_slots;
        if (alloc_grow((void **)&ag->slots, &cap, (size_t)ag->nslots + 1, sizeof(*s)) <
            0)
            return NULL;
        ag->cap_slots = (int)cap;
        s = &ag->slots[ag->nslots];
        memset(s, 0, sizeof(*s));
        if (alloc_res_init(&s->offered, ag->topo) < 0)
            return NULL;
        ag->nslots++;
    }
    s->fw = fw;
    s->release_by = 0;
    s->filter_until = 0;
    return s;
}

/* Unused once nothing is offered and no filter is set. */
void alloc_slot_tidy(struct alloc_agent *ag, struct alloc_slot *s)
{
    if (alloc_res_empty(&s->offered)) {
        s->release_by = 0;
        if (s->filter_until == 0) {
            alloc_res_clear(&s->offered, ag->topo);
            s->fw = NULL;
        }
    }
}

phx_topo_grant_t *alloc_grant_get(struct alloc_agent *ag)
{
    if (ag->nspare > 0) /* not cleared: every filler clears, or reuses it whole */
        return ag->spare[--ag->nspare];
    return phx_topo_grant_create(ag->topo);
}

void alloc_grant_put(struct alloc_agent *ag, phx_topo_grant_t *g)
{
    if (g && ag->nspare < ALLOC_SPARE_GRANTS)
        ag->spare[ag->nspare++] = g;
    else
        phx_topo_grant_destroy(g);
}

/* Fill g with the tracker's free resources and allocate them.  A recycled
 * grant made for another topology object is replaced by a fresh one. */
static int take_free(struct alloc_agent *ag, phx_topo_grant_t **g)
{
    alloc_grant_from_free(*g, ag->free);
    if (phx_topo_free_alloc(ag->free, *g, NULL) == 0)
        return 0;
    phx_topo_grant_destroy(*g);
    if (!(*g = phx_topo_grant_create(ag->topo)))
        return -1;
    alloc_grant_from_free(*g, ag->free);
    return phx_topo_free_alloc(ag->free, *g, NULL);
}

int alloc_offer(struct alloc_agent *ag, struct alloc_fw *fw, bool held,
                double release_by, const char *request_id, phx_alloc_offer_f cb,
                void *arg)
{
    struct alloc_slot *s = alloc_slot_get(ag, fw);
    phx_topo_grant_t *g = s ? alloc_grant_get(ag) : NULL;
    if (!g) {
        errno = ENOMEM;
        return -1;
    }
    if (held) {
        alloc_res_to_grant(&ag->held, ag->topo, g);
    } else if (take_free(ag, &g) < 0) { /* cannot happen */
        alloc_grant_put(ag, g);
        alloc_slot_tidy(ag, s);
        return -1;
    }
    phx_alloc_offer_t o = {
        .framework = fw->id,
        .agent_id = ag->id,
        .grant = g,
        .cores = phx_topo_coreset_count(phx_topo_grant_cores(g)),
        .release_by = release_by,
        .request_id = request_id,
    };
    for (int n = 0; n < phx_topo_nnumas(ag->topo); n++)
        o.mem += phx_topo_grant_memory(g, n);
    if (cb(&o, arg) < 0) {
        if (!held)
            phx_topo_free_release(ag->free, g, NULL);
        alloc_grant_put(ag, g);
        fw->refused = true;
        alloc_slot_tidy(ag, s);
        return 0;
    }
    bool was_empty = alloc_res_empty(&s->offered);
    alloc_res_add(&s->offered, ag->topo, g);
    if (held)
        alloc_res_clear(&ag->held, ag->topo);
    /* Lent only if everything offered here is lent (the earliest deadline
     * cannot be told apart once merged, so keep the latest). */
    if (was_empty)
        s->release_by = release_by;
    else if (s->release_by > 0 && release_by > 0)
        s->release_by = s->release_by > release_by ? s->release_by : release_by;
    else
        s->release_by = 0;
    fw->offered_cores += o.cores;
    fw->offered_mem += o.mem;
    return 1;
}

int phx_alloc_grant_recycle(phx_alloc_t *a, int64_t agent_id, phx_topo_grant_t *grant)
{
    struct alloc_agent *ag = alloc_agent_find(a, agent_id);
    if (!ag) {
        phx_topo_grant_destroy(grant);
        errno = ENOENT;
        return -1;
    }
    alloc_grant_put(ag, grant);
    return 0;
}

/* ---- offers coming back, tasks ---- */

static int lookup(phx_alloc_t *a, int64_t agent_id, const char *framework,
                  struct alloc_agent **ag, struct alloc_fw **fw, phx_error_t *err)
{
    *ag = alloc_agent_find(a, agent_id);
    *fw = alloc_fw_find(a, framework);
    if (!*ag) {
        errno = ENOENT;
        return phx_error_set(err, "unknown agent %lld", (long long)agent_id);
    }
    if (!*fw) {
        errno = ENOENT;
        return phx_error_set(err, "unknown framework %s", framework ? framework : "");
    }
    return 0;
}

static struct alloc_slot *offered_part(struct alloc_agent *ag, struct alloc_fw *fw,
                                       const phx_topo_grant_t *part, phx_error_t *err)
{
    struct alloc_slot *s = alloc_slot_find(ag, fw);
    if (!s || !alloc_res_contains(&s->offered, ag->topo, part)) {
        errno = EINVAL;
        phx_error_set(err, "resources not offered to framework %s on agent %lld",
                      fw->id, (long long)ag->id);
        return NULL;
    }
    return s;
}

static bool grant_empty(const struct alloc_agent *ag, const phx_topo_grant_t *g)
{
    if (phx_topo_coreset_next(phx_topo_grant_cores(g), -1) >= 0)
        return false;
    for (int n = 0; n < phx_topo_nnumas(ag->topo); n++)
        if (phx_topo_grant_memory(g, n))
            return false;
    return phx_topo_grant_ngpus(g) == 0;
}

int phx_alloc_offer_return(phx_alloc_t *a, int64_t agent_id, const char *framework,
                           const phx_topo_grant_t *part, phx_error_t *err)
{
    struct alloc_agent *ag;
    struct alloc_fw *fw;
    if (lookup(a, agent_id, framework, &ag, &fw, err) < 0)
        return -1;
    if (grant_empty(ag, part))
        return 0; /* nothing left of an offer used whole */
    struct alloc_slot *s = offered_part(ag, fw, part, err);
    if (!s)
        return -1;
    if (phx_topo_free_release(ag->free, part, err) < 0)
        return phx_error_prefix(err, "could not return an offer of agent %lld",
                                (long long)agent_id);
    int before = s->offered.ncores;
    uint64_t mem_before = s->offered.total_mem;
    alloc_res_sub(&s->offered, ag->topo, part);
    fw->offered_cores -= before - s->offered.ncores;
    fw->offered_mem -= mem_before - s->offered.total_mem;
    alloc_slot_tidy(ag, s);
    alloc_mark(a, ag);
    return 0;
}

static struct alloc_task *task_find(struct alloc_agent *ag, const struct alloc_fw *fw,
                                    const char *id, int *index)
{
    for (int i = 0; i < ag->ntasks; i++)
        if (ag->tasks[i]->fw == fw && strcmp(ag->tasks[i]->id, id) == 0) {
            if (index)
                *index = i;
            return ag->tasks[i];
        }
    return NULL;
}

static struct alloc_task *task_new(struct alloc_agent *ag, struct alloc_fw *fw,
                                   const char *id, const phx_topo_grant_t *g,
                                   double end, phx_error_t *err)
{
    size_t cap = (size_t)ag->cap_tasks;
    struct alloc_task *t = calloc(1, sizeof(*t));
    if (!t || !(t->id = strdup(id)) || alloc_res_init(&t->res, ag->topo) < 0 ||
        alloc_grow((void **)&ag->tasks, &cap, (size_t)ag->ntasks + 1, sizeof(t)) < 0) {
        alloc_task_free(t);
        errno = ENOMEM;
        phx_error_set(err, "could not record task %s: out of memory", id);
        return NULL;
    }
    ag->cap_tasks = (int)cap;
    t->fw = fw;
    t->end = end;
    alloc_res_add(&t->res, ag->topo, g);
    ag->tasks[ag->ntasks++] = t;
    fw->used_cores += t->res.ncores;
    fw->used_mem += t->res.total_mem;
    return t;
}

static int task_id_ok(struct alloc_agent *ag, struct alloc_fw *fw, const char *task_id,
                      double end_time, phx_error_t *err)
{
    if (!task_id || !*task_id || !(end_time >= 0) || !isfinite(end_time)) {
        errno = EINVAL;
        return phx_error_set(err, "task id or end time is invalid");
    }
    if (task_find(ag, fw, task_id, NULL)) {
        errno = EEXIST;
        return phx_error_set(err, "task %s of framework %s is already on agent %lld",
                             task_id, fw->id, (long long)ag->id);
    }
    return 0;
}

int phx_alloc_offer_used(phx_alloc_t *a, int64_t agent_id, const char *framework,
                         const char *task_id, const phx_topo_grant_t *part,
                         double end_time, phx_error_t *err)
{
    struct alloc_agent *ag;
    struct alloc_fw *fw;
    if (lookup(a, agent_id, framework, &ag, &fw, err) < 0 ||
        task_id_ok(ag, fw, task_id, end_time, err) < 0)
        return -1;
    if (grant_empty(ag, part)) {
        errno = EINVAL;
        return phx_error_set(err, "task %s has no resources", task_id);
    }
    struct alloc_slot *s = offered_part(ag, fw, part, err);
    if (!s)
        return -1;
    bool lent = s->release_by > 0;
    if (lent && (end_time == 0 || end_time > s->release_by)) {
        errno = EINVAL;
        return phx_error_set(err,
                             "task %s must end by %.0f, the release time of its lent "
                             "resources on agent %lld",
                             task_id, s->release_by, (long long)agent_id);
    }
    struct alloc_task *t = task_new(ag, fw, task_id, part, end_time, err);
    if (!t)
        return -1;
    t->lent = lent;
    int before = s->offered.ncores;
    uint64_t mem_before = s->offered.total_mem;
    alloc_res_sub(&s->offered, ag->topo, part);
    fw->offered_cores -= before - s->offered.ncores;
    fw->offered_mem -= mem_before - s->offered.total_mem;
    alloc_slot_tidy(ag, s);
    alloc_mark(a, ag);
    return 0;
}

int phx_alloc_usage_add(phx_alloc_t *a, int64_t agent_id, const char *framework,
                        const char *task_id, const phx_topo_grant_t *grant,
                        double end_time, phx_error_t *err)
{
    struct alloc_agent *ag;
    struct alloc_fw *fw;
    if (lookup(a, agent_id, framework, &ag, &fw, err) < 0 ||
        task_id_ok(ag, fw, task_id, end_time, err) < 0)
        return -1;
    if (phx_topo_free_alloc(ag->free, grant, err) < 0)
        return phx_error_prefix(err, "could not record task %s on agent %lld", task_id,
                                (long long)agent_id);
    if (!task_new(ag, fw, task_id, grant, end_time, err)) {
        phx_topo_free_release(ag->free, grant, NULL);
        return -1;
    }
    a->plan_dirty = true;
    return 0;
}

int phx_alloc_usage_sub(phx_alloc_t *a, int64_t agent_id, const char *framework,
                        const char *task_id)
{
    struct alloc_agent *ag;
    struct alloc_fw *fw;
    int i;
    if (lookup(a, agent_id, framework, &ag, &fw, NULL) < 0)
        return -1;
    struct alloc_task *t = task_id ? task_find(ag, fw, task_id, &i) : NULL;
    if (!t) {
        errno = ENOENT;
        return -1;
    }
    phx_topo_grant_t *g = alloc_grant_get(ag);
    if (!g)
        return -1;
    alloc_res_to_grant(&t->res, ag->topo, g);
    phx_topo_free_release(ag->free, g, NULL);
    alloc_grant_put(ag, g);
    fw->used_cores -= t->res.ncores;
    fw->used_mem -= t->res.total_mem;
    ag->tasks[i] = ag->tasks[--ag->ntasks];
    alloc_task_free(t);
    alloc_mark(a, ag);
    return 0;
}
