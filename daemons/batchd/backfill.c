#include "daemons/batchd/backfill.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Resources per node that a placement may use. */
typedef struct caps {
    uint32_t *cores;
    uint64_t *mem;
    uint32_t *gpus;
} caps_t;

typedef struct cand {
    uint32_t node;
    uint32_t k; /* tasks it can take */
} cand_t;

/* A pool's side of the pass: its reservation, or that it is blocked. */
typedef struct pool_state {
    bool reserved, blocked;
    int64_t shadow;
    uint32_t tested;
} pool_state_t;

/* What a placement on the empty nodes depends on: a request less its id
 * and time limit (no padding: compared with memcmp). */
typedef struct shape_key {
    uint32_t nodes_min, nodes_max, ntasks, cpus_per_task, ntasks_per_node,
        ntasks_per_socket, min_sockets, min_cores_per_socket, min_threads_per_core,
        flags, /* 1: exclusive, 2: mem_whole_node */
        gpus_per_node, gpus_per_task;
    uint64_t mem_per_node, mem_per_cpu, parts;
    uint64_t only; /* a hash of r->only's bits (0: none); equal bits checked */
} shape_key_t;

_Static_assert(sizeof(shape_key_t) == 80, "shape_key_t has padding");
/* A field added to the request that fit() reads belongs in shape_key_t. */
_Static_assert(sizeof(phx_bf_request_t) == 104,
               "phx_bf_request_t changed: add the new field to shape_key_t if fit() "
               "reads it, then this size");

#define EMPTY_MEMO 4096 /* most shapes fits_empty remembers, a power of two */
typedef struct empty_memo {
    shape_key_t key;
    const uint64_t *only; /* the request's (valid for the pass) */
    bool set, fits;
} empty_memo_t;

typedef struct planner {
    const phx_bf_input_t *in;
    phx_bf_pools_t pl;
    pool_state_t pools[PHX_BF_POOLS];
    uint32_t *node_pool;     /* nnodes */
    caps_t free, spare, tmp; /* spare: of each pool's nodes, for its reservation */
    caps_t empty;            /* every node's total */
    /* the nodes of partition i, by index: part_nodes[part_at[i] ..
     * part_at[i + 1]); all_nodes: 0 .. nnodes - 1 */
    uint32_t *part_nodes, *all_nodes;
    size_t part_at[65];
    cand_t *cands, *sorted; /* sorted: scratch of the counting sort */
    uint32_t *kcount;       /* its counts, kmax + 2 */
    uint32_t kmax;          /* the most tasks a node can take: its cores */
    phx_bf_share_t *shares; /* scratch, nnodes */
    uint32_t *sockets;      /* scratch, the most sockets of a node */
    /* the tasks the sockets of the last empty node shape held, for the
     * last cpus per task and cap per socket: nodes are mostly alike */
    struct {
        bool set;
        uint32_t cores, sockets, cpt, per_socket, tasks;
    } ks;
    empty_memo_t *memo; /* fits_empty's answers by shape, memo_n of them */
    size_t memo_n;      /* a power of two, twice the jobs up to EMPTY_MEMO */
    /* the most free cores (p->free) of a node of partition i (64: of
     * any), recomputed when stale: a placement took cores there since
     * (free cores only go down in a plan: a stale value is a weaker bound) */
    uint32_t most_free[65];
    bool most_stale[65];
    /* the same for free GPUs, asked by GPU requests only: stale when a
     * placement took GPUs there since */
    uint32_t most_gpus[65];
    bool gpus_stale[65];
} planner_t;

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
        uint32_t kg = phx_bf_gpu_tasks(r, c->gpus[i], n->gpus_total);
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
static const uint32_t *nodes_of(const planner_t *p, uint64_t parts, size_t *n)
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

/* Place r within caps c: the nodes that can take the fewest tasks while
 * still fitting (best fit); exact: fails only when no placement exists.
 * Fills p->shares and returns how many, or 0. */
static size_t fit(planner_t *p, const phx_bf_request_t *r, const caps_t *c)
{
    size_t n = 0, nn;
    uint32_t kmax = 0;
    const uint32_t *idx = nodes_of(p, r->parts, &nn);
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
        s->gpus = r->exclusive       ? node->gpus_total
                  : r->gpus_per_node ? r->gpus_per_node
                                     : tasks * r->gpus_per_task;
    }
    return use;
}

