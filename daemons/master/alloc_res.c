/* Allocator: resource sets (cores + memory per NUMA domain + GPUs of one
 * agent) and counting how many bundles of a shape fit in some free
 * resources. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc_impl.h"

int alloc_res_init(struct alloc_res *r, const phx_topo_t *t)
{
    r->cores = phx_topo_coreset_create(phx_topo_ncores(t));
    r->mem = calloc((size_t)phx_topo_nnumas(t), sizeof(uint64_t));
    r->gpus = calloc((size_t)phx_topo_ndevs(t) + 1, 1);
    r->ncores = r->ngpus = 0;
    r->total_mem = 0;
    if (!r->cores || !r->mem || !r->gpus) {
        alloc_res_fini(r);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void alloc_res_fini(struct alloc_res *r)
{
    phx_topo_coreset_destroy(r->cores);
    free(r->mem);
    free(r->gpus);
    r->cores = NULL;
    r->mem = NULL;
    r->gpus = NULL;
}

void alloc_res_clear(struct alloc_res *r, const phx_topo_t *t)
{
    if (!r->cores)
        return;
    phx_topo_coreset_clear(r->cores);
    memset(r->mem, 0, (size_t)phx_topo_nnumas(t) * sizeof(uint64_t));
    memset(r->gpus, 0, (size_t)phx_topo_ndevs(t));
    r->ncores = r->ngpus = 0;
    r->total_mem = 0;
}

bool alloc_res_empty(const struct alloc_res *r)
{
    return r->ncores == 0 && r->total_mem == 0 && r->ngpus == 0;
}

bool alloc_res_contains(const struct alloc_res *r, const phx_topo_t *t,
                        const phx_topo_grant_t *g)
{
    const phx_topo_coreset_t *gc = phx_topo_grant_cores(g);
    if (phx_topo_coreset_size(gc) != phx_topo_ncores(t))
        return false;
    if (r->cores && phx_topo_coreset_equal(r->cores, gc))
        goto memory; /* the common case: all of it */
    for (int c = phx_topo_coreset_next(gc, -1); c >= 0;
         c = phx_topo_coreset_next(gc, c))
        if (!r->cores || !phx_topo_coreset_has(r->cores, c))
            return false;
memory:
    for (int n = 0; n < phx_topo_nnumas(t); n++) {
        uint64_t m = phx_topo_grant_memory(g, n);
        if (m && (!r->mem || m > r->mem[n]))
            return false;
    }
    for (int d = 0; phx_topo_grant_ngpus(g) && d < phx_topo_ndevs(t); d++)
        if (phx_topo_grant_has_gpu(g, d) && (!r->gpus || !r->gpus[d]))
            return false;
    return true;
}

static void add_cores(struct alloc_res *r, const phx_topo_coreset_t *gc)
{
    if (r->ncores == 0) { /* the common case: a whole offer into an empty set */
        phx_topo_coreset_copy(r->cores, gc);
        r->ncores = phx_topo_coreset_count(gc);
        return;
    }
    for (int c = phx_topo_coreset_next(gc, -1); c >= 0;
         c = phx_topo_coreset_next(gc, c))
        if (!phx_topo_coreset_has(r->cores, c)) {
            phx_topo_coreset_add(r->cores, c);
            r->ncores++;
        }
}

static void sub_cores(struct alloc_res *r, const phx_topo_coreset_t *gc)
{
    if (phx_topo_coreset_equal(r->cores, gc)) { /* all of it */
        phx_topo_coreset_clear(r->cores);
        r->ncores = 0;
        return;
    }
    for (int c = phx_topo_coreset_next(gc, -1); c >= 0;
         c = phx_topo_coreset_next(gc, c))
        if (phx_topo_coreset_has(r->cores, c)) {
            phx_topo_coreset_remove(r->cores, c);
            r->ncores--;
        }
}

/* Add (take) or remove the grant's GPUs. */
static void gpus_apply(struct alloc_res *r, const phx_topo_t *t,
                       const phx_topo_grant_t *g, bool add)
{
    for (int d = 0; phx_topo_grant_ngpus(g) && d < phx_topo_ndevs(t); d++)
        if (phx_topo_grant_has_gpu(g, d) && r->gpus[d] != add) {
            r->gpus[d] = add;
            r->ngpus += add ? 1 : -1;
        }
}

