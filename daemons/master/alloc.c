/* Allocator: lifecycle, agents, roles and frameworks, offers coming back,
 * task usage, getters.  The pass itself is in alloc_drf.c (DRF) and
 * alloc_hold.c (gang requests). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc_impl.h"

/* ---- maps ---- */

static uint64_t hash_id(int64_t id)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

typedef bool (*map_eq_f)(const void *item, const void *key);

static bool agent_eq(const void *item, const void *key)
{
    return ((const struct alloc_agent *)item)->id == *(const int64_t *)key;
}

static bool fw_eq(const void *item, const void *key)
{
    return strcmp(((const struct alloc_fw *)item)->id, key) == 0;
}

static void *map_get(const struct alloc_map *m, uint64_t h, map_eq_f eq,
                     const void *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slot[i])
            return NULL;
        if (m->hash[i] == h && eq(m->slot[i], key))
            return m->slot[i];
    }
}

static void map_insert(struct alloc_map *m, uint64_t h, void *item)
{
    size_t i = h & (m->cap - 1);
    while (m->slot[i])
        i = (i + 1) & (m->cap - 1);
    m->slot[i] = item;
    m->hash[i] = h;
    m->n++;
}

static int map_put(struct alloc_map *m, uint64_t h, void *item)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct alloc_map bigger = {0};
        bigger.cap = m->cap ? m->cap * 2 : 16;
        bigger.slot = calloc(bigger.cap, sizeof(void *));
        bigger.hash = calloc(bigger.cap, sizeof(uint64_t));
        if (!bigger.slot || !bigger.hash) {
            free(bigger.slot);
            free(bigger.hash);
            errno = ENOMEM;
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->slot[i])
                map_insert(&bigger, m->hash[i], m->slot[i]);
        free(m->slot);
        free(m->hash);
        *m = bigger;
    }
    map_insert(m, h, item);
    return 0;
}

