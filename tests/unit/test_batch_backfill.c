/* batchd: the EASY backfill planner, by example and by a property over random
 * job mixes on a simulated clock: the reserved job never starts later than
 * its first reservation, and no node is ever over-committed.
 *
 * Unit tests cannot link daemon objects, so the source is included. */
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/bf_fit.c"
#include "daemons/batchd/bf_node.c"
#include "daemons/batchd/pools.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#define MAXN 16
#define MAXJ 96

static phx_bf_node_t node(uint32_t cores, uint32_t free, uint64_t mem,
                          uint64_t mem_free)
{
    return (phx_bf_node_t){.cores_total = cores,
                           .cores_free = free,
                           .mem_total = mem,
                           .mem_free = mem_free,
                           .usable = true};
}

static phx_bf_request_t req(uint64_t id, uint32_t nodes, uint32_t ntasks, int64_t limit)
{
    return (phx_bf_request_t){.job_id = id,
                              .nodes_min = nodes,
                              .nodes_max = nodes,
                              .ntasks = ntasks,
                              .cpus_per_task = 1,
                              .time_limit = limit};
}

static void plan_ok(const phx_bf_input_t *in, const phx_bf_params_t *p,
                    phx_bf_plan_t *plan)
{
    phx_error_t err = {{0}};
    if (phx_backfill_plan(in, p, plan, &err) < 0)
        fail_msg("plan: %s", err.text);
    assert_int_equal(plan->count, in->npending);
}

static uint32_t share_nodes_mask(const phx_bf_decision_t *d)
{
    uint32_t m = 0;
    for (size_t i = 0; i < d->nshares; i++)
        m |= 1u << d->shares[i].node;
    return m;
}

static void test_starts_in_order(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {node(8, 8, 1000, 1000), node(8, 8, 1000, 1000)};
    phx_bf_request_t pend[3] = {req(1, 1, 4, 60), req(2, 2, 10, 60), req(3, 1, 2, 60)};
    phx_bf_input_t in = {
        .now = 100, .nodes = nodes, .nnodes = 2, .pending = pend, .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(plan.decisions[i].verdict, PHX_BF_START);
        assert_int_equal(plan.decisions[i].start_time, 100);
    }
    assert_int_equal(plan.reserved, -1);
    assert_int_equal(plan.shadow_time, -1);
    assert_int_equal(plan.tested, 3);
    /* Job 1 (4 tasks, one node) goes to node 0 (best fit, lowest index). */
    assert_int_equal(plan.decisions[0].nshares, 1);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    assert_int_equal(plan.decisions[0].shares[0].cores, 4);
    /* Job 2: 10 tasks on 2 nodes with 4 and 8 free: 4 + 6. */
    uint32_t total = 0;
    for (size_t i = 0; i < plan.decisions[1].nshares; i++) {
        assert_true(plan.decisions[1].shares[i].tasks >= 1);
        total += plan.decisions[1].shares[i].cores;
    }
    assert_int_equal(total, 10);
    assert_int_equal(share_nodes_mask(&plan.decisions[1]), 3);
    /* Job 2 filled the emptier node first (8 + 2), so job 3 gets node 0. */
    assert_int_equal(plan.decisions[2].shares[0].node, 0);
    assert_int_equal(plan.decisions[1].shares[0].node, 1);
    assert_int_equal(plan.decisions[1].shares[0].tasks, 8);
    assert_string_equal(phx_backfill_verdict_name(PHX_BF_RESERVED), "reserved");
    phx_backfill_plan_clear(&plan);
}

/* 4 nodes of 4 cores; a job on nodes 0-2 ends at 100.  The top job needs
 * all 4 nodes: reserved at 100.  A 1-node hour-long job may not take node 3,
 * a 1-node job that ends by 100 may. */
