/* The master's allocator: weighted DRF across frameworks, offer filters,
 * suppress/revive, and gang requests that hold resources as they free up
 * (lending them with a release_by deadline).  Pure C over plain structs: no
 * sockets, no SQL, no clock (every call that needs the time takes `now`).
 * See doc/allocator.md for the model and the exact orders.
 *
 * Times are seconds (double) on one clock of the caller's choosing, the same
 * for every call (now, filter expiry, task end times, request expiry,
 * release_by).  Resources are cores ("cpus"), bytes of memory and GPUs.
 *
 * Ownership of the free trackers: once an agent is added, the allocator is
 * the only writer of its phx_topo_free_t.  It allocates offers from it,
 * releases returned offers and ended tasks into it, and allocates recovered
 * tasks (phx_alloc_usage_add).  The master only reads it.
 *
 * Not thread-safe: the master's loop thread only.  Never call the allocator
 * from inside one of its callbacks. */
#ifndef PHX_MASTER_ALLOC_H
#define PHX_MASTER_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/error.h"
#include "topology/free.h"

typedef struct phx_alloc phx_alloc_t;

/* Default DECLINE filter (Mesos' filters.refuse_seconds). */
#define PHX_ALLOC_REFUSE_DEFAULT 5.0

typedef enum phx_alloc_bundle_kind {
    PHX_ALLOC_BUNDLE_NUMA,   /* the bundle's cores lie in one NUMA domain */
    PHX_ALLOC_BUNDLE_SOCKET, /* ... in one socket */
    PHX_ALLOC_BUNDLE_ANY,    /* ... anywhere on one agent */
} phx_alloc_bundle_kind_t;

/* A gang request's shape: nbundles bundles of `cores` cores, `mem` bytes and
 * `gpus` GPUs each, each bundle on one agent (several bundles may share an
 * agent, at most per_agent of them; at most per_socket in one socket), over
 * at least min_agents and at most max_agents agents, on the listed agents
 * only when `agents` is set.  Memory a job needs per node rather than per task
 * (Slurm's --mem) is agent_mem: held on each agent used, besides its
 * bundles' own, from any of its NUMA domains; GPUs a job needs per node
 * (--gpus-per-node) are agent_gpus, likewise.  A bundle's GPUs may be any
 * of its agent's (not only those near its cores).  whole_mem: an agent
 * counts only once none of its memory is allocated (--mem=0); whole_agent:
 * only once nothing of it is, GPUs included (an exclusive job's nodes).  A
 * framework describes its tasks this way (an MPI job of 8 ranks of 2 cores
 * on 2 nodes, one per socket: 8 socket bundles of 2 cores, per_agent 4,
 * per_socket 1, min_agents 2, max_agents 2), so that what the allocator
 * holds for it is what it can use. */
typedef struct phx_alloc_shape {
    int nbundles; /* >= 1 */
    int cores;    /* per bundle, >= 1 */
    uint64_t mem; /* per bundle, bytes (0: no memory constraint) */
    phx_alloc_bundle_kind_t kind;
    int per_agent;         /* 0: no limit */
    int per_socket;        /* 0: no limit; kinds numa and socket only */
    int min_agents;        /* 0: any number; at most nbundles */
    int max_agents;        /* 0: any number; at least min_agents */
    const int64_t *agents; /* NULL: any agent; else nagents ids (copied) */
    size_t nagents;
    uint64_t agent_mem; /* bytes on each agent used, besides the bundles' */
    bool whole_mem;     /* agents with all of their memory free only */
    bool whole_agent;   /* agents with all of their cores, memory, GPUs free only */
    int gpus;           /* per bundle, >= 0 */
    int agent_gpus;     /* on each agent used, besides the bundles', >= 0 */
} phx_alloc_shape_t;

/* One offer made by a pass.  Everything is borrowed for the callback's
 * duration except grant (see phx_alloc_offer_f). */
typedef struct phx_alloc_offer {
    const char *framework;
    int64_t agent_id;
    phx_topo_grant_t *grant; /* the offered cores, memory and GPUs, allocated */
    int cores;               /* cores in grant */
    uint64_t mem;            /* bytes in grant */
    double release_by;       /* lent resources: tasks must end by then; 0: none */
    const char *request_id;  /* the gang request this offer satisfies, or NULL */
} phx_alloc_offer_t;

/* Return 0 to take the offer: grant then belongs to the callee (destroy it
 * with phx_topo_grant_destroy once the offer is gone; its resources stay
 * allocated until phx_alloc_offer_return/offer_used say where they went).
 * Return -1 to refuse it: the allocator releases and destroys the grant and
 * offers nothing more to that framework in this pass. */
