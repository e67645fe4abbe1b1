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
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
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

/* the store: the TIME_LIMIT* shares' writes (mail.c), counted */
static int writes;
static char write_param[128];

int batchd_write(batchd_t *b, const char *sql, int nparams, const char *const *params,
                 phx_db_done_f cb, void *arg, phx_error_t *err)
{
    (void)b;
    (void)sql;
    (void)cb;
    (void)arg;
    (void)err;
    writes++;
    snprintf(write_param, sizeof(write_param), "%s", nparams > 1 ? params[1] : "");
    return 0;
}

void batchd_job_written(const phx_error_t *err, phx_db_result_t *const *r, int n,
                        void *arg)
{
    (void)err;
    (void)r;
    (void)n;
    (void)arg;
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

static bool gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

/* a mail program that never ends is killed with whatever it started (its
 * sendmail): it runs in a session of its own */
static void test_stuck_mail_prog_killed_with_children(void **state)
{
    (void)state;
    char dir[] = "/tmp/phx-mail-XXXXXX", prog[128], pidf[128];
    assert_non_null(mkdtemp(dir));
    snprintf(prog, sizeof(prog), "%s/mail", dir);
    snprintf(pidf, sizeof(pidf), "%s/child", dir);
    FILE *f = fopen(prog, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nsleep 300 &\necho $! >%s.tmp\nmv %s.tmp %s\nwait\n", pidf,
            pidf, pidf);
    fclose(f);
    chmod(prog, 0755);
    batchd_t b = {0};
    mail_on(&b, prog, false);
    bjob_t j = job(11, "BEGIN");
    now_s = 1000;
    batchd_mail_state(&b, &j, PHX_JOB_PENDING);
    pid_t pid = b.mail->run[0].pid;
    assert_true(pid > 1);
    pid_t child = 0;
    for (int i = 0; i < 500 && !child; i++) {
        FILE *p = fopen(pidf, "r");
        if (!p || fscanf(p, "%d", &child) != 1)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        if (p)
            fclose(p);
    }
    assert_true(child > 0);
    batchd_mail_tick(&b, 1000 + MAIL_TIMEOUT + 1);
    for (int i = 0; i < 300 && b.mail->run[0].pid; i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        on_sigchld(SIGCHLD, 0, &b);
    }
    assert_int_equal(b.mail->run[0].pid, 0);
    assert_int_equal(b.mail->failed, 1);
    bool dead = false;
    for (int i = 0; i < 300 && !(dead = gone(child)); i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    if (!dead)
        kill(child, SIGKILL);
    assert_true(dead);
    unlink(pidf);
    unlink(prog);
    rmdir(dir);
    mail_off(&b);
}

/* SIGCHLD reaps the mail programs only: another child of batchd's (none
 * yet) keeps its status for its own waitpid */
static void test_sigchld_reaps_only_mail(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", false);
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0)
        _exit(3);
    while (!gone(other))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    on_sigchld(SIGCHLD, 0, &b);
    int st = 0;
    assert_int_equal(waitpid(other, &st, WNOHANG), other);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    mail_off(&b);
}

/* the mail program gets none of batchd's descriptors: its link to the
 * master (libevent's client sockets are not close-on-exec) would outlive
 * batchd's own close while a mail program (or its sendmail) runs */
static void test_mail_prog_gets_no_fd(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0); /* not close-on-exec, as the master's */
    char dir[] = "/tmp/phx-mail-XXXXXX", prog[128], out[128];
    assert_non_null(mkdtemp(dir));
    snprintf(prog, sizeof(prog), "%s/mail", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    FILE *f = fopen(prog, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\nif [ -e /proc/$$/fd/%d ]; then r=open; else r=closed; fi\n"
            "echo $r >%s.tmp\nmv %s.tmp %s\n",
            fds[1], out, out, out);
    fclose(f);
    chmod(prog, 0755);
    batchd_t b = {0};
    mail_on(&b, prog, false);
    bjob_t j = job(12, "BEGIN");
    batchd_mail_state(&b, &j, PHX_JOB_PENDING);
    char r[16] = "";
    for (int i = 0; i < 500 && !*r; i++) {
        FILE *o = fopen(out, "r");
        if (!o || !fgets(r, sizeof(r), o))
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        if (o)
            fclose(o);
    }
    for (int i = 0; i < 300 && b.mail->run[0].pid; i++) {
        on_sigchld(SIGCHLD, 0, &b);
        if (b.mail->run[0].pid)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    assert_string_equal(r, "closed\n");
    close(fds[0]);
    close(fds[1]);
    unlink(out);
    unlink(prog);
    rmdir(dir);
    mail_off(&b);
}

/* an array's summary: one mail, at its last task's end, with the worst
 * state; and cancelling an array of thousands of tasks, each task's end
 * looking at the array, takes no time (it scanned the whole queue for
 * each: 10,000 tasks among 10,000 jobs, 0.6 s of batchd's loop) */
static void test_array_summary_once_and_fast(void **state)
{
    (void)state;
    size_t nold = 50000, ntasks = 20000, n = nold + ntasks;
    bjob_t *jobs = calloc(n, sizeof(*jobs));
    bjob_t **order = calloc(n, sizeof(*order));
    assert_true(jobs && order);
    for (size_t i = 0; i < n; i++) {
        jobs[i] = job(i + 1, i < nold ? NULL : "END");
        jobs[i].state = i < nold ? PHX_JOB_COMPLETED : PHX_JOB_PENDING;
        jobs[i].start_time = -1;
        if (i >= nold) {
            jobs[i].array_job_id = nold + 1;
            jobs[i].array_task_id = (int64_t)(i - nold);
        }
        order[i] = &jobs[i];
    }
    jobs[nold + 5].state = PHX_JOB_FAILED; /* ran and failed */
    jobs[nold + 5].exit_code = 2;
    batchd_t b = {.order = order, .njobs = n};
    mail_on(&b, "/bin/true", true);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = nold; i < n; i++) { /* phx cancel */
        if (i == nold + 5)
            continue;
        jobs[i].state = PHX_JOB_CANCELLED;
        jobs[i].end_time = 1000;
        batchd_mail_state(&b, &jobs[i], PHX_JOB_PENDING);
        assert_int_equal(b.mail->queued, i + 1 == n);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s =
        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s < 1.0);
    assert_non_null(strstr(nth(&b, 0)->argv[2], "Array Summary Job_id=50001_* (50001) "
                                                "Name=sim Ended, Run time 00:00:00, "
                                                "FAILED, ExitCode 2"));
    mail_off(&b);
    free(order);
    free(jobs);
}

/* an array's summary carries its worst end: a task cancelled for a
 * dependency never met makes it INVALID_DEPEND (asked with END: not
 * "Ended"; asked alone: mailed although the last task to end completed) */
static void test_array_summary_invalid_depend(void **state)
{
    (void)state;
    const char *masks[] = {"END,INVALID_DEPEND", "INVALID_DEPEND", "END"};
    const char *want[] = {"Failed, dependency never met",
                          "Failed, dependency never met", "Ended"};
    for (int k = 0; k < 3; k++) {
        batchd_t b = {0};
        mail_on(&b, "/bin/true", true);
        bjob_t t1 = job(51, masks[k]), t2 = job(52, masks[k]);
        t1.array_job_id = t2.array_job_id = 51;
        t1.array_task_id = 1;
        t2.array_task_id = 2;
        t1.state = PHX_JOB_CANCELLED; /* never ran: its dependency failed */
        t1.reason = PHX_REASON_DEPENDENCY_NEVER;
        t1.start_time = -1;
        t1.end_time = 1001;
        bjob_t *order[] = {&t1, &t2};
        b.order = order;
        b.njobs = 2;
        t2.state = PHX_JOB_COMPLETED; /* the last to end */
        t2.end_time = 1010;
        batchd_mail_state(&b, &t2, PHX_JOB_RUNNING);
        assert_int_equal(b.mail->queued, 1);
        const char *subj = nth(&b, 0)->argv[2];
        assert_non_null(strstr(subj, "Array Summary Job_id=51_* (51)"));
        assert_non_null(strstr(subj, want[k]));
        assert_non_null(strstr(subj, "CANCELLED"));
        mail_off(&b);
    }
}

/* FAIL alone: an array whose last task completed but another failed is
 * mailed its summary, FAILED; none when no task failed */
static void test_array_summary_fail_alone(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t t1 = job(61, "FAIL"), t2 = job(62, "FAIL");
    t1.array_job_id = t2.array_job_id = 61;
    t1.array_task_id = 1;
    t2.array_task_id = 2;
    t1.state = PHX_JOB_FAILED;
    t1.exit_code = 4;
    t1.end_time = 1003;
    bjob_t *order[] = {&t1, &t2};
    b.order = order;
    b.njobs = 2;
    t2.state = PHX_JOB_COMPLETED;
    t2.end_time = 1010;
    batchd_mail_state(&b, &t2, PHX_JOB_RUNNING);
    assert_int_equal(b.mail->queued, 1);
    assert_non_null(strstr(nth(&b, 0)->argv[2], "Failed, Run time 00:00:10, FAILED, "
                                                "ExitCode 4"));
    t1.state = PHX_JOB_COMPLETED;
    batchd_mail_state(&b, &t2, PHX_JOB_RUNNING);
    assert_int_equal(b.mail->queued, 1);
    mail_off(&b);
}

/* a requeued job's REQUEUE mail shows the run requeued (requeue.c keeps
 * its length: the run's times are cleared before the mail) */
static void test_requeue_mail_run_time(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t j = job(13, "REQUEUE");
    j.state = PHX_JOB_PENDING;
    j.start_time = j.end_time = -1;
    j.requeued_run = 75;
    batchd_mail_state(&b, &j, PHX_JOB_FAILED);
    assert_int_equal(b.mail->queued, 1);
    assert_non_null(strstr(nth(&b, 0)->argv[2], "Requeued, Run time 00:01:15"));
    mail_off(&b);
}

/* a TIME_LIMIT* mail records the shares sent in jobs.spec, for a restart */
static void test_time_limit_shares_written(void **state)
{
    (void)state;
    batchd_t b = {0};
    mail_on(&b, "/bin/true", true);
    bjob_t j = job(14, "TIME_LIMIT_80,TIME_LIMIT");
    j.spec.time_limit = 100;
    bjob_t *order[] = {&j};
    b.order = order;
    b.njobs = 1;
    batchd_mail_state(&b, &j, PHX_JOB_PENDING);
    writes = 0;
    batchd_mail_tick(&b, 1050);
    assert_int_equal(writes, 0);
    batchd_mail_tick(&b, 1085);
    assert_int_equal(b.mail->queued, 1);
    assert_int_equal(writes, 1);
    char want[64];
    snprintf(want, sizeof(want), "[1000, 100, %u]",
             PHX_MAIL_TIME_LIMIT_80 | PHX_MAIL_TIME_LIMIT_50);
    assert_string_equal(write_param, want);
    batchd_mail_tick(&b, 1086);
    assert_int_equal(writes, 1);
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
        cmocka_unit_test(test_stuck_mail_prog_killed_with_children),
        cmocka_unit_test(test_sigchld_reaps_only_mail),
        cmocka_unit_test(test_mail_prog_gets_no_fd),
        cmocka_unit_test(test_array_summary_once_and_fast),
        cmocka_unit_test(test_array_summary_invalid_depend),
        cmocka_unit_test(test_array_summary_fail_alone),
        cmocka_unit_test(test_requeue_mail_run_time),
        cmocka_unit_test(test_time_limit_shares_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
