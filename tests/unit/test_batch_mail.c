/* batchd: which state changes mail a job's user, when its time limit
 * shares are due, what the subject says, and which --mail-user values are
 * refused (daemons/batchd/mail.h, mail_fmt.c, jobspec.c). */
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/mail_fmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_mask(void **state)
{
    (void)state;
    assert_int_equal(phx_mail_mask(NULL), 0);
    assert_int_equal(phx_mail_mask("NONE"), 0);
    assert_int_equal(phx_mail_mask("BEGIN,END"), PHX_MAIL_BEGIN | PHX_MAIL_END);
    assert_int_equal(phx_mail_mask("end,fail"), PHX_MAIL_END | PHX_MAIL_FAIL);
    unsigned all = phx_mail_mask("ALL");
    assert_true(all & PHX_MAIL_BEGIN && all & PHX_MAIL_END && all & PHX_MAIL_FAIL &&
                all & PHX_MAIL_REQUEUE && all & PHX_MAIL_INVALID_DEPEND);
    assert_false(all & PHX_MAIL_TIMED); /* as Slurm's ALL */
    assert_false(all & PHX_MAIL_ARRAY_TASKS);
    assert_int_equal(phx_mail_mask("TIME_LIMIT_80,ARRAY_TASKS"),
                     PHX_MAIL_TIME_LIMIT_80 | PHX_MAIL_ARRAY_TASKS);
    assert_int_equal(phx_mail_mask("BEGIN,NONE"), 0); /* NONE clears */
    assert_int_equal(phx_mail_mask("TIME_LIMIT"), PHX_MAIL_TIME_LIMIT); /* not _90 */
}

static void test_event(void **state)
{
    (void)state;
    unsigned all = phx_mail_mask("ALL");
    assert_int_equal(phx_mail_event(all, PHX_JOB_PENDING, PHX_JOB_RUNNING, 0),
                     PHX_MAIL_BEGIN);
    assert_int_equal(phx_mail_event(PHX_MAIL_END, PHX_JOB_PENDING, PHX_JOB_RUNNING, 0),
                     0);
    assert_int_equal(phx_mail_event(all, PHX_JOB_RUNNING, PHX_JOB_COMPLETED, 0),
                     PHX_MAIL_END);
    /* one mail for one end: FAIL when asked, else END */
    assert_int_equal(phx_mail_event(all, PHX_JOB_RUNNING, PHX_JOB_FAILED, 0),
                     PHX_MAIL_FAIL);
    assert_int_equal(phx_mail_event(PHX_MAIL_END, PHX_JOB_RUNNING, PHX_JOB_TIMEOUT, 0),
                     PHX_MAIL_END);
    assert_int_equal(
        phx_mail_event(PHX_MAIL_FAIL, PHX_JOB_RUNNING, PHX_JOB_COMPLETED, 0), 0);
    for (phx_job_state_t s = PHX_JOB_TIMEOUT; s <= PHX_JOB_OUT_OF_MEMORY; s++)
        assert_int_equal(phx_mail_event(PHX_MAIL_FAIL, PHX_JOB_RUNNING, s, 0),
                         PHX_MAIL_FAIL);
    /* a pending job cancelled: END; for a dependency never met: INVALID_DEPEND */
    assert_int_equal(phx_mail_event(all, PHX_JOB_PENDING, PHX_JOB_CANCELLED, 0),
                     PHX_MAIL_END);
    assert_int_equal(phx_mail_event(all, PHX_JOB_PENDING, PHX_JOB_CANCELLED,
                                    PHX_REASON_DEPENDENCY_NEVER),
                     PHX_MAIL_INVALID_DEPEND);
    assert_int_equal(phx_mail_event(PHX_MAIL_END, PHX_JOB_PENDING, PHX_JOB_CANCELLED,
                                    PHX_REASON_DEPENDENCY_NEVER),
                     PHX_MAIL_END);
    /* requeued, from a run or an end; a pending job's reason change is none */
    assert_int_equal(phx_mail_event(all, PHX_JOB_RUNNING, PHX_JOB_PENDING, 0),
                     PHX_MAIL_REQUEUE);
    assert_int_equal(phx_mail_event(all, PHX_JOB_FAILED, PHX_JOB_PENDING, 0),
                     PHX_MAIL_REQUEUE);
    assert_int_equal(phx_mail_event(all, PHX_JOB_PENDING, PHX_JOB_PENDING, 0), 0);
    /* a launch that could not be sent: back to PENDING for RESOURCES, no run */
    assert_int_equal(
        phx_mail_event(all, PHX_JOB_RUNNING, PHX_JOB_PENDING, PHX_REASON_RESOURCES), 0);
    assert_int_equal(phx_mail_event(0, PHX_JOB_RUNNING, PHX_JOB_COMPLETED, 0), 0);
}

