/* batchd's gang requests at the master (daemons/batchd/request.c): a
 * request batchd stops tracking is cancelled at the master, now or once
 * it can be, never left held there until it expires (300 s of nodes held
 * for nothing).  The sources, stubs, world and fake master link:
 * batch_world.h. */
#include "tests/unit/batch_world.h"

/* jansson's allocations fail while json_fails (out of memory). */
static bool json_fails;

static void *json_malloc(size_t size)
{
    return json_fails ? NULL : malloc(size);
}

typedef struct rworld {
    world_t w;
    bjob_t j[2];
} rworld_t;

static void rworld_init(rworld_t *rw)
{
    shape_t nodes[2] = {{"1", 1, 4, 1, 0x0F}, {"2", 1, 4, 1, 0x0F}};
    world_init(&rw->w, nodes, 2);
    rw->w.b.fwc = (phx_fwc_t *)&rw->w; /* only ever passed to the fake */
    rw->w.b.subscribed = true;
    rw->w.b.base = event_base_new();
    assert_non_null(rw->w.b.base);
    for (size_t i = 0; i < 2; i++) {
        spec(&rw->j[i], 1, 1, 1);
        rw->j[i].id = 42 + i;
        rw->j[i].state = PHX_JOB_PENDING;
    }
    master_up = true;
    json_decref(master_take());
    json_set_alloc_funcs(json_malloc, free);
}

static void rworld_clear(rworld_t *rw)
{
    master_answer(202);
    json_decref(master_take());
    json_set_alloc_funcs(malloc, free);
    batchd_request_clear(&rw->w.b);
    if (rw->w.b.sched_ev)
        event_free(rw->w.b.sched_ev);
    event_base_free(rw->w.b.base);
    world_clear(&rw->w);
}

/* Whether a call of calls cancels request id. */
static bool cancelled(const json_t *calls, const char *id)
{
    size_t i, k;
    json_t *call, *c;
    json_array_foreach(calls, i, call)
    {
        const json_t *cancel =
            json_object_get(json_object_get(call, "request"), "cancel");
        json_array_foreach(cancel, k,
                           c) if (strcmp(json_string_value(c), id) == 0) return true;
    }
    return false;
}

/* How many gang requests calls ask for. */
static size_t requested(const json_t *calls)
{
    size_t i, n = 0;
    json_t *call;
    json_array_foreach(calls, i, call) n +=
        json_array_size(json_object_get(json_object_get(call, "request"), "requests"));
    return n;
}

/* j asks, and the master holds, gang request id. */
static void ask(rworld_t *rw, bjob_t *j, uint32_t pool, int64_t now, const char *id)
{
    batchd_request_send(&rw->w.b, j, pool, NULL, now);
    master_answer(202);
    json_t *calls = master_take();
    assert_int_equal(requested(calls), 1);
    assert_string_equal(j->request_id, id);
    json_decref(calls);
}

/* The job's request expired and its new one cannot be built (out of
 * memory): the old one is cancelled by the end of the pass, not only
 * forgotten; the job asks again in 30 s. */
static void unbuilt_request_cancels_the_old(void **state)
{
    (void)state;
    rworld_t rw;
    rworld_init(&rw);
    ask(&rw, &rw.j[0], 0, 1000, "job-42-1");
    json_fails = true;
    batchd_request_send(&rw.w.b, &rw.j[0], 0, NULL, 1300);
    json_fails = false;
    assert_string_equal(rw.j[0].request_id, "");
    assert_int_equal(rw.w.b.nrequested, 0);
    on_sched(-1, EV_READ, &rw.w.b); /* the pass ends */
    json_t *calls = master_take();
    assert_true(cancelled(calls, "job-42-1"));
    assert_int_equal(requested(calls), 0);
    json_decref(calls);
    assert_int_equal(rw.j[0].request_after, 1330);
    rworld_clear(&rw);
}

/* Without the master's event stream: a job that ends, the partitions that
 * change, a request that could not be sent (it cancelled another job's) —
 * their requests are cancelled once batchd subscribes again. */
