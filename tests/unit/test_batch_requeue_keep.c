/* A requeue asked for a running job is kept across a restart of
 * phx-batchd (daemons/batchd/requeue.c, migration 011): batchd_job_persist
 * writes j->requeue_asked to jobs.requeue_asked through the store, and
 * batchd_queue_load gives it back to the running job, against a private
 * PostgreSQL with every migration applied.  The e2e t0360 restarts a real
 * batchd in between. */
#include "daemons/batchd/ack.c"
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/kill.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/priority.c"
#include "daemons/batchd/queue.c"
#include "daemons/batchd/usage.c"
#include "daemons/batchd/mail.c"
#include "daemons/batchd/mail_fmt.c"
#include "daemons/batchd/rows.c"
#include "daemons/batchd/timefmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>

#include "db/migrate.h"
#include "tests/unit/support/paths.h"
#include "tests/unit/support/storetest.h"

/* --- stubs --- */

int64_t batchd_now(void)
{
    return 1793456100;
}

void batchd_sched_job_done(batchd_t *b, bjob_t *j)
{
    (void)b;
    (void)j;
}

void batchd_request_forget(batchd_t *b, bjob_t *j)
{
    (void)b;
    j->request_id[0] = 0;
}

void batchd_request_drop(batchd_t *b, bjob_t *j)
{
    batchd_request_forget(b, j);
}

void batchd_request_clear(batchd_t *b)
{
    free(b->requested);
    b->requested = NULL;
}

static phx_test_pg_t pg;

static batchd_t *batchd_new(store_env_t *e)
{
    batchd_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->jobs = phx_hmap_create();
    b->array_tasks = phx_hmap_create();
    b->tasks = phx_hmap_create();
    b->usage = phx_hmap_create();
    b->keep_ended = 1000000000; /* the ended job too */
    b->store = e->store;
    b->dsn = e->dsn;
    return b;
}

static void batchd_free(batchd_t *b)
{
    batchd_queue_destroy(b);
    phx_hmap_destroy(b->usage);
    phx_hmap_destroy(b->tasks);
    phx_hmap_destroy(b->array_tasks);
    phx_hmap_destroy(b->jobs);
    free(b);
}

/* Run the loop until the store has written everything queued. */
static void drain(store_env_t *e)
{
    for (int i = 0; i < 1000; i++) {
        phx_db_store_stats_t st;
        phx_db_store_stats(e->store, &st);
        if (st.queued == 0)
            return;
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(10000);
    }
    fail_msg("the store did not drain");
}

/* A fresh database with the project's migrations applied. */
static store_env_t *migrated_env(void)
{
    store_env_t *e = store_env_new(&pg, NULL);
    char repo[1024], dir[1200];
    assert_int_equal(phx_test_repo_dir(repo, sizeof(repo)), 0);
    snprintf(dir, sizeof(dir), "%s/db/migrations", repo);
    phx_error_t err = {{0}};
    if (phx_db_migrate(e->conn, dir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return e;
}

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
    batchd_t *b = batchd_new(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    bjob_t *j7 = batchd_job_find(b, 7), *j8 = batchd_job_find(b, 8);
    assert_non_null(j7);
    assert_non_null(j8);
    assert_int_equal(j7->requeue_asked, BATCHD_REQUEUE_NO);
    j7->requeue_asked = BATCHD_REQUEUE_HOLD_ADMIN;
    batchd_job_persist(b, j7);
    j8->requeue_asked = BATCHD_REQUEUE_YES;
    batchd_job_persist(b, j8);
    drain(e);
    batchd_free(b);

    /* batchd restarts: the running jobs come back with their requeue */
    b = batchd_new(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    j7 = batchd_job_find(b, 7);
    j8 = batchd_job_find(b, 8);
    assert_int_equal(j7->state, PHX_JOB_RUNNING);
    assert_int_equal(j7->requeue_asked, BATCHD_REQUEUE_HOLD_ADMIN);
    assert_int_equal(j8->requeue_asked, BATCHD_REQUEUE_YES);

    /* carried out (end.c, requeue.c: PENDING, the request cleared) */
    j7->requeue_asked = BATCHD_REQUEUE_NO;
    batchd_job_set_state(b, j7, PHX_JOB_PENDING, PHX_REASON_HELD_ADMIN);
    drain(e);
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs WHERE id = 7 AND "
                                    "requeue_asked IS NULL AND state = 'PENDING' "
                                    "AND reason = 'JobHeldAdmin'"),
                     1);
    assert_int_equal(store_count(e, "SELECT count(*) FROM jobs WHERE id = 8 AND "
                                    "requeue_asked = 'requeue'"),
                     1);
    /* an ended job (the row written as batch_ended does, the request still
     * set) says nothing to a restarted batchd */
    j8->end_time = batchd_now();
    batchd_job_set_state(b, j8, PHX_JOB_FAILED, PHX_REASON_NONE);
    drain(e);
    batchd_free(b);
    b = batchd_new(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    assert_int_equal(batchd_job_find(b, 8)->requeue_asked, BATCHD_REQUEUE_NO);
    assert_int_equal(batchd_job_find(b, 7)->requeue_asked, BATCHD_REQUEUE_NO);
    batchd_free(b);
    store_env_free(e);
}

PHX_TEST_PG_GROUP_FIXTURES(pg)

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
    batchd_t *b = batchd_new(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    bjob_t *j = batchd_job_find(b, 9);
    assert_non_null(j);
    /* phx requeue 9 (requeue.c: asked, persisted), then phx cancel 9 */
    j->requeue_asked = BATCHD_REQUEUE_YES;
    batchd_job_persist(b, j);
    batchd_job_cancel(b, j, 0);
    assert_true(j->cancel_requested);
    drain(e);
    batchd_free(b);
    /* batchd restarts before the batch step ends */
    b = batchd_new(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    j = batchd_job_find(b, 9);
    assert_non_null(j);
    /* the cancel must still win: either known, or the requeue dropped */
    assert_true(j->cancel_requested || j->requeue_asked == BATCHD_REQUEUE_NO);
    batchd_free(b);
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
