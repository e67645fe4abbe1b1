/* batchd: the job spec's JSON form (round trip, bad input), merge, job
 * state names and --begin time formats.
 *
 * Unit tests cannot link daemon objects (the makefile links only libraries
 * into test binaries), so the batchd sources under test are included here. */
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/script.c"
#include "daemons/batchd/timefmt.c"
#include "tests/unit/support/scripttest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* ---- JSON ---- */

static void fill_everything(phx_jobspec_t *s)
{
    phx_jobspec_init(s);
    /* Every field gets a distinct non-default value. */
    int64_t v = 2;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        char buf[64];
        switch (f->type) {
        case F_STR:
            snprintf(buf, sizeof(buf), "%s-value \"q\" é", f->name);
            *STR(s, f) = strdup(buf);
            break;
        case F_INT: *INT(s, f) = v++; break;
        case F_TRI: *TRI(s, f) = (int)(i % 2); break;
        }
    }
}

static void assert_spec_equal(const phx_jobspec_t *a, const phx_jobspec_t *b)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        switch (f->type) {
        case F_STR:
            if (!*STR(a, f) || !*STR(b, f))
                assert_ptr_equal(*STR(a, f), *STR(b, f));
            else
                assert_string_equal(*STR(a, f), *STR(b, f));
            break;
        case F_INT: assert_int_equal(*INT(a, f), *INT(b, f)); break;
        case F_TRI: assert_int_equal(*TRI(a, f), *TRI(b, f)); break;
        }
    }
}

static void test_json_round_trip(void **state)
{
    (void)state;
    phx_jobspec_t a, b, c;
    phx_error_t err = {{0}};
    fill_everything(&a);
    json_t *j = phx_jobspec_to_json(&a);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), NFIELDS);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(phx_jobspec_from_json(back, &b, &err), 0);
    json_decref(back);
    assert_spec_equal(&a, &b);
    assert_int_equal(phx_jobspec_copy(&c, &b), 0);
    assert_spec_equal(&a, &c);
    phx_jobspec_clear(&a);
    phx_jobspec_clear(&b);
    phx_jobspec_clear(&c);

    /* A finalized fixture survives the trip too; unset fields are omitted. */
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("04_array_throttle.sh", &a, &w);
    j = phx_jobspec_to_json(&a);
    assert_null(json_object_get(j, "mem_per_node"));
    assert_null(json_object_get(j, "dependency"));
    assert_int_equal(json_integer_value(json_object_get(j, "mem_per_cpu")), 2000);
    assert_false(json_is_true(json_object_get(j, "exclusive")));
    assert_int_equal(phx_jobspec_from_json(j, &b, &err), 0);
    assert_spec_equal(&a, &b);
    json_decref(j);
    phx_jobspec_clear(&a);
    phx_jobspec_clear(&b);
}

static void test_json_refuses_bad_input(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    json_t *j = json_pack("{s:s, s:i}", "job_name", "x", "colour", 3);
    assert_int_equal(phx_jobspec_from_json(j, &s, &err), -1);
    assert_string_equal(err.text, "unknown job spec field \"colour\"");
    assert_null(s.job_name);
    json_decref(j);
    j = json_pack("{s:s}", "ntasks", "8");
    assert_int_equal(phx_jobspec_from_json(j, &s, &err), -1);
    assert_non_null(strstr(err.text, "ntasks"));
    json_decref(j);
    j = json_pack("{s:i}", "exclusive", 1);
    assert_int_equal(phx_jobspec_from_json(j, &s, &err), -1);
    assert_non_null(strstr(err.text, "exclusive"));
    json_decref(j);
    j = json_pack("{s:n, s:i}", "job_name", "ntasks", 4);
    assert_int_equal(phx_jobspec_from_json(j, &s, &err), 0);
    assert_null(s.job_name);
    assert_int_equal(s.ntasks, 4);
    json_decref(j);
    j = json_pack("[]");
    assert_int_equal(phx_jobspec_from_json(j, &s, &err), -1);
    json_decref(j);
}

