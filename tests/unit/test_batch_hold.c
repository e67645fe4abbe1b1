/* batchd's holds (daemons/batchd/hold.c): a held job is no candidate of a
 * pass (order.c) until released, a hold drops the job's gang request, a
 * user may not release an operator's hold, a job that is not pending is
 * refused by name with its state, an array job id holds its pending tasks.
 * The queue and the stubs around it: queue_world.h. */
#include "tests/unit/queue_world.h"

#include "daemons/batchd/hold.c"
#include "daemons/batchd/jobs_named.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/partition.c"

#define OPERATOR 500 /* world.operator_uid */
#define ALICE    1001
#define BOB      1002

/* Job id of uid, pending for reason (or not pending: PHX_REASON_NONE). */
static bjob_t *add_by(batchd_t *b, uint64_t id, uint64_t array_id, int64_t task,
                      phx_job_state_t state, uid_t uid, phx_job_reason_t reason)
{
    bjob_t *j = job_new(id, array_id, task, state);
    j->reason = reason;
    j->uid = uid;
    j->user = strdup(uid == ALICE ? "alice" : "bob");
    j->spec.ntasks = j->spec.cpus_per_task = 1;
    j->submit_time = 99000;
    return queue_put(b, j);
}

/* The ids batchd_order gives, in order, as "1,2". */
static void candidates(batchd_t *b, char *out, size_t len)
{
    bjob_t **cand = calloc(b->npending + 1, sizeof(*cand));
    phx_prio_job_t *prio = calloc(b->npending + 1, sizeof(*prio));
    assert_non_null(cand);
    assert_non_null(prio);
    size_t n = batchd_order(b, batchd_now(), 0, cand, prio);
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%" PRIu64, i ? "," : "",
                 cand[prio[i].id]->id);
    free(cand);
    free(prio);
}

/* A job submitted held (-H: JobHeldUser, no eligible time) is left out of
 * every pass, however long; released, it is a candidate at once (the
 * cached order of the last second is made again) and eligible from then. */
static void held_jobs_wait_until_released(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *held = add_by(b, 1, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_HELD);
    bjob_t *free_ = add_by(b, 2, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    char got[64];
    candidates(b, got, sizeof(got));
    assert_string_equal(got, "2");
    assert_int_equal(held->reason, PHX_REASON_HELD);
    assert_int_equal(held->eligible_time, -1);
    assert_true(batchd_job_held(held));
    assert_false(batchd_job_held(free_));
    candidates(b, got, sizeof(got)); /* from the cached order */
    assert_string_equal(got, "2");

    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, held, ALICE, BATCHD_RELEASE, &err), 1);
    assert_int_equal(held->reason, PHX_REASON_PRIORITY);
    assert_false(batchd_job_held(held));
    assert_true(world.dirty > 0);
    candidates(b, got, sizeof(got));
    assert_string_equal(got, "1,2");
    assert_int_equal(held->eligible_time, batchd_now());
    /* releasing a job that is not held changes nothing */
    assert_int_equal(batchd_hold_job(b, held, ALICE, BATCHD_RELEASE, &err), 0);

    /* held again after it became eligible: out of the (cached) order */
    assert_int_equal(batchd_hold_job(b, free_, ALICE, BATCHD_HOLD, &err), 1);
    assert_int_equal(free_->reason, PHX_REASON_HELD);
    candidates(b, got, sizeof(got));
    assert_string_equal(got, "1");
    assert_int_equal(batchd_hold_job(b, free_, ALICE, BATCHD_HOLD, &err), 0);
    queue_free(b);
}

/* The job's gang request goes (the master stops holding nodes for it). */
static void hold_drops_the_gang_request(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *j = add_by(b, 7, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_RESOURCES);
    snprintf(j->request_id, sizeof(j->request_id), "job-7-3");
    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_HOLD, &err), 1);
    assert_int_equal(world.drops, 1);
    assert_int_equal(world.flushes, 1);
    assert_string_equal(j->request_id, "");
    queue_free(b);
}

