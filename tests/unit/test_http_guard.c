/* The credential checked at a request's head (lib/http_guard.c), over a
 * real evhttp server on loopback with its connection bound
 * (lib/http_limit.c), a private munged, and plain client sockets: a
 * request that declares a large body without a credential, or with one
 * munged refuses, is answered 401 and closed having sent at most its head
 * and a little of its body; one with a good credential is served, with the
 * identity decoded at its head (munged would refuse a second decode as a
 * replay, and the decoder counts one decode); small bodies, keep-alive,
 * pipelining, heads split over reads, and the master's admit callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/http.h"
#include "lib/http_guard.h"
#include "lib/http_limit.h"
#include "tests/unit/support/mungetest.h"
#include "tests/unit/support/httptest.h"

#define BIG (4u << 20)

typedef struct world {
    struct event_base *base;
    struct evhttp *http;
    phx_http_limit_t *limit;
    phx_http_guard_t *guard;
    phx_munge_t *munge;
    uint16_t port;
    int decodes, handled;
    uid_t uid; /* of the last request served */
} world_t;

static phx_test_munged_t munged;

static int counting_decode(void *arg, const char *cred, phx_munge_cred_t *out,
                           phx_error_t *err)
{
    world_t *w = arg;
    w->decodes++;
    return phx_munge_decode(w->munge, cred, NULL, time(NULL), out, err);
}

static bool admit_sid(void *arg, const char *value)
{
    (void)arg;
    return value && strcmp(value, "s3cret") == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    world_t *w = arg;
    w->handled++;
    phx_munge_cred_t cred;
    phx_error_t err;
    if (strcmp(evhttp_request_get_uri(req), "/big") == 0) { /* a long answer */
        char *text = malloc(BIG + 1);
        assert_non_null(text);
        memset(text, 'a', BIG);
        text[BIG] = '\0';
        phx_http_reply_text(req, 200, "text/plain", text);
        free(text);
        return;
    }
    if (evhttp_find_header(evhttp_request_get_input_headers(req), "Mesos-Stream-Id")) {
        phx_http_reply_text(req, 202, "text/plain", "call\n");
        return;
    }
    if (phx_http_auth(req, w->munge, NULL, &cred, &err) < 0) {
        phx_http_reply_error(req, 401, "%s", err.text);
        return;
    }
    w->uid = cred.uid;
    phx_munge_cred_clear(&cred);
    char text[64];
    snprintf(text, sizeof(text), "uid %u\n", (unsigned)w->uid);
    phx_http_reply_text(req, 200, "text/plain", text);
}

static void pump(world_t *w, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void start(world_t *w)
{
    memset(w, 0, sizeof(*w));
    phx_error_t err;
    assert_non_null(w->munge = phx_munge_create(munged.socket, &err));
    assert_non_null(w->base = event_base_new());
    assert_non_null(w->http = evhttp_new(w->base));
    evhttp_set_max_body_size(w->http, PHX_HTTP_BODY_MAX);
    evhttp_set_max_headers_size(w->http, PHX_HTTP_HEADERS_MAX);
    assert_non_null(
        w->limit = phx_http_limit_create(w->http, w->base, "test.max", 64, 0, &err));
    assert_non_null(w->guard = phx_http_guard_create(
                        w->http, w->limit, w->base, w->munge, PHX_HTTP_HEADERS_MAX,
                        PHX_HTTP_BODY_MAX, on_request, w, &err));
    phx_http_guard_set_decoder(w->guard, counting_decode, w);
    phx_http_guard_set_admit(w->guard, "Mesos-Stream-Id", admit_sid, w);
    assert_int_not_equal(w->port = phx_test_http_listen(w->http), 0);
}

static void stop(world_t *w)
{
    evhttp_free(w->http);
    phx_http_limit_destroy(w->limit); /* and the guard */
    event_base_free(w->base);
    phx_munge_destroy(w->munge);
}

static int dial(world_t *w)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 16384; /* the client's own buffers hide little of what is sent */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump(w, 20);
    return fd;
}

/* Send len bytes of p, a piece of at most step at a time, the server run
 * between two; stops early if the server closed.  Bytes sent. */
