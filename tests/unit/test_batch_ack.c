/* A change is answered once committed (daemons/batchd/ack.c), and a cancel
 * of a running job outlives a restart of phx-batchd (jobs.cancel_uid read
 * back by batchd_queue_load, the kill sent again by batchd_kills_resume; a
 * requeue clears it), against a private PostgreSQL with every migration
 * applied.  The HTTP answer functions are stubs that record the answer and
 * what the database held when it was sent; the e2e t0361 has the real
 * daemons. */
#define QUEUE_WORLD_NOW 1793456100 /* batchd's clock */
#define QUEUE_WORLD_PG
#include "tests/unit/queue_world.h"

#include "daemons/batchd/requeue.c"

#include <event2/event.h>

/* --- stubs of the HTTP answers --- */

/* The answer: its status and text, and what check (an SQL count) gave
 * from another connection when it was sent. */
static store_env_t *env;
static const char *check;
static int reply_code;
static char reply_text[512];
static long reply_check = -1;

static long count_check(void)
{
    return check ? store_count(env, check) : -1;
}

static long kill_check = -1; /* check's count at the last KILL */

static void kill_checked(void)
{
    kill_check = count_check();
}

static void answered(int code)
{
    reply_code = code;
    reply_check = count_check();
}

void phx_http_reply_json(struct evhttp_request *req, int code, json_t *body)
{
    (void)req;
    char *t = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(reply_text, sizeof(reply_text), "%s", t ? t : "");
    free(t);
    json_decref(body);
    answered(code);
}

void phx_http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    (void)req;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply_text, sizeof(reply_text), fmt, ap);
    va_end(ap);
    answered(code);
}

static int token;
#define REQ ((struct evhttp_request *)&token)

phx_http_deferred_t *phx_http_defer(struct evhttp_request *req)
{
    (void)req;
    return (phx_http_deferred_t *)&token;
}

struct evhttp_request *phx_http_deferred_req(const phx_http_deferred_t *d)
{
    (void)d;
    return REQ;
}

void phx_http_deferred_free(phx_http_deferred_t *d)
{
    (void)d;
}

/* --- a database, a batchd --- */

/* batchd (re)started on env's database: its queue loaded */
static batchd_t *batchd_new(void)
{
    batchd_t *b = batchd_on(env);
    b->max_requeue = 5;
    phx_error_t err = {{0}};
    if (batchd_queue_load(b, &err) < 0)
        fail_msg("load: %s", err.text);
    return b;
}

/* A fresh database with the project's migrations, and job id in state
 * (RUNNING: on one task "t<id>" of n01; an ended state: ended too). */
static void setup_db(void)
{
    env = migrated_env();
    reply_code = 0;
    reply_text[0] = 0;
    reply_check = -1;
    check = NULL;
    world.kills = 0;
    world.on_kill = kill_checked;
    kill_check = -1;
    world.now = QUEUE_WORLD_NOW;
}

static void add_job(int id, const char *state, const char *cancel_uid)
{
    char sql[1024];
    bool started = strcmp(state, "PENDING") != 0;
    bool ended = started && strcmp(state, "RUNNING") != 0;
    snprintf(sql, sizeof(sql),
             "INSERT INTO jobs (id, name, uid, gid, user_name, partition, spec, "
             "script, work_dir, submit_dir, submit_line, nodes_min, nodes_max, "
             "ntasks, state, start_time, end_time, node_list, alloc_cpus, "
             "alloc_nodes, run_tasks, cancel_uid, cancel_time) VALUES (%d, 'j', 0, 0, "
             "'root', 'batch', '{}', '#!/bin/sh', '/', '/', 'x', 1, 1, 1, '%s', %s, "
             "%s, %s, %s, %s, '[{\"id\": \"t%d\", \"host\": \"n01\", \"cpus\": 1, "
             "\"ended\": %s}]', %s, %s)",
             id, state, started ? "to_timestamp(1793456000)" : "NULL",
             ended ? "to_timestamp(1793456050)" : "NULL", started ? "'n01'" : "NULL",
             started ? "1" : "NULL", started ? "1" : "NULL", id,
             ended ? "true" : "false", cancel_uid ? cancel_uid : "NULL",
             cancel_uid ? "now()" : "NULL");
    store_exec(env, sql);
}

