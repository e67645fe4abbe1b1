/* Mail across the jobs row (daemons/batchd/mail.c with queue.c and
 * requeue.c), against a private PostgreSQL with every migration applied:
 * a requeued job's REQUEUE mail shows the run requeued, and the TIME_LIMIT*
 * shares mailed are not mailed again by a restarted phx-batchd.  Mails are
 * kept queued (every slot of the mail programs busy) to be read. */
#define QUEUE_WORLD_NOW 1793456100
#define QUEUE_WORLD_PG
#include "tests/unit/queue_world.h"

#include "daemons/batchd/requeue.c"

#define FAKE_PID 0x7ffffff0

static void mail_on(batchd_t *b)
{
    struct batchd_mail *ml = calloc(1, sizeof(*ml));
    assert_non_null(ml);
    ml->prog = strdup("/bin/true");
    for (size_t i = 0; i < MAIL_RUNNING; i++) {
        ml->run[i].pid = FAKE_PID; /* no such process, never killed */
        ml->run[i].since = INT64_MAX / 2;
    }
    b->mail = ml;
}

static void mail_off(batchd_t *b)
{
    for (size_t i = 0; i < MAIL_RUNNING; i++)
        b->mail->run[i].pid = 0;
    batchd_mail_stop(b);
}

static const char *subject(batchd_t *b, size_t n)
{
    mail_msg_t *m = b->mail->head;
    while (m && n--)
        m = m->next;
    return m ? m->argv[2] : "";
}

/* job id, started at 1793456000 with spec, in state (ended at 1793456050) */
static void add_job(store_env_t *e, int id, const char *state, const char *spec)
{
    char sql[1024];
    bool ended = strcmp(state, "RUNNING") != 0;
    snprintf(sql, sizeof(sql),
             "INSERT INTO jobs (id, name, uid, gid, user_name, partition, spec, "
             "script, work_dir, submit_dir, submit_line, nodes_min, nodes_max, "
             "ntasks, state, start_time, end_time, node_list, alloc_cpus, "
             "alloc_nodes, run_tasks) VALUES (%d, 'j', 0, 0, 'root', 'batch', '%s', "
             "'#!/bin/sh', '/', '/', 'x', 1, 1, 1, '%s', to_timestamp(1793456000), "
             "%s, 'n01', 1, 1, '[{\"id\": \"t%d\", \"host\": \"n01\", "
             "\"cpus\": 1, \"ended\": %s}]')",
             id, spec, state, ended ? "to_timestamp(1793456050)" : "NULL", id,
             ended ? "true" : "false");
    store_exec(e, sql);
}

/* phx requeue of an ended job: "Requeued, Run time 00:00:50", its run's
 * (requeue.c cleared its times before the mail: 00:00:00) */
static void test_requeue_mail_run_time(void **state)
{
    (void)state;
    store_env_t *e = migrated_env();
    add_job(e, 70, "FAILED", "{\"mail_type\": \"REQUEUE\"}");
    batchd_t *b = batchd_on(e);
    phx_error_t err = {{0}};
    assert_int_equal(batchd_queue_load(b, &err), 0);
    mail_on(b);
    bjob_t *j = batchd_job_find(b, 70);
    assert_non_null(j);
    j->requeue_asked = BATCHD_REQUEUE_YES;
    batchd_requeue_now(b, j);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    assert_int_equal(b->mail->queued, 1);
    assert_non_null(
        strstr(subject(b, 0), "Job_id=70 Name= Requeued, Run time 00:00:50"));
    store_drain(e);
    mail_off(b);
    queue_free(b);
    store_env_free(e);
}

/* TIME_LIMIT_80 mailed, then batchd restarts: not mailed again for that
 * run; the 100 % share, reached later, is */
static void test_time_limit_shares_kept(void **state)
{
    (void)state;
    store_env_t *e = migrated_env();
    add_job(e, 71, "RUNNING",
            "{\"mail_type\": \"TIME_LIMIT_80,TIME_LIMIT\", \"time_limit\": 100, "
            "\"batchd\": {}}");
    batchd_t *b = batchd_on(e);
    phx_error_t err = {{0}};
    assert_int_equal(batchd_queue_load(b, &err), 0);
    assert_int_equal(batchd_job_find(b, 71)->spec.time_limit, 100);
    mail_on(b);
    batchd_mail_tick(b, 1793456085);
    assert_int_equal(b->mail->queued, 1);
    assert_non_null(strstr(subject(b, 0), "Reached 80% of time limit"));
    store_drain(e);
    mail_off(b);
    queue_free(b);

    b = batchd_on(e); /* restarted */
    assert_int_equal(batchd_queue_load(b, &err), 0);
    mail_on(b);
    batchd_mail_tick(b, 1793456090);
    assert_int_equal(b->mail->queued, 0);
    batchd_mail_tick(b, 1793456100);
    assert_int_equal(b->mail->queued, 1);
    assert_non_null(strstr(subject(b, 0), "Reached 100% of time limit"));
    store_drain(e);
    mail_off(b);
    queue_free(b);

    /* a later run (requeued, started again) mails its shares anew */
    store_exec(e,
               "UPDATE jobs SET start_time = to_timestamp(1793456200) WHERE id = 71");
    b = batchd_on(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    mail_on(b);
    batchd_mail_tick(b, 1793456285);
    assert_int_equal(b->mail->queued, 1);
    mail_off(b);
    store_drain(e);
    queue_free(b);
    store_env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requeue_mail_run_time),
        cmocka_unit_test(test_time_limit_shares_kept),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
