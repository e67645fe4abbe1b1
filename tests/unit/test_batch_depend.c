/* batchd: dependency specs, their canonical text, and their evaluation
 * against other jobs' states.
 *
 * Unit tests cannot link daemon objects, so the sources are included. */
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/jobnodes.c"
#include "daemons/batchd/jobsig.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/jobstate.c"
#include "daemons/batchd/gpuspec.c"
#include "daemons/batchd/outpath.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A little job table for the lookup. */
typedef struct fake_job {
    uint64_t id;
    int64_t task; /* -1: the whole job */
    phx_job_state_t state;
    int64_t start;
} fake_job_t;

typedef struct world {
    fake_job_t jobs[16];
    size_t n;
    bool singleton_clear;
    int lookups;
} world_t;

static int lookup(void *arg, uint64_t id, int64_t task, phx_dep_job_t *out)
{
    world_t *w = arg;
    w->lookups++;
    for (size_t i = 0; i < w->n; i++)
        if (w->jobs[i].id == id && w->jobs[i].task == task) {
            out->state = w->jobs[i].state;
            out->start_time = w->jobs[i].start;
            return 0;
        }
    return -1;
}

static bool singleton(void *arg)
{
    return ((world_t *)arg)->singleton_clear;
}

static void set(world_t *w, uint64_t id, int64_t task, phx_job_state_t st,
                int64_t start)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->jobs[i].id == id && w->jobs[i].task == task) {
            w->jobs[i].state = st;
            w->jobs[i].start = start;
            return;
        }
    w->jobs[w->n++] = (fake_job_t){id, task, st, start};
}

static phx_dep_result_t eval(world_t *w, const char *text, int64_t now)
{
    phx_depend_t d;
    phx_error_t err = {{0}};
    if (phx_depend_parse(text, &d, &err) < 0)
        fail_msg("%s: %s", text, err.text);
    phx_dep_env_t env = {lookup, singleton, w};
    phx_dep_result_t r = phx_depend_eval(&d, &env, now);
    phx_depend_clear(&d);
    return r;
}

static void test_parse_and_format(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canon;
        size_t terms;
        bool any;
    } cases[] = {
        {"afterok:20:21,afterany:23", "afterok:20:21,afterany:23", 3, false},
        {"afterok:20,afterok:21", "afterok:20:21", 2, false},
        {"afterok:20?afternotok:20", "afterok:20?afternotok:20", 2, true},
        {"afterok:5?afterok:6", "afterok:5?afterok:6", 2, true},
        {"after:7+10", "after:7+10", 1, false},
        {"afterany:9_3:9_4", "afterany:9_3:9_4", 2, false},
        {"singleton", "singleton", 1, false},
        {"singleton,afterok:3", "singleton,afterok:3", 2, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        phx_depend_t d, again;
        phx_error_t err = {{0}};
        if (phx_depend_parse(cases[i].in, &d, &err) < 0)
            fail_msg("%s: %s", cases[i].in, err.text);
        assert_int_equal(d.count, cases[i].terms);
        assert_int_equal(d.any, cases[i].any);
        char *s = phx_depend_format(&d);
        assert_string_equal(s, cases[i].canon);
        assert_int_equal(phx_depend_parse(s, &again, &err), 0);
        assert_int_equal(again.count, d.count);
        assert_int_equal(again.any, d.any);
        assert_memory_equal(again.terms, d.terms, d.count * sizeof(*d.terms));
        free(s);
        phx_depend_clear(&d);
        phx_depend_clear(&again);
    }
    phx_depend_t d;
    phx_error_t err = {{0}};
    assert_int_equal(phx_depend_parse("after:7+10", &d, &err), 0);
    assert_int_equal(d.terms[0].delay, 600);
    assert_int_equal(d.terms[0].job_id, 7);
    assert_int_equal(d.terms[0].array_task, -1);
    phx_depend_clear(&d);
    assert_int_equal(phx_depend_parse("afterany:9_3", &d, &err), 0);
    assert_int_equal(d.terms[0].array_task, 3);
    phx_depend_clear(&d);

    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"", "empty dependency"},
        {"afterok", "needs at least one job id"},
        {"afterok:", "invalid job id"},
        {"afterok:0", "invalid job id"},
        {"afterok:x", "invalid job id"},
        {"afterok:1,", "unknown dependency type \"\""},
        {"before:1", "unknown dependency type \"before\""},
        {"expand:1", "\"expand\" is not supported"},
        {"afterok:1+5", "only \"after\" takes a +minutes delay"},
        {"afterok:1,afterok:2?afterok:3", "cannot be mixed"},
        {"singleton:4", "singleton takes no job ids"},
        {"afterok:1;afterok:2", "unexpected \";\""},
        {"afterok:1_", "invalid array task"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(phx_depend_parse(bad[i].in, &d, &err), -1);
        if (!strstr(err.text, bad[i].msg))
            fail_msg("\"%s\": expected \"%s\" in \"%s\"", bad[i].in, bad[i].msg,
                     err.text);
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "invalid dependency \"%s\"", bad[i].in);
        assert_non_null(strstr(err.text, prefix));
    }
}

