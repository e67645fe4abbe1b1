/* phx acct -j (cli/acct_ids.c): jobs, array tasks and steps into the array
 * literals the query binds; -X takes a step's job whole; malformed ids and
 * too many are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/acct_ids.c"

static void test_jobs_and_tasks(void **state)
{
    (void)state;
    phx_acct_ids_t ids;
    assert_int_equal(phx_acct_parse_ids("41,42_3,43", false, &ids), 0);
    assert_string_equal(ids.plain, "{41,43}");
    assert_string_equal(ids.tasks_a, "{42}");
    assert_string_equal(ids.tasks_t, "{3}");
    assert_false(ids.any_steps);
    assert_string_equal(ids.steps_a, "{}");
}

static void test_steps(void **state)
{
    (void)state;
    phx_acct_ids_t ids;
    assert_int_equal(
        phx_acct_parse_ids("41.batch,42_3.0,44,45.extern,46.12", false, &ids), 0);
    assert_true(ids.any_steps);
    assert_string_equal(ids.plain, "{44}");
    assert_string_equal(ids.tasks_a, "{}");
    assert_string_equal(ids.steps_a, "{41,42,45,46}");
    assert_string_equal(ids.steps_t, "{-1,3,-1,-1}");
    assert_string_equal(ids.steps_s, "{batch,0,extern,12}");
}

/* a trailing comma is allowed, as sacct's lists allow it */
static void test_trailing_comma(void **state)
{
    (void)state;
    phx_acct_ids_t ids;
    assert_int_equal(phx_acct_parse_ids("41.0,", false, &ids), 0);
    assert_string_equal(ids.steps_s, "{0}");
}

/* -X: no step lines, so a step names its job (its line) */
static void test_steps_with_allocations(void **state)
{
    (void)state;
    phx_acct_ids_t ids;
    assert_int_equal(phx_acct_parse_ids("41.batch,42_3.0", true, &ids), 0);
    assert_false(ids.any_steps);
    assert_string_equal(ids.plain, "{41}");
    assert_string_equal(ids.tasks_a, "{42}");
    assert_string_equal(ids.tasks_t, "{3}");
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"41.",           "41.bat",
                                      "41.-1",         ".0",
                                      "41_",           "_3",
                                      "41_3_4",        "4a",
                                      "41.0.1",        "41.batch;drop",
                                      "41.1234567890", "1234567890123456789",
                                      "41,,42",        "41_x.0",
                                      "41.{0}",        ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        phx_acct_ids_t ids;
        if (phx_acct_parse_ids(bad[i], false, &ids) == 0)
            fail_msg("\"%s\" accepted", bad[i]);
    }
}

static void test_too_many(void **state)
{
    (void)state;
    char list[8192] = "";
    for (int i = 0; i < 400; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d.batch",
                 i ? "," : "", 100000 + i);
    phx_acct_ids_t ids;
    assert_int_equal(phx_acct_parse_ids(list, false, &ids), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_and_tasks),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_steps_with_allocations),
        cmocka_unit_test(test_trailing_comma),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
