/* batchd's in-memory queue (daemons/batchd/queue.c): an array task "A_T"
 * is found directly (the API's phx show/cancel A_T, afterok:A_T), as long
 * as it is in memory: added at submission or load, gone when it expires.
 * The queue and the stubs around it: queue_world.h. */
#include "tests/unit/queue_world.h"

static void finds_array_tasks(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *t0 = add(b, 100, 100, 0, PHX_JOB_PENDING);
    bjob_t *t2 = add(b, 102, 100, 2, PHX_JOB_RUNNING);
    bjob_t *single = add(b, 103, 0, -1, PHX_JOB_PENDING);
    /* ids out of order, another array with a stride */
    bjob_t *u10 = add(b, 201, 200, 10, PHX_JOB_PENDING);
    bjob_t *u5 = add(b, 200, 200, 5, PHX_JOB_PENDING);
    bjob_t *t1 = add(b, 101, 100, 1, PHX_JOB_PENDING);
    assert_ptr_equal(batchd_array_task_find(b, 100, 0), t0);
    assert_ptr_equal(batchd_array_task_find(b, 100, 1), t1);
    assert_ptr_equal(batchd_array_task_find(b, 100, 2), t2);
    assert_ptr_equal(batchd_array_task_find(b, 200, 5), u5);
    assert_ptr_equal(batchd_array_task_find(b, 200, 10), u10);
    assert_null(batchd_array_task_find(b, 100, 3));
    assert_null(batchd_array_task_find(b, 200, 0));
    assert_null(batchd_array_task_find(b, 101, 1)); /* a task's id is no array's */
    assert_null(batchd_array_task_find(b, 103, 0)); /* a single job has no tasks */
    assert_null(batchd_array_task_find(b, 103, -1));
    assert_null(batchd_array_task_find(b, 0, -1));
    assert_ptr_equal(batchd_job_find(b, 103), single);
    queue_free(b);
}

/* A task that ended more than keep_ended ago leaves memory and the index;
 * the others stay.  A requeued (live again) task is still found. */
static void expired_tasks_leave(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    int64_t now = batchd_now();
    bjob_t *t0 = add(b, 100, 100, 0, PHX_JOB_COMPLETED);
    t0->end_time = now - 601; /* expires */
    bjob_t *t1 = add(b, 101, 100, 1, PHX_JOB_COMPLETED);
    t1->end_time = now - 10; /* kept */
    bjob_t *t2 = add(b, 102, 100, 2, PHX_JOB_RUNNING);
    bjob_t *t3 = add(b, 103, 100, 3, PHX_JOB_FAILED);
    t3->end_time = now - 6000;
    batchd_queue_expire(b, now);
    assert_int_equal(b->njobs, 2);
    assert_null(batchd_array_task_find(b, 100, 0));
    assert_ptr_equal(batchd_array_task_find(b, 100, 1), t1);
    assert_ptr_equal(batchd_array_task_find(b, 100, 2), t2);
    assert_null(batchd_array_task_find(b, 100, 3));
    assert_int_equal(phx_hmap_count(b->array_tasks), 2);
    /* reloaded (as at a restart): found again */
    bjob_t *again = add(b, 103, 100, 3, PHX_JOB_PENDING);
    assert_ptr_equal(batchd_array_task_find(b, 100, 3), again);
    queue_free(b);
}

/* An ended job that a pending job depends on stays past keep_ended (as a
 * whole array's tasks do), so the dependency is still met when the waiter
 * is looked at; once nobody waits on it, it goes. */
static void dependencies_keep_their_jobs(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    int64_t now = batchd_now();
    bjob_t *a = add(b, 10, 0, -1, PHX_JOB_COMPLETED);
    a->end_time = now - 6000;
    a->start_time = now - 6100;
    bjob_t *arr = add(b, 20, 20, 0, PHX_JOB_COMPLETED);
    arr->end_time = now - 6000;
    bjob_t *other = add(b, 30, 0, -1, PHX_JOB_COMPLETED);
    other->end_time = now - 6000;
    bjob_t *waiter = add(b, 40, 0, -1, PHX_JOB_PENDING);
    phx_error_t err;
    /* it also waits for 50, which is still running */
    bjob_t *c = add(b, 50, 0, -1, PHX_JOB_RUNNING);
    assert_int_equal(phx_depend_parse("afterok:10:20:50", &waiter->dep, &err), 0);
    batchd_queue_expire(b, now);
    assert_ptr_equal(batchd_job_find(b, 10), a);
    assert_ptr_equal(batchd_array_task_find(b, 20, 0), arr);
    assert_null(batchd_job_find(b, 30)); /* named by no one */
    phx_dep_env_t env;
    batchd_dep_env(b, waiter, &env);
    assert_int_equal(phx_depend_eval(&waiter->dep, &env, now), PHX_DEP_WAITING);
    c->state = PHX_JOB_COMPLETED;
    c->end_time = now;
    assert_int_equal(phx_depend_eval(&waiter->dep, &env, now), PHX_DEP_SATISFIED);
    /* the waiter started: its dependencies may go */
    waiter->state = PHX_JOB_RUNNING;
    batchd_queue_expire(b, now);
    assert_null(batchd_job_find(b, 10));
    assert_null(batchd_array_task_find(b, 20, 0));
    queue_free(b);
}

/* afterok:A_T looks the task up the same way. */
static void dependency_on_a_task(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    add(b, 100, 100, 0, PHX_JOB_RUNNING);
    bjob_t *t1 = add(b, 101, 100, 1, PHX_JOB_COMPLETED);
    t1->start_time = 50;
    bjob_t *waiter = add(b, 102, 0, -1, PHX_JOB_PENDING);
    phx_dep_env_t env;
    phx_dep_job_t out = {0};
    batchd_dep_env(b, waiter, &env);
    assert_int_equal(env.lookup(env.arg, 100, 1, &out), 0);
    assert_int_equal(out.state, PHX_JOB_COMPLETED);
    assert_int_equal(out.start_time, 50);
    assert_int_equal(env.lookup(env.arg, 100, 0, &out), 0);
    assert_int_equal(out.state, PHX_JOB_RUNNING);
    assert_int_equal(env.lookup(env.arg, 100, 7, &out), -1);
    assert_int_equal(env.lookup(env.arg, 102, 0, &out), -1);
    queue_free(b);
}

/* Every task of a large array, by its index (the API did a queue scan per
 * lookup: O(n^2) over an array). */
static void large_array(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    enum { N = 20000 };
    for (uint64_t i = 0; i < N; i++)
        add(b, 1000 + i, 1000, (int64_t)i * 3, PHX_JOB_PENDING);
    for (uint64_t i = 0; i < N; i++) {
        bjob_t *j = batchd_array_task_find(b, 1000, (int64_t)i * 3);
        assert_non_null(j);
        assert_int_equal(j->id, 1000 + i);
        assert_null(batchd_array_task_find(b, 1000, (int64_t)i * 3 + 1));
    }
    queue_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_array_tasks),
        cmocka_unit_test(expired_tasks_leave),
        cmocka_unit_test(dependencies_keep_their_jobs),
        cmocka_unit_test(dependency_on_a_task),
        cmocka_unit_test(large_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
