/* Rank layout of a step over the nodes of its gang: pure, no I/O. */
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step.h"

int phx_step_layout(const phx_step_req_t *req, int nnodes, const int *ncores,
                    int *counts, int **rank_nodep, phx_error_t *err)
{
    (void)ncores; /* oversubscribing a task's cores is allowed (yield when idle) */
    int nodes = req->nodes > 0 ? req->nodes : nnodes;
    if (req->nodes <= 0 && req->ntasks > 0 && req->ntasks < nodes)
        nodes = req->ntasks;
    if (nodes > nnodes)
        return phx_error_set(err, "the job has %d node%s, the step asks for %d", nnodes,
                             nnodes == 1 ? "" : "s", nodes);
    long long want = req->ntasks > 0 ? req->ntasks
                     : req->ntasks_per_node > 0
                         ? (long long)nodes * req->ntasks_per_node
                         : nodes;
    if (want > PHX_STEP_TASKS_MAX)
        return phx_error_set(err, "%lld tasks: a step has at most %d", want,
                             PHX_STEP_TASKS_MAX);
    int n = (int)want;
    if (n < nodes)
        return phx_error_set(err, "%d tasks cannot use %d nodes", n, nodes);
    for (int i = 0; i < nnodes; i++)
        counts[i] = 0;
    if (req->ntasks_per_node > 0) {
        if (n > (long long)nodes * req->ntasks_per_node)
            return phx_error_set(err, "%d tasks do not fit %d nodes at %d per node", n,
                                 nodes, req->ntasks_per_node);
        int left = n;
        for (int i = 0; i < nodes; i++) {
            counts[i] = left < req->ntasks_per_node ? left : req->ntasks_per_node;
            left -= counts[i];
        }
        for (int i = 0; i < nodes; i++)
            if (counts[i] == 0)
                return phx_error_set(err, "%d tasks at %d per node leave a node empty",
                                     n, req->ntasks_per_node);
    } else {
        for (int i = 0; i < nodes; i++)
            counts[i] = n / nodes + (i < n % nodes);
    }
    /* each rank costs the master its core list and the agent a process,
     * pipes and a PMIx client: a node's share is bounded, oversubscribed
     * or not (one request once asked for 2^20 ranks of 65536 cores) */
    for (int i = 0; req->max_per_node > 0 && i < nodes; i++)
        if (counts[i] > req->max_per_node)
            return phx_error_set(err,
                                 "%d tasks on one node: at most %d "
                                 "(master.max_step_tasks_per_node)",
                                 counts[i], req->max_per_node);
    int *rank_node = malloc((size_t)n * sizeof(*rank_node));
    if (!rank_node)
        return phx_error_set(err, "out of memory");
    *rank_nodep = rank_node;
    if (!req->cyclic) {
        int r = 0;
        for (int i = 0; i < nodes; i++)
            for (int k = 0; k < counts[i]; k++)
                rank_node[r++] = i;
        return n;
    }
    int *left = calloc((size_t)nodes, sizeof(*left));
    if (!left) {
        free(rank_node);
        return phx_error_set(err, "out of memory");
    }
    for (int i = 0; i < nodes; i++)
        left[i] = counts[i];
    for (int r = 0; r < n;)
        for (int i = 0; i < nodes && r < n; i++)
            if (left[i] > 0) {
                left[i]--;
                rank_node[r++] = i;
            }
    free(left);
    return n;
}

static int find(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int not_of_job(const char *opt, const char *name, phx_error_t *err)
{
    return phx_error_set(err, "%s: node %s is not one of the job's nodes", opt, name);
}

int phx_step_pick_nodes(void **nodes, const char *const *names, int *n,
                        char *const *want, size_t nwant, char *const *skip,
                        size_t nskip, phx_step_req_t *req, phx_error_t *err)
{
    int total = *n;
    /* 1: -w's, 2: -x's, 0: neither */
    char *mark = calloc((size_t)total + 1, 1);
    void **nv = calloc((size_t)total + 1, sizeof(*nv));
    int rc = -1, k = 0, wanted = 0;
    if (!mark || !nv) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nwant; i++) {
        int at = find(names, total, want[i]);
        if (at < 0) {
            not_of_job("--nodelist", want[i], err);
            goto out;
        }
        wanted += mark[at] != 1;
        mark[at] = 1;
    }
    for (size_t i = 0; i < nskip; i++) {
        int at = find(names, total, skip[i]);
        if (at < 0) {
            not_of_job("--exclude", skip[i], err);
            goto out;
        }
        if (mark[at] == 1) {
            phx_error_set(err, "node %s is both in --nodelist and in --exclude",
                          skip[i]);
            goto out;
        }
        mark[at] = 2;
    }
    if (wanted && req->nodes > 0 && req->nodes < wanted) {
        phx_error_set(err,
                      "-N %d is fewer nodes than --nodelist names (%d): a step uses "
                      "every node it lists",
                      req->nodes, wanted);
        goto out;
    }
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < total; i++)
            if (mark[i] == pass)
                nv[k++] = nodes[i];
    if (k == 0) {
        phx_error_set(err, "--exclude leaves none of the job's nodes");
        goto out;
    }
    memcpy(nodes, nv, (size_t)k * sizeof(*nodes));
    *n = k;
    if (wanted && req->nodes <= 0)
        req->nodes = wanted;
    rc = 0;
out:
    free(mark);
    free(nv);
    return rc;
}
