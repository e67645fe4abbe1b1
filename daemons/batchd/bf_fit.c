/* The EASY planner's placement of one request within given capacities
 * (bf_plan.h): tasks per node by cores, sockets, memory and GPUs, best fit
 * over the nodes, and the quick answers (fits the empty nodes, surely
 * cannot fit now) that spare the pass most fits. */
#include "daemons/batchd/bf_plan.h"

#include <stdlib.h>
#include <string.h>

/* Tasks of r that node i can take within caps c. */
static uint32_t node_capacity(planner_t *p, const phx_bf_request_t *r, const caps_t *c,
                              uint32_t i)
{
    const phx_bf_node_t *n = &p->in->nodes[i];
    if (!n->usable || !phx_bf_node_allowed(r, i))
        return 0;
    if (!phx_bf_node_qualifies(r, n->parts, n->sockets, n->cores_total,
                               n->threads_per_core))
        return 0;
    uint64_t cores = c->cores[i], mem = c->mem[i];
    bool whole = cores >= n->cores_total && mem >= n->mem_total;
    if ((r->exclusive || r->mem_whole_node) && mem < n->mem_total)
        return 0;
    if (r->exclusive && !whole)
        return 0;
    /* which cores are free is not known here: the most the sockets of the
     * empty node hold, at most what the free cores hold */
    uint32_t ns = n->sockets ? n->sockets : 1;
    if (!p->ks.set || p->ks.cores != n->cores_total || p->ks.sockets != ns ||
        p->ks.cpt != r->cpus_per_task || p->ks.per_socket != r->ntasks_per_socket) {
        for (uint32_t s = 0; s < ns; s++)
            p->sockets[s] = n->cores_total / ns + (s < n->cores_total % ns);
        p->ks.tasks = phx_bf_socket_tasks(p->sockets, ns, r->cpus_per_task,
                                          r->ntasks_per_socket, true);
        p->ks.cores = n->cores_total;
        p->ks.sockets = ns;
        p->ks.cpt = r->cpus_per_task;
        p->ks.per_socket = r->ntasks_per_socket;
        p->ks.set = true;
    }
    uint64_t k = cores / r->cpus_per_task;
    if (p->ks.tasks < k)
        k = p->ks.tasks;
    if (r->mem_per_cpu) {
        uint64_t per_task = r->mem_per_cpu * r->cpus_per_task;
        uint64_t km = mem / per_task;
        if (km < k)
            k = km;
    }
    if (r->mem_per_node && mem < r->mem_per_node)
        return 0;
    if (r->gpus_per_node | r->gpus_per_task | r->exclusive) {
        /* of its classes; an exclusive job's: all of the node's */
        uint32_t other = r->exclusive ? 0 : r->gpu_other;
        uint32_t kg = phx_bf_gpu_tasks(r, phx_bf_gpus(p, c, i, other),
                                       phx_bf_gpus(p, &p->empty, i, 0));
        k = kg < k ? kg : k;
    }
    if (r->ntasks_per_node && k > r->ntasks_per_node)
        k = r->ntasks_per_node;
    if (k > r->ntasks)
        k = r->ntasks;
    return (uint32_t)k;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->k != y->k)
        return x->k < y->k ? -1 : 1;
    return (x->node > y->node) - (x->node < y->node);
}

/* The nodes a request of partitions parts may use, by index: those of its
 * partition when it names one, else all. */
const uint32_t *phx_bf_nodes_of(const planner_t *p, uint64_t parts, size_t *n)
{
    if (parts && !(parts & (parts - 1))) {
        unsigned bit = (unsigned)__builtin_ctzll(parts);
        *n = p->part_at[bit + 1] - p->part_at[bit];
        return p->part_nodes + p->part_at[bit];
    }
    *n = p->in->nnodes;
    return p->all_nodes;
}

/* Sort the n candidates, gathered by node index, as cmp_cand does: a
 * counting sort by k (stable: nodes stay in index order), since k is at
 * most a node's cores; qsort cost most of a pass over a thousand nodes. */
