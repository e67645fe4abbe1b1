/* batchd's choice of nodes (daemons/batchd/sched.c) and the submit check
 * (cluster.c) over offer JSON, with the real packing (place.c) and planner
 * count (backfill.c): a job goes where batchd_place can put it.
 *
 *   - --ntasks-per-socket spreads a job over nodes when one node's sockets
 *     cannot hold it, and a job no set of nodes can hold is refused;
 *   - a task keeps its cores on one socket when some offer allows it, and
 *     spans sockets only as the last resort;
 *   - --sockets-per-node, --cores-per-socket, --threads-per-core choose
 *     nodes, and refuse at submit when no node qualifies;
 *   - --hint=memory_bound puts one task per socket.
 *
 * Unit tests cannot link daemon objects, so the sources are included; the
 * daemon functions they call from other files are stubbed below. */
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/cluster.c"
#include "daemons/batchd/place.c"
#include "daemons/batchd/gang.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/timefmt.c"
#include "daemons/batchd/sched.c"

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

size_t batchd_live_from(batchd_t *b)
{
    (void)b;
    return 0;
}

size_t batchd_order(batchd_t *b, int64_t now, bjob_t **cand, phx_prio_job_t *prio)
{
    (void)b;
    (void)now;
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

/* --- a cluster and its offers --- */

typedef struct shape {
    const char *agent;
    uint32_t sockets, cores_per_socket, threads;
    uint64_t free; /* bit c: core c is free (cores numbered socket by socket) */
} shape_t;

/* An offer: one NUMA domain per socket holding its free cores. */
static json_t *offer_json(const shape_t *s)
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

static void world_init(world_t *w, const shape_t *nodes, size_t n)
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
    w->p.after = json_array();
    w->p.offers = calloc(n + 1, sizeof(*w->p.offers));
    for (size_t i = 0; i < n; i++) {
        json_t *o = offer_json(&nodes[i]);
        json_array_append_new(w->raw, o);
        assert_int_equal(batchd_offer_parse(&w->p.offers[i], o), 0);
        w->p.noffers++;
    }
}

static void world_clear(world_t *w)
{
    for (size_t i = 0; i < w->p.noffers; i++)
        batchd_offer_clear(&w->p.offers[i]);
    free(w->p.offers);
    free(w->p.acc_jobs);
    json_decref(w->p.acc_ops);
    json_decref(w->p.after);
    json_decref(w->raw);
    phx_hmap_destroy(w->b.node_index);
    phx_hmap_destroy(w->b.tasks);
    free(w->b.nodes);
}

/* A finalized-looking spec: ntasks of cpt cores on 1..nodes_max nodes. */
static void spec(bjob_t *j, int64_t ntasks, int64_t cpt, int64_t nodes_max)
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
static int start(world_t *w, bjob_t *j, char *got, size_t size)
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

static void job_clear(world_t *w, bjob_t *j)
{
    for (size_t i = 0; i < j->ntasks; i++)
        phx_hmap_del(w->b.tasks, j->tasks[i].id);
    free(j->tasks);
    free(j->node_list);
}

static void cores_are(size_t node, const int *want, uint32_t n)
{
    assert_int_equal(launched_n[node], n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(launched_cores[node][i], want[i]);
}

/* --- --ntasks-per-socket --- */

/* Two nodes of 2 sockets x 4 cores, all free: -n 4 --ntasks-per-socket=1
 * holds 2 tasks per node, so it takes both nodes (one core per socket);
 * the old count (8 free cores: 4 tasks) chose one node and could not place. */
static void per_socket_spreads_over_nodes(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 4, 1, 4);
    j.spec.ntasks_per_socket = 1;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2,a2:2");
    cores_are(0, (int[]){0, 4}, 2);
    cores_are(1, (int[]){0, 4}, 2);
    assert_int_equal(j.state, PHX_JOB_RUNNING);
    job_clear(&w, &j);
    world_clear(&w);
}

