/* The gang request for a job that cannot start on the offers it has: what
 * the master should hold for it (doc/scheduler-api.md, "Gang requests").
 *
 * The request says what the job can use, or the master holds resources
 * the job cannot take while the rest of the cluster fills up: it gave,
 * again and again, nodes of one socket to a job asking two sockets per
 * node, and two free cores of one socket to a job wanting one core on
 * each.  So a job asks for its tasks: one bundle of cpus-per-task cores
 * each ("socket" bundles when capped per socket: --ntasks-per-socket,
 * --hint=memory_bound; else "any": a task spans sockets as a last resort,
 * sched.c), at most --ntasks-per-node on one node (per_agent), at most
 * its cap on one socket (per_socket), over at least and at most its -N
 * nodes (min_agents, max_agents): the job's own limits, which placement
 * honours, not the planner's choice of nodes.  --mem is asked per node
 * (agent_mem: a node given one task needs all of it), --mem=0 as all of
 * each node's memory (whole_mem).  An exclusive job asks for whole nodes
 * (whole_agent, all of a node's GPUs included): one bundle per node the
 * planner gave it.  GPUs are asked as placement counts them: --gpus-per-task
 * per bundle (gpus), --gres/--gpus-per-node/-G per node used (agent_gpus).
 * A job with a node shape (-B, --sockets-per-node, --cores-per-socket,
 * --threads-per-core), a node list, features or GPUs lists the nodes that
 * may hold it (agents: for GPUs those with enough of the type asked, which
 * the master cannot tell apart). */
#include <inttypes.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/gpuspec.h"

/* Bounded by the master's limit on "agents" (daemons/master/requests.c). */
#define GANG_AGENTS_MAX 65536

static json_t *qualifying_agents(const batchd_t *b, const phx_bf_request_t *r)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < b->nnodes; i++) {
        const bnode_t *n = &b->nodes[i];
        if (n->usable && json_array_size(ids) < GANG_AGENTS_MAX &&
            phx_bf_node_allowed(r, i) &&
            phx_bf_node_qualifies(r, n->parts, n->sockets, n->cores, n->threads))
            json_array_append_new(ids, json_string(n->agent_id));
    }
    return ids;
}

static bool partition_has_all(const batchd_t *b, const phx_bf_request_t *r)
{
    for (size_t i = 0; r->parts && i < b->nnodes; i++)
        if (!(r->parts & b->nodes[i].parts))
            return false;
    return true;
}

json_t *batchd_gang_request(const batchd_t *b, bjob_t *j, const phx_bf_decision_t *d,
                            const char *id)
{
    const phx_jobspec_t *s = &j->spec;
    phx_bf_request_t r;
    batchd_bf_request(b, s, &r);
    r.only = batchd_job_nodes(b, j);
    /* a job of several partitions runs in one: the planner's, else the
     * first */
    if (d && d->parts)
        r.parts = d->parts;
    else if (r.parts & (r.parts - 1))
        r.parts &= ~r.parts + 1;
    /* the job's own limits: at least -N nodes, at most its -N maximum, at
     * most --ntasks-per-node on one (choose() places the tasks within
     * them, evenly over exactly N nodes when it can, else as they fit) */
    uint32_t nodes = r.nodes_min ? r.nodes_min : 1;
    if (nodes > r.ntasks)
        nodes = r.ntasks;
    /* an exclusive job's whole nodes: the planner's, of the fewest cores
     * and memory among them */
    uint32_t min_cores = 0, whole_nodes = nodes;
    uint64_t min_mem = 0;
    if (d && d->nshares > 0) {
        whole_nodes = (uint32_t)d->nshares;
        min_cores = UINT32_MAX;
        min_mem = UINT64_MAX;
        for (size_t i = 0; i < d->nshares; i++) {
            const phx_bf_share_t *sh = &d->shares[i];
            min_cores = sh->cores < min_cores ? sh->cores : min_cores;
            min_mem = sh->mem < min_mem ? sh->mem : min_mem;
        }
    } else {
        min_cores = (r.ntasks + nodes - 1) / nodes * r.cpus_per_task;
    }
    json_t *req = json_pack("{s:s, s:I, s:i, s:i}", "id", id, "duration_seconds",
                            (json_int_t)(r.time_limit > 0 ? r.time_limit : 0),
                            "expires_in_seconds", 300, "min_agents", (int)nodes);
    if (!req)
        return NULL;
    /* no more nodes than -N allows (choose() refuses more) */
    if (r.nodes_max >= nodes && r.nodes_max < r.ntasks &&
        json_object_set_new(req, "max_agents", json_integer(r.nodes_max)) < 0) {
        json_decref(req);
        return NULL;
    }
    int rc;
    if (r.exclusive) {
        rc = json_object_update_new(
            req, json_pack("{s:s, s:i, s:i, s:I, s:i}", "kind", "any", "bundles",
                           (int)whole_nodes, "cpus", (int)min_cores, "mem",
                           (json_int_t)min_mem, "per_agent", 1));
        if (rc == 0)
            rc = json_object_set_new(req, "whole_agent", json_true());
    } else {
        /* memory: --mem-per-cpu (or the default) per task; --mem on each
         * node used, however many tasks it gets; --mem=0 all of each
         * node's memory */
        uint64_t task_mem = 0;
        if (s->mem_per_node == PHX_UNSET)
            task_mem = batchd_job_mem(b, j, r.cpus_per_task, 0);
        rc = json_object_update_new(
            req,
            json_pack("{s:s, s:i, s:i, s:I}", "kind",
                      r.ntasks_per_socket ? "socket" : "any", "bundles", (int)r.ntasks,
                      "cpus", (int)r.cpus_per_task, "mem", (json_int_t)task_mem));
        if (rc == 0 && r.mem_whole_node)
            rc = json_object_set_new(req, "whole_mem", json_true());
        else if (rc == 0 && r.mem_per_node > 0)
            rc = json_object_set_new(req, "agent_mem",
                                     json_integer((json_int_t)r.mem_per_node));
        if (rc == 0 && r.ntasks_per_node)
            rc = json_object_set_new(req, "per_agent", json_integer(r.ntasks_per_node));
        if (rc == 0 && r.ntasks_per_socket)
            rc = json_object_set_new(req, "per_socket",
                                     json_integer(r.ntasks_per_socket));
        /* GPUs: per task in each bundle, or per node on each node used */
        phx_gpureq_t g;
        phx_gpuspec_get(s, &g);
        if (rc == 0 && g.per_task > 0)
            rc = json_object_set_new(req, "gpus", json_integer(g.per_task));
        else if (rc == 0 && g.per_node > 0)
            rc = json_object_set_new(req, "agent_gpus", json_integer(g.per_node));
    }
    /* a node shape, nodes by name or feature, or a partition of some nodes
     * only: the nodes that may hold it (else the master held nodes the job
     * cannot use) */
    if (rc == 0 && (r.only || r.min_sockets > 1 || r.min_cores_per_socket > 1 ||
                    r.min_threads_per_core > 1 || !partition_has_all(b, &r)))
        rc = json_object_set_new(req, "agents", qualifying_agents(b, &r));
    if (rc < 0) {
        json_decref(req);
        return NULL;
    }
    return req;
}
