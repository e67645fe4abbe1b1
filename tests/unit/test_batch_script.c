/* batchd: job script directives, command-line options, the job spec
 * (finalize, merge, JSON) over the fixtures in tests/unit/fixtures/scripts.
 *
 * Unit tests cannot link daemon objects (the makefile links only libraries
 * into test binaries), so the batchd sources under test are included here. */
#include "daemons/batchd/array.c"
#include "daemons/batchd/depend.c"
#include "daemons/batchd/jobspec.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/script.c"
#include "daemons/batchd/timefmt.c"
#include "tests/unit/support/paths.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <unistd.h>

#define NOW INT64_C(1700000000) /* 2023-11-14T22:13:20Z */

static char fixtures[1024];

typedef struct warnings {
    int count;
    char last[512];
} warnings_t;

static void collect(void *arg, const char *msg)
{
    warnings_t *w = arg;
    w->count++;
    snprintf(w->last, sizeof(w->last), "%s", msg);
}

static const phx_jobspec_limits_t limits = {.max_array_index = 100000,
                                            .max_array_tasks = 50000};

static char *read_fixture(const char *name, size_t *len)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/scripts/%s", fixtures, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("could not open \"%s\"", path);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Build a fixture's spec the way the daemon will: directives, argv over
 * them, finalize.  Returns 0 or -1 with err. */
static int build(const char *name, int argc, char *const argv[], phx_jobspec_t *spec,
                 warnings_t *w, phx_error_t *err)
{
    size_t len;
    char *text = read_fixture(name, &len);
    phx_script_opts_t opts = {
        .filename = name, .now = NOW, .warn = collect, .warn_arg = w};
    phx_jobspec_defaults_t def = {
        .job_name = name, .work_dir = "/home/alice/sub", .time_limit = 3600};
    int rc = phx_script_build(text, len, argc, argv, &opts, &def, &limits, spec, err);
    free(text);
    return rc;
}