/* Run the loop until the answer (5 s at most). */
static void wait_answer(void)
{
    for (int i = 0; i < 500 && reply_code == 0; i++) {
        event_base_loop(env->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(10000);
    }
    assert_int_not_equal(reply_code, 0);
}

/* --- the answer waits for the commit --- */

/* phx requeue of a running job: its row's requeue_asked is written, and the
 * answer comes from that write's callback, after the commit. */
static void test_requeue_answered_after_commit(void **state)
{
    (void)state;
    setup_db();
    add_job(20, "RUNNING", NULL);
    batchd_t *b = batchd_new();
    check = "SELECT count(*) FROM jobs WHERE id = 20 AND requeue_asked = 'requeue'";
    batchd_ack_begin(b); /* as api.c's router does for a POST */
    batchd_api_requeue(b, REQ, 0, "20", 2, false);
    batchd_ack_end(b);
    assert_int_equal(reply_code, 0); /* not before the commit */
    assert_int_equal(batchd_job_find(b, 20)->requeue_asked, BATCHD_REQUEUE_YES);
    wait_answer();
    assert_int_equal(reply_code, 200);
    assert_int_equal(reply_check, 1); /* committed when answered */
    assert_string_equal(reply_text, "{\"job_id\":\"20\",\"refused\":0,\"requeued\":1}");
    /* a refusal writes nothing: answered at once */
    reply_code = 0;
    batchd_ack_begin(b);
    batchd_job_find(b, 20)->cancel_requested = true;
    batchd_api_requeue(b, REQ, 0, "20", 2, false);
    batchd_ack_end(b);
    assert_int_equal(reply_code, 409);
    store_drain(env);
    queue_free(b);
    store_env_free(env);
}

/* A write that fails (here: a fence no transaction passes) is answered 503
 * with its error, never 200. */
static void test_requeue_write_failed(void **state)
{
    (void)state;
    setup_db();
    add_job(21, "RUNNING", NULL);
    batchd_t *b = batchd_new();
    phx_error_t err = {{0}};
    assert_int_equal(
        phx_db_store_set_fence(env->store, "SELECT 1 WHERE false", 0, NULL, &err), 0);
    batchd_ack_begin(b);
    batchd_api_requeue(b, REQ, 0, "21", 2, false);
    batchd_ack_end(b);
    assert_int_equal(reply_code, 0);
    wait_answer();
    assert_int_equal(reply_code, 503);
    assert_non_null(strstr(reply_text, "could not record the change"));
    store_drain(env);
    assert_int_equal(phx_db_store_set_fence(env->store, NULL, 0, NULL, &err), 0);
    queue_free(b);
    store_env_free(env);
}

/* A cancel (api.c's handlers: batchd_job_cancel, then batchd_reply) is
 * answered once jobs.cancel_uid is committed; the answer holds no job
 * pointer (a job may leave memory before; batchd itself outlives every
 * store callback: main.c's stop destroys the store first). */
static void test_cancel_answered_after_commit(void **state)
{
    (void)state;
    setup_db();
    add_job(23, "RUNNING", NULL);
    add_job(24, "PENDING", NULL);
    batchd_t *b = batchd_new();
    check = "SELECT count(*) FROM jobs WHERE (id = 23 AND cancel_uid = 77 AND "
            "state = 'RUNNING') OR (id = 24 AND cancel_uid = 77 AND "
            "state = 'CANCELLED')";
    batchd_ack_begin(b);
    batchd_job_cancel(b, batchd_job_find(b, 23), 77);
    batchd_job_cancel(b, batchd_job_find(b, 24), 77);
    batchd_reply(b, REQ, 200, json_pack("{s:i}", "cancelled", 2));
    batchd_ack_end(b);
    assert_int_equal(reply_code, 0);
    wait_answer();
    assert_int_equal(reply_code, 200);
    assert_int_equal(reply_check, 2);
    store_drain(env);
    queue_free(b);
    store_env_free(env);
}

/* --- the kill of a change goes after its commit --- */

/* A running job cancelled: its tasks are killed only once jobs.cancel_uid
 * is committed (killed first, a batchd dying before the commit ended the
 * job FAILED after its restart, not CANCELLED).  A subscription meanwhile
 * (batchd_kills_resume) leaves it to the commit too. */
static void test_cancel_killed_after_commit(void **state)
{
    (void)state;
    setup_db();
    add_job(26, "RUNNING", NULL);
    batchd_t *b = batchd_new();
    b->fwc = (phx_fwc_t *)&token; /* subscribed */
    check = "SELECT count(*) FROM jobs WHERE id = 26 AND cancel_uid = 77";
    batchd_ack_begin(b);
    batchd_job_cancel(b, batchd_job_find(b, 26), 77);
    batchd_reply(b, REQ, 200, json_pack("{s:i}", "cancelled", 1));
    batchd_ack_end(b);
    assert_int_equal(world.kills, 0); /* not before the commit */
    batchd_kills_resume(b);
    assert_int_equal(world.kills, 0);
    wait_answer();
    assert_int_equal(reply_code, 200);
    assert_int_equal(world.kills, 1);
    assert_int_equal(kill_check, 1); /* committed when killed */
    batchd_kills_resume(b);          /* once committed: killed again on subscribing */
    assert_int_equal(world.kills, 2);
    b->fwc = NULL;
    store_drain(env);
    queue_free(b);
    store_env_free(env);
}

/* phx requeue of a running job: killed once requeue_asked is committed;
 * a cancel of a job whose requeue is not committed yet world.kills it once both
 * are (one kill) */
static void test_requeue_killed_after_commit(void **state)
{
    (void)state;
    setup_db();
    add_job(27, "RUNNING", NULL);
    add_job(28, "RUNNING", NULL);
    batchd_t *b = batchd_new();
    b->fwc = (phx_fwc_t *)&token;
    check = "SELECT count(*) FROM jobs WHERE id = 27 AND requeue_asked = 'requeue'";
    batchd_ack_begin(b);
    batchd_api_requeue(b, REQ, 0, "27", 2, false);
    batchd_ack_end(b);
    assert_int_equal(world.kills, 0);
    wait_answer();
    assert_int_equal(reply_code, 200);
    assert_int_equal(world.kills, 1);
    assert_int_equal(kill_check, 1);

    world.kills = 0;
    reply_code = 0;
    check = "SELECT count(*) FROM jobs WHERE id = 28 AND cancel_uid = 5";
    batchd_ack_begin(b);
    batchd_api_requeue(b, REQ, 0, "28", 2, false);
    batchd_ack_end(b);
    batchd_job_cancel(b, batchd_job_find(b, 28), 5); /* a cancel right after */
    assert_int_equal(world.kills, 0);
    store_drain(env);
    assert_int_equal(world.kills, 1);
    assert_int_equal(kill_check, 1);
    b->fwc = NULL;
    queue_free(b);
    store_env_free(env);
}

/* A cancel whose write fails is answered 503, and its kill still goes:
 * the change holds in memory until batchd restarts, as the answer says */
static void test_cancel_write_failed_kills(void **state)
{
    (void)state;
    setup_db();
    add_job(29, "RUNNING", NULL);
    batchd_t *b = batchd_new();
    b->fwc = (phx_fwc_t *)&token;
    phx_error_t err = {{0}};
    assert_int_equal(
        phx_db_store_set_fence(env->store, "SELECT 1 WHERE false", 0, NULL, &err), 0);
    batchd_ack_begin(b);
    batchd_job_cancel(b, batchd_job_find(b, 29), 77);
    batchd_reply(b, REQ, 200, json_pack("{s:i}", "cancelled", 1));
    batchd_ack_end(b);
    assert_int_equal(world.kills, 0);
    wait_answer();
    assert_int_equal(reply_code, 503);
    assert_int_equal(world.kills, 1);
    store_drain(env);
    assert_int_equal(phx_db_store_set_fence(env->store, NULL, 0, NULL, &err), 0);
    b->fwc = NULL;
    queue_free(b);
    store_env_free(env);
}

/* --- a cancel across a restart --- */

/* A running job cancelled before a restart is still being cancelled after
 * it: its tasks are killed again once subscribed and it ends CANCELLED
 * (end.c: cancel_requested); a pending one stays CANCELLED. */
static void test_cancel_survives_restart(void **state)
{
    (void)state;
    setup_db();
    add_job(30, "RUNNING", NULL);
    add_job(31, "PENDING", NULL);
    add_job(32, "RUNNING", NULL);
    batchd_t *b = batchd_new();
    bjob_t *j = batchd_job_find(b, 30);
    j->requeue_asked = BATCHD_REQUEUE_YES; /* a cancel after a requeue wins */
    batchd_job_persist(b, j);
    batchd_job_cancel(b, j, 1234);
    batchd_job_cancel(b, batchd_job_find(b, 31), 1235);
    store_drain(env);
    queue_free(b);

    b = batchd_new(); /* restarted */
    j = batchd_job_find(b, 30);
    assert_int_equal(j->state, PHX_JOB_RUNNING);
    assert_true(j->cancel_requested);
    assert_int_equal(j->requeue_asked, BATCHD_REQUEUE_NO);
    assert_false(batchd_job_find(b, 32)->cancel_requested);
    assert_int_equal(batchd_job_find(b, 31)->state, PHX_JOB_CANCELLED);
    b->fwc = (phx_fwc_t *)&token; /* subscribed: its live task killed again */
    batchd_kills_resume(b);
    assert_int_equal(world.kills, 1);
    b->fwc = NULL;
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE (id = 30 AND "
                                      "cancel_uid = 1234) OR (id = 31 AND "
                                      "cancel_uid = 1235 AND state = 'CANCELLED')"),
                     2);
    queue_free(b);
    store_env_free(env);
}