static void test_merge_groups(void **state)
{
    (void)state;
    phx_jobspec_t base, over;
    phx_jobspec_init(&base);
    phx_jobspec_init(&over);
    base.mem_per_cpu = 100;
    base.exclusive = 1;
    base.exclusive_mode = strdup("user");
    base.job_name = strdup("base");
    over.mem_per_node = 0;
    over.exclusive = 1;
    assert_int_equal(phx_jobspec_merge(&base, &over), 0);
    assert_int_equal(base.mem_per_node, 0);
    assert_int_equal(base.mem_per_cpu, PHX_UNSET);
    assert_null(base.exclusive_mode); /* --exclusive replaces --exclusive=user */
    assert_string_equal(base.job_name, "base");
    phx_jobspec_clear(&base);
    phx_jobspec_clear(&over);
}

static void test_state_names(void **state)
{
    (void)state;
    static const char *codes[] = {"PD", "R", "CD", "F", "CA", "TO", "NF", "OOM"};
    for (int i = 0; i < PHX_JOB_STATE_COUNT; i++) {
        assert_string_equal(phx_job_state_code((phx_job_state_t)i), codes[i]);
        assert_int_equal(phx_job_state_parse(phx_job_state_name((phx_job_state_t)i)),
                         i);
        assert_int_equal(phx_job_state_is_final((phx_job_state_t)i), i >= 2);
    }
    assert_int_equal(phx_job_state_parse("running"), PHX_JOB_RUNNING);
    assert_int_equal(phx_job_state_parse("RUN"), -1);
    assert_null(phx_job_state_name(PHX_JOB_STATE_COUNT));
    assert_string_equal(phx_job_reason_name(PHX_REASON_DEPENDENCY_NEVER),
                        "DependencyNeverSatisfied");
    assert_null(phx_job_reason_name(PHX_REASON_COUNT));
}

static void test_begin_formats(void **state)
{
    (void)state;
    int64_t t;
    phx_error_t err = {{0}};
    /* PHX_SCRIPTTEST_NOW is 2023-11-14 22:13:20 UTC; TZ is UTC in this binary. */
    assert_int_equal(phx_begin_parse("now", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, PHX_SCRIPTTEST_NOW);
    assert_int_equal(phx_begin_parse("now+90", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, PHX_SCRIPTTEST_NOW + 90);
    assert_int_equal(phx_begin_parse("now+2days", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, PHX_SCRIPTTEST_NOW + 2 * 86400);
    assert_int_equal(phx_begin_parse("now+3minutes", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, PHX_SCRIPTTEST_NOW + 180);
    assert_int_equal(
        phx_begin_parse("2024-01-02T03:04:05", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1704164645);
    assert_int_equal(phx_begin_parse("2024-01-02", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1704153600);
    assert_int_equal(phx_begin_parse("23:00", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1700002800); /* later today */
    assert_int_equal(phx_begin_parse("06:30:15", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1700029815); /* tomorrow: 06:30 has passed */
    assert_int_equal(phx_begin_parse("midnight", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1700006400);
    assert_int_equal(phx_begin_parse("noon", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1700049600); /* tomorrow's noon */
    assert_int_equal(phx_begin_parse("today", PHX_SCRIPTTEST_NOW, &t, &err), 0);
    assert_int_equal(t, 1699920000);
    assert_int_equal(phx_begin_parse("now+5fortnights", PHX_SCRIPTTEST_NOW, &t, &err),
                     -1);
    assert_int_equal(phx_begin_parse("2024-13-01", PHX_SCRIPTTEST_NOW, &t, &err), -1);
    assert_int_equal(phx_begin_parse("25:00", PHX_SCRIPTTEST_NOW, &t, &err), -1);
    assert_int_equal(phx_begin_parse("2024-01-02T03", PHX_SCRIPTTEST_NOW, &t, &err),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_refuses_bad_input),
        cmocka_unit_test(test_merge_groups),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_begin_formats),
    };
    return cmocka_run_group_tests(tests, phx_scripttest_setup, NULL);
}
