/* The job ids phx cancel and phx show take: N, A_T, A_[1-3,5] (cancel only)
 * and the API paths they become; phx cancel -s/-b/-f (scancel --signal):
 * the signal path and its body; the job's --cpu-bind and -m as phx run's
 * defaults (PHX_CPU_BIND, PHX_DISTRIBUTION). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd_cancel.c"
#include "cli/cmd_show.c"

static char last_path[512];
static char last_body[512];
static int calls;

/* The daemon: records the path; an empty object as the answer. */
json_t *phx_cli_call(phx_cli_target_t target, const char *method, const char *path,
                     const json_t *body, bool authenticated, int *status)
{
    (void)target, (void)method, (void)authenticated;
    snprintf(last_path, sizeof(last_path), "%s", path);
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    snprintf(last_body, sizeof(last_body), "%s", text ? text : "");
    free(text);
    calls++;
    if (status)
        *status = 200;
    return json_object();
}

static int cancel(const char *id)
{
    char *argv[] = {"cancel", (char *)id, NULL};
    last_path[0] = '\0';
    calls = 0;
    return phx_cmd_cancel(2, argv);
}

static void test_cancel_paths(void **state)
{
    (void)state;
    assert_int_equal(cancel("42"), 0);
    assert_string_equal(last_path, "/api/v1/jobs/42/cancel");
    assert_int_equal(cancel("100_3"), 0);
    assert_string_equal(last_path, "/api/v1/jobs/100_3/cancel");
    assert_int_equal(cancel("100_[1-3,5]"), 0);
    assert_string_equal(last_path, "/api/v1/jobs/100_1-3,5/cancel");
    assert_int_equal(cancel("100_[0-15:4]"), 0);
    assert_string_equal(last_path, "/api/v1/jobs/100_0-15:4/cancel");
    const char *bad[] = {
        "",   "x",       "100_",      "100_[]", "100_[1-3",       "100_a",
        "_3", "100_3/x", "100_[1 2]", "1-2",    "100_3?user=root"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(cancel(bad[i]), 1);
        assert_int_equal(calls, 0);
    }
}

static int run_cancel(int argc, char **argv)
{
    last_path[0] = last_body[0] = '\0';
    calls = 0;
    return phx_cmd_cancel(argc, argv);
}

static void test_signal(void **state)
{
    (void)state;
    char *a1[] = {"cancel", "-s", "USR1", "42", NULL};
    assert_int_equal(run_cancel(4, a1), 0);
    assert_string_equal(last_path, "/api/v1/jobs/42/signal");
    assert_string_equal(last_body, "{\"scope\":\"steps\",\"signal\":\"USR1\"}");
    char *a2[] = {"cancel", "--signal=TERM", "--batch", "100_3", NULL};
    assert_int_equal(run_cancel(4, a2), 0);
    assert_string_equal(last_path, "/api/v1/jobs/100_3/signal");
    assert_string_equal(last_body, "{\"scope\":\"batch\",\"signal\":\"TERM\"}");
    char *a3[] = {"cancel", "-f", "7", NULL}; /* -b/-f alone: KILL */
    assert_int_equal(run_cancel(3, a3), 0);
    assert_string_equal(last_body, "{\"scope\":\"full\",\"signal\":\"KILL\"}");
    char *a4[] = {"cancel", "7", NULL}; /* a plain cancel has no body */
    assert_int_equal(run_cancel(2, a4), 0);
    assert_string_equal(last_path, "/api/v1/jobs/7/cancel");
    assert_string_equal(last_body, "");
    char *a5[] = {"cancel", "-b", "-f", "7", NULL};
    assert_int_equal(run_cancel(4, a5), 2);
    char *a6[] = {"cancel", "-s", "USR1", "--user", "bob", NULL};
    assert_int_equal(run_cancel(5, a6), 2);
    assert_int_equal(calls, 0);
    char *a7[] = {"cancel", "-s", "USR1", "100_[1-3]", "100_1,2", NULL};
    assert_int_equal(run_cancel(5, a7), 1); /* one array task, or the array */
    assert_int_equal(calls, 0);
}

static void test_show_ids(void **state)
{
    (void)state;
    assert_true(valid_id("42"));
    assert_true(valid_id("100_3"));
    assert_false(valid_id("100_"));
    assert_false(valid_id("100_[1-3]"));
    assert_false(valid_id("100_1-3"));
    assert_false(valid_id("_3"));
    assert_false(valid_id("100_3/cancel"));
    assert_false(valid_id(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_paths),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_show_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