void alloc_res_add(struct alloc_res *r, const phx_topo_t *t, const phx_topo_grant_t *g)
{
    add_cores(r, phx_topo_grant_cores(g));
    gpus_apply(r, t, g, true);
    for (int n = 0; n < phx_topo_nnumas(t); n++) {
        uint64_t m = phx_topo_grant_memory(g, n);
        r->mem[n] += m;
        r->total_mem += m;
    }
}

void alloc_res_sub(struct alloc_res *r, const phx_topo_t *t, const phx_topo_grant_t *g)
{
    sub_cores(r, phx_topo_grant_cores(g));
    gpus_apply(r, t, g, false);
    for (int n = 0; n < phx_topo_nnumas(t); n++) {
        uint64_t m = phx_topo_grant_memory(g, n);
        if (m > r->mem[n])
            m = r->mem[n];
        r->mem[n] -= m;
        r->total_mem -= m;
    }
}

void alloc_res_to_grant(const struct alloc_res *r, const phx_topo_t *t,
                        phx_topo_grant_t *g)
{
    phx_topo_grant_clear(g);
    for (int c = phx_topo_coreset_next(r->cores, -1); c >= 0;
         c = phx_topo_coreset_next(r->cores, c))
        phx_topo_grant_add_core(g, c);
    for (int n = 0; n < phx_topo_nnumas(t); n++)
        phx_topo_grant_set_memory(g, n, r->mem[n]);
    for (int d = 0; r->ngpus && d < phx_topo_ndevs(t); d++)
        if (r->gpus[d])
            phx_topo_grant_add_gpu(g, d);
}

/* Whether g already holds exactly the free resources (a recycled grant of
 * an offer that came back whole): then it need not be rebuilt. */
static bool grant_is_free(const phx_topo_grant_t *g, const phx_topo_free_t *f)
{
    const phx_topo_t *t = phx_topo_free_topo(f);
    if (phx_topo_grant_ntasks(g) != 0 ||
        !phx_topo_coreset_equal(phx_topo_grant_cores(g), phx_topo_free_cores(f)))
        return false;
    for (int n = 0; n < phx_topo_nnumas(t); n++)
        if (phx_topo_grant_memory(g, n) != phx_topo_free_numa_memory(f, n))
            return false;
    for (int d = 0; d < phx_topo_ndevs(t); d++)
        if (phx_topo_grant_has_gpu(g, d) != phx_topo_free_has_gpu(f, d))
            return false;
    return true;
}

void alloc_grant_from_free(phx_topo_grant_t *g, const phx_topo_free_t *f)
{
    const phx_topo_t *t = phx_topo_free_topo(f);
    const phx_topo_coreset_t *fc = phx_topo_free_cores(f);
    if (grant_is_free(g, f))
        return;
    phx_topo_grant_clear(g);
    for (int c = phx_topo_coreset_next(fc, -1); c >= 0;
         c = phx_topo_coreset_next(fc, c))
        phx_topo_grant_add_core(g, c);
    for (int n = 0; n < phx_topo_nnumas(t); n++)
        phx_topo_grant_set_memory(g, n, phx_topo_free_numa_memory(f, n));
    for (int d = 0; d < phx_topo_ndevs(t); d++)
        if (phx_topo_free_has_gpu(f, d))
            phx_topo_grant_add_gpu(g, d);
}

void alloc_res_count(const struct alloc_res *r, const phx_topo_t *t, int *nc,
                     uint64_t *nm, int *ng)
{
    if (!r->cores)
        return;
    *ng += r->ngpus;
    for (int c = phx_topo_coreset_next(r->cores, -1); c >= 0;
         c = phx_topo_coreset_next(r->cores, c))
        nc[phx_topo_core_numa(t, c)]++;
    for (int n = 0; n < phx_topo_nnumas(t); n++)
        nm[n] += r->mem[n];
}

static int bundles(int cores, uint64_t mem, const phx_alloc_shape_t *s)
{
    int by_cores = cores / s->cores;
    if (s->mem == 0)
        return by_cores;
    uint64_t by_mem = mem / s->mem;
    return by_mem < (uint64_t)by_cores ? (int)by_mem : by_cores;
}

static int cap(int n, int limit)
{
    return limit > 0 && n > limit ? limit : n;
}

