/* From a review's failing tests: a requeued ended job is checked against
 * its account again (InvalidAccount), and a pass that starts the first
 * bf_max_job_test eligible jobs of a cached order does not SUPPRESS offers
 * while others are still eligible. */
#include "daemons/batchd/accounts.c"
#include "daemons/batchd/accounts_db.c"
#include "daemons/batchd/array.c"
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/cluster.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/features.c"
#include "daemons/batchd/gang.c"
#include "daemons/batchd/hold.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/nodesel.c"
#include "daemons/batchd/order.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/place.c"
#include "daemons/batchd/pools.c"
#include "daemons/batchd/priority.c"
#include "daemons/batchd/queue.c"
#include "daemons/batchd/request.c"
#include "daemons/batchd/rows.c"
#include "daemons/batchd/sched.c"
#include "daemons/batchd/timefmt.c"
#include "daemons/batchd/requeue.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define ALICE 1001
#define BOB   1002

/* --- stubs of the daemon's other files --- */

void batchd_job_persist_spec(batchd_t *b, bjob_t *j) /* update_api.c */
{
    (void)b;
    (void)j;
}

int64_t batchd_now(void)
{
    return 100000;
}

bool batchd_is_operator(const batchd_t *b, uid_t uid)
{
    (void)b;
    return uid == 0;
}

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

int phx_fwc_kill(phx_fwc_t *c, const char *task_id, const char *agent_id)
{
    (void)c;
    (void)task_id;
    (void)agent_id;
    return called("KILL");
}

const char *phx_fwc_id(const phx_fwc_t *c)
{
    (void)c;
    return "fw-1";
}

/* --- a subscribed batchd on one node of 4 cores --- */

static batchd_t *world_new(void)
{
    batchd_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->jobs = phx_hmap_create();
    b->array_tasks = phx_hmap_create();
    b->tasks = phx_hmap_create();
    b->usage = phx_hmap_create();
    b->node_index = phx_hmap_create();
    b->keep_ended = 600;
    b->refuse_seconds = 1;
    b->limits.max_array_index = 1000;
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
    calls[0] = 0;
    return b;
}

static void world_free(batchd_t *b)
{
    batchd_request_clear(b);
    batchd_queue_destroy(b);
    batchd_accounts_destroy(b->accounts);
    if (b->sched_ev)
        event_free(b->sched_ev);
    event_base_free(b->base);
    phx_hmap_destroy(b->node_index);
    phx_hmap_destroy(b->usage);
    phx_hmap_destroy(b->tasks);
    phx_hmap_destroy(b->array_tasks);
    phx_hmap_destroy(b->jobs);
    free(b->prio_order);
    free(b->prio_value);
    free(b->nodes);
    free(b);
}

/* The pass batchd_sched_dirty asked for, as the loop runs it. */
static void run_pass(batchd_t *b)
{
    event_base_loop(b->base, EVLOOP_NONBLOCK);
}

static bjob_t *add(batchd_t *b, uint64_t id, uid_t uid, const char *account,
                   phx_job_state_t state, phx_job_reason_t reason)
{
    bjob_t *j = batchd_job_new();
    assert_non_null(j);
    j->id = id;
    j->array_task_id = -1;
    j->state = state;
    j->reason = reason;
    j->uid = uid;
    j->user = strdup(uid == ALICE ? "alice" : "bob");
    j->spec.job_name = strdup("job");
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
    assert_int_equal(batchd_queue_add(b, j), 0);
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

/* bf_max_job_test 1 (one pool: a pass asks batchd_order for that many):
 * three eligible jobs; the pass of the same second takes the cached order's
 * first, starts it, and counts neligible 1 - 1 = 0: SUPPRESS while two
 * jobs may start (they wait for the next tick's REVIVE). */
static void suppress_while_eligible_left(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    b->bf.max_job_test = 1;
    bjob_t *j1 = add(b, 1, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    bjob_t *j2 = add(b, 2, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
    bjob_t *j3 = add(b, 3, ALICE, "chem", PHX_JOB_PENDING, PHX_REASON_PRIORITY);
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
 * job: PENDING with account_invalid false, and it starts at once on the
 * next offer, charged to an account she is no longer in (until the next
 * read, accounts_refresh later).  A running job is marked; an ended one
 * is not. */
static void requeued_ended_job_skips_invalid_account(void **state)
{
    (void)state;
    batchd_t *b = world_new();
    assert_false(read_table(b, "alice:chem*"));
    bjob_t *j = add(b, 1, ALICE, "chem", PHX_JOB_COMPLETED, PHX_REASON_NONE);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(suppress_while_eligible_left),
        cmocka_unit_test(requeued_ended_job_skips_invalid_account),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
