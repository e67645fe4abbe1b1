/* GPUs in the free-resource tracker: the free GPU set, grants carrying GPUs,
 * carving GPUs near a task's cores, and GPUs in bundle JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topology/free.h"

static char *fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("PHX_TOPO_FIXTURES");
    if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        snprintf(path, sizeof(path), "%.*s/fixtures/topo/%s",
                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, name);
    return path;
}

struct fx {
    phx_topo_t *t;
    phx_topo_free_t *f;
    phx_topo_grant_t *g;
};

static int fx_make(void **state, phx_topo_t *t)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (!fx || !t)
        return -1;
    fx->t = t;
    fx->f = phx_topo_free_create(t);
    fx->g = phx_topo_grant_create(t);
    *state = fx;
    return fx->f && fx->g ? 0 : -1;
}

/* 2 sockets, one NUMA domain each: cores 0-3 and GPUs 0, 1 (cuda0, cuda1) on
 * domain 0, cores 4-7 and GPU 2 on domain 1; device 3 is an OpenCL
 * co-processor (domain 1), not a GPU. */
static int setup_fixture(void **state)
{
    phx_error_t err = {{0}};
    return fx_make(state, phx_topo_load_xml_file(fixture("gpu-2s2n8c-3gpu.xml"), &err));
}

/* 2 sockets × 2 domains × 2 cores; GPU 0 on domain 2 (socket 1), GPU 1 on
 * domain 1 (socket 0), GPU 2 on domain 0, GPU 3 local to no socket. */
static int setup_json(void **state)
{
    phx_error_t err = {{0}};
    char text[2048];
    snprintf(
        text, sizeof(text),
        "{\"version\":1,\"sockets\":["
        "{\"id\":0,\"numa\":[{\"id\":0,\"memory\":100,\"cores\":[{\"id\":0,\"pus\":"
        "[0]},{\"id\":1,\"pus\":[1]}]},{\"id\":1,\"memory\":100,\"cores\":[{\"id\":"
        "2,\"pus\":[2]},{\"id\":3,\"pus\":[3]}]}]},"
        "{\"id\":1,\"numa\":[{\"id\":2,\"memory\":100,\"cores\":[{\"id\":4,\"pus\":"
        "[4]},{\"id\":5,\"pus\":[5]}]},{\"id\":3,\"memory\":100,\"cores\":[{\"id\":"
        "6,\"pus\":[6]},{\"id\":7,\"pus\":[7]}]}]}],"
        "\"devices\":[{\"id\":0,\"kind\":\"gpu\",\"name\":\"g0\",\"numa\":2},"
        "{\"id\":1,\"kind\":\"gpu\",\"name\":\"g1\",\"numa\":1},"
        "{\"id\":2,\"kind\":\"gpu\",\"name\":\"g2\",\"numa\":0},"
        "{\"id\":3,\"kind\":\"gpu\",\"name\":\"g3\",\"numa\":null}]}");
    json_t *j = json_loads(text, 0, NULL);
    phx_topo_t *t = j ? phx_topo_from_json(j, &err) : NULL;
    json_decref(j);
    if (!t)
        fprintf(stderr, "topology: %s\n", err.text);
    return fx_make(state, t);
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    phx_topo_grant_destroy(fx->g);
    phx_topo_free_destroy(fx->f);
    phx_topo_destroy(fx->t);
    free(fx);
    return 0;
}

static void assert_ids(const int *got, int n, const int *want, int nwant)
{
    assert_int_equal(n, nwant);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_gpu_index(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(phx_topo_ngpus(fx->t), 3);
    for (int d = 0; d < 3; d++) {
        assert_true(phx_topo_is_gpu(fx->t, d));
        assert_int_equal(phx_topo_gpu_index(fx->t, d), d);
    }
    assert_false(phx_topo_is_gpu(fx->t, 3)); /* the co-processor */
    assert_int_equal(phx_topo_gpu_index(fx->t, 3), -1);
    assert_int_equal(phx_topo_gpu_index(fx->t, 4), -1);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 3);
    assert_false(phx_topo_free_has_gpu(fx->f, 3));
}

