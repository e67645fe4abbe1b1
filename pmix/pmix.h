/* The PMIx server host used by phx-agent: one PMIx server per agent, a
 * namespace per step, fences and direct-modex requests handed to the agent,
 * which routes them through the master.
 *
 * PMIx calls its host on its own progress thread.  Every callback copies
 * what it needs into a heap event and wakes the agent's loop through a pipe;
 * the ops below therefore always run on the loop thread.  Completions
 * (phx_pmix_fence_done, phx_pmix_dmodex_done) are called from the loop
 * thread too; the library keeps their buffers alive until PMIx releases them.
 * No PMIx type appears in this header. */
#ifndef PHX_PMIX_H
#define PHX_PMIX_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"

typedef struct phx_pmix phx_pmix_t;

/* Called on the loop thread.  token names a pending operation that must be
 * completed exactly once with the matching _done call. */
typedef struct phx_pmix_ops {
    /* Every local rank of nspace joined a fence: data is their contribution
     * (borrowed for the call). */
    void (*fence)(void *arg, const char *nspace, uint64_t token, const void *data,
                  size_t len);
    /* A local rank wants the data of rank of nspace, hosted elsewhere. */
    void (*dmodex)(void *arg, const char *nspace, int rank, uint64_t token);
    /* The answer of phx_pmix_dmodex_request. */
    void (*dmodex_data)(void *arg, uint64_t req, int status, const void *data,
                        size_t len);
    /* MPI_Abort: status is the abort code. */
    void (*abort)(void *arg, const char *nspace, int rank, int status, const char *msg);
    void (*connected)(void *arg, const char *nspace, int rank);
    void (*finalized)(void *arg, const char *nspace, int rank);
    /* The connection of a rank that had not finalized went away. */
    void (*lost)(void *arg, const char *nspace, int rank);
} phx_pmix_ops_t;

/* Start the PMIx server: node is this node's name as it appears in node maps,
 * tmpdir a private directory of this agent (made if missing).  Clients reach
 * it over tcp4 loopback.  NULL with err on failure. */
phx_pmix_t *phx_pmix_create(struct event_base *base, const char *node,
                            const char *tmpdir, const phx_pmix_ops_t *ops, void *arg,
                            phx_error_t *err);
/* Finalize the server.  NULL is a no-op. */
void phx_pmix_destroy(phx_pmix_t *p);

/* The rank map of a step, as every agent of the step sees it. */
typedef struct phx_pmix_map {
    const char *nspace;
    int size;                 /* ranks in the step */
    int nnodes;               /* nodes hosting ranks */
    const char *const *nodes; /* node names, node id order */
    const int *nranks;        /* ranks per node */
    const int *const *ranks;  /* ascending ranks of each node */
    int node;                 /* index of this node in nodes */
    uid_t uid;                /* the ranks' user */
    gid_t gid;
    bool oversubscribed; /* more local ranks than cores */
} phx_pmix_map_t;

/* Register the namespace of a step and its local ranks as clients, and make
 * the step's private directory on this node (OpenMPI's session directory and
 * shared-memory backing files go there, so that they go with the step). */
int phx_pmix_step_register(phx_pmix_t *p, const phx_pmix_map_t *map, phx_error_t *err);
/* Deregister it (its pending fences fail) and remove what OpenMPI left
 * behind for it (shared-memory segments, session directories). */
void phx_pmix_step_deregister(phx_pmix_t *p, const char *nspace);

/* The environment of one local rank: PMIx's own variables, what OpenMPI
 * needs for a direct launch, OMPI_COMM_WORLD_* and PHX_*.  Appends
 * malloc'd "KEY=value" strings to *env (NULL-terminated, *n entries,
 * grown as needed; caller frees). */
int phx_pmix_rank_env(phx_pmix_t *p, const phx_pmix_map_t *map, int rank, char ***env,
                      int *n, phx_error_t *err);

/* Complete a fence with the concatenation of every node's contribution
 * (copied).  status 0: success. */
void phx_pmix_fence_done(phx_pmix_t *p, uint64_t token, int status, const void *data,
                         size_t len);
/* Complete a direct-modex request with the remote rank's data (copied). */
void phx_pmix_dmodex_done(phx_pmix_t *p, uint64_t token, int status, const void *data,
                          size_t len);
/* Ask the local PMIx server for the data of a local rank; the answer comes
 * through ops->dmodex_data with req. */
int phx_pmix_dmodex_request(phx_pmix_t *p, const char *nspace, int rank, uint64_t req);

/* Run the callbacks PMIx queued so far (the loop does it by itself; call
 * it to see a rank's finalize before looking at its exit). */
void phx_pmix_drain(phx_pmix_t *p);

/* Set a "KEY=value" entry in an environment array like phx_pmix_rank_env's. */
int phx_pmix_env_set(char ***env, int *n, const char *key, const char *value);

#endif