static void test_reservation_and_backfill(void **state)
{
    (void)state;
    phx_bf_node_t nodes[4] = {node(4, 0, 100, 100), node(4, 0, 100, 100),
                              node(4, 0, 100, 100), node(4, 4, 100, 100)};
    phx_bf_share_t rs[3] = {
        {0, 4, 4, 0, 0, {0}}, {1, 4, 4, 0, 0, {0}}, {2, 4, 4, 0, 0, {0}}};
    phx_bf_running_t run = {.job_id = 7, .end_time = 100, .shares = rs, .nshares = 3};
    phx_bf_request_t pend[4] = {req(1, 4, 16, 600), req(2, 1, 1, 3600),
                                req(3, 1, 4, 50), req(4, 1, 1, 30)};
    phx_bf_input_t in = {.now = 40,
                         .nodes = nodes,
                         .nnodes = 4,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 4};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 100);
    assert_int_equal(plan.reserved, 0);
    assert_int_equal(plan.shadow_time, 100);
    assert_int_equal(share_nodes_mask(&plan.decisions[0]), 0xf);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[1].start_time, -1);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_BACKFILL); /* 40 + 50 <= 100 */
    assert_int_equal(plan.decisions[2].shares[0].node, 3);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_WAIT); /* node 3 is full now */
    phx_backfill_plan_clear(&plan);

    /* Ending exactly at the shadow time is fine; one second later is not. */
    pend[2].time_limit = 60;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_BACKFILL);
    phx_backfill_plan_clear(&plan);
    pend[2].time_limit = 61;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_BACKFILL);
    phx_backfill_plan_clear(&plan);
}

/* Spare resources: the reservation needs 2 of 3 nodes at the shadow time,
 * so a long job may use the third now. */
static void test_backfill_on_spare_nodes(void **state)
{
    (void)state;
    phx_bf_node_t nodes[3] = {node(4, 0, 100, 100), node(4, 0, 100, 100),
                              node(4, 4, 100, 100)};
    phx_bf_share_t rs[2] = {{0, 4, 4, 0, 0, {0}}, {1, 4, 4, 0, 0, {0}}};
    phx_bf_running_t run = {.job_id = 7, .end_time = 500, .shares = rs, .nshares = 2};
    phx_bf_request_t pend[3] = {req(1, 2, 8, 600), req(2, 1, 4, 100000),
                                req(3, 1, 1, 10)};
    phx_bf_input_t in = {.now = 0,
                         .nodes = nodes,
                         .nnodes = 3,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.shadow_time, 500);
    assert_int_equal(share_nodes_mask(&plan.decisions[0]), 0x3);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[1].shares[0].node, 2);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);

    /* bf_window: a job longer than the window is not backfilled at all. */
    phx_bf_params_t p = {.window = 86400};
    plan_ok(&in, &p, &plan);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_BACKFILL);
    phx_backfill_plan_clear(&plan);
    /* bf_max_job_test: only the first two are looked at. */
    p = (phx_bf_params_t){.max_job_test = 2};
    plan_ok(&in, &p, &plan);
    assert_int_equal(plan.tested, 2);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_NOT_TESTED);
    assert_int_equal(plan.decisions[2].start_time, -1);
    phx_backfill_plan_clear(&plan);
}

static void test_memory_exclusive_never(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {node(8, 6, 1000, 900), node(8, 8, 1000, 1000)};
    phx_bf_share_t rs[1] = {{0, 2, 2, 100, 0, {0}}};
    phx_bf_running_t run = {.job_id = 7, .end_time = 1000, .shares = rs, .nshares = 1};
    phx_bf_request_t pend[6] = {
        req(1, 1, 1, 60), req(2, 1, 1, 60), req(3, 1, 1, 60),
        req(4, 1, 4, 60), req(5, 3, 3, 60), req(6, 1, 1, 0),
    };
    pend[0].mem_per_node = 950; /* only node 1 has 950 free */
    pend[1].exclusive = true;   /* node 1 is now partly used by job 1 until 60 */
    pend[2].mem_whole_node = true;
    pend[3].mem_per_cpu = 240;   /* 4 x 240: fits an empty node, not node 0 now */
    pend[4].ntasks_per_node = 1; /* 3 nodes: never on this cluster */
    phx_bf_input_t in = {.now = 0,
                         .nodes = nodes,
                         .nnodes = 2,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 6};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[0].shares[0].node, 1);
    assert_int_equal(plan.decisions[0].shares[0].mem, 950);
    /* The exclusive job gets node 1 whole when job 1 ends at 60. */
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.shadow_time, 60);
    assert_int_equal(plan.decisions[1].shares[0].node, 1);
    assert_int_equal(plan.decisions[1].shares[0].cores, 8);
    assert_int_equal(plan.decisions[1].shares[0].mem, 1000);
    /* Whole-node memory: neither node is untouched now. */
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_WAIT);
    /* 4 tasks x 240 MiB: node 0 has 900 free (3 tasks), node 1 has 50. */
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[4].verdict, PHX_BF_NEVER);
    /* No time limit: only spare resources, and node 1 is reserved. */
    assert_int_equal(plan.decisions[5].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[5].shares[0].node, 0);
    phx_backfill_plan_clear(&plan);

    pend[3].mem_per_cpu = 200; /* now 4 x 200 fits node 0, and ends by 60 */
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[3].shares[0].node, 0);
    assert_int_equal(plan.decisions[3].shares[0].mem, 800);
    phx_backfill_plan_clear(&plan);
    /* Reserved node 1 cannot take a job that outlives the shadow time, even
     * though it has room now. */
    pend[3].mem_per_cpu = 0;
    pend[3].ntasks = 1;
    pend[3].time_limit = 61;
    nodes[0].cores_free = 0;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[5].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);
}

