/* batchd: job script directives and command-line options over the fixtures
 * in tests/unit/fixtures/scripts (tests/unit/support/scripttest.h).  Refused
 * input and finalize are in test_batch_script_errors.c, the job spec's JSON,
 * merge, states and begin times in test_batch_script_spec.c.
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

#define NODES(s, lo, hi)                                                               \
    do {                                                                               \
        assert_int_equal((s)->nodes_min, lo);                                          \
        assert_int_equal((s)->nodes_max, hi);                                          \
    } while (0)

/* ---- the 25 realistic scripts ---- */

static void test_fixture_serial(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("01_serial.sh", &s, &w);
    assert_string_equal(s.job_name, "hello");
    assert_int_equal(s.time_limit, 600);
    assert_string_equal(s.output, "hello-%j.out");
    assert_null(s.error);
    assert_int_equal(s.mem_per_node, 1024);
    assert_int_equal(s.mem_per_cpu, PHX_UNSET);
    NODES(&s, 1, 1);
    assert_int_equal(s.ntasks, 1);
    assert_int_equal(s.cpus_per_task, 1);
    assert_int_equal(s.exclusive, 0);
    assert_string_equal(s.work_dir, "/home/alice/sub");
    assert_int_equal(w.count, 0);
    phx_jobspec_clear(&s);
}

static void test_fixture_mpi_exclusive(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("02_mpi_exclusive.sh", &s, &w);
    NODES(&s, 4, 4);
    assert_int_equal(s.ntasks_per_node, 32);
    assert_int_equal(s.ntasks, 128);
    assert_int_equal(phx_jobspec_cpus(&s), 128);
    assert_int_equal(s.time_limit, 2 * 86400);
    assert_string_equal(s.partition, "compute");
    assert_string_equal(s.account, "proj123");
    assert_int_equal(s.exclusive, 1);
    assert_null(s.exclusive_mode);
    assert_string_equal(s.job_name, "02_mpi_exclusive.sh");
    assert_string_equal(s.output, "phx-%j.out");
    phx_jobspec_clear(&s);
}

static void test_fixture_hybrid(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("03_hybrid_openmp.sh", &s, &w);
    assert_string_equal(s.job_name, "hybrid");
    NODES(&s, 2, 2);
    assert_int_equal(s.ntasks_per_node, 4);
    assert_int_equal(s.ntasks, 8);
    assert_int_equal(s.cpus_per_task, 8);
    assert_int_equal(phx_jobspec_cpus(&s), 64);
    assert_string_equal(s.hint, "nomultithread");
    assert_int_equal(s.time_limit, 12 * 3600);
    phx_jobspec_clear(&s);
}

static void test_fixture_array(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("04_array_throttle.sh", &s, &w);
    assert_string_equal(s.job_name, "sweep");
    assert_string_equal(s.array, "1-100%10");
    assert_string_equal(s.output, "logs/%x_%A_%a.out");
    assert_string_equal(s.error, "logs/%x_%A_%a.err");
    assert_int_equal(s.mem_per_cpu, 2000);
    assert_int_equal(s.mem_per_node, PHX_UNSET);
    assert_int_equal(s.time_limit, 1800);
    phx_jobspec_clear(&s);
}

static void test_fixture_short_options(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("05_short_options.sh", &s, &w);
    NODES(&s, 2, 2);
    assert_int_equal(s.ntasks, 8);
    assert_int_equal(s.cpus_per_task, 2);
    assert_int_equal(s.time_limit, 90 * 60);
    assert_string_equal(s.job_name, "short");
    assert_string_equal(s.account, "chem");
    assert_string_equal(s.partition, "debug");
    assert_string_equal(s.qos, "high");
    phx_jobspec_clear(&s);
}

static void test_fixture_phx_and_sbatch(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("06_phx_and_sbatch.sh", &s, &w);
    assert_string_equal(s.job_name, "mixed");
    assert_int_equal(s.ntasks, 16);
    NODES(&s, 1, 16); /* -n alone: as few nodes as hold them */
    assert_int_equal(s.time_limit, 3600);
    assert_string_equal(s.partition, "fast"); /* the later line wins */
    phx_jobspec_clear(&s);
}

static void test_fixture_dependency(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("07_dependency_chain.sh", &s, &w);
    assert_string_equal(s.dependency, "afterok:1001:1002,afterany:1003");
    assert_int_equal(s.time_limit, 1800);
    phx_jobspec_clear(&s);
}