static size_t send_some(world_t *w, int fd, const char *p, size_t len, size_t step)
{
    size_t sent = 0;
    int stuck = 0;
    while (sent < len && stuck < 200) {
        size_t n = len - sent < step ? len - sent : step;
        ssize_t k = send(fd, p + sent, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break; /* reset: the server closed */
        if (k > 0) {
            sent += (size_t)k;
            stuck = 0;
        } else {
            stuck++;
        }
        pump(w, 2);
    }
    return sent;
}

/* What the server answered (NUL-terminated, static) within ms; *eof: it
 * closed the connection. */
static const char *answer(world_t *w, int fd, int ms, bool *eof)
{
    static char buf[8192];
    size_t got = 0;
    *eof = false;
    for (int i = 0; i < ms / 5 && !*eof; i++) {
        pump(w, 5);
        for (;;) {
            ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                *eof = true;
                break;
            }
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    buf[got] = '\0';
    return buf;
}

/* "POST path" with a body of len bytes of 'x' and an Authorization header
 * (NULL: none): the request's text (caller frees), its head's length in
 * *head. */
static char *request(const char *path, size_t len, const char *auth, const char *extra,
                     size_t *total, size_t *head)
{
    char h[PHX_MUNGE_CRED_MAX + 512];
    int n =
        snprintf(h, sizeof(h),
                 "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n%s%s%s%s\r\n",
                 path, len, auth ? "Authorization: Munge " : "", auth ? auth : "",
                 auth ? "\r\n" : "", extra ? extra : "");
    char *r = malloc((size_t)n + len + 1);
    assert_non_null(r);
    memcpy(r, h, (size_t)n);
    memset(r + n, 'x', len);
    r[(size_t)n + len] = '\0';
    *head = (size_t)n;
    *total = (size_t)n + len;
    return r;
}

/* A credential for POST path with a body of len bytes of 'x'. */
static char *cred_for(world_t *w, const char *path, size_t len)
{
    char *body = malloc(len + 1);
    assert_non_null(body);
    memset(body, 'x', len);
    body[len] = '\0';
    char payload[1200];
    assert_int_equal(
        phx_http_auth_payload("POST", path, body, len, payload, sizeof(payload)), 0);
    free(body);
    char *cred = NULL;
    phx_error_t err;
    assert_int_equal(
        phx_munge_encode(w->munge, payload, strlen(payload), 0, &cred, &err), 0);
    return cred;
}

static void refused_early(world_t *w, const char *auth, const char *why)
{
    size_t total, head;
    char *r = request("/x", BIG, auth, NULL, &total, &head);
    int fd = dial(w);
    size_t sent = send_some(w, fd, r, total, 4096);
    bool eof;
    const char *a = answer(w, fd, 200, &eof);
    /* without the guard evhttp reads all 4 MiB, then the handler answers */
    assert_true(sent < head + (128u << 10));
    assert_non_null(strstr(a, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_non_null(strstr(a, why));
    assert_true(eof);
    assert_int_equal(w->handled, 0);
    close(fd);
    free(r);
}

static void test_no_credential(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    refused_early(&w, NULL, "missing \\\"Authorization: Munge <credential>\\\" header");
    assert_int_equal(w.decodes, 0);
    assert_int_equal(phx_http_guard_refused(w.guard), 1);
    pump(&w, 20);
    assert_int_equal(phx_http_limit_open(w.limit), 0);
    stop(&w);
}

static void test_bad_credential(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    refused_early(&w, "MUNGE:AwQFAAAnotacredential:", "munge credential");
    assert_int_equal(w.decodes, 1);
    /* a good credential decoded once already: munged calls it a replay */
    char *cred = cred_for(&w, "/x", BIG);
    phx_munge_cred_t c;
    phx_error_t err;
    assert_int_equal(phx_munge_decode(w.munge, cred, NULL, time(NULL), &c, &err), 0);
    phx_munge_cred_clear(&c);
    w.decodes = 0;
    refused_early(&w, cred, "munge credential replayed");
    assert_int_equal(w.decodes, 1);
    free(cred);
    stop(&w);
}

static void test_good_credential_once(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    char *cred = cred_for(&w, "/x", BIG);
    size_t total, head;
    char *r = request("/x", BIG, cred, NULL, &total, &head);
    int fd = dial(&w);
    assert_int_equal(send_some(&w, fd, r, total, 1 << 20), total);
    bool eof;
    const char *a = answer(&w, fd, 300, &eof);
    assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
    char want[32];
    snprintf(want, sizeof(want), "uid %u\n", (unsigned)getuid());
    assert_non_null(strstr(a, want));
    assert_int_equal(w.decodes, 1); /* at the head; the handler took it */
    assert_false(eof);              /* kept alive */
    close(fd);
    free(r);
    /* the body must still be the one signed: a credential over another
     * body, decoded at the head, is refused by the handler as ever */
    char *other = cred_for(&w, "/x", BIG - 1);
    r = request("/x", BIG, other, NULL, &total, &head);
    fd = dial(&w);
    send_some(&w, fd, r, total, 1 << 20);
    a = answer(&w, fd, 300, &eof);
    assert_non_null(strstr(a, "HTTP/1.1 401"));
    assert_non_null(strstr(a, "munge credential payload does not match the request"));
    close(fd);
    free(r);
    free(other);
    free(cred);
    stop(&w);
}

static void test_small_body_untouched(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    size_t total, head;
    char *r = request("/x", PHX_HTTP_GUARD_OPEN_BODY, NULL, NULL, &total, &head);
    int fd = dial(&w);
    assert_int_equal(send_some(&w, fd, r, total, 65536), total);
    bool eof;
    const char *a = answer(&w, fd, 200, &eof);
    /* the handler's own answer, as before */
    assert_non_null(strstr(a, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_non_null(
        strstr(a, "missing \\\"Authorization: Munge <credential>\\\" header"));
    assert_int_equal(w.handled, 1);
    assert_int_equal(w.decodes, 0);
    assert_false(eof);
    free(r);
    /* and its own decode of a small request's credential */
    char *cred = cred_for(&w, "/x", 100);
    r = request("/x", 100, cred, NULL, &total, &head);
    send_some(&w, fd, r, total, 65536);
    a = answer(&w, fd, 200, &eof);
    assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
    assert_int_equal(w.decodes, 0);
    close(fd);
    free(r);
    free(cred);
    stop(&w);
}

static void test_keepalive_pipelined_split(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    size_t len = 100000, t1, t2, t3, h1, h2, h3;
    char *c1 = cred_for(&w, "/a", len), *c2 = cred_for(&w, "/b", len);
    char *r1 = request("/a", len, c1, NULL, &t1, &h1);
    char *r2 = request("/b", len, c2, NULL, &t2, &h2);
    char *r3 = request("/c", BIG, NULL, NULL, &t3, &h3);
    /* two good requests and a bad one, back to back, the heads split at
     * odd places */
    char *all = malloc(t1 + t2 + h3 + 1);
    assert_non_null(all);
    memcpy(all, r1, t1);
    memcpy(all + t1, r2, t2);
    memcpy(all + t1 + t2, r3, h3);
    int fd = dial(&w);
    assert_int_equal(send_some(&w, fd, all, 50, 7), 50);
    assert_int_equal(send_some(&w, fd, all + 50, t1 + t2 + h3 - 50, 3001),
                     t1 + t2 + h3 - 50);
    size_t more = send_some(&w, fd, r3 + h3, BIG, 4096);
    bool eof;
    const char *a = answer(&w, fd, 300, &eof);
    const char *second = strstr(a, "HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_non_null(strstr(second + 1, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(a, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_true(eof);
    assert_true(more < (128u << 10));
    assert_int_equal(w.handled, 2);
    assert_int_equal(w.decodes, 2);
    close(fd);
    free(all);
    free(r1);
    free(r2);
    free(r3);
    free(c1);
    free(c2);
    stop(&w);
}

static void test_admit_and_head_bound(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    size_t total, head;
    /* a framework's call: a known Mesos-Stream-Id instead of munge */
    char *r = request("/x", 100000, NULL, "Mesos-Stream-Id: s3cret\r\n", &total, &head);
    int fd = dial(&w);
    assert_int_equal(send_some(&w, fd, r, total, 65536), total);
    bool eof;
    assert_non_null(strstr(answer(&w, fd, 200, &eof), "HTTP/1.1 202"));
    close(fd);
    free(r);
    r = request("/x", BIG, NULL, "Mesos-Stream-Id: wrong\r\n", &total, &head);
    fd = dial(&w);
    assert_true(send_some(&w, fd, r, total, 4096) < head + (128u << 10));
    assert_non_null(strstr(answer(&w, fd, 200, &eof), "HTTP/1.1 401"));
    close(fd);
    free(r);
    /* a head past the bound while evhttp writes an answer (it reads on,
     * to see a close, and keeps what comes): refused all the same */
    fd = dial(&w);
    const char *get = "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    size_t pad = 8u << 20;
    char *p = malloc(strlen(get) + pad);
    assert_non_null(p);
    memcpy(p, get, strlen(get));
    memset(p + strlen(get), 'a', pad);
    size_t sent = send_some(&w, fd, p, strlen(get) + pad, 16384);
    assert_true(sent < 2 * PHX_HTTP_HEADERS_MAX + (256u << 10));
    free(p);
    close(fd);
    stop(&w);
}

/* A header line that starts with a NUL ends the head for evhttp (it tests
 * the line's first char): the guard must judge the head there too, or a
 * body of short lines (none empty) passes as more head, unrefused. */
static void test_nul_line_ends_head(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    size_t len = 200000;
    char h[256];
    int n = snprintf(h, sizeof(h),
                     "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n", len);
    size_t head = (size_t)n + 3, total = head + len;
    char *r = malloc(total);
    assert_non_null(r);
    memcpy(r, h, (size_t)n);
    memcpy(r + n, "\0\r\n", 3);
    for (size_t i = 0; i < len; i += 2)
        memcpy(r + head + i, "x\n", 2);
    int fd = dial(&w);
    size_t sent = send_some(&w, fd, r, total, 4096);
    bool eof;
    const char *a = answer(&w, fd, 200, &eof);
    assert_non_null(strstr(a, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_int_equal(w.handled, 0);
    assert_true(sent < head + (128u << 10));
    assert_true(eof);
    close(fd);
    free(r);
    stop(&w);
}

/* A refused head that comes while the answer before it is still being
 * written: that answer goes out whole, then the refusal (doc/http.md). */
static void test_refused_behind_long_answer(void **state)
{
    (void)state;
    world_t w;
    start(&w);
    int fd = dial(&w);
    const char *get = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send_some(&w, fd, get, strlen(get), 4096), strlen(get));
    pump(&w, 50); /* answered: most of it waits in the server's buffer */
    size_t total, head;
    char *r = request("/x", BIG, NULL, NULL, &total, &head);
    assert_int_equal(send_some(&w, fd, r, head, 4096), head);
    pump(&w, 50);
    size_t cap = BIG + 65536, got = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (int i = 0; i < 2000 && got < cap; i++) {
        pump(&w, 1);
        ssize_t n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (n > 0)
            got += (size_t)n;
    }
    buf[got] = '\0';
    if (got <= BIG)
        fail_msg("%zu bytes read, the answer cut: %.60s", got,
                 strstr(buf, "HTTP/1.1 401") ? strstr(buf, "HTTP/1.1 401") : "");
    assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n", 17);
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    assert_true((size_t)(body - buf) + BIG <= got);
    for (size_t i = 0; i < BIG; i++)
        if (body[i] != 'a')
            fail_msg("the answer cut at byte %zu of %u", i, BIG);
    assert_non_null(strstr(body + BIG, "HTTP/1.1 401 Unauthorized\r\n"));
    free(buf);
    free(r);
    close(fd);
    stop(&w);
}

static int setup(void **state)
{
    (void)state;
    return phx_test_munged_start(&munged);
}

static int teardown(void **state)
{
    (void)state;
    phx_test_munged_stop(&munged);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_credential),
        cmocka_unit_test(test_bad_credential),
        cmocka_unit_test(test_good_credential_once),
        cmocka_unit_test(test_small_body_untouched),
        cmocka_unit_test(test_keepalive_pipelined_split),
        cmocka_unit_test(test_admit_and_head_bound),
        cmocka_unit_test(test_nul_line_ends_head),
        cmocka_unit_test(test_refused_behind_long_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