/* fit() inside one of r's partitions (-p a,b: never a node of each): the
 * first (lowest bit) whose nodes hold it; *part its bit (r's parts when it
 * has at most one). */
static size_t fit_part(planner_t *p, const phx_bf_request_t *r, const caps_t *c,
                       uint64_t *part)
{
    *part = r->parts;
    if (!(r->parts & (r->parts - 1)))
        return fit(p, r, c);
    phx_bf_request_t one = *r;
    for (uint64_t m = r->parts; m; m &= m - 1) {
        one.parts = m & (~m + 1);
        size_t n = fit(p, &one, c);
        if (n) {
            *part = one.parts;
            return n;
        }
    }
    return 0;
}

static void take(caps_t *c, const phx_bf_share_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        c->cores[s[i].node] -=
            s[i].cores < c->cores[s[i].node] ? s[i].cores : c->cores[s[i].node];
        c->mem[s[i].node] -=
            s[i].mem < c->mem[s[i].node] ? s[i].mem : c->mem[s[i].node];
        c->gpus[s[i].node] -=
            s[i].gpus < c->gpus[s[i].node] ? s[i].gpus : c->gpus[s[i].node];
    }
}

static void give(const planner_t *p, caps_t *c, const phx_bf_share_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const phx_bf_node_t *node = &p->in->nodes[s[i].node];
        uint64_t cores = (uint64_t)c->cores[s[i].node] + s[i].cores;
        uint64_t mem = c->mem[s[i].node] + s[i].mem;
        uint64_t gpus = (uint64_t)c->gpus[s[i].node] + s[i].gpus;
        c->cores[s[i].node] =
            cores > node->cores_total ? node->cores_total : (uint32_t)cores;
        c->mem[s[i].node] = mem > node->mem_total ? node->mem_total : mem;
        c->gpus[s[i].node] =
            gpus > node->gpus_total ? node->gpus_total : (uint32_t)gpus;
    }
}

/* A release of resources at a time, for the reservation's forecast. */
typedef struct event {
    int64_t at;
    const phx_bf_share_t *shares;
    size_t nshares;
} event_t;

static int cmp_event(const void *a, const void *b)
{
    const event_t *x = a, *y = b;
    return (x->at > y->at) - (x->at < y->at);
}

static int record(phx_bf_decision_t *d, phx_bf_verdict_t v, int64_t at,
                  const phx_bf_share_t *shares, size_t n)
{
    d->verdict = v;
    d->start_time = at;
    if (n) {
        d->shares = malloc(n * sizeof(*shares));
        if (!d->shares)
            return -1;
        memcpy(d->shares, shares, n * sizeof(*shares));
        d->nshares = n;
    }
    return 0;
}

/* Does a release of these shares touch a node of pool? */
static bool in_pool(const planner_t *p, uint32_t pool, const phx_bf_share_t *s,
                    size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p->node_pool[s[i].node] == pool)
            return true;
    return false;
}

/* The earliest time r fits once running jobs and jobs started in this pass
 * end.  Leaves p->shares holding the placement, and p->tmp the capacities
 * then on the nodes of r's pool; -1 when never.  Only releases on the
 * pool's nodes change either: the others are left out (with 16 pools, a
 * reservation once tried a fit after each of the whole cluster's). */
static int64_t find_shadow(planner_t *p, const phx_bf_request_t *r,
                           const phx_bf_plan_t *plan, event_t *ev, size_t *nsh)
{
    const phx_bf_input_t *in = p->in;
    uint32_t pool = phx_bf_pool_of(&p->pl, r->parts);
    int64_t first = INT64_MAX; /* the first release, of any pool */
    size_t n = 0;
    for (size_t i = 0; i < in->nrunning; i++) {
        const phx_bf_running_t *x = &in->running[i];
        if (x->end_time == PHX_BF_NO_END)
            continue;
        first = x->end_time < first ? x->end_time : first;
        if (in_pool(p, pool, x->shares, x->nshares))
            ev[n++] = (event_t){x->end_time, x->shares, x->nshares};
    }
    for (size_t i = 0; i < plan->count; i++) {
        const phx_bf_decision_t *d = &plan->decisions[i];
        int64_t at = in->now + in->pending[i].time_limit;
        if ((d->verdict != PHX_BF_START && d->verdict != PHX_BF_BACKFILL) ||
            in->pending[i].time_limit <= 0)
            continue;
        first = at < first ? at : first;
        if (in_pool(p, pool, d->shares, d->nshares))
            ev[n++] = (event_t){at, d->shares, d->nshares};
    }
    qsort(ev, n, sizeof(*ev), cmp_event);
    memcpy(p->tmp.cores, p->free.cores, in->nnodes * sizeof(*p->tmp.cores));
    memcpy(p->tmp.mem, p->free.mem, in->nnodes * sizeof(*p->tmp.mem));
    memcpy(p->tmp.gpus, p->free.gpus, in->nnodes * sizeof(*p->tmp.gpus));
    /* a fit at the first release, when it is another pool's (the planner
     * asks only for jobs that do not fit now, but its answer is then) */
    if (first != INT64_MAX && (n == 0 || first < ev[0].at) &&
        (*nsh = fit(p, r, &p->tmp)))
        return first > in->now ? first : in->now;
    for (size_t i = 0; i < n;) {
        int64_t at = ev[i].at;
        for (; i < n && ev[i].at == at; i++)
            give(p, &p->tmp, ev[i].shares, ev[i].nshares);
        if ((*nsh = fit(p, r, &p->tmp)))
            return at > in->now ? at : in->now;
    }
    return -1;
}

