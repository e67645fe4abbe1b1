/* tests/unit/batch_world.h: what test_batch_sched.c and test_batch_gang.c
 * share: the daemon's sources they test (unit tests cannot link daemon
 * objects, so the sources are included), stubs of the daemon functions those
 * call from other files, and a "world" of nodes, offers and a pass. */
#ifndef PHX_TEST_BATCH_WORLD_H
#define PHX_TEST_BATCH_WORLD_H

#include "daemons/batchd/backfill.c"
#include "daemons/batchd/bf_fit.c"
#include "daemons/batchd/bf_node.c"
#include "daemons/batchd/pools.c"
#include "daemons/batchd/cluster.c"
#include "daemons/batchd/place.c"
#include "daemons/batchd/gang.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/timefmt.c"
#include "daemons/batchd/sched.c"
#include "daemons/batchd/bfreq.c"
#include "daemons/batchd/gpus.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/request.c"
#include "daemons/batchd/features.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/nodesel.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

/* --- stubs of the daemon's other files --- */

static int launched_cores[8][16]; /* the cores of the last job started, per node */
static uint32_t launched_n[8];

int64_t batchd_now(void)
{
    return 1000;
}

json_t *batchd_launch_ops(batchd_t *b, bjob_t *j, int *const *cores,
                          const uint32_t *ncores)
{
    (void)b;
    for (size_t i = 0; i < j->ntasks && i < 8; i++) {
        launched_n[i] = ncores[i];
        for (uint32_t k = 0; k < ncores[i] && k < 16; k++)
            launched_cores[i][k] = cores[i][k];
    }
    return json_array();
}

void batchd_job_set_state(batchd_t *b, bjob_t *j, phx_job_state_t st,
                          phx_job_reason_t why)
{
    (void)b;
    j->state = st;
    j->reason = why;
}

void batchd_job_persist(batchd_t *b, bjob_t *j)
{
    (void)b;
    (void)j;
}

void batchd_kills_resume(batchd_t *b)
{
    (void)b;
}

size_t batchd_live_from(batchd_t *b)
{
    (void)b;
    return 0;
}

size_t batchd_order(batchd_t *b, int64_t now, size_t want, bjob_t **cand,
                    phx_prio_job_t *prio)
{
    (void)b;
    (void)now;
    (void)want;
    (void)cand;
    (void)prio;
    return 0;
}

uint32_t batchd_array_running(const batchd_t *b, uint64_t array_job_id)
{
    (void)b;
    (void)array_job_id;
    return 0;
}

static bjob_t *found_job; /* what batchd_job_find answers */

bjob_t *batchd_job_find(const batchd_t *b, uint64_t id)
{
    (void)b;
    return found_job && found_job->id == id ? found_job : NULL;
}

/* --- a fake master link (lib/framework.c's calls) ---
 *
 * The calls batchd makes go to master_calls (stolen); while master_up is
 * false a call fails as lib/framework.c's does when not subscribed.  The
 * completions wait in master_pending until master_answer. */

static json_t *master_calls;
static bool master_up = true;
static struct {
    phx_fwc_done_f done;
    void *arg;
} master_pending[16];
static size_t master_npending;

int phx_fwc_call(phx_fwc_t *c, json_t *call, phx_fwc_done_f done, void *arg)
{
    (void)c;
    if (!master_up || !call) {
        json_decref(call);
        return -1;
    }
    if (!master_calls)
        master_calls = json_array();
    json_array_append_new(master_calls, call);
    if (done) {
        assert_true(master_npending < 16);
        master_pending[master_npending].done = done;
        master_pending[master_npending++].arg = arg;
    }
    return 0;
}

/* Complete every call waiting, with HTTP status (0: no answer). */
static inline void master_answer(int status)
{
    for (size_t i = 0; i < master_npending; i++)
        master_pending[i].done(NULL, status, "", master_pending[i].arg);
    master_npending = 0;
}

/* The calls so far (json_decref it), none after. */
static inline json_t *master_take(void)
{
    json_t *calls = master_calls ? master_calls : json_array();
    master_calls = NULL;
    return calls;
}

int phx_fwc_decline(phx_fwc_t *c, const json_t *offer_ids, double refuse_seconds)
{
    (void)refuse_seconds;
    return phx_fwc_call(c,
                        json_pack("{s:s, s:{s:O}}", "type", "DECLINE", "decline",
                                  "offer_ids", offer_ids),
                        NULL, NULL);
}

int phx_fwc_reconcile(phx_fwc_t *c, const json_t *task_ids)
{
    (void)c;
    (void)task_ids;
    return master_up ? 0 : -1;
}

int phx_fwc_revive(phx_fwc_t *c)
{
    (void)c;
    return master_up ? 0 : -1;
}

int phx_fwc_suppress(phx_fwc_t *c)
{
    (void)c;
    return master_up ? 0 : -1;
}

/* --- a cluster and its offers --- */

typedef struct shape {
    const char *agent;
    uint32_t sockets, cores_per_socket, threads;
    uint64_t free; /* bit c: core c is free (cores numbered socket by socket) */
} shape_t;

