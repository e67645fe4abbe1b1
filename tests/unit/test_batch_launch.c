/* batchd: what an array task's batch step is told of its array
 * (PHX_ARRAY_TASK_COUNT/MIN/MAX/STEP), through the code launch uses: the
 * array's stats, computed once per array (phx_array_stats, as at submission
 * and load), formatted by batchd_launch_ops.
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

/* The batch step's environment variables (an array of {name, value}). */
static const json_t *step_vars(const json_t *ops)
{
    const json_t *ti = json_array_get(
        json_object_get(json_object_get(json_array_get(ops, 0), "launch"),
                        "task_infos"),
        0);
    return json_object_get(
        json_object_get(json_object_get(ti, "command"), "environment"), "variables");
}

/* The value of the batch step's variable name, or NULL. */
static const char *env_of(const json_t *ops, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(step_vars(ops), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return json_string_value(json_object_get(v, "value"));
    }
    return NULL;
}

/* Launch the second task of an array submitted with spec (NULL: a single
 * job), with the array's stats unless unknown; the launch operations (new
 * reference). */
static batchd_t b = {.partition = "batch", .kill_grace = 5};

static json_t *launch(const char *spec, bool unknown)
{
    bjob_t j = {0};
    bj_task_t task = {.id = "t-1",
                      .agent_id = "a-1",
                      .host = "n01",
                      .cpus = 1,
                      .tasks = 1,
                      .mem = 100};
    phx_jobspec_init(&j.spec);
    j.spec.work_dir = strdup("/tmp");
    j.id = 41;
    j.array_task_id = -1;
    j.user = strdup("alice");
    j.node_list = (char *)"n01";
    j.script = strdup("#!/bin/sh\ntrue\n");
    j.tasks = &task;
    j.ntasks = 1;
    if (spec) {
        phx_array_t a = {0};
        phx_error_t err;
        assert_int_equal(phx_array_parse(spec, 100000, &a, &err), 0);
        if (!unknown)
            phx_array_stats(&a, &j.array_stats);
        j.spec.array = strdup(spec);
        j.array_job_id = 40;
        j.array_task_id = a.ids[a.count > 1 ? 1 : 0];
        phx_array_clear(&a);
    }
    int core = 0, *cores[] = {&core};
    uint32_t ncores[] = {1};
    json_t *ops = batchd_launch_ops(&b, &j, cores, ncores);
    assert_non_null(ops);
    free(j.user);
    free(j.script);
    free(j.stdout_path);
    free(j.stderr_path);
    phx_jobspec_clear(&j.spec);
    return ops;
}

static void test_array_env(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        const char *count, *min, *max, *step;
    } cases[] = {
        {"1-10000%4", "10000", "1", "10000", "1"}, /* throttle: not a count */
        {"0-15:4", "4", "0", "12", "4"},           /* the last index the step reaches */
        {"1-7:3%2", "3", "1", "7", "3"},
        {"0,6,16-32", "19", "0", "32", "1"}, /* uneven: step 1 */
        {"3,5,7", "3", "3", "7", "2"},       /* an evenly spaced list */
        {"9,1,5", "3", "1", "9", "4"},       /* sorted first */
        {"0-4,10", "6", "0", "10", "1"},
        {"2,2,2", "1", "2", "2", "1"}, /* duplicates count once */
        {"7", "1", "7", "7", "1"},     /* a single index */
        {"5%1", "1", "5", "5", "1"},
        {"0-99:33,100", "5", "0", "100", "1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *ops = launch(cases[i].spec, false);
        const char *got[] = {
            env_of(ops, "PHX_ARRAY_TASK_COUNT"), env_of(ops, "PHX_ARRAY_TASK_MIN"),
            env_of(ops, "PHX_ARRAY_TASK_MAX"), env_of(ops, "PHX_ARRAY_TASK_STEP")};
        const char *want[] = {cases[i].count, cases[i].min, cases[i].max,
                              cases[i].step};
        for (int k = 0; k < 4; k++)
            if (!got[k] || strcmp(got[k], want[k]) != 0)
                fail_msg("array \"%s\": variable %d is %s, expected %s", cases[i].spec,
                         k, got[k] ? got[k] : "unset", want[k]);
        assert_string_equal(env_of(ops, "PHX_ARRAY_JOB_ID"), "40");
        json_decref(ops);
    }
}

static void test_single_job_has_no_array_env(void **state)
{
    (void)state;
    json_t *ops = launch(NULL, false);
    assert_string_equal(env_of(ops, "PHX_JOB_ID"), "41");
    assert_null(env_of(ops, "PHX_ARRAY_JOB_ID"));
    assert_null(env_of(ops, "PHX_ARRAY_TASK_COUNT"));
    assert_null(env_of(ops, "PHX_ARRAY_TASK_STEP"));
    json_decref(ops);
}

