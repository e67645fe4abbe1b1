/* batchd's side of -w, -x and -C (daemons/batchd/features.c, nodesel.c):
 * the site's node features from batchd.node_features, the check at
 * submit, the bitmap of a job's nodes, and its use by every part that
 * chooses nodes: the offers (sched.c), the gang request (gang.c), the
 * submit check (cluster.c) and the EASY planner (backfill.c), whose
 * reservation must be on the nodes the job may use.  The sources, stubs
 * and world of nodes and offers: batch_world.h. */
#include "tests/unit/batch_world.h"

static const phx_conf_key_t schema[] = {
    {"batchd.node_features", PHX_CONF_STRLIST, "", 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

static int features(const char *text, bfeatures_t *f, phx_error_t *err)
{
    phx_conf_t *c = phx_conf_load_string(schema, text, "test.conf", err);
    if (!c)
        fail_msg("config: %s", err->text);
    int rc = batchd_features_make(c, f, err);
    phx_conf_destroy(c);
    return rc;
}

static void features_from_the_configuration(void **state)
{
    (void)state;
    bfeatures_t f, g;
    phx_error_t err = {{0}};
    assert_int_equal(features("batchd: { node_features = [\"NodeName=n[1-2] "
                              "Features=skl,ib\", \"nodename=n2,n3 "
                              "AvailableFeatures=bigmem\"]; };",
                              &f, &err),
                     0);
    assert_int_equal(f.n, 3);
    assert_int_equal(batchd_features_node(&f, "n1"), 3);
    assert_int_equal(batchd_features_node(&f, "n2"), 7); /* both lines */
    assert_int_equal(batchd_features_node(&f, "n3"), 4);
    assert_int_equal(batchd_features_node(&f, "n4"), 0);
    char buf[64];
    batchd_features_format(&f, 7, buf, sizeof(buf));
    assert_string_equal(buf, "skl,ib,bigmem");
    assert_int_equal(features("batchd: { node_features = [\"NodeName=n[1-2] "
                              "Features=skl,ib\", \"nodename=n2,n3 "
                              "AvailableFeatures=bigmem\"]; };",
                              &g, &err),
                     0);
    assert_true(batchd_features_same(&f, &g));
    batchd_features_clear(&g);
    assert_int_equal(features("batchd: { node_features = [\"NodeName=n[1-2] "
                              "Features=skl,ib\"]; };",
                              &g, &err),
                     0);
    assert_false(batchd_features_same(&f, &g));
    batchd_features_clear(&g);
    batchd_features_clear(&f);
    assert_int_equal(features("", &f, &err), 0); /* none: no feature */
    assert_int_equal(f.n, 0);
    batchd_features_clear(&f);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"NodeName=n1 Features=a CPUs=4",
         "batchd.node_features[0] \"NodeName=n1 Features=a CPUs=4\": unknown key "
         "\"CPUs\" (NodeName and Features are read; a node's cores, sockets and "
         "memory come from its agent)"},
        {"NodeName=n1", "no Features= (names, separated by ',')"},
        {"Features=a", "no NodeName= (a host list)"},
        {"NodeName=n1 Features=a,,b", "\"\" is not a feature name"},
        {"NodeName=n1 Features=a&b", "\"a&b\" is not a feature name"},
        {"NodeName=n[1-", "NodeName: "},
        {"NodeName=n1 Features=a Features=b", "Features given twice"},
        {"NodeName=n1 NodeName=n2 Features=a", "NodeName given twice"},
        {"NodeName=n1 Features", "\"Features\" is not KEY=VALUE"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "batchd: { node_features = [\"%s\"]; };",
                 bad[i].text);
        assert_int_equal(features(text, &f, &err), -1);
        if (!strstr(err.text, bad[i].want))
            fail_msg("\"%s\": expected \"%s\" in \"%s\"", bad[i].text, bad[i].want,
                     err.text);
        assert_int_equal(f.n, 0);
    }
    /* 65 names: one too many for a node's 64-bit mask */
    char text[1024] = "batchd: { node_features = [\"NodeName=n1 Features=f0";
    for (int i = 1; i < 65; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), ",f%d", i);
    strcat(text, "\"]; };");
    assert_int_equal(features(text, &f, &err), -1);
    assert_non_null(strstr(err.text, "more than 64 feature names"));
}

