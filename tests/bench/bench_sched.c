/* Scheduler pass benchmark: batchd's pass over an in-memory queue with 1, 4
 * and 16 pools of partitions (partitions on disjoint nodes; one case with
 * `-p a,b` jobs spanning two pools), at 1k, 10k and 50k eligible pending
 * jobs on 1024 nodes (and a few cases on 64), bf_max_job_test and bf_window
 * at their defaults.  Every node runs a job holding 24 of its 32 cores, so
 * most pending jobs wait and small ones backfill, as in a full cluster.
 * Two cases have GPUs of two models (2 A100 and 2 V100 a node, the running
 * jobs holding the A100s, a third of the pending jobs asking for an A100,
 * two V100s or one GPU of any model): the planner counts them by model.
 *
 * One line per case, medians of several passes:
 *   order   batchd_order rebuilding the priority order (once a second)
 *   select  pass_select with the order kept (every other pass): the jobs
 *           walked (eligible, from the order) and those selected for the
 *           planner
 *   plan    phx_backfill_plan over the selected jobs, and the jobs it
 *           examined
 *   pass    the whole pass without offers (pass_run: select, plan and the
 *           reasons of each examined job), as the once-a-second timer runs it
 * Times are CPU time of the thread.  Prints figures, asserts nothing.
 * No daemon, no database: batchd's sources are compiled in (they are in
 * no library) with stubs of the functions of its other files (queue.c,
 * main.c, launch.c, and the two of jobspec.c the pass calls: that file
 * needs many more). */
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/bf_fit.c"
#include "daemons/batchd/bf_node.c"
#include "daemons/batchd/pools.c"
#include "daemons/batchd/cluster.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/gang.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/place.c"
#include "daemons/batchd/priority.c"
#include "daemons/batchd/request.c"
#include "daemons/batchd/sched.c"
#include "daemons/batchd/bfreq.c"
#include "daemons/batchd/gpus.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/timefmt.c"
#include "daemons/batchd/features.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/nodesel.c"

#include <stdio.h>
#include <time.h>

#define NOW         1000000
#define CORES       32 /* 2 sockets of 16 */
#define BUSY        24 /* cores each node's running job holds */
#define NODE_MEM    131072
#define NUSERS      20
#define MAX_PASSES  9
#define TIME_BUDGET 3.0 /* seconds of passes per case at most */

/* --- stubs of batchd's other files --- */

bool phx_job_state_is_final(phx_job_state_t state)
{
    return state >= PHX_JOB_COMPLETED && state < PHX_JOB_STATE_COUNT;
}

int64_t phx_jobspec_cpus(const phx_jobspec_t *spec)
{
    return spec->ntasks * spec->cpus_per_task;
}

int64_t batchd_now(void)
{
    return NOW;
}

json_t *batchd_launch_ops(batchd_t *b, bjob_t *j, int *const *cores,
                          const uint32_t *ncores)
{
    (void)b;
    (void)j;
    (void)cores;
    (void)ncores;
    return json_array();
}

void batchd_job_set_state(batchd_t *b, bjob_t *j, phx_job_state_t st,
                          phx_job_reason_t why)
{
    (void)b;
    j->state = st;
    j->reason = why;
}

void batchd_job_persist(batchd_t *b, bjob_t *j)
{
    (void)b;
    (void)j;
}

void batchd_kills_resume(batchd_t *b)
{
    (void)b;
}

size_t batchd_live_from(batchd_t *b)
{
    while (b->live_from < b->njobs &&
           phx_job_state_is_final(b->order[b->live_from]->state))
        b->live_from++;
    return b->live_from;
}

uint32_t batchd_array_running(const batchd_t *b, uint64_t array_job_id)
{
    (void)b;
    (void)array_job_id;
    return 0;
}

bool batchd_userlim_may_run(const batchd_t *b, uid_t uid)
{
    (void)b;
    (void)uid;
    return true; /* no per-user limit in the bench */
}

bjob_t *batchd_job_find(const batchd_t *b, uint64_t id)
{
    (void)b;
    (void)id;
    return NULL;
}

