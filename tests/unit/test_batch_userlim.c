/* batchd's job limits (daemons/batchd/userlim.c): batchd.max_jobs and
 * max_jobs_per_user refuse a submission that would pass them, counting the
 * jobs of submissions not yet committed (parallel submissions of one user
 * one job under the limit let one through); every state change keeps the
 * counts; max_running_jobs_per_user keeps a user's further jobs out of a
 * pass's candidates (order.c) with QOSMaxJobsPerUserLimit; operators are
 * held to max_jobs only.  The queue and the stubs around it:
 * queue_world.h. */
#include "tests/unit/queue_world.h"

#include "daemons/batchd/hold.c"
#include "daemons/batchd/jobs_named.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/partition.c"

#define OPERATOR 500 /* world.operator_uid */
#define ALICE    1001
#define BOB      1002

static bjob_t *add_by(batchd_t *b, uint64_t id, phx_job_state_t state, uid_t uid)
{
    bjob_t *j = job_new(id, 0, -1, state);
    j->uid = uid;
    j->user = strdup(uid == ALICE ? "alice" : uid == BOB ? "bob" : "op");
    j->spec.ntasks = j->spec.cpus_per_task = 1;
    j->submit_time = 99000;
    j->reason = state == PHX_JOB_PENDING ? PHX_REASON_PRIORITY : PHX_REASON_NONE;
    return queue_put(b, j);
}

/* The status of a reservation of n jobs for uid (0: taken). */
static int reserve(batchd_t *b, uid_t uid, uint32_t n, char *why, size_t len)
{
    phx_error_t err = {0};
    int status = 0;
    if (batchd_userlim_reserve(b, uid, "alice", n, &status, &err) == 0)
        return 0;
    assert_true(status >= 400);
    snprintf(why, len, "%.200s", err.text);
    return status;
}

static void test_submit_limit(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    char why[256];
    b->max_jobs_per_user = 3;
    add_by(b, 1, PHX_JOB_RUNNING, ALICE);
    add_by(b, 2, PHX_JOB_PENDING, ALICE);
    add_by(b, 3, PHX_JOB_COMPLETED, ALICE); /* ended: not counted */
    add_by(b, 4, PHX_JOB_PENDING, BOB);
    /* one more of alice's fits; an array of 2 does not, whole */
    assert_int_equal(reserve(b, ALICE, 2, why, sizeof(why)), 403);
    assert_non_null(strstr(why, "user alice has 2 jobs pending or running"));
    assert_non_null(strstr(why, "batchd.max_jobs_per_user is 3"));
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 0);
    /* not committed yet, it counts: the next one (in parallel) is refused */
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 403);
    assert_non_null(strstr(why, "has 3 jobs"));
    /* committed: the job is in the queue and the reservation released */
    add_by(b, 5, PHX_JOB_PENDING, ALICE);
    batchd_userlim_release(b, ALICE, 1);
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 403);
    /* an end makes room; a requeue of an ended job takes it again */
    bjob_t *run = batchd_job_find(b, 1);
    batchd_job_set_state(b, run, PHX_JOB_FAILED, PHX_REASON_NONE);
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 0);
    batchd_userlim_release(b, ALICE, 1);
    batchd_job_set_state(b, run, PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 403);
    /* bob and operators have their own counts, operators no limit */
    assert_int_equal(reserve(b, BOB, 2, why, sizeof(why)), 0);
    world.operator_uid = OPERATOR;
    for (int i = 0; i < 5; i++)
        assert_int_equal(reserve(b, OPERATOR, 1, why, sizeof(why)), 0);
    world.operator_uid = 0;
    queue_free(b);
}

static void test_queue_limit(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    char why[256];
    b->max_jobs = 4;
    world.operator_uid = OPERATOR;
    add_by(b, 1, PHX_JOB_RUNNING, ALICE);
    add_by(b, 2, PHX_JOB_PENDING, BOB);
    assert_int_equal(reserve(b, BOB, 1, why, sizeof(why)), 0);
    /* 3 queued or on their way: an array of 2 is refused, operators too */
    assert_int_equal(reserve(b, OPERATOR, 2, why, sizeof(why)), 429);
    assert_non_null(strstr(why, "the queue holds 3 jobs and batchd.max_jobs is 4"));
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 0);
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 429);
    /* a submission refused after its check (a failed insert) gives its room
     * back */
    batchd_userlim_release(b, ALICE, 1);
    assert_int_equal(reserve(b, ALICE, 1, why, sizeof(why)), 0);
    world.operator_uid = 0;
    queue_free(b);
}

/* The ids batchd_order gives, in order, as "1,2". */
static void candidates(batchd_t *b, char *out, size_t len)
{
    bjob_t **cand = calloc(b->npending + 1, sizeof(*cand));
    phx_prio_job_t *prio = calloc(b->npending + 1, sizeof(*prio));
    assert_non_null(cand);
    assert_non_null(prio);
    b->prio_n = 0; /* made again: the test changes the world between calls */
    size_t n = batchd_order(b, batchd_now(), 0, cand, prio);
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%" PRIu64, i ? "," : "",
                 cand[i]->id);
    free(cand);
    free(prio);
}

