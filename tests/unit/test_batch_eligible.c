/* Which pending jobs batchd may start, and whether it wants offers for
 * them: with batchd.enforce_accounts a pending job whose user is no longer
 * a member of its account (a read of account_users, accounts_db.c) waits
 * with reason InvalidAccount (order.c) until the membership is back, a
 * held one keeps its hold (InvalidAccount once released), a running one
 * runs on; and batchd SUPPRESSes offers while no pending job is eligible
 * (all held, waiting on a dependency, InvalidAccount), and REVIVEs when a
 * release, a job's end or an account restored makes one so (sched.c); a
 * requeued ended job is checked against its account (requeue.c); a job
 * waiting for GPUs of its model is reserved, not planned to start.
 *
 * The queue, the order, holds, accounts and the pass are the daemon's own
 * sources (included: unit tests cannot link daemon objects); the master
 * link is a fake that writes down each call's type. */
#define QUEUE_WORLD_SCHED
#define QUEUE_WORLD_ACCOUNTS
#include "tests/unit/queue_world.h"

#include "daemons/batchd/accounts.c"
#include "daemons/batchd/accounts_db.c"
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/bf_fit.c"
#include "daemons/batchd/bf_node.c"
#include "daemons/batchd/cluster.c"
#include "daemons/batchd/features.c"
#include "daemons/batchd/gang.c"
#include "daemons/batchd/hold.c"
#include "daemons/batchd/jobs_named.c"
#include "daemons/batchd/nodesel.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/place.c"
#include "daemons/batchd/pools.c"
#include "daemons/batchd/requeue.c"
#include "daemons/batchd/request.c"
#include "daemons/batchd/sched.c"
#include "daemons/batchd/bfreq.c"
#include "daemons/batchd/gpus.c"

#define ALICE 1001
#define BOB   1002

/* --- stubs of the daemon's other files --- */

json_t *batchd_launch_ops(batchd_t *b, bjob_t *j, int *const *cores,
                          const uint32_t *ncores)
{
    (void)b;
    (void)j;
    (void)cores;
    (void)ncores;
    return json_array();
}

/* --- a fake master link: the calls' types, space-separated --- */

static char calls[1024];

static int called(const char *type)
{
    size_t n = strlen(calls);
    snprintf(calls + n, sizeof(calls) - n, "%s%s", n ? " " : "", type);
    return 0;
}

int phx_fwc_call(phx_fwc_t *c, json_t *call, phx_fwc_done_f done, void *arg)
{
    (void)c;
    (void)done;
    (void)arg;
    called(json_string_value(json_object_get(call, "type")));
    json_decref(call);
    return 0;
}

int phx_fwc_decline(phx_fwc_t *c, const json_t *offer_ids, double refuse_seconds)
{
    (void)c;
    (void)offer_ids;
    (void)refuse_seconds;
    return called("DECLINE");
}

int phx_fwc_reconcile(phx_fwc_t *c, const json_t *task_ids)
{
    (void)c;
    (void)task_ids;
    return called("RECONCILE");
}

int phx_fwc_revive(phx_fwc_t *c)
{
    (void)c;
    return called("REVIVE");
}

int phx_fwc_suppress(phx_fwc_t *c)
{
    (void)c;
    return called("SUPPRESS");
}

static void kill_called(void) /* world.on_kill */
{
    called("KILL");
}

/* The calls since the last look, then none. */
static void calls_are(const char *want)
{
    assert_string_equal(calls, want);
    calls[0] = 0;
}

/* --- a subscribed batchd on one node of 4 cores --- */

static batchd_t *world_new(void)
{
    batchd_t *b = queue_new();
    b->node_index = phx_hmap_create();
    b->refuse_seconds = 1;
    b->nodes = calloc(1, sizeof(*b->nodes));
    assert_non_null(b->nodes);
    b->nnodes = 1;
    bnode_t *n = &b->nodes[0];
    snprintf(n->agent_id, sizeof(n->agent_id), "a1");
    snprintf(n->name, sizeof(n->name), "n1");
    n->cores = 4;
    n->sockets = n->threads = 1;
    n->mem = 65536;
    n->usable = true;
    assert_int_equal(phx_hmap_put(b->node_index, n->agent_id, n), 0);
    b->nodes_loaded = batchd_now(); /* no refresh asked */
    b->base = event_base_new();
    assert_non_null(b->base);
    b->fwc = (phx_fwc_t *)b; /* only ever passed to the fake */
    b->subscribed = true;
    world.on_kill = kill_called;
    calls[0] = 0;
    return b;
}

