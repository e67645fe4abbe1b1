/* batchd's gang request (daemons/batchd/gang.c): what a reserved job asks
 * the master for, and what batchd does when the master refuses it.  The
 * sources, stubs and world: batch_world.h. */
#include "tests/unit/batch_world.h"

/* --- the gang request (gang.c) --- */

static json_int_t req_int(const json_t *r, const char *key)
{
    const json_t *v = json_object_get(r, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* A reserved job asks the master for what it can use: its tasks (socket
 * bundles when capped per socket, per node, per socket, over at least its
 * nodes); whole nodes when exclusive; only the nodes that have the shape
 * it asks. */
static void gang_request_describes_the_job(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"1", 1, 4, 1, 0x0F}, {"2", 2, 2, 1, 0x0F}, {"3", 2, 2, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 3);
    w.b.default_mem_per_cpu = 100;
    bjob_t j;
    spec(&j, 4, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.ntasks_per_socket = 1;
    phx_bf_share_t sh[2] = {{1, 2, 2, 200, 0, {0}}, {2, 2, 2, 200, 0, {0}}};
    phx_bf_decision_t d = {PHX_BF_RESERVED, 1100, sh, 2, 0, 0};
    json_t *r = batchd_gang_request(&w.b, &j, &d, "job-42-1");
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "job-42-1");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "socket");
    assert_int_equal(req_int(r, "bundles"), 4);
    assert_int_equal(req_int(r, "cpus"), 1);
    assert_int_equal(req_int(r, "mem"), 100);
    assert_null(json_object_get(r, "per_agent")); /* no --ntasks-per-node */
    assert_int_equal(req_int(r, "per_socket"), 1);
    assert_int_equal(req_int(r, "min_agents"), 2);
    assert_int_equal(req_int(r, "max_agents"), 2); /* -N 2: not 4 nodes of 1 */
    assert_int_equal(req_int(r, "duration_seconds"), 60);
    assert_null(json_object_get(r, "agents"));
    json_decref(r);

    /* --mem per node: all of it on each node used, however few tasks it
     * gets (a share per task under-asked a node given one); --mem=0: all
     * of each node's memory */
    j.spec.mem_per_node = 1000;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_int_equal(req_int(r, "mem"), 0);
    assert_int_equal(req_int(r, "agent_mem"), 1000);
    assert_null(json_object_get(r, "whole_mem"));
    json_decref(r);
    j.spec.mem_per_node = 0;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_int_equal(req_int(r, "mem"), 0);
    assert_null(json_object_get(r, "agent_mem"));
    assert_true(json_is_true(json_object_get(r, "whole_mem")));
    json_decref(r);
    /* a node range up to the task count: no most; -n 4 without -N: 1 node
     * or more although the planner chose 2 */
    spec(&j, 4, 1, 4);
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_null(json_object_get(r, "max_agents"));
    assert_int_equal(req_int(r, "min_agents"), 1);
    json_decref(r);

    /* no cap per socket: "any" bundles; -N 2 -n 6 on nodes the planner
     * gave 4 and 2 tasks: its own limits, 2 nodes, not the planner's 4 */
    spec(&j, 6, 1, 2);
    j.spec.nodes_min = 2;
    phx_bf_share_t uneven[2] = {{0, 4, 4, 400, 0, {0}}, {1, 2, 2, 200, 0, {0}}};
    d.shares = uneven;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "any");
    assert_int_equal(req_int(r, "bundles"), 6);
    assert_int_equal(req_int(r, "cpus"), 1);
    assert_int_equal(req_int(r, "mem"), 100);
    assert_null(json_object_get(r, "per_agent"));
    assert_int_equal(req_int(r, "min_agents"), 2);
    assert_int_equal(req_int(r, "max_agents"), 2);
    assert_null(json_object_get(r, "per_socket"));
    json_decref(r);
    /* without the planner's nodes: the tasks spread over nodes_min */
    spec(&j, 6, 2, 3);
    j.spec.nodes_min = 3;
    j.spec.ntasks_per_node = 4;
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_int_equal(req_int(r, "bundles"), 6);
    assert_int_equal(req_int(r, "cpus"), 2);
    assert_int_equal(req_int(r, "per_agent"), 4);
    assert_int_equal(req_int(r, "min_agents"), 3);
    assert_int_equal(req_int(r, "mem"), 200);
    json_decref(r);

    /* exclusive: whole nodes, the smallest of the planner's */
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.ntasks_per_socket = 1;
    j.spec.exclusive = 1;
    phx_bf_share_t whole[2] = {{0, 1, 4, 65536, 0, {0}}, {1, 1, 2, 32768, 0, {0}}};
    d.shares = whole;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "any");
    assert_int_equal(req_int(r, "bundles"), 2);
    assert_int_equal(req_int(r, "cpus"), 2);
    assert_int_equal(req_int(r, "mem"), 32768);
    assert_int_equal(req_int(r, "per_agent"), 1);
    assert_int_equal(req_int(r, "min_agents"), 2);
    assert_true(json_is_true(json_object_get(r, "whole_agent")));
    json_decref(r);

    /* a node shape: the usable nodes that have it */
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    w.b.nodes[2].usable = false;
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    const json_t *agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 1);
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "2");
    json_decref(r);
    world_clear(&w);
}

