/* HMAC-SHA256 (lib/mac.h): the test cases of RFC 4231, messages in pieces,
 * verification, hex, random keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/http.h"
#include "lib/mac.h"

typedef struct vector {
    unsigned char key[131];
    size_t key_len;
    unsigned char data[160];
    size_t data_len;
    const char *hmac; /* hex; test case 5 gives the first 128 bits only */
} vector_t;

static void fill(unsigned char *p, int byte, size_t n)
{
    memset(p, byte, n);
}

static void set_text(unsigned char *p, size_t *len, const char *s)
{
    *len = strlen(s);
    memcpy(p, s, *len);
}

/* RFC 4231, section 4: test cases 1 to 7. */
static size_t rfc4231(vector_t v[7])
{
    memset(v, 0, 7 * sizeof(*v));
    fill(v[0].key, 0x0b, v[0].key_len = 20);
    set_text(v[0].data, &v[0].data_len, "Hi There");
    v[0].hmac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";

    set_text(v[1].key, &v[1].key_len, "Jefe");
    set_text(v[1].data, &v[1].data_len, "what do ya want for nothing?");
    v[1].hmac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    fill(v[2].key, 0xaa, v[2].key_len = 20);
    fill(v[2].data, 0xdd, v[2].data_len = 50);
    v[2].hmac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";

    for (size_t i = 0; i < 25; i++)
        v[3].key[i] = (unsigned char)(i + 1);
    v[3].key_len = 25;
    fill(v[3].data, 0xcd, v[3].data_len = 50);
    v[3].hmac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";

    fill(v[4].key, 0x0c, v[4].key_len = 20);
    set_text(v[4].data, &v[4].data_len, "Test With Truncation");
    v[4].hmac = "a3b6167473100ee06e0c796c2955552b";

    fill(v[5].key, 0xaa, v[5].key_len = 131);
    set_text(v[5].data, &v[5].data_len,
             "Test Using Larger Than Block-Size Key - Hash Key First");
    v[5].hmac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";

    fill(v[6].key, 0xaa, v[6].key_len = 131);
    set_text(v[6].data, &v[6].data_len,
             "This is a test using a larger than block-size key and a larger than "
             "block-size data. The key needs to be hashed before being used by the "
             "HMAC algorithm.");
    v[6].hmac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
    return 7;
}

static void test_rfc4231(void **state)
{
    (void)state;
    vector_t v[7];
    size_t n = rfc4231(v);
    for (size_t i = 0; i < n; i++) {
        phx_error_t err;
        phx_mac_t *m = phx_mac_create(v[i].key, v[i].key_len, &err);
        assert_non_null(m);
        unsigned char out[PHX_MAC_LEN];
        phx_mac_part_t whole = {v[i].data, v[i].data_len};
        assert_int_equal(phx_mac_compute(m, &whole, 1, out), 0);
        char hex[PHX_MAC_HEX_LEN + 1];
        phx_mac_to_hex(out, sizeof(out), hex);
        hex[strlen(v[i].hmac)] = '\0'; /* test case 5: truncated */
        if (strcmp(hex, v[i].hmac) != 0)
            fail_msg("RFC 4231 test case %zu: got %s, want %s", i + 1, hex, v[i].hmac);

        /* The same message in three pieces (one empty), and again: a
         * phx_mac_t is reusable. */
        size_t cut = v[i].data_len / 3;
        phx_mac_part_t parts[] = {
            {v[i].data, cut}, {"", 0}, {v[i].data + cut, v[i].data_len - cut}};
        unsigned char again[PHX_MAC_LEN];
        assert_int_equal(phx_mac_compute(m, parts, 3, again), 0);
        assert_memory_equal(out, again, PHX_MAC_LEN);
        if (strlen(v[i].hmac) == PHX_MAC_HEX_LEN) {
            unsigned char want[PHX_MAC_LEN];
            assert_int_equal(phx_mac_from_hex(v[i].hmac, want, sizeof(want)), 0);
            assert_true(phx_mac_verify(m, parts, 3, want));
            want[PHX_MAC_LEN - 1] ^= 0x80;
            assert_false(phx_mac_verify(m, parts, 3, want));
        }
        phx_mac_destroy(m);
    }
}

static void test_wrong_key_or_message(void **state)
{
    (void)state;
    unsigned char k1[PHX_MAC_KEY_LEN], k2[PHX_MAC_KEY_LEN];
    assert_int_equal(phx_mac_random(k1, sizeof(k1)), 0);
    memcpy(k2, k1, sizeof(k2));
    k2[7] ^= 1;
    phx_mac_t *a = phx_mac_create(k1, sizeof(k1), NULL);
    phx_mac_t *b = phx_mac_create(k2, sizeof(k2), NULL);
    assert_non_null(a);
    assert_non_null(b);
    phx_mac_part_t msg = {"phx-launch 1\n{}", 15};
    unsigned char mac[PHX_MAC_LEN];
    assert_int_equal(phx_mac_compute(a, &msg, 1, mac), 0);
    assert_true(phx_mac_verify(a, &msg, 1, mac));
    assert_false(phx_mac_verify(b, &msg, 1, mac));
    phx_mac_part_t other = {"phx-launch 2\n{}", 15};
    assert_false(phx_mac_verify(a, &other, 1, mac));
    /* Where the pieces are cut does not matter, only what they make. */
    phx_mac_part_t split[] = {{"phx-launch ", 11}, {"1\n{}", 4}};
    assert_true(phx_mac_verify(a, split, 2, mac));
    phx_mac_destroy(a);
    phx_mac_destroy(b);
    phx_mac_destroy(NULL);
}