static void test_flexible_node_count(void **state)
{
    (void)state;
    phx_bf_node_t nodes[4] = {node(4, 4, 10, 10), node(4, 4, 10, 10),
                              node(4, 4, 10, 10), node(4, 2, 10, 10)};
    phx_bf_request_t pend[2] = {req(1, 1, 8, 60), req(2, 1, 5, 60)};
    pend[0].nodes_max = 8; /* -n 8 alone */
    pend[1].nodes_min = 3;
    pend[1].nodes_max = 3;
    phx_bf_input_t in = {
        .now = 0, .nodes = nodes, .nnodes = 4, .pending = pend, .npending = 2};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[0].nshares, 2); /* as few nodes as hold 8 */
    /* 3 nodes for 5 tasks: only nodes 2 and 3 have room until job 1 ends. */
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[1].start_time, 60);
    assert_int_equal(plan.decisions[1].nshares, 3);
    phx_backfill_plan_clear(&plan);
}

/* Sockets: nodes 0 and 1 have 2 sockets of 4 cores, node 2 one socket of 8.
 * 4 tasks at one per socket take nodes 0 and 1, 2 tasks each (by cores
 * alone one node would do); a job asking 2 sockets per node does not go on
 * node 2, the emptiest; one asking 4 sockets can never run, nor can 2
 * tasks of 5 cores at one per socket (only node 2's socket holds one; by
 * cores, each node would hold one spanning its sockets). */
static void test_sockets_and_shapes(void **state)
{
    (void)state;
    phx_bf_node_t nodes[3] = {node(8, 8, 1000, 1000), node(8, 8, 1000, 1000),
                              node(8, 8, 1000, 1000)};
    nodes[0].sockets = nodes[1].sockets = 2;
    nodes[2].sockets = 1;
    phx_bf_request_t pend[4] = {req(1, 1, 4, 60), req(2, 1, 1, 60), req(3, 1, 1, 60),
                                req(4, 1, 1, 60)};
    pend[0].nodes_max = 4;
    pend[0].ntasks_per_socket = 1;
    pend[1].min_sockets = 2;
    pend[2].min_sockets = 4;
    pend[3].ntasks = pend[3].nodes_max = 2;
    pend[3].cpus_per_task = 5;
    pend[3].ntasks_per_socket = 1;
    phx_bf_input_t in = {
        .now = 100, .nodes = nodes, .nnodes = 3, .pending = pend, .npending = 4};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[0].nshares, 2);
    assert_int_equal(share_nodes_mask(&plan.decisions[0]), 3);
    assert_int_equal(plan.decisions[0].shares[0].tasks, 2);
    assert_int_equal(plan.decisions[0].shares[1].tasks, 2);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[1].shares[0].node, 0);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_NEVER);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
    /* the count itself: sockets of 4 and 2 free cores, 2-core tasks */
    uint32_t free2[2] = {4, 3};
    assert_int_equal(phx_bf_socket_tasks(free2, 2, 2, 0, false), 3);
    assert_int_equal(phx_bf_socket_tasks(free2, 2, 2, 1, false), 2);
    assert_int_equal(phx_bf_socket_tasks(free2, 2, 4, 0, false), 1);
    assert_int_equal(phx_bf_socket_tasks(free2, 2, 3, 0, true), 2); /* 7 / 3 */
    assert_int_equal(phx_bf_socket_tasks(free2, 2, 3, 1, true), 2);
    assert_int_equal(phx_bf_socket_tasks(free2, 2, 5, 1, true), 0);
}