/* An operator's hold is an admin hold: its owner may neither release it
 * nor make it its own; the operator may, and may also hold as a user. */
static void admin_holds(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *j = add_by(b, 3, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, j, OPERATOR, BATCHD_HOLD, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_HELD_ADMIN);
    assert_string_equal(phx_job_reason_name(j->reason), "JobHeldAdmin");
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_RELEASE, &err), -1);
    assert_int_equal(errno, EPERM);
    assert_string_equal(
        err.text, "job 3 is held by an operator: only an operator may release it");
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_HOLD, &err), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(j->reason, PHX_REASON_HELD_ADMIN);
    assert_int_equal(batchd_hold_job(b, j, OPERATOR, BATCHD_UHOLD, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_HELD);
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_RELEASE, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_PRIORITY);
    /* root is an operator too; a user's hold is a user hold */
    assert_int_equal(batchd_hold_job(b, j, 0, BATCHD_HOLD, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_HELD_ADMIN);
    assert_int_equal(batchd_hold_job(b, j, 0, BATCHD_RELEASE, &err), 1);
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_UHOLD, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_HELD);
    queue_free(b);
}

/* A running or ended job is refused by name, with its state. */
static void only_pending_jobs(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *r = add_by(b, 5, 0, -1, PHX_JOB_RUNNING, ALICE, PHX_REASON_NONE);
    bjob_t *t = add_by(b, 9, 8, 1, PHX_JOB_COMPLETED, ALICE, PHX_REASON_NONE);
    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, r, ALICE, BATCHD_HOLD, &err), -1);
    assert_int_equal(errno, EBUSY);
    assert_string_equal(
        err.text, "job 5 is not pending (RUNNING): only a pending job can be held");
    assert_int_equal(batchd_hold_job(b, t, OPERATOR, BATCHD_RELEASE, &err), -1);
    assert_string_equal(
        err.text,
        "job 8_1 is not pending (COMPLETED): only a pending job can be released");
    assert_int_equal(r->reason, PHX_REASON_NONE);
    queue_free(b);
}

/* Released, a job waits for what it waited for before: its dependency. */
static void released_to_its_dependency(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *j = add_by(b, 4, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_HELD);
    phx_error_t err = {{0}};
    assert_int_equal(phx_depend_parse("afterok:3", &j->dep, &err), 0);
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_RELEASE, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_DEPENDENCY);
    queue_free(b);
}

/* Released before its begin time, a job waits for it again (BeginTime), at
 * release and at the next pass; past it, it is a candidate. */
static void released_to_its_begin_time(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *j = add_by(b, 6, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_HELD);
    j->spec.begin_time = batchd_now() + 600;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_RELEASE, &err), 1);
    assert_int_equal(j->reason, PHX_REASON_BEGIN_TIME);
    char got[64];
    candidates(b, got, sizeof(got));
    assert_string_equal(got, "");
    assert_int_equal(j->reason, PHX_REASON_BEGIN_TIME);
    assert_int_equal(j->eligible_time, -1);

    bjob_t *k = add_by(b, 7, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_HELD);
    k->spec.begin_time = batchd_now() - 1; /* passed: no longer waited for */
    assert_int_equal(batchd_hold_job(b, k, ALICE, BATCHD_RELEASE, &err), 1);
    assert_int_equal(k->reason, PHX_REASON_PRIORITY);
    queue_free(b);
}

/* The ids of a request: an array job id holds its pending tasks (not the
 * running one), A_T and A_LIST those tasks; another user's jobs are not
 * matched (the API answers 404), an operator's are. */