static void sort_cands(planner_t *p, size_t n, uint32_t kmax)
{
    if (kmax > p->kmax || kmax > 4 * n + 64) { /* few nodes of many cores */
        qsort(p->cands, n, sizeof(*p->cands), cmp_cand);
        return;
    }
    memset(p->kcount, 0, ((size_t)kmax + 2) * sizeof(*p->kcount));
    for (size_t i = 0; i < n; i++)
        p->kcount[p->cands[i].k + 1]++;
    for (uint32_t k = 1; k <= kmax + 1; k++)
        p->kcount[k] += p->kcount[k - 1]; /* kcount[k]: candidates below k */
    for (size_t i = 0; i < n; i++)
        p->sorted[p->kcount[p->cands[i].k]++] = p->cands[i];
    cand_t *t = p->cands;
    p->cands = p->sorted;
    p->sorted = t;
}

/* With GPU classes: which classes share s's GPUs are of: all of the
 * node's for an exclusive job, else the lowest classes r may use first,
 * as c has them free. */
static void split_gpus(const planner_t *p, const phx_bf_request_t *r, const caps_t *c,
                       phx_bf_share_t *s)
{
    const caps_t *from = r->exclusive ? &p->empty : c;
    const uint32_t *g = from->gpus + (size_t)s->node * p->ngc;
    uint32_t left = s->gpus;
    memset(s->gpus_class, 0, sizeof(s->gpus_class));
    for (uint32_t k = 0; k < p->ngc && left; k++) {
        if (!r->exclusive && (r->gpu_other >> k & 1))
            continue;
        uint32_t t = g[k] < left ? g[k] : left;
        s->gpus_class[k] = (uint8_t)t;
        left -= t;
    }
}

/* Place r within caps c: the nodes that can take the fewest tasks while
 * still fitting (best fit); exact: fails only when no placement exists.
 * Fills p->shares and returns how many, or 0. */
size_t phx_bf_fit(planner_t *p, const phx_bf_request_t *r, const caps_t *c)
{
    size_t n = 0, nn;
    uint32_t kmax = 0;
    const uint32_t *idx = phx_bf_nodes_of(p, r->parts, &nn);
    for (size_t x = 0; x < nn; x++) {
        uint32_t k = node_capacity(p, r, c, idx[x]);
        if (k > 0)
            p->cands[n++] = (cand_t){idx[x], k};
        if (k > kmax)
            kmax = k;
    }
    if (n < r->nodes_min)
        return 0;
    sort_cands(p, n, kmax);
    /* The fewest nodes that can hold ntasks: the largest capacities first. */
    uint64_t sum = 0;
    size_t fewest = 0;
    while (fewest < n && sum < r->ntasks)
        sum += p->cands[n - 1 - fewest++].k;
    if (sum < r->ntasks)
        return 0;
    size_t use = fewest > r->nodes_min ? fewest : r->nodes_min;
    if (use > r->nodes_max || use > r->ntasks)
        return 0;
    /* Window sums over sorted capacities grow with the start: the first
     * window of `use` nodes that holds ntasks is the tightest fit. */
    sum = 0;
    size_t start = SIZE_MAX;
    for (size_t j = 0; j < n; j++) {
        sum += p->cands[j].k;
        if (j + 1 > use)
            sum -= p->cands[j - use].k;
        if (j + 1 >= use && sum >= r->ntasks) {
            start = j + 1 - use;
            break;
        }
    }
    if (start == SIZE_MAX)
        return 0;
    uint32_t left = r->ntasks - (uint32_t)use;
    for (size_t j = 0; j < use; j++) {
        const cand_t *cd = &p->cands[start + use - 1 - j]; /* largest first */
        const phx_bf_node_t *node = &p->in->nodes[cd->node];
        uint32_t extra = cd->k - 1 < left ? cd->k - 1 : left;
        uint32_t tasks = 1 + extra;
        left -= extra;
        phx_bf_share_t *s = &p->shares[j];
        s->node = cd->node;
        s->tasks = tasks;
        s->cores = r->exclusive ? node->cores_total : tasks * r->cpus_per_task;
        if (r->exclusive || r->mem_whole_node)
            s->mem = node->mem_total;
        else if (r->mem_per_cpu)
            s->mem = r->mem_per_cpu * s->cores;
        else
            s->mem = r->mem_per_node;
        s->gpus = r->exclusive       ? phx_bf_gpus(p, &p->empty, cd->node, 0)
                  : r->gpus_per_node ? r->gpus_per_node
                                     : tasks * r->gpus_per_task;
        if (p->ngc > 1)
            split_gpus(p, r, c, s);
    }
    return use;
}