/* With socket 1 of a1 busy, a1 holds one task: a 2-task job at one per
 * socket goes to a2, which holds both. */
static void per_socket_counts_free_sockets(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0x0F}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 2, 2, 1);
    j.spec.ntasks_per_socket = 1;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:2");
    cores_are(0, (int[]){0, 1, 4, 5}, 4);
    job_clear(&w, &j);
    world_clear(&w);
}

/* At submit: 4 tasks at one per socket need 2 nodes of 2 sockets; one node
 * refuses it, two accept it; a task larger than a socket cannot stay in one. */
static void per_socket_submit_check(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 4, 1, 4);
    j.spec.ntasks_per_socket = 1;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), 0);
    w.b.nnodes = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "requested node configuration is not available"));
    assert_non_null(strstr(err.text, "per socket"));
    w.b.nnodes = 2;
    spec(&j, 2, 5, 2);
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), 0); /* spans */
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "largest socket has 4 cores"));
    world_clear(&w);
}

/* --- exactly N nodes --- */

/* -N 2 -n 6 spreads its tasks evenly (3 + 3, as Slurm's block layout) when
 * the nodes allow, else as they allow (4 + 2 on nodes of 4 and 2 free
 * cores): the planner says it starts, so placement must not refuse it
 * (it pended forever). */
static void exact_nodes_even_else_as_they_fit(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 1, 4, 1, 0x0F}, {"a2", 1, 4, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 6, 1, 2);
    j.spec.nodes_min = 2;
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:3,a2:3");
    job_clear(&w, &j);
    world_clear(&w);

    shape_t uneven[2] = {{"a1", 1, 4, 1, 0x0F}, {"a2", 1, 2, 1, 0x03}};
    world_init(&w, uneven, 2);
    spec(&j, 6, 1, 2);
    j.spec.nodes_min = 2;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:4,a2:2");
    job_clear(&w, &j);
    world_clear(&w);
}

/* --- a task's cores on one socket --- */

/* a1 has 3 + 3 free cores, a2 a whole free socket: a 4-core task goes to
 * a2, inside socket 0, although a1 is the tighter fit by core count. */
static void task_stays_in_a_socket(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0x77}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 1, 4, 1);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    cores_are(0, (int[]){0, 1, 2, 3}, 4);
    job_clear(&w, &j);
    world_clear(&w);
}

/* Only a1 (3 + 3 free): the task spans its sockets, the last resort. */
static void task_spans_sockets_last(void **state)
{
    (void)state;
    shape_t nodes[1] = {{"a1", 2, 4, 1, 0x77}};
    world_t w;
    world_init(&w, nodes, 1);
    bjob_t j;
    spec(&j, 1, 4, 1);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:1");
    cores_are(0, (int[]){0, 1, 2, 4}, 4);
    job_clear(&w, &j);
    /* with --ntasks-per-socket a task never spans: no room */
    spec(&j, 1, 4, 1);
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(start(&w, &j, got, sizeof(got)), -1);
    world_clear(&w);
}

/* 2 tasks of 3 cores, -N 1-2: a1 (3 + 3 free) holds both inside sockets;
 * a2 (4 + 2 free) only one: a1 wins although it has as many free cores. */
static void prefers_tasks_inside_sockets(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a2", 2, 4, 1, 0x3F}, {"a1", 2, 4, 1, 0x77}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 2, 3, 2);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2");
    cores_are(0, (int[]){0, 1, 2, 4, 5, 6}, 6);
    job_clear(&w, &j);
    world_clear(&w);
}

/* 2 tasks of 4 cores, -N 1-2, sockets of 6 cores: a1 has 5 + 3 free (both
 * tasks by core count, one of them spanning its sockets), a2 4 + 0.  Each
 * node holds one task inside a socket: the job takes both rather than
 * split a task on a1. */
