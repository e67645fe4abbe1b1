/* The connection bound of the HTTP servers (lib/http_limit.c), over a real
 * evhttp server on loopback and plain client sockets: past max a new
 * connection reads a 503 at once and is closed, without having sent a
 * byte; the ones open keep working; a close makes room; the code's own
 * close callbacks still run; an idle connection is closed after the
 * timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/http.h"
#include "lib/http_limit.h"
#include "tests/unit/support/httptest.h"

typedef struct world {
    struct event_base *base;
    struct evhttp *http;
    phx_http_limit_t *limit;
    uint16_t port;
    int closed;  /* close callbacks of the code run */
    int nodelay; /* TCP_NODELAY of the last request's connection */
} world_t;

static void on_close(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    ((world_t *)arg)->closed++;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    world_t *w = arg;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    int fd = (int)bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
    socklen_t len = sizeof(w->nodelay);
    w->nodelay = -1;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &w->nodelay, &len);
    phx_http_conn_closecb(conn, on_close, w);
    phx_http_reply_text(req, 200, "text/plain", "ok\n");
}

static void pump(world_t *w, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        usleep(2000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void start(world_t *w, size_t max, double timeout)
{
    memset(w, 0, sizeof(*w));
    assert_non_null(w->base = event_base_new());
    assert_non_null(w->http = evhttp_new(w->base));
    evhttp_set_gencb(w->http, on_request, w);
    phx_error_t err;
    w->limit = phx_http_limit_create(w->http, w->base, "test.max", max, timeout, &err);
    assert_non_null(w->limit);
    assert_int_not_equal(w->port = phx_test_http_listen(w->http), 0);
}

static void stop(world_t *w)
{
    evhttp_free(w->http);
    phx_http_limit_destroy(w->limit);
    event_base_free(w->base);
}

static int dial(world_t *w)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* What fd has to read now ("" if nothing; "EOF" once closed). */
static const char *peek(int fd)
{
    static char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n == 0)
        return "EOF";
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static const char *get(world_t *w, int fd)
{
    const char *r = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(fd, r, strlen(r), 0), (ssize_t)strlen(r));
    pump(w, 50);
    return peek(fd);
}

static void test_bound(void **state)
{
    (void)state;
    world_t w;
    start(&w, 2, 0);
    int a = dial(&w), b = dial(&w);
    pump(&w, 50);
    assert_int_equal(phx_http_limit_open(w.limit), 2);
    int c = dial(&w); /* sends nothing: told at once all the same */
    pump(&w, 50);
    const char *refused = peek(c);
    assert_non_null(strstr(refused, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(refused, "too many HTTP connections (test.max = 2)"));
    assert_string_equal(peek(c), "EOF");
    assert_int_equal(phx_http_limit_refused(w.limit), 1);
    assert_int_equal(phx_http_limit_open(w.limit), 2);
    /* the ones open still work, and again (keep-alive); replies are not
     * held back by Nagle's algorithm */
    assert_non_null(strstr(get(&w, a), "HTTP/1.1 200"));
    assert_int_equal(w.nodelay, 1);
    assert_non_null(strstr(get(&w, b), "HTTP/1.1 200"));
    assert_non_null(strstr(get(&w, a), "HTTP/1.1 200"));
    /* a close makes room, and the code's close callback runs */
    close(a);
    pump(&w, 50);
    assert_int_equal(w.closed, 1);
    assert_int_equal(phx_http_limit_open(w.limit), 1);
    int d = dial(&w);
    assert_non_null(strstr(get(&w, d), "HTTP/1.1 200"));
    assert_int_equal(phx_http_limit_open(w.limit), 2);
    /* a larger bound (a reload) takes one more */
    phx_http_limit_set_max(w.limit, 3);
    int e = dial(&w);
    assert_non_null(strstr(get(&w, e), "HTTP/1.1 200"));
    assert_int_equal(phx_http_limit_refused(w.limit), 1);
    close(b);
    close(c);
    close(d);
    close(e);
    pump(&w, 50);
    assert_int_equal(phx_http_limit_open(w.limit), 0);
    stop(&w);
}

static void test_many_at_once(void **state)
{
    (void)state;
    world_t w;
    start(&w, 5, 0);
    int fds[40];
    for (int i = 0; i < 40; i++)
        fds[i] = dial(&w); /* all waiting in the backlog: one accept pass */
    pump(&w, 100);
    assert_int_equal(phx_http_limit_open(w.limit), 5);
    assert_int_equal(phx_http_limit_refused(w.limit), 35);
    int ok = 0;
    for (int i = 0; i < 40; i++)
        ok += strcmp(peek(fds[i]), "") == 0; /* open, nothing said */
    assert_int_equal(ok, 5);
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    pump(&w, 50);
    assert_int_equal(phx_http_limit_open(w.limit), 0);
    stop(&w);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    world_t w;
    start(&w, 4, 0.3);
    int a = dial(&w), b = dial(&w);
    pump(&w, 100);
    assert_non_null(strstr(get(&w, b), "HTTP/1.1 200"));
    assert_string_equal(peek(a), "");
    pump(&w, 600);
    assert_string_equal(peek(a), "EOF"); /* never sent a byte */
    assert_string_equal(peek(b), "EOF"); /* idle after its answer */
    assert_int_equal(phx_http_limit_open(w.limit), 0);
    close(a);
    close(b);
    stop(&w);
}

/* Connections still open when the server goes are counted out, and their
 * close callbacks run (evhttp_free before phx_http_limit_destroy). */
static void test_free_open(void **state)
{
    (void)state;
    world_t w;
    start(&w, 4, 0);
    int a = dial(&w);
    assert_non_null(strstr(get(&w, a), "HTTP/1.1 200"));
    int b = dial(&w);
    pump(&w, 50);
    assert_int_equal(phx_http_limit_open(w.limit), 2);
    evhttp_free(w.http);
    assert_int_equal(w.closed, 1);
    assert_int_equal(phx_http_limit_open(w.limit), 0);
    phx_http_limit_destroy(w.limit);
    event_base_free(w.base);
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_many_at_once),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_free_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