void batchd_dep_env(batchd_t *b, bjob_t *j, phx_dep_env_t *env)
{
    (void)b;
    (void)j;
    memset(env, 0, sizeof(*env));
}

/* users' decayed usage: fair share differs between users, as it would */
double batchd_usage_get(batchd_t *b, const char *user, int64_t now)
{
    (void)b;
    (void)now;
    return user ? (double)((user[1] - '0') % 7) * 1000.0 : 0;
}

/* --- the world: nodes, partitions, running and pending jobs --- */

static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

typedef struct bcase {
    size_t pools, pending, nodes;
    bool span; /* a quarter of the jobs: -p of two pools' partitions */
    bool gpus; /* GPUs of two models (see above) */
} bcase_t;

static void spec_init(phx_jobspec_t *s)
{
    memset(s, 0, sizeof(*s));
    s->ntasks_per_node = s->ntasks_per_socket = PHX_UNSET;
    s->sockets_per_node = s->cores_per_socket = s->threads_per_core = PHX_UNSET;
    s->mem_per_node = s->mem_per_cpu = s->begin_time = s->nice = PHX_UNSET;
    s->exclusive = s->requeue = -1;
    s->cpus_per_task = 1;
}

static void parts_init(batchd_t *b, const bcase_t *c)
{
    if (c->pools == 1)
        return; /* no batchd.partitions: one partition of every node */
    b->parts.v = calloc(c->pools, sizeof(*b->parts.v));
    if (!b->parts.v)
        exit(1);
    size_t per = c->nodes / c->pools;
    for (size_t i = 0; i < c->pools; i++) {
        char text[128];
        snprintf(text, sizeof(text), "PartitionName=p%zu Nodes=n[%04zu-%04zu]", i,
                 i * per, (i + 1) * per - 1);
        phx_error_t err;
        bool deflt;
        if (batchd_partition_parse(text, 3600, 0, &b->parts.v[i], &deflt, &err) < 0) {
            fprintf(stderr, "bench_sched: %s\n", err.text);
            exit(1);
        }
        if (b->parts.v[i].prio_factor > b->parts.max_prio_factor)
            b->parts.max_prio_factor = b->parts.v[i].prio_factor;
        b->parts.n++;
    }
}

static bjob_t *job_new(batchd_t *b, phx_job_state_t st)
{
    bjob_t *j = calloc(1, sizeof(*j));
    if (!j)
        exit(1);
    spec_init(&j->spec);
    j->id = b->njobs + 1;
    j->state = st;
    j->array_task_id = -1;
    j->eligible_time = j->start_time = j->end_time = -1;
    j->request_after = INT64_MAX; /* no gang request: there is no master */
    b->order[b->njobs++] = j;
    return j;
}

/* A job of a queue's usual mix: mostly small, some of whole nodes, a few
 * wide ones; 10 minutes to 4 hours. */
static void pending_job(batchd_t *b, const bcase_t *c)
{
    bjob_t *j = job_new(b, PHX_JOB_PENDING);
    phx_jobspec_t *s = &j->spec;
    size_t per = c->nodes / c->pools;
    uint32_t r = rnd(100), wide = per / 4 > 8 ? (uint32_t)per / 4 : 8;
    if (r < 60) {
        s->nodes_min = s->nodes_max = 1;
        s->ntasks = 1 + rnd(16);
    } else if (r < 90) {
        s->nodes_min = s->nodes_max = 1 + rnd(4);
        s->ntasks = s->nodes_min * CORES;
    } else {
        s->nodes_min = s->nodes_max = 8 + rnd(wide - 7);
        s->ntasks = s->nodes_min * CORES;
    }
    if (s->nodes_min > (int64_t)per)
        s->nodes_min = s->nodes_max = (int64_t)per;
    if (s->ntasks > s->nodes_max * CORES)
        s->ntasks = s->nodes_max * CORES;
    s->time_limit = 600 + 60 * rnd(230);
    static const char *const gres[3] = {"gpu:a100:1", "gpu:v100:2", "gpu:1"};
    if (c->gpus && rnd(3) == 0)
        s->gres = strdup(gres[rnd(3)]);
    j->uid = 1000 + rnd(NUSERS);
    char user[16];
    snprintf(user, sizeof(user), "u%u", j->uid % 10);
    j->user = strdup(user);
    j->submit_time = NOW - 1 - rnd(86400);
    if (c->pools > 1) {
        char part[32];
        size_t a = rnd((uint32_t)c->pools);
        if (c->span && rnd(4) == 0)
            snprintf(part, sizeof(part), "p%zu,p%zu", a, (a + 1) % c->pools);
        else
            snprintf(part, sizeof(part), "p%zu", a);
        s->partition = strdup(part);
    }
    b->npending++;
}