static void test_unlimited_blocker_and_bad_input(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {node(4, 0, 10, 10), node(4, 4, 10, 10)};
    phx_bf_share_t rs[1] = {{0, 4, 4, 0, 0, {0}}};
    phx_bf_running_t run = {
        .job_id = 7, .end_time = PHX_BF_NO_END, .shares = rs, .nshares = 1};
    phx_bf_request_t pend[2] = {req(1, 2, 8, 60), req(2, 1, 4, 0)};
    phx_bf_input_t in = {.now = 0,
                         .nodes = nodes,
                         .nnodes = 2,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 2};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.reserved, -1);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    phx_backfill_plan_clear(&plan);
    /* A drained node takes nothing. */
    nodes[1].usable = false;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_NEVER);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);
    /* Nonsense requests are NEVER, not crashes. */
    phx_bf_request_t odd[3] = {req(1, 0, 1, 1), req(2, 2, 1, 1), req(3, 1, 1, 1)};
    odd[2].cpus_per_task = 0;
    in.pending = odd;
    in.npending = 3;
    plan_ok(&in, NULL, &plan);
    for (int i = 0; i < 3; i++)
        assert_int_equal(plan.decisions[i].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
    rs[0].node = 5;
    phx_error_t err = {{0}};
    assert_int_equal(phx_backfill_plan(&in, NULL, &plan, &err), -1);
    assert_string_equal(err.text, "running job 7 names node 5 of 2");
    assert_null(plan.decisions);
    phx_backfill_plan_clear(NULL);
}

/* ---- the property, on a simulated clock ---- */

typedef struct simjob {
    phx_bf_request_t r;
    int64_t arrive, runtime; /* runtime <= time limit */
    int64_t start, end;
    int64_t first_reservation; /* -1: never reserved */
    int64_t res_pool;          /* the pool of its reservation, -1: none */
    phx_bf_share_t shares[MAXN];
    size_t nshares;
    int state; /* 0 not arrived/pending, 1 running, 2 done, 3 dropped */
} simjob_t;

static uint64_t rng;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

typedef struct stats {
    int backfills, reservations, checked, starts;
    int multi;      /* passes with reservations in two pools */
    int multi_part; /* starts of jobs of two partitions */
    int moved;      /* jobs that moved to another pool than reserved in */
    int resets;     /* reservations counted again behind them */
    int gpu_starts; /* shares of GPUs started */
} stats_t;

/* With parts, the nodes make two partitions of their own halves, and in
 * some runs a third of every node that joins them into one pool; each job
 * runs in one of them, a third of the jobs in either half (-p a,b). */
typedef struct sim_opts {
    bool parts;
    uint32_t max_job_test; /* 0: 500 */
    int64_t window;
    uint32_t unlimited; /* 1 job in so many has no time limit; 0: none */
    bool gpus;          /* nodes of 0, 2 or 4 GPUs, a third of the jobs use them */
} sim_opts_t;

