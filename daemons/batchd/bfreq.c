/* A job as the planner and the scheduler see it: its request's shape
 * (phx_bf_request_t) and the memory it takes on a node. */
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/gpuspec.h"

/* MiB a job takes on a node of `cores` cores holding `total` MiB. */
uint64_t batchd_job_mem(const batchd_t *b, const bjob_t *j, uint32_t cores,
                        uint64_t total)
{
    const phx_jobspec_t *s = &j->spec;
    if (s->mem_per_node != PHX_UNSET)
        return s->mem_per_node == 0 ? total : (uint64_t)s->mem_per_node;
    int64_t per = s->mem_per_cpu != PHX_UNSET ? s->mem_per_cpu : b->default_mem_per_cpu;
    return (uint64_t)per * cores;
}

/* Everything of the request but its partitions. */
void batchd_bf_request_shape(const batchd_t *b, const phx_jobspec_t *s,
                             phx_bf_request_t *r)
{
    memset(r, 0, sizeof(*r));
    r->nodes_min = (uint32_t)s->nodes_min;
    r->nodes_max = (uint32_t)s->nodes_max;
    r->ntasks = (uint32_t)s->ntasks;
    r->cpus_per_task = (uint32_t)s->cpus_per_task;
    r->ntasks_per_node =
        s->ntasks_per_node != PHX_UNSET ? (uint32_t)s->ntasks_per_node : 0;
    r->ntasks_per_socket = batchd_job_per_socket(s);
    r->min_sockets = s->sockets_per_node > 0 ? (uint32_t)s->sockets_per_node : 0;
    r->min_cores_per_socket =
        s->cores_per_socket > 0 ? (uint32_t)s->cores_per_socket : 0;
    r->min_threads_per_core =
        s->threads_per_core > 0 ? (uint32_t)s->threads_per_core : 0;
    if (s->mem_per_node != PHX_UNSET) {
        r->mem_whole_node = s->mem_per_node == 0;
        r->mem_per_node = (uint64_t)(s->mem_per_node > 0 ? s->mem_per_node : 0);
    } else {
        r->mem_per_cpu =
            (uint64_t)(s->mem_per_cpu != PHX_UNSET ? s->mem_per_cpu
                                                   : b->default_mem_per_cpu);
    }
    r->exclusive = s->exclusive == 1;
    phx_gpureq_t g;
    phx_gpuspec_get(s, &g);
    r->gpus_per_node = (uint32_t)g.per_node;
    r->gpus_per_task = (uint32_t)g.per_task;
    r->time_limit = s->time_limit;
}

void batchd_bf_request(const batchd_t *b, const phx_jobspec_t *s, phx_bf_request_t *r)
{
    batchd_bf_request_shape(b, s, r);
    r->parts = batchd_parts_run_mask(&b->parts, s->partition);
}