static void two_nodes_rather_than_span(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 6, 1, 0x1DF}, {"a2", 2, 6, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 2, 4, 2);
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1,a1:1");
    cores_are(0, (int[]){0, 1, 2, 3}, 4);
    cores_are(1, (int[]){0, 1, 2, 3}, 4);
    job_clear(&w, &j);
    world_clear(&w);
}

/* --- node constraints and hints --- */

static void node_constraints_choose_nodes(void **state)
{
    (void)state;
    /* s1: 1 socket of 4 cores, 1 thread; s2: 2 sockets of 4, 2 threads;
     * c8: 1 socket of 8 cores, 1 thread.  s1 is the tightest fit. */
    shape_t nodes[3] = {
        {"s1", 1, 4, 1, 0x0F}, {"s2", 2, 4, 2, 0xFF}, {"c8", 1, 8, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    bjob_t j;
    char got[128];
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s2:1");
    job_clear(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.threads_per_core = 2;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "s2:1");
    job_clear(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.cores_per_socket = 8;
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "c8:1");
    job_clear(&w, &j);
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    j.spec.cores_per_socket = 8;
    assert_int_equal(start(&w, &j, got, sizeof(got)), -1);
    world_clear(&w);
}

static void node_constraints_at_submit(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"s1", 1, 4, 1, 0x0F}, {"s2", 2, 4, 2, 0xFF}, {"c8", 1, 8, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 3);
    bjob_t j;
    phx_error_t err = {{0}};
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), 0);
    j.spec.sockets_per_node = 4;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "no node has 4 sockets (--sockets-per-node"));
    spec(&j, 1, 1, 1);
    j.spec.cores_per_socket = 16;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "16 cores per socket (--cores-per-socket"));
    spec(&j, 1, 1, 1);
    j.spec.threads_per_core = 4;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "4 threads per core (--threads-per-core"));
    spec(&j, 1, 1, 1);
    j.spec.sockets_per_node = 2;
    j.spec.cores_per_socket = 8;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "all of -B 2:8:* (sockets"));
    /* two nodes of 2 sockets asked, one qualifies */
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "the cluster has 1 of the shape asked"));
    world_clear(&w);
}

/* --hint=memory_bound: one task per socket (Slurm: one core per socket). */
static void hint_memory_bound(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 2, 4, 1, 0xFF}, {"a2", 2, 4, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 2);
    bjob_t j;
    spec(&j, 3, 1, 3);
    j.spec.hint = (char *)"memory_bound";
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:2,a2:1");
    cores_are(0, (int[]){0, 4}, 2);
    job_clear(&w, &j);
    spec(&j, 3, 1, 3);
    j.spec.hint = (char *)"compute_bound";
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a1:3"); /* the fewest free cores: 6, a2 has 7 */
    cores_are(0, (int[]){1, 2, 3}, 3);
    job_clear(&w, &j);
    world_clear(&w);
}

/* --- the gang request (gang.c) --- */

