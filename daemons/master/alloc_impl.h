/* Private to the allocator (alloc*.c): its structs and the helpers shared by
 * its files.  Nothing else includes this. */
#ifndef PHX_MASTER_ALLOC_IMPL_H
#define PHX_MASTER_ALLOC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/master/alloc.h"
#include "topology/coreset.h"
#include "topology/free.h"
#include "topology/topo.h"

#define ALLOC_SPARE_GRANTS 2

/* A set of cores, memory per NUMA domain and GPUs of one agent. */
struct alloc_res {
    phx_topo_coreset_t *cores; /* NULL until first used */
    uint64_t *mem;             /* [nnumas] */
    unsigned char *gpus;       /* [ndevs + 1] 1: the GPU (device id) is in */
    int ncores, ngpus;
    uint64_t total_mem;
};

struct alloc_role {
    char *name;
    double weight;
};

struct alloc_fw {
    char *id;
    struct alloc_role *role;
    bool suppressed, active;
    int offered_cores, used_cores;
    uint64_t offered_mem, used_mem;
    int nfilters, nrequests;
    /* Scratch of a pass. */
    int rank;       /* position in id order */
    double share;   /* weighted dominant share */
    uint64_t stamp; /* == a->stamp: not eligible for the agent at hand */
    bool refused;   /* refused an offer in this pass */
    bool in_heap;
};

/* One framework's standing on one agent: what is offered to it there (not
 * yet returned or used) and its DECLINE filter.  fw NULL: unused slot. */
struct alloc_slot {
    struct alloc_fw *fw;
    struct alloc_res offered;
    double release_by;   /* > 0: everything offered here is lent until then */
    double filter_until; /* > 0: no offers before then */
};

struct alloc_task {
    char *id;
    struct alloc_fw *fw;
    struct alloc_res res;
    double end; /* expected end, 0: unknown */
    bool lent;  /* launched in lent resources */
};

struct alloc_agent {
    int64_t id;
    phx_topo_free_t *free; /* borrowed */
    const phx_topo_t *topo;
    int ncores;
    uint64_t mem;
    bool available;
    bool dirty;   /* in a->dirty */
    bool holding; /* in the hold set of a holding request */
    struct alloc_res held;
    phx_topo_grant_t *spare[ALLOC_SPARE_GRANTS]; /* recycled, for offers */
    int nspare;
    struct alloc_slot *slots;
    int nslots, cap_slots;
    struct alloc_task **tasks;
    int ntasks, cap_tasks;
    size_t index; /* in a->agents */
    /* Scratch of the hold planner. */
    int fit_now, fit_t;
    double t_reach;
    /* Scratch of a pass, NULL / false between passes. */
    struct alloc_request *chosen_for; /* the request whose hold set has it */
    bool claimed; /* a candidate of a holding request served earlier */
};

struct alloc_request {
    char *id;
    struct alloc_fw *fw;
    phx_alloc_shape_t shape;
    double added_at, duration, expires_at;
    uint64_t seq;
    /* As of the last pass. */
    bool holding; /* served and waiting: resources are held for it */
    int position, held_bundles, hold_agents;
    int ready_agents; /* of the hold set, those holding a bundle now */
    double satisfiable_at;
};

/* Open addressing, linear probing; keys are int64 agent ids or strings. */
struct alloc_map {
    void **slot;
    uint64_t *hash;
    size_t cap, n;
};

struct phx_alloc {
    struct alloc_agent **agents;
    size_t nagents, cap_agents;
    struct alloc_map agent_map;
    struct alloc_fw **fws;
    size_t nfws, cap_fws;
    struct alloc_map fw_map;
    struct alloc_role **roles;
    size_t nroles;
    struct alloc_request **reqs;
    size_t nreqs, cap_reqs;
    uint64_t next_seq;
    size_t nholding; /* agents with holding set */

    struct alloc_agent **dirty;
    size_t ndirty, cap_dirty;
    bool all_dirty;  /* visit every agent (a framework came or revived) */
    bool plan_dirty; /* the request queue changed */
    bool ranks_stale;

    int64_t total_cores; /* over available agents */
    uint64_t total_mem;
    double next_expiry; /* 0: none */

    /* Scratch of a pass. */
    struct alloc_fw **heap;
    size_t nheap, cap_heap;
    uint64_t stamp;
    int max_nnumas, max_nsockets;
    int *numa_cores, *sock_cores;
    uint64_t *numa_mem, *sock_mem;
    void *points; /* the planner's timeline */
    size_t cap_points;
    void *events;
    size_t cap_events;
    struct alloc_agent **cands;
    size_t cap_cands;
    struct alloc_agent **span; /* the agents of the request at hand */
    size_t nspan;
    struct alloc_agent **listed; /* span's storage for a listed request */
    size_t cap_listed;
    int *fits; /* agents per bundle count, for max_agents */
    size_t cap_fits;

