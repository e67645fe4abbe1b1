/* batchd's placement of GPU jobs (daemons/batchd/gpus.c, sched.c,
 * cluster.c, nodesel.c): nodes without the GPUs asked are passed over, a
 * share's GPUs are those local to its cores first, a type names the GPUs'
 * model, --gpus-per-task caps the tasks of a node, exclusive jobs take
 * every GPU of a node, and the submit check names what no node has. */
#include "tests/unit/batch_world.h"

/* Node i gets n GPUs of model `model`, device ids 0..n-1, GPUs 0..n/2-1
 * local to socket 0's NUMA domain and the others to socket 1's; free:
 * bit g set when GPU g is offered. */
static void gpus_on(world_t *w, size_t i, uint32_t n, const char *model, uint64_t free)
{
    bnode_t *bn = &w->b.nodes[i];
    bn->gpu = calloc(n, sizeof(*bn->gpu));
    assert_non_null(bn->gpu);
    bn->ngpus = n;
    for (uint32_t g = 0; g < n; g++) {
        bn->gpu[g].id = (int)g;
        snprintf(bn->gpu[g].model, sizeof(bn->gpu[g].model), "%s", model);
    }
    boffer_t *o = &w->p.offers[i];
    o->gpus = free;
    for (int k = 0; k < o->nnumas; k++)
        o->numas[k].gpus =
            free & (o->numas[k].socket == 0 ? (UINT64_C(1) << (n / 2)) - 1
                                            : ~((UINT64_C(1) << (n / 2)) - 1));
}

static void gpus_clear(world_t *w)
{
    for (size_t i = 0; i < w->b.nnodes; i++)
        free(w->b.nodes[i].gpu);
    world_clear(w);
}

/* a1 has one of its 2 GPUs free, a2 both: --gres=gpu:2 goes to a2 although
 * a1 is first and has the cores. */
static void per_node_passes_over_busy_gpus(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    gpus_on(&w, 0, 2, "NVIDIA A100", 0x2);
    gpus_on(&w, 1, 2, "NVIDIA A100", 0x3);
    bjob_t j;
    spec(&j, 1, 1, 1);
    j.spec.gres = "gpu:2";
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    assert_int_equal(j.tasks[0].gpus, 0x3);
    assert_int_equal(w.p.offers[1].gpus, 0); /* taken for the pass's next jobs */
    /* a second such job finds no node with 2 free GPUs */
    bjob_t k;
    spec(&k, 1, 1, 1);
    k.id = 43;
    k.spec.gres = "gpu:2";
    assert_int_equal(start(&w, &k, got, sizeof(got)), -1);
    /* a job without GPUs still starts there (best fit: its fewer free
     * cores), with no GPU */
    bjob_t c;
    spec(&c, 1, 1, 1);
    c.id = 44;
    assert_int_equal(start(&w, &c, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    assert_int_equal(c.tasks[0].gpus, 0);
    job_clear(&w, &j);
    job_clear(&w, &c);
    free(j.nodes_ok);
    free(k.nodes_ok);
    gpus_clear(&w);
}

/* Cores free on socket 1 only: the share's GPU is one of socket 1's. */
static void gpus_near_the_cores(void **state)
{
    (void)state;
    shape_t nodes[1] = {{"a1", 2, 4, 1, 0xF0}};
    world_t w;
    world_init(&w, nodes, 1);
    gpus_on(&w, 0, 4, "NVIDIA A100", 0xF);
    bjob_t j;
    spec(&j, 1, 2, 1);
    j.spec.gpus_per_node = "1";
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_int_equal(j.tasks[0].gpus, 0x4); /* GPU 2, socket 1's first */
    job_clear(&w, &j);
    free(j.nodes_ok);
    gpus_clear(&w);
}

/* A type matches the model, ignoring case; no node of the type: not
 * placed, and refused at submit naming the type. */
static void type_names_the_model(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    gpus_on(&w, 0, 2, "Tesla V100-PCIE-16GB", 0x3);
    gpus_on(&w, 1, 2, "NVIDIA A100-SXM4-40GB", 0x3);
    bjob_t j;
    spec(&j, 1, 1, 1);
    j.spec.gres = "gpu:a100:1";
    char got[128];
    phx_error_t err = {{0}};
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    bjob_t h;
    spec(&h, 1, 1, 1);
    h.id = 43;
    h.spec.gres = "gpu:h100:1";
    size_t blame;
    assert_int_equal(batchd_cluster_check(&w.b, &h.spec, &blame, &err), -1);
    assert_string_equal(err.text, "requested node configuration is not available: no "
                                  "node of the cluster has 1 GPU of type \"h100\" (the "
                                  "most on one: 0)");
    assert_int_equal(blame, offsetof(phx_jobspec_t, gres));
    assert_int_equal(start(&w, &h, got, sizeof(got)), -1);
    /* 3 GPUs per node: no node has them */
    h.spec.gres = NULL;
    h.spec.gpus_per_node = "3";
    free(h.nodes_ok);
    h.nodes_ok = NULL;
    assert_int_equal(batchd_cluster_check(&w.b, &h.spec, &blame, &err), -1);
    assert_non_null(strstr(err.text, "has 3 GPUs (the most on one: 2)"));
    job_clear(&w, &j);
    free(j.nodes_ok);
    free(h.nodes_ok);
    gpus_clear(&w);
}

/* A type is a whole word of the model (its letters and digits not run on):
 * a10 is not an A100, v100 not a V100S; a model's part with its dashes is. */
static void type_is_a_whole_word(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    gpus_on(&w, 0, 2, "NVIDIA A100-SXM4-40GB", 0x3);
    gpus_on(&w, 1, 2, "NVIDIA A10", 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], "a10"), 0);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], "a100"), 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], "A100-SXM4"), 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], "nvidia"), 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], "sxm4-40gb"), 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], "40"), 0);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[0], ""), 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[1], "a10"), 0x3);
    assert_int_equal(batchd_node_gpus(&w.b.nodes[1], "a100"), 0);
    bjob_t j;
    spec(&j, 1, 1, 1);
    j.spec.gres = "gpu:a10:2";
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    job_clear(&w, &j);
    free(j.nodes_ok);
    gpus_clear(&w);
    bnode_t v = {.ngpus = 1, .gpu = &(struct bgpu){0, "Tesla V100S-PCIE-32GB", 0}};
    assert_int_equal(batchd_node_gpus(&v, "v100"), 0);
    assert_int_equal(batchd_node_gpus(&v, "v100s"), 1);
}

