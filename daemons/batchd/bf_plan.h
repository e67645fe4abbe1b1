/* The EASY planner's inside (backfill.h): its state during one pass, and
 * the placement of one request within given capacities (bf_fit.c), which
 * the pass (backfill.c) calls for the jobs it examines.  Private to those
 * two files. */
#ifndef PHX_BATCHD_BF_PLAN_H
#define PHX_BATCHD_BF_PLAN_H

#include "daemons/batchd/backfill.h"

/* Resources per node that a placement may use. */
typedef struct caps {
    uint32_t *cores;
    uint64_t *mem;
    uint32_t *gpus; /* by class: node i's of class c at gpus[i * ngc + c] */
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
        flags, /* 1: exclusive, 2: mem_whole_node, gpu_other << 8 */
        gpus_per_node, gpus_per_task;
    uint64_t mem_per_node, mem_per_cpu, parts;
    uint64_t only; /* a hash of r->only's bits (0: none); equal bits checked */
} shape_key_t;

_Static_assert(sizeof(shape_key_t) == 80, "shape_key_t has padding");
_Static_assert(PHX_BF_GPU_CLASSES <= 24, "gpu_other does not fit shape_key_t's flags");
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
    uint32_t ngc;            /* GPU classes (1: all GPUs are one) */
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
    /* the same for free GPUs of the classes a request may use (gpus_of:
     * the classes it may not), asked by GPU requests only: stale when a
     * placement took GPUs there since, or asked for other classes */
    uint32_t most_gpus[65];
    uint32_t gpus_of[65];
    bool gpus_stale[65];
} planner_t;

/* The nodes a request of partitions parts may use, by index: those of its
 * partition when it names one, else all; *n their number. */
const uint32_t *phx_bf_nodes_of(const planner_t *p, uint64_t parts, size_t *n);
/* Place r within caps c: the nodes that can take the fewest tasks while
 * still fitting (best fit); exact: fails only when no placement exists.
 * Fills p->shares and returns how many, or 0. */
size_t phx_bf_fit(planner_t *p, const phx_bf_request_t *r, const caps_t *c);
/* Take the shares' resources off c, or give them back (at most each node's
 * total). */
void phx_bf_take(const planner_t *p, caps_t *c, const phx_bf_share_t *s, size_t n);
void phx_bf_give(const planner_t *p, caps_t *c, const phx_bf_share_t *s, size_t n);
/* The GPUs of node i in c of the classes not in other (bits). */
static inline uint32_t phx_bf_gpus(const planner_t *p, const caps_t *c, uint32_t i,
                                   uint32_t other)
{
    const uint32_t *g = c->gpus + (size_t)i * p->ngc;
    uint32_t n = 0;
    if (p->ngc == 1)
        return other & 1 ? 0 : g[0];
    for (uint32_t k = 0; k < p->ngc; k++)
        n += other >> k & 1 ? 0 : g[k];
    return n;
}
/* Does r fit the empty nodes (kept by shape for the pass)? */
bool phx_bf_fits_empty(planner_t *p, const phx_bf_request_t *r);
/* True when r surely cannot fit p->free now (a bound, without a look at
 * each node); false: it may. */
bool phx_bf_cannot_fit_now(planner_t *p, const phx_bf_request_t *r);

#endif
