/* The planner's count of tasks per node and node constraints (backfill.h),
 * shared by the offers (sched.c), the submit checks (cluster.c) and the
 * EASY planner (backfill.c). */
#include "daemons/batchd/backfill.h"

uint32_t phx_bf_socket_tasks(const uint32_t *free, size_t nsockets,
                             uint32_t cpus_per_task, uint32_t per_socket, bool spread)
{
    uint64_t within = 0, total = 0;
    if (cpus_per_task == 0)
        return 0;
    for (size_t s = 0; s < nsockets; s++) {
        uint32_t k = free[s] / cpus_per_task;
        within += per_socket && k > per_socket ? per_socket : k;
        total += free[s];
    }
    if (spread && !per_socket)
        within = total / cpus_per_task;
    return within > UINT32_MAX ? UINT32_MAX : (uint32_t)within;
}

bool phx_bf_node_qualifies(const phx_bf_request_t *r, uint64_t parts, uint32_t sockets,
                           uint32_t cores, uint32_t threads_per_core)
{
    if (r->parts && !(r->parts & parts))
        return false;
    sockets = sockets ? sockets : 1;
    threads_per_core = threads_per_core ? threads_per_core : 1;
    return sockets >= r->min_sockets && cores / sockets >= r->min_cores_per_socket &&
           threads_per_core >= r->min_threads_per_core;
}

bool phx_bf_request_sane(const phx_bf_request_t *r)
{
    return r->nodes_min >= 1 && r->nodes_max >= r->nodes_min && r->cpus_per_task >= 1 &&
           r->ntasks >= r->nodes_min && !(r->gpus_per_node && r->gpus_per_task) &&
           (r->ntasks_per_node == 0 ||
            (uint64_t)r->ntasks <= (uint64_t)r->ntasks_per_node * r->nodes_max);
}