/* A cancelled job requeued (phx requeue of an ended job) runs again: the
 * cancel of its last run does not cancel it after a restart. */
static void test_requeue_clears_cancel(void **state)
{
    (void)state;
    setup_db();
    add_job(40, "CANCELLED", "1234");
    batchd_t *b = batchd_new();
    batchd_ack_begin(b);
    batchd_api_requeue(b, REQ, 0, "40", 2, false);
    batchd_ack_end(b);
    wait_answer();
    assert_int_equal(reply_code, 200);
    bjob_t *j = batchd_job_find(b, 40);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    /* it runs again (as sched.c starts it) */
    j->start_time = batchd_now();
    batchd_job_set_state(b, j, PHX_JOB_RUNNING, PHX_REASON_NONE);
    store_drain(env);
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 40 AND "
                                      "state = 'RUNNING' AND cancel_uid IS NULL"),
                     1);
    queue_free(b);
    b = batchd_new();
    assert_false(batchd_job_find(b, 40)->cancel_requested);
    queue_free(b);
    store_env_free(env);
}

/* A cancel of a pending job is two writes: jobs.cancel_uid, then the
 * CANCELLED state row.  When the first commits and the second does not (it
 * failed, here refused by a trigger; or batchd was killed between the two
 * transactions of the store), the job is still PENDING in the database, and
 * a restarted batchd runs it.  That stale cancel_uid must not cancel this
 * later run after the next restart: it is older than the run's start. */