static void test_timed(void **state)
{
    (void)state;
    unsigned reached;
    unsigned m = PHX_MAIL_TIME_LIMIT_50 | PHX_MAIL_TIME_LIMIT_90;
    /* limit 100 s from 1000 */
    assert_int_equal(phx_mail_timed_due(m, 0, 1000, 100, 1049, &reached), 0);
    assert_int_equal(reached, 0);
    assert_int_equal(phx_mail_timed_due(m, 0, 1000, 100, 1050, &reached),
                     PHX_MAIL_TIME_LIMIT_50);
    assert_int_equal(reached, PHX_MAIL_TIME_LIMIT_50);
    assert_int_equal(phx_mail_timed_due(m, reached, 1000, 100, 1085, &reached), 0);
    assert_int_equal(phx_mail_timed_due(m,
                                        PHX_MAIL_TIME_LIMIT_50 | PHX_MAIL_TIME_LIMIT_80,
                                        1000, 100, 1090, &reached),
                     PHX_MAIL_TIME_LIMIT_90);
    /* late (batchd was down): the highest share only; the lower ones count
     * as sent with it */
    assert_int_equal(phx_mail_timed_due(m, 0, 1000, 100, 1095, &reached),
                     PHX_MAIL_TIME_LIMIT_90);
    assert_true(reached & PHX_MAIL_TIME_LIMIT_50);
    assert_int_equal(
        phx_mail_timed_due(PHX_MAIL_TIME_LIMIT, 0, 1000, 100, 1100, &reached),
        PHX_MAIL_TIME_LIMIT);
    /* no limit, no start, nothing asked */
    assert_int_equal(phx_mail_timed_due(m, 0, 1000, 0, 99999, &reached), 0);
    assert_int_equal(phx_mail_timed_due(m, 0, -1, 100, 1100, &reached), 0);
    assert_int_equal(phx_mail_timed_due(PHX_MAIL_END, 0, 1000, 100, 1100, &reached), 0);
}

static void test_subject(void **state)
{
    (void)state;
    char s[512];
    phx_mail_job_t m = {.id = 42,
                        .name = "sim",
                        .state = PHX_JOB_RUNNING,
                        .submit_time = 1000,
                        .start_time = 1003,
                        .end_time = -1,
                        .time_limit = 3600,
                        .now = 1003};
    phx_mail_subject(&m, PHX_MAIL_BEGIN, s, sizeof(s));
    assert_string_equal(s, "Phalanx Job_id=42 Name=sim Began, Queued time 00:00:03");
    m.state = PHX_JOB_COMPLETED;
    m.end_time = 1003 + 3723;
    phx_mail_subject(&m, PHX_MAIL_END, s, sizeof(s));
    assert_string_equal(s, "Phalanx Job_id=42 Name=sim Ended, Run time 01:02:03, "
                           "COMPLETED, ExitCode 0");
    m.state = PHX_JOB_FAILED;
    m.exit_code = 3;
    m.end_time = 1003 + 86400 + 5;
    phx_mail_subject(&m, PHX_MAIL_FAIL, s, sizeof(s));
    assert_string_equal(s, "Phalanx Job_id=42 Name=sim Failed, Run time 1-00:00:05, "
                           "FAILED, ExitCode 3");
    m.state = PHX_JOB_CANCELLED;
    m.exit_code = 0;
    m.exit_signal = 15;
    m.end_time = 1010;
    phx_mail_subject(&m, PHX_MAIL_END, s, sizeof(s));
    assert_string_equal(s, "Phalanx Job_id=42 Name=sim Ended, Run time 00:00:07, "
                           "CANCELLED, Signal 15");
    m = (phx_mail_job_t){.id = 9,
                         .name = "a\nb\tc",
                         .state = PHX_JOB_RUNNING,
                         .start_time = 100,
                         .end_time = -1,
                         .time_limit = 600,
                         .now = 640};
    phx_mail_subject(&m, PHX_MAIL_TIME_LIMIT_90, s, sizeof(s));
    assert_string_equal(s, "Phalanx Job_id=9 Name=a?b?c Reached 90% of time limit, Run "
                           "time 00:09:00 of 00:10:00");
    m = (phx_mail_job_t){.id = 45,
                         .array_job_id = 40,
                         .array_task_id = 5,
                         .name = "arr",
                         .state = PHX_JOB_PENDING,
                         .start_time = 100,
                         .end_time = -1,
                         .now = 160};
    phx_mail_subject(&m, PHX_MAIL_REQUEUE, s, sizeof(s));
    assert_string_equal(
        s, "Phalanx Job_id=40_5 (45) Name=arr Requeued, Run time 00:01:00");
    m.array_summary = true;
    m.state = PHX_JOB_COMPLETED;
    m.end_time = 100;
    phx_mail_subject(&m, PHX_MAIL_END, s, sizeof(s));
    assert_string_equal(
        s, "Phalanx Array Summary Job_id=40_* (40) Name=arr Ended, Run time "
           "00:00:00, COMPLETED, ExitCode 0");
    phx_mail_subject(&m, PHX_MAIL_END, s, 20); /* truncated, terminated */
    assert_int_equal(strlen(s), 19);
}

static void test_mail_user(void **state)
{
    (void)state;
    assert_true(phx_jobspec_mail_user_valid("alice"));
    assert_true(phx_jobspec_mail_user_valid("a.b+hpc@example.org"));
    assert_true(phx_jobspec_mail_user_valid("a@x.org,b@y.org"));
    assert_false(phx_jobspec_mail_user_valid(""));
    assert_false(phx_jobspec_mail_user_valid("-oQ/tmp/x"));  /* an option */
    assert_false(phx_jobspec_mail_user_valid("a@x.org,-f")); /* after a comma too */
    assert_false(phx_jobspec_mail_user_valid("a b"));
    assert_false(phx_jobspec_mail_user_valid("a@x.org,"));
    assert_false(phx_jobspec_mail_user_valid("a;rm -rf /"));
    assert_false(phx_jobspec_mail_user_valid("a\nBcc: x@y"));
    assert_false(phx_jobspec_mail_user_valid("<a@b>"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask),      cmocka_unit_test(test_event),
        cmocka_unit_test(test_timed),     cmocka_unit_test(test_subject),
        cmocka_unit_test(test_mail_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