static void simulate(uint64_t seed, stats_t *st, const sim_opts_t *o)
{
    bool parts = o->parts;
    rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t nn = 2 + rnd(5);
    uint32_t nparts = parts ? 2 + (rnd(3) == 0) : 0;
    phx_bf_node_t nodes[MAXN];
    for (size_t i = 0; i < nn; i++) {
        uint32_t c = 4 << rnd(3);
        uint64_t m = 1000 * (1 + rnd(4));
        nodes[i] = node(c, c, m, m);
        if (o->gpus)
            nodes[i].gpus_total = nodes[i].gpus_free = rnd(3) ? 2u << rnd(2) : 0;
        if (nparts)
            nodes[i].parts = (i < nn / 2 ? 1u : 2u) | (nparts == 3 ? 4u : 0u);
    }
    size_t nj = 30 + rnd(50);
    static simjob_t jobs[MAXJ];
    for (size_t j = 0; j < nj; j++) {
        simjob_t *s = &jobs[j];
        memset(s, 0, sizeof(*s));
        uint32_t n = 1 + rnd(nn > 3 ? 3 : (uint32_t)nn);
        uint32_t cpt = 1 + rnd(2);
        uint32_t tasks = n * (1 + rnd(4));
        s->r = (phx_bf_request_t){.job_id = j + 1,
                                  .nodes_min = n,
                                  .nodes_max = n,
                                  .ntasks = tasks,
                                  .cpus_per_task = cpt,
                                  .time_limit = 10 + rnd(500)};
        if (rnd(4) == 0)
            s->r.nodes_max = n + rnd(3);
        if (rnd(10) == 0)
            s->r.exclusive = true;
        if (rnd(5) == 0)
            s->r.mem_per_cpu = 50 + rnd(200);
        else if (rnd(5) == 0)
            s->r.mem_per_node = 100 + rnd(900);
        if (rnd(3) == 0)
            s->r.ntasks_per_node = tasks / n + rnd(2);
        if (nparts)
            s->r.parts = rnd(3) == 0 ? 3 : UINT64_C(1) << rnd(nparts);
        if (o->gpus && rnd(3) == 0) {
            if (rnd(2))
                s->r.gpus_per_node = 1 + rnd(4);
            else
                s->r.gpus_per_task = 1 + rnd(2);
        }
        s->arrive = j == 0 ? 0 : jobs[j - 1].arrive + rnd(40);
        s->runtime = 1 + rnd((uint32_t)s->r.time_limit);
        if (o->unlimited && rnd(o->unlimited) == 0)
            s->r.time_limit = 0; /* runs runtime all the same */
        s->first_reservation = s->res_pool = -1;
        s->start = -1;
    }
    int64_t now = 0;
    for (int guard = 0; guard < 100000; guard++) {
        /* Ends at now first, then plan. */
        for (size_t j = 0; j < nj; j++)
            if (jobs[j].state == 1 && jobs[j].end <= now) {
                jobs[j].state = 2;
                for (size_t k = 0; k < jobs[j].nshares; k++) {
                    phx_bf_node_t *nd = &nodes[jobs[j].shares[k].node];
                    nd->cores_free += jobs[j].shares[k].cores;
                    nd->mem_free += jobs[j].shares[k].mem;
                    nd->gpus_free += jobs[j].shares[k].gpus;
                }
            }
        phx_bf_request_t pend[MAXJ];
        size_t pidx[MAXJ], np = 0, nr = 0;
        phx_bf_running_t run[MAXJ];
        for (size_t j = 0; j < nj; j++) {
            if (jobs[j].state == 0 && jobs[j].arrive <= now) {
                pidx[np] = j;
                pend[np++] = jobs[j].r;
            } else if (jobs[j].state == 1) {
                run[nr++] = (phx_bf_running_t){
                    jobs[j].r.job_id,
                    jobs[j].r.time_limit ? jobs[j].start + jobs[j].r.time_limit
                                         : PHX_BF_NO_END,
                    jobs[j].shares, jobs[j].nshares};
            }
        }
        phx_bf_input_t in = {.now = now,
                             .nodes = nodes,
                             .nnodes = nn,
                             .running = run,
                             .nrunning = nr,
                             .pending = pend,
                             .npending = np};
        phx_bf_params_t params = {.max_job_test =
                                      o->max_job_test ? o->max_job_test : 500u,
                                  .window = o->window};
        phx_bf_pools_t pl;
        phx_bf_pools_init(&pl, nodes, nn);
        phx_bf_plan_t plan;
        plan_ok(&in, &params, &plan);
        if (nparts == 3 || !nparts)
            assert_true(plan.nreserved <= 1); /* one pool */
        st->multi += plan.nreserved > 1;
        /* A job of two partitions is reserved where it starts the soonest:
         * when it is reserved in, or starts in, another pool than its
         * reservation's, it takes that pool's from a job of lower priority,
         * which priority allows (as a new job of higher priority would);
         * the later jobs of that pool count from their new reservations. */
        uint64_t moved_into = 0; /* pools */
        bool dropped = false;
        for (size_t i = 0; i < np; i++) {
            simjob_t *s = &jobs[pidx[i]];
            const phx_bf_decision_t *d = &plan.decisions[i];
            uint32_t pls[64];
            size_t npl = phx_bf_pools_list(&pl, s->r.parts, pls);
            bool hit = false;
            for (size_t k = 0; k < npl; k++)
                hit |= pls[k] < 64 && (moved_into & (UINT64_C(1) << pls[k]));
            if (hit && d->verdict != PHX_BF_START && d->verdict != PHX_BF_BACKFILL) {
                st->resets += s->first_reservation >= 0;
                s->first_reservation = s->res_pool = -1;
            }
            if (d->verdict == PHX_BF_RESERVED || d->verdict == PHX_BF_START ||
                d->verdict == PHX_BF_BACKFILL) {
                if (s->res_pool >= 0 && s->res_pool != (int64_t)d->pool &&
                    d->pool < 64) {
                    moved_into |= UINT64_C(1) << d->pool;
                    st->moved++;
                }
                s->res_pool = d->verdict == PHX_BF_RESERVED ? (int64_t)d->pool : -1;
            }
            switch (d->verdict) {
            case PHX_BF_START:
            case PHX_BF_BACKFILL: {
                st->backfills += d->verdict == PHX_BF_BACKFILL;
                st->starts++;
                if (s->first_reservation >= 0) {
                    st->checked++;
                    if (now > s->first_reservation)
                        fail_msg("seed %llu: job %llu started at %lld, after its "
                                 "reservation at %lld",
                                 (unsigned long long)seed,
                                 (unsigned long long)s->r.job_id, (long long)now,
                                 (long long)s->first_reservation);
                }
                uint32_t tasks = 0;
                assert_true(d->nshares >= s->r.nodes_min &&
                            d->nshares <= s->r.nodes_max);
                if (s->r.parts) { /* in one of its partitions, all of it */
                    assert_true(d->parts && !(d->parts & (d->parts - 1)) &&
                                (d->parts & s->r.parts));
                    for (size_t k = 0; k < d->nshares; k++)
                        assert_true(nodes[d->shares[k].node].parts & d->parts);
                    st->multi_part += (s->r.parts & (s->r.parts - 1)) != 0;
                }
                for (size_t k = 0; k < d->nshares; k++) {
                    phx_bf_node_t *nd = &nodes[d->shares[k].node];
                    if (d->shares[k].cores > nd->cores_free ||
                        d->shares[k].mem > nd->mem_free ||
                        d->shares[k].gpus > nd->gpus_free)
                        fail_msg("seed %llu: node %u over-committed by job %llu",
                                 (unsigned long long)seed, d->shares[k].node,
                                 (unsigned long long)s->r.job_id);
                    if (s->r.exclusive) {
                        assert_int_equal(nd->cores_free, nd->cores_total);
                        assert_int_equal(nd->gpus_free, nd->gpus_total);
                        assert_int_equal(d->shares[k].gpus, nd->gpus_total);
                    } else if (s->r.gpus_per_node) {
                        assert_int_equal(d->shares[k].gpus, s->r.gpus_per_node);
                    } else {
                        assert_int_equal(d->shares[k].gpus,
                                         d->shares[k].tasks * s->r.gpus_per_task);
                    }
                    st->gpu_starts += d->shares[k].gpus > 0;
                    if (s->r.ntasks_per_node)
                        assert_true(d->shares[k].tasks <= s->r.ntasks_per_node);
                    assert_true(d->shares[k].tasks >= 1);
                    nd->cores_free -= d->shares[k].cores;
                    nd->mem_free -= d->shares[k].mem;
                    nd->gpus_free -= d->shares[k].gpus;
                    tasks += d->shares[k].tasks;
                    s->shares[k] = d->shares[k];
                }
                assert_int_equal(tasks, s->r.ntasks);
                s->nshares = d->nshares;
                s->state = 1;
                s->start = now;
                s->end = now + s->runtime;
                break;
            }
            case PHX_BF_RESERVED:
                assert_true(d->start_time > now);
                if (s->first_reservation < 0) {
                    s->first_reservation = d->start_time;
                    st->reservations++;
                }
                break;
            case PHX_BF_NEVER:
                s->state = 3;
                dropped = true;
                break;
            default: break;
            }
        }
        phx_backfill_plan_clear(&plan);
        if (dropped)
            continue; /* the jobs behind them within the budget: now */
        /* Next event: an end or an arrival. */
        int64_t next = INT64_MAX;
        for (size_t j = 0; j < nj; j++) {
            if (jobs[j].state == 1 && jobs[j].end < next)
                next = jobs[j].end;
            if (jobs[j].state == 0 && jobs[j].arrive > now && jobs[j].arrive < next)
                next = jobs[j].arrive;
        }
        if (next == INT64_MAX) {
            for (size_t j = 0; j < nj; j++)
                if (jobs[j].state == 0)
                    fail_msg("seed %llu: job %llu never ran", (unsigned long long)seed,
                             (unsigned long long)jobs[j].r.job_id);
            return;
        }
        now = next;
    }
    fail_msg("seed %llu: simulation did not finish", (unsigned long long)seed);
}

