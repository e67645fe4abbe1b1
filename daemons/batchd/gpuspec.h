/* A job's GPU request (doc/jobs.md, "GPUs"): Slurm's --gres=gpu[:TYPE][:N]
 * and --gpus-per-node=[TYPE:]N (N on each node), --gpus-per-task=[TYPE:]N
 * (N for each task) and -G/--gpus=[TYPE:]N (N for the whole job, spread
 * evenly over its nodes).  The spec keeps what was given, canonicalised;
 * phx_gpuspec_get turns it into per-node or per-task counts. */
#ifndef PHX_BATCHD_GPUSPEC_H
#define PHX_BATCHD_GPUSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobspec.h"
#include "lib/error.h"

/* Most GPUs one count may ask for, and the longest TYPE. */
#define PHX_GPUS_MAX      1024
#define PHX_GPU_TYPE_SIZE 32

typedef struct phx_gpureq {
    int64_t per_node;             /* GPUs on each node (0: see per_task) */
    int64_t per_task;             /* GPUs for each task (0: see per_node) */
    char type[PHX_GPU_TYPE_SIZE]; /* "" for any model */
} phx_gpureq_t;

/* Part of phx_jobspec_finalize, once nodes and tasks are filled: check the
 * GPU fields and canonicalise them (gres "gpu:TYPE:N" or "gpu:N", the others
 * "TYPE:N" or "N"; a gres of "none" is dropped).  At most one of gres,
 * gpus_per_node, gpus_per_task and gpus; generic resources other than gpu
 * are refused by name; --gpus must divide evenly over a fixed node count.
 * -1 with err, and *field the offset of the field at fault. */
int phx_gpuspec_finalize(phx_jobspec_t *s, size_t *field, phx_error_t *err);

/* The spec asks for GPUs (one of the four fields is set). */
bool phx_gpuspec_any(const phx_jobspec_t *s);

/* The GPUs a finalized spec asks for (all zero: none). */
void phx_gpuspec_get(const phx_jobspec_t *s, phx_gpureq_t *g);

/* GPUs the job needs on a node that runs ntasks of its tasks. */
int64_t phx_gpuspec_node(const phx_gpureq_t *g, int64_t ntasks);

#endif
