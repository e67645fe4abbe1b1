/* The SIGNAL fields the master (the scheduler call) and the agent (the
 * frame) both check, lib/framework.c phx_task_signal_parse: a signal 1-64
 * but glibc's 32 and 33, as a number, and "to" steps, main or all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/framework.h"

static void test_task_signal_parse(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int ok, sig;
        phx_task_sig_to_t to;
    } cases[] = {
        {"{\"signal\": 10, \"to\": \"steps\"}", 1, 10, PHX_SIG_TO_STEPS},
        {"{\"signal\": 1, \"to\": \"main\"}", 1, 1, PHX_SIG_TO_MAIN},
        {"{\"signal\": 64, \"to\": \"all\"}", 1, 64, PHX_SIG_TO_ALL},
        {"{\"signal\": 0, \"to\": \"all\"}", 0, 0, 0},
        {"{\"signal\": 65, \"to\": \"all\"}", 0, 0, 0},
        {"{\"signal\": 32, \"to\": \"all\"}", 0, 0, 0},
        {"{\"signal\": 33, \"to\": \"all\"}", 0, 0, 0},
        {"{\"signal\": \"10\", \"to\": \"all\"}", 0, 0, 0},
        {"{\"signal\": 10, \"to\": \"everyone\"}", 0, 0, 0},
        {"{\"signal\": 10}", 0, 0, 0},
        {"{\"to\": \"main\"}", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_loads(cases[i].json, 0, NULL);
        assert_non_null(j);
        phx_task_signal_t s;
        phx_error_t err = {{0}};
        int rc = phx_task_signal_parse(j, &s, &err);
        json_decref(j);
        if (cases[i].ok) {
            if (rc < 0)
                fail_msg("%s refused: %s", cases[i].json, err.text);
            assert_int_equal(s.signal, cases[i].sig);
            assert_int_equal(s.to, cases[i].to);
        } else if (rc == 0) {
            fail_msg("%s accepted", cases[i].json);
        } else {
            assert_true(err.text[0] != '\0');
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_signal_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
