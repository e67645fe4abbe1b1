/* Free resources of one node (free cores, free memory per NUMA domain),
 * grants (cores + memory taken from it), NUMA/socket bundles and the choice
 * of cores for a request.  Pure C over the model: no hwloc, no clock, no I/O.
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
/* Same topology, same free cores, same free memory everywhere. */
bool phx_topo_free_equal(const phx_topo_free_t *a, const phx_topo_free_t *b);

/* Take a grant's cores and memory.  Every core must be free and every NUMA
 * domain must have the memory; otherwise -1 (EBUSY or ENOSPC) with a message
 * naming the first offender, and nothing changes. */
int phx_topo_free_alloc(phx_topo_free_t *free_res, const phx_topo_grant_t *grant,
                        phx_error_t *err);
/* Give a grant back.  Every core must be allocated and the memory must have
 * been taken; otherwise -1 (EINVAL) naming the offender, and nothing
 * changes. */
int phx_topo_free_release(phx_topo_free_t *free_res, const phx_topo_grant_t *grant,
                          phx_error_t *err);

/* A grant: cores, memory per NUMA domain, and optionally the cores of each
 * task (filled by phx_topo_carve).  Sized for one topology (borrowed). */
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
} phx_topo_request_t;

/* A request for ntasks × cpus_per_task with no constraint. */
phx_topo_request_t phx_topo_request(int ntasks, int cpus_per_task);

/* Choose cores for req among the free resources; fills grant (cleared
 * first) and does not change free_res: follow with phx_topo_free_alloc.
 * Each task's cores lie inside one NUMA domain when some domain can hold
 * them, else inside one socket when some socket can, else (without
 * tasks_per_socket) anywhere; domains are filled in id order before the next
 * is used.  Deterministic.  -1 with ENOSPC when the request does not fit
 * (grant then empty), EINVAL when it is malformed.  No allocation. */
int phx_topo_carve(const phx_topo_free_t *free_res, const phx_topo_request_t *req,
                   phx_topo_grant_t *grant, phx_error_t *err);

/* Bundles: the free cores (and free memory) of one NUMA domain or one socket.
 * Fills cores (sized for the topology) and *memory; returns the number of
 * free cores. */
int phx_topo_free_numa_bundle(const phx_topo_free_t *free_res, int numa,
                              phx_topo_coreset_t *cores, uint64_t *memory);
int phx_topo_free_socket_bundle(const phx_topo_free_t *free_res, int socket,
                                phx_topo_coreset_t *cores, uint64_t *memory);
/* All non-empty bundles as JSON, for offers:
 * {"cpus": N, "mem": B, "numa": [{"socket","numa","cores":[..],"mem"}...],
 *  "sockets": [{"socket","numas":[..],"cores":[..],"mem"}...]}.
 * New reference, NULL on ENOMEM. */
json_t *phx_topo_free_bundles_json(const phx_topo_free_t *free_res);

#endif
