/* The command of a step request (argv, env, cwd): refused with the field
 * named when it is not what the agents exec; its GPU options, and its GPUs
 * per task against the job's GPUs on a node. */
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

static const char *gpu_opts(const char *text, int *per_task)
{
    static phx_error_t err;
    json_t *h = json_loads(text, 0, NULL);
    phx_step_req_t r = {.gpus_per_task = -1};
    assert_non_null(h);
    err.text[0] = '\0';
    int rc = phx_step_check_gpu_opts(h, &r, &err);
    json_decref(h);
    *per_task = r.gpus_per_task;
    return rc == 0 ? "" : err.text;
}

static void test_gpu_opts(void **state)
{
    (void)state;
    int k;
    assert_string_equal(gpu_opts("{}", &k), "");
    assert_int_equal(k, 0);
    assert_string_equal(
        gpu_opts("{\"gpus_per_task\": 2, \"gpu_bind\": \"closest\"}", &k), "");
    assert_int_equal(k, 2);
    assert_string_equal(gpu_opts("{\"gpus_per_task\": 1, \"gpu_bind\": \"none\"}", &k),
                        "");
    assert_string_equal(gpu_opts("{\"gpu_bind\": \"single:1\"}", &k),
                        "unknown gpu binding \"single:1\" (closest or none)");
    assert_string_not_equal(gpu_opts("{\"gpus_per_task\": 2000}", &k), "");
    assert_string_not_equal(gpu_opts("{\"gpus_per_task\": \"2\"}", &k), "");
}

/* A step asking more GPUs than the job has on a node is refused. */
static void test_gpu_counts(void **state)
{
    (void)state;
    phx_error_t err;
    phx_step_req_t r = {.gpus_per_task = 0};
    assert_int_equal(phx_step_check_gpus(&r, "n1", 4, 0, &err), 0);
    r.gpus_per_task = 1;
    assert_int_equal(phx_step_check_gpus(&r, "n1", 4, 4, &err), 0);
    assert_int_equal(phx_step_check_gpus(&r, "n1", 1, 0, &err), -1);
    assert_string_equal(err.text, "--gpus-per-task=1: the job has 0 GPUs on \"n1\", "
                                  "fewer than one task asks");
    r.gpus_per_task = 2;
    assert_int_equal(phx_step_check_gpus(&r, "n1", 3, 4, &err), -1);
    assert_string_equal(err.text, "--gpus-per-task=2: 3 tasks on \"n1\" need 6 GPUs, "
                                  "the job has 4 there");
}

/* The GPUs a step's ranks on a node are given (its accounting): K each
 * under --gpus-per-task=K, else the job's GPUs there; --gpu-bind=none
 * shows every rank all of them. */
static void test_gpus_on_node(void **state)
{
    (void)state;
    phx_error_t err;
    phx_step_req_t r = {.gpus_per_task = 0};
    assert_int_equal(phx_step_gpus_on_node(&r, 2, 4), 4);
    assert_int_equal(phx_step_gpus_on_node(&r, 2, 0), 0);
    assert_int_equal(phx_step_gpus_on_node(&r, 0, 4), 0);
    r.gpus_per_task = 1;
    assert_int_equal(phx_step_gpus_on_node(&r, 3, 4), 3);
    assert_int_equal(phx_step_gpus_on_node(&r, 6, 4), 4);
    json_t *h = json_loads("{\"gpus_per_task\": 1, \"gpu_bind\": \"none\"}", 0, NULL);
    assert_int_equal(phx_step_check_gpu_opts(h, &r, &err), 0);
    json_decref(h);
    assert_true(r.gpu_bind_none);
    assert_int_equal(phx_step_gpus_on_node(&r, 1, 4), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),         cmocka_unit_test(test_argv),
        cmocka_unit_test(test_env),          cmocka_unit_test(test_cwd),
        cmocka_unit_test(test_gpu_opts),     cmocka_unit_test(test_gpu_counts),
        cmocka_unit_test(test_gpus_on_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
