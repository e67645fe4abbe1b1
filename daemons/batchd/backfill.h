/* EASY backfill planner: a pure function from the cluster's free resources,
 * the running jobs' expected ends and the pending jobs (in priority order)
 * to what starts now, and the reservation of the first job that cannot.
 *
 * Pending jobs start in priority order while they fit.  The first that does
 * not fit gets a reservation: the earliest time (the "shadow time") at which
 * it fits once running jobs end at their time limits, on concrete nodes.
 * A later job may then start now only if it fits now and either ends by the
 * shadow time or uses only resources the reservation leaves free at the
 * shadow time; so backfill never delays the reserved start.
 *
 * Partitions on disjoint nodes are planned apart: each pool (a set of
 * partitions linked by shared nodes, phx_bf_pools_t) has its own reserved
 * job, its own backfill window and its own budget of jobs examined
 * (max_job_test), so that one partition's blocked job holds up no other
 * partition's jobs.  Without partitions there is one pool.  Placement here
 * is by cores, memory and GPUs per node, and by sockets as far as the planner can
 * tell (phx_bf_socket_tasks): it knows how many cores of a node are free,
 * not which, and counts them as favourably split over the sockets as they
 * could be; topology-aware packing happens later against offers. */
#ifndef PHX_BATCHD_BACKFILL_H
#define PHX_BATCHD_BACKFILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"

#define PHX_BF_NO_END INT64_MAX /* a job without a time limit */

/* GPU classes: the planner counts GPUs by class, a class being one GPU
 * model (the caller's grouping: batchd makes each distinct model of the
 * cluster a class, and when there are more than this many, the models
 * past the last but one share the last class).  A request may use the
 * classes its type matches (phx_bf_request_t.gpu_other: those it may not);
 * an untyped one any.  At most 255 GPUs of a class on a node. */
#define PHX_BF_GPU_CLASSES 8

typedef struct phx_bf_node {
    uint32_t cores_total;
    uint32_t cores_free;
    uint64_t mem_total; /* MiB */
    uint64_t mem_free;
    bool usable;               /* false (drained, down): nothing is placed there */
    uint32_t sockets;          /* 0: one; cores split evenly over them */
    uint32_t threads_per_core; /* 0: one */
    uint64_t parts;            /* the partitions it is in (bit i: partition i) */
    uint32_t gpus_total;       /* its GPUs (0: none) */
    uint32_t gpus_free;        /* less what running jobs hold, as cores_free */
    /* with GPU classes (phx_bf_input_t.gpu_classes > 0): its GPUs of each
     * class, and those free; gpus_total and gpus_free are then unread */
    uint8_t gpus_class_total[PHX_BF_GPU_CLASSES];
    uint8_t gpus_class_free[PHX_BF_GPU_CLASSES];
} phx_bf_node_t;

/* A job's part of one node. */
typedef struct phx_bf_share {
    uint32_t node; /* index into the input's nodes */
    uint32_t tasks;
    uint32_t cores;
    uint64_t mem;
    uint32_t gpus; /* gpus_per_node, gpus_per_task x tasks, or (exclusive) all */
    /* with GPU classes: gpus by class (a running job's: which it holds; the
     * planner's: lowest class first among those the job may use, a guess
     * as which cores are: placement against offers picks them) */
    uint8_t gpus_class[PHX_BF_GPU_CLASSES];
} phx_bf_share_t;

typedef struct phx_bf_running {
    uint64_t job_id;
    int64_t end_time; /* start + time limit; PHX_BF_NO_END when none */
    const phx_bf_share_t *shares;
    size_t nshares;
} phx_bf_running_t;