static void world_free(batchd_t *b)
{
    batchd_request_clear(b);
    if (b->sched_ev)
        event_free(b->sched_ev);
    event_base_free(b->base);
    phx_hmap_destroy(b->node_index);
    free(b->nodes);
    queue_free(b);
}

/* The pass batchd_sched_dirty asked for, as the loop runs it. */
static void run_pass(batchd_t *b)
{
    event_base_loop(b->base, EVLOOP_NONBLOCK);
}

/* Job id of uid in account (NULL: none), one task of one cpu for a
 * minute, pending for reason (or not pending: PHX_REASON_NONE). */
static bjob_t *add_by(batchd_t *b, uint64_t id, uid_t uid, const char *account,
                      phx_job_state_t state, phx_job_reason_t reason)
{
    bjob_t *j = job_new(id, 0, -1, state);
    j->reason = reason;
    j->uid = uid;
    j->user = strdup(uid == ALICE ? "alice" : "bob");
    j->spec.account = account ? strdup(account) : NULL;
    j->spec.nodes_min = j->spec.nodes_max = 1;
    j->spec.ntasks = j->spec.cpus_per_task = 1;
    j->spec.ntasks_per_node = j->spec.ntasks_per_socket = PHX_UNSET;
    j->spec.sockets_per_node = j->spec.cores_per_socket = PHX_UNSET;
    j->spec.threads_per_core = PHX_UNSET;
    j->spec.mem_per_node = j->spec.mem_per_cpu = PHX_UNSET;
    j->spec.begin_time = j->spec.nice = PHX_UNSET;
    j->spec.exclusive = j->spec.requeue = -1;
    j->spec.time_limit = 60;
    j->submit_time = 99000;
    queue_put(b, j);
    b->prio_dirty = true;
    return j;
}

/* An OFFERS event: the node's 4 cores. */
static void offer(batchd_t *b)
{
    json_t *offers = json_pack(
        "[{s:{s:s}, s:{s:s}, s:s, s:[{s:s, s:{s:i}}], s:{s:[{s:i, s:i, s:[i,i,i,i], "
        "s:I}]}}]",
        "id", "value", "o-1", "agent_id", "value", "a1", "hostname", "n1", "resources",
        "name", "mem", "scalar", "value", 65536, "topology", "numa", "socket", 0,
        "numa", 0, "cores", 0, 1, 2, 3, "mem", (json_int_t)(1 << 30));
    assert_non_null(offers);
    batchd_sched_offers(b, offers);
    json_decref(offers);
}

/* The memberships "user:account[*],..." (*: the default) as read. */
static bool read_table(batchd_t *b, const char *list)
{
    baccounts_t *a = batchd_accounts_create();
    char *copy = strdup(list), *save = NULL;
    assert_non_null(a);
    assert_non_null(copy);
    for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        char *acct = strchr(m, ':');
        assert_non_null(acct);
        *acct++ = 0;
        size_t n = strlen(acct);
        bool deflt = n && acct[n - 1] == '*';
        if (deflt)
            acct[n - 1] = 0;
        assert_int_equal(batchd_accounts_add(a, m, acct, deflt, NULL), 0);
    }
    free(copy);
    return install(b, a);
}

static const char *reason(const bjob_t *j)
{
    return phx_job_reason_name(j->reason);
}

/* --- offers while nothing may start --- */

/* Only held jobs: SUPPRESS (the old test, nothing pending, kept taking and
 * declining offers); a release REVIVEs and the job starts on the next
 * offer; the held one left: SUPPRESS again. */