static void forgotten_while_unsubscribed_cancelled_later(void **state)
{
    (void)state;
    rworld_t rw;
    rworld_init(&rw);
    ask(&rw, &rw.j[0], 0, 1000, "job-42-1");
    ask(&rw, &rw.j[1], 1, 1000, "job-43-2");
    master_up = rw.w.b.subscribed = false;
    batchd_sched_job_done(&rw.w.b, &rw.j[0]);
    batchd_sched_parts_changed(&rw.w.b);
    assert_int_equal(rw.w.b.nrequested, 0);
    json_t *calls = master_take();
    assert_int_equal(json_array_size(calls), 0);
    json_decref(calls);
    master_up = rw.w.b.subscribed = true;
    batchd_sched_subscribed(&rw.w.b);
    calls = master_take();
    assert_true(cancelled(calls, "job-42-1"));
    assert_true(cancelled(calls, "job-43-2"));
    json_decref(calls);

    /* job 43 now reserved in job 42's pool while the call cannot go */
    rw.j[0].state = PHX_JOB_PENDING;
    ask(&rw, &rw.j[0], 0, 1000, "job-42-3");
    master_up = rw.w.b.subscribed = false;
    batchd_request_send(&rw.w.b, &rw.j[1], 0, NULL, 1000);
    assert_string_equal(rw.j[0].request_id, "");
    assert_string_equal(rw.j[1].request_id, ""); /* never reached the master */
    master_up = rw.w.b.subscribed = true;
    batchd_sched_subscribed(&rw.w.b);
    calls = master_take();
    assert_true(cancelled(calls, "job-42-3"));
    json_decref(calls);
    rworld_clear(&rw);
}

/* A request call that got no answer may be held by the master: cancelled
 * (an HTTP refusal held nothing: forgotten, test_batch_gang.c). */
static void unanswered_request_cancelled(void **state)
{
    (void)state;
    rworld_t rw;
    rworld_init(&rw);
    found_job = &rw.j[0];
    batchd_request_send(&rw.w.b, &rw.j[0], 0, NULL, 1000);
    json_decref(master_take());
    master_answer(0);
    assert_string_equal(rw.j[0].request_id, "");
    on_sched(-1, EV_READ, &rw.w.b);
    json_t *calls = master_take();
    assert_true(cancelled(calls, "job-42-1"));
    json_decref(calls);
    found_job = NULL;
    rworld_clear(&rw);
}

/* A GPU job asks the master too (it asked nothing while the master's
 * requests held no GPUs): its GPUs per node, on the nodes that have them. */
static void gpu_job_asks_the_master(void **state)
{
    (void)state;
    rworld_t rw;
    rworld_init(&rw);
    bnode_t *n = &rw.w.b.nodes[1];
    n->gpu = calloc(2, sizeof(*n->gpu));
    assert_non_null(n->gpu);
    n->ngpus = 2;
    n->gpu[1].id = 1;
    rw.j[0].spec.gres = "gpu:2";
    ask(&rw, &rw.j[0], 0, 1000, "job-42-1");
    json_t *calls = master_take(); /* none more: ask took the call */
    assert_int_equal(json_array_size(calls), 0);
    json_decref(calls);
    /* what it asked, as the log line says it */
    rw.j[0].request_until = 0;
    batchd_request_send(&rw.w.b, &rw.j[0], 0, NULL, 1300);
    calls = master_take();
    json_t *req = json_array_get(
        json_object_get(json_object_get(json_array_get(calls, 0), "request"),
                        "requests"),
        0);
    assert_int_equal(json_integer_value(json_object_get(req, "agent_gpus")), 2);
    const json_t *agents = json_object_get(req, "agents");
    assert_int_equal(json_array_size(agents), 1);
    assert_string_equal(json_string_value(json_array_get(agents, 0)), "2");
    json_decref(calls);
    free(rw.j[0].nodes_ok);
    free(n->gpu);
    rworld_clear(&rw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unbuilt_request_cancels_the_old),
        cmocka_unit_test(forgotten_while_unsubscribed_cancelled_later),
        cmocka_unit_test(unanswered_request_cancelled),
        cmocka_unit_test(gpu_job_asks_the_master),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
