/* Free-resource tracking, bundles and core carving. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topology/free.h"

#define GiB (1ULL << 30)

struct fx {
    phx_topo_t *t;
    phx_topo_free_t *f;
    phx_topo_grant_t *g;
};

static int setup_desc(void **state, const char *desc)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    phx_error_t err = {{0}};
    fx->t = phx_topo_load_synthetic(desc, &err);
    if (!fx->t)
        return -1;
    fx->f = phx_topo_free_create(fx->t);
    fx->g = phx_topo_grant_create(fx->t);
    *state = fx;
    return fx->f && fx->g ? 0 : -1;
}

/* 2 sockets × 2 NUMA × 8 cores × 2 PUs: NUMA n holds cores 8n..8n+7. */
static int setup_2x2x8(void **state)
{
    return setup_desc(state, "pack:2 numa:2 core:8 pu:2");
}

static int setup_4x2x16(void **state)
{
    return setup_desc(state, "pack:4 numa:2 core:16 pu:1");
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

static void carve_ok(struct fx *fx, const phx_topo_request_t *req)
{
    phx_error_t err = {{0}};
    if (phx_topo_carve(fx->f, req, fx->g, &err) < 0)
        fail_msg("carve: %s", err.text);
}

static void alloc_ok(struct fx *fx, const phx_topo_grant_t *g)
{
    phx_error_t err = {{0}};
    if (phx_topo_free_alloc(fx->f, g, &err) < 0)
        fail_msg("alloc: %s", err.text);
}

/* Take cores [lo, hi] out of the free set. */
static void take_range(struct fx *fx, int lo, int hi)
{
    phx_topo_grant_t *g = phx_topo_grant_create(fx->t);
    for (int c = lo; c <= hi; c++)
        phx_topo_grant_add_core(g, c);
    alloc_ok(fx, g);
    phx_topo_grant_destroy(g);
}

static void assert_task(struct fx *fx, int task, const int *want, int n)
{
    int ncores;
    const int *cores = phx_topo_grant_task_cores(fx->g, task, &ncores);
    assert_int_equal(ncores, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(cores[i], want[i]);
}

/* NUMA domain of all of a task's cores, or -1 if they span domains. */
static int task_numa(struct fx *fx, int task)
{
    int n;
    const int *cores = phx_topo_grant_task_cores(fx->g, task, &n);
    int numa = phx_topo_core_numa(fx->t, cores[0]);
    for (int i = 1; i < n; i++)
        if (phx_topo_core_numa(fx->t, cores[i]) != numa)
            return -1;
    return numa;
}

static int task_socket(struct fx *fx, int task)
{
    int n;
    const int *cores = phx_topo_grant_task_cores(fx->g, task, &n);
    int s = phx_topo_core_socket(fx->t, cores[0]);
    for (int i = 1; i < n; i++)
        if (phx_topo_core_socket(fx->t, cores[i]) != s)
            return -1;
    return s;
}

static void test_block_fills_numa_first(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(5, 3);
    carve_ok(fx, &req);
    /* 3+3 fit NUMA 0; the third task does not fit its last 2 cores, so it
     * goes whole to NUMA 1; the holes are not split across domains. */
    assert_task(fx, 0, (int[]){0, 1, 2}, 3);
    assert_task(fx, 1, (int[]){3, 4, 5}, 3);
    assert_task(fx, 2, (int[]){8, 9, 10}, 3);
    assert_task(fx, 3, (int[]){11, 12, 13}, 3);
    assert_task(fx, 4, (int[]){16, 17, 18}, 3);
    assert_int_equal(phx_topo_grant_ntasks(fx->g), 5);
    assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(fx->g)), 15);
    /* Carving does not change the free state. */
    assert_int_equal(phx_topo_free_ncores(fx->f), 32);
}

static void test_numa_local_when_fragmented(void **state)
{
    struct fx *fx = *state;
    take_range(fx, 0, 5); /* NUMA 0 keeps 2 free cores */
    phx_topo_request_t req = phx_topo_request(1, 4);
    carve_ok(fx, &req);
    assert_task(fx, 0, (int[]){8, 9, 10, 11}, 4);
    /* A 2-core task does fit NUMA 0's leftovers: compact. */
    req = phx_topo_request(1, 2);
    carve_ok(fx, &req);
    assert_task(fx, 0, (int[]){6, 7}, 2);
}

