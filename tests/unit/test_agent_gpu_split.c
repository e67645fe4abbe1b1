/* phx-agent: a step's ranks' GPUs (gpu_split.c): --gpus-per-task splits
 * the job's GPUs of the node among its local ranks, nearest their cores
 * first; --gpu-bind=none and steps without --gpus-per-task see them all.
 * The e2e test t0368 runs such a step on an emulated GPU node. */
#include "daemons/agent/gpu.c"
#include "daemons/agent/gpu_split.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

/* One socket, NUMA 0 (cores 0-1) and NUMA 1 (cores 2-3); GPUs 0 and 1 are
 * local to NUMA 1, GPUs 2 and 3 to NUMA 0: nearest is not PCI order. */
static const char topo_json[] =
    "{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":["
    "{\"id\":0,\"memory\":1,\"cores\":[{\"id\":0,\"pus\":[0]},{\"id\":1,\"pus\":[1]}]},"
    "{\"id\":1,\"memory\":1,\"cores\":[{\"id\":2,\"pus\":[2]},{\"id\":3,\"pus\":[3]}]}"
    "]}],\"devices\":["
    "{\"id\":0,\"kind\":\"gpu\",\"name\":\"cuda0\",\"numa\":1,\"socket\":0},"
    "{\"id\":1,\"kind\":\"gpu\",\"name\":\"cuda1\",\"numa\":1,\"socket\":0},"
    "{\"id\":2,\"kind\":\"gpu\",\"name\":\"cuda2\",\"numa\":0,\"socket\":0},"
    "{\"id\":3,\"kind\":\"gpu\",\"name\":\"cuda3\",\"numa\":0,\"socket\":0}]}";

static phx_topo_t *topo;

static int setup(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    json_t *j = json_loads(topo_json, 0, NULL);
    topo = j ? phx_topo_from_json(j, &err) : NULL;
    json_decref(j);
    return topo ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    phx_topo_destroy(topo);
    return 0;
}

/* The split as "a|b|..." (one list per rank), or "error: ...". */
static const char *split(const char *gpus, int per_task, const char *bind, int nlocal,
                         const char *cores)
{
    static char out[600];
    phx_error_t err = {{0}};
    json_t *c = cores ? json_loads(cores, 0, NULL) : NULL;
    char **sets = phx_gpu_split(topo, gpus, per_task, bind, nlocal, c, &err);
    json_decref(c);
    if (!sets) {
        snprintf(out, sizeof(out), "error: %s", err.text);
        return out;
    }
    size_t len = 0;
    out[0] = '\0';
    for (int r = 0; r < nlocal; r++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", r ? "|" : "",
                                sets[r]);
    phx_gpu_split_free(sets, nlocal);
    return out;
}

/* 4 GPUs, 2 local ranks, 2 GPUs per task: unbound ranks (or ranks whose
 * cores are near no GPU) take them in order. */
static void test_in_order(void **state)
{
    (void)state;
    assert_string_equal(split("0,1,2,3", 2, NULL, 2, NULL), "0,1|2,3");
    assert_string_equal(split("0,1,2,3", 2, "closest", 2, "[[], []]"), "0,1|2,3");
    assert_string_equal(split("0,1,2,3", 1, NULL, 4, NULL), "0|1|2|3");
    assert_string_equal(split("0,1,2,3", 1, NULL, 2, NULL), "0|1"); /* some left */
    assert_string_equal(split("1,3", 1, NULL, 2, NULL), "1|3");
}

/* Closest: each rank first the GPUs of its cores' NUMA domains. */
static void test_closest_by_numa(void **state)
{
    (void)state;
    /* rank 0 on NUMA 0 (GPUs 2, 3), rank 1 on NUMA 1 (GPUs 0, 1) */
    assert_string_equal(split("0,1,2,3", 2, NULL, 2, "[[0], [2]]"), "2,3|0,1");
    assert_string_equal(split("0,1,2,3", 2, "closest", 2, "[[0, 1], [2, 3]]"),
                        "2,3|0,1");
    /* four ranks, two on each domain */
    assert_string_equal(split("0,1,2,3", 1, NULL, 4, "[[0], [2], [1], [3]]"),
                        "2|0|3|1");
    /* both on NUMA 0 with 2 each: one gets the near ones, the other the rest */
    assert_string_equal(split("0,1,2,3", 2, NULL, 2, "[[0], [1]]"), "2,3|0,1");
    /* the job has only GPUs 0 and 2 here: rank 0 (NUMA 1) gets 0 */
    assert_string_equal(split("0,2", 1, NULL, 2, "[[2], [3]]"), "0|2");
}

/* A GPU local to a socket but to none of its NUMA domains is near the
 * cores of that socket. */
static void test_closest_by_socket(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    json_t *j = json_loads(
        "{\"version\":1,\"sockets\":["
        "{\"id\":0,\"numa\":[{\"id\":0,\"memory\":1,\"cores\":[{\"id\":0,\"pus\":[0]}]}"
        "]},"
        "{\"id\":1,\"numa\":[{\"id\":1,\"memory\":1,\"cores\":[{\"id\":1,\"pus\":[1]}]}"
        ","
        "{\"id\":2,\"memory\":1,\"cores\":[{\"id\":2,\"pus\":[2]}]}]}],\"devices\":["
        "{\"id\":0,\"kind\":\"gpu\",\"name\":\"cuda0\",\"numa\":0,\"socket\":0},"
        "{\"id\":1,\"kind\":\"gpu\",\"name\":\"cuda1\",\"socket\":1},"
        "{\"id\":2,\"kind\":\"gpu\",\"name\":\"cuda2\"}]}",
        0, NULL);
    phx_topo_t *t = j ? phx_topo_from_json(j, &err) : NULL, *saved = topo;
    json_decref(j);
    if (!t)
        fail_msg("%s", err.text);
    topo = t;
    /* rank 0 on NUMA 2 (socket 1): GPU 1; rank 1 on NUMA 0: GPU 0 */
    assert_string_equal(split("0,1,2", 1, NULL, 2, "[[2], [0]]"), "1|0");
    /* GPU 2 is local to nothing: near no rank */
    assert_string_equal(split("0,1,2", 0, "closest", 2, "[[2], [0]]"), "1|0");
    assert_string_equal(split("2", 1, NULL, 1, "[[1]]"), "2");
    topo = saved;
    phx_topo_destroy(t);
}

/* Without --gpus-per-task, or with --gpu-bind=none: every rank all. */
static void test_all(void **state)
{
    (void)state;
    assert_string_equal(split("0,1,2,3", 0, NULL, 2, "[[0], [2]]"), "0,1,2,3|0,1,2,3");
    assert_string_equal(split("0,1,2,3", 2, "none", 2, "[[0], [2]]"),
                        "0,1,2,3|0,1,2,3");
    assert_string_equal(split("0,1,2,3", 0, "none", 1, NULL), "0,1,2,3");
    /* an explicit closest without per-task: the near ones, all if none is */
    assert_string_equal(split("0,1,2,3", 0, "closest", 3, "[[0], [3], []]"),
                        "2,3|0,1|0,1,2,3");
}

static void test_too_few(void **state)
{
    (void)state;
    assert_string_equal(split("0,1,2", 2, NULL, 2, NULL),
                        "error: 2 local ranks with 2 GPUs per task need 4 GPUs, the "
                        "job has 3 here");
    assert_string_equal(split("", 1, NULL, 1, NULL),
                        "error: 1 local ranks with 1 GPUs per task need 1 GPUs, the "
                        "job has 0 here");
}

/* The rank's environment names its GPUs; none without. */
static void test_env(void **state)
{
    (void)state;
    char **env = calloc(1, sizeof(*env));
    int n = 0;
    assert_int_equal(phx_gpu_env_put(&env, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(phx_gpu_env_put(&env, &n, "2,3"), 0);
    assert_int_equal(n, PHX_GPU_ENV_VARS + 1);
    bool cuda = false;
    for (int i = 0; i < n; i++) {
        cuda = cuda || strcmp(env[i], "CUDA_VISIBLE_DEVICES=2,3") == 0;
        free(env[i]);
    }
    free(env);
    assert_true(cuda);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_closest_by_numa),
        cmocka_unit_test(test_closest_by_socket),
        cmocka_unit_test(test_all),
        cmocka_unit_test(test_too_few),
        cmocka_unit_test(test_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
