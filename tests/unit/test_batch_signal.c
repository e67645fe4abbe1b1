/* POST /api/v1/jobs/ID/signal (daemons/batchd/api_signal.c, scancel -s):
 * the SIGNAL calls made per task and scope, the answer once the master has
 * answered them all, what is refused (a bad name or scope, a pending job)
 * and KILL cancelling a pending job.  test_task_signal.c has the checks of
 * the master and the agent.
 *
 * Unit tests cannot link daemon objects, so the sources are included; the
 * HTTP and scheduler client functions it calls are stubs recording what it
 * asked. */
#include "daemons/batchd/ack.c"
#include "daemons/batchd/api_signal.c"
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/outpath.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* --- stubs --- */

static const char *req_body; /* the request's body */
static int reply_code;
static char reply_text[1024];
static int cancels;

typedef struct call {
    char task[64];
    phx_task_signal_t s;
    phx_fwc_done_f done;
    void *arg;
} call_t;
static call_t calls[16];
static int ncalls;

json_t *phx_http_body_json(struct evhttp_request *req, size_t max, phx_error_t *err)
{
    (void)req;
    (void)max;
    json_t *j = json_loads(req_body, 0, NULL);
    if (!j)
        phx_error_set(err, "bad JSON");
    return j;
}

void phx_http_reply_json(struct evhttp_request *req, int code, json_t *body)
{
    (void)req;
    reply_code = code;
    char *t = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(reply_text, sizeof(reply_text), "%s", t ? t : "");
    free(t);
    json_decref(body);
}

void phx_http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    (void)req;
    va_list ap;
    va_start(ap, fmt);
    reply_code = code;
    vsnprintf(reply_text, sizeof(reply_text), fmt, ap);
    va_end(ap);
}

static int deferred_token;
phx_http_deferred_t *phx_http_defer(struct evhttp_request *req)
{
    (void)req;
    return (phx_http_deferred_t *)&deferred_token;
}

struct evhttp_request *phx_http_deferred_req(const phx_http_deferred_t *d)
{
    (void)d;
    return (struct evhttp_request *)&deferred_token;
}

void phx_http_deferred_free(phx_http_deferred_t *d)
{
    (void)d;
}

const char *phx_task_sig_to_name(phx_task_sig_to_t to)
{
    return to == PHX_SIG_TO_MAIN ? "main" : to == PHX_SIG_TO_ALL ? "all" : "steps";
}

int phx_fwc_signal(phx_fwc_t *c, const char *task_id, const phx_task_signal_t *s,
                   phx_fwc_done_f done, void *arg)
{
    (void)c;
    assert_true(ncalls < 16);
    call_t *k = &calls[ncalls++];
    snprintf(k->task, sizeof(k->task), "%s", task_id);
    k->s = *s;
    k->done = done;
    k->arg = arg;
    return 0;
}

void batchd_job_cancel(batchd_t *b, bjob_t *j, uid_t by)
{
    (void)b;
    (void)by;
    j->state = PHX_JOB_CANCELLED;
    cancels++;
}

/* --- the world: a 3-node running job 5, a pending job 6 --- */

static batchd_t b;
static bjob_t jobs[2];
static bjob_t *order[2];
static bj_task_t tasks[3];

static void setup_world(void)
{
    memset(&b, 0, sizeof(b));
    memset(jobs, 0, sizeof(jobs));
    memset(tasks, 0, sizeof(tasks));
    for (int i = 0; i < 3; i++) {
        snprintf(tasks[i].id, sizeof(tasks[i].id), "job-5-%d", i);
        snprintf(tasks[i].host, sizeof(tasks[i].host), "n%d", i + 1);
    }
    jobs[0].id = 5;
    jobs[0].state = PHX_JOB_RUNNING;
    jobs[0].tasks = tasks;
    jobs[0].ntasks = 3;
    jobs[1].id = 6;
    jobs[1].state = PHX_JOB_PENDING;
    order[0] = &jobs[0];
    order[1] = &jobs[1];
    b.order = order;
    b.njobs = 2;
    b.fwc = (phx_fwc_t *)&deferred_token; /* never dereferenced by the stubs */
    ncalls = cancels = reply_code = 0;
    reply_text[0] = '\0';
}

