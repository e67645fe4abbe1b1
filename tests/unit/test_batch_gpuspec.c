/* batchd: GPU requests in job scripts and on the command line
 * (daemons/batchd/gpuspec.c): Slurm's --gres=gpu[:TYPE][:N],
 * --gpus-per-node, --gpus-per-task and -G/--gpus, their canonical forms,
 * what is refused (with the directive's line), and the counts per node. */
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

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Parse a script and finalize its spec as batchd does. */
static int build(const char *text, phx_jobspec_t *s, phx_error_t *err)
{
    phx_script_opts_t opts = {.filename = "gpu.sh", .now = 1790000000};
    phx_jobspec_defaults_t def = {.job_name = "gpu.sh", .work_dir = "/tmp"};
    phx_jobspec_limits_t lim = {.max_array_index = 1000};
    return phx_script_build(text, strlen(text), 0, NULL, &opts, &def, &lim, s, err);
}

static void expect_gpus(const char *script, const char *field_text, int64_t per_node,
                        int64_t per_task, const char *type, int64_t on_node_of_2)
{
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    if (build(script, &s, &err) < 0)
        fail_msg("refused: %s\n%s", err.text, script);
    const char *got = s.gres            ? s.gres
                      : s.gpus_per_node ? s.gpus_per_node
                      : s.gpus_per_task ? s.gpus_per_task
                                        : s.gpus;
    if (field_text)
        assert_non_null(got);
    if (field_text)
        assert_string_equal(got, field_text);
    else
        assert_null(got);
    phx_gpureq_t g;
    phx_gpuspec_get(&s, &g);
    assert_int_equal(g.per_node, per_node);
    assert_int_equal(g.per_task, per_task);
    assert_string_equal(g.type, type);
    assert_int_equal(phx_gpuspec_node(&g, 2), on_node_of_2);
    phx_jobspec_t back;
    json_t *j = phx_jobspec_to_json(&s);
    assert_int_equal(phx_jobspec_from_json(j, &back, &err), 0);
    phx_gpureq_t g2;
    phx_gpuspec_get(&back, &g2);
    assert_memory_equal(&g, &g2, sizeof(g));
    json_decref(j);
    phx_jobspec_clear(&back);
    phx_jobspec_clear(&s);
}

static void expect_refused(const char *script, const char *what)
{
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(build(script, &s, &err), -1);
    if (!strstr(err.text, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.text);
}

static void forms(void **state)
{
    (void)state;
    expect_gpus("#!/bin/sh\n#SBATCH --gres=gpu:2\n", "gpu:2", 2, 0, "", 2);
    expect_gpus("#!/bin/sh\n#SBATCH --gres=gpu\n", "gpu:1", 1, 0, "", 1);
    expect_gpus("#!/bin/sh\n#SBATCH --gres=gpu:a100:4\n", "gpu:a100:4", 4, 0, "a100",
                4);
    expect_gpus("#!/bin/sh\n#SBATCH --gres=gpu:v100-32g\n", "gpu:v100-32g:1", 1, 0,
                "v100-32g", 1);
    expect_gpus("#!/bin/sh\n#SBATCH --gres=none\n", NULL, 0, 0, "", 0);
    expect_gpus("#!/bin/sh\n#SBATCH --gpus-per-node=a100:2\n", "a100:2", 2, 0, "a100",
                2);
    expect_gpus("#!/bin/sh\n#SBATCH -n 4\n#SBATCH --gpus-per-task=1\n", "1", 0, 1, "",
                2);
    /* a total over a fixed node count, spread evenly */
    expect_gpus("#!/bin/sh\n#SBATCH -N 2\n#SBATCH -G 4\n", "4", 2, 0, "", 2);
    expect_gpus("#!/bin/sh\n#SBATCH --gpus=h100:3\n", "h100:3", 3, 0, "h100", 3);
    expect_gpus("#!/bin/sh\necho no GPUs\n", NULL, 0, 0, "", 0);
}

static void refusals(void **state)
{
    (void)state;
    expect_refused("#!/bin/sh\n#SBATCH -N1\n#SBATCH --gres=fpga:1\n",
                   "gpu.sh:3: --gres=fpga:1: generic resource \"fpga\" is not "
                   "supported (gpu is the only one)");
    expect_refused("#!/bin/sh\n#SBATCH --gres=gpu:1,gpu:2\n", "gpu is given twice");
    expect_refused("#!/bin/sh\n#SBATCH --gres=gpu:0\n",
                   "gpu.sh:2: --gres \"0\": expected a GPU count from 1 to 1024");
    expect_refused("#!/bin/sh\n#SBATCH --gres=gpu:a100:2000\n", "from 1 to 1024");
    expect_refused("#!/bin/sh\n#SBATCH --gpus-per-node=a100\n",
                   "--gpus-per-node \"a100\": expected a GPU count");
    expect_refused("#!/bin/sh\n#SBATCH --gpus-per-task=a/b:1\n",
                   "a GPU type is letters, digits");
    expect_refused("#!/bin/sh\n#SBATCH --gres=gpu:2\n#SBATCH --gpus-per-task=1\n",
                   "--gres and --gpus-per-task both ask for GPUs");
    expect_refused("#!/bin/sh\n#SBATCH -N 2\n#SBATCH --gpus=3\n",
                   "gpu.sh:3: --gpus=3 over 2 nodes: give a multiple of the node "
                   "count");
    expect_refused("#!/bin/sh\n#SBATCH -N 2-4\n#SBATCH --gpus=4\n",
                   "the node count must be fixed");
    expect_refused("#!/bin/sh\n#SBATCH --gpus-per-socket=1\n",
                   "use --gpus-per-node or --gpus-per-task");
    expect_refused("#!/bin/sh\n#SBATCH --cpus-per-gpu=4\n",
                   "use -c with --gpus-per-task");
}

/* A command-line option replaces the script's (phx_jobspec_merge). */
static void command_line_wins(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    phx_script_opts_t opts = {.filename = "gpu.sh", .now = 1790000000};
    phx_jobspec_defaults_t def = {.job_name = "gpu.sh", .work_dir = "/tmp"};
    phx_jobspec_limits_t lim = {.max_array_index = 1000};
    const char *text = "#!/bin/sh\n#SBATCH --gres=gpu:2\n";
    char *argv[] = {"--gres=gpu:k80:1"};
    assert_int_equal(
        phx_script_build(text, strlen(text), 1, argv, &opts, &def, &lim, &s, &err), 0);
    assert_string_equal(s.gres, "gpu:k80:1");
    phx_jobspec_clear(&s);
    /* any GPU option replaces all of the script's */
    char *per_task[] = {"-n2", "--gpus-per-task=1"};
    assert_int_equal(
        phx_script_build(text, strlen(text), 2, per_task, &opts, &def, &lim, &s, &err),
        0);
    assert_null(s.gres);
    assert_string_equal(s.gpus_per_task, "1");
    phx_jobspec_clear(&s);
    /* and a refusal of the command line's value says so */
    char *bad[] = {"--gpus-per-task=0"};
    assert_int_equal(
        phx_script_build(text, strlen(text), 1, bad, &opts, &def, &lim, &s, &err), -1);
    assert_non_null(strstr(err.text, "command line: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forms),
        cmocka_unit_test(refusals),
        cmocka_unit_test(command_line_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
