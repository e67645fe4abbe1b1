/* batchd's scontrol update (daemons/batchd/update.c): the fields by
 * Slurm's names (any case, aliases), unknown and repeated fields refused by
 * name, values read as the sbatch options read them, the new spec
 * finalized as at submission, and the rules: a running job takes only a
 * lower TimeLimit, JobName and Comment; Nice goes down only by an operator;
 * NumNodes takes a one-task-per-node job's tasks along.
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
#include "daemons/batchd/script.c"
#include "daemons/batchd/timefmt.c"
#include "daemons/batchd/update.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static const phx_jobspec_limits_t lim = {.max_array_index = 1000, .max_nodes = 64};

/* A submitted job: -N2 -t 30 -J old (2 tasks, one per node). */
static void base(phx_jobspec_t *s)
{
    phx_jobspec_init(s);
    s->nodes_min = 2;
    s->time_limit = 1800;
    s->job_name = strdup("old");
    s->partition = strdup("batch");
    phx_jobspec_defaults_t def = {.job_name = "x", .work_dir = "/home/a"};
    phx_error_t err;
    assert_int_equal(phx_jobspec_finalize(s, &def, &lim, &err), 0);
    assert_int_equal(s->ntasks, 2);
}

/* Parse texts (NULL-terminated) and update s in state; the return code. */
static int upd(const phx_jobspec_t *s, phx_job_state_t st, bool oper,
               const char *const *texts, phx_jobspec_t *out, phx_error_t *err)
{
    size_t n = 0;
    while (texts[n])
        n++;
    batchd_update_t u;
    if (batchd_update_parse(texts, n, &u, err) < 0) {
        phx_jobspec_init(out);
        return -2;
    }
    int rc = batchd_update_spec(s, st, oper, &u, &lim, out, err);
    batchd_update_clear(&u);
    return rc;
}

static void pending_fields(void **state)
{
    (void)state;
    phx_jobspec_t s, out;
    phx_error_t err;
    base(&s);
    const char *t[] = {"timelimit=5",     "NAME=new", "Partition=debug",
                       "NumNodes=3",      "Nice=10",  "Account=physics",
                       "MinMemoryCPU=2G", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, t, &out, &err), 0);
    assert_int_equal(out.time_limit, 300);
    assert_string_equal(out.job_name, "new");
    assert_string_equal(out.partition, "debug");
    assert_int_equal(out.nodes_min, 3);
    assert_int_equal(out.nodes_max, 3);
    assert_int_equal(out.ntasks, 3); /* one task per node, as submitted */
    assert_int_equal(out.nice, 10);
    assert_string_equal(out.account, "physics");
    assert_int_equal(out.mem_per_cpu, 2048);
    batchd_update_t u;
    assert_int_equal(batchd_update_parse(t, 7, &u, &err), 0);
    char done[512];
    batchd_update_describe(&s, &out, &u, done, sizeof(done));
    assert_string_equal(done, "TimeLimit=05:00 JobName=new Partition=debug NumNodes=3 "
                              "MinMemoryCPU=2G Nice=10 Account=physics");
    batchd_update_clear(&u);
    phx_jobspec_clear(&out);
    /* a range, and a time limit in Slurm's other forms (raised: by an
     * operator) */
    const char *r[] = {"NumNodes=2-4", "TimeLimit=1-00:00:00", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, r, &out, &err), 0);
    assert_int_equal(out.nodes_min, 2);
    assert_int_equal(out.nodes_max, 4);
    assert_int_equal(out.time_limit, 86400);
    phx_jobspec_clear(&out);
    phx_jobspec_clear(&s);
}

static void unknown_and_bad_values(void **state)
{
    (void)state;
    phx_jobspec_t s, out;
    phx_error_t err;
    base(&s);
    const char *a[] = {"TimeLimit=5", "Shared=yes", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, a, &out, &err), -2);
    assert_non_null(strstr(err.text, "field Shared is not supported"));
    const char *b[] = {"TimeLimit=abc", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, b, &out, &err), -2);
    assert_non_null(strstr(err.text, "TimeLimit=abc: "));
    const char *c[] = {"TimeLimit=5", "timelimit=6", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, c, &out, &err), -2);
    assert_non_null(strstr(err.text, "TimeLimit is given twice"));
    const char *d[] = {"TimeLimit=", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, d, &out, &err), -2);
    assert_non_null(strstr(err.text, "TimeLimit needs a value"));
    const char *e[] = {"NumNodes=4-2", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, e, &out, &err), -2);
    assert_non_null(strstr(err.text, "NumNodes=4-2"));
    const char *f[] = {"JobId=3", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, f, &out, &err), -2);
    assert_non_null(strstr(err.text, "field JobId is not supported"));
    /* finalize's refusals, as at submission */
    const char *g[] = {"NumTasks=1", "NumNodes=3", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, g, &out, &err), -1);
    assert_non_null(strstr(err.text, "ntasks 1 is less than the minimum node count 3"));
    const char *h[] = {"NumNodes=100", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, h, &out, &err), -1);
    assert_non_null(strstr(err.text, "100 nodes requested, at most 64 allowed"));
    phx_jobspec_clear(&s);
}