static json_int_t req_int(const json_t *r, const char *key)
{
    const json_t *v = json_object_get(r, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* A reserved job asks the master for what it can use: its tasks (socket
 * bundles when capped per socket, per node, per socket, over at least its
 * nodes); whole nodes when exclusive; only the nodes that have the shape
 * it asks. */
static void gang_request_describes_the_job(void **state)
{
    (void)state;
    shape_t nodes[3] = {
        {"1", 1, 4, 1, 0x0F}, {"2", 2, 2, 1, 0x0F}, {"3", 2, 2, 1, 0x0F}};
    world_t w;
    world_init(&w, nodes, 3);
    w.b.default_mem_per_cpu = 100;
    bjob_t j;
    spec(&j, 4, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.ntasks_per_socket = 1;
    phx_bf_share_t sh[2] = {{1, 2, 2, 200}, {2, 2, 2, 200}};
    phx_bf_decision_t d = {PHX_BF_RESERVED, 1100, sh, 2};
    json_t *r = batchd_gang_request(&w.b, &j, &d, "job-42-1");
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "job-42-1");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "socket");
    assert_int_equal(req_int(r, "bundles"), 4);
    assert_int_equal(req_int(r, "cpus"), 1);
    assert_int_equal(req_int(r, "mem"), 100);
    assert_null(json_object_get(r, "per_agent")); /* no --ntasks-per-node */
    assert_int_equal(req_int(r, "per_socket"), 1);
    assert_int_equal(req_int(r, "min_agents"), 2);
    assert_int_equal(req_int(r, "max_agents"), 2); /* -N 2: not 4 nodes of 1 */
    assert_int_equal(req_int(r, "duration_seconds"), 60);
    assert_null(json_object_get(r, "agents"));
    json_decref(r);

    /* --mem per node: all of it on each node used, however few tasks it
     * gets (a share per task under-asked a node given one); --mem=0: all
     * of each node's memory */
    j.spec.mem_per_node = 1000;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_int_equal(req_int(r, "mem"), 0);
    assert_int_equal(req_int(r, "agent_mem"), 1000);
    assert_null(json_object_get(r, "whole_mem"));
    json_decref(r);
    j.spec.mem_per_node = 0;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_int_equal(req_int(r, "mem"), 0);
    assert_null(json_object_get(r, "agent_mem"));
    assert_true(json_is_true(json_object_get(r, "whole_mem")));
    json_decref(r);
    /* a node range up to the task count: no most; -n 4 without -N: 1 node
     * or more although the planner chose 2 */
    spec(&j, 4, 1, 4);
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_null(json_object_get(r, "max_agents"));
    assert_int_equal(req_int(r, "min_agents"), 1);
    json_decref(r);

    /* no cap per socket: "any" bundles; -N 2 -n 6 on nodes the planner
     * gave 4 and 2 tasks: its own limits, 2 nodes, not the planner's 4 */
    spec(&j, 6, 1, 2);
    j.spec.nodes_min = 2;
    phx_bf_share_t uneven[2] = {{0, 4, 4, 400}, {1, 2, 2, 200}};
    d.shares = uneven;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "any");
    assert_int_equal(req_int(r, "bundles"), 6);
    assert_int_equal(req_int(r, "cpus"), 1);
    assert_int_equal(req_int(r, "mem"), 100);
    assert_null(json_object_get(r, "per_agent"));
    assert_int_equal(req_int(r, "min_agents"), 2);
    assert_int_equal(req_int(r, "max_agents"), 2);
    assert_null(json_object_get(r, "per_socket"));
    json_decref(r);
    /* without the planner's nodes: the tasks spread over nodes_min */
    spec(&j, 6, 2, 3);
    j.spec.nodes_min = 3;
    j.spec.ntasks_per_node = 4;
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    assert_int_equal(req_int(r, "bundles"), 6);
    assert_int_equal(req_int(r, "cpus"), 2);
    assert_int_equal(req_int(r, "per_agent"), 4);
    assert_int_equal(req_int(r, "min_agents"), 3);
    assert_int_equal(req_int(r, "mem"), 200);
    json_decref(r);

    /* exclusive: whole nodes, the smallest of the planner's */
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.ntasks_per_socket = 1;
    j.spec.exclusive = 1;
    phx_bf_share_t whole[2] = {{0, 1, 4, 65536}, {1, 1, 2, 32768}};
    d.shares = whole;
    r = batchd_gang_request(&w.b, &j, &d, "x");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "any");
    assert_int_equal(req_int(r, "bundles"), 2);
    assert_int_equal(req_int(r, "cpus"), 2);
    assert_int_equal(req_int(r, "mem"), 32768);
    assert_int_equal(req_int(r, "per_agent"), 1);
    assert_int_equal(req_int(r, "min_agents"), 2);
    assert_true(json_is_true(json_object_get(r, "whole_agent")));
    json_decref(r);

    /* a node shape: the usable nodes that have it */
    spec(&j, 2, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    w.b.nodes[2].usable = false;
    r = batchd_gang_request(&w.b, &j, NULL, "x");
    const json_t *agents = json_object_get(r, "agents");
    assert_int_equal(json_array_size(agents), 1);
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "2");
    json_decref(r);
    world_clear(&w);
}