static void held_queue_suppresses(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    bjob_t *j1 = add_by(b, 1, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_HELD);
    bjob_t *j2 = add_by(b, 2, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_HELD_ADMIN);
    batchd_sched_dirty(b);
    run_pass(b);
    calls_are("SUPPRESS");
    assert_int_equal(b->neligible, 0);
    run_pass(b); /* nothing asked: nothing again */
    calls_are("");
    /* an offer in flight is declined; still suppressed */
    offer(b);
    calls_are("DECLINE");
    batchd_sched_dirty(b); /* the clock's tick */
    run_pass(b);
    calls_are("");

    assert_int_equal(batchd_hold_job(b, j1, ALICE, BATCHD_RELEASE, NULL), 1);
    run_pass(b);
    calls_are("REVIVE");
    assert_int_equal(b->neligible, 1);
    offer(b);
    assert_int_equal(j1->state, PHX_JOB_RUNNING);
    calls_are("ACCEPT SUPPRESS"); /* j2 is still held */
    assert_int_equal(b->neligible, 0);
    assert_string_equal(reason(j2), "JobHeldAdmin");
    world_free(b);
}

/* Waiting on a dependency only: SUPPRESS; the job it waits for ends: the
 * pass counts it eligible and REVIVEs. */
static void dependency_met_revives(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    bjob_t *a = add_by(b, 1, ALICE, "chem", PHX_JOB_RUNNING, PHX_REASON_NONE);
    bjob_t *d = add_by(b, 2, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_DEPENDENCY);
    assert_int_equal(phx_depend_parse("afterok:1", &d->dep, NULL), 0);
    batchd_sched_dirty(b);
    run_pass(b);
    calls_are("SUPPRESS");
    assert_string_equal(reason(d), "Dependency");
    a->end_time = batchd_now();
    batchd_job_set_state(b, a, PHX_JOB_COMPLETED, PHX_REASON_NONE);
    batchd_sched_job_done(b, a); /* as end.c */
    run_pass(b);
    calls_are("REVIVE");
    assert_int_equal(d->state, PHX_JOB_PENDING);
    assert_string_not_equal(reason(d), "Dependency");
    world_free(b);
}

/* A submission to a queue of held jobs REVIVEs (submit.c marks the
 * schedule dirty); a job that ends leaving only held jobs: SUPPRESS. */
