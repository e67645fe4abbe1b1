/* A change is acted on once committed, and both requeues leave the same job
 * (daemons/batchd/kill.c, requeue.c, end.c), against a private PostgreSQL
 * with every migration applied:
 *   - a held job released (hold.c) or a pending job updated (update_api.c)
 *     is not placed (order.c) before the write recording the change has
 *     committed: before, the next pass could start it first, and a batchd
 *     dying before the commit left it running while its row said held;
 *   - a job requeued after a node failure (end.c) is PENDING with no start
 *     time, as one requeued on demand (requeue.c): before, it kept the lost
 *     run's, which phx show, phx queue and acct_jobs (start, an elapsed time
 *     growing while it waits) showed; and the lost run is recorded as one
 *     ended for phx requeue (NODE_FAIL in job_events, its batch step, its
 *     charge in usage_daily): before, it left no trace but its PENDING. */
#define QUEUE_WORLD_NOW 1793456100 /* batchd's clock */
#define QUEUE_WORLD_PG
#define QUEUE_WORLD_UPDATE_API
#define QUEUE_WORLD_ACCOUNTS
#include "tests/unit/queue_world.h"

#include "daemons/batchd/accounts.c"
#include "daemons/batchd/end.c"
#include "daemons/batchd/hold.c"
#include "daemons/batchd/jobs_named.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/requeue.c"
#include "daemons/batchd/script.c"
#define key_of upd_key_of
#include "daemons/batchd/update.c"
#undef key_of
#define num(v, b, l) upd_num(v, b, l)
#define given(u, f)  upd_given(u, f)
#define refuse       upd_refuse
#define apply        upd_apply
#define apply_one    upd_apply_one
#define apply_text   upd_apply_text
#define refusal_list upd_refusal_list
#include "daemons/batchd/update_api.c"
#undef num
#undef given
#undef refuse
#undef apply
#undef apply_one
#undef apply_text
#undef refusal_list

/* --- stubs: what update_api.c calls of files not included --- */

int batchd_nodesel_check(const batchd_t *b, const phx_jobspec_t *s, size_t *field,
                         phx_error_t *err)
{
    (void)b;
    (void)s;
    (void)field;
    (void)err;
    return 0;
}

int batchd_resolve_partitions(const batchd_t *b, phx_jobspec_t *sp, uid_t uid,
                              gid_t gid, const char *user, json_t *warnings,
                              phx_error_t *err)
{
    (void)b;
    (void)sp;
    (void)uid;
    (void)gid;
    (void)user;
    (void)warnings;
    (void)err;
    return 0;
}

/* --- a database, a batchd --- */

static store_env_t *env;

/* Job id (uid 0, root) in state: PENDING with reason (held: JobHeldUser),
 * or RUNNING since 1793456000 on task "t<id>" of n01. */
static void add_job(int id, const char *state, const char *reason)
{
    char sql[1024], why[64] = "NULL";
    bool running = strcmp(state, "RUNNING") == 0;
    if (reason)
        snprintf(why, sizeof(why), "'%s'", reason);
    snprintf(sql, sizeof(sql),
             "INSERT INTO jobs (id, name, uid, gid, user_name, partition, spec, "
             "script, work_dir, submit_dir, submit_line, nodes_min, nodes_max, "
             "ntasks, state, reason, submit_time, start_time, node_list, alloc_cpus, "
             "alloc_nodes, run_tasks) VALUES (%d, 'j', 0, 0, 'root', 'batch', "
             "'{\"nodes_min\": 1, \"time_limit\": 1800, \"partition\": \"batch\"}', "
             "'#!/bin/sh', '/', '/', 'x', "
             "1, 1, 1, '%s', %s, to_timestamp(1793455000), %s, %s, %s, %s, %s)",
             id, state, why, running ? "to_timestamp(1793456000)" : "NULL",
             running ? "'n01'" : "NULL", running ? "1" : "NULL", running ? "1" : "NULL",
             running ? "'[{\"id\": \"t\", \"host\": \"n01\", \"cpus\": 1}]'" : "'[]'");
    store_exec(env, sql);
}

static batchd_t *batchd_new(void)
{
    batchd_t *b = batchd_on(env);
    b->max_requeue = 1;
    phx_error_t err = {{0}};
    if (batchd_queue_load(b, &err) < 0)
        fail_msg("load: %s", err.text);
    return b;
}

