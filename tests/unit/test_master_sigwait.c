/* phx-master's SIGNAL answers that wait for the agent's SIGNAL_DONE
 * (daemons/master/signal_wait.c): over a real HTTP server and client on
 * loopback, the answer is 202 {"sent": n} when the agent signalled n
 * processes, 409 naming the agent and its reason when it signalled
 * nothing or went away first; an answer for another agent or an unknown
 * wait is ignored.  The agent's side is test_agent_signal. */
#include "daemons/master/signal_wait.c"
#include "tests/unit/support/httptest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/http.h>

typedef struct world {
    phx_master_t m;
    phx_master_agent_t n1, n2;
    struct evhttp *http;
    uint16_t port;
    uint64_t next; /* the wait id the server's handler uses */
    int code;      /* the client's answer: status, 0 none yet */
    char body[512];
} world_t;

static void on_call(struct evhttp_request *req, void *arg)
{
    world_t *w = arg;
    if (phx_sigwait_start(&w->m, req, &w->n1, "t1", w->next) < 0)
        phx_http_reply_error(req, 500, "could not wait");
}

static void on_answer(struct evhttp_request *req, void *arg)
{
    world_t *w = arg;
    w->code = req ? evhttp_request_get_response_code(req) : -1;
    w->body[0] = '\0';
    if (req) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        n = n < sizeof(w->body) - 1 ? n : sizeof(w->body) - 1;
        evbuffer_remove(b, w->body, n);
        w->body[n] = '\0';
    }
}

/* A call whose server side waits as id; run until it is waiting. */
static struct evhttp_connection *call(world_t *w, uint64_t id)
{
    w->next = id;
    w->code = 0;
    struct evhttp_connection *c =
        evhttp_connection_base_new(w->m.base, NULL, "127.0.0.1", w->port);
    assert_non_null(c);
    struct evhttp_request *r = evhttp_request_new(on_answer, w);
    assert_int_equal(evhttp_make_request(c, r, EVHTTP_REQ_POST, "/"), 0);
    for (int i = 0; i < 500 && !w->m.sigwaits; i++)
        event_base_loop(w->m.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_non_null(w->m.sigwaits);
    return c;
}

static void answered(world_t *w)
{
    for (int i = 0; i < 2000 && !w->code; i++)
        event_base_loop(w->m.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_not_equal(w->code, 0);
}

static void done(world_t *w, phx_master_agent_t *a, const char *json)
{
    json_t *h = json_loads(json, 0, NULL);
    assert_non_null(h);
    phx_sigwait_done(&w->m, a, h);
    json_decref(h);
}

static void test_answers(void **state)
{
    (void)state;
    world_t w = {0};
    w.n1.name = "n1";
    w.n2.name = "n2";
    assert_non_null(w.m.base = event_base_new());
    assert_non_null(w.http = evhttp_new(w.m.base));
    assert_int_not_equal(w.port = phx_test_http_listen(w.http), 0);
    evhttp_set_gencb(w.http, on_call, &w);

    /* signalled: 202 with the count */
    struct evhttp_connection *c = call(&w, 1);
    done(&w, &w.n1, "{\"reply\": 1, \"sent\": 2}");
    answered(&w);
    assert_int_equal(w.code, 202);
    assert_string_equal(w.body, "{\"sent\":2}");
    assert_null(w.m.sigwaits);
    evhttp_connection_free(c);

    /* nothing signalled: 409 with the agent's reason; answers for another
     * wait or from another agent are ignored */
    c = call(&w, 2);
    done(&w, &w.n1, "{\"reply\": 9, \"sent\": 1}");
    done(&w, &w.n2, "{\"reply\": 2, \"sent\": 1}");
    done(&w, &w.n1, "{\"reply\": 2}");
    assert_non_null(w.m.sigwaits);
    done(&w, &w.n1,
         "{\"reply\": 2, \"sent\": 0, \"error\": \"no step of the job runs on its "
         "node\"}");
    answered(&w);
    assert_int_equal(w.code, 409);
    assert_non_null(strstr(w.body,
                           "SIGNAL: task t1: agent \\\"n1\\\" signalled nothing: "
                           "no step of the job runs on its node"));
    evhttp_connection_free(c);

    /* the agent goes away first: 409; another's going changes nothing */
    c = call(&w, 3);
    phx_sigwait_agent_gone(&w.m, &w.n2);
    assert_non_null(w.m.sigwaits);
    phx_sigwait_agent_gone(&w.m, &w.n1);
    answered(&w);
    assert_int_equal(w.code, 409);
    assert_non_null(strstr(w.body, "went away before it said what it signalled"));
    assert_null(w.m.sigwaits);
    evhttp_connection_free(c);

    /* the master stops: 503 */
    c = call(&w, 4);
    phx_sigwaits_destroy(&w.m);
    answered(&w);
    assert_int_equal(w.code, 503);
    evhttp_connection_free(c);

    evhttp_free(w.http);
    event_base_free(w.m.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