static void post_to(bjob_t *j, const char *body, uint64_t array_id)
{
    req_body = body;
    batchd_api_signal(&b, NULL, 1000, j, array_id);
}

/* As api.c routes ID: the array's tasks when ID is its array job id. */
static void post(bjob_t *j, const char *body)
{
    post_to(j, body, j->array_job_id == j->id ? j->id : 0);
}

static void answer_all(int status, const char *body)
{
    for (int i = 0; i < ncalls; i++)
        calls[i].done(NULL, status, body, calls[i].arg);
}

static void test_scopes(void **state)
{
    (void)state;
    setup_world();
    post(&jobs[0], "{\"signal\": \"SIGUSR1\"}"); /* steps by default */
    assert_int_equal(ncalls, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(calls[i].s.signal, SIGUSR1);
        assert_int_equal(calls[i].s.to, PHX_SIG_TO_STEPS);
    }
    assert_string_equal(calls[2].task, "job-5-2");
    assert_int_equal(reply_code, 0); /* waits for the master */
    answer_all(202, "");
    assert_int_equal(reply_code, 200);
    assert_non_null(strstr(reply_text, "\"tasks\":3"));
    assert_non_null(strstr(reply_text, "\"scope\":\"steps\""));

    setup_world();
    post(&jobs[0], "{\"signal\": \"12\", \"scope\": \"batch\"}");
    assert_int_equal(ncalls, 1); /* the batch shell's task only */
    assert_string_equal(calls[0].task, "job-5-0");
    assert_int_equal(calls[0].s.signal, SIGUSR2);
    assert_int_equal(calls[0].s.to, PHX_SIG_TO_MAIN);
    answer_all(202, "");
    assert_int_equal(reply_code, 200);

    setup_world();
    tasks[1].ended = true;
    post(&jobs[0], "{\"signal\": \"term\", \"scope\": \"full\"}");
    assert_int_equal(ncalls, 2);
    assert_int_equal(calls[0].s.to, PHX_SIG_TO_ALL);
    assert_int_equal(calls[1].s.to, PHX_SIG_TO_STEPS);
    assert_string_equal(calls[1].task, "job-5-2");
    assert_int_equal(calls[1].s.signal, SIGTERM);
    answer_all(202, "");
    assert_int_equal(reply_code, 200);
}

/* KILL without a scope cancels the job (Slurm's scancel -s KILL is
 * scancel); with -b it is a signal to the shell. */
static void test_kill_cancels(void **state)
{
    (void)state;
    setup_world();
    post(&jobs[0], "{\"signal\": \"9\"}");
    assert_int_equal(ncalls, 0);
    assert_int_equal(cancels, 1);
    assert_int_equal(reply_code, 200);
    assert_non_null(strstr(reply_text, "\"cancelled\":1"));
    setup_world();
    post(&jobs[0], "{\"signal\": \"KILL\", \"scope\": \"batch\"}");
    assert_int_equal(cancels, 0);
    assert_int_equal(ncalls, 1);
    assert_int_equal(calls[0].s.to, PHX_SIG_TO_MAIN);
    answer_all(202, "");
    assert_int_equal(reply_code, 200);
}

#define UNREACHABLE(t, n)                                                              \
    "{\"error\": \"SIGNAL: task " t ": agent \\\"" n "\\\" is unreachable\"}"

/* One node refused, the others got it: 200, with which node and why (a
 * retry would signal the others twice). */