typedef struct phx_bf_request {
    uint64_t job_id;
    uint32_t nodes_min; /* node count range; each node gets >= 1 task; */
    uint32_t nodes_max; /* the fewest nodes that fit are used */
    uint32_t ntasks;
    uint32_t cpus_per_task;
    uint32_t ntasks_per_node;   /* 0: any; else at most this many per node */
    uint32_t ntasks_per_socket; /* 0: any; else at most this many per socket */
    /* node constraints (-B S:C:T): at least this many, 0: any */
    uint32_t min_sockets;
    uint32_t min_cores_per_socket;
    uint32_t min_threads_per_core;
    uint64_t mem_per_node; /* MiB; 0: none (see mem_whole_node) */
    uint64_t mem_per_cpu;  /* MiB; 0: none */
    bool mem_whole_node;   /* --mem=0: all of each node's memory */
    bool exclusive;        /* whole nodes, all their GPUs included */
    /* GPUs, at most one non-zero: on each node used (a node without them
     * free takes no task), or per task (a node takes at most its free
     * GPUs / gpus_per_task tasks); 0/0: none */
    uint32_t gpus_per_node;
    uint32_t gpus_per_task;
    uint32_t gpu_other;   /* GPU classes it may not use (bit c: class c), not
                             of its type; 0: any.  An exclusive job takes
                             every GPU of its nodes whatever their class */
    int64_t time_limit;   /* seconds; 0: none */
    uint64_t parts;       /* nodes of one of these partitions only, all in the
                             same one (the first that can start it, else the
                             one that can the soonest); 0: any */
    const uint64_t *only; /* the nodes it may use (-w, -x, -C), bit i: node i
                             of the input; NULL: any */
} phx_bf_request_t;

/* May r use node i (its -w, -x, -C)? */
static inline bool phx_bf_node_allowed(const phx_bf_request_t *r, size_t i)
{
    return !r->only || (r->only[i >> 6] >> (i & 63) & 1);
}

/* Tasks of r that a node with gpus free GPUs of its total can hold by its
 * GPUs: free / gpus_per_task; without gpus_per_node free, or (exclusive)
 * with one of them taken, none; else no limit (UINT32_MAX). */
static inline uint32_t phx_bf_gpu_tasks(const phx_bf_request_t *r, uint32_t gpus,
                                        uint32_t total)
{
    if ((r->exclusive && gpus < total) || gpus < r->gpus_per_node)
        return 0;
    return r->gpus_per_task ? gpus / r->gpus_per_task : UINT32_MAX;
}

/* The partitions of r, one at a time (-p a,b: each bit; else its mask, 0
 * included): *one is r within the next; false at the end. */
static inline bool phx_bf_next_part(const phx_bf_request_t *r, uint64_t *left,
                                    bool *first, phx_bf_request_t *one)
{
    *one = *r;
    if (!(r->parts & (r->parts - 1))) { /* one partition, or none */
        bool go = *first;
        *first = false;
        return go;
    }
    *first = false;
    if (!*left)
        return false;
    one->parts = *left & (~*left + 1);
    *left &= *left - 1;
    return true;
}

typedef struct phx_bf_params {
    int64_t window;        /* bf_window, seconds: longer jobs are not backfilled;
                              0: no bound */
    uint32_t max_job_test; /* bf_max_job_test: pending jobs examined in each
                              pool; 0: all */
} phx_bf_params_t;

/* Pools: partitions (bits of the masks) joined when a node or a request
 * spans them; a request of any node (parts 0) joins them all into one. */
#define PHX_BF_POOL_ALL 64 /* the one pool, when a request may use any node */
#define PHX_BF_POOLS    65 /* pool ids: a partition bit (its pool's root) or ALL */
typedef struct phx_bf_pools {
    uint8_t root[64]; /* union-find over the partition bits */
    bool one;         /* everything is one pool */
} phx_bf_pools_t;

/* The pools of these nodes' partitions. */
void phx_bf_pools_init(phx_bf_pools_t *pl, const phx_bf_node_t *nodes, size_t nnodes);
/* A request (or node) in partitions parts joins them. */
void phx_bf_pools_join(phx_bf_pools_t *pl, uint64_t parts);
/* The pool of a request or node in partitions parts (< PHX_BF_POOLS). */
uint32_t phx_bf_pool_of(phx_bf_pools_t *pl, uint64_t parts);
/* The pools of a request in partitions parts (one per partition of -p a,b,
 * each once) into out: their number (1 at least). */