/* An array task whose stats are unknown (its array could not be parsed at
 * load) is told its ids but nothing of the array, as before. */
static void test_unknown_stats(void **state)
{
    (void)state;
    json_t *ops = launch("0-3", true);
    assert_string_equal(env_of(ops, "PHX_ARRAY_JOB_ID"), "40");
    assert_string_equal(env_of(ops, "PHX_ARRAY_TASK_ID"), "1");
    assert_null(env_of(ops, "PHX_ARRAY_TASK_COUNT"));
    assert_null(env_of(ops, "PHX_ARRAY_TASK_MIN"));
    json_decref(ops);
    phx_array_stats_t st;
    phx_array_t empty = {0};
    phx_array_stats(&empty, &st);
    assert_int_equal(st.count, 0);
}

/* batchd.slurm_env: the batch script also gets SLURM_X for its PHX_X and
 * Slurm's aliases; never the daemons' PHX_CONFIG etc.; off by default. */
static void test_slurm_env(void **state)
{
    (void)state;
    json_t *ops = launch("1-7:3", false);
    assert_null(env_of(ops, "SLURM_JOB_ID"));
    json_decref(ops);
    b.slurm_env = true;
    ops = launch("1-7:3", false);
    assert_string_equal(env_of(ops, "SLURM_JOB_ID"), "41");
    assert_string_equal(env_of(ops, "SLURM_JOBID"), "41");
    assert_string_equal(env_of(ops, "SLURM_ARRAY_JOB_ID"), "40");
    assert_string_equal(env_of(ops, "SLURM_ARRAY_TASK_ID"), "4");
    assert_string_equal(env_of(ops, "SLURM_ARRAY_TASK_STEP"), "3");
    assert_string_equal(env_of(ops, "SLURM_JOB_USER"), "alice");
    assert_string_equal(env_of(ops, "SLURM_NODELIST"), "n01");
    assert_string_equal(env_of(ops, "SLURM_JOB_NODELIST"), "n01");
    assert_string_equal(env_of(ops, "SLURM_NPROCS"), env_of(ops, "PHX_NTASKS"));
    assert_string_equal(env_of(ops, "SLURM_PROCID"), "0");
    assert_string_equal(env_of(ops, "SLURM_CPUS_ON_NODE"), "1");
    assert_string_equal(env_of(ops, "SLURM_JOB_CPUS_PER_NODE"), "1"); /* one node */
    assert_null(env_of(ops, "SLURM_CONFIG"));
    json_decref(ops);
    b.slurm_env = false;
}

/* Launch a job of two nodes (2 tasks on n01, 1 on n02) whose submitter had
 * the environment env (JSON object text, NULL: none). */
static json_t *launch2_on(const char *env, const char *h1, const char *h2)
{
    bjob_t j = {0};
    bj_task_t tasks[] = {{.id = "t-1", .agent_id = "a-1", .cpus = 2, .tasks = 2},
                         {.id = "t-2", .agent_id = "a-2", .cpus = 1, .tasks = 1}};
    snprintf(tasks[0].host, sizeof(tasks[0].host), "%s", h1);
    snprintf(tasks[1].host, sizeof(tasks[1].host), "%s", h2);
    phx_jobspec_init(&j.spec);
    j.spec.work_dir = strdup("/tmp");
    j.id = 42;
    j.array_task_id = -1;
    j.user = strdup("alice");
    j.node_list = (char *)"n[01-02]";
    j.script = strdup("#!/bin/sh\nmpirun ./a.out\n");
    j.tasks = tasks;
    j.ntasks = 2;
    j.env = env ? json_loads(env, 0, NULL) : NULL;
    int c0[] = {0, 1}, c1[] = {0}, *cores[] = {c0, c1};
    uint32_t ncores[] = {2, 1};
    json_t *ops = batchd_launch_ops(&b, &j, cores, ncores);
    assert_non_null(ops);
    json_decref(j.env);
    free(j.user);
    free(j.script);
    free(j.stdout_path);
    free(j.stderr_path);
    phx_jobspec_clear(&j.spec);
    return ops;
}

static json_t *launch2(const char *env)
{
    return launch2_on(env, "n01", "n02");
}

/* How many times the batch step's environment has name. */
static int env_count(const json_t *ops, const char *name)
{
    size_t i;
    json_t *v;
    int n = 0;
    json_array_foreach(step_vars(ops), i, v)
    {
        n += strcmp(json_string_value(json_object_get(v, "name")), name) == 0;
    }
    return n;
}

/* batchd.mpirun_env: mpirun's hosts and slots are the job's nodes and
 * tasks per node, its "ssh" compat_dir's phx-rsh; a user's own setting is
 * kept, unless it came from the job that submitted this one. */