/* phx_bf_fit() inside one of r's partitions (-p a,b: never a node of each): the
 * first (lowest bit) whose nodes hold it; *part its bit (r's parts when it
 * has at most one). */
static size_t fit_part(planner_t *p, const phx_bf_request_t *r, const caps_t *c,
                       uint64_t *part)
{
    *part = r->parts;
    if (!(r->parts & (r->parts - 1)))
        return phx_bf_fit(p, r, c);
    phx_bf_request_t one = *r;
    for (uint64_t m = r->parts; m; m &= m - 1) {
        one.parts = m & (~m + 1);
        size_t n = phx_bf_fit(p, &one, c);
        if (n) {
            *part = one.parts;
            return n;
        }
    }
    return 0;
}

void phx_bf_take(const planner_t *p, caps_t *c, const phx_bf_share_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t *g = c->gpus + (size_t)s[i].node * p->ngc;
        if (p->ngc > 1) {
            for (uint32_t k = 0; k < p->ngc; k++)
                g[k] -= s[i].gpus_class[k] < g[k] ? s[i].gpus_class[k] : g[k];
        } else {
            g[0] -= s[i].gpus < g[0] ? s[i].gpus : g[0];
        }
        c->cores[s[i].node] -=
            s[i].cores < c->cores[s[i].node] ? s[i].cores : c->cores[s[i].node];
        c->mem[s[i].node] -=
            s[i].mem < c->mem[s[i].node] ? s[i].mem : c->mem[s[i].node];
    }
}

void phx_bf_give(const planner_t *p, caps_t *c, const phx_bf_share_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const phx_bf_node_t *node = &p->in->nodes[s[i].node];
        uint64_t cores = (uint64_t)c->cores[s[i].node] + s[i].cores;
        uint64_t mem = c->mem[s[i].node] + s[i].mem;
        c->cores[s[i].node] =
            cores > node->cores_total ? node->cores_total : (uint32_t)cores;
        c->mem[s[i].node] = mem > node->mem_total ? node->mem_total : mem;
        uint32_t *g = c->gpus + (size_t)s[i].node * p->ngc;
        const uint32_t *all = p->empty.gpus + (size_t)s[i].node * p->ngc;
        for (uint32_t k = 0; k < p->ngc; k++) {
            uint64_t v = (uint64_t)g[k] + (p->ngc > 1 ? s[i].gpus_class[k] : s[i].gpus);
            g[k] = v > all[k] ? all[k] : (uint32_t)v;
        }
    }
}

/* Does r fit the empty nodes?  Asked for every job examined, and jobs are
 * of few shapes: the answer is kept by shape for the pass (and, for jobs
 * that name their nodes, by the nodes they may use: bits compared). */