static void test_fixture_quoting(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("08_quoting.sh", &s, &w);
    assert_string_equal(s.job_name, "my job");
    assert_string_equal(s.comment, "run #7 of the \"big\" study");
    assert_int_equal(s.time_limit, 300);
    assert_string_equal(s.output, "out dir/%j.log");
    phx_jobspec_clear(&s);
}

static void test_fixture_late_directive(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("09_late_directive.sh", &s, &w);
    assert_int_equal(s.time_limit, 600);
    assert_int_equal(w.count, 2);
    assert_string_equal(
        w.last, "09_late_directive.sh:5: directive after the first command is ignored");
    phx_jobspec_clear(&s);
}

static void test_fixture_whole_node(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("10_whole_node_memory.sh", &s, &w);
    assert_int_equal(s.exclusive, 1);
    assert_int_equal(s.mem_per_node, 0);
    NODES(&s, 1, 1);
    assert_int_equal(s.time_limit, 4 * 3600);
    phx_jobspec_clear(&s);
}

static void test_fixture_times(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("11_days_hours.sh", &s, &w);
    assert_int_equal(s.time_limit, 36 * 3600);
    assert_int_equal(s.ntasks, 1);
    phx_jobspec_clear(&s);
    phx_scripttest_build_ok("12_min_sec.sh", &s, &w);
    assert_int_equal(s.time_limit, 5 * 60 + 30);
    assert_int_equal(s.mem_per_node, 512);
    phx_jobspec_clear(&s);
}

static void test_fixture_node_range(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("13_node_range.sh", &s, &w);
    NODES(&s, 2, 4);
    assert_int_equal(s.ntasks, 8);
    phx_jobspec_clear(&s);
}

static void test_fixture_sockets(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("14_socket_layout.sh", &s, &w);
    NODES(&s, 2, 2);
    assert_int_equal(s.ntasks_per_node, 4);
    assert_int_equal(s.ntasks, 8);
    assert_int_equal(s.ntasks_per_socket, 2);
    assert_int_equal(s.sockets_per_node, 2);
    assert_int_equal(s.cores_per_socket, 8);
    assert_int_equal(s.threads_per_core, PHX_UNSET);
    assert_int_equal(s.time_limit, 7200);
    phx_jobspec_clear(&s);
    phx_scripttest_build_ok("15_extra_node_info.sh", &s, &w);
    assert_int_equal(s.sockets_per_node, 2);
    assert_int_equal(s.cores_per_socket, 8);
    assert_int_equal(s.threads_per_core, 1);
    assert_int_equal(s.ntasks, 16);
    NODES(&s, 1, 16);
    phx_jobspec_clear(&s);
}

static void test_fixture_distribution(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("16_distribution.sh", &s, &w);
    NODES(&s, 2, 2);
    assert_int_equal(s.ntasks, 32);
    assert_string_equal(s.distribution, "cyclic:block");
    assert_string_equal(s.cpu_bind, "cores");
    phx_jobspec_clear(&s);
}

static void test_fixture_chdir_export(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("17_chdir_export.sh", &s, &w);
    assert_string_equal(s.work_dir, "/scratch/alice/run42");
    assert_string_equal(s.export_env, "ALL,OMP_NUM_THREADS=4,MODE=fast");
    assert_null(s.input);
    phx_jobspec_clear(&s);
}

static void test_fixture_mail_requeue(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("18_mail_requeue.sh", &s, &w);
    assert_string_equal(s.mail_type, "END,FAIL");
    assert_string_equal(s.mail_user, "alice@example.org");
    assert_string_equal(s.open_mode, "truncate");
    assert_int_equal(s.requeue, 1);
    assert_string_equal(s.output, "/home/alice/logs/job.log");
    phx_jobspec_clear(&s);
}

static void test_fixture_singleton(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("19_singleton_nice_begin.sh", &s, &w);
    assert_string_equal(s.dependency, "singleton");
    assert_string_equal(s.job_name, "nightly");
    assert_int_equal(s.nice, 10);
    assert_int_equal(s.begin_time, PHX_SCRIPTTEST_NOW + 3600);
    assert_int_equal(s.requeue, 0);
    phx_jobspec_clear(&s);
}