typedef int (*phx_alloc_offer_f)(const phx_alloc_offer_t *offer, void *arg);

typedef enum phx_alloc_request_end {
    PHX_ALLOC_REQUEST_SATISFIED, /* its offers went out in this pass */
    PHX_ALLOC_REQUEST_EXPIRED,
} phx_alloc_request_end_t;

/* Told when a request leaves the queue during a pass.  Strings borrowed. */
typedef void (*phx_alloc_request_f)(const char *framework, const char *request_id,
                                    phx_alloc_request_end_t why, void *arg);

/* Lifecycle.  destroy releases held resources into the trackers (which the
 * master still owns) and frees everything; NULL is a no-op. */
phx_alloc_t *phx_alloc_create(void);
void phx_alloc_destroy(phx_alloc_t *a);
/* Optional; cb may be NULL. */
void phx_alloc_set_request_cb(phx_alloc_t *a, phx_alloc_request_f cb, void *arg);

/* Agents.  free_res is borrowed and must outlive the agent's membership
 * (until phx_alloc_agent_remove or phx_alloc_destroy); it may already have
 * allocations.  A new agent is available. */
int phx_alloc_agent_add(phx_alloc_t *a, int64_t agent_id, phx_topo_free_t *free_res,
                        phx_error_t *err);
/* Forget an agent: held resources are released into its tracker; offers and
 * tasks on it no longer count in the frameworks' usage (the master drops
 * its offers and tasks itself). */
int phx_alloc_agent_remove(phx_alloc_t *a, int64_t agent_id);
/* Unavailable (drained, unreachable): no offers, no holds, not counted in the
 * cluster totals.  Outstanding offers and tasks are left alone. */
int phx_alloc_agent_set_available(phx_alloc_t *a, int64_t agent_id, bool available);
/* Look at this agent again in the next pass (offer returns, task ends and
 * usage changes mark it by themselves). */
int phx_alloc_agent_changed(phx_alloc_t *a, int64_t agent_id);

/* Roles and frameworks.  Weights are per role (default 1.0, must be > 0)
 * and apply to each framework of the role.  The id and role are copied. */
int phx_alloc_role_set_weight(phx_alloc_t *a, const char *role, double weight,
                              phx_error_t *err);
int phx_alloc_framework_add(phx_alloc_t *a, const char *framework, const char *role,
                            phx_error_t *err);
/* Forget a framework: its filters and requests go (holds are released); its
 * outstanding offers and tasks are forgotten, NOT released: return them
 * (phx_alloc_offer_return, phx_alloc_usage_sub) first. */
int phx_alloc_framework_remove(phx_alloc_t *a, const char *framework);
/* Disconnected frameworks get no offers and their requests are not served;
 * their usage still counts.  Activation (re-subscription) is a revive. */
int phx_alloc_framework_deactivate(phx_alloc_t *a, const char *framework);
int phx_alloc_framework_activate(phx_alloc_t *a, const char *framework);
/* SUPPRESS: no more offers until REVIVE.  REVIVE: unsuppress and clear all
 * of the framework's filters. */
int phx_alloc_suppress(phx_alloc_t *a, const char *framework);
int phx_alloc_revive(phx_alloc_t *a, const char *framework);
/* DECLINE's filter: no offer of this agent to the framework before `until`
 * (now + refuse_seconds).  A later filter replaces an earlier one. */
int phx_alloc_filter(phx_alloc_t *a, const char *framework, int64_t agent_id,
                     double until);

/* Offers coming back.  part (borrowed) must lie within what is still
 * offered to the framework on the agent, else -1 EINVAL and nothing changes.
 * return: decline, rescind, or the unused rest of an accept; the resources
 * go back to the tracker.  The framework's outstanding-offer mark on the
 * agent clears when everything offered to it there has been returned or
 * used.  An empty part is a no-op (0). */
int phx_alloc_offer_return(phx_alloc_t *a, int64_t agent_id, const char *framework,
                           const phx_topo_grant_t *part, phx_error_t *err);
/* Accept: part of an offer becomes task `task_id` (unique per framework and
 * agent), expected to end at end_time (0: unknown).  The resources stay
 * allocated; they are released by phx_alloc_usage_sub. */
int phx_alloc_offer_used(phx_alloc_t *a, int64_t agent_id, const char *framework,
                         const char *task_id, const phx_topo_grant_t *part,
                         double end_time, phx_error_t *err);
/* Done with an offer's grant (after returning or using its resources):
 * hand it over instead of destroying it, to be reused for the next offer of
 * that agent (saves 9 allocations per offer).  Takes ownership always. */