/* Each node runs one job of BUSY cores, ending within 4 hours. */
static void running_job(batchd_t *b, size_t node, bool gpus)
{
    bjob_t *j = job_new(b, PHX_JOB_RUNNING);
    j->spec.nodes_min = j->spec.nodes_max = 1;
    j->spec.ntasks = BUSY;
    j->spec.time_limit = 3600 * 4;
    j->start_time = NOW - 60 - rnd(3600 * 4 - 120);
    j->tasks = calloc(1, sizeof(*j->tasks));
    if (!j->tasks)
        exit(1);
    snprintf(j->tasks[0].id, sizeof(j->tasks[0].id), "%" PRIu64 ".0", j->id);
    snprintf(j->tasks[0].agent_id, sizeof(j->tasks[0].agent_id), "%s",
             b->nodes[node].agent_id);
    j->tasks[0].cpus = j->tasks[0].tasks = BUSY;
    j->tasks[0].mem = (uint64_t)BUSY * 512;
    if (gpus) { /* the node's A100s */
        j->spec.gres = strdup("gpu:a100:2");
        j->tasks[0].gpus = 0x3;
    }
    j->ntasks = j->tasks_live = 1;
    b->nrunning++;
}

static void world_init(batchd_t *b, const bcase_t *c)
{
    memset(b, 0, sizeof(*b));
    phx_prio_weights_default(&b->weights);
    b->bf = (phx_bf_params_t){.window = 86400, .max_job_test = 500};
    b->default_mem_per_cpu = 512;
    b->sched_pending = true; /* batchd_sched_dirty: no event loop here */
    parts_init(b, c);
    b->nodes = calloc(c->nodes, sizeof(*b->nodes));
    b->order = calloc(c->nodes + c->pending, sizeof(*b->order));
    b->node_index = phx_hmap_create();
    b->tasks = phx_hmap_create();
    b->usage = phx_hmap_create();
    if (!b->nodes || !b->order || !b->node_index || !b->tasks || !b->usage)
        exit(1);
    b->nnodes = c->nodes;
    for (size_t i = 0; i < c->nodes; i++) {
        bnode_t *n = &b->nodes[i];
        snprintf(n->agent_id, sizeof(n->agent_id), "a%04zu", i);
        snprintf(n->name, sizeof(n->name), "n%04zu", i);
        n->cores = CORES;
        n->sockets = 2;
        n->threads = 1;
        n->mem = NODE_MEM;
        n->usable = true;
        n->parts = batchd_parts_node_mask(&b->parts, n->name);
        if (c->gpus && !(n->gpu = calloc(4, sizeof(*n->gpu))))
            exit(1);
        for (int g = 0; c->gpus && g < 4; g++) {
            n->gpu[g].id = g;
            snprintf(n->gpu[g].model, sizeof(n->gpu[g].model), "%s",
                     g < 2 ? "NVIDIA A100-SXM4-40GB" : "Tesla V100-SXM2-16GB");
            n->ngpus++;
        }
        if (phx_hmap_put(b->node_index, n->agent_id, n) < 0)
            exit(1);
    }
    for (size_t i = 0; i < c->nodes; i++)
        running_job(b, i, c->gpus);
    for (size_t i = 0; i < c->pending; i++)
        pending_job(b, c);
    b->cap = b->njobs;
}