/* Also with GPUs: no node's GPUs over-committed, the reserved job's start
 * kept (the GPUs it waits for are counted in its reservation). */
static void test_easy_never_delays_reserved_job(void **state)
{
    (void)state;
    static const sim_opts_t runs[] = {{.parts = false}, {.gpus = true}};
    for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
        stats_t st = {0};
        for (uint64_t seed = 1; seed <= 300; seed++)
            simulate(seed, &st, &runs[k]);
        /* The property was exercised, not vacuous. */
        print_message("%d starts, %d backfills, %d reservations, %d reserved starts "
                      "checked, %d GPU shares\n",
                      st.starts, st.backfills, st.reservations, st.checked,
                      st.gpu_starts);
        assert_true(st.backfills > 100);
        assert_true(st.reservations > 100);
        assert_true(st.checked > 100);
        assert_true(!runs[k].gpus || st.gpu_starts > 100);
    }
}

/* The same with partitions: every pool's reserved job keeps its start while
 * the other pools' jobs start and reserve on their own nodes; also with a
 * small bf_max_job_test (each pool's), a window and jobs without a time
 * limit (pools blocked). */
static void test_easy_by_pool_never_delays(void **state)
{
    (void)state;
    static const sim_opts_t runs[] = {
        {.parts = true},
        {.parts = true, .max_job_test = 3},
        {.parts = true, .max_job_test = 5, .window = 300, .unlimited = 15},
    };
    for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
        stats_t st = {0};
        for (uint64_t seed = 1; seed <= 300; seed++)
            simulate(seed, &st, &runs[k]);
        print_message("%d starts, %d backfills, %d reservations, %d reserved starts "
                      "checked, %d passes with reservations in two pools, %d starts "
                      "of jobs of two partitions, %d moves to another pool, %d "
                      "reservations counted again\n",
                      st.starts, st.backfills, st.reservations, st.checked, st.multi,
                      st.multi_part, st.moved, st.resets);
        assert_true(st.backfills > 100);
        assert_true(st.reservations > 100);
        assert_true(st.checked > 100);
        assert_true(st.multi > 100);
        assert_true(st.multi_part > 100);
        assert_true(st.moved > 10); /* the relaxation is exercised */
    }
}

