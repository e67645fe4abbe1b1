/* The nodes, as the master records them in the agents table: what a job may
 * ask for at most (refused at submit otherwise) and the planner's node list.
 * Loaded once synchronously at start, then refreshed through the store. */
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/gpuspec.h"
#include "db/db.h"
#include "lib/log.h"

/* A node's GPUs as "id=model" lines; a model is the agent's text: its
 * control characters (a newline would start a line) become spaces. */
#define NODES_SQL                                                                      \
    "SELECT id::text, name, cores, sockets, memory_bytes / 1048576, "                  \
    "state = 'up' AND NOT drained, pus, state = 'lost', "                              \
    "(SELECT coalesce(string_agg((d->>'id') || '=' || "                                \
    "regexp_replace(coalesce(d->>'model', ''), '[[:cntrl:]]', ' ', 'g'), "             \
    "E'\\n' ORDER BY (d->>'id')::int), '') FROM jsonb_array_elements(CASE WHEN "       \
    "jsonb_typeof(topology->'devices') = 'array' THEN topology->'devices' ELSE "       \
    "'[]' END) d WHERE d->>'kind' = 'gpu') FROM agents ORDER BY id"

/* What the name index (b->node_names) holds for a lost node's name. */
const bnode_t batchd_node_lost;

/* name → node (&batchd_node_lost for a lost one's). */
static phx_hmap_t *name_index(bnode_t *nodes, int n, const phx_db_result_t *res)
{
    phx_hmap_t *names = phx_hmap_create();
    for (int i = 0; names && i < n; i++)
        if (phx_hmap_put(names, nodes[i].name, &nodes[i]) < 0) {
            phx_hmap_destroy(names);
            return NULL;
        }
    for (int i = 0, rows = phx_db_result_rows(res); names && i < rows; i++)
        if (strcmp(phx_db_result_get(res, i, 7), "t") == 0 &&
            !phx_hmap_get(names, phx_db_result_get(res, i, 1)) &&
            phx_hmap_put(names, phx_db_result_get(res, i, 1),
                         (void *)&batchd_node_lost) < 0) {
            phx_hmap_destroy(names);
            return NULL;
        }
    return names;
}

void batchd_nodes_free(bnode_t *nodes, size_t n)
{
    for (size_t i = 0; nodes && i < n; i++)
        free(nodes[i].gpu);
    free(nodes);
}

/* "id=model" lines: the node's GPUs (ids below 64; a node with others is
 * logged, they are not used). */
static int gpus_from(bnode_t *n, const char *text)
{
    size_t lines = *text ? 1 : 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    if (!lines)
        return 0;
    if (!(n->gpu = calloc(lines, sizeof(*n->gpu))))
        return -1;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        char *eq;
        long id = strtol(p, &eq, 10);
        if (*eq == '=' && id >= 0 && id < 64) {
            struct bgpu *g = &n->gpu[n->ngpus++];
            g->id = (int)id;
            snprintf(g->model, sizeof(g->model), "%.*s",
                     (int)(len - (size_t)(eq + 1 - p)), eq + 1);
        } else {
            phx_log_warnx("node %s: GPU \"%.*s\" is not used (batchd handles device "
                          "ids below 64)",
                          n->name, (int)len, p);
        }
        p += len + (p[len] == '\n');
    }
    return 0;
}

/* The same GPUs: ids and models (a type names the model: nodesel.c). */
static bool same_gpus(const bnode_t *a, const bnode_t *b)
{
    if (a->ngpus != b->ngpus)
        return false;
    for (uint32_t i = 0; i < a->ngpus; i++)
        if (a->gpu[i].id != b->gpu[i].id || strcmp(a->gpu[i].model, b->gpu[i].model))
            return false;
    return true;
}

