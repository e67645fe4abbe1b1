/* Sealed frames (lib/wire_seal.h): round trip, and every way a frame can be
 * forged, changed, replayed or cut short is refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/wire_seal.h"

#define MAX 4096

static const unsigned char key_a[PHX_MAC_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char key_b[PHX_MAC_KEY_LEN] = "fedcba9876543210fedcba987654321";

typedef struct fixture {
    phx_mac_t *a, *b;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->a = phx_mac_create(key_a, sizeof(key_a), NULL);
    fx->b = phx_mac_create(key_b, sizeof(key_b), NULL);
    *state = fx;
    return fx->a && fx->b ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    phx_mac_destroy(fx->a);
    phx_mac_destroy(fx->b);
    free(fx);
    return 0;
}

/* A sealed STEP_LAUNCH with a binary attachment, number seq. */
static void seal(phx_mac_t *k, const char *dir, uint64_t seq, uint8_t **buf,
                 size_t *len)
{
    json_t *h = json_pack("{s:s, s:[s,s]}", "type", "STEP_LAUNCH", "argv", "id", "-u");
    static const uint8_t att[] = {0, 1, 2, 0xff, 0};
    phx_error_t err;
    int rc = phx_wire_seal(k, dir, seq, h, att, sizeof(att), MAX, buf, len, &err);
    json_decref(h);
    assert_int_equal(rc, 0);
}

/* Decode the outer frame of buf and unseal it. */
static int unseal(phx_mac_t *k, const char *dir, uint64_t *last, const uint8_t *buf,
                  size_t len, phx_frame_t *inner, phx_error_t *err)
{
    phx_frame_t outer;
    assert_int_equal(phx_wire_decode(buf, len, MAX, &outer, err), 0);
    int rc = phx_wire_unseal(k, dir, last, &outer, MAX, inner, err);
    phx_frame_clear(&outer);
    return rc;
}

static void test_roundtrip(void **state)
{
    fixture_t *fx = *state;
    uint64_t last = 0;
    for (uint64_t seq = 1; seq <= 3; seq++) {
        uint8_t *buf;
        size_t len;
        seal(fx->a, PHX_SEAL_M2A, seq, &buf, &len);
        phx_frame_t f;
        phx_error_t err;
        assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, buf, len, &f, &err), 0);
        assert_string_equal(f.type, "STEP_LAUNCH");
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(f.header, "argv"), 1)),
            "-u");
        assert_int_equal(f.attach_len, 5);
        assert_int_equal(f.attach[3], 0xff);
        assert_int_equal(last, seq);
        phx_frame_clear(&f);
        free(buf);
    }
}

/* The sealed frame's header: type, seq, mac (64 hex). */
/* A frame sealed without its attachment, which the caller sends after it
 * (one attachment shared by many frames): its MAC covers the attachment's
 * SHA-256, which the receiver computes from the bytes it got. */
static void seal_head_frame(phx_mac_t *k, uint64_t seq, const uint8_t *att, size_t n,
                            const uint8_t *sent, uint8_t **buf, size_t *len)
{
    json_t *h = json_pack("{s:s, s:[s,s]}", "type", "STEP_LAUNCH", "argv", "id", "-u");
    unsigned char md[PHX_MAC_LEN];
    phx_error_t err;
    uint8_t *head;
    size_t head_len;
    assert_int_equal(phx_sha256(att, n, md), 0);
    assert_int_equal(
        phx_wire_seal_head(k, PHX_SEAL_M2A, seq, h, md, n, MAX, &head, &head_len, &err),
        0);
    json_decref(h);
    *buf = realloc(head, head_len + n);
    memcpy(*buf + head_len, sent, n);
    *len = head_len + n;
}