static void test_stale_cancel_not_this_run(void **state)
{
    (void)state;
    setup_db();
    add_job(50, "PENDING", NULL);
    store_exec(env, "CREATE FUNCTION no_cancelled() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RAISE EXCEPTION 'no'; END $$");
    store_exec(env, "CREATE TRIGGER no_cancelled BEFORE UPDATE ON jobs FOR EACH ROW "
                    "WHEN (NEW.state = 'CANCELLED') EXECUTE FUNCTION no_cancelled()");
    batchd_t *b = batchd_new();
    batchd_ack_begin(b);
    batchd_job_cancel(b, batchd_job_find(b, 50), 1234);
    batchd_reply(b, REQ, 200, json_pack("{s:i}", "cancelled", 1));
    batchd_ack_end(b);
    wait_answer();
    assert_int_equal(reply_code, 503); /* the cancel was not recorded */
    store_drain(env);
    queue_free(b);
    store_exec(env, "DROP TRIGGER no_cancelled ON jobs");
    assert_int_equal(store_count(env, "SELECT count(*) FROM jobs WHERE id = 50 AND "
                                      "state = 'PENDING' AND cancel_uid = 1234"),
                     1);

    b = batchd_new(); /* restarted: the job is pending, and starts later */
    bjob_t *j = batchd_job_find(b, 50);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    world.now += 60;
    j->start_time = batchd_now(); /* as sched.c starts it, on n01 */
    assert_non_null(j->tasks = calloc(1, sizeof(*j->tasks)));
    j->ntasks = 1;
    snprintf(j->tasks[0].id, sizeof(j->tasks[0].id), "t50");
    snprintf(j->tasks[0].host, sizeof(j->tasks[0].host), "n01");
    j->tasks[0].cpus = j->tasks[0].tasks = 1;
    free(j->node_list);
    j->node_list = strdup("n01");
    j->alloc_cpus = 1;
    batchd_job_set_state(b, j, PHX_JOB_RUNNING, PHX_REASON_NONE);
    store_drain(env);
    queue_free(b);

    b = batchd_new(); /* restarted while it runs: not being cancelled */
    j = batchd_job_find(b, 50);
    assert_int_equal(j->state, PHX_JOB_RUNNING);
    assert_false(j->cancel_requested);
    b->fwc = (phx_fwc_t *)&token;
    batchd_kills_resume(b);
    assert_int_equal(world.kills, 0);
    b->fwc = NULL;
    /* a cancel of this run is one */
    batchd_job_cancel(b, j, 77);
    store_drain(env);
    queue_free(b);
    b = batchd_new();
    assert_true(batchd_job_find(b, 50)->cancel_requested);
    queue_free(b);
    store_env_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requeue_answered_after_commit),
        cmocka_unit_test(test_requeue_write_failed),
        cmocka_unit_test(test_cancel_answered_after_commit),
        cmocka_unit_test(test_cancel_killed_after_commit),
        cmocka_unit_test(test_requeue_killed_after_commit),
        cmocka_unit_test(test_cancel_write_failed_kills),
        cmocka_unit_test(test_cancel_survives_restart),
        cmocka_unit_test(test_requeue_clears_cancel),
        cmocka_unit_test(test_stale_cancel_not_this_run),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