static void world_clear(batchd_t *b)
{
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        free(j->spec.partition);
        free(j->spec.gres);
        free(j->user);
        free(j->tasks);
        free(j);
    }
    free(b->order);
    for (size_t i = 0; i < b->nnodes; i++)
        free(b->nodes[i].gpu);
    free(b->nodes);
    free(b->prio_order);
    free(b->prio_value);
    free(b->requested);
    batchd_parts_clear(&b->parts);
    phx_hmap_destroy(b->node_index);
    phx_hmap_destroy(b->tasks);
    phx_hmap_destroy(b->usage);
}

/* --- timing --- */

/* The thread's CPU time: other builds and tests share these 2 cores, and
 * wall-clock times of the same pass then varied fivefold. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
    double dx = *(const double *)x, dy = *(const double *)y;
    return dx < dy ? -1 : dx > dy;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* Passes to time: MAX_PASSES, fewer when one takes long. */
static int passes_for(double ms)
{
    int n = ms > 0 ? (int)(TIME_BUDGET * 1e3 / 4 / ms) : MAX_PASSES;
    n = n < 3 ? 3 : n > MAX_PASSES ? MAX_PASSES : n;
    return n | 1;
}

/* The planner's input as pass_run builds it: nodes less what the running
 * jobs hold (GPUs by class: gc), the running jobs ending at their limits. */
static void plan_input(batchd_t *b, batchd_gclasses_t *gc, phx_bf_node_t *nodes,
                       phx_bf_running_t *run, phx_bf_share_t *shares, size_t *nrun)
{
    for (size_t i = 0; i < b->nnodes; i++) {
        const bnode_t *n = &b->nodes[i];
        nodes[i] = (phx_bf_node_t){.cores_total = n->cores,
                                   .cores_free = n->cores,
                                   .mem_total = n->mem,
                                   .mem_free = n->mem,
                                   .usable = n->usable,
                                   .sockets = n->sockets,
                                   .threads_per_core = n->threads,
                                   .parts = n->parts,
                                   .gpus_total = n->ngpus,
                                   .gpus_free = n->ngpus};
    }
    batchd_gpu_classes(b, gc, nodes);
    *nrun = 0;
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (j->state != PHX_JOB_RUNNING)
            continue;
        size_t x = (size_t)(batchd_node_by_agent(b, j->tasks[0].agent_id) - b->nodes);
        nodes[x].cores_free -= j->tasks[0].cpus;
        nodes[x].mem_free -= j->tasks[0].mem;
        shares[*nrun] = (phx_bf_share_t){
            (uint32_t)x, j->tasks[0].tasks, j->tasks[0].cpus, j->tasks[0].mem, 0, {0}};
        batchd_gpu_hold(gc, &b->nodes[x], j, &j->tasks[0], &nodes[x], &shares[*nrun]);
        run[*nrun] = (phx_bf_running_t){j->id, j->start_time + j->spec.time_limit,
                                        &shares[*nrun], 1};
        (*nrun)++;
    }
}