static void test_socket_local(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(1, 12);
    carve_ok(fx, &req);
    /* Too big for a domain: one socket, NUMA 0 filled before NUMA 1. */
    int want[12];
    for (int i = 0; i < 12; i++)
        want[i] = i;
    assert_task(fx, 0, want, 12);
    assert_int_equal(task_socket(fx, 0), 0);

    take_range(fx, 0, 5);
    take_range(fx, 8, 13); /* socket 0 keeps 4 free cores */
    req = phx_topo_request(1, 10);
    carve_ok(fx, &req);
    assert_int_equal(task_socket(fx, 0), 1);
    for (int i = 0; i < 10; i++)
        want[i] = 16 + i;
    assert_task(fx, 0, want, 10);
}

static void test_spans_sockets_only_when_needed(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(1, 20);
    carve_ok(fx, &req);
    assert_int_equal(task_socket(fx, 0), -1);
    assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(fx->g)), 20);
    /* With tasks per socket, a task must stay inside a socket. */
    phx_error_t err = {{0}};
    req.tasks_per_socket = 1;
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "could not place task 0 of 1"));
    assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(fx->g)), 0);
}

static void test_cyclic_alternates(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(6, 2);
    req.dist = PHX_TOPO_DIST_CYCLIC;
    carve_ok(fx, &req);
    for (int t = 0; t < 6; t++) {
        assert_int_equal(task_socket(fx, t), t % 2);
        assert_true(task_numa(fx, t) >= 0);
    }
    assert_task(fx, 0, (int[]){0, 1}, 2);
    assert_task(fx, 1, (int[]){16, 17}, 2);
    assert_task(fx, 2, (int[]){2, 3}, 2);
    /* Block keeps them on socket 0. */
    req.dist = PHX_TOPO_DIST_BLOCK;
    carve_ok(fx, &req);
    for (int t = 0; t < 6; t++)
        assert_int_equal(task_socket(fx, t), 0);
}

static void test_cyclic_4_sockets(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(8, 16);
    req.dist = PHX_TOPO_DIST_CYCLIC;
    carve_ok(fx, &req);
    /* Each task fills exactly one domain; sockets go round 0,1,2,3,0,... */
    for (int t = 0; t < 8; t++) {
        assert_int_equal(task_socket(fx, t), t % 4);
        assert_int_equal(task_numa(fx, t), 2 * (t % 4) + t / 4);
    }
    assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(fx->g)), 128);
}

static void test_tasks_per_socket(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(2, 2);
    req.tasks_per_socket = 1;
    carve_ok(fx, &req);
    assert_int_equal(task_socket(fx, 0), 0);
    assert_int_equal(task_socket(fx, 1), 1);
    req.ntasks = 3;
    phx_error_t err = {{0}};
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "tasks per socket"));
}

static void test_named_bundle(void **state)
{
    struct fx *fx = *state;
    phx_topo_request_t req = phx_topo_request(2, 3);
    req.numa = 2;
    carve_ok(fx, &req);
    assert_task(fx, 0, (int[]){16, 17, 18}, 3);
    assert_task(fx, 1, (int[]){19, 20, 21}, 3);
    req = phx_topo_request(1, 10);
    req.socket = 1;
    carve_ok(fx, &req);
    assert_int_equal(task_socket(fx, 0), 1);
    req = phx_topo_request(1, 9);
    req.numa = 0;
    phx_error_t err = {{0}};
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, ENOSPC);
    req.socket = 1; /* NUMA 0 is on socket 0 */
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "NUMA domain 0 is not in socket 1"));
}