static void test_fixture_defaults(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("20_no_directives.sh", &s, &w);
    assert_string_equal(s.job_name, "20_no_directives.sh");
    NODES(&s, 1, 1);
    assert_int_equal(s.ntasks, 1);
    assert_int_equal(s.cpus_per_task, 1);
    assert_int_equal(s.time_limit, 3600);
    assert_string_equal(s.output, "phx-%j.out");
    assert_string_equal(s.work_dir, "/home/alice/sub");
    assert_int_equal(s.mem_per_node, PHX_UNSET);
    assert_int_equal(s.mem_per_cpu, PHX_UNSET);
    assert_null(s.array);
    assert_null(s.dependency);
    assert_int_equal(s.requeue, -1);
    phx_jobspec_clear(&s);
}

static void test_fixture_array_stride(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("21_array_stride.sh", &s, &w);
    assert_string_equal(s.array, "0-12:4");
    assert_string_equal(s.output, "slice-%a-of-%A.txt");
    phx_jobspec_clear(&s);
}

static void test_fixture_comments(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("22_comments_and_blanks.sh", &s, &w);
    assert_int_equal(s.ntasks, 3);
    assert_int_equal(s.time_limit, 3600); /* ##SBATCH is a comment */
    NODES(&s, 1, 3);
    assert_int_equal(w.count, 1);
    assert_string_equal(w.last, "22_comments_and_blanks.sh:6: indented directive is "
                                "ignored (start it in column 1)");
    phx_jobspec_clear(&s);
}

static void test_fixture_ntasks_only(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("23_ntasks_only.sh", &s, &w);
    assert_int_equal(s.ntasks, 64);
    NODES(&s, 1, 64);
    assert_string_equal(s.account, "physics");
    assert_int_equal(s.time_limit, 6 * 3600);
    phx_jobspec_clear(&s);
}

static void test_fixture_exclusive_user(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("24_exclusive_user_wait.sh", &s, &w);
    assert_int_equal(s.exclusive, 1);
    assert_string_equal(s.exclusive_mode, "user");
    assert_int_equal(s.wait, 1);
    assert_int_equal(s.parsable, 1);
    assert_string_equal(s.distribution, "cyclic:cyclic");
    assert_string_equal(s.work_dir, "/home/alice/sub/relative/dir");
    phx_jobspec_clear(&s);
}

static void test_fixture_or_dependency(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_scripttest_build_ok("25_or_dependency.sh", &s, &w);
    assert_string_equal(s.dependency, "afternotok:500?afterok:501_3");
    assert_int_equal(s.time_limit, PHX_TIME_UNLIMITED);
    assert_int_equal(s.ntasks, 4);
    assert_int_equal(s.ntasks_per_node, 2);
    NODES(&s, 2, 2);
    phx_jobspec_clear(&s);
}

/* -H/--hold: submitted held (hold.c); unset when not given, and given on
 * the command line as well. */
static void test_fixture_hold(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_error_t err = {{0}};
    phx_scripttest_build_ok("26_hold.sh", &s, &w);
    assert_int_equal(s.hold, 1);
    assert_string_equal(s.job_name, "held");
    assert_int_equal(s.time_limit, 300);
    json_t *o = phx_jobspec_to_json(&s);
    assert_true(json_is_true(json_object_get(o, "hold")));
    json_decref(o);
    phx_jobspec_clear(&s);
    phx_scripttest_build_ok("01_serial.sh", &s, &w);
    assert_int_equal(s.hold, -1);
    phx_jobspec_clear(&s);
    char *argv[] = {"--hold"};
    assert_int_equal(phx_scripttest_build("01_serial.sh", 1, argv, &s, &w, &err), 0);
    assert_int_equal(s.hold, 1);
    phx_jobspec_clear(&s);
    char *argv2[] = {"--hold=yes"};
    assert_int_equal(phx_scripttest_build("01_serial.sh", 1, argv2, &s, &w, &err), -1);
    assert_non_null(strstr(err.text, "--hold takes no value"));
}

/* ---- command line over directives ---- */