/* A world of s1 (4 cores, features skl), s2 (8 cores, skl and ib) and c8
 * (8 cores, ib), every core free. */
static void world_with_features(world_t *w)
{
    static const shape_t nodes[3] = {
        {"s1", 1, 4, 1, 0x0F}, {"s2", 2, 4, 1, 0xFF}, {"c8", 1, 8, 1, 0xFF}};
    world_init(w, nodes, 3);
    phx_error_t err = {{0}};
    assert_int_equal(features("batchd: { node_features = [\"NodeName=s[1-2] "
                              "Features=skl\", \"NodeName=s2,c8 Features=ib\"]; };",
                              &w->b.features, &err),
                     0);
    for (size_t i = 0; i < w->b.nnodes; i++)
        w->b.nodes[i].features =
            batchd_features_node(&w->b.features, w->b.nodes[i].name);
}

static void world_drop(world_t *w)
{
    batchd_features_clear(&w->b.features);
    world_clear(w);
}

static void job_done(world_t *w, bjob_t *j)
{
    job_clear(w, j);
    free(j->nodes_ok);
    j->nodes_ok = NULL;
}

static uint64_t bits(world_t *w, bjob_t *j)
{
    const uint64_t *m = batchd_job_nodes(&w->b, j);
    return m ? m[0] : UINT64_MAX;
}

/* The bitmap: -w's nodes, less -x's, less those without -C's features. */
static void bitmap_of_a_job(void **state)
{
    (void)state;
    world_t w;
    world_with_features(&w);
    bjob_t j;
    spec(&j, 1, 1, 1);
    assert_null(batchd_job_nodes(&w.b, &j)); /* names nothing: any node */
    j.spec.nodelist = "s[1-2]";
    assert_int_equal(bits(&w, &j), 3);
    j.spec.exclude = "s1";
    free(j.nodes_ok), j.nodes_ok = NULL;
    assert_int_equal(bits(&w, &j), 2);
    j.spec.nodelist = NULL;
    free(j.nodes_ok), j.nodes_ok = NULL;
    assert_int_equal(bits(&w, &j), 6);
    j.spec.exclude = NULL;
    j.spec.constraint = "ib";
    free(j.nodes_ok), j.nodes_ok = NULL;
    assert_int_equal(bits(&w, &j), 6);
    j.spec.constraint = "skl&ib";
    free(j.nodes_ok), j.nodes_ok = NULL;
    assert_int_equal(bits(&w, &j), 2);
    j.spec.constraint = "skl|ib";
    free(j.nodes_ok), j.nodes_ok = NULL;
    assert_int_equal(bits(&w, &j), 7);
    /* kept until the nodes or features change; then made again */
    const uint64_t *kept = batchd_job_nodes(&w.b, &j);
    assert_ptr_equal(batchd_job_nodes(&w.b, &j), kept);
    w.b.nodes[0].features = 0; /* as a reload that dropped s1's skl */
    w.b.nodes_gen++;
    assert_int_equal(bits(&w, &j), 6);
    /* a feature the site no longer has: no node has it, the others count */
    j.spec.constraint = "gpu";
    w.b.nodes_gen++;
    assert_int_equal(bits(&w, &j), 0);
    j.spec.constraint = "ib|gpu";
    w.b.nodes_gen++;
    assert_int_equal(bits(&w, &j), 6);
    free(j.nodes_ok);
    world_drop(&w);
}

