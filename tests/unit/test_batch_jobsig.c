/* sbatch --signal (daemons/batchd/jobsig.c): what is accepted, its
 * canonical text, what is refused and why; and what batchd_launch_ops asks
 * the agents for (phx.warn): B: to the batch task's program only, else to
 * the steps of every task, nothing without a time limit.
 *
 * Unit tests cannot link daemon objects, so the sources are included. */
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/launch.c"
#include "daemons/batchd/gpus.c"
#include "daemons/batchd/outpath.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canon;
        int sig, before;
        bool batch;
    } ok[] = {
        {"USR1", "USR1@60", SIGUSR1, 60, false},
        {"B:USR1@120", "B:USR1@120", SIGUSR1, 120, true},
        {"b:sigusr2@0", "B:USR2@0", SIGUSR2, 0, true},
        {"10@30", "USR1@30", 10, 30, false},
        {"SIGTERM@65535", "TERM@65535", SIGTERM, 65535, false},
        {"B:15", "B:TERM@60", SIGTERM, 60, true},
        {"RTMIN+2@5", "RTMIN+2@5", 0, 5, false}, /* sig checked below */
        {"rtmax", "RTMIN+30@60", 0, 60, false},
        {"34@1", "RTMIN+0@1", 34, 1, false},
        {"KILL", "KILL@60", SIGKILL, 60, false},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        phx_jobsig_t s;
        phx_error_t err = {{0}};
        if (phx_jobsig_parse(ok[i].in, &s, &err) < 0)
            fail_msg("\"%s\" refused: %s", ok[i].in, err.text);
        if (ok[i].sig)
            assert_int_equal(s.signal, ok[i].sig);
        assert_int_equal(s.before, ok[i].before);
        assert_int_equal(s.batch, ok[i].batch);
        char *text = phx_jobsig_format(&s);
        assert_string_equal(text, ok[i].canon);
        phx_jobsig_t again;
        assert_int_equal(phx_jobsig_parse(text, &again, &err), 0);
        assert_int_equal(s.signal, again.signal);
        assert_int_equal(s.before, again.before);
        assert_int_equal(s.batch, again.batch);
        free(text);
    }
    phx_jobsig_t s;
    assert_int_equal(phx_jobsig_parse("RTMIN+2", &s, NULL), 0);
    assert_int_equal(s.signal, SIGRTMIN + 2);
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"R:USR1", "R: (a signal at the end of a reservation) is not supported"},
        {"RB:USR1@10", "not supported"},
        {"X:USR1", "flag \"X\""},
        {":USR1", "expected [B:]SIG[@SECONDS]"},
        {"FOO", "unknown signal \"FOO\""},
        {"", "unknown signal"},
        {"B:", "unknown signal"},
        {"0", "unknown signal \"0\""},
        {"32", "unknown signal \"32\""},
        {"65", "unknown signal \"65\""},
        {"SIG10", "unknown signal"},
        {"RTMIN+31", "unknown signal"},
        {"RTMAX-31", "unknown signal"},
        {"USR1@", "must be 0 to 65535 seconds, not \"\""},
        {"USR1@65536", "not \"65536\""},
        {"USR1@-1", "not \"-1\""},
        {"USR1@1x", "not \"1x\""},
        {"USR1@10@20", "not \"10@20\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        phx_jobsig_t s = {0};
        phx_error_t err = {{0}};
        if (phx_jobsig_parse(bad[i].in, &s, &err) == 0)
            fail_msg("\"%s\" accepted", bad[i].in);
        if (!strstr(err.text, bad[i].why) || !strstr(err.text, "--signal="))
            fail_msg("\"%s\": expected \"%s\" in \"%s\"", bad[i].in, bad[i].why,
                     err.text);
    }
}

/* batchd_launch_ops of a 2-node job with --signal=sig and time limit tl:
 * each task's phx.warn as "signal/before/to", "-" for none. */
static void launch(const char *sig, int64_t tl, char out[2][64])
{
    static batchd_t b = {.partition = "batch", .kill_grace = 5};
    bjob_t j = {0};
    bj_task_t tasks[2] = {
        {.id = "t-0",
         .agent_id = "a-0",
         .host = "n01",
         .cpus = 1,
         .tasks = 1,
         .mem = 1},
        {.id = "t-1",
         .agent_id = "a-1",
         .host = "n02",
         .cpus = 1,
         .tasks = 1,
         .mem = 1},
    };
    phx_jobspec_init(&j.spec);
    j.spec.work_dir = strdup("/tmp");
    j.spec.signal = sig ? strdup(sig) : NULL;
    j.spec.time_limit = tl;
    j.id = 7;
    j.array_task_id = -1;
    j.user = strdup("alice");
    j.node_list = (char *)"n[01-02]";
    j.script = strdup("#!/bin/sh\ntrue\n");
    j.tasks = tasks;
    j.ntasks = 2;
    int core = 0, *cores[] = {&core, &core};
    uint32_t ncores[] = {1, 1};
    json_t *ops = batchd_launch_ops(&b, &j, cores, ncores);
    assert_non_null(ops);
    json_t *tis = json_object_get(json_object_get(json_array_get(ops, 0), "launch"),
                                  "task_infos");
    assert_int_equal(json_array_size(tis), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *w =
            json_object_get(json_object_get(json_array_get(tis, i), "phx"), "warn");
        if (!w)
            snprintf(out[i], 64, "-");
        else
            snprintf(out[i], 64, "%lld/%lld/%s",
                     (long long)json_integer_value(json_object_get(w, "signal")),
                     (long long)json_integer_value(json_object_get(w, "before")),
                     json_string_value(json_object_get(w, "to")));
    }
    json_decref(ops);
    free(j.user);
    free(j.script);
    free(j.stdout_path);
    free(j.stderr_path);
    phx_jobspec_clear(&j.spec);
}

static void test_launch(void **state)
{
    (void)state;
    char w[2][64];
    launch("B:USR1@15", 20, w);
    assert_string_equal(w[0], "10/15/main");
    assert_string_equal(w[1], "-");
    launch("USR2@15", 20, w);
    assert_string_equal(w[0], "12/15/steps");
    assert_string_equal(w[1], "12/15/steps");
    launch("B:USR1@15", 0, w); /* no time limit: no warning */
    assert_string_equal(w[0], "-");
    launch(NULL, 20, w);
    assert_string_equal(w[0], "-");
    assert_string_equal(w[1], "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_launch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