    phx_alloc_request_f req_cb;
    void *req_arg;
};

/* alloc_res.c */
int alloc_res_init(struct alloc_res *r, const phx_topo_t *t);
void alloc_res_fini(struct alloc_res *r);
void alloc_res_clear(struct alloc_res *r, const phx_topo_t *t);
bool alloc_res_empty(const struct alloc_res *r);
/* Grant ⊆ r (cores and memory per domain). */
bool alloc_res_contains(const struct alloc_res *r, const phx_topo_t *t,
                        const phx_topo_grant_t *g);
void alloc_res_add(struct alloc_res *r, const phx_topo_t *t, const phx_topo_grant_t *g);
void alloc_res_sub(struct alloc_res *r, const phx_topo_t *t, const phx_topo_grant_t *g);
/* Fill g (cleared first) with r / with the tracker's free resources. */
void alloc_res_to_grant(const struct alloc_res *r, const phx_topo_t *t,
                        phx_topo_grant_t *g);
void alloc_grant_from_free(phx_topo_grant_t *g, const phx_topo_free_t *f);
/* Add r's cores per NUMA domain, memory per domain and GPUs into nc / nm /
 * *ng. */
void alloc_res_count(const struct alloc_res *r, const phx_topo_t *t, int *nc,
                     uint64_t *nm, int *ng);
/* Bundles of a shape that fit in nc / nm (per NUMA domain of t) and ng GPUs
 * (of the agent); sc, sm are scratch [nsockets]. */
int alloc_fit(const phx_topo_t *t, const phx_alloc_shape_t *s, const int *nc,
              const uint64_t *nm, int ng, int *sc, uint64_t *sm);
/* Whether the shape's agent list (if any) names the agent. */
bool alloc_shape_allows(const phx_alloc_shape_t *s, int64_t agent_id);
/* The shape's agent ids, sorted (for alloc_shape_allows); NULL on ENOMEM. */
int64_t *alloc_shape_agents_copy(const phx_alloc_shape_t *s);

/* alloc.c */
/* Grow *arr (of *cap items of size) to hold need; -1 ENOMEM. */
int alloc_grow(void **arr, size_t *cap, size_t need, size_t size);
struct alloc_fw *alloc_fw_find(const phx_alloc_t *a, const char *id);
struct alloc_agent *alloc_agent_find(const phx_alloc_t *a, int64_t id);
void alloc_mark(phx_alloc_t *a, struct alloc_agent *ag);
double alloc_share(const phx_alloc_t *a, const struct alloc_fw *fw);
void alloc_note_expiry(phx_alloc_t *a, double t);

/* alloc_offer.c */
struct alloc_slot *alloc_slot_find(struct alloc_agent *ag, const struct alloc_fw *fw);
/* fw's slot on ag, made if missing; NULL on ENOMEM. */
struct alloc_slot *alloc_slot_get(struct alloc_agent *ag, struct alloc_fw *fw);
/* Mark the slot unused once nothing is offered and no filter is set. */
void alloc_slot_tidy(struct alloc_agent *ag, struct alloc_slot *s);
void alloc_task_free(struct alloc_task *t);
/* Offer resources of ag to fw: from the tracker (held false) or the hold.
 * 1 when taken, 0 when refused or empty, -1 on ENOMEM. */
int alloc_offer(struct alloc_agent *ag, struct alloc_fw *fw, bool held,
                double release_by, const char *request_id, phx_alloc_offer_f cb,
                void *arg);
/* A grant for ag's topology (a spare one if any) / give it back. */
phx_topo_grant_t *alloc_grant_get(struct alloc_agent *ag);
void alloc_grant_put(struct alloc_agent *ag, phx_topo_grant_t *g);

/* alloc_drf.c */
/* The eligible framework with the lowest share for ag (popped from the
 * heap; push it back with alloc_drf_push), or NULL. */
struct alloc_fw *alloc_drf_pick(phx_alloc_t *a, struct alloc_agent *ag, double now);
void alloc_drf_push(phx_alloc_t *a, struct alloc_fw *fw);

/* alloc_hold.c */
/* Serve the requests in order, each one whose candidate agents no holding
 * request before it claimed: hold, satisfy, lend.  Returns offers made. */
int alloc_hold_pass(phx_alloc_t *a, double now, phx_alloc_offer_f cb, void *arg);
void alloc_hold_release(phx_alloc_t *a, struct alloc_agent *ag);

/* alloc_request.c */
void alloc_request_free(struct alloc_request *r);
/* Take a->reqs[i] out of the queue (telling the request callback if tell)
 * and free it. */
void alloc_request_remove(phx_alloc_t *a, size_t i, bool tell,
                          phx_alloc_request_end_t why);
void alloc_requests_drop_fw(phx_alloc_t *a, struct alloc_fw *fw);
void alloc_requests_expire(phx_alloc_t *a, double now);

#endif
