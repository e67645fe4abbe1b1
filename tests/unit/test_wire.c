/* The frame decoder: whole, partial, oversized, truncated and garbage input. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/wire.h"

#define MAX 4096

static uint8_t *make_raw(uint32_t hlen, uint32_t alen, const char *hdr, const void *att,
                         size_t *len)
{
    size_t hl = hdr ? strlen(hdr) : 0;
    uint8_t *b = malloc(8 + hl + (att ? alen : 0));
    uint32_t h = htonl(hlen), a = htonl(alen);
    memcpy(b, &h, 4);
    memcpy(b + 4, &a, 4);
    if (hdr)
        memcpy(b + 8, hdr, hl);
    if (att)
        memcpy(b + 8 + hl, att, alen);
    *len = 8 + hl + (att ? alen : 0);
    return b;
}

static void encode_ping(uint8_t **buf, size_t *len, const void *att, size_t alen)
{
    json_t *h = json_pack("{s:s, s:i}", "type", "PING", "seq", 7);
    phx_error_t err;
    assert_int_equal(phx_wire_encode(h, att, alen, MAX, buf, len, &err), 0);
    json_decref(h);
}

static void test_roundtrip_with_attachment(void **state)
{
    (void)state;
    uint8_t att[300];
    for (size_t i = 0; i < sizeof(att); i++)
        att[i] = (uint8_t)(i * 7); /* includes NUL bytes: raw, not text */
    uint8_t *buf;
    size_t len;
    encode_ping(&buf, &len, att, sizeof(att));

    phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
    phx_error_t err;
    phx_frame_t f;
    assert_int_equal(phx_wire_decoder_feed(dec, buf, len, &err), 0);
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 1);
    assert_string_equal(f.type, "PING");
    assert_int_equal(json_integer_value(json_object_get(f.header, "seq")), 7);
    assert_int_equal(f.attach_len, sizeof(att));
    assert_memory_equal(f.attach, att, sizeof(att));
    phx_frame_clear(&f);
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 0);
    assert_int_equal(phx_wire_decoder_pending(dec), 0);
    phx_wire_decoder_destroy(dec);
    free(buf);
}

/* A decoder that got a large frame gives its buffer back down to what is
 * pending, and decodes on as before. */
static void test_shrink(void **state)
{
    (void)state;
    static uint8_t att[70000];
    memset(att, 'x', sizeof(att));
    uint8_t *buf;
    size_t len;
    phx_error_t err;
    json_t *h = json_pack("{s:s}", "type", "INPUT");
    assert_int_equal(phx_wire_encode(h, att, sizeof(att), 1u << 20, &buf, &len, &err),
                     0);
    json_decref(h);
    phx_wire_decoder_t *dec = phx_wire_decoder_create(1u << 20);
    phx_frame_t f;
    /* one whole frame and 10 bytes of the next */
    assert_int_equal(phx_wire_decoder_feed(dec, buf, len, &err), 0);
    assert_int_equal(phx_wire_decoder_feed(dec, buf, 10, &err), 0);
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 1);
    phx_frame_clear(&f);
    assert_int_equal(phx_wire_decoder_pending(dec), 10);
    assert_int_equal(phx_wire_decoder_shrink(dec), 4096);
    assert_int_equal(phx_wire_decoder_feed(dec, buf + 10, len - 10, &err), 0);
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 1);
    assert_int_equal(f.attach_len, sizeof(att));
    assert_memory_equal(f.attach, att, sizeof(att));
    phx_frame_clear(&f);
    /* nothing pending: no buffer at all, and still a decoder */
    assert_int_equal(phx_wire_decoder_shrink(dec), 0);
    assert_int_equal(phx_wire_decoder_feed(dec, buf, len, &err), 0);
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 1);
    phx_frame_clear(&f);
    phx_wire_decoder_destroy(dec);
    free(buf);
}

/* Fed one byte at a time, three frames come out exactly when complete. */
static void test_partial_reads(void **state)
{
    (void)state;
    uint8_t *one;
    size_t len;
    encode_ping(&one, &len, "abc", 3);
    uint8_t *three = malloc(3 * len);
    for (int i = 0; i < 3; i++)
        memcpy(three + i * len, one, len);

    phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
    phx_error_t err;
    int frames = 0;
    for (size_t i = 0; i < 3 * len; i++) {
        assert_int_equal(phx_wire_decoder_feed(dec, three + i, 1, &err), 0);
        phx_frame_t f;
        int r = phx_wire_decoder_next(dec, &f, &err);
        assert_int_not_equal(r, -1);
        if (r == 1) {
            frames++;
            assert_int_equal((i + 1) % len, 0); /* only at a frame's last byte */
            assert_int_equal(f.attach_len, 3);
            assert_memory_equal(f.attach, "abc", 3);
            phx_frame_clear(&f);
        }
    }
    assert_int_equal(frames, 3);
    phx_wire_decoder_destroy(dec);
    free(one);
    free(three);
}

/* Several frames in one read come out one by one. */
static void test_many_in_one_feed(void **state)
{
    (void)state;
    uint8_t *one;
    size_t len;
    encode_ping(&one, &len, NULL, 0);
    uint8_t buf[4096];
    size_t n = 0;
    for (int i = 0; i < 10; i++, n += len)
        memcpy(buf + n, one, len);
    phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
    phx_error_t err;
    phx_frame_t f;
    assert_int_equal(phx_wire_decoder_feed(dec, buf, n, &err), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 1);
        assert_null(f.attach);
        phx_frame_clear(&f);
    }
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 0);
    phx_wire_decoder_destroy(dec);
    free(one);
}