static void test_check_existence(void **state)
{
    (void)state;
    world_t w = {0};
    set(&w, 10, -1, PHX_JOB_RUNNING, 100);
    set(&w, 11, 2, PHX_JOB_PENDING, -1);
    phx_dep_env_t env = {lookup, singleton, &w};
    phx_depend_t d;
    phx_error_t err = {{0}};
    assert_int_equal(phx_depend_parse("afterok:10:11_2,singleton", &d, &err), 0);
    assert_int_equal(phx_depend_check(&d, &env, &err), 0);
    phx_depend_clear(&d);
    assert_int_equal(phx_depend_parse("afterok:10:12", &d, &err), 0);
    assert_int_equal(phx_depend_check(&d, &env, &err), -1);
    assert_string_equal(err.text, "dependency on job 12 which does not exist");
    phx_depend_clear(&d);
    assert_int_equal(phx_depend_parse("afterany:11_3", &d, &err), 0);
    assert_int_equal(phx_depend_check(&d, &env, &err), -1);
    assert_string_equal(err.text, "dependency on job 11_3 which does not exist");
    phx_depend_clear(&d);
}

/* Each type against each state of the other job. */
static void test_eval_table(void **state)
{
    (void)state;
    /* S satisfied, W waiting, N never; columns: PENDING RUNNING COMPLETED
     * FAILED CANCELLED TIMEOUT NODE_FAIL OUT_OF_MEMORY */
    static const struct {
        const char *type;
        const char *want;
    } table[] = {
        {"after", "WSSSSSSS"},
        {"afterany", "WWSSSSSS"},
        {"afterok", "WWSNNNNN"},
        {"afternotok", "WWNSSSSS"},
    };
    for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++)
        for (int st = 0; st < PHX_JOB_STATE_COUNT; st++) {
            world_t w = {0};
            set(&w, 5, -1, (phx_job_state_t)st, st == PHX_JOB_PENDING ? -1 : 100);
            char text[64];
            snprintf(text, sizeof(text), "%s:5", table[t].type);
            phx_dep_result_t r = eval(&w, text, 1000);
            char got = r == PHX_DEP_SATISFIED ? 'S' : r == PHX_DEP_WAITING ? 'W' : 'N';
            if (got != table[t].want[st])
                fail_msg("%s on %s: got %c, want %c", text,
                         phx_job_state_name((phx_job_state_t)st), got,
                         table[t].want[st]);
        }
}

