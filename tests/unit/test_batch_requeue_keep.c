/* A requeue asked for a running job is kept across a restart of
 * phx-batchd (daemons/batchd/requeue.c, migration 011): batchd_job_persist
 * writes j->requeue_asked to jobs.requeue_asked through the store, and
 * batchd_queue_load gives it back to the running job, against a private
 * PostgreSQL with every migration applied; a run recorded whose requeue
 * did not commit is requeued at start (batchd_requeue_resume).  The e2e
 * t0360 restarts a real batchd in between. */
#define QUEUE_WORLD_NOW 1793456100
#define QUEUE_WORLD_PG
#include "tests/unit/queue_world.h"

#include "daemons/batchd/requeue.c"

static void test_requeue_asked_kept(void **state)
{
    (void)state;
    store_env_t *e = migrated_env();
    phx_error_t err = {{0}};
    /* jobs 7 and 8 run (as batchd started them) */
    store_exec(e, "INSERT INTO jobs (id, name, uid, gid, user_name, partition, spec, "
                  "script, work_dir, submit_dir, submit_line, nodes_min, nodes_max, "
                  "ntasks, state, start_time, node_list, alloc_cpus, alloc_nodes, "
                  "run_tasks) SELECT i, 'j', 0, 0, 'root', 'batch', '{}', '#!/bin/sh', "
                  "'/', '/', 'x', 1, 1, 1, 'RUNNING', to_timestamp(1793456000), "
                  "'n01', 1, 1, '[{\"id\": \"t\", \"host\": \"n01\", \"cpus\": 1}]' "
                  "FROM generate_series(7, 8) i");

    /* requeuehold asked for job 7 by an operator, requeue for job 8 */
    batchd_t *b = batchd_on(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    bjob_t *j7 = batchd_job_find(b, 7), *j8 = batchd_job_find(b, 8);
    assert_non_null(j7);
    assert_non_null(j8);
    assert_int_equal(j7->requeue_asked, BATCHD_REQUEUE_NO);
    j7->requeue_asked = BATCHD_REQUEUE_HOLD_ADMIN;
    batchd_job_persist(b, j7);
    j8->requeue_asked = BATCHD_REQUEUE_YES;
    batchd_job_persist(b, j8);
    store_drain(e);
    queue_free(b);

    /* batchd restarts: the running jobs come back with their requeue */
    b = batchd_on(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    j7 = batchd_job_find(b, 7);
    j8 = batchd_job_find(b, 8);
    assert_int_equal(j7->state, PHX_JOB_RUNNING);
    assert_int_equal(j7->requeue_asked, BATCHD_REQUEUE_HOLD_ADMIN);
    assert_int_equal(j8->requeue_asked, BATCHD_REQUEUE_YES);

    /* carried out (end.c, requeue.c: PENDING, the request cleared) */
    j7->requeue_asked = BATCHD_REQUEUE_NO;
    batchd_job_set_state(b, j7, PHX_JOB_PENDING, PHX_REASON_HELD_ADMIN);
    store_drain(e);
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs WHERE id = 7 AND "
                                    "requeue_asked IS NULL AND state = 'PENDING' "
                                    "AND reason = 'JobHeldAdmin'"),
                     1);
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs WHERE id = 8 AND "
                                    "requeue_asked = 'requeue'"),
                     1);
    /* an ended job (the row written as batch_ended does, the request still
     * set: batchd stopped before the write making it PENDING committed) is
     * requeued by a restarted batchd (batchd_requeue_resume); before, it
     * stayed FAILED though its requeue had been answered */
    j8->end_time = batchd_now();
    batchd_job_set_state(b, j8, PHX_JOB_FAILED, PHX_REASON_NONE);
    store_drain(e);
    queue_free(b);
    b = batchd_on(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    assert_int_equal(batchd_job_find(b, 8)->requeue_asked, BATCHD_REQUEUE_YES);
    assert_int_equal(batchd_job_find(b, 7)->requeue_asked, BATCHD_REQUEUE_NO);
    batchd_requeue_resume(b);
    assert_int_equal(batchd_job_find(b, 8)->state, PHX_JOB_PENDING);
    assert_int_equal(batchd_job_find(b, 8)->requeue_asked, BATCHD_REQUEUE_NO);
    assert_int_equal(batchd_job_find(b, 8)->requeue_count, 1);
    store_drain(e);
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs WHERE id = 8 AND "
                                    "requeue_asked IS NULL AND state = 'PENDING'"),
                     1);
    queue_free(b);
    store_env_free(e);
}

/* A cancel that follows the requeue of a running job wins, also across a
 * restart of phx-batchd (end.c: "a cancel after it wins"): the cancel is
 * kept in jobs.cancel_uid only, so the requeue asked is dropped. */
static void test_cancel_after_requeue_survives_restart(void **state)
{
    (void)state;
    store_env_t *e = migrated_env();
    phx_error_t err = {{0}};
    store_exec(e,
               "INSERT INTO jobs (id, name, uid, gid, user_name, partition, spec, "
               "script, work_dir, submit_dir, submit_line, nodes_min, nodes_max, "
               "ntasks, state, start_time, node_list, alloc_cpus, alloc_nodes, "
               "run_tasks) VALUES (9, 'j', 0, 0, 'root', 'batch', '{}', '#!/bin/sh', "
               "'/', '/', 'x', 1, 1, 1, 'RUNNING', to_timestamp(1793456000), "
               "'n01', 1, 1, '[{\"id\": \"t\", \"host\": \"n01\", \"cpus\": 1}]')");
    batchd_t *b = batchd_on(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    bjob_t *j = batchd_job_find(b, 9);
    assert_non_null(j);
    /* phx requeue 9 (requeue.c: asked, persisted), then phx cancel 9 */
    j->requeue_asked = BATCHD_REQUEUE_YES;
    batchd_job_persist(b, j);
    batchd_job_cancel(b, j, 0);
    assert_true(j->cancel_requested);
    store_drain(e);
    queue_free(b);
    /* batchd restarts before the batch step ends */
    b = batchd_on(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    j = batchd_job_find(b, 9);
    assert_non_null(j);
    /* the cancel must still win: either known, or the requeue dropped */
    assert_true(j->cancel_requested || j->requeue_asked == BATCHD_REQUEUE_NO);
    queue_free(b);
    store_env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_after_requeue_survives_restart),
        cmocka_unit_test(test_requeue_asked_kept),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
