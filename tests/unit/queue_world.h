/* tests/unit/queue_world.h: what the tests of batchd's in-memory queue
 * (test_batch_queue, _hold, _update_api, _ack, _mail_keep, _requeue_keep)
 * share: the daemon's sources around daemons/batchd/queue.c (unit tests
 * cannot link daemon objects, so the sources are included), stubs of the
 * daemon functions those call from other files, which write down in `world`
 * what the tests look at, and a queue to put jobs in.
 *
 * A test includes the sources only it needs after this header, and may
 * define before it:
 *   QUEUE_WORLD_NOW         where the clock starts (default 100000)
 *   QUEUE_WORLD_SCHED       sched.c, request.c and cluster.c are included:
 *                           the pass, the gang requests and the cluster's
 *                           cpus are the real ones (no drops, flushes, dirty)
 *   QUEUE_WORLD_ACCOUNTS    accounts.c is included: batchd_accounts_member
 *                           is the real one, queue_free destroys b->accounts
 *   QUEUE_WORLD_UPDATE_API  update_api.c is included: batchd_job_persist_spec
 *                           is the real one
 *   QUEUE_WORLD_PG          a private PostgreSQL (tests/unit/support/
 *                           storetest.h): migrated_env, batchd_on */
#ifndef PHX_TEST_QUEUE_WORLD_H
#define PHX_TEST_QUEUE_WORLD_H

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
#include "daemons/batchd/userlim.c"
#include "daemons/batchd/usage.c"
#include "daemons/batchd/mail.c"
#include "daemons/batchd/mail_fmt.c"
#include "daemons/batchd/rows.c"
#include "daemons/batchd/timefmt.c"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#ifndef QUEUE_WORLD_NOW
#define QUEUE_WORLD_NOW 100000
#endif

/* What the stubs answer and what they were asked.  queue_new zeroes drops,
 * flushes and dirty; the clock and the kills are the test's to set. */
static struct {
    int64_t now;           /* batchd_now */
    uid_t operator_uid;    /* an operator besides root (0: root only) */
    int drops;             /* gang requests dropped (batchd_request_drop) */
    int flushes;           /* request flushes asked */
    int dirty;             /* passes asked (batchd_sched_dirty) */
    int kills;             /* KILL calls asked of the master */
    bool kill_fails;       /* the master link is down: a KILL fails */
    void (*on_kill)(void); /* called after each KILL sent */
} world = {.now = QUEUE_WORLD_NOW};

/* --- stubs of the daemon's other files --- */

int64_t batchd_now(void)
{
    return world.now;
}

bool batchd_is_operator(const batchd_t *b, uid_t uid)
{
    (void)b;
    return uid == 0 || (world.operator_uid != 0 && uid == world.operator_uid);
}

#ifndef QUEUE_WORLD_ACCOUNTS
bool batchd_accounts_member(const baccounts_t *a, const char *user, const char *account)
{
    (void)a;
    (void)user;
    (void)account;
    return true;
}
#endif

#ifndef QUEUE_WORLD_UPDATE_API
void batchd_job_persist_spec(batchd_t *b, bjob_t *j)
{
    (void)b;
    (void)j; /* no job here has a dependency to drop */
}
#endif

#ifndef QUEUE_WORLD_SCHED
int64_t batchd_cluster_cpus(const batchd_t *b)
{
    (void)b;
    return 64;
}

void batchd_sched_job_done(batchd_t *b, bjob_t *j)
{
    (void)b;
    (void)j;
}

void batchd_sched_dirty(batchd_t *b)
{
    (void)b;
    world.dirty++;
}

void batchd_request_forget(batchd_t *b, bjob_t *j)
{
    (void)b;
    j->request_id[0] = 0;
}

void batchd_request_drop(batchd_t *b, bjob_t *j)
{
    world.drops++;
    batchd_request_forget(b, j);
}

void batchd_request_flush(batchd_t *b)
{
    (void)b;
    world.flushes++;
}

void batchd_request_clear(batchd_t *b)
{
    free(b->requested);
    b->requested = NULL;
}
#endif /* QUEUE_WORLD_SCHED */

int phx_fwc_kill(phx_fwc_t *c, const char *task_id, const char *agent_id)
{
    (void)c;
    (void)task_id;
    (void)agent_id;
    if (world.kill_fails) { /* not subscribed */
        errno = ENOTCONN;
        return -1;
    }
    world.kills++;
    if (world.on_kill)
        world.on_kill();
    return 0;
}

const char *phx_fwc_id(const phx_fwc_t *c)
{
    (void)c;
    return "fw-test";
}

/* --- a queue --- */

static inline batchd_t *queue_new(void)
{
    batchd_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->jobs = phx_hmap_create();
    b->array_tasks = phx_hmap_create();
    b->tasks = phx_hmap_create();
    b->usage = phx_hmap_create();
    assert_non_null(b->jobs);
    assert_non_null(b->array_tasks);
    assert_non_null(b->tasks);
    assert_non_null(b->usage);
    b->keep_ended = 600;
    b->limits.max_array_index = 1000;
    world.drops = world.flushes = world.dirty = 0;
    return b;
}

static inline void queue_free(batchd_t *b)
{
    batchd_queue_destroy(b);
#ifdef QUEUE_WORLD_ACCOUNTS
    batchd_accounts_destroy(b->accounts);
#endif
    phx_hmap_destroy(b->usage);
    phx_hmap_destroy(b->tasks);
    phx_hmap_destroy(b->array_tasks);
    phx_hmap_destroy(b->jobs);
    free(b);
}

/* Job id in state, named "job": task `task` of array_id, or a single job
 * when array_id is 0.  Not in a queue yet (queue_put). */
static inline bjob_t *job_new(uint64_t id, uint64_t array_id, int64_t task,
                              phx_job_state_t state)
{
    bjob_t *j = batchd_job_new();
    assert_non_null(j);
    j->id = id;
    j->array_job_id = array_id;
    j->array_task_id = array_id ? task : -1;
    j->state = state;
    j->spec.job_name = strdup("job");
    return j;
}

static inline bjob_t *queue_put(batchd_t *b, bjob_t *j)
{
    assert_int_equal(batchd_queue_add(b, j), 0);
    return j;
}

/* job_new, into b's queue */
static inline bjob_t *add(batchd_t *b, uint64_t id, uint64_t array_id, int64_t task,
                          phx_job_state_t state)
{
    return queue_put(b, job_new(id, array_id, task, state));
}

#ifdef QUEUE_WORLD_PG

#include "tests/unit/support/storetest.h"

static phx_test_pg_t pg;

PHX_TEST_PG_GROUP_FIXTURES(pg)

/* A fresh database with the project's migrations applied. */
static inline store_env_t *migrated_env(void)
{
    return store_env_migrated(&pg);
}

/* A batchd on e's database, keeping every ended job; its queue is not
 * loaded yet (batchd_queue_load).  Freed by queue_free. */
static inline batchd_t *batchd_on(store_env_t *e)
{
    batchd_t *b = queue_new();
    b->keep_ended = 1000000000;
    b->store = e->store;
    b->dsn = e->dsn;
    return b;
}

#endif /* QUEUE_WORLD_PG */

#endif