/* An offer: one NUMA domain per socket holding its free cores. */
static inline json_t *offer_json(const shape_t *s)
{
    json_t *numas = json_array();
    for (uint32_t k = 0; k < s->sockets; k++) {
        json_t *cores = json_array();
        for (uint32_t c = k * s->cores_per_socket; c < (k + 1) * s->cores_per_socket;
             c++)
            if (s->free & (1ull << c))
                json_array_append_new(cores, json_integer(c));
        if (json_array_size(cores) == 0) {
            json_decref(cores);
            continue; /* the master offers non-empty bundles only */
        }
        json_array_append_new(numas,
                              json_pack("{s:i, s:i, s:o, s:I}", "socket", k, "numa", k,
                                        "cores", cores, "mem", (json_int_t)(1 << 30)));
    }
    char id[32];
    snprintf(id, sizeof(id), "o-%s", s->agent);
    return json_pack("{s:{s:s}, s:{s:s}, s:s, s:[{s:s, s:{s:i}}], s:{s:o}}", "id",
                     "value", id, "agent_id", "value", s->agent, "hostname", s->agent,
                     "resources", "name", "mem", "scalar", "value", 65536, "topology",
                     "numa", numas);
}

typedef struct world {
    batchd_t b;
    pass_t p;
    json_t *raw;
} world_t;

static inline void world_init(world_t *w, const shape_t *nodes, size_t n)
{
    memset(w, 0, sizeof(*w));
    w->b.nodes = calloc(n, sizeof(*w->b.nodes));
    w->b.nnodes = n;
    w->b.node_index = phx_hmap_create();
    w->b.tasks = phx_hmap_create();
    assert_non_null(w->b.nodes);
    for (size_t i = 0; i < n; i++) {
        bnode_t *bn = &w->b.nodes[i];
        snprintf(bn->agent_id, sizeof(bn->agent_id), "%s", nodes[i].agent);
        snprintf(bn->name, sizeof(bn->name), "%s", nodes[i].agent);
        bn->sockets = nodes[i].sockets;
        bn->cores = nodes[i].sockets * nodes[i].cores_per_socket;
        bn->threads = nodes[i].threads ? nodes[i].threads : 1;
        bn->mem = 65536;
        bn->usable = true;
        assert_int_equal(phx_hmap_put(w->b.node_index, bn->agent_id, bn), 0);
    }
    w->raw = json_array();
    w->p.b = &w->b;
    w->p.now = 1000;
    w->p.raw = w->raw;
    w->p.acc_ops = json_array();
    w->p.offers = calloc(n + 1, sizeof(*w->p.offers));
    for (size_t i = 0; i < n; i++) {
        json_t *o = offer_json(&nodes[i]);
        json_array_append_new(w->raw, o);
        assert_int_equal(batchd_offer_parse(&w->p.offers[i], o), 0);
        w->p.noffers++;
    }
}

static inline void world_clear(world_t *w)
{
    for (size_t i = 0; i < w->p.noffers; i++)
        batchd_offer_clear(&w->p.offers[i]);
    free(w->p.offers);
    free(w->p.acc_jobs);
    json_decref(w->p.acc_ops);
    json_decref(w->raw);
    phx_hmap_destroy(w->b.node_index);
    phx_hmap_destroy(w->b.tasks);
    free(w->b.nodes);
}

/* A finalized-looking spec: ntasks of cpt cores on 1..nodes_max nodes. */
static inline void spec(bjob_t *j, int64_t ntasks, int64_t cpt, int64_t nodes_max)
{
    memset(j, 0, sizeof(*j));
    phx_jobspec_t *s = &j->spec;
    j->id = 42;
    s->nodes_min = 1;
    s->nodes_max = nodes_max;
    s->ntasks = ntasks;
    s->cpus_per_task = cpt;
    s->ntasks_per_node = s->ntasks_per_socket = PHX_UNSET;
    s->sockets_per_node = s->cores_per_socket = s->threads_per_core = PHX_UNSET;
    s->mem_per_node = s->mem_per_cpu = s->begin_time = s->nice = PHX_UNSET;
    s->exclusive = s->requeue = -1;
    s->time_limit = 60;
}

/* try_job then start_job: 0 and the nodes' agents (comma-joined) in got. */
static inline int start(world_t *w, bjob_t *j, char *got, size_t size)
{
    choice_t ch[8];
    size_t nch = 0;
    got[0] = 0;
    memset(launched_n, 0, sizeof(launched_n));
    if (try_job(&w->p, j, ch, &nch) < 0 || start_job(&w->p, j, ch, nch) < 0)
        return -1;
    for (size_t i = 0; i < j->ntasks; i++)
        snprintf(got + strlen(got), size - strlen(got), "%s%s:%u", i ? "," : "",
                 j->tasks[i].agent_id, j->tasks[i].tasks);
    return 0;
}

static inline void job_clear(world_t *w, bjob_t *j)
{
    for (size_t i = 0; i < j->ntasks; i++)
        phx_hmap_del(w->b.tasks, j->tasks[i].id);
    free(j->tasks);
    free(j->node_list);
}

static inline void cores_are(size_t node, const int *want, uint32_t n)
{
    assert_int_equal(launched_n[node], n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(launched_cores[node][i], want[i]);
}

/* --- --ntasks-per-socket --- */

/* Two nodes of 2 sockets x 4 cores, all free: -n 4 --ntasks-per-socket=1
 * holds 2 tasks per node, so it takes both nodes (one core per socket);
 * the old count (8 free cores: 4 tasks) chose one node and could not place. */

#endif