bool phx_bf_fits_empty(planner_t *p, const phx_bf_request_t *r)
{
    uint64_t part, only = 0;
    size_t words = (p->in->nnodes + 63) / 64;
    for (size_t i = 0; r->only && i < words; i++)
        only = (only ^ r->only[i]) * 0x9e3779b97f4a7c15ull + i;
    only |= r->only ? 1 : 0;
    shape_key_t key = {r->nodes_min,
                       r->nodes_max,
                       r->ntasks,
                       r->cpus_per_task,
                       r->ntasks_per_node,
                       r->ntasks_per_socket,
                       r->min_sockets,
                       r->min_cores_per_socket,
                       r->min_threads_per_core,
                       (r->exclusive ? 1u : 0u) | (r->mem_whole_node ? 2u : 0u) |
                           (r->gpu_other & 0xffffff) << 8,
                       r->gpus_per_node,
                       r->gpus_per_task,
                       r->mem_per_node,
                       r->mem_per_cpu,
                       r->parts,
                       only};
    uint64_t h = 0, w[sizeof(key) / 8];
    memcpy(w, &key, sizeof(key));
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        h = (h ^ w[i]) * 0x9e3779b97f4a7c15ull;
    empty_memo_t *m = &p->memo[(h >> 32) & (p->memo_n - 1)];
    if (m->set && memcmp(&m->key, &key, sizeof(key)) == 0 &&
        (!r->only || memcmp(m->only, r->only, words * sizeof(*r->only)) == 0))
        return m->fits;
    *m = (empty_memo_t){.key = key, .only = r->only, .set = true};
    m->fits = fit_part(p, r, &p->empty, &part) > 0;
    return m->fits;
}

/* The most of free[] on a node of r's nodes (its partition's, or any). */
static uint32_t most_of(const planner_t *p, const phx_bf_request_t *r,
                        const uint32_t *free)
{
    size_t nn;
    const uint32_t *idx = phx_bf_nodes_of(p, r->parts, &nn);
    uint32_t most = 0;
    for (size_t x = 0; x < nn; x++)
        if (free[idx[x]] > most)
            most = free[idx[x]];
    return most;
}

/* The most free GPUs (p->free) of the classes not in other on a node of
 * r's nodes. */
static uint32_t most_gpus_of(const planner_t *p, const phx_bf_request_t *r,
                             uint32_t other)
{
    size_t nn;
    const uint32_t *idx = phx_bf_nodes_of(p, r->parts, &nn);
    uint32_t most = 0;
    for (size_t x = 0; x < nn; x++) {
        uint32_t g = phx_bf_gpus(p, &p->free, idx[x], other);
        most = g > most ? g : most;
    }
    return most;
}

/* A node takes at most its free cores / cpus_per_task tasks of r (at most
 * ntasks_per_node; for GPU requests only, its free GPUs of the classes
 * it may use / gpus_per_task, or
 * none without gpus_per_node free): when nodes_max nodes of the most free
 * among r's could not hold r, phx_bf_fit() on p->free (or on less) fails; a full
 * cluster's wide jobs are refused without a look at each node. */
bool phx_bf_cannot_fit_now(planner_t *p, const phx_bf_request_t *r)
{
    size_t slot = r->parts && !(r->parts & (r->parts - 1))
                      ? (size_t)__builtin_ctzll(r->parts)
                      : 64;
    if (p->most_stale[slot]) {
        p->most_free[slot] = most_of(p, r, p->free.cores);
        p->most_stale[slot] = false;
    }
    uint64_t per = p->most_free[slot] / r->cpus_per_task;
    if (r->gpus_per_node | r->gpus_per_task) {
        uint32_t other = r->exclusive ? 0 : r->gpu_other;
        if (p->gpus_stale[slot] || p->gpus_of[slot] != other) {
            p->most_gpus[slot] = p->ngc == 1 && !other ? most_of(p, r, p->free.gpus)
                                                       : most_gpus_of(p, r, other);
            p->gpus_of[slot] = other;
            p->gpus_stale[slot] = false;
        }
        if (p->most_gpus[slot] < r->gpus_per_node)
            return true;
        if (r->gpus_per_task && per > p->most_gpus[slot] / r->gpus_per_task)
            per = p->most_gpus[slot] / r->gpus_per_task;
    }
    if (r->ntasks_per_node && per > r->ntasks_per_node)
        per = r->ntasks_per_node;
    return per * r->nodes_max < r->ntasks;
}