static void submission_revives(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    add_by(b, 1, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_HELD);
    batchd_sched_dirty(b);
    run_pass(b);
    calls_are("SUPPRESS");
    bjob_t *j = add_by(b, 2, BOB, "bio", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    batchd_sched_dirty(b);
    run_pass(b);
    calls_are("REVIVE");
    offer(b);
    calls_are("ACCEPT SUPPRESS");
    assert_int_equal(j->state, PHX_JOB_RUNNING);
    world_free(b);
}

/* Subscribed again (a restart, a new master) with only held jobs: a
 * SUPPRESS (batchd once took itself for suppressed there, and the master
 * went on offering); a job eligible: a REVIVE (filters of before). */
static void subscribed_suppresses_or_revives(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    bjob_t *j = add_by(b, 1, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_HELD);
    batchd_sched_subscribed(b);
    run_pass(b);
    calls_are("SUPPRESS");
    j->reason = PHX_REASON_PRIORITY;
    batchd_sched_subscribed(b);
    run_pass(b);
    calls_are("REVIVE");
    world_free(b);
}

/* --- InvalidAccount --- */

/* alice leaves chem: her pending job waits (InvalidAccount), not started
 * on an offer; her held job keeps its hold and gets InvalidAccount once
 * released; bob's running job of an account he left runs on; a job with
 * no account (from before enforcement) waits too.  Nothing else pending:
 * SUPPRESS.  Back in chem: both jobs eligible again, REVIVE, and
 * they start. */
static void invalid_account_waits(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    assert_false(read_table(b, "alice:chem*,bob:bio*"));
    bjob_t *p = add_by(b, 1, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    bjob_t *h = add_by(b, 2, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_HELD);
    bjob_t *r = add_by(b, 3, BOB, "bio", PHX_JOB_RUNNING, PHX_REASON_NONE);
    batchd_sched_dirty(b);
    run_pass(b);
    assert_int_equal(b->neligible, 1);
    calls[0] = 0;

    assert_true(read_table(b, "alice:physics*"));
    assert_true(p->account_invalid);
    assert_true(h->account_invalid);
    batchd_sched_dirty(b); /* as accounts_read() */
    run_pass(b);
    assert_string_equal(reason(p), "InvalidAccount");
    assert_string_equal(reason(h), "JobHeldUser");
    assert_int_equal(r->state, PHX_JOB_RUNNING);
    assert_string_equal(reason(r), "None");
    calls_are("SUPPRESS");
    offer(b); /* one in flight: declined, nothing started */
    calls_are("DECLINE");
    assert_int_equal(p->state, PHX_JOB_PENDING);
    assert_string_equal(reason(p), "InvalidAccount");

    /* released: InvalidAccount, not started */
    assert_int_equal(batchd_hold_job(b, h, ALICE, BATCHD_RELEASE, NULL), 1);
    run_pass(b);
    assert_string_equal(reason(h), "InvalidAccount");
    calls_are("");
    /* held again: the hold shows */
    assert_int_equal(batchd_hold_job(b, h, ALICE, BATCHD_UHOLD, NULL), 1);
    run_pass(b);
    assert_string_equal(reason(h), "JobHeldUser");
    assert_int_equal(batchd_hold_job(b, h, ALICE, BATCHD_RELEASE, NULL), 1);
    run_pass(b);

    /* the same table again changes nothing */
    assert_false(read_table(b, "alice:physics*"));
    /* back in chem: eligible again, REVIVE, started */
    assert_true(read_table(b, "alice:chem,alice:physics*"));
    assert_false(p->account_invalid);
    batchd_sched_dirty(b);
    run_pass(b);
    assert_string_equal(reason(p), "Resources"); /* the no-offer pass's */
    assert_string_equal(reason(h), "Priority");  /* behind p */
    assert_int_equal(b->neligible, 2);
    calls_are("REVIVE");
    offer(b);
    assert_int_equal(p->state, PHX_JOB_RUNNING);
    assert_int_equal(h->state, PHX_JOB_RUNNING);
    assert_int_equal(r->state, PHX_JOB_RUNNING);
    world_free(b);
}

/* A job with no account (queued before enforcement) waits once accounts
 * are enforced; enforcement turned off: every job eligible again. */
static void no_account_and_enforcement_off(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    bjob_t *j = add_by(b, 1, ALICE, NULL, PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    bjob_t *k = add_by(b, 2, ALICE, "gone", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    assert_true(read_table(b, "alice:chem*"));
    batchd_sched_dirty(b);
    run_pass(b);
    assert_string_equal(reason(j), "InvalidAccount");
    assert_string_equal(reason(k), "InvalidAccount");
    calls_are("SUPPRESS");
    /* batchd_accounts_reload with enforce_accounts off */
    b->enforce_accounts = false;
    batchd_accounts_destroy(b->accounts);
    b->accounts = NULL;
    assert_true(recheck_jobs(b));
    batchd_sched_dirty(b);
    run_pass(b);
    assert_string_equal(reason(j), "Resources");
    assert_string_equal(reason(k), "Priority");
    calls_are("REVIVE");
    world_free(b);
}

/* bf_max_job_test 1 (one pool: a pass asks batchd_order for that many):
 * three eligible jobs; the pass of the same second takes the cached order's
 * first and starts it: no SUPPRESS, two are still eligible (a review found
 * neligible counted 1 - 1 = 0, a stall until the next tick's REVIVE). */
static void suppress_while_eligible_left(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    b->bf.max_job_test = 1;
    bjob_t *j1 = add_by(b, 1, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    bjob_t *j2 = add_by(b, 2, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    bjob_t *j3 = add_by(b, 3, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    batchd_sched_dirty(b);
    run_pass(b);
    assert_int_equal(b->neligible, 3);
    calls[0] = 0;
    offer(b);
    int started = (j1->state == PHX_JOB_RUNNING) + (j2->state == PHX_JOB_RUNNING) +
                  (j3->state == PHX_JOB_RUNNING);
    assert_int_equal(started, 1);
    assert_int_equal(b->npending, 2);
    /* two pending jobs are eligible: no SUPPRESS */
    assert_null(strstr(calls, "SUPPRESS"));
    world_free(b);
}

/* alice's job ended (kept in memory); alice then leaves chem (a read of
 * account_users: recheck_jobs skips ended jobs); she requeues the ended
 * job: it is checked then, and waits with InvalidAccount (a review found
 * it started at once, charged to an account she is no longer in). */
static void requeued_ended_job_skips_invalid_account(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    assert_false(read_table(b, "alice:chem*"));
    bjob_t *j = add_by(b, 1, ALICE, "chem", PHX_JOB_COMPLETED, PHX_REASON_NONE);
    j->start_time = 99500;
    j->end_time = 99600;
    assert_false(read_table(b, "alice:physics*")); /* ended: skipped */
    assert_false(j->account_invalid);
    int st = 0;
    phx_error_t err = {{0}};
    assert_int_equal(requeue_job(b, j, ALICE, false, &st, &err), 1);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    run_pass(b);
    offer(b);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    assert_string_equal(reason(j), "InvalidAccount");
    world_free(b);
}

/* GPUs by model in the pass's plan: the node has 2 A100 and 2 V100, a
 * running job holds the A100s.  A pending --gres=gpu:a100:2 job is not
 * planned to start now on the free V100s (it was: the plan counted GPUs
 * of any model, the offers then refused it, and a job planned to start
 * gets no gang request and no start time, so others could pass it for
 * ever): it is reserved at the running job's end, asks the master for its
 * GPUs and shows that start. */
static void typed_gpu_job_reserved(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    bnode_t *n = &b->nodes[0];
    n->gpu = calloc(4, sizeof(*n->gpu));
    assert_non_null(n->gpu);
    n->ngpus = 4;
    for (int g = 0; g < 4; g++) {
        n->gpu[g].id = g;
        snprintf(n->gpu[g].model, sizeof(n->gpu[g].model), "%s",
                 g < 2 ? "NVIDIA A100-SXM4-40GB" : "Tesla V100-SXM2-16GB");
    }
    bjob_t *run = add_by(b, 1, ALICE, NULL, PHX_JOB_RUNNING, PHX_REASON_NONE);
    run->spec.gres = strdup("gpu:a100:2");
    run->tasks = calloc(1, sizeof(*run->tasks));
    assert_non_null(run->tasks);
    run->ntasks = run->tasks_live = 1;
    snprintf(run->tasks[0].id, sizeof(run->tasks[0].id), "1.0");
    snprintf(run->tasks[0].agent_id, sizeof(run->tasks[0].agent_id), "a1");
    run->tasks[0].cpus = run->tasks[0].tasks = 1;
    run->tasks[0].gpus = 0x3;
    run->start_time = batchd_now() - 10;
    bjob_t *j = add_by(b, 2, BOB, NULL, PHX_JOB_PENDING, PHX_REASON_NONE);
    j->spec.gres = strdup("gpu:a100:2");
    batchd_sched_dirty(b);
    run_pass(b);
    assert_int_equal(j->state, PHX_JOB_PENDING);
    assert_int_equal(j->expected_start, run->start_time + 60);
    assert_non_null(strstr(calls, "REQUEST"));
    assert_non_null(j->request_id[0] ? j->request_id : NULL);
    /* an untyped job asking for 2 GPUs may use the V100s: planned now */
    j->spec.gres[4] = 0;
    strcat(j->spec.gres, "2");
    batchd_sched_dirty(b);
    run_pass(b);
    assert_int_equal(j->expected_start, -1);
    free(n->gpu);
    world_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(held_queue_suppresses),
        cmocka_unit_test(dependency_met_revives),
        cmocka_unit_test(submission_revives),
        cmocka_unit_test(subscribed_suppresses_or_revives),
        cmocka_unit_test(invalid_account_waits),
        cmocka_unit_test(no_account_and_enforcement_off),
        cmocka_unit_test(suppress_while_eligible_left),
        cmocka_unit_test(requeued_ended_job_skips_invalid_account),
        cmocka_unit_test(typed_gpu_job_reserved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
