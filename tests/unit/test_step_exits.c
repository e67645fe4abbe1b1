/* The summary of a step's local ranks in STEP_EXIT (daemons/agent/
 * step_exit.c): the worst exit, the highest code and signal apart, the
 * failed ranks; its size does not grow with the ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/agent/step_exit.c"

static json_int_t field(const json_t *h, const char *name)
{
    json_t *v = json_object_get(h, name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_all_fine(void **state)
{
    (void)state;
    phx_step_exits_t e = {0};
    for (int r = 4; r < 8; r++)
        phx_step_exits_add(&e, r, 0, 0);
    json_t *h = phx_step_exits_json(&e, 9);
    assert_string_equal(json_string_value(json_object_get(h, "type")), "STEP_EXIT");
    assert_int_equal(field(h, "step"), 9);
    assert_int_equal(field(h, "nranks"), 4);
    assert_int_equal(field(h, "exit_code"), 0);
    assert_int_equal(field(h, "failed"), 0);
    assert_null(json_object_get(h, "first_failed"));
    json_decref(h);
}

/* A signal outranks any exit code (128 + 9 > 3); codes and signals are kept
 * apart for the accounting's "code:signal"; the first failed rank is the
 * lowest whatever the order. */
static void test_worst(void **state)
{
    (void)state;
    phx_step_exits_t e = {0};
    phx_step_exits_add(&e, 7, 3, 0);
    phx_step_exits_add(&e, 5, 0, 9);
    phx_step_exits_add(&e, 2, 0, 0);
    phx_step_exits_add(&e, 6, 1, 0);
    json_t *h = phx_step_exits_json(&e, 1);
    assert_int_equal(field(h, "exit_code"), 137);
    assert_int_equal(field(h, "max_code"), 3);
    assert_int_equal(field(h, "max_signal"), 9);
    assert_int_equal(field(h, "failed"), 3);
    assert_int_equal(field(h, "first_failed"), 5);
    json_decref(h);
}

/* 1,024 ranks made a 39 KB frame as a list (it did not fit a small
 * agent.max_frame and the step never ended); the summary of 100,000 ranks
 * is as small as that of one. */
static void test_size_bounded(void **state)
{
    (void)state;
    phx_step_exits_t one = {0}, many = {0};
    phx_step_exits_add(&one, 99999, 2, 0);
    for (int r = 0; r < 100000; r++)
        phx_step_exits_add(&many, r, r % 256, 0);
    json_t *a = phx_step_exits_json(&one, 1), *b = phx_step_exits_json(&many, 1);
    char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
    assert_true(strlen(tb) < 160);
    assert_true(strlen(tb) <= strlen(ta) + 16); /* the counts' digits */
    assert_int_equal(field(b, "max_code"), 255);
    assert_int_equal(field(b, "failed"), 100000 - 100000 / 256 - 1);
    assert_int_equal(field(b, "first_failed"), 1);
    free(ta);
    free(tb);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fine),
        cmocka_unit_test(test_worst),
        cmocka_unit_test(test_size_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