static void request_ids(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *t0 = add_by(b, 100, 100, 0, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    bjob_t *t1 = add_by(b, 101, 100, 1, PHX_JOB_RUNNING, ALICE, PHX_REASON_NONE);
    bjob_t *t2 = add_by(b, 102, 100, 2, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    bjob_t *t3 = add_by(b, 103, 100, 3, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    bjob_t *other = add_by(b, 200, 0, -1, PHX_JOB_PENDING, BOB, PHX_REASON_PRIORITY);

    hold_run_t r = {.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "100"), 0);
    assert_int_equal(r.changed, 3);
    assert_int_equal(r.refused, 0);
    assert_int_equal(t0->reason, PHX_REASON_HELD);
    assert_int_equal(t1->reason, PHX_REASON_NONE);
    assert_int_equal(t2->reason, PHX_REASON_HELD);
    assert_int_equal(t3->reason, PHX_REASON_HELD);

    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_RELEASE};
    assert_int_equal(apply_text(&r, "100_2-3"), 0);
    assert_int_equal(r.changed, 2);
    assert_int_equal(t0->reason, PHX_REASON_HELD);
    assert_int_equal(t2->reason, PHX_REASON_PRIORITY);

    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "100_1"), 0); /* running: refused, 409 */
    assert_int_equal(r.matched, 1);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.status, 409);

    /* an array of no pending task: refused, 409 */
    bjob_t *done = add_by(b, 300, 300, 0, PHX_JOB_COMPLETED, ALICE, PHX_REASON_NONE);
    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "300"), 0);
    assert_int_equal(r.matched, 1);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.status, 409);
    assert_string_equal(r.refusals[0].text, "array job 300 has no pending task");
    assert_int_equal(done->reason, PHX_REASON_NONE);

    r = (hold_run_t){.b = b, .uid = BOB, .op = BATCHD_RELEASE};
    assert_int_equal(apply_text(&r, "100"), 0);
    assert_int_equal(apply_text(&r, "100_0"), 0);
    assert_int_equal(r.matched, 0);
    assert_int_equal(t0->reason, PHX_REASON_HELD);

    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "200"), 0);
    assert_int_equal(r.matched, 0);
    r = (hold_run_t){.b = b, .uid = OPERATOR, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "200"), 0);
    assert_int_equal(r.changed, 1);
    assert_int_equal(other->reason, PHX_REASON_HELD_ADMIN);
    r = (hold_run_t){.b = b, .uid = BOB, .op = BATCHD_RELEASE};
    assert_int_equal(apply_text(&r, "200"), 0);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.status, 403);

    assert_int_equal(apply_text(&r, "x"), -1);
    assert_int_equal(apply_text(&r, "100_"), -1);
    assert_int_equal(apply_text(&r, "100_1%2"), -1);
    assert_int_equal(apply_text(&r, "0"), -1);
    queue_free(b);
}

/* An array job id holds its pending tasks even once job A (task 0) has left
 * memory (ended keep_ended ago); an id naming no job nor array is 404. */
static void array_id_after_first_task_left(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *t1 = add_by(b, 101, 100, 1, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    bjob_t *t2 = add_by(b, 102, 100, 2, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    hold_run_t r = {.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "100"), 0);
    assert_int_equal(r.changed, 2);
    assert_int_equal(t1->reason, PHX_REASON_HELD);
    assert_int_equal(t2->reason, PHX_REASON_HELD);
    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_RELEASE};
    assert_int_equal(apply_text(&r, "100"), 0);
    assert_int_equal(r.changed, 2);
    assert_int_equal(t1->reason, PHX_REASON_PRIORITY);
    r = (hold_run_t){.b = b, .uid = BOB, .op = BATCHD_HOLD}; /* not his: 404 */
    assert_int_equal(apply_text(&r, "100"), 0);
    assert_int_equal(r.matched, 0);
    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "99"), 0);
    assert_int_equal(r.matched, 0);
    assert_ptr_equal(batchd_array_any_task(b, 100), t1);
    assert_null(batchd_array_any_task(b, 101));
    queue_free(b);
}