/* At submit: unknown nodes and features are named, with the option. */
static void submit_check_names(void **state)
{
    (void)state;
    world_t w;
    world_with_features(&w);
    bjob_t j;
    phx_error_t err = {{0}};
    size_t field;
    spec(&j, 1, 1, 1);
    j.spec.nodelist = "s1,n9";
    assert_int_equal(batchd_nodesel_check(&w.b, &j.spec, &field, &err), -1);
    assert_string_equal(err.text, "--nodelist s1,n9: no node is named n9");
    assert_int_equal(field, offsetof(phx_jobspec_t, nodelist));
    j.spec.nodelist = NULL;
    j.spec.exclude = "x[1-3]";
    assert_int_equal(batchd_nodesel_check(&w.b, &j.spec, &field, &err), -1);
    assert_string_equal(
        err.text, "--exclude x[1-3]: no node is named x1 (nor others of the list)");
    assert_int_equal(field, offsetof(phx_jobspec_t, exclude));
    j.spec.exclude = "c8";
    j.spec.constraint = "skl&gpu";
    assert_int_equal(batchd_nodesel_check(&w.b, &j.spec, &field, &err), -1);
    assert_string_equal(err.text,
                        "--constraint \"skl&gpu\": no node has feature \"gpu\" "
                        "(the features are: skl, ib)");
    assert_int_equal(field, offsetof(phx_jobspec_t, constraint));
    j.spec.constraint = "skl";
    assert_int_equal(batchd_nodesel_check(&w.b, &j.spec, &field, &err), 0);
    /* names that exist but leave no node that can hold the job */
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    spec(&j, 1, 1, 1);
    j.spec.exclude = "s[1-2]";
    j.spec.constraint = "skl";
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_string_equal(err.text, "requested node configuration is not available: no "
                                  "node of the cluster is one that --exclude=s[1-2] "
                                  "--constraint=\"skl\" allows");
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.constraint = "skl&ib";
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "2 nodes asked, the cluster has 1 that its -w, -x "
                                     "and -C allow"));
    spec(&j, 12, 1, 2); /* 4 + 8: uneven, as placement does when it must */
    j.spec.nodelist = "s1,c8";
    j.spec.nodes_min = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    j.spec.ntasks = 13;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "do not fit"));
    spec(&j, 5, 1, 1); /* s1 has 4 cores; c8 would hold it */
    j.spec.nodelist = "s1";
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    assert_non_null(strstr(err.text, "do not fit"));
    world_drop(&w);
}

/* The offers: a job goes only where its -w, -x and -C allow, even where
 * another node fits it better. */
static void offers_honour_the_choice(void **state)
{
    (void)state;
    world_t w;
    world_with_features(&w);
    bjob_t j;
    char got[128];
    spec(&j, 4, 1, 1); /* s1 is the tightest fit */
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s1:4");
    job_done(&w, &j);
    world_drop(&w);

    world_with_features(&w);
    spec(&j, 4, 1, 1);
    j.spec.exclude = "s1";
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s2:4");
    job_done(&w, &j);
    world_drop(&w);

    world_with_features(&w);
    spec(&j, 4, 1, 1);
    j.spec.constraint = "ib";
    j.spec.nodelist = "c8";
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "c8:4");
    job_done(&w, &j);
    world_drop(&w);

    world_with_features(&w);
    spec(&j, 12, 1, 2); /* -w s1,c8: both, whatever fits better */
    j.spec.nodes_min = 2;
    j.spec.nodelist = "s1,c8";
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_non_null(strstr(got, "s1:4"));
    assert_non_null(strstr(got, "c8:8"));
    job_done(&w, &j);
    spec(&j, 1, 1, 1); /* s1 and c8 are full now; skl: s2 only */
    j.spec.constraint = "skl";
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s2:1");
    job_done(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.exclude = "s2";
    assert_int_equal(start(&w, &j, got, sizeof(got)), -1);
    free(j.nodes_ok);
    world_drop(&w);
}

/* The gang request lists the nodes the job may use, and only those. */
static void gang_request_lists_the_nodes(void **state)
{
    (void)state;
    world_t w;
    world_with_features(&w);
    bjob_t j;
    spec(&j, 2, 1, 1);
    json_t *r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_null(json_object_get(r, "agents")); /* any node */
    json_decref(r);
    j.spec.constraint = "ib";
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    json_t *agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 2);
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "s2");
    assert_string_equal(json_string_value(json_array_get(agents, 1)), "c8");
    json_decref(r);
    free(j.nodes_ok);
    world_drop(&w);
}