/* Is job id among the candidates of a pass now? */
static bool placeable(batchd_t *b, uint64_t id)
{
    bjob_t *cand[16];
    phx_prio_job_t prio[16];
    b->prio_n = 0; /* no cached order: every pending job is examined */
    size_t n = batchd_order(b, batchd_now(), 16, cand, prio);
    for (size_t i = 0; i < n; i++)
        if (cand[prio[i].id]->id == id)
            return true;
    return false;
}

/* --- a release or an update is placed once committed --- */

static void test_release_placed_after_commit(void **state)
{
    (void)state;
    env = migrated_env();
    add_job(30, "PENDING", "JobHeldUser");
    batchd_t *b = batchd_new();
    bjob_t *j = batchd_job_find(b, 30);
    assert_non_null(j);
    assert_true(batchd_job_held(j));
    assert_false(placeable(b, 30));
    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, j, 0, BATCHD_RELEASE, &err), 1);
    assert_false(batchd_job_held(j)); /* released in memory at once */
    /* its commit not acknowledged yet (the store's thread may have written
     * the row already: what counts is that its callback, which runs on the
     * loop in store_drain, has not): a pass now must not place it */
    assert_false(placeable(b, 30));
    /* committed: a pass is asked, and places it */
    int dirty = world.dirty;
    store_drain(env);
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 30 "
                                      "AND reason = 'JobHeldUser'"),
                     0);
    assert_true(world.dirty > dirty);
    assert_true(placeable(b, 30));
    queue_free(b);
    store_env_free(env);
}

static void test_update_placed_after_commit(void **state)
{
    (void)state;
    env = migrated_env();
    add_job(31, "PENDING", "Priority");
    batchd_t *b = batchd_new();
    bjob_t *j = batchd_job_find(b, 31);
    assert_non_null(j);
    assert_true(placeable(b, 31));
    batchd_update_t u;
    phx_error_t err = {{0}};
    const char *t[] = {"TimeLimit=10"};
    assert_int_equal(batchd_update_parse(t, 1, &u, &err), 0);
    char done[256];
    json_t *w = json_array();
    assert_int_equal(batchd_update_job(b, j, 0, &u, w, done, sizeof(done), &err), 1);
    json_decref(w);
    batchd_update_clear(&u);
    assert_int_equal(j->spec.time_limit, 600);
    /* the new shape's commit not acknowledged (as above): not placed */
    assert_false(placeable(b, 31));
    store_drain(env);
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 31 "
                                      "AND time_limit = 600"),
                     1);
    assert_true(placeable(b, 31));
    queue_free(b);
    store_env_free(env);
}

/* --- a node failure's requeue is a requeue's --- */

static json_t *lost_status(const char *task)
{
    return json_pack("{s:{s:s}, s:s, s:s, s:{s:i, s:i}}", "task_id", "value", task,
                     "state", "TASK_LOST", "reason", "REASON_AGENT_DISCONNECTED", "phx",
                     "exit_code", 0, "signal", 9);
}

static void test_node_fail_requeue_has_no_start(void **state)
{
    (void)state;
    env = migrated_env();
    add_job(32, "RUNNING", "None");
    batchd_t *b = batchd_new();
    bjob_t *j = batchd_job_find(b, 32);
    assert_non_null(j);
    assert_int_equal(j->start_time, 1793456000);
    json_t *st = lost_status("t");
    batchd_on_update(b, st);
    json_decref(st);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    assert_int_equal(j->reason, PHX_REASON_NODE_FAIL_REQUEUED);
    assert_int_equal(j->requeue_count, 1);
    /* as requeue_now leaves a job: no run, its age anew, the run's length
     * kept for its REQUEUE mail */
    assert_int_equal(j->start_time, -1);
    assert_int_equal(j->end_time, -1);
    assert_int_equal(j->eligible_time, -1);
    assert_int_equal(j->requeued_run, 100);
    assert_false(j->ending);
    assert_false(j->node_fail);
    json_t *shown = batchd_job_json(b, j, true); /* phx show, phx queue */
    assert_non_null(shown);
    assert_true(json_is_null(json_object_get(shown, "start_time")));
    json_decref(shown);
    store_drain(env);
    /* the row and the accounting: pending, no start, nothing elapsed */
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 32 AND "
                                      "state = 'PENDING' AND start_time IS NULL"),
                     1);
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM acct_jobs WHERE job_id = 32 "
                                 "AND start IS NULL AND elapsed_s = 0"),
                     1);
    /* the lost run recorded as phx requeue records the run it ends: its
     * end NODE_FAIL (at batchd's clock), then PENDING; its batch step; its
     * 100 s on 1 core charged in usage_daily, one job run */
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM job_events WHERE job_id = 32 "
                                 "AND from_state = 'RUNNING' AND to_state = "
                                 "'NODE_FAIL' AND time = to_timestamp(1793456100)"),
                     1);
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM job_events WHERE job_id = 32 "
                                 "AND from_state = 'NODE_FAIL' AND to_state = "
                                 "'PENDING' AND reason = 'NodeFailRequeued'"),
                     1);
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM job_steps WHERE job_id = 32 "
                                 "AND step_id = 'batch' AND state = 'NODE_FAIL' "
                                 "AND end_time = to_timestamp(1793456100)"),
                     1);
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM usage_daily WHERE user_name "
                                 "= 'root' AND jobs = 1 AND cpu_seconds = 100"),
                     1);
    queue_free(b);
    store_env_free(env);
}

