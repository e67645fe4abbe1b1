/* The job ids phx hold, phx release and phx requeue take (cli/cmd_hold.c): N, A_T,
 * A_[1-3,5], comma-separated lists of them (commas inside brackets belong
 * to the list), scontrol's "jobid=N", and the API paths they become. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_hold.c"
#include "cli/job_ids.c"

static char paths[512];
static int calls;
static bool refuse_some; /* the daemon refused some of the jobs */
static bool array_error; /* a requeue of an array: some tasks refused */

/* The daemon: records the paths, space-separated; an empty object, or
 * with refuse_some one naming the jobs refused. */
json_t *phx_cli_call(phx_cli_target_t target, const char *method, const char *path,
                     const json_t *body, bool authenticated, int *status)
{
    (void)target, (void)body;
    assert_string_equal(method, "POST");
    assert_true(authenticated);
    snprintf(paths + strlen(paths), sizeof(paths) - strlen(paths), "%s%s",
             *paths ? " " : "", path);
    calls++;
    if (status)
        *status = 200;
    if (array_error)
        return json_pack("{s:s, s:i, s:i, s:s}", "job_id", "5", "requeued", 1,
                         "refused", 1, "error",
                         "job 5_1 was submitted with --no-requeue");
    if (refuse_some)
        return json_pack("{s:[s,s]}", "warnings", "job 5_1 is not pending (RUNNING)",
                         "job 5_2 is not pending (RUNNING)");
    return json_object();
}

static int cmd(const char *name, const char *opt, const char *id)
{
    char *argv[] = {(char *)name, (char *)(opt ? opt : id), (char *)id, NULL};
    paths[0] = '\0';
    calls = 0;
    return strcmp(name, "hold") == 0      ? phx_cmd_hold(opt ? 3 : 2, argv)
           : strcmp(name, "requeue") == 0 ? phx_cmd_requeue(opt ? 3 : 2, argv)
                                          : phx_cmd_release(opt ? 3 : 2, argv);
}

static void test_paths(void **state)
{
    (void)state;
    assert_int_equal(cmd("hold", NULL, "42"), 0);
    assert_string_equal(paths, "/api/v1/jobs/42/hold");
    assert_int_equal(cmd("hold", "--user", "42"), 0);
    assert_string_equal(paths, "/api/v1/jobs/42/uhold");
    assert_int_equal(cmd("release", NULL, "100_3"), 0);
    assert_string_equal(paths, "/api/v1/jobs/100_3/release");
    assert_int_equal(cmd("release", NULL, "100_[1-3,5]"), 0);
    assert_string_equal(paths, "/api/v1/jobs/100_1-3,5/release");
    assert_int_equal(cmd("hold", NULL, "12,100_[1,3],13_2"), 0);
    assert_string_equal(paths, "/api/v1/jobs/12/hold /api/v1/jobs/100_1,3/hold "
                               "/api/v1/jobs/13_2/hold");
    assert_int_equal(cmd("release", NULL, "JobId=7"), 0);
    assert_string_equal(paths, "/api/v1/jobs/7/release");
    /* a bad id among good ones: the others are still acted on */
    assert_int_equal(cmd("hold", NULL, "5,x,6"), 1);
    assert_string_equal(paths, "/api/v1/jobs/5/hold /api/v1/jobs/6/hold");
    const char *bad[] = {"",    "x",       "100_", "100_[]", "100_[1-3", "100_a", "_3",
                         "3_x", "100_3/x", "1-2",  "jobid=", "7?u=root", "1 2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(cmd("hold", NULL, bad[i]), 1);
        assert_int_equal(calls, 0);
    }
    /* release has no --user; both need an id */
    assert_int_equal(cmd("release", "--user", "42"), 2);
    char *argv[] = {"hold", NULL};
    assert_int_equal(phx_cmd_hold(1, argv), 2);
    /* "--" ends the options: scontrol's wrapper puts its ids after it */
    assert_int_equal(cmd("release", "--", "5"), 0);
    assert_string_equal(paths, "/api/v1/jobs/5/release");
    assert_int_equal(cmd("hold", "--", "5"), 0);
    assert_string_equal(paths, "/api/v1/jobs/5/hold");
}

/* Some jobs refused while others were held: said on stderr, exit 1. */
static void test_partial_refusal(void **state)
{
    (void)state;
    refuse_some = true;
    assert_int_equal(cmd("hold", NULL, "5"), 1);
    assert_int_equal(cmd("release", NULL, "5_[0-2]"), 1);
    refuse_some = false;
    assert_int_equal(cmd("release", NULL, "5_[0-2]"), 0);
}

/* requeue: N, A_T, A, lists of them; --hold; no A_[list] (one call each) */
static void test_requeue(void **state)
{
    (void)state;
    assert_int_equal(cmd("requeue", NULL, "42,100_3"), 0);
    assert_string_equal(paths, "/api/v1/jobs/42/requeue /api/v1/jobs/100_3/requeue");
    assert_int_equal(cmd("requeue", "--hold", "JobId=7"), 0);
    assert_string_equal(paths, "/api/v1/jobs/7/requeuehold");
    static const char *const bad[] = {"100_[1-3]", "100_1-3", "100_1x", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(cmd("requeue", NULL, bad[i]), 1);
        assert_int_equal(calls, 0);
    }
    assert_int_equal(cmd("requeue", "--user", "42"), 2);
    assert_int_equal(cmd("hold", "--hold", "42"), 2);
    array_error = true; /* partly refused: said, exit 1 */
    assert_int_equal(cmd("requeue", NULL, "5"), 1);
    array_error = false;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_partial_refusal),
        cmocka_unit_test(test_requeue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
