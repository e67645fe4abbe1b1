/* munge helpers against two private munged with different keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/munge.h"
#include "tests/unit/support/mungetest.h"

static phx_test_munged_t key_a, key_b;

static int setup(void **state)
{
    (void)state;
    if (phx_test_munged_start(&key_a) < 0 || phx_test_munged_start(&key_b) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    phx_test_munged_stop(&key_a);
    phx_test_munged_stop(&key_b);
    return 0;
}

static char *encode(phx_test_munged_t *d, const char *payload, int ttl)
{
    phx_error_t err;
    phx_munge_t *m = phx_munge_create(d->socket, &err);
    assert_non_null(m);
    char *cred = NULL;
    if (phx_munge_encode(m, payload, strlen(payload), ttl, &cred, &err) < 0)
        fail_msg("%s", err.text);
    phx_munge_destroy(m);
    return cred;
}

static int decode(phx_test_munged_t *d, const char *cred, const phx_munge_policy_t *p,
                  phx_munge_cred_t *out, phx_error_t *err)
{
    phx_munge_t *m = phx_munge_create(d->socket, err);
    assert_non_null(m);
    int r = phx_munge_decode(m, cred, p, time(NULL), out, err);
    phx_munge_destroy(m);
    return r;
}

static void test_roundtrip(void **state)
{
    (void)state;
    char *cred = encode(&key_a, "register n01 nonce=42", 0);
    phx_munge_cred_t c;
    phx_error_t err;
    uid_t me = getuid();
    phx_munge_policy_t p = {.uids = &me, .nuids = 1, .max_age = 60};
    if (decode(&key_a, cred, &p, &c, &err) < 0)
        fail_msg("%s", err.text);
    assert_int_equal(c.uid, getuid());
    assert_int_equal(c.gid, getgid());
    assert_string_equal(c.payload, "register n01 nonce=42");
    assert_int_equal(c.len, strlen("register n01 nonce=42"));
    phx_munge_cred_clear(&c);
    free(cred);
}

static void test_other_key_refused(void **state)
{
    (void)state;
    char *cred = encode(&key_b, "hello", 0);
    phx_munge_cred_t c;
    phx_error_t err;
    assert_int_equal(decode(&key_a, cred, NULL, &c, &err), -1);
    assert_string_equal(err.text, "munge credential invalid (another key, or forged)");
    assert_null(c.payload);
    free(cred);
}

static void test_replay_refused(void **state)
{
    (void)state;
    char *cred = encode(&key_a, "once", 0);
    phx_munge_cred_t c;
    phx_error_t err;
    assert_int_equal(decode(&key_a, cred, NULL, &c, &err), 0);
    phx_munge_cred_clear(&c);
    assert_int_equal(decode(&key_a, cred, NULL, &c, &err), -1);
    assert_string_equal(err.text, "munge credential replayed");
    free(cred);
}

static void test_expired_refused(void **state)
{
    (void)state;
    /* munged's own expiry (ttl 1 s) ... */
    char *cred = encode(&key_a, "short-lived", 1);
    sleep(3);
    phx_munge_cred_t c;
    phx_error_t err;
    assert_int_equal(decode(&key_a, cred, NULL, &c, &err), -1);
    assert_string_equal(err.text, "munge credential expired");
    free(cred);

    /* ... and our policy's maximum age, stricter than munge's ttl. */
    cred = encode(&key_a, "old", 300);
    sleep(2);
    phx_munge_policy_t p = {.max_age = 1};
    assert_int_equal(decode(&key_a, cred, &p, &c, &err), -1);
    assert_non_null(strstr(err.text, "old, more than 1 s"));
    free(cred);
}

static void test_policy(void **state)
{
    (void)state;
    phx_munge_cred_t c;
    phx_error_t err;
    uid_t other = getuid() + 4242;
    phx_munge_policy_t p = {.uids = &other, .nuids = 1};
    char *cred = encode(&key_a, "x", 0);
    assert_int_equal(decode(&key_a, cred, &p, &c, &err), -1);
    assert_non_null(strstr(err.text, "which is not allowed"));
    free(cred);
    /* an empty list allows nobody (it allowed everybody) */
    p.nuids = 0;
    cred = encode(&key_a, "x", 0);
    assert_int_equal(decode(&key_a, cred, &p, &c, &err), -1);
    assert_non_null(strstr(err.text, "which is not allowed"));
    free(cred);

    const char *want = "register n02 nonce=7";
    phx_munge_policy_t bind = {.expect = want, .expect_len = strlen(want)};
    cred = encode(&key_a, "register n03 nonce=7", 0);
    assert_int_equal(decode(&key_a, cred, &bind, &c, &err), -1);
    assert_string_equal(err.text,
                        "munge credential payload does not match the request");
    free(cred);

    assert_int_equal(decode(&key_a, "", NULL, &c, &err), -1);
    assert_string_equal(err.text, "missing munge credential");
    assert_int_equal(decode(&key_a, "MUNGE:garbage:", NULL, &c, &err), -1);
    assert_non_null(strstr(err.text, "munge credential"));
}

/* A secret for one uid: encrypted, and munged gives it to that uid only. */
static void test_restricted(void **state)
{
    (void)state;
    phx_error_t err;
    phx_munge_t *m = phx_munge_create(key_a.socket, &err);
    assert_non_null(m);
    char *cred = NULL;
    phx_munge_cred_t c;
    assert_int_equal(phx_munge_encode_for(m, "secret", 6, 0, getuid(), &cred, &err), 0);
    if (phx_munge_decode(m, cred, NULL, time(NULL), &c, &err) < 0)
        fail_msg("%s", err.text);
    assert_int_equal(c.restricted_to, getuid());
    assert_true(c.encrypted);
    assert_string_equal(c.payload, "secret");
    phx_munge_cred_clear(&c);
    assert_null(c.payload);
    free(cred);

    /* The decode left the restriction in munge's context: the next plain
     * encode on the same handle must not inherit it. */
    assert_int_equal(phx_munge_encode(m, "open", 4, 0, &cred, &err), 0);
    assert_int_equal(phx_munge_decode(m, cred, NULL, time(NULL), &c, &err), 0);
    assert_int_equal(c.restricted_to, (uid_t)-1);
    phx_munge_cred_clear(&c);
    free(cred);

    uid_t other = getuid() + 4242;
    assert_int_equal(phx_munge_encode_for(m, "secret", 6, 0, other, &cred, &err), 0);
    assert_int_equal(phx_munge_decode(m, cred, NULL, time(NULL), &c, &err), -1);
    assert_string_equal(err.text, "munge credential is restricted to another user");
    assert_null(c.payload);
    free(cred);

    assert_int_equal(phx_munge_encode_for(m, "x", 1, 0, (uid_t)-1, &cred, &err), -1);
    phx_munge_destroy(m);
}

static void test_no_munged(void **state)
{
    (void)state;
    phx_error_t err;
    phx_munge_t *m = phx_munge_create("/nonexistent/munge.socket", &err);
    assert_non_null(m);
    char *cred = NULL;
    assert_int_equal(phx_munge_encode(m, "x", 1, 0, &cred, &err), -1);
    assert_non_null(strstr(err.text, "could not encode munge credential"));
    assert_null(cred);
    phx_munge_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_other_key_refused),
        cmocka_unit_test(test_replay_refused), cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_policy),         cmocka_unit_test(test_restricted),
        cmocka_unit_test(test_no_munged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
