/* batchd's mail (daemons/batchd/mail.c): which of a job's state changes
 * and ticks queue a mail, to whom, and the mail program's processes.
 * Mails are kept queued (every slot busy) to be read, except where a test
 * runs a real program. */
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/mail.c"
#include "daemons/batchd/mail_fmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <time.h>

static int64_t now_s = 100000;

#define FAKE_PID 0x7ffffff0

int64_t batchd_now(void)
{
    return now_s;
}

size_t batchd_live_from(batchd_t *b)
{
    (void)b;
    return 0;
}

/* b with mail to prog; busy: every slot taken, so mails stay queued */
static void mail_on(batchd_t *b, const char *prog, bool busy)
{
    struct batchd_mail *ml = calloc(1, sizeof(*ml));
    assert_non_null(ml);
    ml->prog = strdup(prog);
    for (size_t i = 0; busy && i < MAIL_RUNNING; i++) {
        ml->run[i].pid = FAKE_PID; /* no such process, never killed: */
        ml->run[i].since = INT64_MAX / 2;
    }
    b->mail = ml;
}

static void mail_off(batchd_t *b)
{
    for (size_t i = 0; i < MAIL_RUNNING; i++)
        if (b->mail->run[i].pid == FAKE_PID)
            b->mail->run[i].pid = 0;
    batchd_mail_stop(b);
}

static mail_msg_t *nth(batchd_t *b, size_t n)
{
    mail_msg_t *m = b->mail->head;
    while (m && n--)
        m = m->next;
    return m;
}

static bjob_t job(uint64_t id, const char *mail_type)
{
    return (bjob_t){.id = id,
                    .user = "alice",
                    .state = PHX_JOB_RUNNING,
                    .submit_time = 900,
                    .start_time = 1000,
                    .end_time = -1,
                    .spec = {.job_name = "sim", .mail_type = (char *)mail_type}};
}

/* phx requeue of a running job: end.c records the run as it ended
 * (FAILED, its requeue still asked), then requeues it.  One mail,
 * REQUEUE, as in Slurm: not a FAIL or END for a run that goes on. */
static void test_requeue_asked_no_end_mail(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t j = job(7, "ALL");
    j.requeue_asked = BATCHD_REQUEUE_YES;
    j.state = PHX_JOB_FAILED;
    j.end_time = 1010;
    batchd_mail_state(&b, &j, PHX_JOB_RUNNING);
    assert_int_equal(b.mail->queued, 0);
    j.requeue_asked = BATCHD_REQUEUE_NO;
    j.state = PHX_JOB_PENDING;
    batchd_mail_state(&b, &j, PHX_JOB_FAILED);
    assert_int_equal(b.mail->queued, 1);
    assert_non_null(strstr(nth(&b, 0)->argv[2], "Requeued"));
    mail_off(&b);
}

/* ... nor an array's summary end while one of its tasks is requeued */
static void test_requeue_asked_no_array_summary(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t t1 = job(41, "END"), t2 = job(42, "END");
    t1.array_job_id = t2.array_job_id = 41;
    t1.array_task_id = 1;
    t2.array_task_id = 2;
    t1.state = PHX_JOB_COMPLETED;
    t1.end_time = 1005;
    bjob_t *order[] = {&t1, &t2};
    b.order = order;
    b.njobs = 2;
    t2.requeue_asked = BATCHD_REQUEUE_YES;
    t2.state = PHX_JOB_FAILED;
    t2.end_time = 1010;
    batchd_mail_state(&b, &t2, PHX_JOB_RUNNING);
    assert_int_equal(b.mail->queued, 0);
    mail_off(&b);
}

/* a launch that could not be sent puts the job back as pending for
 * RESOURCES: it never ran, it is not requeued */
static void test_launch_undone_no_requeue_mail(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t j = job(8, "REQUEUE");
    j.state = PHX_JOB_PENDING;
    j.reason = PHX_REASON_RESOURCES;
    j.start_time = -1;
    batchd_mail_state(&b, &j, PHX_JOB_RUNNING);
    assert_int_equal(b.mail->queued, 0);
    mail_off(&b);
}

/* a --mail-user stored before it was checked at submission (the option
 * was "accepted and stored" until now) never reaches the mail program,
 * which runs as batchd's user, as an option */
static void test_recipient_checked_at_send(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t j = job(9, "BEGIN");
    j.spec.mail_user = "-Ssendmail=/tmp/x,ops@example.org,-oQ/tmp/y";
    batchd_mail_state(&b, &j, PHX_JOB_PENDING);
    assert_int_equal(b.mail->queued, 1);
    mail_msg_t *m = nth(&b, 0);
    assert_string_equal(m->argv[3], "ops@example.org");
    assert_null(m->argv[4]);
    /* none left: no mail */
    j.spec.mail_user = "-oQ/tmp/x";
    batchd_mail_state(&b, &j, PHX_JOB_PENDING);
    assert_int_equal(b.mail->queued, 1);
    mail_off(&b);
}

/* TIME_LIMIT_90 of the job's time limit: again for a limit changed by
 * phx update while it runs */
static void test_time_limit_changed(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t j = job(10, "TIME_LIMIT_90");
    j.spec.time_limit = 100;
    bjob_t *order[] = {&j};
    b.order = order;
    b.njobs = 1;
    batchd_mail_state(&b, &j, PHX_JOB_PENDING);
    batchd_mail_tick(&b, 1095);
    assert_int_equal(b.mail->queued, 1);
    j.spec.time_limit = 200; /* raised: its 90 % is at 1180 */
    batchd_mail_tick(&b, 1100);
    assert_int_equal(b.mail->queued, 1);
    batchd_mail_tick(&b, 1180);
    assert_int_equal(b.mail->queued, 2);
    assert_non_null(strstr(nth(&b, 1)->argv[2], "Reached 90% of time limit, Run time "
                                                "00:03:00 of 00:03:20"));
    batchd_mail_tick(&b, 1190);
    assert_int_equal(b.mail->queued, 2);
    mail_off(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requeue_asked_no_end_mail),
        cmocka_unit_test(test_requeue_asked_no_array_summary),
        cmocka_unit_test(test_launch_undone_no_requeue_mail),
        cmocka_unit_test(test_recipient_checked_at_send),
        cmocka_unit_test(test_time_limit_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
