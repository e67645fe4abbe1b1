/* batchd: GPUs in the EASY backfill planner: a node holds a GPU job's tasks
 * only with the GPUs free (per node or per task), shares record the GPUs
 * taken (all of them for an exclusive job), and the reservation counts the
 * GPUs that running jobs give back at their ends.  The simulated clock is
 * the plan's `now` and the running jobs' ends, as in test_batch_backfill.
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

static phx_bf_node_t gnode(uint32_t cores, uint32_t free, uint32_t gpus,
                           uint32_t gpus_free)
{
    return (phx_bf_node_t){.cores_total = cores,
                           .cores_free = free,
                           .mem_total = 1000,
                           .mem_free = 1000,
                           .usable = true,
                           .gpus_total = gpus,
                           .gpus_free = gpus_free};
}

static phx_bf_request_t req(uint64_t id, uint32_t ntasks, int64_t limit)
{
    return (phx_bf_request_t){.job_id = id,
                              .nodes_min = 1,
                              .nodes_max = 1,
                              .ntasks = ntasks,
                              .cpus_per_task = 1,
                              .time_limit = limit};
}

static void plan_ok(const phx_bf_input_t *in, phx_bf_plan_t *plan)
{
    phx_error_t err = {{0}};
    if (phx_backfill_plan(in, NULL, plan, &err) < 0)
        fail_msg("plan: %s", err.text);
    assert_int_equal(plan->count, in->npending);
}

/* Node 0 has 8 free cores but its 2 GPUs are held by a job until 100; node 1
 * has no GPU.  A job of one GPU cannot start now (before, GPUs were not
 * counted and it started on node 0): it is reserved at 100, on node 0.  A
 * job without GPUs starts now; so does one that fits node 0's GPUs only
 * once it ends (NEVER is for shapes no node has: 3 GPUs on a node). */
static void test_free_cores_no_free_gpu(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {gnode(8, 8, 2, 0), gnode(8, 8, 0, 0)};
    phx_bf_share_t held = {.node = 0, .tasks = 1, .cores = 0, .mem = 0, .gpus = 2};
    phx_bf_running_t run = {
        .job_id = 9, .end_time = 100, .shares = &held, .nshares = 1};
    phx_bf_request_t pend[3] = {req(1, 1, 60), req(2, 1, 60), req(3, 1, 60)};
    pend[0].gpus_per_node = 1;
    pend[2].gpus_per_node = 3;
    phx_bf_input_t in = {.now = 10,
                         .nodes = nodes,
                         .nnodes = 2,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 100);
    assert_int_equal(plan.decisions[0].nshares, 1);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    assert_int_equal(plan.decisions[0].shares[0].gpus, 1);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL); /* ends by 100 */
    assert_int_equal(plan.decisions[1].shares[0].gpus, 0);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
    /* The GPUs are back at 100: the same job starts, on node 0. */
    nodes[0].gpus_free = 2;
    in.now = 100;
    in.nrunning = 0;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    phx_backfill_plan_clear(&plan);
}

/* Two nodes of 8 cores and 4 GPUs: R1 holds 2 GPUs of node 0 until 100, R2
 * all of node 1's until 1000.  H (4 GPUs on a node) is reserved at 100 on
 * node 0, when R1's GPUs come back (its cores were free all along).  B (one
 * GPU, running past 100) would take one of node 0's 2 free GPUs, which H
 * needs: it waits.  C (2 GPUs, ending by 100) and D (no GPU, running past
 * 100: H leaves node 0 7 cores) start now. */
static void test_reservation_counts_gpus(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {gnode(8, 6, 4, 2), gnode(8, 6, 4, 0)};
    phx_bf_share_t s1 = {.node = 0, .tasks = 2, .cores = 2, .gpus = 2};
    phx_bf_share_t s2 = {.node = 1, .tasks = 2, .cores = 2, .gpus = 4};
    phx_bf_running_t run[2] = {{1, 100, &s1, 1}, {2, 1000, &s2, 1}};
    phx_bf_request_t pend[4] = {req(10, 1, 500), req(11, 1, 500), req(12, 1, 50),
                                req(13, 1, 5000)};
    pend[0].gpus_per_node = 4;
    pend[1].gpus_per_node = 1;
    pend[2].gpus_per_node = 2;
    phx_bf_input_t in = {.now = 20,
                         .nodes = nodes,
                         .nnodes = 2,
                         .running = run,
                         .nrunning = 2,
                         .pending = pend,
                         .npending = 4};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.shadow_time, 100);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    assert_int_equal(plan.decisions[0].shares[0].gpus, 4);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_WAIT);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[2].shares[0].node, 0);
    assert_int_equal(plan.decisions[2].shares[0].gpus, 2);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[3].shares[0].gpus, 0);
    phx_backfill_plan_clear(&plan);
    /* B ending by the shadow time may take the GPU (C then waits: one left). */
    pend[1].time_limit = 80;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[1].shares[0].gpus, 1);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);
    /* At 100 (R1 ended, nothing else started), H starts where reserved. */
    nodes[0] = gnode(8, 8, 4, 4);
    run[0] = run[1];
    in.now = 100;
    in.nrunning = 1;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    phx_backfill_plan_clear(&plan);
}

