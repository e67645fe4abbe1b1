/* phx update's daemon side (update_api.c), from a review's failing tests:
 * a circular dependency refused, an owner may not raise an operator's cut,
 * an array id once its task 0 left memory, a lowered limit's kill not lost
 * while the master's link is down. */
#define QUEUE_WORLD_ACCOUNTS
#define QUEUE_WORLD_UPDATE_API
#include "tests/unit/queue_world.h"

#include "daemons/batchd/accounts.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/script.c"
#define key_of upd_key_of
#include "daemons/batchd/update.c"
#undef key_of
#define num(v, b, l) upd_num(v, b, l)
#define given(u, f)  upd_given(u, f)
#include "daemons/batchd/update_api.c"
#include "daemons/batchd/jobs_named.c"
#undef num
#undef given

#define ALICE 1001
#define BOB   1002

int batchd_nodesel_check(const batchd_t *b, const phx_jobspec_t *s, size_t *field,
                         phx_error_t *err)
{
    (void)b;
    (void)s;
    (void)field;
    (void)err;
    return 0;
}
/* as submit.c for one partition "batch" with no limits: keeps it */
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

/* A queue whose jobs may ask 64 nodes at most. */
static batchd_t *update_queue_new(void)
{
    batchd_t *b = queue_new();
    b->limits.max_nodes = 64;
    return b;
}

/* Job id of uid in state, its spec finalized (one node, 30 minutes, in
 * partition "batch"); a running one started at 99500. */
static bjob_t *add_by(batchd_t *b, uint64_t id, uid_t uid, phx_job_state_t state)
{
    bjob_t *j = job_new(id, 0, -1, state);
    j->reason = state == PHX_JOB_PENDING ? PHX_REASON_PRIORITY : PHX_REASON_NONE;
    j->uid = uid;
    j->user = strdup(uid == ALICE ? "alice" : "bob");
    j->spec.nodes_min = 1;
    j->spec.time_limit = 1800;
    j->spec.partition = strdup("batch");
    phx_jobspec_defaults_t def = {.job_name = "x", .work_dir = "/home/a"};
    phx_error_t err;
    assert_int_equal(phx_jobspec_finalize(&j->spec, &def, &b->limits, &err), 0);
    j->submit_time = 99000;
    if (state == PHX_JOB_RUNNING)
        j->start_time = 99500;
    return queue_put(b, j);
}

static int update(batchd_t *b, bjob_t *j, uid_t by, const char *field, phx_error_t *err)
{
    const char *t[] = {field};
    batchd_update_t u;
    assert_int_equal(batchd_update_parse(t, 1, &u, err), 0);
    json_t *w = json_array();
    char done[1024];
    int rc = batchd_update_job(b, j, by, &u, w, done, sizeof(done), err);
    json_decref(w);
    batchd_update_clear(&u);
    return rc;
}

/* Two pending jobs made to wait on each other by updates: neither can
 * ever start (each waits for the other, reason Dependency, forever).
 * Slurm refuses the second update (circular dependency). */
static void dependency_cycle_refused(void **state)
{
    (void)state;
    batchd_t *b = update_queue_new();
    bjob_t *x = add_by(b, 1, ALICE, PHX_JOB_PENDING);
    bjob_t *y = add_by(b, 2, ALICE, PHX_JOB_PENDING);
    phx_error_t err = {{0}};
    assert_int_equal(update(b, x, ALICE, "Dependency=afterok:2", &err), 1);
    int rc = update(b, y, ALICE, "Dependency=afterok:1", &err);
    if (rc == 1) { /* accepted: neither is ever a candidate */
        bjob_t *cand[4];
        phx_prio_job_t prio[4];
        for (int pass = 0; pass < 3; pass++, world.now += 3600)
            assert_int_equal(batchd_order(b, world.now, 0, cand, prio), 0);
        assert_string_equal(phx_job_reason_name(x->reason), "Dependency");
        assert_string_equal(phx_job_reason_name(y->reason), "Dependency");
        assert_int_equal(x->state, PHX_JOB_PENDING);
    }
    assert_int_equal(rc, -1);
    queue_free(b);
}

/* An operator cuts a pending job's time limit (TimeLimit=10); its owner
 * sets it back to 30 at once (documented as "unlike Slurm", but it undoes
 * an operator's decision: Slurm lets only operators raise a limit). */
static void owner_undoes_operator_cut(void **state)
{
    (void)state;
    batchd_t *b = update_queue_new();
    bjob_t *x = add_by(b, 1, ALICE, PHX_JOB_PENDING);
    phx_error_t err = {{0}};
    assert_int_equal(update(b, x, 0, "TimeLimit=10", &err), 1);
    assert_int_equal(x->spec.time_limit, 600);
    int rc = update(b, x, ALICE, "TimeLimit=30", &err);
    assert_int_equal(rc, -1);
    queue_free(b);
}

/* (passes) array 100 whose task 0 (job 100) left memory: "100" changes
 * its pending tasks; "100_1-2" too; bob gets none of them. */