static void test_memory_limits_cores(void **state)
{
    struct fx *fx = *state;
    /* 16 GiB per domain, 4 GiB per core: 4 usable cores per domain. */
    phx_topo_request_t req = phx_topo_request(1, 6);
    req.mem_per_cpu = 4 * GiB;
    carve_ok(fx, &req);
    assert_task(fx, 0, (int[]){0, 1, 2, 3, 8, 9}, 6);
    assert_int_equal(phx_topo_grant_memory(fx->g, 0), 16 * GiB);
    assert_int_equal(phx_topo_grant_memory(fx->g, 1), 8 * GiB);
    alloc_ok(fx, fx->g);
    assert_int_equal(phx_topo_free_numa_memory(fx->f, 0), 0);
    assert_int_equal(phx_topo_free_numa_memory(fx->f, 1), 8 * GiB);
    assert_int_equal(phx_topo_free_numa_ncores(fx->f, 0), 4);
    /* NUMA 0 has cores but no memory left: a 1-core task skips it. */
    req = phx_topo_request(1, 1);
    req.mem_per_cpu = 1;
    carve_ok(fx, &req);
    assert_task(fx, 0, (int[]){10}, 1);
}

static void test_no_core_twice(void **state)
{
    struct fx *fx = *state;
    phx_topo_coreset_t *seen = phx_topo_coreset_create(32);
    static const int sizes[] = {3, 5, 1, 8, 2, 7, 4, 6};
    int handed = 0;
    for (int i = 0;; i++) {
        phx_topo_request_t req = phx_topo_request(1, sizes[i % 8]);
        req.dist = i % 2 ? PHX_TOPO_DIST_CYCLIC : PHX_TOPO_DIST_BLOCK;
        phx_error_t err = {{0}};
        if (phx_topo_carve(fx->f, &req, fx->g, &err) < 0) {
            assert_int_equal(errno, ENOSPC);
            if (sizes[i % 8] == 1)
                break;
            continue;
        }
        const phx_topo_coreset_t *got = phx_topo_grant_cores(fx->g);
        assert_false(phx_topo_coreset_intersects(seen, got));
        for (int c = phx_topo_coreset_next(got, -1); c >= 0;
             c = phx_topo_coreset_next(got, c))
            phx_topo_coreset_add(seen, c);
        handed += phx_topo_coreset_count(got);
        alloc_ok(fx, fx->g);
        assert_int_equal(phx_topo_free_ncores(fx->f), 32 - handed);
    }
    assert_int_equal(handed, 32);
    assert_int_equal(phx_topo_free_ncores(fx->f), 0);
    phx_topo_coreset_destroy(seen);
}

static void test_release_restores(void **state)
{
    struct fx *fx = *state;
    phx_topo_free_t *before = phx_topo_free_create(fx->t);
    phx_topo_grant_t *g1 = phx_topo_grant_create(fx->t);
    phx_topo_grant_t *g2 = phx_topo_grant_create(fx->t);
    phx_error_t err = {{0}};
    phx_topo_request_t req = phx_topo_request(3, 5);
    req.mem_per_cpu = GiB;
    assert_int_equal(phx_topo_carve(fx->f, &req, g1, &err), 0);
    alloc_ok(fx, g1);
    /* The state after g1, recorded in a second tracker. */
    assert_int_equal(phx_topo_free_alloc(before, g1, &err), 0);
    req = phx_topo_request(2, 7);
    req.dist = PHX_TOPO_DIST_CYCLIC;
    req.mem_per_cpu = 512ULL << 20;
    assert_int_equal(phx_topo_carve(fx->f, &req, g2, &err), 0);
    alloc_ok(fx, g2);
    assert_false(phx_topo_free_equal(fx->f, before));
    assert_int_equal(phx_topo_free_release(fx->f, g2, &err), 0);
    assert_true(phx_topo_free_equal(fx->f, before));
    assert_int_equal(phx_topo_free_release(fx->f, g1, &err), 0);
    assert_int_equal(phx_topo_free_ncores(fx->f), 32);
    assert_int_equal(phx_topo_free_memory(fx->f), phx_topo_memory(fx->t));
    phx_topo_grant_destroy(g1);
    phx_topo_grant_destroy(g2);
    phx_topo_free_destroy(before);
}

