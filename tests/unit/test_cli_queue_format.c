/* phx queue -o (cli/queue_format.c): squeue's fields, widths, alignment,
 * truncation, headers, and refused formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/queue_format.c"

static json_t *job(const char *state)
{
    return json_pack(
        "{s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I, "
        "s:I, s:s?, s:s, s:I, s:n}",
        "job_id", (json_int_t)4242, "name", "a-rather-long-name", "user", "alice",
        "uid", (json_int_t)1001, "state", state, "state_code",
        strcmp(state, "PENDING") ? "R" : "PD", "reason", "Priority", "priority",
        (json_int_t)77, "time_limit", (json_int_t)3600, "time_limit_text", "1:00:00",
        "elapsed", (json_int_t)75, "nodes", (json_int_t)2, "ntasks", (json_int_t)4,
        "cpus_per_task", (json_int_t)2, "node_list",
        strcmp(state, "PENDING") ? "n[1-2]" : NULL, "partition", "batch", "alloc_cpus",
        (json_int_t)0, "start_time");
}

static void line_is(const char *fmt, const json_t *j, const char *want)
{
    char out[512];
    phx_queue_format_line(fmt, j, 0, out, sizeof(out));
    assert_string_equal(out, want);
}

static void formats(void **state)
{
    (void)state;
    line_is(PHX_QUEUE_FORMAT_DEFAULT, NULL,
            "             JOBID PARTITION     NAME     USER ST       TIME  NODES "
            "NODELIST(REASON)");
    json_t *r = job("RUNNING"), *p = job("PENDING");
    line_is(
        PHX_QUEUE_FORMAT_DEFAULT, r,
        "              4242     batch a-rather    alice  R       1:15      2 n[1-2]");
    line_is(PHX_QUEUE_FORMAT_DEFAULT, p,
            "              4242     batch a-rather    alice PD       1:15      2 "
            "(Priority)");
    line_is("%T|%-6u|%.6u|%3j|%%|%C|%L|%l|%S|%Q", r,
            "RUNNING|alice | alice|a-r|%|8|58:45|1:00:00|N/A|77");
    line_is("%i %F %K %A", r, "4242 4242 N/A 4242");
    json_object_set_new(r, "array_job_id", json_integer(4000));
    json_object_set_new(r, "array_task_id", json_integer(7));
    line_is("%i %F %K %A", r, "4000_7 4000 7 4242");
    line_is("%r %N", p, "Priority ");
    /* %S of a pending job: its reservation's start (squeue --start), not
     * the start_time it has from an earlier run */
    json_object_set_new(p, "start_time", json_integer(1000));
    line_is("%S", p, "N/A");
    setenv("TZ", "UTC", 1);
    tzset();
    json_object_set_new(p, "expected_start", json_integer(1795705470));
    line_is("%.19S|%S", p, "2026-11-26T15:04:30|2026-11-26T15:04:30");
    json_object_set_new(r, "start_time", json_integer(1795705470));
    line_is("%S", r, "2026-11-26T15:04:30");
    line_is(PHX_QUEUE_FORMAT_START, NULL,
            "             JOBID PARTITION     NAME     USER ST          START_TIME  "
            "NODES NODELIST(REASON)");
    json_decref(r);
    json_decref(p);
}

static void refused(const char *fmt, const char *want)
{
    phx_error_t err = {{0}};
    assert_int_equal(phx_queue_format_check(fmt, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("\"%s\": expected \"%s\" in \"%s\"", fmt, want, err.text);
}

static void checks(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    assert_int_equal(phx_queue_format_check(PHX_QUEUE_FORMAT_DEFAULT, &err), 0);
    assert_int_equal(phx_queue_format_check("plain text %% only", &err), 0);
    refused("%i %Y", "%Y is not a field phx queue knows");
    refused("%.18", "\"%.18\" ends without a field letter");
    refused("%1000i", "a width is at most 999");
    char big[1100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    refused(big, "longer than 1024 characters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats),
        cmocka_unit_test(checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