static void test_mpirun_env(void **state)
{
    (void)state;
    json_t *ops = launch2(NULL);
    assert_null(env_of(ops, "OMPI_MCA_plm_rsh_agent")); /* off */
    json_decref(ops);
    b.mpirun_env = true;
    b.compat_dir = (char *)"/opt/phx/compat";
    ops = launch2(NULL);
    assert_string_equal(env_of(ops, "OMPI_MCA_plm_rsh_agent"),
                        "/opt/phx/compat/phx-rsh");
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_default_dash_host"), "n01:2,n02:1");
    assert_string_equal(env_of(ops, "OMPI_MCA_plm_rsh_no_tree_spawn"), "1");
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_leave_session_attached"), "1");
    json_decref(ops);
    /* the user's own launcher: mpirun is theirs to set up */
    ops = launch2("{\"OMPI_MCA_plm_rsh_agent\": \"ssh\"}");
    assert_string_equal(env_of(ops, "OMPI_MCA_plm_rsh_agent"), "ssh");
    assert_int_equal(env_count(ops, "OMPI_MCA_plm_rsh_agent"), 1);
    assert_null(env_of(ops, "OMPI_MCA_orte_default_dash_host"));
    json_decref(ops);
    /* one setting of the user's is kept, the others added */
    ops = launch2("{\"OMPI_MCA_plm_rsh_no_tree_spawn\": \"0\"}");
    assert_int_equal(env_count(ops, "OMPI_MCA_plm_rsh_no_tree_spawn"), 1);
    assert_string_equal(env_of(ops, "OMPI_MCA_plm_rsh_no_tree_spawn"), "0");
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_default_dash_host"), "n01:2,n02:1");
    json_decref(ops);
    /* submitted from a job: that job's hosts are not this one's */
    ops = launch2("{\"PHX_JOB_ID\": \"7\", \"OMPI_MCA_orte_default_dash_host\": "
                  "\"n09:4\", \"OMPI_MCA_plm_rsh_agent\": \"/old/phx-rsh\"}");
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_default_dash_host"), "n01:2,n02:1");
    assert_int_equal(env_count(ops, "OMPI_MCA_orte_default_dash_host"), 1);
    assert_string_equal(env_of(ops, "OMPI_MCA_plm_rsh_agent"),
                        "/opt/phx/compat/phx-rsh");
    json_decref(ops);
    /* host names without a dot: OpenMPI's default kept */
    ops = launch2(NULL);
    assert_null(env_of(ops, "OMPI_MCA_orte_keep_fqdn_hostnames"));
    json_decref(ops);
    /* dotted node names: mpirun must not cut them at the dot (it would
     * give phx-rsh "n01", no node of the job); a user's own kept */
    ops = launch2_on(NULL, "n01.example", "n02.example");
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_default_dash_host"),
                        "n01.example:2,n02.example:1");
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_keep_fqdn_hostnames"), "1");
    json_decref(ops);
    ops = launch2_on("{\"OMPI_MCA_orte_keep_fqdn_hostnames\": \"0\"}", "n01.example",
                     "n02");
    assert_int_equal(env_count(ops, "OMPI_MCA_orte_keep_fqdn_hostnames"), 1);
    assert_string_equal(env_of(ops, "OMPI_MCA_orte_keep_fqdn_hostnames"), "0");
    json_decref(ops);
    /* batchd.slurm_env: mpirun would see SLURM_JOB_ID and take its Slurm
     * launcher (its daemons need Slurm's task variables): rsh is asked,
     * unless the user asked another */
    ops = launch2(NULL);
    assert_null(env_of(ops, "OMPI_MCA_plm"));
    json_decref(ops);
    b.slurm_env = true;
    ops = launch2(NULL);
    assert_string_equal(env_of(ops, "OMPI_MCA_plm"), "rsh");
    json_decref(ops);
    ops = launch2("{\"OMPI_MCA_plm\": \"slurm\"}");
    assert_int_equal(env_count(ops, "OMPI_MCA_plm"), 1);
    assert_string_equal(env_of(ops, "OMPI_MCA_plm"), "slurm");
    json_decref(ops);
    b.slurm_env = false;
    /* no compat_dir: nothing (no phx-rsh to point at) */
    b.compat_dir = NULL;
    ops = launch2(NULL);
    assert_null(env_of(ops, "OMPI_MCA_orte_default_dash_host"));
    json_decref(ops);
    b.mpirun_env = false;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_env),
        cmocka_unit_test(test_single_job_has_no_array_env),
        cmocka_unit_test(test_unknown_stats),
        cmocka_unit_test(test_slurm_env),
        cmocka_unit_test(test_mpirun_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
