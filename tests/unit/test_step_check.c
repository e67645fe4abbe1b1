/* The command of a step request (argv, env, cwd): refused with the field
 * named when it is not what the agents exec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/master/step_check.c"

/* The error for the request whose JSON text is given, or "" if accepted. */
static const char *check(const char *text)
{
    static phx_error_t err;
    json_error_t jerr;
    json_t *h = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!h)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    err.text[0] = '\0';
    int rc = phx_step_check_command(h, &err);
    json_decref(h);
    if (rc == 0)
        return "";
    assert_int_equal(rc, -1);
    assert_true(err.text[0] != '\0');
    return err.text;
}

static void test_good(void **state)
{
    (void)state;
    assert_string_equal(check("{\"argv\": [\"hostname\"]}"), "");
    assert_string_equal(
        check("{\"argv\": [\"sh\", \"-c\", \"\"], \"env\": {\"A\": \"1\", "
              "\"B\": \"\"}, \"cwd\": \"/tmp\"}"),
        "");
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": null, \"cwd\": null}"), "");
}

static void test_argv(void **state)
{
    (void)state;
    assert_string_equal(check("{}"), "argv: missing");
    assert_string_equal(check("{\"argv\": \"ls\"}"), "argv: not an array");
    assert_string_equal(check("{\"argv\": []}"), "argv: empty (no program to run)");
    assert_string_equal(check("{\"argv\": [\"ls\", \"-l\", 3]}"),
                        "argv[2]: not a string");
    assert_string_equal(check("{\"argv\": [null]}"), "argv[0]: not a string");
    assert_string_equal(check("{\"argv\": [\"ls\", \"a\\u0000b\"]}"),
                        "argv[1]: contains a NUL byte");
    assert_string_equal(check("{\"argv\": [\"\", \"x\"]}"),
                        "argv[0]: empty program name");
}

static void test_env(void **state)
{
    (void)state;
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": [\"A=1\"]}"),
                        "env: not an object of \"NAME\": \"value\"");
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": {\"A\": \"1\", \"B\": 2}}"),
                        "env[\"B\"]: not a string");
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": {\"A\": [\"x\"]}}"),
                        "env[\"A\"]: not a string");
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": {\"A=B\": \"1\"}}"),
                        "env[\"A=B\"]: \"=\" in a variable name");
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": {\"\": \"1\"}}"),
                        "env: a variable with an empty name");
    assert_string_equal(check("{\"argv\": [\"a\"], \"env\": {\"A\": \"x\\u0000y\"}}"),
                        "env[\"A\"]: contains a NUL byte");
}

static void test_cwd(void **state)
{
    (void)state;
    assert_string_equal(check("{\"argv\": [\"a\"], \"cwd\": 7}"), "cwd: not a string");
    assert_string_equal(check("{\"argv\": [\"a\"], \"cwd\": {}}"), "cwd: not a string");
    assert_string_equal(check("{\"argv\": [\"a\"], \"cwd\": \"/t\\u0000mp\"}"),
                        "cwd: contains a NUL byte");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_cwd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
