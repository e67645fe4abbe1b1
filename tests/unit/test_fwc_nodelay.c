/* The framework client's connections to the master (lib/framework.c) send
 * with Nagle off: the tail of a call longer than a TCP segment must not
 * wait for the master's delayed ACK (doc/batchd.md, "Throughput").  A fake
 * master (a real evhttp server on loopback) answers SUBSCRIBE with a
 * SUBSCRIBED record and every call with 202; the test then reads
 * TCP_NODELAY of each socket of this process connected to it, the client's
 * own, and checks that a call of 200 KB arrives whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/framework.h"
#include "lib/json.h"
#include "tests/unit/support/httptest.h"

typedef struct world {
    struct event_base *base;
    struct evhttp *http;
    uint16_t port;
    int subscribed, calls, answered, answer_status;
    size_t last_call_len;
    bool close_first; /* the first call's answer closes its connection */
} world_t;

/* The call's completion: the client has read the 202 and freed its call
 * context (destroying the client before would leak it). */
static void on_answer(phx_fwc_t *c, int status, const char *body, void *arg)
{
    (void)c;
    (void)body;
    world_t *w = arg;
    w->answered++;
    w->answer_status = status;
}

static void on_api(struct evhttp_request *req, void *arg)
{
    world_t *w = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *body = malloc(n + 1);
    assert_non_null(body);
    evbuffer_remove(in, body, n);
    body[n] = '\0';
    json_t *call = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(call);
    const char *type = json_string_value(json_object_get(call, "type"));
    assert_non_null(type);
    if (strcmp(type, "SUBSCRIBE") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Mesos-Stream-Id",
                          "s-1");
        evhttp_send_reply_start(req, 200, "OK");
        const char *ev = "{\"type\":\"SUBSCRIBED\",\"subscribed\":"
                         "{\"framework_id\":{\"value\":\"fw-1\"}}}";
        struct evbuffer *out = evbuffer_new();
        evbuffer_add_printf(out, "%zu\n%s", strlen(ev), ev);
        evhttp_send_reply_chunk(req, out);
        evbuffer_free(out);
        w->subscribed++;
    } else {
        if (w->close_first && w->calls == 0)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                              "close");
        w->calls++;
        w->last_call_len = n;
        evhttp_send_reply(req, 202, "Accepted", NULL);
    }
    json_decref(call);
}

static void pump_until(world_t *w, const int *what, int want, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (*what < want &&
             (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* TCP sockets of this process whose peer is the fake master: the client's.
 * *off counts those with Nagle on; the total is returned. */
static int client_sockets(const world_t *w, int *off)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    *off = 0;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        if (e->d_name[0] == '.' ||
            getpeername(fd, (struct sockaddr *)&peer, &len) < 0 ||
            peer.sin_family != AF_INET || ntohs(peer.sin_port) != w->port)
            continue;
        int nodelay = 0;
        len = sizeof(nodelay);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
        n++;
        if (!nodelay)
            (*off)++;
    }
    closedir(d);
    return n;
}

/* A fake master on loopback and a client subscribed to it. */
static phx_fwc_t *start(world_t *w)
{
    assert_non_null(w->base = event_base_new());
    assert_non_null(w->http = evhttp_new(w->base));
    assert_int_not_equal(w->port = phx_test_http_listen(w->http), 0);
    evhttp_set_cb(w->http, "/api/v1/scheduler", on_api, w);

    phx_fwc_opts_t o = {.host = "127.0.0.1",
                        .port = w->port,
                        .name = "t",
                        .user = "root",
                        .role = "*",
                        .failover_timeout = 10};
    phx_fwc_callbacks_t cbs = {0};
    phx_error_t err;
    phx_fwc_t *c = phx_fwc_create(w->base, &o, &cbs, NULL, &err);
    assert_non_null(c);
    assert_int_equal(phx_fwc_start(c, &err), 0);
    pump_until(w, &w->subscribed, 1, 5000);
    assert_int_equal(w->subscribed, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* the SUBSCRIBED record */
        event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!phx_fwc_id(c) && t.tv_sec - t0.tv_sec < 5);
    assert_non_null(phx_fwc_id(c));
    assert_string_equal(phx_fwc_id(c), "fw-1");
    return c;
}

static void stop(world_t *w, phx_fwc_t *c)
{
    phx_fwc_destroy(c);
    evhttp_free(w->http);
    event_base_free(w->base);
}

/* A call of 200 KB: more than three segments of loopback's MSS. */
static void big_call(world_t *w, phx_fwc_t *c)
{
    json_t *ops = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(
            ops, json_pack("{s:s, s:i}", "pad",
                           "................................................"
                           "..................................................",
                           "i", i));
    assert_int_equal(
        phx_fwc_call(c, json_pack("{s:s, s:o}", "type", "MESSAGE", "ops", ops),
                     on_answer, w),
        0);
}

static void test_calls_without_nagle(void **state)
{
    (void)state;
    world_t w = {0};
    phx_fwc_t *c = start(&w);
    big_call(&w, c);
    pump_until(&w, &w.answered, 1, 5000);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.answered, 1);
    assert_int_equal(w.answer_status, 202);
    assert_true(w.last_call_len > 200000);
    int off, n = client_sockets(&w, &off);
    assert_true(n >= 2); /* the event stream's and the call's */
    assert_int_equal(off, 0);
    stop(&w, c);
}

/* A call queued behind one whose answer closes the connection goes out on
 * the socket that evhttp makes again by itself, not in a call of ours:
 * that one is without Nagle too (it was not: only a later call set it). */
static void test_reconnect_without_nagle(void **state)
{
    (void)state;
    world_t w = {.close_first = true};
    phx_fwc_t *c = start(&w);
    big_call(&w, c);
    big_call(&w, c); /* queued behind the first, same connection */
    pump_until(&w, &w.answered, 2, 5000);
    assert_int_equal(w.calls, 2);
    assert_int_equal(w.answered, 2);
    assert_int_equal(w.answer_status, 202);
    assert_true(w.last_call_len > 200000);
    int off, n = client_sockets(&w, &off);
    assert_true(n >= 2); /* the event stream's and the call's new one */
    assert_int_equal(off, 0);
    stop(&w, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_without_nagle),
        cmocka_unit_test(test_reconnect_without_nagle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