size_t phx_bf_pools_list(phx_bf_pools_t *pl, uint64_t parts, uint32_t out[64]);
/* How many pools the nodes' partitions make (1 when pl->one). */
size_t phx_bf_pools_count(phx_bf_pools_t *pl, const phx_bf_node_t *nodes,
                          size_t nnodes);

typedef enum phx_bf_verdict {
    PHX_BF_NOT_TESTED, /* beyond its pool's max_job_test */
    PHX_BF_START,      /* starts now, in priority order */
    PHX_BF_BACKFILL,   /* starts now, past the reserved job */
    PHX_BF_RESERVED,   /* its pool's top blocked job: start_time is the shadow
                          time */
    PHX_BF_WAIT,       /* waits (reason Priority, or Resources when no
                          reservation) */
    PHX_BF_NEVER,      /* cannot fit even on the empty cluster */
} phx_bf_verdict_t;

typedef struct phx_bf_decision {
    phx_bf_verdict_t verdict;
    int64_t start_time;     /* START, BACKFILL: now; RESERVED: shadow; else -1 */
    phx_bf_share_t *shares; /* START, BACKFILL, RESERVED: the nodes */
    size_t nshares;
    uint32_t pool;  /* its pool (every verdict) */
    uint64_t parts; /* START, BACKFILL, RESERVED: the partition (one bit of
                       the request's) its nodes are in; WAIT of a request of
                       several: those it was examined in; else 0 */
} phx_bf_decision_t;

typedef struct phx_bf_input {
    int64_t now;
    const phx_bf_node_t *nodes;
    size_t nnodes;
    const phx_bf_running_t *running;
    size_t nrunning;
    const phx_bf_request_t *pending; /* highest priority first */
    size_t npending;
    uint32_t gpu_classes; /* 0: GPUs are one class (the nodes' gpus_total and
                             gpus_free, the shares' gpus); else this many
                             (at most PHX_BF_GPU_CLASSES: gpus_class_*) */
} phx_bf_input_t;

typedef struct phx_bf_plan {
    phx_bf_decision_t *decisions; /* npending, in the same order */
    size_t count;
    ssize_t reserved;    /* index of the first reserved job, -1 when none */
    int64_t shadow_time; /* its start, -1 when none */
    size_t nreserved;    /* reserved jobs: at most one per pool */
    size_t tested;
} phx_bf_plan_t;

/* Tasks of cpus_per_task cores that sockets with free[s] free cores hold
 * (nsockets of them), as batchd_place packs them: each task inside one
 * socket, at most per_socket tasks on a socket (0: no cap).  With spread,
 * and no per_socket, a task may also span sockets once no socket can hold
 * one more (place.c does so): then it is total free / cpus_per_task.  The
 * one count of tasks per node of batchd: the offers' (sched.c), the
 * cluster's at submit (cluster.c) and the planner's. */
uint32_t phx_bf_socket_tasks(const uint32_t *free, size_t nsockets,
                             uint32_t cpus_per_task, uint32_t per_socket, bool spread);
/* Does a node in partitions parts, of this many sockets, cores and threads
 * per core (0: one) meet r's partition and node constraints (-p, -B S:C:T)?
 * Cores per socket: cores / sockets. */
bool phx_bf_node_qualifies(const phx_bf_request_t *r, uint64_t parts, uint32_t sockets,
                           uint32_t cores, uint32_t threads_per_core);

/* Is r well formed (node range, tasks, cpus per task, GPUs per node or per
 * task, not both)?  Else it never runs. */
bool phx_bf_request_sane(const phx_bf_request_t *r);

/* Plan one pass.  0 with plan filled (release with phx_backfill_plan_clear),
 * or -1 with err (ENOMEM, or a running share naming a node out of range). */
int phx_backfill_plan(const phx_bf_input_t *in, const phx_bf_params_t *params,
                      phx_bf_plan_t *plan, phx_error_t *err);
void phx_backfill_plan_clear(phx_bf_plan_t *plan);
const char *phx_backfill_verdict_name(phx_bf_verdict_t verdict);

#endif
