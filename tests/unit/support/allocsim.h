/* A simulated cluster over the master's allocator, for its unit tests:
 * agents of one synthetic topology, frameworks that take offers as tasks of
 * known (or unknown) duration, tasks that end as simulated time passes.
 * After every pass each core of each agent has exactly one owner (free, a
 * live offer, a task, or a gang hold) and memory adds up; the offer
 * callback checks that nothing offered is free or owned by anyone else.
 *
 * The allocator is not in a library (the makefile links the master's
 * sources into phx-master only): a test using this file includes
 * daemons/master/alloc*.c itself, and this file calls into them.  The
 * helpers fail the running test (cmocka) on an error. */
#ifndef PHX_TEST_ALLOCSIM_H
#define PHX_TEST_ALLOCSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/master/alloc.h"
#include "topology/free.h"
#include "topology/topo.h"

#define PHX_ALLOCSIM_MAXAGENTS 16

typedef struct phx_allocsim_offer {
    char fw[16];
    int64_t agent;
    phx_topo_grant_t *grant;
    double release_by;
    char req[16]; /* the gang request it satisfies, or "" */
    int pass;
    bool live;
} phx_allocsim_offer_t;

typedef struct phx_allocsim_task {
    char fw[16];
    char id[24];
    int64_t agent;
    phx_topo_grant_t *grant;
    double end; /* 0: unknown */
    bool live;
} phx_allocsim_task_t;

typedef struct phx_allocsim {
    phx_alloc_t *a;
    phx_topo_t *topo;
    phx_topo_free_t *free[PHX_ALLOCSIM_MAXAGENTS];
    int nagents;
    phx_allocsim_offer_t *offers; /* every offer made, live or not */
    size_t noffers, cap_offers;
    phx_allocsim_task_t *tasks; /* every task launched, live or not */
    size_t ntasks, cap_tasks;
    double now;
    int pass;
    int next_task;
    int nended; /* requests ended, the last one's id and why */
    char ended[16];
    phx_alloc_request_end_t why;
} phx_allocsim_t;

/* Pseudo-random in [0, n), from a fixed seed unless phx_allocsim_seed. */
unsigned phx_allocsim_rnd(unsigned n);
void phx_allocsim_seed(unsigned seed);

/* nagents agents of topology desc (hwloc synthetic), time 1000. */
phx_allocsim_t *phx_allocsim_create(int nagents, const char *desc);
void phx_allocsim_destroy(phx_allocsim_t *s);
void phx_allocsim_framework(phx_allocsim_t *s, const char *id, const char *role);

/* Fail unless every core of every agent has exactly one owner (free, a
 * live offer, a task, or a gang hold) and memory adds up; every pass does. */
void phx_allocsim_check(phx_allocsim_t *s);

/* The offer callback of phx_alloc_cycle (arg: the simulation). */
int phx_allocsim_on_offer(const phx_alloc_offer_t *o, void *arg);
/* One pass; returns the index of the first offer it made. */
size_t phx_allocsim_cycle(phx_allocsim_t *s);

/* A grant of the first ncores cores of src (mem_per_core from each core's
 * domain); NULL if src has fewer.  The caller destroys it. */
phx_topo_grant_t *phx_allocsim_part(phx_allocsim_t *s, const phx_topo_grant_t *src,
                                    int ncores, uint64_t mem_per_core);

/* Return the offer, filtered for refuse seconds if refuse > 0. */
void phx_allocsim_decline(phx_allocsim_t *s, phx_allocsim_offer_t *o, double refuse);
/* Launch one task of ncores from the offer (end 0: unknown); the offer
 * keeps the rest.  false if it does not fit. */
bool phx_allocsim_launch(phx_allocsim_t *s, phx_allocsim_offer_t *o, int ncores,
                         uint64_t mem_per_core, double end);
/* Return what is left of the offer. */
void phx_allocsim_finish(phx_allocsim_t *s, phx_allocsim_offer_t *o);
/* One task from the offer, the rest returned (declined if it does not
 * fit). */
bool phx_allocsim_use(phx_allocsim_t *s, phx_allocsim_offer_t *o, int ncores,
                      uint64_t mem_per_core, double end);

void phx_allocsim_end_task(phx_allocsim_t *s, phx_allocsim_task_t *k);
/* End the tasks whose end time has come. */
void phx_allocsim_end_tasks(phx_allocsim_t *s);

/* The framework's dominant share. */
double phx_allocsim_share(phx_allocsim_t *s, const char *fw);

#endif