static void test_double_alloc_and_bad_release(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_free_t *snap = phx_topo_free_create(fx->t);
    phx_topo_grant_t *g = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_core(g, 4);
    phx_topo_grant_set_memory(g, 0, GiB);
    alloc_ok(fx, g);
    assert_int_equal(phx_topo_free_alloc(snap, g, &err), 0);

    /* Taking core 4 again fails and changes nothing, core 20 included. */
    phx_topo_grant_add_core(g, 20);
    assert_int_equal(phx_topo_free_alloc(fx->f, g, &err), -1);
    assert_int_equal(errno, EBUSY);
    assert_string_equal(err.text, "could not allocate core 4: already allocated");
    assert_true(phx_topo_free_equal(fx->f, snap));

    /* Releasing core 20 (never taken) fails and leaves core 4 taken. */
    assert_int_equal(phx_topo_free_release(fx->f, g, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_string_equal(err.text, "could not release core 20: not allocated");
    assert_true(phx_topo_free_equal(fx->f, snap));

    /* More memory than was taken. */
    phx_topo_grant_clear(g);
    phx_topo_grant_add_core(g, 4);
    phx_topo_grant_set_memory(g, 0, 2 * GiB);
    assert_int_equal(phx_topo_free_release(fx->f, g, &err), -1);
    assert_non_null(strstr(err.text, "only 1073741824 allocated"));
    assert_true(phx_topo_free_equal(fx->f, snap));

    /* More memory than is free. */
    phx_topo_grant_clear(g);
    phx_topo_grant_add_core(g, 5);
    phx_topo_grant_set_memory(g, 0, 16 * GiB);
    assert_int_equal(phx_topo_free_alloc(fx->f, g, &err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_true(phx_topo_free_equal(fx->f, snap));

    /* Exact release works once, then is an error. */
    phx_topo_grant_set_memory(g, 0, GiB);
    phx_topo_grant_clear(g);
    phx_topo_grant_add_core(g, 4);
    phx_topo_grant_set_memory(g, 0, GiB);
    assert_int_equal(phx_topo_free_release(fx->f, g, &err), 0);
    assert_int_equal(phx_topo_free_release(fx->f, g, &err), -1);
    assert_int_equal(phx_topo_free_ncores(fx->f), 32);
    phx_topo_grant_destroy(g);
    phx_topo_free_destroy(snap);
}

static void test_grant_other_topology(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_t *other = phx_topo_load_synthetic("pack:2 numa:2 core:8 pu:2", &err);
    phx_topo_grant_t *g = phx_topo_grant_create(other);
    assert_int_equal(phx_topo_free_alloc(fx->f, g, &err), -1);
    assert_non_null(strstr(err.text, "another topology"));
    phx_topo_grant_destroy(g);
    phx_topo_destroy(other);
}

static void test_deterministic(void **state)
{
    struct fx *fx = *state;
    take_range(fx, 3, 9);
    phx_topo_request_t req = phx_topo_request(4, 3);
    req.dist = PHX_TOPO_DIST_CYCLIC;
    carve_ok(fx, &req);
    phx_topo_grant_t *g2 = phx_topo_grant_create(fx->t);
    phx_error_t err = {{0}};
    assert_int_equal(phx_topo_carve(fx->f, &req, g2, &err), 0);
    for (int t = 0; t < 4; t++) {
        int n1, n2;
        const int *a = phx_topo_grant_task_cores(fx->g, t, &n1);
        const int *b = phx_topo_grant_task_cores(g2, t, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, (size_t)n1 * sizeof(int));
    }
    phx_topo_grant_destroy(g2);
}

static void test_bad_request(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_request_t req = phx_topo_request(0, 1);
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, EINVAL);
    req = phx_topo_request(1, 1);
    req.numa = 4;
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_non_null(strstr(err.text, "NUMA domain 4 does not exist"));
    req = phx_topo_request(33, 1);
    assert_int_equal(phx_topo_carve(fx->f, &req, fx->g, &err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_string_equal(err.text, "request needs 33 cores, 32 usable");
}

static void test_bundles(void **state)
{
    struct fx *fx = *state;
    take_range(fx, 0, 3);
    phx_topo_coreset_t *cores = phx_topo_coreset_create(32);
    uint64_t mem;
    assert_int_equal(phx_topo_free_numa_bundle(fx->f, 0, cores, &mem), 4);
    char *s = phx_topo_coreset_str(cores);
    assert_string_equal(s, "4-7");
    free(s);
    assert_int_equal(mem, 16 * GiB);
    assert_int_equal(phx_topo_free_socket_bundle(fx->f, 0, cores, &mem), 12);
    s = phx_topo_coreset_str(cores);
    assert_string_equal(s, "4-15");
    free(s);
    assert_int_equal(mem, 32 * GiB);
    take_range(fx, 4, 7); /* NUMA 0 now empty: no bundle for it */
    json_t *j = phx_topo_free_bundles_json(fx->f);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "cpus")), 24);
    json_t *numa = json_object_get(j, "numa");
    assert_int_equal(json_array_size(numa), 3);
    json_t *first = json_array_get(numa, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "numa")), 1);
    assert_int_equal(json_array_size(json_object_get(first, "cores")), 8);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(first, "cores"), 0)), 8);
    json_t *sockets = json_object_get(j, "sockets");
    assert_int_equal(json_array_size(sockets), 2);
    assert_int_equal(
        json_array_size(json_object_get(json_array_get(sockets, 0), "cores")), 8);
    json_decref(j);
    phx_topo_coreset_destroy(cores);
}