/* -N 2 --gres=gpu:2 where one node has 2 GPUs: refused naming the GPUs,
 * not a -w/-x/-C the job does not have; with -w too, both are named. */
static void too_few_gpu_nodes(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}, {"a3", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    gpus_on(&w, 0, 2, "NVIDIA A100", 0x3);
    gpus_on(&w, 1, 1, "NVIDIA A100", 0x1);
    gpus_on(&w, 2, 2, "NVIDIA A100", 0x3);
    bjob_t j;
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.gres = "gpu:2";
    phx_error_t err = {{0}};
    size_t blame;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &blame, &err), 0);
    j.spec.gres = NULL;
    j.spec.gpus_per_node = "a100:2";
    j.spec.nodes_min = j.spec.nodes_max = 3;
    j.spec.ntasks = 3;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &blame, &err), -1);
    assert_string_equal(err.text, "requested node configuration is not available: 3 "
                                  "nodes asked, the cluster has 2 with 2 GPUs of type "
                                  "\"a100\"");
    assert_int_equal(blame, offsetof(phx_jobspec_t, gpus_per_node));
    /* -w a1,a2 allows the one with 1 GPU: -w is to blame */
    j.spec.gpus_per_node = "1";
    j.spec.nodelist = "a1,a2";
    j.spec.nodes_min = j.spec.nodes_max = 2;
    j.spec.ntasks = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &blame, &err), 0);
    j.spec.gpus_per_node = "2";
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &blame, &err), -1);
    assert_string_equal(err.text, "requested node configuration is not available: 2 "
                                  "nodes asked, the cluster has 1 that its -w, -x, -C "
                                  "and GPUs allow");
    assert_int_equal(blame, offsetof(phx_jobspec_t, nodelist));
    gpus_clear(&w);
}

/* --gpus-per-task=1 with 2 free GPUs a node: 4 tasks take 2 nodes; 5 do
 * not fit the cluster's 4 GPUs, at submit either. */
static void per_task_caps_tasks(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    gpus_on(&w, 0, 2, "gpu", 0x3);
    gpus_on(&w, 1, 2, "gpu", 0x3);
    bjob_t j;
    spec(&j, 4, 1, 2);
    j.spec.gpus_per_task = "1";
    char got[128];
    phx_error_t err = {{0}};
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), 0);
    j.spec.ntasks = 5;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, NULL, &err), -1);
    j.spec.ntasks = 4;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2,a2:2");
    assert_int_equal(j.tasks[0].gpus, 0x3);
    assert_int_equal(j.tasks[1].gpus, 0x3);
    job_clear(&w, &j);
    free(j.nodes_ok);
    gpus_clear(&w);
}

