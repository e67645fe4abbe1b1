/* The agent's view of a STEP_LAUNCH (daemons/agent/step_launch.c): the
 * header's own fields joined with the common ones the attachment holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/agent/step_launch.c"

static json_t *join(json_t *hdr, const char *attach, phx_error_t *err)
{
    phx_frame_t f = {.header = hdr, .type = "STEP_LAUNCH"};
    f.attach = (uint8_t *)attach;
    f.attach_len = attach ? strlen(attach) : 0;
    json_t *all = phx_lstep_launch_join(&f, err);
    json_decref(hdr);
    return all;
}

static void test_join(void **state)
{
    (void)state;
    phx_error_t err;
    json_t *all =
        join(json_pack("{s:s, s:i, s:i}", "type", "STEP_LAUNCH", "step", 3, "node", 1),
             "{\"env\": {\"A\": \"b\"}, \"nodes\": [\"n1\", \"n2\"], "
             "\"node\": 0}",
             &err);
    assert_non_null(all);
    assert_int_equal(json_integer_value(json_object_get(all, "step")), 3);
    /* the header's own field wins */
    assert_int_equal(json_integer_value(json_object_get(all, "node")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(all, "env"), "A")), "b");
    assert_int_equal(json_array_size(json_object_get(all, "nodes")), 2);
    json_decref(all);
}

/* A master that sends everything in the header (tests' fake masters). */
static void test_header_only(void **state)
{
    (void)state;
    phx_error_t err;
    json_t *hdr = json_pack("{s:s, s:{s:s}}", "type", "STEP_LAUNCH", "env", "A", "b");
    json_t *all = join(json_incref(hdr), NULL, &err);
    assert_ptr_equal(all, hdr);
    json_decref(all);
    json_decref(hdr);
}

static void test_bad(void **state)
{
    (void)state;
    phx_error_t err;
    assert_null(join(json_pack("{s:s}", "type", "STEP_LAUNCH"), "{\"env\":", &err));
    assert_non_null(strstr(err.text, "attachment is not valid JSON"));
    assert_null(join(json_pack("{s:s}", "type", "STEP_LAUNCH"), "[1, 2]", &err));
    assert_string_equal(err.text, "attachment is not a JSON object");
    assert_null(
        join(json_pack("{s:s}", "type", "STEP_LAUNCH"), "{\"a\":1,\"a\":2}", &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_header_only),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