static int nodes_from(batchd_t *b, const phx_db_result_t *res)
{
    int all = phx_db_result_rows(res), rows = 0;
    bnode_t *nodes = calloc(all ? (size_t)all : 1, sizeof(*nodes));
    if (!nodes)
        return -1;
    for (int r = 0; r < all; r++) {
        if (strcmp(phx_db_result_get(res, r, 7), "t") == 0)
            continue; /* lost: its name only (name_index) */
        int i = r;
        bnode_t *n = &nodes[rows++];
        snprintf(n->agent_id, sizeof(n->agent_id), "%s", phx_db_result_get(res, i, 0));
        snprintf(n->name, sizeof(n->name), "%s", phx_db_result_get(res, i, 1));
        n->cores = (uint32_t)strtoul(phx_db_result_get(res, i, 2), NULL, 10);
        n->sockets = (uint32_t)strtoul(phx_db_result_get(res, i, 3), NULL, 10);
        n->mem = strtoull(phx_db_result_get(res, i, 4), NULL, 10);
        n->usable = strcmp(phx_db_result_get(res, i, 5), "t") == 0;
        uint32_t pus = (uint32_t)strtoul(phx_db_result_get(res, i, 6), NULL, 10);
        n->threads = n->cores && pus > n->cores ? pus / n->cores : 1;
        n->parts = batchd_parts_node_mask(&b->parts, n->name);
        n->features = batchd_features_node(&b->features, n->name);
        if (gpus_from(n, phx_db_result_get(res, i, 8)) < 0) {
            batchd_nodes_free(nodes, (size_t)rows);
            return -1;
        }
    }
    phx_hmap_t *index = phx_hmap_create(), *names = name_index(nodes, rows, res);
    uint64_t *none = calloc((size_t)rows / 64 + 1, sizeof(*none));
    for (int i = 0; index && i < rows; i++)
        if (phx_hmap_put(index, nodes[i].agent_id, &nodes[i]) < 0) {
            phx_hmap_destroy(index);
            index = NULL;
        }
    if (!index || !names || !none) {
        phx_hmap_destroy(index);
        phx_hmap_destroy(names);
        free(none);
        batchd_nodes_free(nodes, (size_t)rows);
        return -1;
    }
    /* the jobs' node bitmaps (nodesel.c) index the nodes by position */
    bool same = b->nnodes == (size_t)rows;
    for (int i = 0; same && i < rows; i++)
        same = !strcmp(b->nodes[i].name, nodes[i].name) &&
               b->nodes[i].features == nodes[i].features &&
               same_gpus(&b->nodes[i], &nodes[i]);
    bool had = b->nodes != NULL;
    phx_hmap_destroy(b->node_index);
    phx_hmap_destroy(b->node_names);
    batchd_nodes_free(b->nodes, b->nnodes);
    free(b->nodes_none);
    b->nodes_none = none;
    b->nodes = nodes;
    b->nnodes = (size_t)rows;
    b->node_index = index;
    b->node_names = names;
    if (!same) {
        b->nodes_gen++;
        /* the held gang requests list the old nodes (-w, -x, -C, a
         * partition's, a shape's): asked again */
        if (had)
            batchd_sched_parts_changed(b);
    }
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

/* Tasks of r an empty node holds (its cores split evenly over its sockets,
 * as batchd_place would pack them), by cores only: memory is the caller's. */
static uint32_t node_tasks(const bnode_t *n, const phx_bf_request_t *r)
{
    uint32_t few[16], *sizes = few, ns = n->sockets ? n->sockets : 1;
    if (ns > sizeof(few) / sizeof(few[0]) && !(sizes = calloc(ns, sizeof(*sizes))))
        return 0;
    for (uint32_t i = 0; i < ns; i++)
        sizes[i] = n->cores / ns + (i < n->cores % ns);
    uint32_t t =
        phx_bf_socket_tasks(sizes, ns, r->cpus_per_task, r->ntasks_per_socket, true);
    if (sizes != few)
        free(sizes);
    return t;
}

/* No known node has the shape asked (-B, --sockets-per-node,
 * --cores-per-socket, --threads-per-core): the message names the option. */
static int shape_refused(const batchd_t *b, const phx_bf_request_t *r, phx_error_t *err)
{
    static const char *const what[] = {"sockets", "cores per socket",
                                       "threads per core"};
    static const char *const opt[] = {"--sockets-per-node", "--cores-per-socket",
                                      "--threads-per-core"};
    uint32_t want[3] = {r->min_sockets, r->min_cores_per_socket,
                        r->min_threads_per_core};
    for (int k = 0; k < 3; k++) {
        phx_bf_request_t one = {.parts = r->parts};
        uint32_t *f[3] = {&one.min_sockets, &one.min_cores_per_socket,
                          &one.min_threads_per_core};
        *f[k] = want[k];
        bool any = false;
        for (size_t i = 0; i < b->nnodes && !any; i++)
            any = phx_bf_node_qualifies(&one, b->nodes[i].parts, b->nodes[i].sockets,
                                        b->nodes[i].cores, b->nodes[i].threads);
        if (!any)
            return phx_error_set(err,
                                 "requested node configuration is not available: no "
                                 "node has %u %s (%s or -B)",
                                 want[k], what[k], opt[k]);
    }
    char b_opt[3][16];
    for (int k = 0; k < 3; k++)
        snprintf(b_opt[k], sizeof(b_opt[k]), want[k] ? "%u" : "*", want[k]);
    return phx_error_set(err,
                         "requested node configuration is not available: no node "
                         "has all of -B %s:%s:%s (sockets, cores per socket, threads "
                         "per core)",
                         b_opt[0], b_opt[1], b_opt[2]);
}

/* No node of the partition is one the job's -w, -x and -C allow. */
static int chosen_refused(const phx_jobspec_t *s, const char *where, phx_error_t *err)
{
    char how[512];
    snprintf(how, sizeof(how), "%s%s%s%s%s%s%s%s", s->nodelist ? " --nodelist=" : "",
             s->nodelist ? s->nodelist : "", s->exclude ? " --exclude=" : "",
             s->exclude ? s->exclude : "", s->constraint ? " --constraint=\"" : "",
             s->constraint ? s->constraint : "", s->constraint ? "\"" : "", "");
    return phx_error_set(err,
                         "requested node configuration is not available: no node of %s "
                         "is one that%s allows",
                         where, how);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Refused at submit: what no set of the known nodes could ever hold, even
 * empty (doc/batchd.md).  Drained nodes count: they come back.  Tasks per
 * node are counted as the scheduler counts them in offers
 * (phx_bf_socket_tasks), so that a job accepted here can be placed. */
int batchd_cluster_check(const batchd_t *b, const phx_jobspec_t *s, size_t *blame,
                         phx_error_t *err)
{
    size_t none = SIZE_MAX;
    blame = blame ? blame : &none;
    *blame = SIZE_MAX;
    if (b->nnodes == 0)
        return phx_error_set(err, "the cluster has no nodes yet (phx-batchd reads them "
                                  "every 5 s: submit again then)");
    phx_bf_request_t r;
    batchd_bf_request(b, s, &r);
    int64_t cpt = s->cpus_per_task, nodes = s->nodes_min;
    int64_t *tasks = calloc(b->nnodes, sizeof(*tasks));
    uint64_t *only = NULL;
    if (!tasks || batchd_nodesel_make(b, s, &only) < 0) {
        free(tasks);
        return phx_error_set(err, "out of memory");
    }
    r.only = only;
    r.parts = batchd_parts_job_mask(&b->parts, s->partition); /* DOWN or not */
    size_t fit = 0, shaped = 0, in_part = 0, chosen = 0, gpu_nodes = 0;
    phx_gpureq_t g;
    phx_gpuspec_get(s, &g);
    uint32_t most_gpus = 0;
    int64_t part_cores = 0;
    const bpart_t *part = batchd_parts_find(&b->parts, s->partition, NULL);
    char where[128] = "the cluster";
    if (part && !part->all)
        snprintf(where, sizeof(where), "partition %s", part->name);
    int64_t biggest = 0, biggest_socket = 0;
    /* tasks per node at most, as the scheduler's choice of nodes caps them:
     * --ntasks-per-node; else what each node holds (exactly N nodes share
     * the tasks evenly when they can, else as they fit: sched.c try_shape,
     * and the planner counts the same) */
    int64_t nmax = s->nodes_max;
    int64_t per_node = s->ntasks;
    if (s->ntasks_per_node != PHX_UNSET && s->ntasks_per_node > 0)
        per_node = s->ntasks_per_node < s->ntasks ? s->ntasks_per_node : s->ntasks;
    for (size_t i = 0; i < b->nnodes; i++) {
        const bnode_t *n = &b->nodes[i];
        uint32_t typed = (uint32_t)__builtin_popcountll(batchd_node_gpus(n, g.type));
        if ((!r.parts || (r.parts & n->parts)) && typed > most_gpus)
            most_gpus = typed;
        gpu_nodes += (!r.parts || (r.parts & n->parts)) && batchd_node_gpus_fit(n, s);
        if (!r.parts || (r.parts & n->parts)) {
            in_part++;
            part_cores += n->cores;
            chosen += phx_bf_node_allowed(&r, i);
        }
        if (!phx_bf_node_allowed(&r, i))
            continue;
        if (!phx_bf_node_qualifies(&r, n->parts, n->sockets, n->cores, n->threads))
            continue;
        shaped++;
        if (n->cores > biggest)
            biggest = n->cores;
        /* the largest socket: cores split over sockets, first ones fuller */
        uint32_t ns = n->sockets ? n->sockets : 1;
        if ((int64_t)((n->cores + ns - 1) / ns) > biggest_socket)
            biggest_socket = (n->cores + ns - 1) / ns;
        int64_t t = node_tasks(n, &r);
        if (t > per_node)
            t = per_node;
        if (s->mem_per_node > 0 && (uint64_t)s->mem_per_node > n->mem)
            continue;
        if (g.per_task && t > typed / g.per_task)
            t = typed / g.per_task;
        if (s->mem_per_cpu != PHX_UNSET && s->mem_per_cpu > 0 &&
            (uint64_t)(s->mem_per_cpu * t * cpt) > n->mem)
            t = (int64_t)(n->mem / (uint64_t)(s->mem_per_cpu * cpt));
        if (t >= 1)
            tasks[fit++] = t;
    }
    /* the nodes holding the most tasks must hold them all */
    qsort(tasks, fit, sizeof(*tasks), cmp_desc);
    int64_t left = s->ntasks, used = 0;
    for (size_t i = 0; i < fit && left > 0 && used < nmax; i++, used++)
        left -= tasks[i];
    free(tasks);
    free(only);
    if (in_part == 0)
        return phx_error_set(err,
                             "requested node configuration is not available: no node "
                             "of the cluster's %zu is in %s (Nodes=%s)",
                             b->nnodes, where, part ? part->nodes_text : "?");
    /* the node choice to blame: -w, else -x, else -C */
    size_t choice = s->nodelist  ? offsetof(phx_jobspec_t, nodelist)
                    : s->exclude ? offsetof(phx_jobspec_t, exclude)
                                 : offsetof(phx_jobspec_t, constraint);
    /* the GPU option to blame; -w, -x and -C before it when they are given */
    bool gpus = phx_gpuspec_any(s),
         choosing = s->nodelist || s->exclude || s->constraint;
    size_t gpu_opt = s->gres            ? offsetof(phx_jobspec_t, gres)
                     : s->gpus_per_node ? offsetof(phx_jobspec_t, gpus_per_node)
                     : s->gpus_per_task ? offsetof(phx_jobspec_t, gpus_per_task)
                                        : offsetof(phx_jobspec_t, gpus);
    long long gneed = (long long)(g.per_node ? g.per_node : g.per_task);
    if (gpus && gpu_nodes == 0) {
        *blame = gpu_opt;
        return phx_error_set(
            err,
            "requested node configuration is not available: no node of "
            "%s has %lld GPU%s%s%s%s (the most on one: %u)",
            where, gneed, gneed == 1 ? "" : "s", *g.type ? " of type \"" : "", g.type,
            *g.type ? "\"" : "", most_gpus);
    }
    if (gpus && (int64_t)gpu_nodes < nodes) {
        *blame = gpu_opt;
        return phx_error_set(
            err,
            "requested node configuration is not available: %lld nodes "
            "asked, %s has %zu with %lld GPU%s%s%s%s",
            (long long)nodes, where, gpu_nodes, gneed, gneed == 1 ? "" : "s",
            *g.type ? " of type \"" : "", g.type, *g.type ? "\"" : "");
    }
    if (chosen == 0) {
        *blame = choosing || !gpus ? choice : gpu_opt;
        return chosen_refused(s, where, err);
    }
    if (nodes > (int64_t)shaped && chosen < in_part)
        *blame = choosing || !gpus ? choice : gpu_opt;
    if (shaped == 0)
        return shape_refused(b, &r, err);
    if (nodes > (int64_t)shaped)
        return phx_error_set(err,
                             "requested node configuration is not available: %lld "
                             "nodes asked, %s has %zu%s",
                             (long long)nodes, where, shaped,
                             chosen < in_part && choosing && gpus
                                 ? " that its -w, -x, -C and GPUs allow"
                             : chosen < in_part && gpus ? " with the GPUs asked"
                             : chosen < in_part ? " that its -w, -x and -C allow"
                             : shaped < in_part ? " of the shape asked"
                                                : "");
    if (cpt > biggest)
        return phx_error_set(err,
                             "requested node configuration is not available: %lld cpus "
                             "per task, the largest node has %lld cores",
                             (long long)cpt, (long long)biggest);
    if (r.ntasks_per_socket && cpt > biggest_socket)
        return phx_error_set(err,
                             "requested node configuration is not available: %lld cpus "
                             "per task, the largest socket has %lld cores (a task "
                             "stays in one socket with --ntasks-per-socket)",
                             (long long)cpt, (long long)biggest_socket);
    if (left > 0 || (int64_t)fit < nodes)
        return phx_error_set(
            err,
            "requested node configuration is not available: %lld tasks "
            "of %lld cpus%s on %lld-%lld nodes do not fit %s's "
            "%zu nodes (%lld cores)",
            (long long)s->ntasks, (long long)cpt,
            r.ntasks_per_socket ? " (few per socket)" : "", (long long)s->nodes_min,
            (long long)s->nodes_max, where, in_part, (long long)part_cores);
    return 0;
}