/* The master refused a gang request: batchd forgets it and asks again in
 * 30 s (it stood for 300 s); a late answer to an older request or a 202
 * changes nothing. */
static void gang_request_refused(void **state)
{
    (void)state;
    batchd_t b = {0};
    bjob_t j;
    spec(&j, 1, 1, 1);
    found_job = &j;
    const char *answers[][2] = {
        {"202", "job-42-7"}, {"400", "job-42-6"}, {"400", "job-42-7"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(j.request_id, sizeof(j.request_id), "job-42-7");
        j.request_after = 0;
        request_ctx_t *ctx = calloc(1, sizeof(*ctx));
        assert_non_null(ctx);
        ctx->b = &b;
        ctx->job_id = 42;
        snprintf(ctx->request_id, sizeof(ctx->request_id), "%s", answers[i][1]);
        request_answered(NULL, atoi(answers[i][0]), "too big", ctx);
        if (i < 2) {
            assert_string_equal(j.request_id, "job-42-7");
            assert_int_equal(j.request_after, 0);
        } else {
            assert_string_equal(j.request_id, "");
            assert_int_equal(j.request_after, 1030);
        }
    }
    found_job = NULL;
}

/* --- EASY backfill on the offers (sched.c offer_allows) --- */

/* Behind a blocked top job, a later job starts only where the planner put
 * it (the nodes it checked do not delay the reservation), on a lent offer
 * only if its time limit ends by the offer's release_by, and never on an
 * offer held for another job's gang request; nothing is blocked: anywhere. */
static void easy_offers_never_delay_the_reservation(void **state)
{
    (void)state;
    shape_t nodes[2] = {{"a1", 1, 4, 1, 0x7}, {"a2", 1, 4, 1, 0xF}};
    world_t w;
    world_init(&w, nodes, 2);
    const bnode_t *pn[2] = {&w.b.nodes[0], &w.b.nodes[1]};
    phx_bf_share_t on_a2 = {.node = 1, .tasks = 1, .cores = 1};
    phx_bf_decision_t d = {.verdict = PHX_BF_BACKFILL, .shares = &on_a2, .nshares = 1};
    w.p.pnodes = pn;
    w.p.cur = &d;
    bjob_t j, other;
    spec(&j, 1, 1, 1);
    spec(&other, 1, 1, 1);
    boffer_t *o1 = &w.p.offers[0], *o2 = &w.p.offers[1];

    /* Not blocked: both, and the best fit (a1, fewer free cores) wins. */
    assert_true(offer_allows(&w.p, o1, &j) && offer_allows(&w.p, o2, &j));
    /* Blocked: only the planner's node, even though a1 fits better. */
    w.p.blocked = true;
    assert_false(offer_allows(&w.p, o1, &j));
    assert_true(offer_allows(&w.p, o2, &j));
    char got[128];
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a2:1");
    job_clear(&w, &j);
    o2->used = false;
    o2->accepted = false;
    /* The planner's verdict is not START or BACKFILL: nowhere. */
    static const phx_bf_verdict_t no[] = {PHX_BF_RESERVED, PHX_BF_WAIT, PHX_BF_NEVER,
                                          PHX_BF_NOT_TESTED};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        d.verdict = no[i];
        assert_false(offer_allows(&w.p, o1, &j));
        assert_false(offer_allows(&w.p, o2, &j));
    }
    spec(&j, 1, 1, 1);
    assert_int_not_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "");
    /* A lent offer (release_by): a job that ends by then, whatever the
     * planner said; one that ends later or has no limit, never.  now is
     * whole seconds, so the job may end a second past now + its limit: at
     * release_by exactly is too late (that let t0330's small jobs pass its
     * big one once the planner saw busy nodes busy). */
    o1->release_by = (double)w.p.now + 60;
    j.spec.time_limit = 59;
    assert_true(offer_allows(&w.p, o1, &j));
    j.spec.time_limit = 60;
    assert_false(offer_allows(&w.p, o1, &j));
    j.spec.time_limit = 0; /* UNLIMITED */
    assert_false(offer_allows(&w.p, o1, &j));
    w.p.blocked = false;
    assert_false(offer_allows(&w.p, o1, &j));
    /* Held for a gang request: only its job, release_by or not. */
    o1->owner = &other;
    j.spec.time_limit = 10;
    assert_false(offer_allows(&w.p, o1, &j));
    assert_true(offer_allows(&w.p, o1, &other));
    w.p.blocked = true;
    assert_true(offer_allows(&w.p, o1, &other));
    /* Used by this pass already: nobody. */
    o1->used = true;
    assert_false(offer_allows(&w.p, o1, &other));
    w.p.cur = NULL;
    w.p.pnodes = NULL;
    world_clear(&w);
}

