/* batchd's choice of nodes (daemons/batchd/sched.c) and the submit check
 * (cluster.c) over offer JSON, with the real packing (place.c) and planner
 * count (backfill.c): a job goes where batchd_place can put it.
 *
 *   - --ntasks-per-socket spreads a job over nodes when one node's sockets
 *     cannot hold it, and a job no set of nodes can hold is refused;
 *   - a task keeps its cores on one socket when some offer allows it, and
 *     spans sockets only as the last resort;
 *   - --sockets-per-node, --cores-per-socket, --threads-per-core choose
 *     nodes, and refuse at submit when no node qualifies;
 *   - --hint=memory_bound puts one task per socket.
 *
 * The sources, stubs and the world of nodes and offers: batch_world.h; the
 * gang request: test_batch_gang.c. */
#include "tests/unit/batch_world.h"

static void per_socket_spreads_over_nodes(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 4, 1, 4);
    j.spec.ntasks_per_socket = 1;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2,a2:2");
    cores_are(0, (int[]){0, 4}, 2);
    cores_are(1, (int[]){0, 4}, 2);
    assert_int_equal(j.state, PHX_JOB_RUNNING);
    job_clear(&w, &j);
    world_clear(&w);
}

/* With socket 1 of a1 busy, a1 holds one task: a 2-task job at one per
 * socket goes to a2, which holds both. */
static void per_socket_counts_free_sockets(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0x0F}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 2, 2, 1);
    j.spec.ntasks_per_socket = 1;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:2");
    cores_are(0, (int[]){0, 1, 4, 5}, 4);
    job_clear(&w, &j);
    world_clear(&w);
}

/* At submit: 4 tasks at one per socket need 2 nodes of 2 sockets; one node
 * refuses it, two accept it; a task larger than a socket cannot stay in one. */
static void per_socket_submit_check(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 4, 1, 4);
    j.spec.ntasks_per_socket = 1;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    w.b.nnodes = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "requested node configuration is not available"));
    assert_non_null(strstr(err.text, "per socket"));
    w.b.nnodes = 2;
    spec(&j, 2, 5, 2);
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0); /* spans */
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "largest socket has 4 cores"));
    world_clear(&w);
}

/* --- exactly N nodes --- */

/* -N 2 -n 6 spreads its tasks evenly (3 + 3, as Slurm's block layout) when
 * the nodes allow, else as they allow (4 + 2 on nodes of 4 and 2 free
 * cores): the planner says it starts, so placement must not refuse it
 * (it pended forever). */
static void exact_nodes_even_else_as_they_fit(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 1, 4, 1, 0x0F}, {"a2", 1, 4, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 6, 1, 2);
    j.spec.nodes_min = 2;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:3,a2:3");
    job_clear(&w, &j);
    world_clear(&w);

    shape_t uneven[2] = {{"a1", 1, 4, 1, 0x0F}, {"a2", 1, 2, 1, 0x03}};
    world_init(&w, uneven, 2);
    spec(&j, 6, 1, 2);
    j.spec.nodes_min = 2;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:4,a2:2");
    job_clear(&w, &j);
    world_clear(&w);
}

/* --- a task's cores on one socket --- */

/* a1 has 3 + 3 free cores, a2 a whole free socket: a 4-core task goes to
 * a2, inside socket 0, although a1 is the tighter fit by core count. */
static void task_stays_in_a_socket(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0x77}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 1, 4, 1);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    cores_are(0, (int[]){0, 1, 2, 3}, 4);
    job_clear(&w, &j);
    world_clear(&w);
}

/* Only a1 (3 + 3 free): the task spans its sockets, the last resort. */
static void task_spans_sockets_last(void **state)
{
    (void)state;
    shape_t nodes[1] = {{"a1", 2, 4, 1, 0x77}};
    world_t w;
    world_init(&w, nodes, 1);
    bjob_t j;
    spec(&j, 1, 4, 1);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:1");
    cores_are(0, (int[]){0, 1, 2, 4}, 4);
    job_clear(&w, &j);
    /* with --ntasks-per-socket a task never spans: no room */
    spec(&j, 1, 4, 1);
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(start(&w, &j, got, sizeof(got)), -1);
    world_clear(&w);
}

/* 2 tasks of 3 cores, -N 1-2: a1 (3 + 3 free) holds both inside sockets;
 * a2 (4 + 2 free) only one: a1 wins although it has as many free cores. */
static void prefers_tasks_inside_sockets(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a2", 2, 4, 1, 0x3F}, {"a1", 2, 4, 1, 0x77}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 2, 3, 2);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2");
    cores_are(0, (int[]){0, 1, 2, 4, 5, 6}, 6);
    job_clear(&w, &j);
    world_clear(&w);
}

