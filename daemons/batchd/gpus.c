/* GPUs in placement: which nodes have the GPUs a job asks for (its type
 * matched against the GPUs' models), how many of its tasks an offer's free
 * GPUs hold, and which of them a node's share gets (those local to the
 * NUMA domains of its cores first).  GPUs are named by their device ids in
 * the node's topology; batchd handles ids below 64 (a bit each) and logs a
 * node with more.  doc/jobs.md "GPUs", doc/batchd.md. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/gpuspec.h"

#define BIT(i) (UINT64_C(1) << (i))

uint64_t batchd_gpu_mask(const json_t *ids)
{
    uint64_t m = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        json_int_t id = json_integer_value(v);
        if (json_is_integer(v) && id >= 0 && id < 64)
            m |= BIT(id);
    }
    return m;
}

bool batchd_job_wants_gpus(const bjob_t *j)
{
    return phx_gpuspec_any(&j->spec);
}

/* type occurs in model as a whole word, ignoring case ("a100" in "NVIDIA
 * A100-SXM4-40GB"): no letter or digit right before or after it, so that
 * a10 is not an A100 nor v100 a V100S. */
static bool model_is(const char *model, const char *type)
{
    size_t n = strlen(type);
    for (const char *p = model; *type && *p; p++)
        if ((p == model || !isalnum((unsigned char)p[-1])) &&
            strncasecmp(p, type, n) == 0 && !isalnum((unsigned char)p[n]))
            return true;
    return !*type;
}

uint64_t batchd_node_gpus(const bnode_t *n, const char *type)
{
    uint64_t m = 0;
    for (uint32_t i = 0; n && i < n->ngpus; i++)
        if (n->gpu[i].id >= 0 && n->gpu[i].id < 64 && model_is(n->gpu[i].model, type))
            m |= BIT(n->gpu[i].id);
    return m;
}

bool batchd_node_gpus_fit(const bnode_t *n, const phx_jobspec_t *s)
{
    phx_gpureq_t g;
    phx_gpuspec_get(s, &g);
    uint64_t need = g.per_node ? (uint64_t)g.per_node : (uint64_t)g.per_task;
    return (uint64_t)__builtin_popcountll(batchd_node_gpus(n, g.type)) >= need;
}

uint32_t batchd_gpu_tasks(const bnode_t *n, const boffer_t *o, const bjob_t *j,
                          const phx_bf_request_t *r, uint32_t t)
{
    if (!r->gpus_per_node && !r->gpus_per_task && !r->exclusive)
        return t;
    if (!n)
        return 0; /* a node not yet read: its GPUs are not known */
    phx_gpureq_t g;
    phx_gpuspec_get(&j->spec, &g);
    /* an exclusive job counts every GPU of the node, of any type */
    uint64_t mine = batchd_node_gpus(n, r->exclusive ? "" : g.type);
    uint32_t k = phx_bf_gpu_tasks(r, (uint32_t)__builtin_popcountll(o->gpus & mine),
                                  (uint32_t)__builtin_popcountll(mine));
    return k < t ? k : t;
}

/* The offer's NUMA domain of core c, -1 when none. */
static int numa_of(const boffer_t *o, int c)
{
    for (int i = 0; i < o->nnumas; i++)
        if (o->numas[i].lo >= 0 && c >= o->numas[i].lo && c <= o->numas[i].hi)
            return i;
    return -1;
}

uint64_t batchd_gpu_pick(const bnode_t *n, const boffer_t *o, const bjob_t *j,
                         uint32_t tasks, const int *cores, uint32_t ncores)
{
    phx_gpureq_t g;
    phx_gpuspec_get(&j->spec, &g);
    if (j->spec.exclusive == 1)
        return o->gpus & batchd_node_gpus(n, "");
    uint64_t want = (uint64_t)phx_gpuspec_node(&g, tasks), got = 0;
    uint64_t avail = o->gpus & batchd_node_gpus(n, g.type);
    if (want == 0)
        return 0;
    /* the domains of the share's cores, most cores first */
    int count[64] = {0};
    for (uint32_t i = 0; i < ncores; i++) {
        int d = numa_of(o, cores[i]);
        if (d >= 0 && d < 64)
            count[d]++;
    }
    for (;;) {
        int best = -1;
        for (int d = 0; d < o->nnumas && d < 64; d++)
            if (count[d] > 0 && (best < 0 || count[d] > count[best]))
                best = d;
        if (best < 0)
            break;
        count[best] = 0;
        for (uint64_t m = o->numas[best].gpus & avail & ~got;
             m && (uint64_t)__builtin_popcountll(got) < want; m &= m - 1)
            got |= m & (~m + 1);
    }
    /* then any, lowest id first */
    for (uint64_t m = avail & ~got; m && (uint64_t)__builtin_popcountll(got) < want;
         m &= m - 1)
        got |= m & (~m + 1);
    return (uint64_t)__builtin_popcountll(got) == want ? got : 0;
}