/* A prefix announcing more than the maximum is refused as soon as the 8
 * prefix bytes arrive, before any body is buffered. */
static void test_oversized_refused_early(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = make_raw(100, MAX, NULL, NULL, &len);
    phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
    phx_error_t err;
    assert_int_equal(phx_wire_decoder_feed(dec, raw, 4, &err), 0);
    assert_int_equal(phx_wire_decoder_feed(dec, raw + 4, 4, &err), -1);
    assert_non_null(strstr(err.text, "exceeds the maximum"));
    /* The decoder stays failed. */
    phx_frame_t f;
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), -1);
    assert_int_equal(phx_wire_decoder_feed(dec, "x", 1, &err), -1);
    phx_wire_decoder_destroy(dec);
    free(raw);

    /* u32 overflow tricks: 0xffffffff lengths must not wrap around. */
    raw = make_raw(0xffffffffu, 0xffffffffu, NULL, NULL, &len);
    dec = phx_wire_decoder_create(MAX);
    assert_int_equal(phx_wire_decoder_feed(dec, raw, len, &err), -1);
    phx_wire_decoder_destroy(dec);
    free(raw);
}

/* A stream that ends inside a frame never yields it; the bytes stay pending
 * so the caller can report a truncated frame at EOF. */
static void test_truncated(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    encode_ping(&buf, &len, "payload", 7);
    for (size_t cut = 1; cut < len; cut++) {
        phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
        phx_error_t err;
        phx_frame_t f;
        assert_int_equal(phx_wire_decoder_feed(dec, buf, cut, &err), 0);
        assert_int_equal(phx_wire_decoder_next(dec, &f, &err), 0);
        assert_int_equal(phx_wire_decoder_pending(dec), cut);
        phx_wire_decoder_destroy(dec);
    }
    free(buf);
}

static void expect_bad(const char *hdr, const char *needle)
{
    size_t len;
    uint8_t *raw = make_raw((uint32_t)strlen(hdr), 0, hdr, NULL, &len);
    phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
    phx_error_t err = {{0}};
    phx_frame_t f;
    assert_int_equal(phx_wire_decoder_feed(dec, raw, len, &err), 0);
    assert_int_equal(phx_wire_decoder_next(dec, &f, &err), -1);
    if (!strstr(err.text, needle))
        fail_msg("header %s: expected \"%s\" in \"%s\"", hdr, needle, err.text);
    phx_wire_decoder_destroy(dec);
    free(raw);
}

static void test_bad_headers(void **state)
{
    (void)state;
    expect_bad("{not json", "not valid JSON");
    expect_bad("[1,2,3]", "not a JSON object");
    expect_bad("{\"seq\":1}", "no string \"type\"");
    expect_bad("{\"type\":5}", "no string \"type\"");
    expect_bad("{\"type\":\"\"}", "no string \"type\"");
    expect_bad("{\"type\":\"A\",\"type\":\"B\"}", "not valid JSON");
    expect_bad("{\"type\":\"\xff\xfe\"}", "not valid JSON");

    size_t len;
    uint8_t *raw = make_raw(0, 5, NULL, "abcde", &len);
    phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
    phx_error_t err;
    assert_int_equal(phx_wire_decoder_feed(dec, raw, len, &err), -1);
    assert_non_null(strstr(err.text, "empty header"));
    phx_wire_decoder_destroy(dec);
    free(raw);
}

/* Random garbage never crashes or reads out of bounds (run under ASan by
 * `make SANITIZE=address,undefined check`); it is refused or left pending. */
static void test_garbage(void **state)
{
    (void)state;
    srand(12345);
    int refused = 0;
    for (int round = 0; round < 2000; round++) {
        uint8_t junk[256];
        size_t n = 1 + (size_t)rand() % sizeof(junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (round % 2) { /* plausible small lengths so the JSON parser sees junk */
            uint32_t h = htonl((uint32_t)(rand() % 64 + 1)),
                     a = htonl((uint32_t)(rand() % 8));
            memcpy(junk, &h, 4);
            memcpy(junk + 4, &a, 4);
        }
        phx_wire_decoder_t *dec = phx_wire_decoder_create(MAX);
        phx_error_t err;
        phx_frame_t f;
        int r = phx_wire_decoder_feed(dec, junk, n, &err);
        while (r == 0 && (r = phx_wire_decoder_next(dec, &f, &err)) == 1) {
            phx_frame_clear(&f);
            r = 0;
        }
        if (r < 0)
            refused++;
        phx_wire_decoder_destroy(dec);
    }
    assert_true(refused > 1000);
}

static void test_encode_limits(void **state)
{
    (void)state;
    phx_error_t err;
    uint8_t *buf = NULL;
    size_t len;
    json_t *h = json_pack("{s:s}", "type", "BIG");
    static uint8_t att[MAX];
    assert_int_equal(phx_wire_encode(h, att, sizeof(att), MAX, &buf, &len, &err), -1);
    assert_non_null(strstr(err.text, "exceeds the maximum"));
    assert_null(buf);
    json_decref(h);
    h = json_pack("{s:i}", "seq", 1);
    assert_int_equal(phx_wire_encode(h, NULL, 0, MAX, &buf, &len, &err), -1);
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_with_attachment),
        cmocka_unit_test(test_partial_reads),
        cmocka_unit_test(test_shrink),
        cmocka_unit_test(test_many_in_one_feed),
        cmocka_unit_test(test_oversized_refused_early),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