/* A numbered message: "<label> <seq>\n" then the text (python:
 * hmac.new(bytes(range(1, 33)), b'phx-launch 18446744073709551615\n'
 * b'{"task_id":"t0"}', hashlib.sha256).hexdigest()). */
static void test_numbered(void **state)
{
    (void)state;
    unsigned char key[PHX_MAC_KEY_LEN];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i + 1);
    phx_mac_t *m = phx_mac_create(key, sizeof(key), NULL);
    assert_non_null(m);
    const char *text = "{\"task_id\":\"t0\"}";
    unsigned char mac[PHX_MAC_LEN];
    assert_int_equal(
        phx_mac_compute_seq(m, "phx-launch", UINT64_MAX, text, strlen(text), mac), 0);
    char hex[PHX_MAC_HEX_LEN + 1];
    phx_mac_to_hex(mac, sizeof(mac), hex);
    assert_string_equal(
        hex, "f4658e4d4c5b701fa827b8c607ada5380c27fb87cd5ecca0a1137a0ec59ec8db");
    assert_true(
        phx_mac_verify_seq(m, "phx-launch", UINT64_MAX, text, strlen(text), mac));
    assert_false(
        phx_mac_verify_seq(m, "phx-launch", UINT64_MAX - 1, text, strlen(text), mac));
    assert_false(
        phx_mac_verify_seq(m, "phx-step", UINT64_MAX, text, strlen(text), mac));
    assert_false(
        phx_mac_verify_seq(m, "phx-launch", UINT64_MAX, text, strlen(text) - 1, mac));
    phx_mac_destroy(m);
}

static void test_create_refuses_empty_key(void **state)
{
    (void)state;
    phx_error_t err;
    errno = 0;
    assert_null(phx_mac_create("", 0, &err));
    assert_int_equal(errno, EINVAL);
    assert_string_equal(err.text, "empty MAC key");
}

static void test_hex(void **state)
{
    (void)state;
    unsigned char bin[4] = {0x00, 0x9f, 0xa0, 0xff}, back[4];
    char hex[9];
    phx_mac_to_hex(bin, 4, hex);
    assert_string_equal(hex, "009fa0ff");
    assert_int_equal(phx_mac_from_hex("009FA0ff", back, 4), 0);
    assert_memory_equal(bin, back, 4);
    const char *bad[] = {"009fa0f",  "009fa0fff", "009fa0fg", "00 fa0ff", "",
                         "0x9fa0ff", "009fa0f/",  "009fa0f:", "009fa0f@", "009fa0fG"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        errno = 0;
        if (phx_mac_from_hex(bad[i], back, 4) != -1)
            fail_msg("\"%s\" was taken for hex", bad[i]);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(phx_mac_from_hex(NULL, back, 4), -1);
}

static void test_random_equal_wipe(void **state)
{
    (void)state;
    unsigned char a[PHX_MAC_KEY_LEN], b[PHX_MAC_KEY_LEN], zero[PHX_MAC_KEY_LEN] = {0};
    assert_int_equal(phx_mac_random(a, sizeof(a)), 0);
    assert_int_equal(phx_mac_random(b, sizeof(b)), 0);
    assert_false(phx_mac_equal(a, b, sizeof(a))); /* 2^-256 */
    assert_false(phx_mac_equal(a, zero, sizeof(a)));
    memcpy(b, a, sizeof(b));
    assert_true(phx_mac_equal(a, b, sizeof(a)));
    phx_mac_wipe(a, sizeof(a));
    assert_memory_equal(a, zero, sizeof(a));
}

/* SHA-256 (FIPS 180-2 vectors) and the text an HTTP credential signs. */
static void test_sha256_and_http_payload(void **state)
{
    (void)state;
    char hex[PHX_MAC_HEX_LEN + 1];
    assert_int_equal(phx_sha256_hex(NULL, 0, hex), 0);
    assert_string_equal(
        hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(phx_sha256_hex("abc", 3, hex), 0);
    assert_string_equal(
        hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char buf[256];
    assert_int_equal(
        phx_http_auth_payload("POST", "/api/v1/jobs", "abc", 3, buf, sizeof(buf)), 0);
    assert_string_equal(
        buf, "POST /api/v1/jobs "
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(phx_http_auth_payload("GET", "/api/v1/jobs", NULL, 0, buf, 40),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_wrong_key_or_message),
        cmocka_unit_test(test_numbered),
        cmocka_unit_test(test_create_refuses_empty_key),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_random_equal_wipe),
        cmocka_unit_test(test_sha256_and_http_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