static void build_ok(const char *name, phx_jobspec_t *spec, warnings_t *w)
{
    phx_error_t err = {{0}};
    if (build(name, 0, NULL, spec, w, &err) < 0)
        fail_msg("%s: %s", name, err.text);
}

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
    warnings_t w = {0};
    build_ok("01_serial.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("02_mpi_exclusive.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("03_hybrid_openmp.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("04_array_throttle.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("05_short_options.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("06_phx_and_sbatch.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("07_dependency_chain.sh", &s, &w);
    assert_string_equal(s.dependency, "afterok:1001:1002,afterany:1003");
    assert_int_equal(s.time_limit, 1800);
    phx_jobspec_clear(&s);
}

static void test_fixture_quoting(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("08_quoting.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("09_late_directive.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("10_whole_node_memory.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("11_days_hours.sh", &s, &w);
    assert_int_equal(s.time_limit, 36 * 3600);
    assert_int_equal(s.ntasks, 1);
    phx_jobspec_clear(&s);
    build_ok("12_min_sec.sh", &s, &w);
    assert_int_equal(s.time_limit, 5 * 60 + 30);
    assert_int_equal(s.mem_per_node, 512);
    phx_jobspec_clear(&s);
}

static void test_fixture_node_range(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("13_node_range.sh", &s, &w);
    NODES(&s, 2, 4);
    assert_int_equal(s.ntasks, 8);
    phx_jobspec_clear(&s);
}

static void test_fixture_sockets(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("14_socket_layout.sh", &s, &w);
    NODES(&s, 2, 2);
    assert_int_equal(s.ntasks_per_node, 4);
    assert_int_equal(s.ntasks, 8);
    assert_int_equal(s.ntasks_per_socket, 2);
    assert_int_equal(s.sockets_per_node, 2);
    assert_int_equal(s.cores_per_socket, 8);
    assert_int_equal(s.threads_per_core, PHX_UNSET);
    assert_int_equal(s.time_limit, 7200);
    phx_jobspec_clear(&s);
    build_ok("15_extra_node_info.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("16_distribution.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("17_chdir_export.sh", &s, &w);
    assert_string_equal(s.work_dir, "/scratch/alice/run42");
    assert_string_equal(s.export_env, "ALL,OMP_NUM_THREADS=4,MODE=fast");
    assert_string_equal(s.input, "/dev/null");
    phx_jobspec_clear(&s);
}

static void test_fixture_mail_requeue(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("18_mail_requeue.sh", &s, &w);
    assert_string_equal(s.mail_type, "END,FAIL");
    assert_string_equal(s.mail_user, "alice@example.org");
    assert_string_equal(s.open_mode, "append");
    assert_int_equal(s.requeue, 1);
    assert_string_equal(s.output, "/home/alice/logs/job.log");
    phx_jobspec_clear(&s);
}

static void test_fixture_singleton(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("19_singleton_nice_begin.sh", &s, &w);
    assert_string_equal(s.dependency, "singleton");
    assert_string_equal(s.job_name, "nightly");
    assert_int_equal(s.nice, 10);
    assert_int_equal(s.begin_time, NOW + 3600);
    assert_int_equal(s.requeue, 0);
    phx_jobspec_clear(&s);
}

static void test_fixture_defaults(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("20_no_directives.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("21_array_stride.sh", &s, &w);
    assert_string_equal(s.array, "0-12:4");
    assert_string_equal(s.output, "slice-%a-of-%A.txt");
    phx_jobspec_clear(&s);
}

static void test_fixture_comments(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("22_comments_and_blanks.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("23_ntasks_only.sh", &s, &w);
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
    warnings_t w = {0};
    build_ok("24_exclusive_user_wait.sh", &s, &w);
    assert_int_equal(s.exclusive, 1);
    assert_string_equal(s.exclusive_mode, "user");
    assert_int_equal(s.wait, 1);
    assert_string_equal(s.distribution, "plane=4");
    assert_string_equal(s.work_dir, "/home/alice/sub/relative/dir");
    phx_jobspec_clear(&s);
}

static void test_fixture_or_dependency(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    build_ok("25_or_dependency.sh", &s, &w);
    assert_string_equal(s.dependency, "afternotok:500?afterok:501_3");
    assert_int_equal(s.time_limit, PHX_TIME_UNLIMITED);
    assert_int_equal(s.ntasks, 4);
    assert_int_equal(s.ntasks_per_node, 2);
    NODES(&s, 2, 2);
    phx_jobspec_clear(&s);
}

/* ---- refused scripts: file:line, and nothing accepted ---- */

static void expect_refused(const char *name, const char *where, const char *what)
{
    phx_jobspec_t s;
    warnings_t w = {0};
    phx_error_t err = {{0}};
    assert_int_equal(build(name, 0, NULL, &s, &w, &err), -1);
    if (!strstr(err.text, where) || !strstr(err.text, what))
        fail_msg("%s: expected \"%s\" and \"%s\" in \"%s\"", name, where, what,
                 err.text);
    assert_null(s.job_name);
    assert_null(s.output);
    assert_int_equal(s.ntasks, PHX_UNSET);
}

static void test_refused_scripts(void **state)
{
    (void)state;
    expect_refused("bad_unknown.sh",
                   "bad_unknown.sh:3: ", "unknown option \"--colour\"");
    expect_refused("bad_time.sh", "bad_time.sh:4: ", "\"--time=1:75:00\"");
    expect_refused("bad_time.sh", "bad_time.sh:4: ", "field out of range");
    expect_refused("bad_mem_conflict.sh",
                   "bad_mem_conflict.sh:3: ", "mutually exclusive");
    expect_refused("bad_gres.sh", "bad_gres.sh:3: ", "\"--gres\" is not supported");
    expect_refused("bad_dos.sh", "bad_dos.sh: ", "DOS line breaks");
    expect_refused("bad_no_shebang.sh", "bad_no_shebang.sh:1: ", "#!");
    expect_refused("bad_ntasks_nodes.sh", "bad_ntasks_nodes.sh: ",
                   "ntasks 2 is less than the minimum node count 4");
    expect_refused("bad_quote.sh", "bad_quote.sh:2: ", "unterminated \" quote");
    expect_refused("bad_array_range.sh",
                   "bad_array_range.sh: ", "index 200000 is above the maximum 100000");
}

static int parse_text(const char *text, phx_jobspec_t *s, phx_error_t *err)
{
    phx_script_opts_t opts = {.filename = "t.sh", .now = NOW};
    return phx_script_parse(text, strlen(text), &opts, s, err);
}

static void expect_text_error(const char *text, const char *what)
{
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(parse_text(text, &s, &err), -1);
    if (!strstr(err.text, what))
        fail_msg("expected \"%s\" in \"%s\"", what, err.text);
    assert_int_equal(s.time_limit, PHX_UNSET);
}

static void test_malformed_directives(void **state)
{
    (void)state;
    expect_text_error("#!/bin/sh\n#SBATCH --time\n",
                      "t.sh:2: invalid directive "
                      "\"--time\": --time needs a value");
    expect_text_error(
        "#!/bin/sh\n#SBATCH -t 5 --requeue=yes\n",
        "t.sh:2: invalid directive \"--requeue=yes\": --requeue takes no value");
    expect_text_error("#!/bin/sh\n#SBATCH -t 5 stray\n",
                      "t.sh:2: \"stray\" is not an option");
    expect_text_error("#!/bin/sh\n#SBATCH -N two\n",
                      "t.sh:2: invalid directive \"-N two\"");
    expect_text_error("#!/bin/sh\n#SBATCH -N 4-2\n", "decreasing");
    expect_text_error("#!/bin/sh\n#SBATCH -n 0\n", "expected a positive integer");
    expect_text_error("#!/bin/sh\n#SBATCH --mem=12X\n", "invalid memory size \"12X\"");
    expect_text_error("#!/bin/sh\n#SBATCH -B 2:x\n", "sockets[:cores[:threads]]");
    expect_text_error("#!/bin/sh\n#SBATCH -C haswell\n", "\"-C\" (--constraint) is not "
                                                         "supported");
    expect_text_error("#!/bin/sh\n#SBATCH -Z\n", "unknown option \"-Z\"");
    expect_text_error("#!/bin/sh\n#SBATCH --time=5 --begin=yesterday\n",
                      "invalid begin time \"yesterday\"");
    expect_text_error("#!/bin/sh\n#SBATCH --nice=abc\n", "integer adjustment");
    expect_text_error("#!/bin/sh\n#SBATCH --job-name=a\\\n", "backslash at the end");
    expect_text_error("#!/bin/sh\n#SBATCH --=x\n", "empty option name");
    /* Binary junk and size. */
    const char junk[] = "#!/bin/sh\n\0\x01\x02";
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    phx_script_opts_t opts = {.filename = "junk", .max_bytes = 64};
    assert_int_equal(phx_script_parse(junk, sizeof(junk) - 1, &opts, &s, &err), -1);
    assert_non_null(strstr(err.text, "junk: script contains a NUL byte"));
    char big[100];
    memset(big, '#', sizeof(big));
    big[1] = '!';
    assert_int_equal(phx_script_parse(big, sizeof(big), &opts, &s, &err), -1);
    assert_non_null(strstr(err.text, "larger than 64 bytes"));
    assert_int_equal(phx_script_parse("", 0, &opts, &s, &err), -1);
    assert_non_null(strstr(err.text, "junk:1: the first line must start with #!"));
}

static void test_directive_forms(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    const char *text = "#!/bin/bash\n"
                       "#SBATCH -N2 --ntasks 4 -c=3\n";
    /* -c=3: the value is "=3", which sbatch refuses too */
    assert_int_equal(parse_text(text, &s, &err), -1);
    assert_non_null(strstr(err.text, "\"-c=3\""));
    text = "#!/bin/bash\n"
           "#SBATCH -N2 --ntasks 4 -c3 --time=1-0 -J'a b' --mem 2g\n"
           "#PHX\t--cpu_bind=verbose,sockets -m block:cyclic\n"
           "#SBATCH --nodes=3-5 # last -N wins\n";
    assert_int_equal(parse_text(text, &s, &err), 0);
    assert_int_equal(s.nodes_min, 3);
    assert_int_equal(s.nodes_max, 5);
    assert_int_equal(s.ntasks, 4);
    assert_int_equal(s.cpus_per_task, 3);
    assert_int_equal(s.time_limit, 86400);
    assert_string_equal(s.job_name, "a b");
    assert_int_equal(s.mem_per_node, 2048);
    assert_string_equal(s.cpu_bind, "verbose,sockets");
    assert_string_equal(s.distribution, "block:cyclic");
    /* Not finalized: nothing defaulted. */
    assert_null(s.output);
    assert_int_equal(s.exclusive, -1);
    phx_jobspec_clear(&s);
}

/* ---- command line over directives ---- */

static void test_cli_overrides(void **state)
{
    (void)state;
    phx_jobspec_t s;
    warnings_t w = {0};
    phx_error_t err = {{0}};
    char *argv[] = {"--time=30", "-J", "cli", "--mem-per-cpu=100", "-N", "3"};
    assert_int_equal(build("01_serial.sh", 6, argv, &s, &w, &err), 0);
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
    assert_int_equal(build("13_node_range.sh", 1, argv2, &s, &w, &err), 0);
    NODES(&s, 6, 6);
    assert_int_equal(s.ntasks, 8);
    phx_jobspec_clear(&s);

    /* A command-line option can make the whole submission inconsistent. */
    char *argv3[] = {"--ntasks=1"};
    assert_int_equal(build("02_mpi_exclusive.sh", 1, argv3, &s, &w, &err), -1);
    assert_non_null(strstr(err.text, "ntasks 1 is less than the minimum node count 4"));
    char *argv4[] = {"--colour=red"};
    assert_int_equal(build("01_serial.sh", 1, argv4, &s, &w, &err), -1);
    assert_string_equal(err.text, "invalid option unknown option \"--colour\"");
    assert_null(s.job_name);
    char *argv5[] = {"-t", "10", "extra"};
    assert_int_equal(build("01_serial.sh", 3, argv5, &s, &w, &err), -1);
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

/* ---- finalize ---- */

static int finalize_text(const char *text, phx_jobspec_t *s, phx_error_t *err)
{
    phx_script_opts_t opts = {.filename = "t.sh", .now = NOW};
    phx_jobspec_defaults_t def = {.work_dir = "/w", .time_limit = 60};
    return phx_script_build(text, strlen(text), 0, NULL, &opts, &def, &limits, s, err);
}

static void expect_finalize_error(const char *directives, const char *what)
{
    char text[512];
    snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", directives);
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(finalize_text(text, &s, &err), -1);
    if (!strstr(err.text, what))
        fail_msg("%s: expected \"%s\" in \"%s\"", directives, what, err.text);
}

static void test_finalize_consistency(void **state)
{
    (void)state;
    expect_finalize_error("#SBATCH -N 2 --ntasks-per-node=2 -n 5",
                          "ntasks 5 exceeds ntasks-per-node 2 x nodes 2");
    expect_finalize_error("#SBATCH --ntasks-per-node=2 --ntasks-per-socket=4",
                          "ntasks-per-socket 4 exceeds ntasks-per-node 2");
    expect_finalize_error("#SBATCH --ntasks-per-node=8 --ntasks-per-socket=2 "
                          "--sockets-per-node=2",
                          "ntasks-per-node 8 exceeds ntasks-per-socket 2 x "
                          "sockets-per-node 2");
    expect_finalize_error("#SBATCH --hint=compute_bound -B 2:4", "--hint cannot be "
                                                                 "combined with -B");
    expect_finalize_error("#SBATCH --hint=nomultithread --cpu-bind=cores",
                          "--hint cannot be combined with --cpu-bind");
    expect_finalize_error("#SBATCH --hint=fast", "invalid hint \"fast\"");
    expect_finalize_error("#SBATCH --cpu-bind=everything", "invalid cpu-bind");
    expect_finalize_error("#SBATCH --cpu-bind=cores,sockets", "invalid cpu-bind");
    expect_finalize_error("#SBATCH -m plane=0", "invalid distribution \"plane=0\"");
    expect_finalize_error("#SBATCH -m block:block:block:block", "invalid distribution");
    expect_finalize_error("#SBATCH -m diagonal", "invalid distribution");
    expect_finalize_error("#SBATCH --open-mode=overwrite", "invalid open-mode");
    expect_finalize_error("#SBATCH --exclusive=node", "invalid exclusive mode");
    expect_finalize_error("#SBATCH --mail-type=END,SOMETIMES", "invalid mail-type");
    expect_finalize_error("#SBATCH --export=1BAD", "invalid export");
    expect_finalize_error("#SBATCH -o out-%q.log", "output: invalid pattern "
                                                   "\"out-%q.log\": unknown escape "
                                                   "\"%q\"");
    expect_finalize_error("#SBATCH -e err-%", "error: invalid pattern");
    expect_finalize_error("#SBATCH --array=5-1", "is decreasing");
    expect_finalize_error("#SBATCH --array=0-99999", "array of 100000 tasks, at most "
                                                     "50000 allowed");
    expect_finalize_error("#SBATCH --array=1-4%0", "invalid array");
    expect_finalize_error("#SBATCH -d afterok:12,afterany:13?afterok:14",
                          "cannot be mixed");
    expect_finalize_error("#SBATCH -d aftercorr:12", "\"aftercorr\" is not supported");
    expect_finalize_error("#SBATCH -d afterok", "needs at least one job id");
    expect_finalize_error("#SBATCH -n 100000000 -N 1-2000000",
                          "nodes 2000000 is out of "
                          "range");
    expect_finalize_error("#SBATCH -J \"\"", "needs a value");
    expect_finalize_error("#SBATCH --mem-per-cpu=0", "--mem-per-cpu must be above 0");

    /* And the valid neighbours of those. */
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(finalize_text("#!/bin/sh\n#SBATCH -m plane=4:fcyclic,pack "
                                   "--cpu-bind=map_cpu:0,2,4 --mail-type=ALL "
                                   "--export=NONE -e err-%4j-%%.log\n",
                                   &s, &err),
                     0);
    assert_string_equal(s.cpu_bind, "map_cpu:0,2,4");
    assert_int_equal(s.time_limit, 60); /* the partition default */
    assert_string_equal(s.job_name, "phx");
    phx_jobspec_clear(&s);
}

static void test_finalize_limits_and_strings(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    phx_jobspec_init(&s);
    s.job_name = strdup("bad\nname");
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &limits, &err), -1);
    assert_string_equal(err.text, "job_name contains a control character");
    phx_jobspec_clear(&s);

    phx_jobspec_limits_t tight = {
        .max_array_index = 10, .max_nodes = 4, .max_tasks = 8};
    s.nodes_min = s.nodes_max = 5;
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &tight, &err), -1);
    assert_string_equal(err.text, "5 nodes requested, at most 4 allowed");
    phx_jobspec_clear(&s);
    s.ntasks = 9;
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &tight, &err), -1);
    assert_string_equal(err.text, "9 tasks requested, at most 8 allowed");
    phx_jobspec_clear(&s);
    s.exclusive_mode = strdup("user");
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &tight, &err), -1);
    assert_non_null(strstr(err.text, "without --exclusive"));
    phx_jobspec_clear(&s);
    s.mem_per_node = 10;
    s.mem_per_cpu = 10;
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &tight, &err), -1);
    assert_non_null(strstr(err.text, "mutually exclusive"));
    phx_jobspec_clear(&s);
    s.array = strdup("3,1,2,2,8-10");
    s.nice = -5;
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &tight, &err), 0);
    assert_string_equal(s.array, "1-3,8-10");
    assert_string_equal(s.output, "phx-%A_%a.out");
    assert_int_equal(s.nice, -5);
    assert_int_equal(s.time_limit, PHX_UNSET); /* no defaults given */
    phx_jobspec_clear(&s);
}

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
    warnings_t w = {0};
    build_ok("04_array_throttle.sh", &a, &w);
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
    /* NOW is 2023-11-14 22:13:20 UTC; TZ is UTC in this binary. */
    assert_int_equal(phx_script_parse_begin("now", NOW, &t, &err), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(phx_script_parse_begin("now+90", NOW, &t, &err), 0);
    assert_int_equal(t, NOW + 90);
    assert_int_equal(phx_script_parse_begin("now+2days", NOW, &t, &err), 0);
    assert_int_equal(t, NOW + 2 * 86400);
    assert_int_equal(phx_script_parse_begin("now+3minutes", NOW, &t, &err), 0);
    assert_int_equal(t, NOW + 180);
    assert_int_equal(phx_script_parse_begin("2024-01-02T03:04:05", NOW, &t, &err), 0);
    assert_int_equal(t, 1704164645);
    assert_int_equal(phx_script_parse_begin("2024-01-02", NOW, &t, &err), 0);
    assert_int_equal(t, 1704153600);
    assert_int_equal(phx_script_parse_begin("23:00", NOW, &t, &err), 0);
    assert_int_equal(t, 1700002800); /* later today */
    assert_int_equal(phx_script_parse_begin("06:30:15", NOW, &t, &err), 0);
    assert_int_equal(t, 1700029815); /* tomorrow: 06:30 has passed */
    assert_int_equal(phx_script_parse_begin("midnight", NOW, &t, &err), 0);
    assert_int_equal(t, 1700006400);
    assert_int_equal(phx_script_parse_begin("noon", NOW, &t, &err), 0);
    assert_int_equal(t, 1700049600); /* tomorrow's noon */
    assert_int_equal(phx_script_parse_begin("today", NOW, &t, &err), 0);
    assert_int_equal(t, 1699920000);
    assert_int_equal(phx_script_parse_begin("now+5fortnights", NOW, &t, &err), -1);
    assert_int_equal(phx_script_parse_begin("2024-13-01", NOW, &t, &err), -1);
    assert_int_equal(phx_script_parse_begin("25:00", NOW, &t, &err), -1);
    assert_int_equal(phx_script_parse_begin("2024-01-02T03", NOW, &t, &err), -1);
}

static int setup(void **state)
{
    (void)state;
    char repo[PATH_MAX - 32];
    if (phx_test_repo_dir(repo, sizeof(repo)) < 0)
        return -1;
    snprintf(fixtures, sizeof(fixtures), "%.900s/tests/unit/fixtures", repo);
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
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
        cmocka_unit_test(test_refused_scripts),
        cmocka_unit_test(test_malformed_directives),
        cmocka_unit_test(test_directive_forms),
        cmocka_unit_test(test_cli_overrides),
        cmocka_unit_test(test_argv_stops_at_script),
        cmocka_unit_test(test_finalize_consistency),
        cmocka_unit_test(test_finalize_limits_and_strings),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_refuses_bad_input),
        cmocka_unit_test(test_merge_groups),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_begin_formats),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
