/* The request-head reader (lib/http_head.c) reads what libevent 2.1's
 * evhttp reads: a head fed in pieces of any size, CR LF or bare LF line
 * ends, names without case, the first header of a name, continuation lines
 * joined with a space, the methods evhttp reads a body for, its bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/http_head.h"

/* Feed text a piece of step bytes at a time; the status at the end, the
 * bytes of the head in *used. */
static phx_http_head_status_t feed(phx_http_head_t *h, const char *text, size_t step,
                                   size_t *used)
{
    size_t len = strlen(text), off = 0;
    phx_http_head_status_t st = PHX_HTTP_HEAD_MORE;
    while (off < len && st == PHX_HTTP_HEAD_MORE) {
        size_t n = len - off < step ? len - off : step, u = 0;
        st = phx_http_head_feed(h, text + off, n, &u);
        off += u;
    }
    *used = off;
    return st;
}

static void test_values_any_split(void **state)
{
    (void)state;
    const char *text = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n"
                       "content-LENGTH:   70000  \r\n"
                       "Authorization: Munge MUNGE:abc:\r\n"
                       "Content-Length: 5\r\n" /* the first counts */
                       "X-Stream: s1\n"        /* a bare LF ends a line too */
                       "\r\nBODY";
    for (size_t step = 1; step <= strlen(text); step++) {
        phx_http_head_t h;
        phx_http_head_init(&h, 4096, "X-Stream");
        size_t used;
        assert_int_equal(feed(&h, text, step, &used), PHX_HTTP_HEAD_DONE);
        assert_int_equal(used, strlen(text) - 4);
        assert_string_equal(h.method, "POST");
        assert_string_equal(phx_http_head_value(&h, HEAD_CLEN, NULL), "70000");
        assert_string_equal(phx_http_head_value(&h, HEAD_AUTH, NULL),
                            "Munge MUNGE:abc:");
        assert_string_equal(phx_http_head_value(&h, HEAD_EXTRA, NULL), "s1");
        assert_null(phx_http_head_value(&h, HEAD_TE, NULL));
        assert_true(phx_http_head_body_large(&h, 65536));
        assert_false(phx_http_head_body_large(&h, 70000));
        /* the next request on the connection */
        phx_http_head_reset(&h);
        assert_int_equal(feed(&h, "GET / HTTP/1.1\r\n\r\n", step, &used),
                         PHX_HTTP_HEAD_DONE);
        assert_null(phx_http_head_value(&h, HEAD_CLEN, NULL));
        assert_null(phx_http_head_value(&h, HEAD_AUTH, NULL));
        phx_http_head_free(&h);
    }
}

static bool large(const char *text)
{
    phx_http_head_t h;
    phx_http_head_init(&h, 4096, NULL);
    size_t used;
    assert_int_equal(feed(&h, text, 3, &used), PHX_HTTP_HEAD_DONE);
    bool r = phx_http_head_body_large(&h, 1000);
    phx_http_head_free(&h);
    return r;
}

static void test_body_as_evhttp(void **state)
{
    (void)state;
    /* evhttp 2.1 reads a body for POST, PUT and PATCH only */
    assert_true(large("PUT / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"));
    assert_true(large("PATCH / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"));
    assert_false(large("GET / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n"));
    assert_false(large("DELETE / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n"));
    assert_false(large("post / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n"));
    assert_false(large("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"));
    /* any Transfer-Encoding: large */
    assert_true(large("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    assert_true(large("POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n"));
    /* a continuation line joins the value: "10 000", refused by evhttp */
    assert_false(large("POST / HTTP/1.1\r\nContent-Length: 10\r\n 000\r\n\r\n"));
    /* an empty value continued: " 5000" (strtoll skips the space) */
    assert_true(large("POST / HTTP/1.1\r\nContent-Length:\r\n\t5000\r\n\r\n"));
    /* a name with a space before its ':' is another name */
    assert_false(large("POST / HTTP/1.1\r\nContent-Length : 5000\r\n\r\n"));
    /* malformed lengths are refused by evhttp before any body */
    assert_false(large("POST / HTTP/1.1\r\nContent-Length: 5000x\r\n\r\n"));
    assert_false(large("POST / HTTP/1.1\r\nContent-Length: -5000\r\n\r\n"));
    /* a CR alone does not end a line */
    assert_false(large("POST / HTTP/1.1\r\nX: a\rContent-Length: 5000\r\n\r\n"));
    /* a tab before a value is kept (evhttp skips spaces only) */
    assert_false(large("POST / HTTP/1.1\r\nContent-Length:\t5000x\r\n\r\n"));
}

static void test_bounds(void **state)
{
    (void)state;
    phx_http_head_t h;
    phx_http_head_init(&h, 100, NULL);
    char text[300];
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    memcpy(text, "GET / HTTP/1.1\r\nX: ", 19);
    size_t used;
    assert_int_equal(feed(&h, text, 7, &used), PHX_HTTP_HEAD_TOO_LONG);
    assert_true(used <= 100 + 2 + 7);
    /* short lines: their ends count towards the bytes' bound */
    phx_http_head_reset(&h);
    char lines[1000] = "GET / HTTP/1.1\r\n";
    while (strlen(lines) < sizeof(lines) - 5)
        strcat(lines, "a:\r\n");
    assert_int_equal(feed(&h, lines, 64, &used), PHX_HTTP_HEAD_TOO_LONG);
    phx_http_head_free(&h);
    /* a credential past its bound is cut, and said so */
    phx_http_head_init(&h, 4 * PHX_HTTP_HEAD_AUTH_MAX, NULL);
    size_t n = PHX_HTTP_HEAD_AUTH_MAX + 100;
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "POST / HTTP/1.1\r\nAuthorization: Munge ");
    size_t at = strlen(big);
    memset(big + at, 'c', n);
    strcpy(big + at + n, "\r\n\r\n");
    assert_int_equal(feed(&h, big, 4096, &used), PHX_HTTP_HEAD_DONE);
    bool cut;
    const char *v = phx_http_head_value(&h, HEAD_AUTH, &cut);
    assert_true(cut);
    assert_int_equal(strlen(v), PHX_HTTP_HEAD_AUTH_MAX);
    free(big);
    phx_http_head_free(&h);
}

/* evhttp ends the head at a line whose first byte is NUL (`*line == '\0'`):
 * so must the reader, or it reads the body that follows as head */
static void test_nul_line_ends_head(void **state)
{
    (void)state;
    static const char text[] = "POST / HTTP/1.1\r\nContent-Length: 5000\r\n"
                               "\0junk\r\nxx\nyy\n";
    size_t len = sizeof(text) - 1, head = len - 6;
    for (size_t step = 1; step <= len; step++) {
        phx_http_head_t h;
        phx_http_head_init(&h, 4096, NULL);
        phx_http_head_status_t st = PHX_HTTP_HEAD_MORE;
        size_t off = 0;
        while (off < len && st == PHX_HTTP_HEAD_MORE) {
            size_t n = len - off < step ? len - off : step, u = 0;
            st = phx_http_head_feed(&h, text + off, n, &u);
            off += u;
        }
        assert_int_equal(st, PHX_HTTP_HEAD_DONE);
        assert_int_equal(off, head);
        assert_true(phx_http_head_body_large(&h, 1000));
        phx_http_head_free(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_any_split),
        cmocka_unit_test(test_body_as_evhttp),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_nul_line_ends_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
