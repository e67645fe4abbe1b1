/* batchd's Idempotency-Key header (daemons/batchd/submit_key.c): 16 to 64
 * letters, digits, '-' or '_', refused otherwise with a message naming the
 * header; and the digest of a submission's body, equal for the same body
 * whatever the order of its fields, different for another one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "daemons/batchd/submit_key.c"

static void refused(const char *key, const char *why)
{
    phx_error_t err = {{0}};
    assert_int_equal(batchd_submit_key_check(key, &err), -1);
    assert_non_null(strstr(err.text, "Idempotency-Key header"));
    if (!strstr(err.text, why))
        fail_msg("\"%s\": %s (wanted \"%s\")", key, err.text, why);
}

static void test_key_check(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_submit_key_check("0123456789abcdef", &err), 0);
    assert_int_equal(batchd_submit_key_check("0123456789abcdef0123456789abcdef", &err),
                     0);
    assert_int_equal(batchd_submit_key_check("job-2026_11-27-ABCDEF", &err), 0);
    char longest[BATCHD_SUBMIT_KEY_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    longest[BATCHD_SUBMIT_KEY_MAX] = '\0';
    assert_int_equal(batchd_submit_key_check(longest, &err), 0);
    longest[BATCHD_SUBMIT_KEY_MAX] = 'a';
    longest[BATCHD_SUBMIT_KEY_MAX + 1] = '\0';
    refused(longest, "65 characters, it must have 16 to 64");
    refused("", "0 characters");
    refused("0123456789abcde", "15 characters");
    refused("0123456789abcdef ", "character 17 is not");
    refused("0123456789abcde\"", "character 16 is not");
    refused("0123456789/abcdef", "character 11");
    refused("0123456789abcdé01", "character 15");
    refused("01234567\n89abcdef", "character 9");
}

static void test_digest(void **state)
{
    (void)state;
    char a[BATCHD_SUBMIT_DIGEST_LEN + 1], b[BATCHD_SUBMIT_DIGEST_LEN + 1],
        c[BATCHD_SUBMIT_DIGEST_LEN + 1];
    json_t *x =
        json_loads("{\"script\": \"#!/bin/sh\\n\", \"cwd\": \"/tmp\"}", 0, NULL);
    json_t *y = json_loads("{\"cwd\":\"/tmp\",\"script\":\"#!/bin/sh\\n\"}", 0, NULL);
    json_t *z =
        json_loads("{\"cwd\":\"/tmp\",\"script\":\"#!/bin/sh\\ntrue\\n\"}", 0, NULL);
    assert_int_equal(batchd_submit_digest(x, a), 0);
    assert_int_equal(batchd_submit_digest(y, b), 0);
    assert_int_equal(batchd_submit_digest(z, c), 0);
    assert_int_equal(strlen(a), BATCHD_SUBMIT_DIGEST_LEN);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    json_decref(x);
    json_decref(y);
    json_decref(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_check),
        cmocka_unit_test(test_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