static void test_cli_overrides(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_error_t err = {{0}};
    char *argv[] = {"--time=30", "-J", "cli", "--mem-per-cpu=100", "-N", "3"};
    assert_int_equal(phx_scripttest_build("01_serial.sh", 6, argv, &s, &w, &err), 0);
    assert_int_equal(s.time_limit, 1800);
    assert_string_equal(s.job_name, "cli");
    assert_int_equal(s.mem_per_cpu, 100);
    assert_int_equal(s.mem_per_node, PHX_UNSET);   /* --mem of the script gave way */
    assert_string_equal(s.output, "hello-%j.out"); /* kept from the script */
    NODES(&s, 3, 3);
    assert_int_equal(s.ntasks, 3);
    phx_jobspec_clear(&s);

    /* -N 2-4 in the script, -N 6 on the command line: max follows. */
    char *argv2[] = {"--nodes=6"};
    assert_int_equal(phx_scripttest_build("13_node_range.sh", 1, argv2, &s, &w, &err),
                     0);
    NODES(&s, 6, 6);
    assert_int_equal(s.ntasks, 8);
    phx_jobspec_clear(&s);

    /* A command-line option can make the whole submission inconsistent. */
    char *argv3[] = {"--ntasks=1"};
    assert_int_equal(
        phx_scripttest_build("02_mpi_exclusive.sh", 1, argv3, &s, &w, &err), -1);
    assert_non_null(strstr(err.text, "ntasks 1 is less than the minimum node count 4"));
    char *argv4[] = {"--colour=red"};
    assert_int_equal(phx_scripttest_build("01_serial.sh", 1, argv4, &s, &w, &err), -1);
    assert_string_equal(err.text, "invalid option unknown option \"--colour\"");
    assert_null(s.job_name);
    char *argv5[] = {"-t", "10", "extra"};
    assert_int_equal(phx_scripttest_build("01_serial.sh", 3, argv5, &s, &w, &err), -1);
    assert_non_null(strstr(err.text, "unexpected argument \"extra\""));
}

static void test_argv_stops_at_script(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    int next = -1;
    char *argv[] = {"-N", "2", "--exclusive", "job.sh", "--not-ours", "x"};
    assert_int_equal(phx_script_parse_argv(6, argv, NULL, &s, &next, &err), 0);
    assert_int_equal(next, 3);
    assert_int_equal(s.nodes_min, 2);
    assert_int_equal(s.exclusive, 1);
    phx_jobspec_clear(&s);
    char *argv2[] = {"-n4", "--", "-script-with-dash.sh"};
    assert_int_equal(phx_script_parse_argv(3, argv2, NULL, &s, &next, &err), 0);
    assert_int_equal(next, 2);
    assert_int_equal(s.ntasks, 4);
    phx_jobspec_clear(&s);
    char *argv3[] = {"--mem=1G", "--mem-per-cpu=1G"};
    assert_int_equal(phx_script_parse_argv(2, argv3, NULL, &s, &next, &err), -1);
    assert_non_null(strstr(err.text, "mutually exclusive"));
    assert_int_equal(s.mem_per_node, PHX_UNSET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_serial),
        cmocka_unit_test(test_fixture_mpi_exclusive),
        cmocka_unit_test(test_fixture_hybrid),
        cmocka_unit_test(test_fixture_array),
        cmocka_unit_test(test_fixture_short_options),
        cmocka_unit_test(test_fixture_phx_and_sbatch),
        cmocka_unit_test(test_fixture_dependency),
        cmocka_unit_test(test_fixture_quoting),
        cmocka_unit_test(test_fixture_late_directive),
        cmocka_unit_test(test_fixture_whole_node),
        cmocka_unit_test(test_fixture_times),
        cmocka_unit_test(test_fixture_node_range),
        cmocka_unit_test(test_fixture_sockets),
        cmocka_unit_test(test_fixture_distribution),
        cmocka_unit_test(test_fixture_chdir_export),
        cmocka_unit_test(test_fixture_mail_requeue),
        cmocka_unit_test(test_fixture_singleton),
        cmocka_unit_test(test_fixture_defaults),
        cmocka_unit_test(test_fixture_array_stride),
        cmocka_unit_test(test_fixture_comments),
        cmocka_unit_test(test_fixture_ntasks_only),
        cmocka_unit_test(test_fixture_exclusive_user),
        cmocka_unit_test(test_fixture_or_dependency),
        cmocka_unit_test(test_fixture_hold),
        cmocka_unit_test(test_cli_overrides),
        cmocka_unit_test(test_argv_stops_at_script),
    };
    return cmocka_run_group_tests(tests, phx_scripttest_setup, NULL);
}
