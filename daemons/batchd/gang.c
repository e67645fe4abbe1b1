/* The gang request for a job that cannot start on the offers it has: what
 * the master should hold for it (doc/scheduler-api.md, "Gang requests").
 *
 * The request says what the job can use, or the master holds resources
 * the job cannot take and the rest of the cluster fills up meanwhile: it
 * would give, again and again, two free cores of one socket to a job that
 * needs one core on each socket, or a node of one socket to a job asking
 * two.  So:
 * - a job capped per socket (--ntasks-per-socket, --hint=memory_bound)
 *   asks for its tasks: one socket bundle of cpus-per-task cores each, at
 *   most its tasks per node on one node and its cap on one socket;
 * - any other job asks for its nodes: one bundle per node of the cores the
 *   planner gave the node (whole nodes for --exclusive); its tasks may then
 *   take any of them (a task spans sockets as a last resort, sched.c);
 * - a job with a node shape (-B, --sockets-per-node, --cores-per-socket,
 *   --threads-per-core) lists the nodes that have it. */
#include <inttypes.h>

#include "daemons/batchd/batchd.h"

/* Bounded by the master's limit on "agents" (daemons/master/requests.c). */
#define GANG_AGENTS_MAX 65536

static json_t *qualifying_agents(const batchd_t *b, const phx_bf_request_t *r)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < b->nnodes; i++) {
        const bnode_t *n = &b->nodes[i];
        if (n->usable && json_array_size(ids) < GANG_AGENTS_MAX &&
            phx_bf_node_qualifies(r, n->sockets, n->cores, n->threads))
            json_array_append_new(ids, json_string(n->agent_id));
    }
    return ids;
}

json_t *batchd_gang_request(const batchd_t *b, const bjob_t *j,
                            const phx_bf_decision_t *d, const char *id)
{
    const phx_jobspec_t *s = &j->spec;
    phx_bf_request_t r;
    batchd_bf_request(b, s, &r);
    uint32_t nodes = r.nodes_min ? r.nodes_min : 1, node_cores = 0, node_tasks = 0;
    uint64_t node_mem = 0;
    if (d && d->nshares > 0) {
        nodes = (uint32_t)d->nshares;
        for (size_t i = 0; i < d->nshares; i++) {
            const phx_bf_share_t *sh = &d->shares[i];
            node_cores = sh->cores > node_cores ? sh->cores : node_cores;
            node_tasks = sh->tasks > node_tasks ? sh->tasks : node_tasks;
            node_mem = sh->mem > node_mem ? sh->mem : node_mem;
        }
    } else {
        node_tasks = (r.ntasks + nodes - 1) / nodes;
        node_cores = node_tasks * r.cpus_per_task;
        node_mem = batchd_job_mem(b, j, node_cores, 0);
    }
    if (r.ntasks_per_node && node_tasks > r.ntasks_per_node)
        node_tasks = r.ntasks_per_node;
    json_t *req = json_pack("{s:s, s:I, s:i}", "id", id, "duration_seconds",
                            (json_int_t)(r.time_limit > 0 ? r.time_limit : 0),
                            "expires_in_seconds", 300);
    if (!req)
        return NULL;
    int rc;
    if (r.ntasks_per_socket && !r.exclusive) {
        uint64_t task_mem = 0;
        if (s->mem_per_node == PHX_UNSET)
            task_mem = batchd_job_mem(b, j, r.cpus_per_task, 0);
        else if (s->mem_per_node > 0 && node_tasks > 0)
            task_mem = ((uint64_t)s->mem_per_node + node_tasks - 1) / node_tasks;
        rc = json_object_update_new(
            req, json_pack("{s:s, s:i, s:i, s:I, s:i, s:i}", "kind", "socket",
                           "bundles", (int)r.ntasks, "cpus", (int)r.cpus_per_task,
                           "mem", (json_int_t)task_mem, "per_agent", (int)node_tasks,
                           "per_socket", (int)r.ntasks_per_socket));
    } else {
        rc = json_object_update_new(
            req, json_pack("{s:s, s:i, s:i, s:I, s:i}", "kind", "any", "bundles",
                           (int)nodes, "cpus", (int)node_cores, "mem",
                           (json_int_t)node_mem, "per_agent", 1));
    }
    if (rc == 0 &&
        (r.min_sockets > 1 || r.min_cores_per_socket > 1 || r.min_threads_per_core > 1))
        rc = json_object_set_new(req, "agents", qualifying_agents(b, &r));
    if (rc < 0) {
        json_decref(req);
        return NULL;
    }
    return req;
}
