/* phx run inside a job: the step's task count when -n is not given, as
 * srun's inside a Slurm job (run.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/run.h"
#include "lib/hostlist.h"

#define JOB_TASKS_MAX (1L << 24) /* beyond any job; the master bounds steps */

/* A count of 1 .. JOB_TASKS_MAX, else 0. */
static long count_of(const char *v)
{
    char *end;
    if (!v || !*v)
        return 0;
    errno = 0;
    long n = strtol(v, &end, 10);
    return errno || *end || n < 1 || n > JOB_TASKS_MAX ? 0 : n;
}

/* The tasks of a layout ("2(x3),1" is 7), 0 when not one. */
static long layout_tasks(const char *tasks_per_node)
{
    uint32_t *counts = NULL;
    size_t n = 0;
    phx_error_t err;
    long sum = 0;
    if (!tasks_per_node || !*tasks_per_node ||
        phx_tasks_per_node_parse(tasks_per_node, &counts, &n, &err) < 0)
        return 0;
    for (size_t i = 0; i < n && sum <= JOB_TASKS_MAX; i++)
        sum += counts[i];
    free(counts);
    return sum <= JOB_TASKS_MAX ? sum : 0;
}

long phx_run_job_ntasks(const phx_run_opts_t *o, const char *job_ntasks,
                        const char *job_tasks_per_node)
{
    if (o->ntasks > 0)
        return o->ntasks;
    /* a step shaped by its nodes: one task on each (or --ntasks-per-node),
     * srun's rule once -N is given (and -w or -x: the nodes they leave) */
    if (o->nodes > 0 || o->ntasks_per_node > 0 || o->nodelist || o->exclude)
        return 0;
    long n = layout_tasks(job_tasks_per_node);
    return n > 0 ? n : count_of(job_ntasks);
}

bool phx_run_job_layout(const phx_run_opts_t *o, const char *job_nodelist,
                        const char *job_tasks_per_node)
{
    return o->ntasks <= 0 && o->nodes <= 0 && o->ntasks_per_node <= 0 && !o->nodelist &&
           !o->exclude && job_nodelist && *job_nodelist &&
           layout_tasks(job_tasks_per_node) > 0;
}