/* 2 tasks of 4 cores, -N 1-2, sockets of 6 cores: a1 has 5 + 3 free (both
 * tasks by core count, one of them spanning its sockets), a2 4 + 0.  Each
 * node holds one task inside a socket: the job takes both rather than
 * split a task on a1 (node 0 a1, the first of its list a[1-2]). */
static void two_nodes_rather_than_span(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 6, 1, 0x1DF}, {"a2", 2, 6, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 2, 4, 2);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:1,a2:1");
    cores_are(0, (int[]){0, 1, 2, 3}, 4);
    cores_are(1, (int[]){0, 1, 2, 3}, 4);
    job_clear(&w, &j);
    world_clear(&w);
}

/* --- node constraints and hints --- */

static void node_constraints_choose_nodes(void **state)
{
    (void)state;
    /* s1: 1 socket of 4 cores, 1 thread; s2: 2 sockets of 4, 2 threads;
     * c8: 1 socket of 8 cores, 1 thread.  s1 is the tightest fit. */
    shape_t nodes[3] = {
        {"s1", 1, 4, 1, 0x0F}, {"s2", 2, 4, 2, 0xFF}, {"c8", 1, 8, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    bjob_t j;
    char got[128];
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s2:1");
    job_clear(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.threads_per_core = 2;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s2:1");
    job_clear(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.cores_per_socket = 8;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "c8:1");
    job_clear(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    j.spec.cores_per_socket = 8;
    assert_int_equal(start(&w, &j, got, sizeof(got)), -1);
    world_clear(&w);
}

static void node_constraints_at_submit(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"s1", 1, 4, 1, 0x0F}, {"s2", 2, 4, 2, 0xFF}, {"c8", 1, 8, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    bjob_t j;
    phx_error_t err = {{0}};
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    j.spec.sockets_per_node = 4;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "no node has 4 sockets (--sockets-per-node"));
    spec(&j, 1, 1, 1);
    j.spec.cores_per_socket = 16;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "16 cores per socket (--cores-per-socket"));
    spec(&j, 1, 1, 1);
    j.spec.threads_per_core = 4;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "4 threads per core (--threads-per-core"));
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    j.spec.cores_per_socket = 8;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "all of -B 2:8:* (sockets"));
    /* two nodes of 2 sockets asked, one qualifies */
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "the cluster has 1 of the shape asked"));
    world_clear(&w);
}

/* --hint=memory_bound: one task per socket (Slurm: one core per socket). */
static void hint_memory_bound(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 3, 1, 3);
    j.spec.hint = (char *)"memory_bound";
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2,a2:1");
    cores_are(0, (int[]){0, 4}, 2);
    job_clear(&w, &j);
    spec(&j, 3, 1, 3);
    j.spec.hint = (char *)"compute_bound";
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:3"); /* the fewest free cores: 6, a2 has 7 */
    cores_are(0, (int[]){1, 2, 3}, 3);
    job_clear(&w, &j);
    world_clear(&w);
}

/* Behind a blocked top job, a later job starts only where the planner put
 * it (the nodes it checked do not delay the reservation), on a lent offer
 * only if its time limit ends by the offer's release_by, and never on an
 * offer held for another job's gang request; nothing is blocked: anywhere. */