/* The bundles left once the agent's own memory (agent_mem, whole_mem,
 * whole_agent) is taken from its free memory: what the bundles leave
 * is free in some NUMA domain, and agent_mem may come from any. */
static int agent_share(const phx_topo_t *t, const phx_alloc_shape_t *s, const int *nc,
                       const uint64_t *nm, int fit)
{
    int cores = 0;
    uint64_t mem = 0;
    for (int n = 0; n < phx_topo_nnumas(t); n++) {
        cores += nc[n];
        mem += nm[n];
    }
    if ((s->whole_agent && cores < phx_topo_ncores(t)) ||
        ((s->whole_agent || s->whole_mem) && mem < phx_topo_memory(t)) ||
        mem < s->agent_mem)
        return 0;
    if (s->agent_mem > 0 && s->mem > 0 && (mem - s->agent_mem) / s->mem < (uint64_t)fit)
        return (int)((mem - s->agent_mem) / s->mem);
    return fit;
}

/* The bundles left by ng free GPUs: agent_gpus come off first, then gpus
 * per bundle, from any of them (a bundle's GPUs need not be near its
 * cores); whole_agent needs all of them free. */
static int gpu_share(const phx_topo_t *t, const phx_alloc_shape_t *s, int ng, int fit)
{
    if ((s->whole_agent && ng < phx_topo_ngpus(t)) || ng < s->agent_gpus)
        return 0;
    if (s->gpus > 0 && (ng - s->agent_gpus) / s->gpus < fit)
        return (ng - s->agent_gpus) / s->gpus;
    return fit;
}

int alloc_fit(const phx_topo_t *t, const phx_alloc_shape_t *s, const int *nc,
              const uint64_t *nm, int ng, int *sc, uint64_t *sm)
{
    int nnumas = phx_topo_nnumas(t), nsockets = phx_topo_nsockets(t), fit = 0;
    int cores = 0;
    uint64_t mem = 0;
    switch (s->kind) {
    case PHX_ALLOC_BUNDLE_NUMA:
        if (s->per_socket <= 0) {
            for (int n = 0; n < nnumas; n++)
                fit += bundles(nc[n], nm[n], s);
            break;
        }
        memset(sc, 0, (size_t)nsockets * sizeof(int));
        for (int n = 0; n < nnumas; n++)
            sc[phx_topo_numa_socket(t, n)] += bundles(nc[n], nm[n], s);
        for (int so = 0; so < nsockets; so++)
            fit += cap(sc[so], s->per_socket);
        break;
    case PHX_ALLOC_BUNDLE_SOCKET:
        memset(sc, 0, (size_t)nsockets * sizeof(int));
        memset(sm, 0, (size_t)nsockets * sizeof(uint64_t));
        for (int n = 0; n < nnumas; n++) {
            int so = phx_topo_numa_socket(t, n);
            sc[so] += nc[n];
            sm[so] += nm[n];
        }
        for (int so = 0; so < nsockets; so++)
            fit += cap(bundles(sc[so], sm[so], s), s->per_socket);
        break;
    case PHX_ALLOC_BUNDLE_ANY:
        for (int n = 0; n < nnumas; n++) {
            cores += nc[n];
            mem += nm[n];
        }
        fit = bundles(cores, mem, s);
        break;
    }
    fit = cap(fit, s->per_agent);
    if (fit > 0 && (s->agent_mem > 0 || s->whole_mem || s->whole_agent))
        fit = agent_share(t, s, nc, nm, fit);
    if (fit > 0 && (s->gpus > 0 || s->agent_gpus > 0 || s->whole_agent))
        fit = gpu_share(t, s, ng, fit);
    return fit;
}

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

bool alloc_shape_allows(const phx_alloc_shape_t *s, int64_t agent_id)
{
    return !s->agents ||
           bsearch(&agent_id, s->agents, s->nagents, sizeof(*s->agents), cmp_id);
}

int64_t *alloc_shape_agents_copy(const phx_alloc_shape_t *s)
{
    int64_t *ids = malloc((s->nagents + 1) * sizeof(*ids));
    if (!ids)
        return NULL;
    if (s->nagents)
        memcpy(ids, s->agents, s->nagents * sizeof(*ids));
    qsort(ids, s->nagents, sizeof(*ids), cmp_id);
    return ids;
}
