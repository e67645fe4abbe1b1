/* The data of a step's fence: concatenated in the agents' order, and
 * refused (the step then fails at once, not at its time limit) when it
 * would not fit in one FENCE_DONE frame. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/master/step_fence.c"

static void test_concatenates(void **state)
{
    (void)state;
    phx_step_part_t parts[3] = {
        {.fence = (uint8_t *)"abc", .fence_len = 3},
        {.fence = NULL, .fence_len = 0},
        {.fence = (uint8_t *)"de", .fence_len = 2},
    };
    uint8_t *all = NULL;
    size_t len = 99;
    phx_error_t err;
    assert_int_equal(phx_step_fence_gather(parts, 3, 1 << 20, &all, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(all, "abcde", 5);
    free(all);
    /* Nothing to gather is an empty attachment. */
    assert_int_equal(phx_step_fence_gather(parts + 1, 1, 1 << 20, &all, &len, &err), 0);
    assert_int_equal(len, 0);
    free(all);
}

/* Each contribution fits in a frame of its own; their sum does not. */
static void test_too_big_for_a_frame(void **state)
{
    (void)state;
    size_t max_frame = 64 * 1024, each = max_frame - PHX_STEP_FENCE_HEADROOM - 100;
    uint8_t *blob = calloc(1, each);
    assert_non_null(blob);
    phx_step_part_t parts[2] = {{.fence = blob, .fence_len = each},
                                {.fence = blob, .fence_len = each}};
    uint8_t *all = NULL;
    size_t len = 0;
    phx_error_t err;
    assert_int_equal(phx_step_fence_gather(parts, 1, max_frame, &all, &len, &err), 0);
    free(all);
    all = NULL;
    errno = 0;
    assert_int_equal(phx_step_fence_gather(parts, 2, max_frame, &all, &len, &err), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_null(all);
    printf("refused: %s\n", err.text);
    assert_non_null(strstr(err.text, "the fence's data of 2 agents"));
    assert_non_null(strstr(err.text, "master.max_frame 65536"));
    /* Exactly at the bound fits; one byte more does not. */
    parts[0].fence_len = max_frame - PHX_STEP_FENCE_HEADROOM - each;
    assert_int_equal(phx_step_fence_gather(parts, 2, max_frame, &all, &len, &err), 0);
    free(all);
    parts[0].fence_len++;
    assert_int_equal(phx_step_fence_gather(parts, 2, max_frame, &all, &len, &err), -1);
    /* Sizes that would wrap around. */
    parts[0].fence_len = SIZE_MAX - 1;
    assert_int_equal(phx_step_fence_gather(parts, 2, max_frame, &all, &len, &err), -1);
    assert_int_equal(errno, EMSGSIZE);
    free(blob);
}

/* As each part comes: the held parts plus the new one, against a frame. */
static void test_fits_as_parts_come(void **state)
{
    (void)state;
    size_t max_frame = 64 * 1024, room = max_frame - PHX_STEP_FENCE_HEADROOM;
    phx_step_part_t parts[3] = {{.fence_len = room / 2}, {0}, {0}};
    phx_error_t err;
    assert_int_equal(phx_step_fence_fits(parts, 3, room - room / 2, max_frame, &err),
                     0);
    errno = 0;
    assert_int_equal(
        phx_step_fence_fits(parts, 3, room - room / 2 + 1, max_frame, &err), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_non_null(strstr(err.text, "the fence's data of 2 agents"));
    parts[1].fence_len = SIZE_MAX; /* no wrap-around */
    assert_int_equal(phx_step_fence_fits(parts, 3, 10, max_frame, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concatenates),
        cmocka_unit_test(test_too_big_for_a_frame),
        cmocka_unit_test(test_fits_as_parts_come),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
