/* Job array specifications: "0-15", "0,6,16-32", "0-15:4", "1-100%5". */
#ifndef PHX_BATCHD_ARRAY_H
#define PHX_BATCHD_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

typedef struct phx_array {
    uint32_t *ids; /* sorted, unique; malloc'd */
    size_t count;
    uint32_t max_running; /* the %N throttle; 0 = no throttle */
} phx_array_t;

/* What an array task is told of its array (PHX_ARRAY_TASK_COUNT/MIN/MAX/STEP,
 * as Slurm's SLURM_ARRAY_TASK_*): step is the stride when the indices are
 * evenly spaced, else 1.  count 0: not known (nothing is told). */
typedef struct phx_array_stats {
    uint32_t count, min, max, step;
} phx_array_stats_t;

/* Parse spec; every index must be <= max_index.  On success out owns ids
 * (phx_array_clear frees).  0 or -1 with err. */
int phx_array_parse(const char *spec, uint32_t max_index, phx_array_t *out,
                    phx_error_t *err);
void phx_array_clear(phx_array_t *array);
/* Canonical text: runs of a constant stride (3 or more ids) as "a-b:s" (":1"
 * omitted), others as single ids, then "%N".  Malloc'd, or NULL (ENOMEM). */
char *phx_array_format(const phx_array_t *array);
/* The stats of a parsed array; all zero for an empty one. */
void phx_array_stats(const phx_array_t *array, phx_array_stats_t *out);
/* 1 when another task may start while `running` tasks run (the %N throttle). */
int phx_array_may_start(const phx_array_t *array, uint32_t running);

#endif