static void test_master_refuses(void **state)
{
    (void)state;
    setup_world();
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    calls[0].done(NULL, 202, "", calls[0].arg);
    calls[1].done(NULL, 400, UNREACHABLE("job-5-1", "n2"), calls[1].arg);
    assert_int_equal(reply_code, 0);
    calls[2].done(NULL, 202, "", calls[2].arg);
    assert_int_equal(reply_code, 200);
    assert_non_null(strstr(reply_text, "\"message\":\"signalled on 2 of 3 nodes; n2: "
                                       "agent \\\"n2\\\" is unreachable\""));
    assert_non_null(strstr(reply_text, "\"tasks\":2"));
    assert_non_null(strstr(reply_text, "\"nodes\":3"));
    assert_non_null(strstr(reply_text, "\"failed\":[{\"error\":\"agent \\\"n2\\\" is "
                                       "unreachable\",\"job\":\"5\",\"job_id\":5,"
                                       "\"node\":\"n2\"}]"));

    setup_world(); /* every node refused: 409, each named */
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    calls[0].done(NULL, 400, UNREACHABLE("job-5-0", "n1"), calls[0].arg);
    calls[1].done(NULL, 0, NULL, calls[1].arg);
    calls[2].done(NULL, 400,
                  "{\"error\": \"SIGNAL: task job-5-2 is not running (TASK_KILLING)\"}",
                  calls[2].arg);
    assert_int_equal(reply_code, 409);
    assert_string_equal(reply_text,
                        "could not signal job 5: no node got it; n1: agent \"n1\" is "
                        "unreachable; n2: no answer from the master; n3: task job-5-2 "
                        "is not running (TASK_KILLING)");

    setup_world(); /* an older master */
    post(&jobs[0], "{\"signal\": \"USR1\", \"scope\": \"batch\"}");
    answer_all(400, "{\"error\": \"unsupported call type \\\"SIGNAL\\\"\"}");
    assert_int_equal(reply_code, 409);
    assert_non_null(strstr(reply_text, "n1: the master runs a version without SIGNAL"));

    setup_world(); /* batchd away from the master: nothing sent */
    b.fwc = NULL;
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    assert_int_equal(ncalls, 0);
    assert_int_equal(reply_code, 409);
    assert_non_null(strstr(reply_text, "n3: batchd is not connected to the master"));
}

/* A node where no step of the job runs had nothing to signal: not a failure
 * (scancel -s of a job whose steps run on some of its nodes exits 0), and
 * a 409 naming it only when no node had anything. */
#define NO_STEP(task, node)                                                            \
    "{\"error\": \"SIGNAL: task " task ": agent \\\"" node                             \
    "\\\" signalled nothing: " PHX_SIGNAL_NO_STEP "\"}"
static void test_no_step_there(void **state)
{
    (void)state;
    setup_world();
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    calls[0].done(NULL, 202, "", calls[0].arg);
    calls[1].done(NULL, 409, NO_STEP("job-5-1", "n2"), calls[1].arg);
    calls[2].done(NULL, 409, NO_STEP("job-5-2", "n3"), calls[2].arg);
    assert_int_equal(reply_code, 200);
    assert_null(strstr(reply_text, "failed"));
    assert_non_null(strstr(reply_text, "\"tasks\":1"));

    setup_world(); /* nowhere: 409 */
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    calls[0].done(NULL, 409, NO_STEP("job-5-0", "n1"), calls[0].arg);
    calls[1].done(NULL, 409, NO_STEP("job-5-1", "n2"), calls[1].arg);
    calls[2].done(NULL, 409, NO_STEP("job-5-2", "n3"), calls[2].arg);
    assert_int_equal(reply_code, 409);
    assert_string_equal(
        reply_text, "could not signal job 5: no step of the job runs on its 3 nodes");

    setup_world(); /* one idle, one failed, one sent: the failed one named */
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    calls[0].done(NULL, 202, "", calls[0].arg);
    calls[1].done(NULL, 409, NO_STEP("job-5-1", "n2"), calls[1].arg);
    calls[2].done(NULL, 400, UNREACHABLE("job-5-2", "n3"), calls[2].arg);
    assert_int_equal(reply_code, 200);
    assert_non_null(strstr(reply_text, "signalled on 1 of 3 nodes; n3: agent"));
    assert_null(strstr(reply_text, "n2"));
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *body, *why;
        int code;
    } bad[] = {
        {"{\"signal\": \"FOO\"}", "unknown signal \"FOO\"", 400},
        {"{\"signal\": \"SIGFOO\"}", "unknown signal", 400},
        {"{\"signal\": \"0\"}", "unknown signal", 400},
        {"{\"signal\": \"65\"}", "unknown signal", 400},
        {"{\"signal\": \"32\"}", "unknown signal", 400},
        {"{\"signal\": \"USR1\", \"scope\": \"all\"}", "\"scope\" must be", 400},
        {"{\"scope\": \"batch\"}", "signal", 400},
        {"{\"signal\": 10}", "signal", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup_world();
        post(&jobs[0], bad[i].body);
        assert_int_equal(ncalls, 0);
        assert_int_equal(reply_code, bad[i].code);
        if (!strstr(reply_text, bad[i].why))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].body, reply_text, bad[i].why);
    }
    setup_world();
    post(&jobs[1], "{\"signal\": \"USR1\"}");
    assert_int_equal(reply_code, 409);
    assert_non_null(strstr(reply_text, "job 6 is pending"));
    assert_int_equal(jobs[1].state, PHX_JOB_PENDING);
    setup_world();
    jobs[0].cancel_requested = true;
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    assert_int_equal(reply_code, 409);
    assert_non_null(strstr(reply_text, "job 5 is being cancelled"));
    setup_world();
    jobs[0].state = PHX_JOB_COMPLETED;
    post(&jobs[0], "{\"signal\": \"USR1\"}");
    assert_int_equal(reply_code, 409);
    assert_non_null(strstr(reply_text, "not running (COMPLETED)"));
}

