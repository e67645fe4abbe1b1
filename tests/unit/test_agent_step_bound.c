/* The bound on output waiting for one `phx run` client
 * (daemons/agent/step_bound.c): frames pass while they fit, past the bound
 * every frame is dropped and counted per stream until what waits has
 * drained to the low mark, then one notice tells the total and output
 * passes again; at the step's end the notice comes whatever waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "daemons/agent/step_bound.c"

#define MAX PHX_STEP_CLIENT_OUTPUT_MAX
#define LOW PHX_STEP_CLIENT_OUTPUT_LOW

static void test_fits_then_drops_until_drained(void **state)
{
    (void)state;
    phx_step_bound_t b = {0};
    char msg[256];
    assert_true(phx_step_bound_admit(&b, 0, 100, 1, 90));
    assert_true(phx_step_bound_admit(&b, MAX - 100, 100, 1, 90)); /* exactly full */
    assert_false(phx_step_bound_admit(&b, MAX - 99, 100, 1, 90));
    assert_int_equal(b.lost[0], 90);
    /* Once dropping, a frame that would fit is dropped too: the loss is one
     * gap, not holes. */
    assert_false(phx_step_bound_admit(&b, LOW + 1, 10, 2, 7));
    assert_false(phx_step_bound_admit(&b, 0, 10, 1, 3));
    assert_int_equal(b.lost[0], 93);
    assert_int_equal(b.lost[1], 7);
    /* Not yet drained to the low mark: nothing to say. */
    assert_int_equal(phx_step_bound_notice(&b, LOW + 1, false, msg, sizeof(msg)), 0);
    assert_true(b.dropping);
    size_t n = phx_step_bound_notice(&b, LOW, false, msg, sizeof(msg));
    assert_int_equal(n, strlen(msg));
    assert_string_equal(msg, "phx run: 100 bytes of the ranks' output were lost (93 of "
                             "stdout, 7 of stderr): phx run was not reading them\n");
    /* Told once; output passes again. */
    assert_int_equal(phx_step_bound_notice(&b, 0, false, msg, sizeof(msg)), 0);
    assert_true(phx_step_bound_admit(&b, LOW, 100, 2, 90));
    assert_int_equal(b.lost[0] + b.lost[1], 0);
}

static void test_end_tells_whatever_waits(void **state)
{
    (void)state;
    phx_step_bound_t b = {0};
    char msg[256];
    assert_int_equal(phx_step_bound_notice(&b, MAX, true, msg, sizeof(msg)), 0);
    assert_false(phx_step_bound_admit(&b, MAX, 65536 + 40, 1, 65536));
    assert_false(phx_step_bound_admit(&b, MAX, 65536 + 40, 1, 65536));
    assert_true(phx_step_bound_notice(&b, MAX, true, msg, sizeof(msg)) > 0);
    assert_non_null(strstr(msg, "131072 bytes of the ranks' output were lost"));
}

static void test_frame_larger_than_the_bound(void **state)
{
    (void)state;
    phx_step_bound_t b = {0};
    char msg[256];
    assert_false(phx_step_bound_admit(&b, 0, (size_t)MAX + 1, 2, MAX));
    assert_int_equal(b.lost[1], MAX);
    assert_true(phx_step_bound_notice(&b, 0, false, msg, sizeof(msg)) > 0);
    assert_non_null(strstr(msg, "(0 of stdout, 8388608 of stderr)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits_then_drops_until_drained),
        cmocka_unit_test(test_end_tells_whatever_waits),
        cmocka_unit_test(test_frame_larger_than_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