uint32_t batchd_task_gpus(const bnode_t *n, const bjob_t *j, const bj_task_t *t)
{
    if (t->gpus)
        return (uint32_t)__builtin_popcountll(t->gpus);
    if (j->spec.exclusive == 1)
        return n->ngpus;
    phx_gpureq_t g;
    phx_gpuspec_get(&j->spec, &g);
    return (uint32_t)phx_gpuspec_node(&g, t->tasks);
}

void batchd_gpu_classes(batchd_t *b, batchd_gclasses_t *gc, phx_bf_node_t *nodes)
{
    memset(gc, 0, sizeof(*gc));
    uint32_t last = 0; /* nodes are mostly alike: the last model found first */
    for (size_t i = 0; i < b->nnodes; i++) {
        bnode_t *n = &b->nodes[i];
        for (uint32_t k = 0; k < n->ngpus; k++) {
            const char *m = n->gpu[k].model;
            uint32_t c = last;
            if (c >= gc->nmodels || strcmp(gc->model[c], m) != 0)
                for (c = 0; c < gc->nmodels && strcmp(gc->model[c], m) != 0; c++)
                    ;
            if (c == gc->nmodels && c < BATCHD_GPU_MODELS)
                gc->model[gc->nmodels++] = m;
            gc->overflow |= c == BATCHD_GPU_MODELS;
            last = c;
            n->gpu[k].cls =
                (uint8_t)(c < PHX_BF_GPU_CLASSES - 1 ? c : PHX_BF_GPU_CLASSES - 1);
            if (nodes[i].gpus_class_total[n->gpu[k].cls] < UINT8_MAX)
                nodes[i].gpus_class_total[n->gpu[k].cls]++;
        }
        memcpy(nodes[i].gpus_class_free, nodes[i].gpus_class_total,
               sizeof(nodes[i].gpus_class_free));
    }
    gc->n = gc->nmodels < PHX_BF_GPU_CLASSES ? gc->nmodels : PHX_BF_GPU_CLASSES;
    gc->n = gc->overflow ? PHX_BF_GPU_CLASSES : gc->n;
}

uint32_t batchd_gpu_other(batchd_gclasses_t *gc, const bjob_t *j)
{
    if (!gc->n || !phx_gpuspec_any(&j->spec))
        return 0;
    phx_gpureq_t g;
    phx_gpuspec_get(&j->spec, &g);
    if (!g.type[0])
        return 0;
    if (strcmp(gc->type, g.type) == 0)
        return gc->other;
    uint32_t may = 0;
    for (uint32_t i = 0; i < gc->nmodels; i++)
        if (model_is(gc->model[i], g.type))
            may |= 1u << (i < gc->n - 1 ? i : gc->n - 1);
    if (gc->overflow) /* models not kept: the last class may hold the type */
        may |= 1u << (gc->n - 1);
    snprintf(gc->type, sizeof(gc->type), "%s", g.type);
    gc->other = ((1u << gc->n) - 1) & ~may;
    return gc->other;
}

void batchd_gpu_hold(batchd_gclasses_t *gc, const bnode_t *n, const bjob_t *j,
                     const bj_task_t *t, phx_bf_node_t *x, phx_bf_share_t *s)
{
    uint32_t g = batchd_task_gpus(n, j, t);
    s->gpus = g;
    x->gpus_free -= g < x->gpus_free ? g : x->gpus_free;
    if (!gc->n || !g)
        return;
    uint8_t *free = x->gpus_class_free;
    if (t->gpus) { /* which it holds */
        for (uint32_t k = 0; k < n->ngpus; k++)
            if (n->gpu[k].id >= 0 && n->gpu[k].id < 64 && (t->gpus & BIT(n->gpu[k].id)))
                s->gpus_class[n->gpu[k].cls]++;
    } else if (j->spec.exclusive == 1) { /* all of the node's */
        memcpy(s->gpus_class, x->gpus_class_total, sizeof(s->gpus_class));
    } else { /* loaded from the database: as many of its type, lowest class first */
        uint32_t other = batchd_gpu_other(gc, j), left = g;
        for (uint32_t c = 0; c < gc->n && left; c++) {
            uint32_t k = other >> c & 1 ? 0 : free[c] < left ? free[c] : left;
            s->gpus_class[c] = (uint8_t)k;
            left -= k;
        }
    }
    for (uint32_t c = 0; c < gc->n; c++)
        free[c] -= s->gpus_class[c] < free[c] ? s->gpus_class[c] : free[c];
}