/* GPUs per task: nodes of 16 cores and 4 GPUs hold 2 tasks of 2 GPUs each,
 * so 6 tasks take 3 nodes (by cores, one would do), 4 GPUs each; node 2
 * with one GPU taken holds 1 task.  On 2 nodes 6 such tasks never fit. */
static void test_gpus_per_task(void **state)
{
    (void)state;
    phx_bf_node_t nodes[4] = {gnode(16, 16, 4, 4), gnode(16, 16, 4, 4),
                              gnode(16, 16, 4, 3), gnode(16, 16, 4, 4)};
    phx_bf_request_t pend[3] = {req(1, 6, 60), req(2, 2, 60), req(3, 6, 60)};
    pend[0].nodes_max = 4;
    pend[0].gpus_per_task = 2;
    pend[1].nodes_max = 2;
    pend[1].gpus_per_task = 1;
    pend[2].nodes_max = 2;
    pend[2].gpus_per_task = 2;
    phx_bf_input_t in = {
        .now = 0, .nodes = nodes, .nnodes = 4, .pending = pend, .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    const phx_bf_decision_t *d = &plan.decisions[0];
    assert_int_equal(d->verdict, PHX_BF_START);
    assert_int_equal(d->nshares, 3);
    for (size_t k = 0; k < d->nshares; k++) {
        assert_int_not_equal(d->shares[k].node, 2); /* 3 GPUs: 1 task */
        assert_int_equal(d->shares[k].tasks, 2);
        assert_int_equal(d->shares[k].gpus, 4);
    }
    /* Then only node 2's 3 GPUs are free: 2 tasks of one GPU, 2 GPUs. */
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[1].nshares, 1);
    assert_int_equal(plan.decisions[1].shares[0].node, 2);
    assert_int_equal(plan.decisions[1].shares[0].gpus, 2);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
    /* GPUs per node and per task at once: a request that never runs. */
    pend[1].gpus_per_node = 1;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
}

/* An exclusive job takes all of a node's GPUs, asked for or not, and needs
 * them all free: node 0 (a GPU held by a job ending at 50, no core) is not
 * whole; node 1 is.  A GPU job behind it finds no GPU on node 1, and takes
 * node 0's free ones only when it ends by 50 ... or waits for the GPU. */
static void test_exclusive_takes_all_gpus(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {gnode(8, 8, 4, 3), gnode(8, 8, 2, 2)};
    phx_bf_share_t held = {.node = 0, .tasks = 1, .cores = 0, .gpus = 1};
    phx_bf_running_t run = {.job_id = 9, .end_time = 50, .shares = &held, .nshares = 1};
    phx_bf_request_t pend[3] = {req(1, 1, 600), req(2, 1, 600), req(3, 1, 600)};
    pend[0].exclusive = true;
    pend[1].gpus_per_node = 1;
    pend[2].exclusive = true;
    pend[2].gpus_per_node = 4;
    phx_bf_input_t in = {.now = 0,
                         .nodes = nodes,
                         .nnodes = 2,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[0].shares[0].node, 1);
    assert_int_equal(plan.decisions[0].shares[0].cores, 8);
    assert_int_equal(plan.decisions[0].shares[0].gpus, 2);
    /* Node 0 has 3 GPUs free and nothing reserved yet: it starts there. */
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[1].shares[0].node, 0);
    assert_int_equal(plan.decisions[1].shares[0].gpus, 1);
    /* Exclusive with 4 GPUs: node 0 only, once job 2 ends (600). */
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[2].start_time, 600);
    assert_int_equal(plan.decisions[2].shares[0].node, 0);
    assert_int_equal(plan.decisions[2].shares[0].gpus, 4);
    phx_backfill_plan_clear(&plan);
    /* Node 1 busy (job 1 running): the exclusive job waits for node 0's held
     * GPU, though all its cores are free. */
    nodes[1].cores_free = 0;
    nodes[1].gpus_free = 0;
    in.npending = 1;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 50);
    assert_int_equal(plan.decisions[0].shares[0].gpus, 4);
    phx_backfill_plan_clear(&plan);
}

