/* The nodes, as the master records them in the agents table: what a job may
 * ask for at most (refused at submit otherwise) and the planner's node list.
 * Loaded once synchronously at start, then refreshed through the store. */
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "db/db.h"
#include "lib/log.h"

#define NODES_SQL                                                                      \
    "SELECT id::text, name, cores, sockets, memory_bytes / 1048576, "                  \
    "state = 'up' AND NOT drained FROM agents WHERE state <> 'lost' ORDER BY id"

static int nodes_from(batchd_t *b, const phx_db_result_t *res)
{
    int rows = phx_db_result_rows(res);
    bnode_t *nodes = calloc(rows ? (size_t)rows : 1, sizeof(*nodes));
    if (!nodes)
        return -1;
    for (int i = 0; i < rows; i++) {
        bnode_t *n = &nodes[i];
        snprintf(n->agent_id, sizeof(n->agent_id), "%s", phx_db_result_get(res, i, 0));
        snprintf(n->name, sizeof(n->name), "%s", phx_db_result_get(res, i, 1));
        n->cores = (uint32_t)strtoul(phx_db_result_get(res, i, 2), NULL, 10);
        n->sockets = (uint32_t)strtoul(phx_db_result_get(res, i, 3), NULL, 10);
        n->mem = strtoull(phx_db_result_get(res, i, 4), NULL, 10);
        n->usable = strcmp(phx_db_result_get(res, i, 5), "t") == 0;
    }
    phx_hmap_t *index = phx_hmap_create();
    for (int i = 0; index && i < rows; i++)
        if (phx_hmap_put(index, nodes[i].agent_id, &nodes[i]) < 0) {
            phx_hmap_destroy(index);
            index = NULL;
        }
    if (!index) {
        free(nodes);
        return -1;
    }
    phx_hmap_destroy(b->node_index);
    free(b->nodes);
    b->nodes = nodes;
    b->nnodes = (size_t)rows;
    b->node_index = index;
    b->nodes_loaded = batchd_now();
    return 0;
}

int batchd_nodes_load_sync(batchd_t *b, phx_error_t *err)
{
    phx_db_conn_t *db = phx_db_connect(b->dsn, err);
    if (!db)
        return -1;
    phx_db_result_t *res = NULL;
    int rc = phx_db_query(db, NODES_SQL, 0, NULL, &res, err);
    if (rc == 0 && nodes_from(b, res) < 0)
        rc = phx_error_set(err, "out of memory");
    phx_db_result_destroy(res);
    phx_db_conn_close(db);
    return rc;
}

static void nodes_read(const phx_error_t *err, phx_db_result_t *const *res, int n,
                       void *arg)
{
    batchd_t *b = arg;
    b->nodes_loading = false;
    if (err || n < 1) {
        phx_log_warnx("could not read the nodes: %s", err ? err->text : "no result");
        return;
    }
    size_t before = b->nnodes;
    nodes_from(b, res[0]);
    if (b->nnodes != before)
        phx_log_info("%zu nodes known", b->nnodes);
}

void batchd_nodes_refresh(batchd_t *b)
{
    if (b->nodes_loading || !b->store)
        return;
    phx_error_t err;
    if (phx_db_store_read(b->store, NODES_SQL, 0, NULL, nodes_read, b, &err) == 0)
        b->nodes_loading = true;
}

const bnode_t *batchd_node_by_agent(const batchd_t *b, const char *agent_id)
{
    return b->node_index && agent_id ? phx_hmap_get(b->node_index, agent_id) : NULL;
}

int64_t batchd_cluster_cpus(const batchd_t *b)
{
    int64_t n = 0;
    for (size_t i = 0; i < b->nnodes; i++)
        n += b->nodes[i].cores;
    return n;
}

/* Refused at submit: what no set of the known nodes could ever hold, even
 * empty (doc/batchd.md).  Drained nodes count: they come back. */
int batchd_cluster_check(const batchd_t *b, const phx_jobspec_t *s, phx_error_t *err)
{
    if (b->nnodes == 0)
        return phx_error_set(err, "the cluster has no nodes yet");
    int64_t cpt = s->cpus_per_task, nodes = s->nodes_min;
    if (nodes > (int64_t)b->nnodes)
        return phx_error_set(err,
                             "requested node configuration is not available: %lld "
                             "nodes asked, the cluster has %zu",
                             (long long)nodes, b->nnodes);
    /* tasks per node on the fullest node, when spread over nodes_max nodes */
    int64_t nmax =
        s->nodes_max < (int64_t)b->nnodes ? s->nodes_max : (int64_t)b->nnodes;
    int64_t per_node = (s->ntasks + nmax - 1) / nmax;
    if (s->ntasks_per_node != PHX_UNSET && s->ntasks_per_node > 0)
        per_node = s->ntasks_per_node < s->ntasks ? s->ntasks_per_node : s->ntasks;
    /* the largest nodes, in decreasing order, must hold it */
    uint32_t *cores = calloc(b->nnodes, sizeof(*cores));
    uint64_t *mem = calloc(b->nnodes, sizeof(*mem));
    if (!cores || !mem) {
        free(cores);
        free(mem);
        return phx_error_set(err, "out of memory");
    }
    for (size_t i = 0; i < b->nnodes; i++) {
        cores[i] = b->nodes[i].cores;
        mem[i] = b->nodes[i].mem;
    }
    int64_t cpus_left = s->ntasks * cpt, fit_nodes = 0;
    int rc = 0;
    for (size_t i = 0; i < b->nnodes && cpus_left > 0 && fit_nodes < nmax; i++) {
        size_t best = i;
        for (size_t k = i + 1; k < b->nnodes; k++)
            if (cores[k] > cores[best])
                best = k;
        uint32_t tc = cores[best];
        uint64_t tm = mem[best];
        cores[best] = cores[i];
        mem[best] = mem[i];
        int64_t tasks = tc / cpt;
        if (tasks > per_node)
            tasks = per_node;
        if (tasks < 1)
            continue;
        if (s->mem_per_node > 0 && (uint64_t)s->mem_per_node > tm)
            continue;
        if (s->mem_per_cpu != PHX_UNSET && s->mem_per_cpu > 0 &&
            (uint64_t)(s->mem_per_cpu * tasks * cpt) > tm)
            tasks = (int64_t)(tm / (uint64_t)(s->mem_per_cpu * cpt));
        if (tasks < 1)
            continue;
        cpus_left -= tasks * cpt;
        fit_nodes++;
    }
    int64_t biggest = 0;
    for (size_t i = 0; i < b->nnodes; i++)
        if (b->nodes[i].cores > biggest)
            biggest = b->nodes[i].cores;
    if (cpt > biggest)
        rc = phx_error_set(err,
                           "requested node configuration is not available: %lld cpus "
                           "per task, the largest node has %lld cores",
                           (long long)cpt, (long long)biggest);
    else if (cpus_left > 0 || fit_nodes < nodes)
        rc = phx_error_set(err,
                           "requested node configuration is not available: %lld tasks "
                           "of %lld cpus on %lld-%lld nodes do not fit the cluster's "
                           "%zu nodes (%lld cores)",
                           (long long)s->ntasks, (long long)cpt,
                           (long long)s->nodes_min, (long long)s->nodes_max, b->nnodes,
                           (long long)batchd_cluster_cpus(b));
    free(cores);
    free(mem);
    return rc;
}
