/* Rank layout of a step over the nodes of its gang: pure, no I/O. */
#include <stdlib.h>

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
    int n = req->ntasks > 0            ? req->ntasks
            : req->ntasks_per_node > 0 ? nodes * req->ntasks_per_node
                                       : nodes;
    if (n < nodes)
        return phx_error_set(err, "%d tasks cannot use %d nodes", n, nodes);
    for (int i = 0; i < nnodes; i++)
        counts[i] = 0;
    if (req->ntasks_per_node > 0) {
        if (n > nodes * req->ntasks_per_node)
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