static void test_running_limit(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    char ids[64];
    b->max_running_per_user = 2;
    world.operator_uid = OPERATOR;
    bjob_t *r1 = add_by(b, 1, PHX_JOB_RUNNING, ALICE);
    add_by(b, 2, PHX_JOB_RUNNING, ALICE);
    bjob_t *a3 = add_by(b, 3, PHX_JOB_PENDING, ALICE);
    add_by(b, 4, PHX_JOB_PENDING, BOB);
    add_by(b, 5, PHX_JOB_PENDING, OPERATOR);
    add_by(b, 6, PHX_JOB_RUNNING, OPERATOR);
    add_by(b, 7, PHX_JOB_RUNNING, OPERATOR);
    candidates(b, ids, sizeof(ids));
    assert_string_equal(ids, "4,5");
    assert_string_equal(phx_job_reason_name(a3->reason), "QOSMaxJobsPerUserLimit");
    assert_false(batchd_userlim_may_run(b, ALICE));
    assert_true(batchd_userlim_may_run(b, BOB));
    /* one of alice's ends: her next job is a candidate again */
    batchd_job_set_state(b, r1, PHX_JOB_COMPLETED, PHX_REASON_NONE);
    candidates(b, ids, sizeof(ids));
    assert_string_equal(ids, "3,4,5");
    assert_true(batchd_userlim_may_run(b, ALICE));
    /* it starts: the limit is reached again */
    batchd_job_set_state(b, a3, PHX_JOB_RUNNING, PHX_REASON_NONE);
    assert_false(batchd_userlim_may_run(b, ALICE));
    /* a reload raising the limit frees her at once */
    b->max_running_per_user = 0;
    assert_true(batchd_userlim_may_run(b, ALICE));
    world.operator_uid = 0;
    queue_free(b);
}

/* A job whose gang request the master holds nodes for (it was its pool's
 * reserved job) and whose user then reaches max_running_jobs_per_user (a
 * smaller job of hers backfilled) cannot start: its request is dropped, or
 * the master keeps those nodes for it, offered to it alone (sched.c:
 * offer_allows), until the request expires. */
static void test_running_limit_drops_request(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    char ids[64];
    b->max_running_per_user = 1;
    world.drops = 0;
    bjob_t *big = add_by(b, 1, PHX_JOB_PENDING, ALICE);
    snprintf(big->request_id, sizeof(big->request_id), "job-1-1");
    bjob_t *small = add_by(b, 2, PHX_JOB_PENDING, ALICE);
    add_by(b, 3, PHX_JOB_PENDING, BOB);
    /* alice has room: the request stands */
    candidates(b, ids, sizeof(ids));
    assert_string_equal(ids, "1,2,3");
    assert_string_equal(big->request_id, "job-1-1");
    assert_int_equal(world.drops, 0);
    /* her small job starts: the big one waits for the limit, not nodes */
    batchd_job_set_state(b, small, PHX_JOB_RUNNING, PHX_REASON_NONE);
    candidates(b, ids, sizeof(ids));
    assert_string_equal(ids, "3");
    assert_string_equal(phx_job_reason_name(big->reason), "QOSMaxJobsPerUserLimit");
    assert_string_equal(big->request_id, "");
    assert_int_equal(world.drops, 1);
    queue_free(b);
}

/* The same for an array's %N: a task held by the throttle stops the master
 * holding nodes for it (it kept them for 300 s before). */
static void test_array_throttle_drops_request(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    char ids[64];
    world.drops = 0;
    bjob_t *t0 = queue_put(b, job_new(10, 10, 0, PHX_JOB_PENDING));
    bjob_t *t1 = queue_put(b, job_new(11, 10, 1, PHX_JOB_PENDING));
    for (bjob_t *t = t0; t; t = t == t0 ? t1 : NULL) {
        t->uid = ALICE;
        t->user = strdup("alice");
        t->spec.ntasks = t->spec.cpus_per_task = 1;
        t->submit_time = 99000;
        t->array_max_run = 1;
    }
    snprintf(t1->request_id, sizeof(t1->request_id), "job-11-1");
    /* task 0 is counted as if it started: task 1 waits for the %1 */
    candidates(b, ids, sizeof(ids));
    assert_string_equal(ids, "10");
    assert_string_equal(phx_job_reason_name(t1->reason), "JobArrayTaskLimit");
    assert_string_equal(t1->request_id, "");
    assert_int_equal(world.drops, 1);
    queue_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_limit),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_running_limit),
        cmocka_unit_test(test_running_limit_drops_request),
        cmocka_unit_test(test_array_throttle_drops_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