static void test_seal_head(void **state)
{
    fixture_t *fx = *state;
    static const uint8_t att[] = {0, 1, 2, 0xff, 0}, bad[] = {0, 1, 2, 0xfe, 0};
    phx_error_t err;
    uint8_t *buf;
    size_t len;
    phx_frame_t inner, outer;
    uint64_t last = 0;
    seal_head_frame(fx->a, 1, att, sizeof(att), att, &buf, &len);
    assert_int_equal(phx_wire_decode(buf, len, MAX, &outer, &err), 0);
    assert_string_equal(json_string_value(json_object_get(outer.header, "digest")),
                        "sha256");
    phx_frame_clear(&outer);
    assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, buf, len, &inner, &err), 0);
    assert_string_equal(inner.type, "STEP_LAUNCH");
    assert_int_equal(inner.attach_len, sizeof(att));
    assert_memory_equal(inner.attach, att, sizeof(att));
    phx_frame_clear(&inner);
    free(buf);
    /* an attachment other than the one digested, another key, or a
     * whole-frame MAC passed off as a digest one are refused */
    seal_head_frame(fx->a, 2, att, sizeof(att), bad, &buf, &len);
    assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, buf, len, &inner, &err), -1);
    assert_int_equal(errno, EBADMSG);
    free(buf);
    seal_head_frame(fx->b, 2, att, sizeof(att), att, &buf, &len);
    assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, buf, len, &inner, &err), -1);
    assert_int_equal(errno, EBADMSG);
    free(buf);
    assert_int_equal(last, 1);
    /* the attachment counts towards the maximum */
    json_t *h = json_pack("{s:s}", "type", "STEP_LAUNCH");
    unsigned char md[PHX_MAC_LEN] = {0};
    uint8_t *head;
    size_t head_len;
    assert_int_equal(phx_wire_seal_head(fx->a, PHX_SEAL_M2A, 1, h, md, MAX, MAX, &head,
                                        &head_len, &err),
                     -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_non_null(strstr(err.text, "exceeds the maximum"));
    json_decref(h);
}

/* The digest mark changes what the MAC covers: adding it to a frame sealed
 * whole, or removing it, or naming another digest is refused. */
static void test_digest_mark(void **state)
{
    fixture_t *fx = *state;
    const char *marks[] = {"sha256", "md5", NULL};
    for (int i = 0; i < 3; i++) {
        uint8_t *buf;
        size_t len;
        phx_frame_t outer, inner;
        phx_error_t err;
        uint64_t last = 0;
        if (i < 2)
            seal(fx->a, PHX_SEAL_M2A, 1, &buf, &len);
        else
            seal_head_frame(fx->a, 1, (const uint8_t *)"abc", 3, (const uint8_t *)"abc",
                            &buf, &len);
        assert_int_equal(phx_wire_decode(buf, len, MAX, &outer, &err), 0);
        if (marks[i])
            json_object_set_new(outer.header, "digest", json_string(marks[i]));
        else
            json_object_del(outer.header, "digest");
        assert_int_equal(
            phx_wire_unseal(fx->a, PHX_SEAL_M2A, &last, &outer, MAX, &inner, &err), -1);
        assert_int_equal(errno, i == 1 ? EPROTO : EBADMSG);
        assert_int_equal(last, 0);
        phx_frame_clear(&outer);
        free(buf);
    }
}

static void test_outer_header(void **state)
{
    fixture_t *fx = *state;
    uint8_t *buf;
    size_t len;
    seal(fx->a, PHX_SEAL_A2M, 42, &buf, &len);
    phx_frame_t outer, inner;
    phx_error_t err;
    assert_int_equal(phx_wire_decode(buf, len, MAX, &outer, &err), 0);
    assert_string_equal(outer.type, "SEALED");
    assert_int_equal(json_integer_value(json_object_get(outer.header, "seq")), 42);
    assert_int_equal(strlen(json_string_value(json_object_get(outer.header, "mac"))),
                     PHX_MAC_HEX_LEN);
    /* The attachment is the inner frame exactly as encoded. */
    assert_int_equal(phx_wire_decode(outer.attach, outer.attach_len, MAX, &inner, &err),
                     0);
    assert_string_equal(inner.type, "STEP_LAUNCH");
    phx_frame_clear(&inner);
    phx_frame_clear(&outer);
    free(buf);
}

/* A header serialised by the caller seals to the very bytes phx_wire_seal
 * makes of it, and unseals; "SEALED" and an inner frame past the maximum
 * are refused as there. */
