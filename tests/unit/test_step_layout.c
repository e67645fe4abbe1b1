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

/* A node's share of ranks is bounded (master.max_step_tasks_per_node), and
 * -N x --ntasks-per-node never overflows an int. */
static void test_per_node_bound(void **state)
{
    (void)state;
    int counts[2], *rn = NULL;
    phx_step_req_t r = {
        .ntasks = 1 << 20, .cpus_per_task = 65536, .max_per_node = 1024};
    assert_int_equal(layout(r, 1, counts, &rn), -1);
    assert_null(rn);
    r = (phx_step_req_t){.ntasks = 2048, .cpus_per_task = 1, .max_per_node = 1024};
    assert_int_equal(layout(r, 2, counts, &rn), 2048);
    assert_int_equal(counts[0], 1024);
    assert_int_equal(counts[1], 1024);
    free(rn);
    rn = NULL;
    r = (phx_step_req_t){.ntasks = 2049, .cpus_per_task = 1, .max_per_node = 1024};
    assert_int_equal(layout(r, 2, counts, &rn), -1);
    r = (phx_step_req_t){
        .ntasks_per_node = 1025, .cpus_per_task = 1, .max_per_node = 1024};
    assert_int_equal(layout(r, 2, counts, &rn), -1);
    assert_null(rn);
    /* 40000 nodes x 65536 per node: 2.6e9 ranks, refused, not wrapped */
    int *many = calloc(40000, sizeof(int));
    assert_non_null(many);
    r = (phx_step_req_t){.ntasks_per_node = 65536, .cpus_per_task = 1};
    assert_int_equal(layout(r, 40000, many, &rn), -1);
    assert_null(rn);
    free(many);
}

/* -w and -x of a step: -w's nodes first, -x's dropped, names checked. */
static int pick(const char *want, const char *skip, phx_step_req_t *r, char *order,
                phx_error_t *err)
{
    static const char *const names[4] = {"n3", "n1", "n2", "n4"}; /* caller first */
    void *nodes[4] = {(void *)names[0], (void *)names[1], (void *)names[2],
                      (void *)names[3]};
    char *w[4] = {0}, *x[4] = {0}, buf[64];
    size_t nw = 0, nx = 0;
    snprintf(buf, sizeof(buf), "%s", want ? want : "");
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
        w[nw++] = strdup(t);
    char buf2[64];
    snprintf(buf2, sizeof(buf2), "%s", skip ? skip : "");
    for (char *t = strtok(buf2, ","); t; t = strtok(NULL, ","))
        x[nx++] = strdup(t);
    int n = 4;
    int rc = phx_step_pick_nodes(nodes, names, &n, w, nw, x, nx, r, err);
    order[0] = '\0';
    for (int i = 0; rc == 0 && i < n; i++)
        sprintf(order + strlen(order), "%s%s", i ? "," : "", (const char *)nodes[i]);
    for (size_t i = 0; i < nw; i++)
        free(w[i]);
    for (size_t i = 0; i < nx; i++)
        free(x[i]);
    return rc;
}

static void test_pick_nodes(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    char order[64];
    phx_step_req_t r = {.cpus_per_task = 1};
    assert_int_equal(pick("n2,n4", NULL, &r, order, &err), 0);
    assert_string_equal(order, "n2,n4,n3,n1"); /* the listed first, in job order */
    assert_int_equal(r.nodes, 2);              /* -N from the list */
    r = (phx_step_req_t){.nodes = 3, .cpus_per_task = 1};
    assert_int_equal(pick("n4", "n3", &r, order, &err), 0);
    assert_string_equal(order, "n4,n1,n2"); /* -N 3: n4 and the next ones */
    assert_int_equal(r.nodes, 3);
    int counts[4], *rn = NULL;
    assert_int_equal(phx_step_layout(&r, 3, NULL, counts, &rn, &err), 3);
    free(rn);
    r = (phx_step_req_t){.cpus_per_task = 1};
    assert_int_equal(pick(NULL, "n3,n2", &r, order, &err), 0);
    assert_string_equal(order, "n1,n4");
    assert_int_equal(r.nodes, 0); /* every node left */
    /* refusals */
    assert_int_equal(pick("n5", NULL, &r, order, &err), -1);
    assert_string_equal(err.text, "--nodelist: node n5 is not one of the job's nodes");
    assert_int_equal(pick(NULL, "n9", &r, order, &err), -1);
    assert_string_equal(err.text, "--exclude: node n9 is not one of the job's nodes");
    assert_int_equal(pick("n1", "n1", &r, order, &err), -1);
    assert_string_equal(err.text, "node n1 is both in --nodelist and in --exclude");
    r = (phx_step_req_t){.nodes = 1, .cpus_per_task = 1};
    assert_int_equal(pick("n1,n2", NULL, &r, order, &err), -1);
    assert_string_equal(err.text, "-N 1 is fewer nodes than --nodelist names (2): a "
                                  "step uses every node it lists");
    r = (phx_step_req_t){.cpus_per_task = 1};
    assert_int_equal(pick(NULL, "n1,n2,n3,n4", &r, order, &err), -1);
    assert_string_equal(err.text, "--exclude leaves none of the job's nodes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_nodes),
        cmocka_unit_test(test_block),
        cmocka_unit_test(test_cyclic_uneven),
        cmocka_unit_test(test_defaults_and_per_node),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_per_node_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
