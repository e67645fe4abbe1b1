#include "daemons/batchd/bf_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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
    memcpy(p->tmp.gpus, p->free.gpus, in->nnodes * p->ngc * sizeof(*p->tmp.gpus));
    /* a fit at the first release, when it is another pool's (the planner
     * asks only for jobs that do not fit now, but its answer is then) */
    if (first != INT64_MAX && (n == 0 || first < ev[0].at) &&
        (*nsh = phx_bf_fit(p, r, &p->tmp)))
        return first > in->now ? first : in->now;
    for (size_t i = 0; i < n;) {
        int64_t at = ev[i].at;
        for (; i < n && ev[i].at == at; i++)
            phx_bf_give(p, &p->tmp, ev[i].shares, ev[i].nshares);
        if ((*nsh = phx_bf_fit(p, r, &p->tmp)))
            return at > in->now ? at : in->now;
    }
    return -1;
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
    if (phx_bf_cannot_fit_now(p, r))
        return PHX_BF_WAIT;
    if (!ps->reserved && !ps->blocked)
        return (*nsh = phx_bf_fit(p, r, &p->free)) ? PHX_BF_START : PHX_BF_WAIT;
    if (params->window > 0 && (r->time_limit == 0 || r->time_limit > params->window))
        return PHX_BF_WAIT;
    if (ps->blocked || (r->time_limit > 0 && in->now + r->time_limit <= ps->shadow))
        return (*nsh = phx_bf_fit(p, r, &p->free)) ? PHX_BF_BACKFILL : PHX_BF_WAIT;
    size_t nn; /* phx_bf_fit() reads r's nodes only */
    const uint32_t *idx = phx_bf_nodes_of(p, r->parts, &nn);
    for (size_t x = 0; x < nn; x++) {
        uint32_t j = idx[x];
        p->tmp.cores[j] =
            p->free.cores[j] < p->spare.cores[j] ? p->free.cores[j] : p->spare.cores[j];
        p->tmp.mem[j] =
            p->free.mem[j] < p->spare.mem[j] ? p->free.mem[j] : p->spare.mem[j];
    }
    if (r->gpus_per_node | r->gpus_per_task | r->exclusive) /* else unread */
        for (size_t x = 0; x < nn; x++)
            for (size_t j = idx[x] * (size_t)p->ngc, e = j + p->ngc; j < e; j++)
                p->tmp.gpus[j] = p->free.gpus[j] < p->spare.gpus[j] ? p->free.gpus[j]
                                                                    : p->spare.gpus[j];
    *spare = true;
    return (*nsh = phx_bf_fit(p, r, &p->tmp)) ? PHX_BF_BACKFILL : PHX_BF_WAIT;
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
        if (p->pools[pool].reserved || p->pools[pool].blocked ||
            !phx_bf_fits_empty(p, &one))
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
            memcpy(p->spare.gpus + k * p->ngc, p->tmp.gpus + k * p->ngc,
                   p->ngc * sizeof(*p->spare.gpus));
        }
    phx_bf_take(p, &p->spare, p->shares, nsh);
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
        if (!phx_bf_request_sane(r) || !phx_bf_fits_empty(p, r)) {
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
            phx_bf_take(p, &p->free, p->shares, nsh);
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
                phx_bf_take(p, &p->spare, p->shares, nsh);
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

static bool caps_alloc(caps_t *c, size_t n, uint32_t ngc)
{
    c->cores = calloc(n, sizeof(*c->cores));
    c->mem = calloc(n, sizeof(*c->mem));
    c->gpus = calloc(n * ngc, sizeof(*c->gpus));
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
    p.ngc = in->gpu_classes ? in->gpu_classes : 1;
    if (p.ngc > PHX_BF_GPU_CLASSES)
        p.ngc = PHX_BF_GPU_CLASSES;
    bool caps = caps_alloc(&p.free, nn, p.ngc) & caps_alloc(&p.spare, nn, p.ngc) &
                caps_alloc(&p.tmp, nn, p.ngc) & caps_alloc(&p.empty, nn, p.ngc);
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
        for (uint32_t k = 0; k < p.ngc && in->gpu_classes; k++) {
            uint32_t t = n->gpus_class_total[k], f = n->gpus_class_free[k];
            p.free.gpus[i * p.ngc + k] = f < t ? f : t;
            p.empty.gpus[i * p.ngc + k] = t;
        }
        if (!in->gpu_classes) {
            p.free.gpus[i] =
                n->gpus_free < n->gpus_total ? n->gpus_free : n->gpus_total;
            p.empty.gpus[i] = n->gpus_total;
        }
        p.empty.cores[i] = n->cores_total;
        p.empty.mem[i] = n->mem_total;
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
