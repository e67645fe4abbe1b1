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

/* The job's layout as the step's: node i gets the job's count on it, an
 * uneven "1,2" as it is (the even split gave 2,1: node 0 the extra rank);
 * block numbers them node by node, cyclic in turn within those counts. */
static void test_job_counts(void **state)
{
    (void)state;
    int counts[3], *rn = NULL;
    int job[2] = {1, 2};
    phx_step_req_t r = {.cpus_per_task = 1, .job_counts = job};
    assert_int_equal(layout(r, 2, counts, &rn), 3);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 2);
    int want[] = {0, 1, 1};
    assert_memory_equal(rn, want, sizeof(want));
    free(rn);
    rn = NULL;
    int job3[3] = {1, 3, 2};
    r = (phx_step_req_t){
        .ntasks = 6, .cpus_per_task = 1, .cyclic = true, .job_counts = job3};
    assert_int_equal(layout(r, 3, counts, &rn), 6);
    int cyc[] = {0, 1, 2, 1, 2, 1};
    assert_memory_equal(rn, cyc, sizeof(cyc));
    free(rn);
    rn = NULL;
    /* refused: not with -N or --ntasks-per-node, -n not their sum, a node
     * without a task, above master.max_step_tasks_per_node */
    phx_error_t err;
    r = (phx_step_req_t){.nodes = 2, .cpus_per_task = 1, .job_counts = job};
    assert_int_equal(phx_step_layout(&r, 2, NULL, counts, &rn, &err), -1);
    r = (phx_step_req_t){.ntasks_per_node = 1, .cpus_per_task = 1, .job_counts = job};
    assert_int_equal(phx_step_layout(&r, 2, NULL, counts, &rn, &err), -1);
    r = (phx_step_req_t){.ntasks = 4, .cpus_per_task = 1, .job_counts = job};
    assert_int_equal(phx_step_layout(&r, 2, NULL, counts, &rn, &err), -1);
    assert_string_equal(err.text, "-n 4 is not the 3 tasks of the job's layout");
    int zero[2] = {1, 0};
    r = (phx_step_req_t){.cpus_per_task = 1, .job_counts = zero};
    assert_int_equal(phx_step_layout(&r, 2, NULL, counts, &rn, &err), -1);
    r = (phx_step_req_t){.cpus_per_task = 1, .max_per_node = 1, .job_counts = job};
    assert_int_equal(phx_step_layout(&r, 2, NULL, counts, &rn, &err), -1);
    assert_string_equal(
        err.text, "2 tasks on one node: at most 1 (master.max_step_tasks_per_node)");
    assert_null(rn);
}

/* The request's job_layout over the gang's nodes (caller first: n2, then
 * n1, n3): matched by name, the nodes put in the list's order. */
static int job_layout(const char *json, char *order, int *counts, phx_error_t *err)
{
    static const char *const names[3] = {"n2", "n1", "n3"};
    void *nodes[3] = {(void *)names[0], (void *)names[1], (void *)names[2]};
    json_error_t jerr;
    json_t *h = json_loads(json, 0, &jerr);
    assert_non_null(h);
    int rc = phx_step_job_layout(h, nodes, names, 3, counts, err);
    json_decref(h);
    order[0] = '\0';
    for (int i = 0; rc > 0 && i < 3; i++)
        sprintf(order + strlen(order), "%s%s:%d", i ? "," : "", (const char *)nodes[i],
                counts[i]);
    return rc;
}

static void test_job_layout_request(void **state)
{
    (void)state;
    char order[64];
    int counts[3] = {0};
    phx_error_t err = {{0}};
    assert_int_equal(job_layout("{\"ntasks\": 4}", order, counts, &err), 0);
    assert_int_equal(job_layout("{\"job_layout\": {\"nodelist\": \"n[1-3]\", "
                                "\"tasks_per_node\": \"1,2(x2)\"}}",
                                order, counts, &err),
                     1);
    assert_string_equal(order, "n1:1,n2:2,n3:2");
    assert_int_equal(job_layout("{\"job_layout\": {\"nodelist\": \"n3,n1,n2\", "
                                "\"tasks_per_node\": \"3,1,2\"}}",
                                order, counts, &err),
                     1);
    assert_string_equal(order, "n3:3,n1:1,n2:2");
    /* the layout then gives the ranks: n3 0-2, n1 3, n2 4-5 */
    int rc[3];
    int *rn = NULL;
    phx_step_req_t r = {.ntasks = 6, .cpus_per_task = 1, .job_counts = counts};
    assert_int_equal(phx_step_layout(&r, 3, NULL, rc, &rn, &err), 6);
    int want[] = {0, 0, 0, 1, 2, 2};
    assert_memory_equal(rn, want, sizeof(want));
    free(rn);
    static const struct {
        const char *json, *error;
    } bad[] = {
        {"{\"job_layout\": 3}", "field \"job_layout\" must be an object"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-3]\"}}", NULL},
        {"{\"job_layout\": {\"nodelist\": \"n[1-3]\", \"tasks_per_node\": \"1(x3)\"}, "
         "\"exclude\": \"n1\"}",
         "job_layout: not with --nodelist or --exclude"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-2],n9\", \"tasks_per_node\": "
         "\"1(x3)\"}}",
         "the job's layout (nodes \"n[1-2],n9\", tasks \"1(x3)\"): node n9 is not "
         "one of the job's nodes"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-2],n1\", \"tasks_per_node\": "
         "\"1(x3)\"}}",
         "the job's layout (nodes \"n[1-2],n1\", tasks \"1(x3)\"): node n1 is named "
         "twice"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-2]\", \"tasks_per_node\": \"1(x2)\"}}",
         "the job's layout (nodes \"n[1-2]\", tasks \"1(x2)\"): node n3 of the job is "
         "not in it"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-4]\", \"tasks_per_node\": \"1(x4)\"}}",
         "the job's layout (nodes \"n[1-4]\", tasks \"1(x4)\"): invalid host list "
         "\"n[1-4]\": host list expands to more than 3 names"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-3]\", \"tasks_per_node\": \"1(x2)\"}}",
         "the job's layout (nodes \"n[1-3]\", tasks \"1(x2)\"): 2 task counts for 3 "
         "nodes"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-3]\", \"tasks_per_node\": \"1,0,1\"}}",
         "the job's layout (nodes \"n[1-3]\", tasks \"1,0,1\"): 0 tasks on node n2 (1 "
         "to 1048576)"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-3]\", \"tasks_per_node\": "
         "\"1,2000000,1\"}}",
         "the job's layout (nodes \"n[1-3]\", tasks \"1,2000000,1\"): 2000000 tasks "
         "on node n2 (1 to 1048576)"},
        {"{\"job_layout\": {\"nodelist\": \"n[1-3]\", \"tasks_per_node\": \"2(x\"}}",
         NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int keep[3] = {7, 7, 7};
        err.text[0] = '\0';
        assert_int_equal(job_layout(bad[i].json, order, keep, &err), -1);
        printf("refused: %s\n", err.text);
        assert_true(err.text[0]);
        if (bad[i].error)
            assert_string_equal(err.text, bad[i].error);
        assert_int_equal(keep[0], 7);
    }
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
        cmocka_unit_test(test_job_counts),
        cmocka_unit_test(test_job_layout_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