static void easy_offers_never_delay_the_reservation(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 1, 4, 1, 0x7}, {"a2", 1, 4, 1, 0xF}};
    world_t w;
    world_init(&w, nodes, 2);
    const bnode_t *pn[2] = {&w.b.nodes[0], &w.b.nodes[1]};
    phx_bf_share_t on_a2 = {.node = 1, .tasks = 1, .cores = 1};
    phx_bf_decision_t d = {.verdict = PHX_BF_BACKFILL, .shares = &on_a2, .nshares = 1};
    w.p.pnodes = pn;
    w.p.cur = &d;
    bjob_t j, other;
    spec(&j, 1, 1, 1);
    spec(&other, 1, 1, 1);
    boffer_t *o1 = &w.p.offers[0], *o2 = &w.p.offers[1];

    /* Not blocked: both, and the best fit (a1, fewer free cores) wins. */
    assert_true(offer_allows(&w.p, o1, &j) && offer_allows(&w.p, o2, &j));
    /* Another pool blocked (the nodes are of partition 2: pool 2): still
     * both.  A pool is blocked for the offers of its nodes. */
    phx_bf_node_t pn_parts[2] = {{.parts = 4}, {.parts = 4}};
    phx_bf_pools_init(&w.p.pools, pn_parts, 2);
    w.b.nodes[0].parts = w.b.nodes[1].parts = 4;
    w.p.blocked[5] = w.p.any_blocked = true;
    assert_true(offer_allows(&w.p, o1, &j) && offer_allows(&w.p, o2, &j));
    /* Blocked: only the planner's node, even though a1 fits better. */
    w.p.blocked[2] = true;
    assert_false(offer_allows(&w.p, o1, &j));
    assert_true(offer_allows(&w.p, o2, &j));
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    job_clear(&w, &j);
    o2->used = false;
    o2->accepted = false;
    /* The planner's verdict is not START or BACKFILL: nowhere. */
    static const phx_bf_verdict_t no[] = {PHX_BF_RESERVED, PHX_BF_WAIT, PHX_BF_NEVER,
                                          PHX_BF_NOT_TESTED};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        d.verdict = no[i];
        assert_false(offer_allows(&w.p, o1, &j));
        assert_false(offer_allows(&w.p, o2, &j));
    }
    spec(&j, 1, 1, 1);
    assert_int_not_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "");
    /* A lent offer (release_by): a job that ends by then, whatever the
     * planner said; one that ends later or has no limit, never.  now is
     * whole seconds, so the job may end a second past now + its limit: at
     * release_by exactly is too late (that let t0330's small jobs pass its
     * big one once the planner saw busy nodes busy). */
    o1->release_by = (double)w.p.now + 60;
    j.spec.time_limit = 59;
    assert_true(offer_allows(&w.p, o1, &j));
    j.spec.time_limit = 60;
    assert_false(offer_allows(&w.p, o1, &j));
    j.spec.time_limit = 0; /* UNLIMITED */
    assert_false(offer_allows(&w.p, o1, &j));
    w.p.blocked[2] = false;
    assert_false(offer_allows(&w.p, o1, &j));
    /* Held for a gang request: only its job, release_by or not. */
    o1->owner = &other;
    j.spec.time_limit = 10;
    assert_false(offer_allows(&w.p, o1, &j));
    assert_true(offer_allows(&w.p, o1, &other));
    w.p.blocked[2] = true;
    assert_true(offer_allows(&w.p, o1, &other));
    /* Used by this pass already: nobody. */
    o1->used = true;
    assert_false(offer_allows(&w.p, o1, &other));
    w.p.cur = NULL;
    w.p.pnodes = NULL;
    world_clear(&w);
}

/* The submit check caps tasks per node only as the choice of nodes does:
 * a node range takes on one node all it holds (the cap used to be spread
 * over every known node, refusing this job that starts on one node); an
 * exact -N spreads evenly.  The largest socket of 7 cores over 2 is 4. */
static void submit_check_node_range(void **state)
{
    (void)state;
    shape_t nodes[4] = {{"a", 2, 4, 1, 0xFF},
                        {"b", 2, 4, 1, 0xFF},
                        {"c", 1, 8, 1, 0xFF},
                        {"d", 1, 8, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 4);
    bjob_t j;
    char got[128];
    phx_error_t err = {{0}};
    spec(&j, 8, 1, 4);
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a:8");
    job_clear(&w, &j);
    spec(&j, 16, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    spec(&j, 18, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "do not fit"));
    world_clear(&w);

    shape_t odd[1] = {{"o", 2, 4, 1, 0x7F}};
    world_init(&w, odd, 1);
    w.b.nodes[0].cores = 7;
    spec(&j, 1, 4, 1);
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    spec(&j, 1, 5, 1);
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "largest socket has 4 cores"));
    world_clear(&w);
}

/* Offers of n10 before n9: the job's nodes are in the order of its list
 * n[9-10], node 0 (the script's, task id 42.0) n9, as PHX_NODEID and
 * PHX_TASKS_PER_NODE count them (they once followed the offers: n10 first
 * under a list that names n9 first). */
static void nodes_in_list_order(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"n10", 1, 4, 1, 0x0F}, {"login1", 1, 2, 1, 0x03}, {"n9", 1, 4, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 3);
    bjob_t j;
    spec(&j, 10, 1, 3);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(j.node_list, "n[9-10],login1");
    assert_string_equal(got, "n9:4,n10:4,login1:2");
    assert_string_equal(j.tasks[0].id, "42.0");
    assert_string_equal(j.tasks[0].host, "n9");
    assert_string_equal(j.tasks[2].id, "42.2");
    job_clear(&w, &j);
    world_clear(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_socket_spreads_over_nodes),
        cmocka_unit_test(per_socket_counts_free_sockets),
        cmocka_unit_test(per_socket_submit_check),
        cmocka_unit_test(task_stays_in_a_socket),
        cmocka_unit_test(task_spans_sockets_last),
        cmocka_unit_test(prefers_tasks_inside_sockets),
        cmocka_unit_test(two_nodes_rather_than_span),
        cmocka_unit_test(node_constraints_choose_nodes),
        cmocka_unit_test(node_constraints_at_submit),
        cmocka_unit_test(hint_memory_bound),
        cmocka_unit_test(easy_offers_never_delay_the_reservation),
        cmocka_unit_test(submit_check_node_range),
        cmocka_unit_test(exact_nodes_even_else_as_they_fit),
        cmocka_unit_test(nodes_in_list_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
