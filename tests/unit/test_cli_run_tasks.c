/* phx run's task count inside a job when -n is not given (cli/run_tasks.c),
 * as srun's inside a Slurm job: the job's tasks (its layout
 * PHX_TASKS_PER_NODE, else PHX_NTASKS); with -N, --ntasks-per-node, -w or
 * -x, none (0: the master's one task per node, or ntasks-per-node on
 * each).  Before, phx run always started one task per node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/run_tasks.c"

static long ntasks(long nodes, long n, long per_node, const char *w, const char *x,
                   const char *job_ntasks, const char *job_layout)
{
    phx_run_opts_t o = {nodes, n, per_node, 1, w, x, 0};
    return phx_run_job_ntasks(&o, job_ntasks, job_layout);
}

/* No option that says how many: the job's tasks */
static void test_job_tasks(void **state)
{
    (void)state;
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "4", "2(x2)"), 4);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "7", "2(x3),1"), 7);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "3", "3"), 3);
    /* the layout counts (the tasks the job has), PHX_NTASKS without one */
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "2", "2(x2)"), 4);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "6", NULL), 6);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "6", ""), 6);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "6", "2(x"), 6);
}

/* -n wins; -N, --ntasks-per-node, -w, -x shape the step by its nodes */
static void test_options_win(void **state)
{
    (void)state;
    assert_int_equal(ntasks(0, 3, 0, NULL, NULL, "8", "4(x2)"), 3);
    assert_int_equal(ntasks(2, 5, 0, NULL, NULL, "8", "4(x2)"), 5);
    assert_int_equal(ntasks(2, 0, 0, NULL, NULL, "8", "4(x2)"), 0);
    assert_int_equal(ntasks(1, 0, 0, NULL, NULL, "8", "4(x2)"), 0);
    assert_int_equal(ntasks(0, 0, 2, NULL, NULL, "8", "4(x2)"), 0);
    assert_int_equal(ntasks(0, 0, 0, "n2", NULL, "8", "4(x2)"), 0);
    assert_int_equal(ntasks(0, 0, 0, NULL, "n1", "8", "4(x2)"), 0);
}

/* Not in a batchd job's environment, or nonsense: the master's default */
static void test_no_job_count(void **state)
{
    (void)state;
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "", ""), 0);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "0", NULL), 0);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "-4", NULL), 0);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "4x", NULL), 0);
    assert_int_equal(ntasks(0, 0, 0, NULL, NULL, "99999999999999999999", NULL), 0);
}

/* The job's layout goes with the step when nothing shapes it and the job
 * has a node list and a layout that parses */
static void test_job_layout(void **state)
{
    (void)state;
    phx_run_opts_t o = {0, 0, 0, 1, NULL, NULL, 0};
    assert_true(phx_run_job_layout(&o, "n[1-2]", "1,2"));
    assert_true(phx_run_job_layout(&o, "n1", "4"));
    assert_false(phx_run_job_layout(&o, NULL, "1,2"));
    assert_false(phx_run_job_layout(&o, "", "1,2"));
    assert_false(phx_run_job_layout(&o, "n[1-2]", NULL));
    assert_false(phx_run_job_layout(&o, "n[1-2]", "2(x"));
    /* any option that says how many or where: the master's even spread */
    phx_run_opts_t shaped[] = {
        {0, 3, 0, 1, NULL, NULL, 0}, {2, 0, 0, 1, NULL, NULL, 0},
        {0, 0, 1, 1, NULL, NULL, 0}, {0, 0, 0, 1, "n1", NULL, 0},
        {0, 0, 0, 1, NULL, "n1", 0},
    };
    for (size_t i = 0; i < sizeof(shaped) / sizeof(shaped[0]); i++)
        assert_false(phx_run_job_layout(&shaped[i], "n[1-2]", "1,2"));
    /* -c does not shape the step */
    o.cpus_per_task = 2;
    assert_true(phx_run_job_layout(&o, "n[1-2]", "1,2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_tasks),
        cmocka_unit_test(test_options_win),
        cmocka_unit_test(test_no_job_count),
        cmocka_unit_test(test_job_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