static void test_alloc_release(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_free_t *fresh = phx_topo_free_create(fx->t);
    phx_topo_grant_t *g = fx->g, *other = phx_topo_grant_create(fx->t);
    assert_int_equal(phx_topo_grant_add_gpu(g, 3), -1); /* not a GPU */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(phx_topo_grant_add_gpu(g, 7), -1);
    assert_int_equal(phx_topo_grant_add_core(g, 0), 0);
    assert_int_equal(phx_topo_grant_add_gpu(g, 1), 0);
    assert_int_equal(phx_topo_grant_add_gpu(g, 1), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(phx_topo_grant_ngpus(g), 1);
    assert_true(phx_topo_grant_has_gpu(g, 1));
    assert_int_equal(phx_topo_free_alloc(fx->f, g, &err), 0);
    assert_false(phx_topo_free_has_gpu(fx->f, 1));
    assert_int_equal(phx_topo_free_ngpus(fx->f), 2);
    assert_false(phx_topo_free_equal(fx->f, fresh));

    /* The same GPU with a free core: refused, naming the GPU; nothing taken. */
    phx_topo_grant_add_core(other, 5);
    phx_topo_grant_add_gpu(other, 1);
    assert_int_equal(phx_topo_free_alloc(fx->f, other, &err), -1);
    assert_int_equal(errno, EBUSY);
    assert_string_equal(err.text,
                        "could not allocate GPU 1 (cuda1): already allocated");
    assert_true(phx_topo_coreset_has(phx_topo_free_cores(fx->f), 5));

    assert_int_equal(phx_topo_free_release(fx->f, g, &err), 0);
    assert_true(phx_topo_free_equal(fx->f, fresh));
    /* Released twice: refused, naming the GPU (the core is checked first). */
    phx_topo_grant_clear(other);
    phx_topo_grant_add_gpu(other, 2);
    assert_int_equal(phx_topo_free_release(fx->f, other, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_string_equal(err.text, "could not release GPU 2 (cuda2): not allocated");
    assert_true(phx_topo_free_equal(fx->f, fresh));
    /* Clearing a grant drops its GPUs. */
    phx_topo_grant_clear(other);
    assert_int_equal(phx_topo_grant_ngpus(other), 0);
    assert_false(phx_topo_grant_has_gpu(other, 2));
    phx_topo_grant_destroy(other);
    phx_topo_free_destroy(fresh);
}

static void carve_ok(struct fx *fx, const phx_topo_request_t *req)
{
    phx_error_t err = {{0}};
    if (phx_topo_carve(fx->f, req, fx->g, &err) < 0)
        fail_msg("carve: %s", err.text);
}

static void assert_task_gpus(struct fx *fx, int task, const int *want, int n)
{
    int got;
    const int *ids = phx_topo_grant_task_gpus(fx->g, task, &got);
    assert_ids(ids, got, want, n);
}

static void test_carve_numa_local(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(3, 2);
    req.gpus_per_task = 1;
    carve_ok(fx, &req);
    /* Tasks 0 and 1 on domain 0 get its GPUs 0 and 1, task 2 domain 1's. */
    assert_task_gpus(fx, 0, (int[]){0}, 1);
    assert_task_gpus(fx, 1, (int[]){1}, 1);
    assert_task_gpus(fx, 2, (int[]){2}, 1);
    assert_int_equal(phx_topo_grant_ngpus(fx->g), 3);
    phx_error_t err = {{0}};
    assert_int_equal(phx_topo_free_alloc(fx->f, fx->g, &err), 0);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 0);
    /* Cores remain but no GPU: a GPU request does not fit. */
    phx_topo_request_t more = phx_topo_request(1, 1);
    more.gpus_per_task = 1;
    phx_topo_grant_t *g2 = phx_topo_grant_create(fx->t);
    assert_int_equal(phx_topo_carve(fx->f, &more, g2, &err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_string_equal(err.text, "request needs 1 GPUs, 0 free");
    assert_int_equal(phx_topo_grant_ngpus(g2), 0);
    more.gpus_per_task = 0;
    assert_int_equal(phx_topo_carve(fx->f, &more, g2, &err), 0);
    phx_topo_grant_destroy(g2);
    assert_int_equal(phx_topo_free_release(fx->f, fx->g, &err), 0);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 3);
}

static void test_carve_socket_then_anywhere(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(1, 1);
    /* The task's core is 0 (domain 0, socket 0): its domain's GPU 2, then
     * socket 0's GPU 1, then the rest by id: 0, 3 (local to no socket). */
    req.gpus_per_task = 3;
    carve_ok(fx, &req);
    assert_task_gpus(fx, 0, (int[]){2, 1, 0}, 3);
    req.gpus_per_task = 4;
    carve_ok(fx, &req);
    assert_task_gpus(fx, 0, (int[]){2, 1, 0, 3}, 4);
    /* A task placed on socket 1 (domain 3): socket 1's GPU 0 first. */
    req.gpus_per_task = 2;
    req.numa = 3;
    carve_ok(fx, &req);
    assert_task_gpus(fx, 0, (int[]){0, 1}, 2);
    phx_error_t err = {{0}};
    req.gpus_per_task = 5;
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, EINVAL); /* more than the node has */
    req.gpus_per_task = -1;
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, EINVAL);
    /* Two tasks of 3 GPUs: 6 > 4 free. */
    req = phx_topo_request(2, 1);
    req.gpus_per_task = 3;
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(phx_topo_grant_ngpus(fx->g), 0);
}

static void test_carve_skips_taken(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_grant_t *g = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_gpu(g, 0);
    assert_int_equal(phx_topo_free_alloc(fx->f, g, &err), 0); /* a GPU alone */
    phx_topo_request_t req = phx_topo_request(2, 2);
    req.gpus_per_task = 1;
    carve_ok(fx, &req);
    /* Both tasks on domain 0 (cores 0-1, 2-3), whose GPU 0 is taken: the
     * first gets GPU 1, the second the other socket's GPU 2. */
    assert_task_gpus(fx, 0, (int[]){1}, 1);
    assert_task_gpus(fx, 1, (int[]){2}, 1);
    assert_int_equal(phx_topo_free_release(fx->f, g, &err), 0);
    phx_topo_grant_destroy(g);
}

static json_t *ids_json(const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void assert_json_ids(json_t *got, const int *want, int n)
{
    json_t *w = ids_json(want, n);
    if (!json_equal(got, w)) {
        char *s = json_dumps(got, 0);
        fail_msg("got %s", s ? s : "(null)");
    }
    json_decref(w);
}

static void test_bundles(void **state)
{
    struct fx *fx = *state;
    json_t *b = phx_topo_free_bundles_json(fx->f);
    assert_non_null(b);
    assert_int_equal(json_integer_value(json_object_get(b, "gpus")), 3);
    assert_json_ids(json_object_get(b, "gpu_ids"), (int[]){0, 1, 2}, 3);
    json_t *numa = json_object_get(b, "numa"), *sockets = json_object_get(b, "sockets");
    assert_json_ids(json_object_get(json_array_get(numa, 0), "gpus"), (int[]){0, 1}, 2);
    assert_json_ids(json_object_get(json_array_get(numa, 1), "gpus"), (int[]){2}, 1);
    assert_json_ids(json_object_get(json_array_get(sockets, 0), "gpus"), (int[]){0, 1},
                    2);
    assert_json_ids(json_object_get(json_array_get(sockets, 1), "gpus"), (int[]){2}, 1);
    json_decref(b);

    phx_error_t err = {{0}};
    phx_topo_grant_add_gpu(fx->g, 0);
    assert_int_equal(phx_topo_free_alloc(fx->f, fx->g, &err), 0);
    b = phx_topo_free_bundles_json(fx->f);
    assert_int_equal(json_integer_value(json_object_get(b, "gpus")), 2);
    assert_json_ids(json_object_get(b, "gpu_ids"), (int[]){1, 2}, 2);
    assert_json_ids(
        json_object_get(json_array_get(json_object_get(b, "numa"), 0), "gpus"),
        (int[]){1}, 1);
    json_decref(b);
    assert_int_equal(phx_topo_free_release(fx->f, fx->g, &err), 0);
}

static void test_bundles_unlocal(void **state)
{
    struct fx *fx = *state;
    json_t *b = phx_topo_free_bundles_json(fx->f);
    assert_int_equal(json_integer_value(json_object_get(b, "gpus")), 4);
    assert_json_ids(json_object_get(b, "gpu_ids"), (int[]){0, 1, 2, 3}, 4);
    json_t *sockets = json_object_get(b, "sockets");
    /* GPU 3 is local to no socket: listed only in gpu_ids. */
    assert_json_ids(json_object_get(json_array_get(sockets, 0), "gpus"), (int[]){1, 2},
                    2);
    assert_json_ids(json_object_get(json_array_get(sockets, 1), "gpus"), (int[]){0}, 1);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gpu_index, setup_fixture, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_release, setup_fixture, teardown),
        cmocka_unit_test_setup_teardown(test_carve_numa_local, setup_fixture, teardown),
        cmocka_unit_test_setup_teardown(test_carve_socket_then_anywhere, setup_json,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_carve_skips_taken, setup_fixture,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bundles, setup_fixture, teardown),
        cmocka_unit_test_setup_teardown(test_bundles_unlocal, setup_json, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
