/* Mail across the jobs row (daemons/batchd/mail.c with queue.c and
 * requeue.c), against a private PostgreSQL with every migration applied:
 * a requeued job's REQUEUE mail shows the run requeued, and the TIME_LIMIT*
 * shares mailed are not mailed again by a restarted phx-batchd.  Mails are
 * kept queued (every slot of the mail programs busy) to be read. */
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
#include "daemons/batchd/requeue.c"
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

static int64_t now_s = 1793456100;

int64_t batchd_now(void)
{
    return now_s;
}

void batchd_sched_dirty(batchd_t *b)
{
    (void)b;
}

bool batchd_is_operator(const batchd_t *b, uid_t uid)
{
    (void)b;
    return uid == 0;
}

bool batchd_accounts_member(const baccounts_t *a, const char *user, const char *account)
{
    (void)a;
    (void)user;
    (void)account;
    return true;
}

void batchd_job_persist_spec(batchd_t *b, bjob_t *j)
{
    (void)b;
    (void)j; /* no job here has a dependency to drop */
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

PHX_TEST_PG_GROUP_FIXTURES(pg)

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
    batchd_t *b = batchd_new(e);
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
    drain(e);
    mail_off(b);
    batchd_free(b);
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
    batchd_t *b = batchd_new(e);
    phx_error_t err = {{0}};
    assert_int_equal(batchd_queue_load(b, &err), 0);
    assert_int_equal(batchd_job_find(b, 71)->spec.time_limit, 100);
    mail_on(b);
    batchd_mail_tick(b, 1793456085);
    assert_int_equal(b->mail->queued, 1);
    assert_non_null(strstr(subject(b, 0), "Reached 80% of time limit"));
    drain(e);
    mail_off(b);
    batchd_free(b);

    b = batchd_new(e); /* restarted */
    assert_int_equal(batchd_queue_load(b, &err), 0);
    mail_on(b);
    batchd_mail_tick(b, 1793456090);
    assert_int_equal(b->mail->queued, 0);
    batchd_mail_tick(b, 1793456100);
    assert_int_equal(b->mail->queued, 1);
    assert_non_null(strstr(subject(b, 0), "Reached 100% of time limit"));
    drain(e);
    mail_off(b);
    batchd_free(b);

    /* a later run (requeued, started again) mails its shares anew */
    store_exec(e,
               "UPDATE jobs SET start_time = to_timestamp(1793456200) WHERE id = 71");
    b = batchd_new(e);
    assert_int_equal(batchd_queue_load(b, &err), 0);
    mail_on(b);
    batchd_mail_tick(b, 1793456285);
    assert_int_equal(b->mail->queued, 1);
    mail_off(b);
    drain(e);
    batchd_free(b);
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