static void clears(void **state)
{
    (void)state;
    phx_jobspec_t s, out;
    phx_error_t err;
    base(&s);
    const char *a[] = {"Dependency=afterok:12", "ExcNodeList=n[1-2]", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, a, &out, &err), 0);
    assert_string_equal(out.dependency, "afterok:12");
    assert_string_equal(out.exclude, "n[1-2]");
    phx_jobspec_t again;
    const char *b[] = {"dependency=", "excnodelist=", NULL};
    assert_int_equal(upd(&out, PHX_JOB_PENDING, false, b, &again, &err), 0);
    assert_null(again.dependency);
    assert_null(again.exclude);
    phx_jobspec_clear(&again);
    phx_jobspec_clear(&out);
    /* explicit tasks stay; fewer than the nodes are refused */
    const char *c[] = {"NumTasks=8", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, c, &out, &err), 0);
    const char *d[] = {"NumNodes=4", NULL};
    assert_int_equal(upd(&out, PHX_JOB_PENDING, false, d, &again, &err), 0);
    assert_int_equal(again.ntasks, 8);
    phx_jobspec_clear(&again);
    phx_jobspec_clear(&out);
    phx_jobspec_clear(&s);
}

static void running_rules(void **state)
{
    (void)state;
    phx_jobspec_t s, out;
    phx_error_t err;
    base(&s);
    const char *a[] = {"TimeLimit=10", "JobName=r", NULL};
    assert_int_equal(upd(&s, PHX_JOB_RUNNING, false, a, &out, &err), 0);
    assert_int_equal(out.time_limit, 600);
    phx_jobspec_clear(&out);
    /* raising: refused, an operator too (the agents hold the old limit) */
    const char *b[] = {"TimeLimit=60", NULL};
    errno = 0;
    assert_int_equal(upd(&s, PHX_JOB_RUNNING, false, b, &out, &err), -1);
    assert_int_equal(errno, EPERM);
    assert_non_null(strstr(err.text, "can only be lowered"));
    assert_int_equal(upd(&s, PHX_JOB_RUNNING, true, b, &out, &err), -1);
    const char *c[] = {"TimeLimit=UNLIMITED", NULL};
    assert_int_equal(upd(&s, PHX_JOB_RUNNING, true, c, &out, &err), -1);
    /* pending: raised by an operator only (as Slurm: an owner would undo
     * an operator's cut), within what finalize allows */
    errno = 0;
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, b, &out, &err), -1);
    assert_int_equal(errno, EPERM);
    assert_string_equal(err.text, "TimeLimit=01:00:00: only an operator may raise a "
                                  "time limit (it is 30:00)");
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, c, &out, &err), -1);
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, b, &out, &err), 0);
    assert_int_equal(out.time_limit, 3600);
    phx_jobspec_clear(&out);
    const char *d[] = {"TimeLimit=10", "Partition=debug", NULL};
    errno = 0;
    assert_int_equal(upd(&s, PHX_JOB_RUNNING, true, d, &out, &err), -1);
    assert_int_equal(errno, EBUSY);
    assert_string_equal(err.text, "field Partition can only be changed while the job "
                                  "is pending (it is RUNNING)");
    assert_int_equal(upd(&s, PHX_JOB_COMPLETED, true, a, &out, &err), -1);
    assert_non_null(strstr(err.text, "the job has ended (COMPLETED)"));
    phx_jobspec_clear(&s);
}

static void nice_rules(void **state)
{
    (void)state;
    phx_jobspec_t s, out, again;
    phx_error_t err;
    base(&s);
    const char *up[] = {"Nice=100", NULL}, *down[] = {"Nice=50", NULL},
               *neg[] = {"Nice=-5", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, up, &out, &err), 0);
    errno = 0;
    assert_int_equal(upd(&out, PHX_JOB_PENDING, false, down, &again, &err), -1);
    assert_int_equal(errno, EPERM);
    assert_non_null(strstr(err.text, "only an operator may lower a job's nice value"));
    assert_int_equal(upd(&out, PHX_JOB_PENDING, true, down, &again, &err), 0);
    phx_jobspec_clear(&again);
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, neg, &again, &err), -1);
    assert_int_equal(upd(&s, PHX_JOB_PENDING, true, neg, &again, &err), 0);
    assert_int_equal(again.nice, -5);
    phx_jobspec_clear(&again);
    phx_jobspec_clear(&out);
    phx_jobspec_clear(&s);
}

static void no_change_described_empty(void **state)
{
    (void)state;
    phx_jobspec_t s, out;
    phx_error_t err;
    base(&s);
    const char *a[] = {"TimeLimit=30", "JobName=old", NULL};
    assert_int_equal(upd(&s, PHX_JOB_PENDING, false, a, &out, &err), 0);
    batchd_update_t u;
    assert_int_equal(batchd_update_parse(a, 2, &u, &err), 0);
    char done[128];
    batchd_update_describe(&s, &out, &u, done, sizeof(done));
    assert_string_equal(done, "");
    batchd_update_clear(&u);
    phx_jobspec_clear(&out);
    phx_jobspec_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pending_fields), cmocka_unit_test(unknown_and_bad_values),
        cmocka_unit_test(clears),         cmocka_unit_test(running_rules),
        cmocka_unit_test(nice_rules),     cmocka_unit_test(no_change_described_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