/* A GPU job asks its GPUs as placement counts them: --gres (and
 * --gpus-per-node, -G) per node used, --gpus-per-task per bundle, an
 * exclusive job every GPU of its whole nodes; only on the nodes with enough
 * GPUs of its type (the master counts GPUs, not their models). */
static void gang_request_gpus(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"1", 2, 4, 1, 0xFF}, {"2", 2, 4, 1, 0xFF}, {"3", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    const char *models[3][4] = {
        {"NVIDIA A100", "NVIDIA A100"},
        {"NVIDIA A100", "NVIDIA A100", "Tesla V100", "Tesla V100"},
        {NULL}};
    for (size_t i = 0; i < 2; i++) {
        bnode_t *n = &w.b.nodes[i];
        n->ngpus = i ? 4 : 2;
        n->gpu = calloc(n->ngpus, sizeof(*n->gpu));
        assert_non_null(n->gpu);
        for (uint32_t g = 0; g < n->ngpus; g++) {
            n->gpu[g].id = (int)g;
            snprintf(n->gpu[g].model, sizeof(n->gpu[g].model), "%s", models[i][g]);
        }
    }
    bjob_t j;
    spec(&j, 2, 1, 2);
    j.spec.gres = "gpu:2";
    json_t *r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_int_equal(req_int(r, "agent_gpus"), 2);
    assert_null(json_object_get(r, "gpus"));
    const json_t *agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 2); /* not node 3 */
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "1");
    assert_string_equal(json_string_value(json_array_get(agents, 1)), "2");
    json_decref(r);
    free(j.nodes_ok);

    /* a type: node 2 only; 3 GPUs per task: the node with 4 */
    spec(&j, 2, 1, 2);
    j.spec.gres = "gpu:v100:2";
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_int_equal(req_int(r, "agent_gpus"), 2);
    agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 1);
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "2");
    json_decref(r);
    free(j.nodes_ok);
    spec(&j, 2, 1, 2);
    j.spec.gpus_per_task = "3";
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_int_equal(req_int(r, "gpus"), 3);
    assert_int_equal(req_int(r, "bundles"), 2);
    assert_null(json_object_get(r, "agent_gpus"));
    agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 1);
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "2");
    json_decref(r);
    free(j.nodes_ok);

    /* exclusive: whole nodes, every GPU of them (whole_agent) */
    spec(&j, 1, 1, 1);
    j.spec.gres = "gpu:1";
    j.spec.exclusive = 1;
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_true(json_is_true(json_object_get(r, "whole_agent")));
    assert_null(json_object_get(r, "gpus"));
    assert_null(json_object_get(r, "agent_gpus"));
    assert_int_equal(json_array_size(json_object_get(r, "agents")), 2);
    json_decref(r);
    free(j.nodes_ok);
    for (size_t i = 0; i < 3; i++)
        free(w.b.nodes[i].gpu);
    world_clear(&w);
}

/* The master refused a gang request: batchd forgets it and asks again in
 * 30 s (it stood for 300 s); a late answer to an older request or a 202
 * changes nothing. */
static void gang_request_refused(void **state)
{
    (void)state;
    batchd_t b = {0};
    bjob_t j;
    spec(&j, 1, 1, 1);
    found_job = &j;
    const char *answers[][2] = {
        {"202", "job-42-7"}, {"400", "job-42-6"}, {"400", "job-42-7"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(j.request_id, sizeof(j.request_id), "job-42-7");
        j.request_after = 0;
        request_ctx_t *ctx = calloc(1, sizeof(*ctx));
        assert_non_null(ctx);
        ctx->b = &b;
        ctx->job_id = 42;
        snprintf(ctx->request_id, sizeof(ctx->request_id), "%s", answers[i][1]);
        request_answered(NULL, atoi(answers[i][0]), "too big", ctx);
        if (i < 2) {
            assert_string_equal(j.request_id, "job-42-7");
            assert_int_equal(j.request_after, 0);
        } else {
            assert_string_equal(j.request_id, "");
            assert_int_equal(j.request_after, 1030);
        }
    }
    found_job = NULL;
}

/* --- EASY backfill on the offers (sched.c offer_allows) --- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gang_request_describes_the_job),
        cmocka_unit_test(gang_request_refused),
        cmocka_unit_test(gang_request_gpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