/* Remove item (present) and shift its followers back into place. */
static void map_del(struct alloc_map *m, uint64_t h, const void *item)
{
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slot[i] != item)
        i = (i + 1) & mask;
    m->slot[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->slot[j]; j = (j + 1) & mask) {
        size_t home = m->hash[j] & mask;
        /* Move j into the hole i unless its home lies in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->slot[i] = m->slot[j];
        m->hash[i] = m->hash[j];
        m->slot[j] = NULL;
        i = j;
    }
}

static void map_fini(struct alloc_map *m)
{
    free(m->slot);
    free(m->hash);
}

int alloc_grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * size);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    *arr = p;
    *cap = n;
    return 0;
}

/* ---- lifecycle ---- */

phx_alloc_t *phx_alloc_create(void)
{
    phx_alloc_t *a = calloc(1, sizeof(*a));
    if (!a)
        errno = ENOMEM;
    return a;
}

static void agent_free(struct alloc_agent *ag)
{
    for (int i = 0; i < ag->nslots; i++)
        alloc_res_fini(&ag->slots[i].offered);
    free(ag->slots);
    for (int i = 0; i < ag->ntasks; i++)
        alloc_task_free(ag->tasks[i]);
    free(ag->tasks);
    alloc_res_fini(&ag->held);
    for (int i = 0; i < ag->nspare; i++)
        phx_topo_grant_destroy(ag->spare[i]);
    free(ag);
}

void phx_alloc_destroy(phx_alloc_t *a)
{
    if (!a)
        return;
    int saved = errno;
    for (size_t i = 0; i < a->nagents; i++) {
        alloc_hold_release(a, a->agents[i]);
        agent_free(a->agents[i]);
    }
    free(a->agents);
    map_fini(&a->agent_map);
    for (size_t i = 0; i < a->nfws; i++) {
        free(a->fws[i]->id);
        free(a->fws[i]);
    }
    free(a->fws);
    map_fini(&a->fw_map);
    for (size_t i = 0; i < a->nroles; i++) {
        free(a->roles[i]->name);
        free(a->roles[i]);
    }
    free(a->roles);
    for (size_t i = 0; i < a->nreqs; i++)
        alloc_request_free(a->reqs[i]);
    free(a->reqs);
    free(a->dirty);
    free(a->heap);
    free(a->numa_cores);
    free(a->sock_cores);
    free(a->numa_mem);
    free(a->sock_mem);
    free(a->points);
    free(a->events);
    free(a->cands);
    free(a->listed);
    free(a->fits);
    free(a);
    errno = saved;
}

void phx_alloc_set_request_cb(phx_alloc_t *a, phx_alloc_request_f cb, void *arg)
{
    a->req_cb = cb;
    a->req_arg = arg;
}

/* ---- helpers shared by the alloc files ---- */

struct alloc_fw *alloc_fw_find(const phx_alloc_t *a, const char *id)
{
    return id ? map_get(&a->fw_map, hash_str(id), fw_eq, id) : NULL;
}

struct alloc_agent *alloc_agent_find(const phx_alloc_t *a, int64_t id)
{
    return map_get(&a->agent_map, hash_id(id), agent_eq, &id);
}

void alloc_mark(phx_alloc_t *a, struct alloc_agent *ag)
{
    if (ag->dirty)
        return;
    if (alloc_grow((void **)&a->dirty, &a->cap_dirty, a->ndirty + 1,
                   sizeof(*a->dirty)) < 0) {
        a->all_dirty = true; /* still visited, by the slow road */
        return;
    }
    a->dirty[a->ndirty++] = ag;
    ag->dirty = true;
}

double alloc_share(const phx_alloc_t *a, const struct alloc_fw *fw)
{
    double c = a->total_cores ? (double)(fw->offered_cores + fw->used_cores) /
                                    (double)a->total_cores
                              : 0;
    double m = a->total_mem
                   ? (double)(fw->offered_mem + fw->used_mem) / (double)a->total_mem
                   : 0;
    return (c > m ? c : m) / fw->role->weight;
}

void alloc_note_expiry(phx_alloc_t *a, double t)
{
    if (t > 0 && (a->next_expiry == 0 || t < a->next_expiry))
        a->next_expiry = t;
}

/* ---- agents ---- */

static int scratch_fit(phx_alloc_t *a, const phx_topo_t *t)
{
    int nn = phx_topo_nnumas(t), ns = phx_topo_nsockets(t);
    if (nn > a->max_nnumas) {
        int *c = realloc(a->numa_cores, (size_t)nn * sizeof(int));
        if (c)
            a->numa_cores = c;
        uint64_t *m = realloc(a->numa_mem, (size_t)nn * sizeof(uint64_t));
        if (m)
            a->numa_mem = m;
        if (!c || !m)
            goto nomem;
        a->max_nnumas = nn;
    }
    if (ns > a->max_nsockets) {
        int *c = realloc(a->sock_cores, (size_t)ns * sizeof(int));
        if (c)
            a->sock_cores = c;
        uint64_t *m = realloc(a->sock_mem, (size_t)ns * sizeof(uint64_t));
        if (m)
            a->sock_mem = m;
        if (!c || !m)
            goto nomem;
        a->max_nsockets = ns;
    }
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

int phx_alloc_agent_add(phx_alloc_t *a, int64_t agent_id, phx_topo_free_t *free_res,
                        phx_error_t *err)
{
    if (!free_res) {
        errno = EINVAL;
        return phx_error_set(err, "agent %lld has no free-resource tracker",
                             (long long)agent_id);
    }
    if (alloc_agent_find(a, agent_id)) {
        errno = EEXIST;
        return phx_error_set(err, "agent %lld is already known to the allocator",
                             (long long)agent_id);
    }
    const phx_topo_t *t = phx_topo_free_topo(free_res);
    struct alloc_agent *ag = calloc(1, sizeof(*ag));
    if (!ag || alloc_res_init(&ag->held, t) < 0 || scratch_fit(a, t) < 0 ||
        alloc_grow((void **)&a->agents, &a->cap_agents, a->nagents + 1, sizeof(ag)) <
            0 ||
        map_put(&a->agent_map, hash_id(agent_id), ag) < 0) {
        if (ag)
            agent_free(ag);
        errno = ENOMEM;
        return phx_error_set(err, "could not add agent %lld: out of memory",
                             (long long)agent_id);
    }
    ag->id = agent_id;
    ag->free = free_res;
    ag->topo = t;
    ag->ncores = phx_topo_ncores(t);
    ag->mem = phx_topo_memory(t);
    ag->available = true;
    ag->index = a->nagents;
    a->agents[a->nagents++] = ag;
    a->total_cores += ag->ncores;
    a->total_mem += ag->mem;
    a->plan_dirty = true;
    alloc_mark(a, ag);
    return 0;
}

static void unmark(phx_alloc_t *a, struct alloc_agent *ag)
{
    if (!ag->dirty)
        return;
    for (size_t i = 0; i < a->ndirty; i++)
        if (a->dirty[i] == ag) {
            a->dirty[i] = a->dirty[--a->ndirty];
            break;
        }
    ag->dirty = false;
}

int phx_alloc_agent_remove(phx_alloc_t *a, int64_t agent_id)
{
    struct alloc_agent *ag = alloc_agent_find(a, agent_id);
    if (!ag) {
        errno = ENOENT;
        return -1;
    }
    alloc_hold_release(a, ag);
    for (int i = 0; i < ag->nslots; i++) {
        struct alloc_slot *s = &ag->slots[i];
        if (!s->fw)
            continue;
        s->fw->offered_cores -= s->offered.ncores;
        s->fw->offered_mem -= s->offered.total_mem;
        if (s->filter_until > 0)
            s->fw->nfilters--;
    }
    for (int i = 0; i < ag->ntasks; i++) {
        struct alloc_task *t = ag->tasks[i];
        t->fw->used_cores -= t->res.ncores;
        t->fw->used_mem -= t->res.total_mem;
    }
    if (ag->available) {
        a->total_cores -= ag->ncores;
        a->total_mem -= ag->mem;
    }
    unmark(a, ag);
    map_del(&a->agent_map, hash_id(agent_id), ag);
    size_t i = ag->index;
    a->agents[i] = a->agents[--a->nagents];
    a->agents[i]->index = i;
    a->plan_dirty = true;
    agent_free(ag);
    return 0;
}

int phx_alloc_agent_set_available(phx_alloc_t *a, int64_t agent_id, bool available)
{
    struct alloc_agent *ag = alloc_agent_find(a, agent_id);
    if (!ag) {
        errno = ENOENT;
        return -1;
    }
    if (ag->available == available)
        return 0;
    ag->available = available;
    int sign = available ? 1 : -1;
    a->total_cores += sign * ag->ncores;
    a->total_mem = available ? a->total_mem + ag->mem : a->total_mem - ag->mem;
    if (!available)
        alloc_hold_release(a, ag);
    a->plan_dirty = true;
    alloc_mark(a, ag);
    return 0;
}

int phx_alloc_agent_changed(phx_alloc_t *a, int64_t agent_id)
{
    struct alloc_agent *ag = alloc_agent_find(a, agent_id);
    if (!ag) {
        errno = ENOENT;
        return -1;
    }
    alloc_mark(a, ag);
    return 0;
}

/* ---- roles and frameworks ---- */

static struct alloc_role *role_get(phx_alloc_t *a, const char *name)
{
    for (size_t i = 0; i < a->nroles; i++)
        if (strcmp(a->roles[i]->name, name) == 0)
            return a->roles[i];
    struct alloc_role **roles = realloc(a->roles, (a->nroles + 1) * sizeof(*roles));
    if (!roles)
        return NULL;
    a->roles = roles;
    struct alloc_role *r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return NULL;
    }
    r->weight = 1.0;
    a->roles[a->nroles++] = r;
    return r;
}

int phx_alloc_role_set_weight(phx_alloc_t *a, const char *role, double weight,
                              phx_error_t *err)
{
    if (!role || !(weight > 0) || !isfinite(weight)) {
        errno = EINVAL;
        return phx_error_set(err, "weight of role \"%s\" must be a positive number",
                             role ? role : "");
    }
    struct alloc_role *r = role_get(a, role);
    if (!r) {
        errno = ENOMEM;
        return phx_error_set(err, "could not set the weight of role \"%s\"", role);
    }
    if (r->weight != weight) {
        r->weight = weight;
        a->all_dirty = true;
        a->plan_dirty = true;
    }
    return 0;
}

int phx_alloc_framework_add(phx_alloc_t *a, const char *framework, const char *role,
                            phx_error_t *err)
{
    if (!framework || !*framework) {
        errno = EINVAL;
        return phx_error_set(err, "framework id is empty");
    }
    if (alloc_fw_find(a, framework)) {
        errno = EEXIST;
        return phx_error_set(err, "framework %s is already known to the allocator",
                             framework);
    }
    struct alloc_fw *fw = calloc(1, sizeof(*fw));
    if (!fw || !(fw->id = strdup(framework)) ||
        !(fw->role = role_get(a, role && *role ? role : "*")) ||
        alloc_grow((void **)&a->fws, &a->cap_fws, a->nfws + 1, sizeof(fw)) < 0 ||
        map_put(&a->fw_map, hash_str(framework), fw) < 0) {
        if (fw)
            free(fw->id);
        free(fw);
        errno = ENOMEM;
        return phx_error_set(err, "could not add framework %s: out of memory",
                             framework);
    }
    fw->active = true;
    a->fws[a->nfws++] = fw;
    a->ranks_stale = true;
    a->all_dirty = true;
    return 0;
}

int phx_alloc_framework_remove(phx_alloc_t *a, const char *framework)
{
    struct alloc_fw *fw = alloc_fw_find(a, framework);
    if (!fw) {
        errno = ENOENT;
        return -1;
    }
    alloc_requests_drop_fw(a, fw);
    for (size_t i = 0; i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        struct alloc_slot *s = alloc_slot_find(ag, fw);
        if (s) {
            alloc_res_clear(&s->offered, ag->topo);
            s->fw = NULL;
        }
        for (int j = 0; j < ag->ntasks;)
            if (ag->tasks[j]->fw == fw) {
                alloc_task_free(ag->tasks[j]);
                ag->tasks[j] = ag->tasks[--ag->ntasks];
            } else {
                j++;
            }
    }
    map_del(&a->fw_map, hash_str(framework), fw);
    for (size_t i = 0; i < a->nfws; i++)
        if (a->fws[i] == fw) {
            a->fws[i] = a->fws[--a->nfws];
            break;
        }
    free(fw->id);
    free(fw);
    a->ranks_stale = true;
    a->plan_dirty = true;
    return 0;
}

static struct alloc_fw *fw_or_enoent(phx_alloc_t *a, const char *framework)
{
    struct alloc_fw *fw = alloc_fw_find(a, framework);
    if (!fw)
        errno = ENOENT;
    return fw;
}

int phx_alloc_framework_deactivate(phx_alloc_t *a, const char *framework)
{
    struct alloc_fw *fw = fw_or_enoent(a, framework);
    if (!fw)
        return -1;
    fw->active = false;
    a->plan_dirty = true;
    return 0;
}

int phx_alloc_framework_activate(phx_alloc_t *a, const char *framework)
{
    struct alloc_fw *fw = fw_or_enoent(a, framework);
    if (!fw)
        return -1;
    fw->active = true;
    a->plan_dirty = true;
    return phx_alloc_revive(a, framework);
}

int phx_alloc_suppress(phx_alloc_t *a, const char *framework)
{
    struct alloc_fw *fw = fw_or_enoent(a, framework);
    if (!fw)
        return -1;
    fw->suppressed = true;
    return 0;
}

int phx_alloc_revive(phx_alloc_t *a, const char *framework)
{
    struct alloc_fw *fw = fw_or_enoent(a, framework);
    if (!fw)
        return -1;
    fw->suppressed = false;
    for (size_t i = 0; fw->nfilters > 0 && i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        struct alloc_slot *s = alloc_slot_find(ag, fw);
        if (s && s->filter_until > 0) {
            s->filter_until = 0;
            fw->nfilters--;
            alloc_slot_tidy(ag, s);
        }
    }
    fw->nfilters = 0;
    a->all_dirty = true;
    return 0;
}

int phx_alloc_filter(phx_alloc_t *a, const char *framework, int64_t agent_id,
                     double until)
{
    struct alloc_fw *fw = fw_or_enoent(a, framework);
    struct alloc_agent *ag = alloc_agent_find(a, agent_id);
    if (!fw || !ag) {
        errno = ENOENT;
        return -1;
    }
    if (!(until > 0) || !isfinite(until)) {
        errno = EINVAL;
        return -1;
    }
    struct alloc_slot *s = alloc_slot_get(ag, fw);
    if (!s)
        return -1;
    if (s->filter_until == 0)
        fw->nfilters++;
    s->filter_until = until;
    alloc_note_expiry(a, until);
    return 0;
}

/* ---- getters ---- */

int phx_alloc_framework_info(const phx_alloc_t *a, const char *framework,
                             phx_alloc_framework_info_t *out)
{
    const struct alloc_fw *fw = alloc_fw_find(a, framework);
    if (!fw) {
        errno = ENOENT;
        return -1;
    }
    *out = (phx_alloc_framework_info_t){
        .share = alloc_share(a, fw) * fw->role->weight,
        .weighted_share = alloc_share(a, fw),
        .weight = fw->role->weight,
        .suppressed = fw->suppressed,
        .active = fw->active,
        .offered_cores = fw->offered_cores,
        .used_cores = fw->used_cores,
        .offered_mem = fw->offered_mem,
        .used_mem = fw->used_mem,
        .nfilters = fw->nfilters,
        .nrequests = fw->nrequests,
    };
    return 0;
}

int phx_alloc_agent_info(const phx_alloc_t *a, int64_t agent_id,
                         phx_alloc_agent_info_t *out)
{
    const struct alloc_agent *ag = alloc_agent_find(a, agent_id);
    if (!ag) {
        errno = ENOENT;
        return -1;
    }
    *out = (phx_alloc_agent_info_t){
        .available = ag->available,
        .holding = ag->holding,
        .free_cores = phx_topo_free_ncores(ag->free),
        .held_cores = ag->held.ncores,
        .held_mem = ag->held.total_mem,
        .held_gpus = ag->held.ngpus,
    };
    for (int i = 0; i < ag->nslots; i++) {
        const struct alloc_slot *s = &ag->slots[i];
        if (!s->fw || alloc_res_empty(&s->offered))
            continue;
        out->noffers++;
        out->offered_cores += s->offered.ncores;
        if (s->release_by > 0)
            out->lent_cores += s->offered.ncores;
    }
    for (int i = 0; i < ag->ntasks; i++) {
        out->used_cores += ag->tasks[i]->res.ncores;
        if (ag->tasks[i]->lent)
            out->lent_cores += ag->tasks[i]->res.ncores;
    }
    return 0;
}

void phx_alloc_totals(const phx_alloc_t *a, int64_t *cores, uint64_t *mem)
{
    if (cores)
        *cores = a->total_cores;
    if (mem)
        *mem = a->total_mem;
}

const char *phx_alloc_bundle_kind_name(phx_alloc_bundle_kind_t kind)
{
    switch (kind) {
    case PHX_ALLOC_BUNDLE_NUMA: return "numa";
    case PHX_ALLOC_BUNDLE_SOCKET: return "socket";
    case PHX_ALLOC_BUNDLE_ANY: return "any";
    }
    return "?";
}