/* A reservation capped per socket: one node of 2 sockets x 4 cores; R1 holds
 * socket 0 until 100, R2 2 cores of socket 1 until 10000.  H (-n 2 -c 2
 * --ntasks-per-socket=1) is reserved at 100, when socket 0 frees.  X (one
 * 2-core task, running past 100) fits the 2 free cores, which leave the
 * reservation's count intact; but they are socket 1's, the one H needs
 * besides socket 0: X must wait.  A job ending by 100 may still go there. */
static void test_reservation_by_sockets(void **state)
{
    (void)state;
    phx_bf_node_t nodes[1] = {node(8, 2, 1000, 1000)};
    nodes[0].sockets = 2;
    phx_bf_share_t s1 = {0, 1, 4, 0, 0, {0}}, s2 = {0, 1, 2, 0, 0, {0}};
    phx_bf_running_t run[2] = {{1, 100, &s1, 1}, {2, 10000, &s2, 1}};
    phx_bf_request_t pend[3] = {req(10, 1, 2, 100), req(11, 1, 1, 10000),
                                req(12, 1, 1, 50)};
    pend[0].cpus_per_task = 2;
    pend[0].ntasks_per_socket = 1;
    pend[1].cpus_per_task = 2;
    pend[2].cpus_per_task = 2;
    phx_bf_input_t in = {.now = 10,
                         .nodes = nodes,
                         .nnodes = 1,
                         .running = run,
                         .nrunning = 2,
                         .pending = pend,
                         .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 100);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_BACKFILL);
    phx_backfill_plan_clear(&plan);
    /* Without the per-socket cap the count is all there is: X backfills. */
    pend[0].ntasks_per_socket = 0;
    plan_ok(&in, NULL, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    phx_backfill_plan_clear(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_in_order),
        cmocka_unit_test(test_reservation_by_sockets),
        cmocka_unit_test(test_reservation_and_backfill),
        cmocka_unit_test(test_backfill_on_spare_nodes),
        cmocka_unit_test(test_memory_exclusive_never),
        cmocka_unit_test(test_flexible_node_count),
        cmocka_unit_test(test_sockets_and_shapes),
        cmocka_unit_test(test_unlimited_blocker_and_bad_input),
        cmocka_unit_test(test_easy_never_delays_reserved_job),
        cmocka_unit_test(test_easy_by_pool_never_delays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