/* batchd stops (killed, or deposed by a failover) between the write that
 * records the lost run and the one that makes the job PENDING: they may
 * commit in two transactions (the DB thread takes what is queued when it
 * wakes).  Made certain here by a trigger refusing the second.  The job
 * must be requeued by the next batchd, even when its end is older than
 * batchd.keep_ended: before, it stayed NODE_FAIL for good (and was not
 * even loaded), where the RUNNING -> PENDING write before reqrun could not
 * be cut in two. */
static void test_node_fail_requeue_survives_restart(void **state)
{
    (void)state;
    env = migrated_env();
    add_job(33, "RUNNING", "None");
    store_exec(env, "CREATE FUNCTION t_stop() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'batchd stopped'; END $$");
    store_exec(env, "CREATE TRIGGER t_stop BEFORE UPDATE ON jobs FOR EACH ROW WHEN "
                    "(OLD.state::text <> 'PENDING' AND NEW.state::text = 'PENDING') "
                    "EXECUTE FUNCTION t_stop()");
    batchd_t *b = batchd_new();
    json_t *st = lost_status("t");
    batchd_on_update(b, st);
    json_decref(st);
    store_drain(env);
    queue_free(b); /* the batchd that stopped */
    store_exec(env, "DROP TRIGGER t_stop ON jobs");
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 33 AND "
                                      "state = 'NODE_FAIL'"),
                     1);
    /* the next batchd, keeping ended jobs 60 s (the run ended long ago) */
    b = batchd_on(env);
    b->max_requeue = 1;
    b->keep_ended = 60;
    phx_error_t err = {{0}};
    if (batchd_queue_load(b, &err) < 0)
        fail_msg("load: %s", err.text);
    batchd_requeue_resume(b);
    bjob_t *j = batchd_job_find(b, 33);
    assert_non_null(j);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    assert_int_equal(j->reason, PHX_REASON_NODE_FAIL_REQUEUED);
    assert_int_equal(j->requeue_count, 1);
    assert_int_equal(j->start_time, -1);
    store_drain(env);
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 33 AND "
                                      "state = 'PENDING' AND requeue_count = 1 AND "
                                      "requeue_asked IS NULL AND start_time IS NULL"),
                     1);
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM job_events WHERE job_id = 33 "
                                 "AND from_state = 'NODE_FAIL' AND to_state = "
                                 "'PENDING' AND reason = 'NodeFailRequeued'"),
                     1);
    /* the lost run charged once */
    assert_int_equal(store_count(env,
                                 "SELECT count(*) FROM usage_daily WHERE user_name "
                                 "= 'root' AND jobs = 1 AND cpu_seconds = 100"),
                     1);
    queue_free(b);
    /* and a third batchd has nothing left to finish */
    b = batchd_new();
    batchd_requeue_resume(b);
    assert_int_equal(batchd_job_find(b, 33)->requeue_count, 1);
    queue_free(b);
    store_env_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_placed_after_commit),
        cmocka_unit_test(test_update_placed_after_commit),
        cmocka_unit_test(test_node_fail_requeue_has_no_start),
        cmocka_unit_test(test_node_fail_requeue_survives_restart),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
