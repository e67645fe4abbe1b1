/* Rank layout of a step over the nodes of its gang: pure, no I/O. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step.h"
#include "lib/hmap.h"
#include "lib/hostlist.h"
#include "lib/json.h"

/* The job's layout as the step's: node i gets job[i] ranks. */
static int job_shape(const phx_step_req_t *req, int nnodes, int *counts,
                     phx_error_t *err)
{
    if (req->nodes > 0 || req->ntasks_per_node > 0)
        return phx_error_set(err, "the job's layout is not for a step with -N or "
                                  "--ntasks-per-node");
    long long sum = 0;
    for (int i = 0; i < nnodes; i++) {
        if (req->job_counts[i] < 1)
            return phx_error_set(err, "the job's layout gives node %d no task", i);
        sum += req->job_counts[i];
        counts[i] = req->job_counts[i];
    }
    if (sum > PHX_STEP_TASKS_MAX)
        return phx_error_set(err, "%lld tasks: a step has at most %d", sum,
                             PHX_STEP_TASKS_MAX);
    if (req->ntasks > 0 && req->ntasks != sum)
        return phx_error_set(err, "-n %d is not the %lld tasks of the job's layout",
                             req->ntasks, sum);
    return (int)sum;
}

/* The ranks asked for (-n, -N, --ntasks-per-node) spread over the first
 * *nodes of nnodes nodes: evenly, the larger shares first, or
 * ntasks_per_node on each in turn.  The ranks, or -1 with err. */
static int spread(const phx_step_req_t *req, int nnodes, int *nodesp, int *counts,
                  phx_error_t *err)
{
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
    *nodesp = nodes;
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
    return n;
}

int phx_step_layout(const phx_step_req_t *req, int nnodes, const int *ncores,
                    int *counts, int **rank_nodep, phx_error_t *err)
{
    (void)ncores; /* oversubscribing a task's cores is allowed (yield when idle) */
    for (int i = 0; i < nnodes; i++)
        counts[i] = 0;
    int nodes = nnodes;
    int n = req->job_counts ? job_shape(req, nnodes, counts, err)
                            : spread(req, nnodes, &nodes, counts, err);
    if (n < 0)
        return -1;
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

/* The job's layout: each name of list (expanded, nl of them, with nc
 * counts) is a node of names[0 .. n), once, and every node is named: at[k]
 * gets the node of the k-th name.  0 or -1 with err. */
static int match_names(char *const *list, size_t nl, size_t nc,
                       const char *const *names, int n, int *at, phx_error_t *err)
{
    if (nc != nl)
        return phx_error_set(err, "%zu task counts for %zu nodes", nc, nl);
    phx_hmap_t *index = phx_hmap_create();
    int rc = -1;
    if (!index) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (phx_hmap_put(index, names[i], (void *)(uintptr_t)(i + 1)) < 0) {
            phx_error_set(err, "out of memory");
            goto out;
        }
    for (size_t k = 0; k < nl; k++) {
        /* each found is taken out: a name found no more is a second one */
        uintptr_t i = (uintptr_t)phx_hmap_del(index, list[k]);
        bool twice = false;
        for (size_t j = 0; !i && j < k && !twice; j++)
            twice = strcmp(list[j], list[k]) == 0;
        if (!i) {
            phx_error_set(err,
                          twice ? "node %s is named twice"
                                : "node %s is not one of the job's nodes",
                          list[k]);
            goto out;
        }
        at[k] = (int)(i - 1);
    }
    for (int i = 0; i < n; i++)
        if (phx_hmap_get(index, names[i])) {
            phx_error_set(err, "node %s of the job is not in it", names[i]);
            goto out;
        }
    if (nl != (size_t)n) { /* the job's names were not all distinct */
        phx_error_set(err, "%zu nodes for the job's %d", nl, n);
        goto out;
    }
    rc = 0;
out:
    phx_hmap_destroy(index);
    return rc;
}

int phx_step_job_layout(const json_t *h, void **nodes, const char *const *names, int n,
                        int *counts, phx_error_t *err)
{
    json_t *o = NULL;
    const char *list = NULL, *tpn = NULL, *want = NULL, *skip = NULL;
    if (phx_json_obj(h, "job_layout", false, &o, err) < 0)
        return -1;
    if (!o)
        return 0;
    if (phx_json_str(o, "nodelist", true, &list, err) < 0 ||
        phx_json_str(o, "tasks_per_node", true, &tpn, err) < 0 ||
        phx_json_str(h, "nodelist", false, &want, err) < 0 ||
        phx_json_str(h, "exclude", false, &skip, err) < 0)
        return phx_error_prefix(err, "job_layout");
    if (want || skip)
        return phx_error_set(err, "job_layout: not with --nodelist or --exclude");
    char **ln = NULL;
    size_t nl = 0, nc = 0;
    uint32_t *tc = NULL;
    int *at = calloc((size_t)n + 1, sizeof(*at));
    void **was = calloc((size_t)n + 1, sizeof(*was));
    int rc = -1;
    if (!at || !was) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    /* at most the job's nodes: a longer list cannot match them */
    if (phx_hostlist_expand(list, (size_t)n, &ln, &nl, err) < 0 ||
        phx_tasks_per_node_parse(tpn, &tc, &nc, err) < 0 ||
        match_names(ln, nl, nc, names, n, at, err) < 0)
        goto bad;
    for (size_t k = 0; k < nl; k++)
        if (tc[k] < 1 || tc[k] > PHX_STEP_TASKS_MAX) {
            phx_error_set(err, "%" PRIu32 " tasks on node %s (1 to %d)", tc[k], ln[k],
                          PHX_STEP_TASKS_MAX);
            goto bad;
        }
    memcpy(was, nodes, (size_t)n * sizeof(*was));
    for (size_t k = 0; k < nl; k++) {
        nodes[k] = was[at[k]];
        counts[k] = (int)tc[k];
    }
    rc = 1;
    goto out;
bad:
    phx_error_prefix(err, "the job's layout (nodes \"%.64s\", tasks \"%.64s\")", list,
                     tpn);
out:
    phx_hostlist_free(ln, nl);
    free(tc);
    free(at);
    free(was);
    return rc;
}