static void test_seal_text(void **state)
{
    fixture_t *fx = *state;
    json_t *h = json_pack("{s:s, s:{s:s, s:[i,i]}, s:i}", "type", "LAUNCH", "task",
                          "task_id", "t1", "cores", 4, 5, "seq", 7);
    char *text = json_dumps(h, JSON_COMPACT);
    uint8_t *a, *b;
    size_t alen, blen;
    phx_error_t err;
    assert_int_equal(
        phx_wire_seal(fx->a, PHX_SEAL_M2A, 3, h, NULL, 0, MAX, &a, &alen, &err), 0);
    assert_int_equal(phx_wire_seal_text(fx->a, PHX_SEAL_M2A, 3, "LAUNCH", text,
                                        strlen(text), MAX, &b, &blen, &err),
                     0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    uint64_t last = 2;
    phx_frame_t f;
    assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, b, blen, &f, &err), 0);
    assert_string_equal(f.type, "LAUNCH");
    assert_true(json_equal(f.header, h));
    assert_int_equal(last, 3);
    phx_frame_clear(&f);
    free(a);
    free(b);
    errno = 0;
    assert_int_equal(phx_wire_seal_text(fx->a, PHX_SEAL_M2A, 1, "SEALED", text,
                                        strlen(text), MAX, &b, &blen, &err),
                     -1);
    assert_int_equal(errno, EINVAL);
    size_t big_len = MAX;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    memcpy(big, text, strlen(text));
    errno = 0;
    assert_int_equal(phx_wire_seal_text(fx->a, PHX_SEAL_M2A, 1, "LAUNCH", big, big_len,
                                        MAX, &b, &blen, &err),
                     -1);
    assert_int_equal(errno, EMSGSIZE);
    free(big);
    free(text);
    json_decref(h);
}

static void expect_refused(phx_mac_t *k, const char *dir, uint64_t last,
                           const uint8_t *buf, size_t len, int want_errno,
                           const char *want_text)
{
    uint64_t l = last;
    phx_frame_t f;
    phx_error_t err;
    errno = 0;
    assert_int_equal(unseal(k, dir, &l, buf, len, &f, &err), -1);
    assert_int_equal(errno, want_errno);
    assert_non_null(strstr(err.text, want_text));
    assert_int_equal(l, last);
    assert_null(f.header);
    assert_null(f.attach);
}

/* Where the inner frame begins in an encoded sealed frame. */
static size_t inner_offset(const uint8_t *buf)
{
    uint32_t hlen;
    memcpy(&hlen, buf, 4);
    return PHX_WIRE_PREFIX + ntohl(hlen);
}

static void test_tampered_inner(void **state)
{
    fixture_t *fx = *state;
    uint8_t *buf;
    size_t len;
    seal(fx->a, PHX_SEAL_M2A, 1, &buf, &len);
    size_t at = inner_offset(buf);
    /* "id" becomes "ie" in the inner header; then a byte of the attachment. */
    uint8_t *p = memmem(buf + at, len - at, "\"id\"", 4);
    assert_non_null(p);
    p[2] = 'e';
    expect_refused(fx->a, PHX_SEAL_M2A, 0, buf, len, EBADMSG, "MAC refused");
    p[2] = 'd';
    buf[len - 2] ^= 1;
    expect_refused(fx->a, PHX_SEAL_M2A, 0, buf, len, EBADMSG, "MAC refused");
    buf[len - 2] ^= 1;
    uint64_t last = 0;
    phx_frame_t f;
    phx_error_t err;
    assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, buf, len, &f, &err), 0);
    phx_frame_clear(&f);
    free(buf);
}

/* Another number in the header than the one MACed. */
static void test_tampered_seq(void **state)
{
    fixture_t *fx = *state;
    uint8_t *buf;
    size_t len;
    seal(fx->a, PHX_SEAL_M2A, 1, &buf, &len);
    uint8_t *p = memmem(buf, inner_offset(buf), "\"seq\":1", 7);
    assert_non_null(p);
    p[6] = '2';
    expect_refused(fx->a, PHX_SEAL_M2A, 1, buf, len, EBADMSG, "MAC refused");
    free(buf);
}