static void run_case(const bcase_t *c)
{
    batchd_t b;
    world_init(&b, c);
    pass_t p = {.b = &b, .now = NOW};
    bjob_t **cand = calloc(b.npending + 1, sizeof(*cand)), **rjob = NULL;
    phx_prio_job_t *prio = calloc(b.npending + 1, sizeof(*prio));
    phx_bf_node_t *nodes = calloc(b.nnodes, sizeof(*nodes));
    phx_bf_running_t *run = calloc(b.nnodes, sizeof(*run));
    phx_bf_share_t *shares = calloc(b.nnodes, sizeof(*shares));
    phx_bf_request_t *reqs = NULL;
    double t[MAX_PASSES], order_ms, select_ms, plan_ms, pass_ms;
    size_t walked = 0, selected = 0, tested = 0, nrun;
    if (!cand || !prio || !nodes || !run || !shares)
        exit(1);
    plan_input(&b, &p.gc, nodes, run, shares, &nrun);

    /* the order rebuilt: the first pass of each second */
    double t0 = now_ms();
    batchd_order(&b, NOW, 0, cand, prio);
    int n = passes_for(now_ms() - t0);
    for (int i = 0; i < n; i++) {
        b.prio_n = 0;
        t0 = now_ms();
        walked = batchd_order(&b, NOW, 0, cand, prio);
        t[i] = now_ms() - t0;
    }
    order_ms = median(t, n);

    /* pass_select over the kept order (the order is warm from above) */
    for (int i = 0; i < n; i++) {
        free(reqs);
        free(rjob);
        t0 = now_ms();
        selected = pass_select(&p, nodes, cand, prio, &reqs, &rjob);
        t[i] = now_ms() - t0;
    }
    select_ms = median(t, n);
    /* the jobs it walked: pass_select asks all of them with several pools */
    size_t npools = phx_bf_pools_count(&p.pools, nodes, b.nnodes);
    walked = batchd_order(&b, NOW, npools > 1 ? 0 : b.bf.max_job_test, cand, prio);

    phx_bf_input_t in = {NOW, nodes, b.nnodes, run, nrun, reqs, selected, p.gc.n};
    phx_bf_plan_t plan;
    phx_error_t err;
    t0 = now_ms();
    if (phx_backfill_plan(&in, &b.bf, &plan, &err) < 0) {
        fprintf(stderr, "bench_sched: %s\n", err.text);
        exit(1);
    }
    phx_backfill_plan_clear(&plan);
    int np = passes_for(now_ms() - t0);
    for (int i = 0; i < np; i++) {
        t0 = now_ms();
        phx_backfill_plan(&in, &b.bf, &plan, &err);
        t[i] = now_ms() - t0;
        tested = plan.tested;
        phx_backfill_plan_clear(&plan);
    }
    plan_ms = median(t, np);

    /* the whole pass without offers (the timer's) */
    for (int i = 0; i < np; i++) {
        pass_t q = {.b = &b, .now = NOW}; /* on_sched's */
        t0 = now_ms();
        pass_run(&q);
        t[i] = now_ms() - t0;
    }
    pass_ms = median(t, np);

    printf("sched: %2zu pools%s %6zu pending %5zu nodes: order %7.2f ms | select "
           "%6.2f ms, %5zu walked, %4zu selected | plan %7.2f ms, %4zu examined | "
           "pass %7.2f ms\n",
           c->pools,
           c->span   ? " (-p a,b)"
           : c->gpus ? " (GPUs)  "
                     : "         ",
           c->pending, c->nodes, order_ms, select_ms, walked, selected, plan_ms, tested,
           pass_ms);
    fflush(stdout);
    free(reqs);
    free(rjob);
    free(cand);
    free(prio);
    free(nodes);
    free(run);
    free(shares);
    world_clear(&b);
}

int main(int argc, char **argv)
{
    static const bcase_t cases[] = {
        {1, 1000, 1024, false, false},   {4, 1000, 1024, false, false},
        {16, 1000, 1024, false, false},  {16, 1000, 1024, true, false},
        {1, 10000, 1024, false, false},  {4, 10000, 1024, false, false},
        {16, 10000, 1024, false, false}, {16, 10000, 1024, true, false},
        {1, 50000, 1024, false, false},  {4, 50000, 1024, false, false},
        {16, 50000, 1024, false, false}, {16, 50000, 1024, true, false},
        {1, 10000, 64, false, false},    {4, 10000, 64, false, false},
        {16, 10000, 64, false, false},   {1, 50000, 64, false, false},
        {16, 50000, 64, false, false},   {1, 10000, 1024, false, true},
        {16, 10000, 1024, false, true},
    };
    phx_log_init("bench_sched", PHX_LOG_STDERR, LOG_WARNING);
    /* bench_sched POOLS PENDING NODES [span|gpus]: one case (for perf) */
    if (argc >= 4) {
        bcase_t c = {strtoul(argv[1], NULL, 10), strtoul(argv[2], NULL, 10),
                     strtoul(argv[3], NULL, 10),
                     argc > 4 && strcmp(argv[4], "span") == 0,
                     argc > 4 && strcmp(argv[4], "gpus") == 0};
        if (c.pools < 1 || c.pools > 63 || c.nodes < c.pools || !c.pending) {
            fprintf(stderr, "usage: bench_sched [POOLS PENDING NODES [span|gpus]]\n");
            return 2;
        }
        run_case(&c);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    return 0;
}