/* An exclusive job takes every GPU of its node, and only a node with all of
 * them free. */
static void exclusive_takes_all(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    gpus_on(&w, 0, 4, "gpu", 0x7); /* GPU 3 busy */
    gpus_on(&w, 1, 4, "gpu", 0xF);
    bjob_t j;
    spec(&j, 1, 1, 1);
    j.spec.exclusive = 1;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    assert_int_equal(j.tasks[0].gpus, 0xF);
    job_clear(&w, &j);
    gpus_clear(&w);
}

/* The planner's GPU classes (batchd_gpu_classes): each model a class, in
 * node order, a node's GPUs counted by class; a type may use the classes
 * of the models it names (a100: both A100 models).  Past 8 models the
 * rest share the last class, which a type of any of them may use (so
 * would a type of a model past the 64 told apart); a task's GPUs come off
 * their classes (batchd_gpu_hold). */
static void gpu_classes_by_model(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}, {"a3", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    gpus_on(&w, 0, 4, "NVIDIA A100-SXM4-40GB", 0xF);
    snprintf(w.b.nodes[0].gpu[3].model, sizeof(w.b.nodes[0].gpu[3].model),
             "Tesla V100-SXM2-16GB");
    gpus_on(&w, 1, 2, "NVIDIA A100-SXM4-80GB", 0x3);
    gpus_on(&w, 2, 10, "gpu", 0x3FF);
    for (int g = 0; g < 10; g++) /* 10 models: m0 .. m9 */
        snprintf(w.b.nodes[2].gpu[g].model, sizeof(w.b.nodes[2].gpu[g].model), "m%d",
                 g);
    phx_bf_node_t pn[3] = {{0}};
    batchd_gclasses_t gc;
    batchd_gpu_classes(&w.b, &gc, pn);
    assert_int_equal(gc.n, PHX_BF_GPU_CLASSES);
    assert_int_equal(gc.nmodels, 13);
    assert_int_equal(pn[0].gpus_class_total[0], 3); /* A100 40GB */
    assert_int_equal(pn[0].gpus_class_total[1], 1); /* V100 */
    assert_int_equal(pn[1].gpus_class_total[2], 2); /* A100 80GB */
    assert_int_equal(pn[2].gpus_class_total[3], 1); /* m0 */
    assert_int_equal(pn[2].gpus_class_total[7], 6); /* m4 .. m9 */
    assert_int_equal(pn[2].gpus_class_free[7], 6);
    bjob_t j;
    spec(&j, 1, 1, 1);
    j.spec.gres = "gpu:a100:1";
    assert_int_equal(batchd_gpu_other(&gc, &j), 0xFF & ~0x5u);
    j.spec.gres = "gpu:m1:1";
    assert_int_equal(batchd_gpu_other(&gc, &j), 0xFF & ~0x10u);
    j.spec.gres = "gpu:m8:1";
    assert_int_equal(batchd_gpu_other(&gc, &j), 0x7F);
    j.spec.gres = "gpu:1";
    assert_int_equal(batchd_gpu_other(&gc, &j), 0);
    /* a task holding GPUs 2 and 3 of a1: an A100 and the V100 */
    bj_task_t t = {.tasks = 1, .gpus = 0xC};
    phx_bf_share_t sh = {0};
    batchd_gpu_hold(&gc, &w.b.nodes[0], &j, &t, &pn[0], &sh);
    assert_int_equal(sh.gpus, 2);
    assert_int_equal(sh.gpus_class[0], 1);
    assert_int_equal(sh.gpus_class[1], 1);
    assert_int_equal(pn[0].gpus_class_free[0], 2);
    assert_int_equal(pn[0].gpus_class_free[1], 0);
    gpus_clear(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_node_passes_over_busy_gpus),
        cmocka_unit_test(gpus_near_the_cores),
        cmocka_unit_test(type_names_the_model),
        cmocka_unit_test(type_is_a_whole_word),
        cmocka_unit_test(too_few_gpu_nodes),
        cmocka_unit_test(per_task_caps_tasks),
        cmocka_unit_test(exclusive_takes_all),
        cmocka_unit_test(gpu_classes_by_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
