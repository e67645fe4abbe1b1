/* Private to topology/: layout of the free-resource tracker and of grants,
 * shared by free.c, carve.c and bundle.c. */
#ifndef PHX_TOPO_FREE_IMPL_H
#define PHX_TOPO_FREE_IMPL_H

#include "topology/free.h"
#include "topology/internal.h"

struct phx_topo_free {
    const phx_topo_t *t;
    phx_topo_coreset_t *cores; /* free cores */
    int *numa_ncores;          /* [nnumas] free cores per domain */
    uint64_t *numa_mem;        /* [nnumas] free bytes per domain */
    unsigned char *gpu;        /* [ndevs + 1] 1: a GPU, free */
};

struct phx_topo_grant {
    const phx_topo_t *t;
    phx_topo_coreset_t *cores;
    uint64_t *mem; /* [nnumas] */
    int ntasks;
    int *task_off;      /* [ncores + 1] */
    int *task_core;     /* [ncores] */
    unsigned char *gpu; /* [ndevs + 1] 1: the GPU is granted */
    int ngpus;
    int *task_gpu_off; /* [ncores + 1]: GPUs of task t are task_gpu[off[t]..) */
    int *task_gpu;     /* [ndevs + 1] */
    /* Scratch for phx_topo_carve, so that it never allocates. */
    int *numa_avail;   /* [nnumas] cores still usable */
    int *numa_taken;   /* [nnumas] cores taken */
    int *socket_avail; /* [nsockets] */
    int *socket_tasks; /* [nsockets] */
};

#endif