/* The submit check caps tasks per node only as the choice of nodes does:
 * a node range takes on one node all it holds (the cap used to be spread
 * over every known node, refusing this job that starts on one node); an
 * exact -N spreads evenly.  The largest socket of 7 cores over 2 is 4. */
static void submit_check_node_range(void **state)
{
    (void)state;
    shape_t nodes[4] = {{"a", 2, 4, 1, 0xFF},
                        {"b", 2, 4, 1, 0xFF},
                        {"c", 1, 8, 1, 0xFF},
                        {"d", 1, 8, 1, 0xFF}};
    world_t w;
    world_init(&w, nodes, 4);
    bjob_t j;
    char got[128];
    phx_error_t err = {{0}};
    spec(&j, 8, 1, 4);
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), 0);
    assert_int_equal(start(&w, &j, got, sizeof(got)), 0);
    assert_string_equal(got, "a:8");
    job_clear(&w, &j);
    spec(&j, 16, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), 0);
    spec(&j, 18, 1, 2);
    j.spec.nodes_min = 2;
    j.spec.sockets_per_node = 2;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "do not fit"));
    world_clear(&w);

    shape_t odd[1] = {{"o", 2, 4, 1, 0x7F}};
    world_init(&w, odd, 1);
    w.b.nodes[0].cores = 7;
    spec(&j, 1, 4, 1);
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), 0);
    spec(&j, 1, 5, 1);
    j.spec.ntasks_per_socket = 1;
    assert_int_equal(batchd_cluster_check(&w.b, &j.spec, &err), -1);
    assert_non_null(strstr(err.text, "largest socket has 4 cores"));
    world_clear(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_socket_spreads_over_nodes),
        cmocka_unit_test(per_socket_counts_free_sockets),
        cmocka_unit_test(per_socket_submit_check),
        cmocka_unit_test(task_stays_in_a_socket),
        cmocka_unit_test(task_spans_sockets_last),
        cmocka_unit_test(prefers_tasks_inside_sockets),
        cmocka_unit_test(two_nodes_rather_than_span),
        cmocka_unit_test(node_constraints_choose_nodes),
        cmocka_unit_test(node_constraints_at_submit),
        cmocka_unit_test(hint_memory_bound),
        cmocka_unit_test(easy_offers_never_delay_the_reservation),
        cmocka_unit_test(submit_check_node_range),
        cmocka_unit_test(gang_request_describes_the_job),
        cmocka_unit_test(exact_nodes_even_else_as_they_fit),
        cmocka_unit_test(gang_request_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