int phx_alloc_grant_recycle(phx_alloc_t *a, int64_t agent_id, phx_topo_grant_t *grant);
/* A task the allocator did not offer (recovered after a failover): its
 * grant (borrowed) is allocated from the tracker (EBUSY/ENOSPC if not free). */
int phx_alloc_usage_add(phx_alloc_t *a, int64_t agent_id, const char *framework,
                        const char *task_id, const phx_topo_grant_t *grant,
                        double end_time, phx_error_t *err);
/* A task ended: its resources go back to the tracker, the agent is marked. */
int phx_alloc_usage_sub(phx_alloc_t *a, int64_t agent_id, const char *framework,
                        const char *task_id);

/* Gang requests.  request_id is unique per framework (copied).  duration is
 * the gang's expected run time (informational, reported); expires_at 0 means
 * never.  Refused (-1 ENOSPC, err says why) when the available cluster,
 * empty, could not hold the shape; EEXIST for a duplicate id. */
int phx_alloc_request_add(phx_alloc_t *a, const char *framework, const char *request_id,
                          const phx_alloc_shape_t *shape, double duration,
                          double expires_at, double now, phx_error_t *err);
/* Drop a request; its holds are released at the next pass. */
int phx_alloc_request_cancel(phx_alloc_t *a, const char *framework,
                             const char *request_id);

/* One allocation pass (see doc/allocator.md): expire filters and requests,
 * serve the gang requests in order (hold, lend, satisfy; a request waiting
 * for resources holds them and claims the agents it may use, its listed
 * agents or else all, and a later one is served only if none of its agents
 * is claimed: partitions on disjoint agents each hold), then offer the
 * free resources of changed agents by weighted DRF.  Returns the number of
 * offers made.  Callbacks fire inside; they must not call the allocator. */
int phx_alloc_cycle(phx_alloc_t *a, double now, phx_alloc_offer_f offer_cb, void *arg);
/* Whether a pass at `now` could do anything (coalescing: call cycle only
 * then, at most once per loop pass). */
bool phx_alloc_pending(const phx_alloc_t *a, double now);
/* The next time something expires (a filter, a request), so the master can
 * set a timer; 0 when nothing will. */
double phx_alloc_next_expiry(const phx_alloc_t *a);

/* Getters for /state and tests.  -1 ENOENT for unknown ids. */
typedef struct phx_alloc_framework_info {
    double share;          /* dominant share (offered + used), available agents */
    double weighted_share; /* share / weight: what DRF equalises */
    double weight;
    bool suppressed, active;
    int offered_cores, used_cores;
    uint64_t offered_mem, used_mem;
    int nfilters;  /* unexpired filters at the last pass or since */
    int nrequests; /* queued gang requests */
} phx_alloc_framework_info_t;
int phx_alloc_framework_info(const phx_alloc_t *a, const char *framework,
                             phx_alloc_framework_info_t *out);

typedef struct phx_alloc_agent_info {
    bool available;
    bool holding;   /* part of a holding request's hold set */
    int free_cores; /* in the tracker */
    int held_cores; /* held for that request (not in the tracker) */
    uint64_t held_mem;
    int held_gpus;
    int offered_cores; /* to all frameworks */
    int lent_cores;    /* offered with a release_by, or tasks launched in them */
    int used_cores;    /* by tasks */
    int noffers;       /* frameworks with an outstanding offer here */
} phx_alloc_agent_info_t;
int phx_alloc_agent_info(const phx_alloc_t *a, int64_t agent_id,
                         phx_alloc_agent_info_t *out);

typedef enum phx_alloc_request_state {
    PHX_ALLOC_REQUEST_WAITING, /* queued behind a holding request that claimed
                                  some of its agents, or not holdable now */
    PHX_ALLOC_REQUEST_HOLDING, /* served, waiting: resources are held for it */
} phx_alloc_request_state_t;

typedef struct phx_alloc_request_info {
    phx_alloc_request_state_t state;
    phx_alloc_shape_t shape; /* its agents borrowed: valid while the request is */
    double added_at, duration, expires_at;
    int position;          /* in the serving order, 0: first */
    int held_bundles;      /* bundles that fit in held + free resources now */
    int hold_agents;       /* agents in the hold set */
    double satisfiable_at; /* expected, from task end times; 0: unknown */
} phx_alloc_request_info_t;
/* Values as of the last pass. */
int phx_alloc_request_info(const phx_alloc_t *a, const char *framework,
                           const char *request_id, phx_alloc_request_info_t *out);

/* Cluster totals over available agents. */
void phx_alloc_totals(const phx_alloc_t *a, int64_t *cores, uint64_t *mem);
const char *phx_alloc_bundle_kind_name(phx_alloc_bundle_kind_t kind);

#endif