/* A job held after it became eligible, released later: its age starts
 * again at release (the time held does not count, as in Slurm). */
static void held_time_not_aged(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *j = add_by(b, 1, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    j->eligible_time = 1000; /* eligible long before, then held */
    phx_error_t err = {{0}};
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_HOLD, &err), 1);
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_RELEASE, &err), 1);
    char got[64];
    candidates(b, got, sizeof(got));
    assert_string_equal(got, "1");
    assert_int_equal(j->eligible_time, batchd_now());
    queue_free(b);
}

/* A partial refusal names every refused job, up to HOLD_REFUSALS_MAX and
 * then how many more. */
static void refusals_name_all(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    add_by(b, 100, 100, 0, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    add_by(b, 101, 100, 1, PHX_JOB_RUNNING, ALICE, PHX_REASON_NONE);
    add_by(b, 102, 100, 2, PHX_JOB_RUNNING, ALICE, PHX_REASON_NONE);
    hold_run_t r = {.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "100_0-2"), 0);
    assert_int_equal(r.refused, 2);
    json_t *w = refusal_list(&r);
    assert_int_equal(json_array_size(w), 2);
    assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "100_1"));
    assert_non_null(strstr(json_string_value(json_array_get(w, 1)), "100_2"));
    json_decref(w);

    for (uint64_t i = 3; i < 30; i++)
        add_by(b, 100 + i, 100, (int64_t)i, PHX_JOB_RUNNING, ALICE, PHX_REASON_NONE);
    r = (hold_run_t){.b = b, .uid = ALICE, .op = BATCHD_HOLD};
    assert_int_equal(apply_text(&r, "100_0-29"), 0);
    assert_int_equal(r.refused, 29);
    w = refusal_list(&r);
    assert_int_equal(json_array_size(w), HOLD_REFUSALS_MAX + 1);
    assert_non_null(strstr(json_string_value(json_array_get(w, 19)), "100_20"));
    assert_string_equal(json_string_value(json_array_get(w, HOLD_REFUSALS_MAX)),
                        "and 9 more jobs refused");
    json_decref(w);
    queue_free(b);
}

/* Released while its dependency is already satisfied (held after it became
 * eligible): the next pass takes it as a candidate and its reason is no
 * longer Dependency. */
static void release_satisfied_dependency(void **state)
{
    (void)state;
    batchd_t *b = queue_new();
    bjob_t *d = add_by(b, 3, 0, -1, PHX_JOB_COMPLETED, ALICE, PHX_REASON_NONE);
    d->end_time = batchd_now() - 10;
    bjob_t *j = add_by(b, 4, 0, -1, PHX_JOB_PENDING, ALICE, PHX_REASON_PRIORITY);
    phx_error_t err = {{0}};
    assert_int_equal(phx_depend_parse("afterok:3", &j->dep, &err), 0);
    j->eligible_time = 50000;
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_HOLD, &err), 1);
    assert_int_equal(batchd_hold_job(b, j, ALICE, BATCHD_RELEASE, &err), 1);
    char got[64];
    candidates(b, got, sizeof(got));
    assert_string_equal(got, "4");
    assert_int_equal(j->reason, PHX_REASON_PRIORITY);
    queue_free(b);
}

int main(void)
{
    world.operator_uid = OPERATOR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(held_jobs_wait_until_released),
        cmocka_unit_test(hold_drops_the_gang_request),
        cmocka_unit_test(admin_holds),
        cmocka_unit_test(only_pending_jobs),
        cmocka_unit_test(released_to_its_dependency),
        cmocka_unit_test(released_to_its_begin_time),
        cmocka_unit_test(request_ids),
        cmocka_unit_test(array_id_after_first_task_left),
        cmocka_unit_test(held_time_not_aged),
        cmocka_unit_test(refusals_name_all),
        cmocka_unit_test(release_satisfied_dependency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