/* The planner: a job that may use only a busy node is reserved there, at
 * its release, though another node is free now; a later job may not take
 * the reserved node if it would delay that start. */
static void planner_reserves_on_allowed_nodes(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {{.cores_total = 4,
                               .cores_free = 0,
                               .mem_total = 100,
                               .mem_free = 100,
                               .usable = true},
                              {.cores_total = 4,
                               .cores_free = 4,
                               .mem_total = 100,
                               .mem_free = 100,
                               .usable = true}};
    phx_bf_share_t held = {0, 1, 4, 0, 0, {0}};
    phx_bf_running_t run = {1, 1000 + 600, &held, 1};
    uint64_t node0 = 1, node1 = 2;
    phx_bf_request_t pending[3] = {{.job_id = 2,
                                    .nodes_min = 1,
                                    .nodes_max = 1,
                                    .ntasks = 4,
                                    .cpus_per_task = 1,
                                    .time_limit = 100,
                                    .only = &node0},
                                   {.job_id = 3,
                                    .nodes_min = 1,
                                    .nodes_max = 1,
                                    .ntasks = 4,
                                    .cpus_per_task = 1,
                                    .time_limit = 1000},
                                   {.job_id = 4,
                                    .nodes_min = 1,
                                    .nodes_max = 1,
                                    .ntasks = 4,
                                    .cpus_per_task = 1,
                                    .time_limit = 100,
                                    .only = &node1}};
    phx_bf_input_t in = {1000, nodes, 2, &run, 1, pending, 3, 0};
    phx_bf_plan_t plan;
    phx_error_t err = {{0}};
    assert_int_equal(phx_backfill_plan(&in, NULL, &plan, &err), 0);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 1600);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    /* node 1 is free and the reservation is on node 0: the long job runs */
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_BACKFILL);
    assert_int_equal(plan.decisions[1].shares[0].node, 1);
    /* -w node 1, now full */
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_WAIT);
    phx_backfill_plan_clear(&plan);
    /* -w on a node that cannot ever hold it */
    pending[0].only = &node0;
    pending[0].ntasks = 5;
    in.npending = 1;
    assert_int_equal(phx_backfill_plan(&in, NULL, &plan, &err), 0);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
    (void)node1;
}

/* The planner's fit on empty nodes is kept by shape, but never for a job
 * that names its nodes: a job allowed only a small node cannot fit, and a
 * job of the same shape without a choice must still fit. */
static void planner_memo_not_shared(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {{.cores_total = 2,
                               .cores_free = 2,
                               .mem_total = 100,
                               .mem_free = 100,
                               .usable = true},
                              {.cores_total = 8,
                               .cores_free = 0,
                               .mem_total = 100,
                               .mem_free = 100,
                               .usable = true}};
    phx_bf_share_t held = {1, 1, 8, 0, 0, {0}};
    phx_bf_running_t run = {1, 1000 + 600, &held, 1};
    uint64_t small = 1;
    phx_bf_request_t pending[2] = {{.job_id = 2,
                                    .nodes_min = 1,
                                    .nodes_max = 1,
                                    .ntasks = 4,
                                    .cpus_per_task = 1,
                                    .time_limit = 100,
                                    .only = &small},
                                   {.job_id = 3,
                                    .nodes_min = 1,
                                    .nodes_max = 1,
                                    .ntasks = 4,
                                    .cpus_per_task = 1,
                                    .time_limit = 100}};
    phx_bf_input_t in = {1000, nodes, 2, &run, 1, pending, 2, 0};
    phx_bf_plan_t plan;
    phx_error_t err = {{0}};
    assert_int_equal(phx_backfill_plan(&in, NULL, &plan, &err), 0);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_NEVER);
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[1].shares[0].node, 1);
    phx_backfill_plan_clear(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(features_from_the_configuration),
        cmocka_unit_test(bitmap_of_a_job),
        cmocka_unit_test(submit_check_names),
        cmocka_unit_test(offers_honour_the_choice),
        cmocka_unit_test(gang_request_lists_the_nodes),
        cmocka_unit_test(planner_reserves_on_allowed_nodes),
        cmocka_unit_test(planner_memo_not_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