/* Does r fit the empty nodes?  Asked for every job examined, and jobs are
 * of few shapes: the answer is kept by shape for the pass (and, for jobs
 * that name their nodes, by the nodes they may use: bits compared). */
static bool fits_empty(planner_t *p, const phx_bf_request_t *r)
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
                       (r->exclusive ? 1u : 0u) | (r->mem_whole_node ? 2u : 0u),
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
    const uint32_t *idx = nodes_of(p, r->parts, &nn);
    uint32_t most = 0;
    for (size_t x = 0; x < nn; x++)
        if (free[idx[x]] > most)
            most = free[idx[x]];
    return most;
}

/* A node takes at most its free cores / cpus_per_task tasks of r (at most
 * ntasks_per_node; for GPU requests only, its free GPUs / gpus_per_task, or
 * none without gpus_per_node free): when nodes_max nodes of the most free
 * among r's could not hold r, fit() on p->free (or on less) fails; a full
 * cluster's wide jobs are refused without a look at each node. */
static bool cannot_fit_now(planner_t *p, const phx_bf_request_t *r)
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
        if (p->gpus_stale[slot]) {
            p->most_gpus[slot] = most_of(p, r, p->free.gpus);
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

/* Can r (of one partition, in pool) start now?  START while its pool has
 * no reservation and nothing blocked; else BACKFILL, within the window:
 * anywhere it fits if the pool is blocked (no reservation to protect) or
 * if it ends by the pool's shadow time, else only in what the reservation
 * leaves (*spare set: the placement comes off the spare too).  WAIT when
 * not; p->shares and *nsh hold the placement. */
static phx_bf_verdict_t try_now(planner_t *p, const phx_bf_params_t *params,
                                const phx_bf_request_t *r, uint32_t pool, size_t *nsh,
                                bool *spare)
{
    const pool_state_t *ps = &p->pools[pool];
    const phx_bf_input_t *in = p->in;
    *spare = false;
    if (cannot_fit_now(p, r))
        return PHX_BF_WAIT;
    if (!ps->reserved && !ps->blocked)
        return (*nsh = fit(p, r, &p->free)) ? PHX_BF_START : PHX_BF_WAIT;
    if (params->window > 0 && (r->time_limit == 0 || r->time_limit > params->window))
        return PHX_BF_WAIT;
    if (ps->blocked || (r->time_limit > 0 && in->now + r->time_limit <= ps->shadow))
        return (*nsh = fit(p, r, &p->free)) ? PHX_BF_BACKFILL : PHX_BF_WAIT;
    size_t nn; /* fit() reads r's nodes only */
    const uint32_t *idx = nodes_of(p, r->parts, &nn);
    for (size_t x = 0; x < nn; x++) {
        uint32_t j = idx[x];
        p->tmp.cores[j] =
            p->free.cores[j] < p->spare.cores[j] ? p->free.cores[j] : p->spare.cores[j];
        p->tmp.mem[j] =
            p->free.mem[j] < p->spare.mem[j] ? p->free.mem[j] : p->spare.mem[j];
    }
    if (r->gpus_per_node | r->gpus_per_task | r->exclusive) /* else unread */
        for (size_t x = 0; x < nn; x++) {
            uint32_t j = idx[x];
            p->tmp.gpus[j] =
                p->free.gpus[j] < p->spare.gpus[j] ? p->free.gpus[j] : p->spare.gpus[j];
        }
    *spare = true;
    return (*nsh = fit(p, r, &p->tmp)) ? PHX_BF_BACKFILL : PHX_BF_WAIT;
}

/* Reserve r (nothing of it can start now) in the one of its pools without
 * a reservation or a blocked job where it can start the soonest: the
 * pool's first blocked job.  When only jobs without a time limit stand in
 * its way in all of those its partition there can hold, they are blocked:
 * no reservation can be promised, and their later jobs start wherever they
 * fit.  (A partition too small for it blocks nothing.) */
static int reserve(planner_t *p, const phx_bf_request_t *r, phx_bf_plan_t *plan,
                   size_t i, event_t *ev)
{
    const phx_bf_input_t *in = p->in;
    phx_bf_decision_t *d = &plan->decisions[i];
    phx_bf_request_t one;
    uint64_t left = r->parts, part = 0, open = 0;
    bool first = true, any = false;
    int64_t best = -1;
    size_t nsh;
    while (phx_bf_next_part(r, &left, &first, &one)) {
        uint32_t pool = phx_bf_pool_of(&p->pl, one.parts);
        if (p->pools[pool].reserved || p->pools[pool].blocked || !fits_empty(p, &one))
            continue;
        any = true;
        open |= one.parts;
        int64_t t = find_shadow(p, &one, plan, ev, &nsh);
        if (t >= 0 && (best < 0 || t < best))
            best = t, part = one.parts;
    }
    d->verdict = PHX_BF_WAIT;
    if (!any)
        return 0;
    if (best < 0) {
        left = r->parts, first = true;
        while (phx_bf_next_part(r, &left, &first, &one))
            if (!r->parts || (one.parts & open))
                p->pools[phx_bf_pool_of(&p->pl, one.parts)].blocked = true;
        return 0;
    }
    one = *r;
    one.parts = part;
    find_shadow(p, &one, plan, ev, &nsh); /* p->tmp and p->shares: of part */
    uint32_t pool = phx_bf_pool_of(&p->pl, part);
    d->pool = pool;
    d->parts = part;
    /* spare = free at the shadow time minus the reservation, on the pool's
     * nodes (no other pool's job can use them) */
    for (size_t k = 0; k < in->nnodes; k++)
        if (p->node_pool[k] == pool) {
            p->spare.cores[k] = p->tmp.cores[k];
            p->spare.mem[k] = p->tmp.mem[k];
            p->spare.gpus[k] = p->tmp.gpus[k];
        }
    take(&p->spare, p->shares, nsh);
    /* The reservation is counted in cores, not which: with tasks capped per
     * socket it needs room in given sockets, which a job running past the
     * shadow time could take while leaving as many cores.  Its nodes are
     * then kept for jobs ending first. */
    if (r->ntasks_per_socket)
        for (size_t k = 0; k < nsh; k++)
            p->spare.cores[p->shares[k].node] = 0;
    if (record(d, PHX_BF_RESERVED, best, p->shares, nsh) < 0)
        return -1;
    p->pools[pool].reserved = true;
    p->pools[pool].shadow = best;
    if (plan->reserved < 0) {
        plan->reserved = (ssize_t)i;
        plan->shadow_time = best;
    }
    plan->nreserved++;
    return 0;
}

/* Budget (max_job_test jobs examined in each pool): r as examined, in
 * *rr: in those of its partitions whose pools have room left, where it
 * counts; false when none has.  (Examining it also where the budget is
 * spent would let it pass that pool's jobs that were not examined.) */
static bool examine(planner_t *p, const phx_bf_params_t *params,
                    const phx_bf_request_t *r, phx_bf_request_t *rr)
{
    phx_bf_request_t one;
    uint64_t left = r->parts, room = 0;
    bool first = true, any = false, counted[PHX_BF_POOLS] = {false};
    while (phx_bf_next_part(r, &left, &first, &one)) {
        uint32_t pool = phx_bf_pool_of(&p->pl, one.parts);
        pool_state_t *ps = &p->pools[pool];
        if (!counted[pool]) { /* once per pool, as pass_select counts */
            if (params->max_job_test && ps->tested >= params->max_job_test)
                continue;
            ps->tested++;
            counted[pool] = true;
        }
        room |= one.parts;
        any = true;
    }
    *rr = *r;
    if (r->parts & (r->parts - 1))
        rr->parts = room;
    return any;
}

/* Each job in priority order: in the first of its partitions where it can
 * start now (try_now), else reserved (reserve).  Pools are of nodes: a job
 * of several partitions is examined in each one's pool, by that pool's
 * reservation, and reserved in one only. */
static int plan_pass(planner_t *p, const phx_bf_params_t *params, phx_bf_plan_t *plan,
                     event_t *ev)
{
    const phx_bf_input_t *in = p->in;
    for (size_t i = 0; i < in->npending; i++) {
        const phx_bf_request_t *r = &in->pending[i];
        phx_bf_decision_t *d = &plan->decisions[i];
        d->start_time = -1;
        d->pool = phx_bf_pool_of(&p->pl, r->parts & (~r->parts + 1));
        phx_bf_request_t rr;
        if (!examine(p, params, r, &rr))
            continue; /* stays NOT_TESTED */
        plan->tested++;
        if (!phx_bf_request_sane(r) || !fits_empty(p, r)) {
            d->verdict = PHX_BF_NEVER;
            continue;
        }
        r = &rr; /* in the partitions where it is examined */
        d->pool = phx_bf_pool_of(&p->pl, r->parts & (~r->parts + 1));
        phx_bf_request_t one;
        uint64_t left = r->parts;
        bool first = true, spare, started = false;
        size_t nsh;
        while (!started && phx_bf_next_part(r, &left, &first, &one)) {
            uint32_t pool = phx_bf_pool_of(&p->pl, one.parts);
            phx_bf_verdict_t v = try_now(p, params, &one, pool, &nsh, &spare);
            if (v == PHX_BF_WAIT)
                continue;
            take(&p->free, p->shares, nsh);
            for (size_t k = 0; k < nsh; k++) {
                bool g = p->shares[k].gpus != 0;
                p->gpus_stale[64] |= g;
                for (uint64_t m = in->nodes[p->shares[k].node].parts; m; m &= m - 1) {
                    p->most_stale[__builtin_ctzll(m)] = true;
                    p->gpus_stale[__builtin_ctzll(m)] |= g;
                }
            }
            p->most_stale[64] = true;
            if (spare)
                take(&p->spare, p->shares, nsh);
            if (record(d, v, in->now, p->shares, nsh) < 0)
                return -1;
            d->pool = pool;
            d->parts = one.parts;
            started = true;
        }
        if (!started && reserve(p, r, plan, i, ev) < 0)
            return -1;
        if (!started && d->verdict == PHX_BF_WAIT && (r->parts & (r->parts - 1)))
            d->parts = r->parts; /* where placement may try it */
    }
    return 0;
}

static bool caps_alloc(caps_t *c, size_t n)
{
    c->cores = calloc(n, sizeof(*c->cores));
    c->mem = calloc(n, sizeof(*c->mem));
    c->gpus = calloc(n, sizeof(*c->gpus));
    return c->cores && c->mem && c->gpus;
}

static void caps_free(caps_t *c)
{
    free(c->cores);
    free(c->mem);
    free(c->gpus);
}

int phx_backfill_plan(const phx_bf_input_t *in, const phx_bf_params_t *params,
                      phx_bf_plan_t *plan, phx_error_t *err)
{
    static const phx_bf_params_t no_params = {0};
    size_t nn = in->nnodes ? in->nnodes : 1;
    planner_t p = {.in = in};
    event_t *ev = NULL;
    int rc = -1;
    *plan = (phx_bf_plan_t){.reserved = -1, .shadow_time = -1, .count = in->npending};
    if (!params)
        params = &no_params;
    for (size_t i = 0; i < in->nrunning; i++)
        for (size_t j = 0; j < in->running[i].nshares; j++)
            if (in->running[i].shares[j].node >= in->nnodes)
                return phx_error_set(
                    err, "running job %" PRIu64 " names node %" PRIu32 " of %zu",
                    in->running[i].job_id, in->running[i].shares[j].node, in->nnodes);
    plan->decisions = calloc(in->npending ? in->npending : 1, sizeof(*plan->decisions));
    bool caps = caps_alloc(&p.free, nn) & caps_alloc(&p.spare, nn) &
                caps_alloc(&p.tmp, nn) & caps_alloc(&p.empty, nn);
    p.cands = calloc(nn, sizeof(*p.cands));
    p.sorted = calloc(nn, sizeof(*p.sorted));
    p.shares = calloc(nn, sizeof(*p.shares));
    uint32_t most = 1;
    size_t member = 0; /* node-partition pairs */
    for (size_t i = 0; i < in->nnodes; i++) {
        if (in->nodes[i].sockets > most)
            most = in->nodes[i].sockets;
        if (in->nodes[i].cores_total > p.kmax)
            p.kmax = in->nodes[i].cores_total;
        member += (size_t)__builtin_popcountll(in->nodes[i].parts);
    }
    if (p.kmax > 65536)
        p.kmax = 65536; /* larger counts: qsort */
    p.kcount = calloc((size_t)p.kmax + 2, sizeof(*p.kcount));
    memset(p.most_stale, 1, sizeof(p.most_stale));
    memset(p.gpus_stale, 1, sizeof(p.gpus_stale));
    for (p.memo_n = 64; p.memo_n < EMPTY_MEMO && p.memo_n < 2 * in->npending;)
        p.memo_n *= 2;
    p.memo = calloc(p.memo_n, sizeof(*p.memo));
    p.part_nodes = calloc(member + 1, sizeof(*p.part_nodes));
    p.all_nodes = calloc(nn, sizeof(*p.all_nodes));
    p.sockets = calloc(most, sizeof(*p.sockets));
    p.node_pool = calloc(nn, sizeof(*p.node_pool));
    ev = calloc(in->nrunning + in->npending + 1, sizeof(*ev));
    if (!plan->decisions || !caps || !p.cands || !p.shares || !p.sockets ||
        !p.node_pool || !ev || !p.sorted || !p.kcount || !p.memo || !p.part_nodes ||
        !p.all_nodes) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    /* pools of the nodes' partitions: a request of several is examined in
     * each (joining them would take another partition's reservation away) */
    phx_bf_pools_init(&p.pl, in->nodes, in->nnodes);
    for (size_t i = 0; i < in->npending; i++)
        if (!in->pending[i].parts)
            phx_bf_pools_join(&p.pl, 0); /* any node: one pool */
    for (size_t i = 0; i < in->nnodes; i++)
        p.node_pool[i] = phx_bf_pool_of(&p.pl, in->nodes[i].parts);
    for (size_t i = 0; i < in->nnodes; i++) {
        const phx_bf_node_t *n = &in->nodes[i];
        p.free.cores[i] =
            n->cores_free < n->cores_total ? n->cores_free : n->cores_total;
        p.free.mem[i] = n->mem_free < n->mem_total ? n->mem_free : n->mem_total;
        p.free.gpus[i] = n->gpus_free < n->gpus_total ? n->gpus_free : n->gpus_total;
        p.empty.cores[i] = n->cores_total;
        p.empty.mem[i] = n->mem_total;
        p.empty.gpus[i] = n->gpus_total;
        p.all_nodes[i] = (uint32_t)i;
    }
    /* each partition's nodes, in index order (a counting sort by bit) */
    for (size_t i = 0; i < in->nnodes; i++)
        for (uint64_t m = in->nodes[i].parts; m; m &= m - 1)
            p.part_at[__builtin_ctzll(m) + 1]++;
    for (size_t b = 1; b <= 64; b++)
        p.part_at[b] += p.part_at[b - 1];
    size_t at[64];
    memcpy(at, p.part_at, sizeof(at));
    for (size_t i = 0; i < in->nnodes; i++)
        for (uint64_t m = in->nodes[i].parts; m; m &= m - 1)
            p.part_nodes[at[__builtin_ctzll(m)]++] = (uint32_t)i;
    if (plan_pass(&p, params, plan, ev) < 0) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        phx_backfill_plan_clear(plan);
    caps_free(&p.free);
    caps_free(&p.spare);
    caps_free(&p.tmp);
    caps_free(&p.empty);
    free(p.cands);
    free(p.sorted);
    free(p.kcount);
    free(p.memo);
    free(p.part_nodes);
    free(p.all_nodes);
    free(p.shares);
    free(p.sockets);
    free(p.node_pool);
    free(ev);
    return rc;
}

void phx_backfill_plan_clear(phx_bf_plan_t *plan)
{
    if (!plan)
        return;
    int saved = errno;
    for (size_t i = 0; plan->decisions && i < plan->count; i++)
        free(plan->decisions[i].shares);
    free(plan->decisions);
    *plan = (phx_bf_plan_t){.reserved = -1, .shadow_time = -1};
    errno = saved;
}

const char *phx_backfill_verdict_name(phx_bf_verdict_t v)
{
    static const char *const names[] = {"not-tested", "start", "backfill",
                                        "reserved",   "wait",  "never"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : NULL;
}