/* The shape memo keys on the GPU fields: the same shape but for its GPUs is
 * answered on its own (2 GPUs per node fit, 3 never do). */
static void test_memo_keys_gpus(void **state)
{
    (void)state;
    phx_bf_node_t nodes[1] = {gnode(8, 8, 2, 2)};
    phx_bf_request_t pend[3] = {req(1, 1, 60), req(2, 1, 60), req(3, 1, 60)};
    pend[0].gpus_per_node = 3;
    pend[1].gpus_per_node = 2;
    pend[2].gpus_per_task = 3;
    phx_bf_input_t in = {
        .now = 0, .nodes = nodes, .nnodes = 1, .pending = pend, .npending = 3};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_NEVER);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_START);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
}

/* --- GPUs by model: class 0 is A100, class 1 V100 --- */
#define A100 0x2u /* gpu_other of an a100 job: not class 1 */
#define V100 0x1u

static phx_bf_node_t mnode(uint32_t cores, uint8_t a100, uint8_t a100_free,
                           uint8_t v100, uint8_t v100_free)
{
    phx_bf_node_t n = gnode(cores, cores, 0, 0);
    n.gpus_class_total[0] = a100;
    n.gpus_class_free[0] = a100_free;
    n.gpus_class_total[1] = v100;
    n.gpus_class_free[1] = v100_free;
    return n;
}

static phx_bf_share_t held(uint32_t node, uint8_t a100, uint8_t v100)
{
    return (phx_bf_share_t){
        .node = node, .tasks = 1, .gpus = a100 + v100, .gpus_class = {a100, v100}};
}

static void classes_are(const phx_bf_share_t *s, uint8_t a100, uint8_t v100)
{
    assert_int_equal(s->gpus_class[0], a100);
    assert_int_equal(s->gpus_class[1], v100);
    assert_int_equal(s->gpus, a100 + v100);
}

/* A node of 2 A100 and 2 V100, its A100s held until 100.  --gpus=a100:2
 * does not start now on the free V100s (it did when the planner counted 2
 * GPUs free of any model, and then had no reservation, no gang request,
 * and showed no start time): it is reserved at 100.  An untyped 1-GPU job
 * running past 100 backfills on a V100 (the reservation leaves them), so
 * does a v100:1 job; a v100:2 one then finds one V100 left and waits. */
static void typed_job_reserved_not_started(void **state)
{
    (void)state;
    phx_bf_node_t nodes[1] = {mnode(8, 2, 0, 2, 2)};
    phx_bf_share_t r = held(0, 2, 0);
    phx_bf_running_t run = {.job_id = 9, .end_time = 100, .shares = &r, .nshares = 1};
    phx_bf_request_t pend[4] = {req(1, 1, 500), req(2, 1, 5000), req(3, 1, 5000),
                                req(4, 1, 5000)};
    pend[0].gpus_per_node = 2, pend[0].gpu_other = A100;
    pend[1].gpus_per_node = 1;
    pend[2].gpus_per_node = 1, pend[2].gpu_other = V100;
    pend[3].gpus_per_node = 2, pend[3].gpu_other = V100;
    phx_bf_input_t in = {.now = 10,
                         .nodes = nodes,
                         .nnodes = 1,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 4,
                         .gpu_classes = 2};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 100);
    classes_are(&plan.decisions[0].shares[0], 2, 0);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    classes_are(&plan.decisions[1].shares[0], 0, 1);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_BACKFILL);
    classes_are(&plan.decisions[2].shares[0], 0, 1);
    assert_int_equal(plan.decisions[3].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);
    /* The A100s back at 100: it starts, on them. */
    nodes[0].gpus_class_free[0] = 2;
    in.now = 100;
    in.nrunning = 0;
    in.npending = 1;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    classes_are(&plan.decisions[0].shares[0], 2, 0);
    phx_backfill_plan_clear(&plan);
}

/* The reservation waits for GPUs of its model: the V100s free at 50, the
 * A100s at 200: an a100:2 job is reserved at 200, not at 50. */
