/* The rank layout of MPI steps: block, cyclic, per-node counts, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/master/step_layout.c"

static int layout(phx_step_req_t r, int nnodes, int *counts, int **rank_node)
{
    phx_error_t err;
    int n = phx_step_layout(&r, nnodes, NULL, counts, rank_node, &err);
    if (n < 0)
        printf("refused: %s\n", err.text);
    return n;
}

static void test_block(void **state)
{
    (void)state;
    int counts[4], *rn = NULL;
    phx_step_req_t r = {.nodes = 2, .ntasks = 4, .cpus_per_task = 1};
    assert_int_equal(layout(r, 3, counts, &rn), 4);
    int want[] = {0, 0, 1, 1};
    assert_memory_equal(rn, want, sizeof(want));
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 0);
    free(rn);
}

static void test_cyclic_uneven(void **state)
{
    (void)state;
    int counts[3], *rn = NULL;
    phx_step_req_t r = {.nodes = 3, .ntasks = 7, .cpus_per_task = 1, .cyclic = true};
    assert_int_equal(layout(r, 3, counts, &rn), 7);
    int want[] = {0, 1, 2, 0, 1, 2, 0};
    assert_memory_equal(rn, want, sizeof(want));
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 2);
    free(rn);
}

static void test_defaults_and_per_node(void **state)
{
    (void)state;
    int counts[4], *rn = NULL;
    phx_step_req_t r = {.cpus_per_task = 1}; /* one rank on every node */
    assert_int_equal(layout(r, 4, counts, &rn), 4);
    free(rn);
    rn = NULL;
    r = (phx_step_req_t){.nodes = 2, .ntasks_per_node = 3, .cpus_per_task = 1};
    assert_int_equal(layout(r, 4, counts, &rn), 6);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 3);
    free(rn);
    rn = NULL;
    r = (phx_step_req_t){.ntasks = 2, .cpus_per_task = 1}; /* -n2 on 4 nodes: 2 */
    assert_int_equal(layout(r, 4, counts, &rn), 2);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 0);
    free(rn);
}

static void test_refusals(void **state)
{
    (void)state;
    int counts[4], *rn = NULL;
    phx_step_req_t r = {.nodes = 5, .cpus_per_task = 1};
    assert_int_equal(layout(r, 4, counts, &rn), -1);
    r = (phx_step_req_t){.nodes = 3, .ntasks = 2, .cpus_per_task = 1};
    assert_int_equal(layout(r, 4, counts, &rn), -1);
    r = (phx_step_req_t){.nodes = 2, .ntasks = 7, .ntasks_per_node = 3};
    assert_int_equal(layout(r, 4, counts, &rn), -1);
    assert_null(rn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block),
        cmocka_unit_test(test_cyclic_uneven),
        cmocka_unit_test(test_defaults_and_per_node),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