static void array_first_task_gone(void **state)
{
    (void)state;
    batchd_t *b = update_queue_new();
    for (uint64_t id = 101; id <= 102; id++) {
        bjob_t *x = batchd_job_new();
        x->id = id;
        x->array_job_id = 100;
        x->array_task_id = (int64_t)(id - 100);
        x->state = PHX_JOB_PENDING;
        x->uid = ALICE;
        x->user = strdup("alice");
        x->spec.nodes_min = 1;
        x->spec.time_limit = 1800;
        x->spec.job_name = strdup("job");
        x->spec.partition = strdup("batch");
        phx_jobspec_defaults_t def = {.job_name = "x", .work_dir = "/home/a"};
        phx_error_t e;
        assert_int_equal(phx_jobspec_finalize(&x->spec, &def, &b->limits, &e), 0);
        assert_int_equal(batchd_queue_add(b, x), 0);
    }
    const char *t[] = {"JobName=n"};
    batchd_update_t u;
    phx_error_t err;
    assert_int_equal(batchd_update_parse(t, 1, &u, &err), 0);
    upd_run_t r = {.b = b,
                   .uid = ALICE,
                   .u = &u,
                   .changes = json_array(),
                   .warnings = json_array()};
    assert_int_equal(apply_text(&r, "100"), 0);
    assert_int_equal(r.matched, 2);
    assert_int_equal(r.changed, 2);
    upd_run_t r2 = {
        .b = b, .uid = BOB, .u = &u, .changes = r.changes, .warnings = r.warnings};
    assert_int_equal(apply_text(&r2, "100"), 0);
    assert_int_equal(r2.matched, 0);
    assert_int_equal(apply_text(&r2, "100_1-2"), 0);
    assert_int_equal(r2.matched, 0);
    json_decref(r.changes);
    json_decref(r.warnings);
    batchd_update_clear(&u);
    queue_free(b);
}

/* A running job's limit lowered below its run time: while batchd is not
 * subscribed (a master restart) the tick sends no KILL; a KILL that fails
 * (-1, ENOTCONN) is sent again at the next tick; the job is killed once
 * the link is back.  (A review found the tick forgot the job whatever the
 * kill did: it then ran to the limit it started with.) */
static void lowered_limit_kill_lost(void **state)
{
    (void)state;
    batchd_t *b = update_queue_new();
    bjob_t *j = add_by(b, 1, ALICE, PHX_JOB_RUNNING); /* started 500 s ago */
    j->tasks = calloc(1, sizeof(*j->tasks));
    j->ntasks = 1;
    snprintf(j->tasks[0].id, sizeof(j->tasks[0].id), "job-1-batch");
    b->fwc = (phx_fwc_t *)b;
    phx_error_t err = {{0}};
    assert_int_equal(update(b, j, ALICE, "TimeLimit=5", &err), 1);
    assert_int_equal(j->limit_start, 99500);
    b->subscribed = false;
    batchd_update_tick(b, world.now);
    assert_int_equal(world.kills, 0);
    assert_int_equal(j->limit_start, 99500); /* kept for later */
    b->subscribed = true;
    world.kill_fails = 1;
    batchd_update_tick(b, world.now + 1);
    assert_int_equal(j->limit_start, 99500); /* the kill failed: again */
    world.kill_fails = 0;
    world.kills = 0;
    for (int i = 2; i <= 4; i++)
        batchd_update_tick(b, world.now + i);
    assert_int_equal(j->state, PHX_JOB_RUNNING);
    assert_int_equal(world.kills, 1);
    assert_int_equal(j->limit_start, 0);
    queue_free(b);
}

/* A lowered limit is enforced only once it is committed (kill.c): killed
 * before, a batchd dying ahead of the commit would find the job's batch
 * step killed with its old limit in the row, and end it FAILED, not
 * TIMEOUT.  Here the store takes the spec's write and holds it (no store:
 * a write never queued releases the job at once). */
static void lowered_limit_waits_commit(void **state)
{
    (void)state;
    batchd_t *b = update_queue_new();
    bjob_t *j = add_by(b, 2, ALICE, PHX_JOB_RUNNING);
    j->tasks = calloc(1, sizeof(*j->tasks));
    j->ntasks = 1;
    snprintf(j->tasks[0].id, sizeof(j->tasks[0].id), "job-2-batch");
    b->fwc = (phx_fwc_t *)b;
    b->subscribed = true;
    world.kills = 0;
    phx_error_t err = {{0}};
    assert_int_equal(update(b, j, ALICE, "TimeLimit=5", &err), 1);
    batchd_update_tick(b, world.now);
    assert_int_equal(world.kills, 1); /* the write was never queued: nothing waits */
    j->limit_start = 99500;           /* lowered again */
    b->limits_lowered = 1;
    j->kill_wait = 1; /* as while the spec's write is outstanding */
    world.kills = 0;
    batchd_update_tick(b, world.now + 1);
    assert_int_equal(world.kills, 0);
    assert_int_equal(j->limit_start, 99500);
    j->kill_wait = 0; /* committed */
    batchd_update_tick(b, world.now + 2);
    assert_int_equal(world.kills, 1);
    queue_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dependency_cycle_refused),
        cmocka_unit_test(owner_undoes_operator_cut),
        cmocka_unit_test(array_first_task_gone),
        cmocka_unit_test(lowered_limit_kill_lost),
        cmocka_unit_test(lowered_limit_waits_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