static void test_kill_cancels_pending(void **state)
{
    (void)state;
    setup_world();
    post(&jobs[1], "{\"signal\": \"KILL\"}");
    assert_int_equal(ncalls, 0);
    assert_int_equal(cancels, 1);
    assert_int_equal(reply_code, 200);
    assert_non_null(strstr(reply_text, "\"cancelled\":1"));
}

static void test_array(void **state)
{
    (void)state;
    setup_world();
    jobs[0].array_job_id = 5; /* the array's job id is its first task's */
    jobs[1].array_job_id = 5;
    jobs[1].state = PHX_JOB_RUNNING;
    jobs[1].tasks = &tasks[2];
    jobs[1].ntasks = 1;
    post(&jobs[0], "{\"signal\": \"USR2\", \"scope\": \"batch\"}");
    assert_int_equal(ncalls, 2); /* each task's batch shell */
    assert_string_equal(calls[0].task, "job-5-0");
    assert_string_equal(calls[1].task, "job-5-2");
    answer_all(202, "");
    assert_non_null(strstr(reply_text, "\"tasks\":2"));
    /* A_0 (its id is the array's): that task alone, also for KILL */
    setup_world();
    jobs[0].array_job_id = jobs[1].array_job_id = 5;
    jobs[1].state = PHX_JOB_RUNNING;
    post_to(&jobs[0], "{\"signal\": \"KILL\"}", 0);
    assert_int_equal(cancels, 1);
    assert_int_equal(jobs[0].state, PHX_JOB_CANCELLED);
    assert_int_equal(jobs[1].state, PHX_JOB_RUNNING);
}

/* Array 4 whose task 4_0 (job 4) left memory: its array id names the tasks
 * still known (api.c finds 5, the first); a node refused is named with its
 * task. */
static void test_array_first_gone(void **state)
{
    (void)state;
    setup_world();
    jobs[0].array_job_id = jobs[1].array_job_id = 4;
    jobs[0].array_task_id = 1;
    jobs[1].array_task_id = 2;
    jobs[1].state = PHX_JOB_RUNNING;
    jobs[1].tasks = &tasks[2];
    jobs[1].ntasks = 1;
    post_to(&jobs[0], "{\"signal\": \"USR1\"}", 4);
    assert_int_equal(ncalls, 4); /* 3 nodes of 4_1, 1 of 4_2 */
    assert_string_equal(calls[3].task, "job-5-2");
    for (int i = 0; i < 3; i++)
        calls[i].done(NULL, 202, "", calls[i].arg);
    calls[3].done(NULL, 400, UNREACHABLE("job-5-2", "n3"), calls[3].arg);
    assert_int_equal(reply_code, 200);
    assert_non_null(strstr(reply_text, "\"job_id\":4,"));
    assert_non_null(strstr(reply_text, "signalled on 3 of 4 nodes; 4_2 on n3: agent"));
    /* both pending: refused in the array's name */
    setup_world();
    jobs[0].array_job_id = jobs[1].array_job_id = 4;
    jobs[0].state = PHX_JOB_PENDING;
    post_to(&jobs[0], "{\"signal\": \"USR1\"}", 4);
    assert_int_equal(reply_code, 409);
    assert_non_null(strstr(reply_text, "job 4 is pending"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_master_refuses),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_no_step_there),
        cmocka_unit_test(test_kill_cancels_pending),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_kill_cancels),
        cmocka_unit_test(test_array_first_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