/* A frame sent one way cannot be reflected back the other way. */
static void test_wrong_direction(void **state)
{
    fixture_t *fx = *state;
    uint8_t *buf;
    size_t len;
    seal(fx->a, PHX_SEAL_A2M, 1, &buf, &len);
    expect_refused(fx->a, PHX_SEAL_M2A, 0, buf, len, EBADMSG, "MAC refused");
    free(buf);
    phx_error_t err;
    assert_int_equal(
        phx_wire_seal(fx->a, "x2y", 1, NULL, NULL, 0, MAX, &buf, &len, &err), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_wrong_key(void **state)
{
    fixture_t *fx = *state;
    uint8_t *buf;
    size_t len;
    seal(fx->b, PHX_SEAL_M2A, 1, &buf, &len);
    expect_refused(fx->a, PHX_SEAL_M2A, 0, buf, len, EBADMSG, "MAC refused");
    free(buf);
}

/* Replayed, repeated, or with frames missing in between. */
static void test_sequence(void **state)
{
    fixture_t *fx = *state;
    uint8_t *buf;
    size_t len;
    seal(fx->a, PHX_SEAL_M2A, 5, &buf, &len);
    expect_refused(fx->a, PHX_SEAL_M2A, 5, buf, len, EBADMSG, "a replay");
    expect_refused(fx->a, PHX_SEAL_M2A, 9, buf, len, EBADMSG, "a replay");
    expect_refused(fx->a, PHX_SEAL_M2A, 3, buf, len, EBADMSG, "frames missing");
    uint64_t last = 4;
    phx_frame_t f;
    phx_error_t err;
    assert_int_equal(unseal(fx->a, PHX_SEAL_M2A, &last, buf, len, &f, &err), 0);
    assert_int_equal(last, 5);
    phx_frame_clear(&f);
    free(buf);
}

/* A sealed frame whose inner frame lacks its last bytes, MACed as such
 * (a sender bug, not a forgery): refused by the inner decode. */
static void test_truncated_inner(void **state)
{
    fixture_t *fx = *state;
    json_t *h = json_pack("{s:s}", "type", "KILL");
    uint8_t *inner;
    size_t ilen;
    phx_error_t err;
    assert_int_equal(phx_wire_encode(h, "abcd", 4, MAX, &inner, &ilen, &err), 0);
    json_decref(h);
    unsigned char mac[PHX_MAC_LEN];
    char hex[PHX_MAC_HEX_LEN + 1];
    assert_int_equal(
        phx_mac_compute_seq(fx->a, "phx-frame m2a", 1, inner, ilen - 1, mac), 0);
    phx_mac_to_hex(mac, sizeof(mac), hex);
    phx_frame_t outer = {0}, f;
    outer.header = json_pack("{s:s, s:i, s:s}", "type", "SEALED", "seq", 1, "mac", hex);
    outer.type = "SEALED";
    outer.attach = inner;
    outer.attach_len = ilen - 1;
    uint64_t last = 0;
    assert_int_equal(phx_wire_unseal(fx->a, PHX_SEAL_M2A, &last, &outer, MAX, &f, &err),
                     -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(err.text, "inner frame"));
    assert_int_equal(last, 0);
    /* And one whose attachment is cut after sealing: the MAC fails. */
    uint8_t *buf;
    size_t len;
    seal(fx->a, PHX_SEAL_M2A, 1, &buf, &len);
    phx_frame_t o2;
    assert_int_equal(phx_wire_decode(buf, len, MAX, &o2, &err), 0);
    o2.attach_len--;
    assert_int_equal(phx_wire_unseal(fx->a, PHX_SEAL_M2A, &last, &o2, MAX, &f, &err),
                     -1);
    assert_int_equal(errno, EBADMSG);
    phx_frame_clear(&o2);
    free(buf);
    phx_frame_clear(&outer);
}

/* An inner frame too large to seal within the maximum; a sealed frame whose
 * inner one exceeds the receiver's maximum. */
static void test_oversize(void **state)
{
    fixture_t *fx = *state;
    size_t n = MAX - PHX_WIRE_SEAL_OVERHEAD;
    uint8_t *big = calloc(1, n), *buf;
    size_t len;
    json_t *h = json_pack("{s:s}", "type", "STEP_OUTPUT");
    phx_error_t err;
    assert_int_equal(
        phx_wire_seal(fx->a, PHX_SEAL_A2M, 1, h, big, n, MAX, &buf, &len, &err), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(
        phx_wire_seal(fx->a, PHX_SEAL_A2M, 1, h, big, n - 40, MAX, &buf, &len, &err),
        0);
    assert_true(len <= MAX);
    phx_frame_t outer, f;
    assert_int_equal(phx_wire_decode(buf, len, MAX, &outer, &err), 0);
    uint64_t last = 0;
    assert_int_equal(
        phx_wire_unseal(fx->a, PHX_SEAL_A2M, &last, &outer, 1024, &f, &err), -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(err.text, "exceeds the maximum"));
    phx_frame_clear(&outer);
    free(buf);
    free(big);
    json_decref(h);
}

/* Unsealed frames, sealed ones without their fields, and nesting. */
static void test_malformed(void **state)
{
    fixture_t *fx = *state;
    phx_frame_t f, plain = {0};
    plain.header = json_pack("{s:s}", "type", "STEP_LAUNCH");
    plain.type = "STEP_LAUNCH";
    uint64_t last = 0;
    phx_error_t err;
    assert_int_equal(phx_wire_unseal(fx->a, PHX_SEAL_M2A, &last, &plain, MAX, &f, &err),
                     -1);
    assert_string_equal(err.text, "frame \"STEP_LAUNCH\" is not sealed");
    phx_frame_clear(&plain);

    const char *bad[] = {
        "{\"type\":\"SEALED\",\"mac\":\"00\"}",
        "{\"type\":\"SEALED\",\"seq\":0,\"mac\":\"00\"}",
        "{\"type\":\"SEALED\",\"seq\":\"1\",\"mac\":\"00\"}",
        "{\"type\":\"SEALED\",\"seq\":1}",
        "{\"type\":\"SEALED\",\"seq\":1,\"mac\":\"zz\"}",
        "{\"type\":\"SEALED\",\"seq\":1,\"mac\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        phx_frame_t o = {0};
        o.header = json_loads(bad[i], 0, NULL);
        o.type = "SEALED";
        assert_int_equal(phx_wire_unseal(fx->a, PHX_SEAL_M2A, &last, &o, MAX, &f, &err),
                         -1);
        assert_int_equal(errno, EPROTO);
        phx_frame_clear(&o);
    }

    /* A SEALED frame may not be sealed again, nor arrive inside one. */
    json_t *h = json_pack("{s:s}", "type", "SEALED");
    uint8_t *buf;
    size_t len;
    assert_int_equal(
        phx_wire_seal(fx->a, PHX_SEAL_M2A, 1, h, NULL, 0, MAX, &buf, &len, &err), -1);
    uint8_t *inner;
    size_t ilen;
    assert_int_equal(phx_wire_encode(h, NULL, 0, MAX, &inner, &ilen, &err), 0);
    json_decref(h);
    unsigned char mac[PHX_MAC_LEN];
    char hex[PHX_MAC_HEX_LEN + 1];
    assert_int_equal(phx_mac_compute_seq(fx->a, "phx-frame m2a", 1, inner, ilen, mac),
                     0);
    phx_mac_to_hex(mac, sizeof(mac), hex);
    phx_frame_t o = {0};
    o.header = json_pack("{s:s, s:i, s:s}", "type", "SEALED", "seq", 1, "mac", hex);
    o.type = "SEALED";
    o.attach = inner;
    o.attach_len = ilen;
    assert_int_equal(phx_wire_unseal(fx->a, PHX_SEAL_M2A, &last, &o, MAX, &f, &err),
                     -1);
    assert_string_equal(err.text, "sealed frame inside a sealed frame");
    assert_int_equal(last, 0);
    phx_frame_clear(&o);
}

/* phx_wire_decode: exactly one frame, no more, no less. */
static void test_decode_exact(void **state)
{
    (void)state;
    json_t *h = json_pack("{s:s}", "type", "PING");
    uint8_t *buf;
    size_t len;
    phx_error_t err;
    phx_frame_t f;
    assert_int_equal(phx_wire_encode(h, "xy", 2, MAX, &buf, &len, &err), 0);
    json_decref(h);
    assert_int_equal(phx_wire_decode(buf, len, MAX, &f, &err), 0);
    assert_string_equal(f.type, "PING");
    phx_frame_clear(&f);
    assert_int_equal(phx_wire_decode(buf, len - 1, MAX, &f, &err), -1);
    assert_int_equal(phx_wire_decode(buf, 7, MAX, &f, &err), -1);
    assert_int_equal(phx_wire_decode(buf, len, len - 1, &f, &err), -1);
    uint8_t *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0;
    assert_int_equal(phx_wire_decode(more, len + 1, MAX, &f, &err), -1);
    assert_null(f.header);
    free(more);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_mark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outer_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_inner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_direction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_inner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test(test_decode_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