static void test_eval_combinations(void **state)
{
    (void)state;
    world_t w = {.singleton_clear = true};
    set(&w, 1, -1, PHX_JOB_COMPLETED, 10);
    set(&w, 2, -1, PHX_JOB_RUNNING, 10);
    set(&w, 3, -1, PHX_JOB_FAILED, 10);
    /* ',' = all of */
    assert_int_equal(eval(&w, "afterok:1", 50), PHX_DEP_SATISFIED);
    assert_int_equal(eval(&w, "afterok:1:2", 50), PHX_DEP_WAITING);
    assert_int_equal(eval(&w, "afterok:1:2:3", 50), PHX_DEP_NEVER); /* never wins */
    assert_int_equal(eval(&w, "afterok:1,afternotok:3", 50), PHX_DEP_SATISFIED);
    /* '?' = any of */
    assert_int_equal(eval(&w, "afterok:3?afterok:2", 50), PHX_DEP_WAITING);
    assert_int_equal(eval(&w, "afterok:3?afterok:1", 50), PHX_DEP_SATISFIED);
    assert_int_equal(eval(&w, "afterok:3?afternotok:1", 50), PHX_DEP_NEVER);
    /* A job that no longer exists can never satisfy anything. */
    assert_int_equal(eval(&w, "afterany:99", 50), PHX_DEP_NEVER);
    assert_int_equal(eval(&w, "afterany:99?afterany:1", 50), PHX_DEP_SATISFIED);
    /* after:+delay counts from the other job's start. */
    assert_int_equal(eval(&w, "after:2+1", 69), PHX_DEP_WAITING);
    assert_int_equal(eval(&w, "after:2+1", 70), PHX_DEP_SATISFIED);
    /* Cancelled before it ever started: "after" is satisfied at once. */
    set(&w, 4, -1, PHX_JOB_CANCELLED, -1);
    assert_int_equal(eval(&w, "after:4+30", 0), PHX_DEP_SATISFIED);
    /* singleton asks the daemon */
    assert_int_equal(eval(&w, "singleton", 50), PHX_DEP_SATISFIED);
    w.singleton_clear = false;
    assert_int_equal(eval(&w, "singleton", 50), PHX_DEP_WAITING);
    assert_int_equal(eval(&w, "singleton,afterok:3", 50), PHX_DEP_NEVER);
    /* One array task vs the whole array. */
    set(&w, 8, 0, PHX_JOB_COMPLETED, 10);
    set(&w, 8, -1, PHX_JOB_RUNNING, 10);
    assert_int_equal(eval(&w, "afterok:8_0", 50), PHX_DEP_SATISFIED);
    assert_int_equal(eval(&w, "afterok:8", 50), PHX_DEP_WAITING);
    /* An empty dependency holds nothing back. */
    phx_depend_t none = {0};
    phx_dep_env_t env = {lookup, NULL, &w};
    assert_int_equal(phx_depend_eval(&none, &env, 0), PHX_DEP_SATISFIED);
    /* Without a singleton callback, singleton is clear. */
    phx_depend_t d;
    phx_error_t err = {{0}};
    assert_int_equal(phx_depend_parse("singleton", &d, &err), 0);
    assert_int_equal(phx_depend_eval(&d, &env, 0), PHX_DEP_SATISFIED);
    phx_depend_clear(&d);
}

/* An afterok chain progresses as its jobs complete; the afternotok branch
 * becomes NEVER, which the daemon turns into DependencyNeverSatisfied. */
static void test_eval_chain(void **state)
{
    (void)state;
    world_t w = {0};
    set(&w, 1, -1, PHX_JOB_PENDING, -1);
    set(&w, 2, -1, PHX_JOB_PENDING, -1);
    const char *dep2 = "afterok:1", *dep3 = "afterok:2", *cleanup = "afternotok:1:2";
    assert_int_equal(eval(&w, dep2, 0), PHX_DEP_WAITING);
    set(&w, 1, -1, PHX_JOB_RUNNING, 5);
    assert_int_equal(eval(&w, dep2, 6), PHX_DEP_WAITING);
    set(&w, 1, -1, PHX_JOB_COMPLETED, 5);
    assert_int_equal(eval(&w, dep2, 7), PHX_DEP_SATISFIED);
    assert_int_equal(eval(&w, dep3, 7), PHX_DEP_WAITING);
    assert_int_equal(eval(&w, cleanup, 7), PHX_DEP_NEVER);
    set(&w, 2, -1, PHX_JOB_TIMEOUT, 8);
    assert_int_equal(eval(&w, dep3, 9), PHX_DEP_NEVER);
    assert_string_equal(phx_job_reason_name(PHX_REASON_DEPENDENCY_NEVER),
                        "DependencyNeverSatisfied");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_check_existence),
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_eval_combinations),
        cmocka_unit_test(test_eval_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