/* Random carve/alloc/release: live grants never overlap, counts add up,
 * and releasing everything restores the initial state. */
static void test_random_sequence(void **state)
{
    struct fx *fx = *state;
    enum { LIVE = 16 };
    phx_topo_grant_t *live[LIVE] = {0};
    phx_topo_free_t *initial = phx_topo_free_create(fx->t);
    uint32_t rng = 12345;
    phx_error_t err = {{0}};
    for (int step = 0; step < 3000; step++) {
        rng = rng * 1103515245 + 12345;
        int slot = (int)((rng >> 8) % LIVE);
        if (live[slot]) {
            assert_int_equal(phx_topo_free_release(fx->f, live[slot], &err), 0);
            phx_topo_grant_destroy(live[slot]);
            live[slot] = NULL;
        } else {
            phx_topo_request_t req = phx_topo_request(1 + (int)((rng >> 16) % 4),
                                                      1 + (int)((rng >> 20) % 12));
            req.dist = (rng >> 24) & 1 ? PHX_TOPO_DIST_CYCLIC : PHX_TOPO_DIST_BLOCK;
            req.mem_per_cpu = ((rng >> 26) & 3) * GiB;
            phx_topo_grant_t *g = phx_topo_grant_create(fx->t);
            if (phx_topo_carve(fx->f, &req, g, &err) == 0) {
                for (int i = 0; i < LIVE; i++)
                    if (live[i])
                        assert_false(phx_topo_coreset_intersects(
                            phx_topo_grant_cores(live[i]), phx_topo_grant_cores(g)));
                assert_int_equal(phx_topo_free_alloc(fx->f, g, &err), 0);
                live[slot] = g;
            } else {
                assert_int_equal(errno, ENOSPC);
                phx_topo_grant_destroy(g);
            }
        }
        int used = 0;
        for (int i = 0; i < LIVE; i++)
            if (live[i])
                used += phx_topo_coreset_count(phx_topo_grant_cores(live[i]));
        assert_int_equal(phx_topo_free_ncores(fx->f) + used, 128);
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i]) {
            assert_int_equal(phx_topo_free_release(fx->f, live[i], &err), 0);
            phx_topo_grant_destroy(live[i]);
        }
    assert_true(phx_topo_free_equal(fx->f, initial));
    phx_topo_free_destroy(initial);
}

#define T2(f) cmocka_unit_test_setup_teardown(f, setup_2x2x8, teardown)
#define T4(f) cmocka_unit_test_setup_teardown(f, setup_4x2x16, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T2(test_block_fills_numa_first),
        T2(test_numa_local_when_fragmented),
        T2(test_socket_local),
        T2(test_spans_sockets_only_when_needed),
        T2(test_cyclic_alternates),
        T4(test_cyclic_4_sockets),
        T2(test_tasks_per_socket),
        T2(test_named_bundle),
        T2(test_memory_limits_cores),
        T2(test_no_core_twice),
        T2(test_release_restores),
        T2(test_double_alloc_and_bad_release),
        T2(test_grant_other_topology),
        T2(test_deterministic),
        T2(test_bad_request),
        T2(test_bundles),
        T4(test_random_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
