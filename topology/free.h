/* Free resources of one node (free cores, free memory per NUMA domain, free
 * GPUs), grants (cores + memory + GPUs taken from it), NUMA/socket bundles and the
 * choice of cores for a request.  Pure C over the model: no hwloc, no clock, no I/O.
 *
 * A phx_topo_free_t borrows its phx_topo_t, which must outlive it.  Not
 * thread-safe: one owner (the master's loop) mutates it. */
#ifndef PHX_TOPO_FREE_H
#define PHX_TOPO_FREE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/error.h"
#include "topology/coreset.h"
#include "topology/topo.h"

typedef struct phx_topo_free phx_topo_free_t;
typedef struct phx_topo_grant phx_topo_grant_t;

/* Everything free. */
phx_topo_free_t *phx_topo_free_create(const phx_topo_t *topo);
void phx_topo_free_destroy(phx_topo_free_t *free_res);
const phx_topo_t *phx_topo_free_topo(const phx_topo_free_t *free_res);

/* Free cores (borrowed; valid until the next alloc/release). */
const phx_topo_coreset_t *phx_topo_free_cores(const phx_topo_free_t *free_res);
int phx_topo_free_ncores(const phx_topo_free_t *free_res);
int phx_topo_free_numa_ncores(const phx_topo_free_t *free_res, int numa);
int phx_topo_free_socket_ncores(const phx_topo_free_t *free_res, int socket);
uint64_t phx_topo_free_numa_memory(const phx_topo_free_t *free_res, int numa);
uint64_t phx_topo_free_memory(const phx_topo_free_t *free_res);
/* Free GPUs (device ids, see phx_topo_is_gpu): how many, whether dev is one
 * (false for a device that is not a GPU). */
int phx_topo_free_ngpus(const phx_topo_free_t *free_res);
bool phx_topo_free_has_gpu(const phx_topo_free_t *free_res, int dev);
/* Same topology, same free cores, GPUs and memory everywhere. */
bool phx_topo_free_equal(const phx_topo_free_t *a, const phx_topo_free_t *b);

/* Take a grant's cores, GPUs and memory.  Every core and GPU must be free and
 * every NUMA domain must have the memory; otherwise -1 (EBUSY or ENOSPC) with
 * a message naming the first offender (a GPU by id and name: "GPU 1
 * (cuda1)"), and nothing changes. */
int phx_topo_free_alloc(phx_topo_free_t *free_res, const phx_topo_grant_t *grant,
                        phx_error_t *err);
/* Give a grant back.  Every core and GPU must be allocated and the memory
 * must have been taken; otherwise -1 (EINVAL) naming the offender, and nothing
 * changes. */
int phx_topo_free_release(phx_topo_free_t *free_res, const phx_topo_grant_t *grant,
                          phx_error_t *err);

/* A grant: cores, memory per NUMA domain, GPUs, and optionally the cores and
 * GPUs of each task (filled by phx_topo_carve).  Sized for one topology (borrowed). */
phx_topo_grant_t *phx_topo_grant_create(const phx_topo_t *topo);
void phx_topo_grant_destroy(phx_topo_grant_t *grant);
void phx_topo_grant_clear(phx_topo_grant_t *grant);
/* Add a core (no task layout) / set the memory taken from a NUMA domain. */
int phx_topo_grant_add_core(phx_topo_grant_t *grant, int core);
int phx_topo_grant_set_memory(phx_topo_grant_t *grant, int numa, uint64_t bytes);
const phx_topo_coreset_t *phx_topo_grant_cores(const phx_topo_grant_t *grant);
uint64_t phx_topo_grant_memory(const phx_topo_grant_t *grant, int numa);
/* Tasks laid out by phx_topo_carve (0 for a hand-built grant), and the core
 * ids of one task in the order chosen (borrowed from grant). */
int phx_topo_grant_ntasks(const phx_topo_grant_t *grant);
const int *phx_topo_grant_task_cores(const phx_topo_grant_t *grant, int task,
                                     int *ncores);
/* GPUs: add one by device id (-1 with EINVAL if dev is not a GPU of the
 * topology, EEXIST if already in the grant), test, count, and the GPU ids of
 * one task laid out by phx_topo_carve, in the order chosen (borrowed). */
int phx_topo_grant_add_gpu(phx_topo_grant_t *grant, int dev);
bool phx_topo_grant_has_gpu(const phx_topo_grant_t *grant, int dev);
int phx_topo_grant_ngpus(const phx_topo_grant_t *grant);
const int *phx_topo_grant_task_gpus(const phx_topo_grant_t *grant, int task,
                                    int *ngpus);

typedef enum phx_topo_dist {
    PHX_TOPO_DIST_BLOCK,  /* fill a socket before the next */
    PHX_TOPO_DIST_CYCLIC, /* task t starts its search at the socket after t-1's */
} phx_topo_dist_t;

typedef struct phx_topo_request {
    int ntasks;           /* >= 1 */
    int cpus_per_task;    /* cores per task, >= 1 */
    int tasks_per_socket; /* 0: no limit; else at most this many per socket,
                             and no task spans sockets */
    phx_topo_dist_t dist;
    uint64_t mem_per_cpu; /* bytes per core, taken from the core's NUMA domain */
    int numa;             /* >= 0: only cores of this NUMA domain, else -1 */
    int socket;           /* >= 0: only cores of this socket, else -1 */
    int gpus_per_task;    /* GPUs per task, >= 0 (see phx_topo_carve) */
} phx_topo_request_t;

/* A request for ntasks × cpus_per_task with no constraint and no GPU. */
phx_topo_request_t phx_topo_request(int ntasks, int cpus_per_task);

/* Choose cores for req among the free resources; fills grant (cleared
 * first) and does not change free_res: follow with phx_topo_free_alloc.
 * Each task's cores lie inside one NUMA domain when some domain can hold
 * them, else inside one socket when some socket can, else (without
 * tasks_per_socket) anywhere; domains are filled in id order before the next
 * is used.  With gpus_per_task, each task then gets that many free GPUs:
 * first those of the NUMA domain of its first core, then those of that core's
 * socket, then any (a GPU local to no socket included), lowest id first
 * within each; numa/socket constrain the cores only.  Deterministic.  -1 with ENOSPC
 * when the request does not fit (grant then empty), EINVAL when it is malformed.  No
 * allocation. */
int phx_topo_carve(const phx_topo_free_t *free_res, const phx_topo_request_t *req,
                   phx_topo_grant_t *grant, phx_error_t *err);

/* Bundles: the free cores (and free memory) of one NUMA domain or one socket.
 * Fills cores (sized for the topology) and *memory; returns the number of
 * free cores. */
int phx_topo_free_numa_bundle(const phx_topo_free_t *free_res, int numa,
                              phx_topo_coreset_t *cores, uint64_t *memory);
int phx_topo_free_socket_bundle(const phx_topo_free_t *free_res, int socket,
                                phx_topo_coreset_t *cores, uint64_t *memory);
/* All non-empty bundles (those with a free core) as JSON, for offers:
 * {"cpus": N, "mem": B, "gpus": G, "gpu_ids": [..],
 *  "numa": [{"socket","numa","cores":[..],"mem","gpus":[..]}...],
 *  "sockets": [{"socket","numas":[..],"cores":[..],"mem","gpus":[..]}...]}.
 * "gpus" of a bundle lists the free GPUs local to its domain / socket;
 * "gpu_ids" all free GPUs (also those local to no socket), "gpus" their
 * number.
 * New reference, NULL on ENOMEM. */
json_t *phx_topo_free_bundles_json(const phx_topo_free_t *free_res);

#endif