static void reservation_timed_by_model(void **state)
{
    (void)state;
    phx_bf_node_t nodes[1] = {mnode(8, 2, 0, 2, 0)};
    phx_bf_share_t v = held(0, 0, 2), a = held(0, 2, 0);
    phx_bf_running_t run[2] = {
        {.job_id = 8, .end_time = 50, .shares = &v, .nshares = 1},
        {.job_id = 9, .end_time = 200, .shares = &a, .nshares = 1}};
    phx_bf_request_t pend[1] = {req(1, 1, 500)};
    pend[0].gpus_per_node = 2, pend[0].gpu_other = A100;
    phx_bf_input_t in = {.now = 10,
                         .nodes = nodes,
                         .nnodes = 1,
                         .running = run,
                         .nrunning = 2,
                         .pending = pend,
                         .npending = 1,
                         .gpu_classes = 2};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 200);
    classes_are(&plan.decisions[0].shares[0], 2, 0);
    phx_backfill_plan_clear(&plan);
}

/* --gpus-per-task=a100:1: a node takes as many tasks as it has A100s free,
 * whatever its V100s: node 0 (1 A100, 3 V100) one, node 1 (2 and 2) two;
 * 3 tasks take both nodes (by any model's GPUs, one would do), 4 never fit.
 * The shape memo tells the types apart: v100:1 x 4 fits node 0 and 1. */
static void typed_per_task_caps_tasks(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {mnode(16, 1, 1, 3, 3), mnode(16, 2, 2, 2, 2)};
    phx_bf_request_t pend[3] = {req(1, 4, 60), req(2, 3, 60), req(3, 4, 60)};
    for (size_t i = 0; i < 3; i++)
        pend[i].nodes_max = 2, pend[i].gpus_per_task = 1, pend[i].gpu_other = A100;
    pend[2].gpu_other = V100;
    phx_bf_input_t in = {.now = 0,
                         .nodes = nodes,
                         .nnodes = 2,
                         .pending = pend,
                         .npending = 3,
                         .gpu_classes = 2};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_NEVER);
    const phx_bf_decision_t *d = &plan.decisions[1];
    assert_int_equal(d->verdict, PHX_BF_START);
    assert_int_equal(d->nshares, 2);
    assert_int_equal(d->shares[0].node, 1);
    assert_int_equal(d->shares[0].tasks, 2);
    classes_are(&d->shares[0], 2, 0);
    assert_int_equal(d->shares[1].node, 0);
    assert_int_equal(d->shares[1].tasks, 1);
    classes_are(&d->shares[1], 1, 0);
    d = &plan.decisions[2];
    assert_int_equal(d->verdict, PHX_BF_START);
    assert_int_equal(d->nshares, 2);
    assert_int_equal(d->shares[0].tasks + d->shares[1].tasks, 4);
    assert_int_equal(d->shares[0].gpus_class[0] + d->shares[1].gpus_class[0], 0);
    phx_backfill_plan_clear(&plan);
}

/* An untyped job takes GPUs of any model, across models on a node: 2 GPUs
 * on a node of one A100 and one V100 free start now (one of each); an
 * a100:1 job behind it is reserved at its end (60), on the A100, and an
 * untyped 1-GPU job then waits (none free). */
static void untyped_uses_any_model(void **state)
{
    (void)state;
    phx_bf_node_t nodes[1] = {mnode(8, 1, 1, 1, 1)};
    phx_bf_request_t pend[3] = {req(1, 1, 60), req(2, 1, 500), req(3, 1, 5000)};
    pend[0].gpus_per_node = 2;
    pend[1].gpus_per_node = 1, pend[1].gpu_other = A100;
    pend[2].gpus_per_node = 1;
    phx_bf_input_t in = {.now = 0,
                         .nodes = nodes,
                         .nnodes = 1,
                         .pending = pend,
                         .npending = 3,
                         .gpu_classes = 2};
    phx_bf_plan_t plan;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_START);
    classes_are(&plan.decisions[0].shares[0], 1, 1);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[1].start_time, 60);
    classes_are(&plan.decisions[1].shares[0], 1, 0);
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);
    /* A type no node has (all classes other): never. */
    pend[1].gpu_other = A100 | V100;
    in.npending = 2;
    plan_ok(&in, &plan);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_cores_no_free_gpu),
        cmocka_unit_test(test_reservation_counts_gpus),
        cmocka_unit_test(test_gpus_per_task),
        cmocka_unit_test(test_exclusive_takes_all_gpus),
        cmocka_unit_test(test_memo_keys_gpus),
        cmocka_unit_test(typed_job_reserved_not_started),
        cmocka_unit_test(reservation_timed_by_model),
        cmocka_unit_test(typed_per_task_caps_tasks),
        cmocka_unit_test(untyped_uses_any_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
