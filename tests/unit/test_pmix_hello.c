/* pmix/hello.c: the gate's reading of a PMIx client's connect message, in
 * the layout libpmix 4.2.2 sends (captured from a real client), and every
 * reason to keep a connection away from the PMIx server. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pmix/pmix_impl.h"

typedef struct spec {
    const char *psec;
    uint32_t uid, gid;
    int cred_len; /* -1: 8 */
    uint8_t kind;
    const char *nspace;
    uint32_t rank;
    const char *bfrops, *gds;
    uint8_t buffer_type;
} spec_t;

static const spec_t good = {"native",  1002, 1002,  -1,     0,
                            "phx.4.1", 1,    "v41", "hash", 1};

static size_t put_str(unsigned char *b, size_t at, const char *s)
{
    memcpy(b + at, s, strlen(s) + 1);
    return at + strlen(s) + 1;
}

static size_t build(const spec_t *s, unsigned char *b)
{
    size_t at = put_str(b, 0, s->psec);
    uint32_t cl = s->cred_len < 0 ? 8 : (uint32_t)s->cred_len, n = htonl(cl);
    memcpy(b + at, &n, 4);
    at += 4;
    uint32_t cred[2] = {s->uid, s->gid};
    memcpy(b + at, cred, cl > 8 ? 8 : cl);
    at += cl > 8 ? 8 : cl;
    b[at++] = s->kind;
    at = put_str(b, at, s->nspace);
    n = htonl(s->rank);
    memcpy(b + at, &n, 4);
    at += 4;
    at = put_str(b, at, "4.2.2rc2");
    at = put_str(b, at, s->bfrops);
    b[at++] = s->buffer_type;
    at = put_str(b, at, s->gds);
    b[at++] = 0;
    return at;
}

static int ranks[] = {0, 1};
static phx_pmix_gate_step_t step = {
    .nspace = "phx.4.1", .uid = 1002, .nranks = 2, .ranks = ranks};

/* 0 if let through; else the reason must contain want. */
static void expect(const spec_t *s, uid_t uid, const phx_pmix_gate_step_t *st,
                   const char *want)
{
    unsigned char b[512];
    size_t len = build(s, b);
    phx_pmix_hello_t h;
    char why[256] = "";
    assert_int_equal(phx_pmix_hello_parse(b, len, &h), 0);
    int rc = phx_pmix_hello_check(&h, uid, st, why, sizeof(why));
    if (!want) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    if (!strstr(why, want))
        fail_msg("reason \"%s\" does not say \"%s\"", why, want);
}

/* The bytes libpmix 4.2.2 sent for rank 1 of phx.12.3 as root. */
static void test_real_message(void **state)
{
    (void)state;
    static const unsigned char msg[] =
        "native\0\0\0\0\x08\0\0\0\0\0\0\0\0\0phx.12.3\0\0\0\0\x01"
        "4.2.2rc2\0v41\0\x01hash\0";
    phx_pmix_hello_t h;
    assert_int_equal(phx_pmix_hello_parse(msg, sizeof(msg), &h), 0);
    assert_string_equal(h.psec, "native");
    assert_int_equal(h.cred_len, 8);
    assert_int_equal(h.kind, PHX_PMIX_HELLO_CLIENT);
    assert_string_equal(h.nspace, "phx.12.3");
    assert_int_equal(h.rank, 1);
    assert_string_equal(h.version, "4.2.2rc2");
    assert_string_equal(h.bfrops, "v41");
    assert_int_equal(h.buffer_type, 1);
    assert_string_equal(h.gds, "hash");
    int r[] = {1};
    phx_pmix_gate_step_t root = {
        .nspace = "phx.12.3", .uid = 0, .nranks = 1, .ranks = r};
    char why[128];
    assert_int_equal(phx_pmix_hello_check(&h, 0, &root, why, sizeof(why)), 0);
}

/* Cut anywhere before its last field, a message does not parse. */
static void test_truncated(void **state)
{
    (void)state;
    unsigned char b[512];
    size_t len = build(&good, b);
    phx_pmix_hello_t h;
    for (size_t n = 0; n < len - 1; n++)
        assert_int_equal(phx_pmix_hello_parse(b, n, &h), -1);
    assert_int_equal(phx_pmix_hello_parse(b, len - 1, &h), 0);
    /* a credential longer than the message */
    spec_t s = good;
    s.cred_len = 4000;
    len = build(&s, b);
    assert_int_equal(phx_pmix_hello_parse(b, len, &h), -1);
}

static void test_owner_let_through(void **state)
{
    (void)state;
    expect(&good, 1002, &step, NULL);
    spec_t s = good;
    s.rank = 0;
    s.gds = "ds21,ds12,hash";
    s.buffer_type = 2;
    expect(&s, 1002, &step, NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    spec_t s = good;
    s.psec = "none";
    expect(&s, 1002, &step, "security module \"none\", not \"native\"");
    s = good;
    s.psec = "munge";
    expect(&s, 1002, &step, "not \"native\"");
    s = good;
    s.kind = 3;
    expect(&s, 1002, &step, "a tool or launcher (kind 3)");
    s = good;
    s.cred_len = 4;
    expect(&s, 1002, &step, "a credential of 4 bytes");
    /* the kernel says 1003; the message says 1002 */
    expect(&good, 1003, &step, "claims uid 1002");
    /* honest about 1003, but the step is 1002's */
    s = good;
    s.uid = 1003;
    expect(&s, 1003, &step, "step phx.4.1 is uid 1002's");
    expect(&good, 1002, NULL, "namespace \"phx.4.1\" is no step here");
    s = good;
    s.rank = 2;
    expect(&s, 1002, &step, "rank 2 is not a rank of phx.4.1 here");
    const char *bfrops[] = {"v5", "", "v41x", "v4 "};
    for (size_t i = 0; i < sizeof(bfrops) / sizeof(*bfrops); i++) {
        s = good;
        s.bfrops = bfrops[i];
        expect(&s, 1002, &step, "unknown");
    }
    const char *gds[] = {"", "ds21,", ",hash", "hash,evil", "ds3"};
    for (size_t i = 0; i < sizeof(gds) / sizeof(*gds); i++) {
        s = good;
        s.gds = gds[i];
        expect(&s, 1002, &step, "unknown");
    }
    s = good;
    s.buffer_type = 3;
    expect(&s, 1002, &step, "buffer type 3 unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_message),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_owner_let_through),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
