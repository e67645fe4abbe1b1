/* batchd: what the script parser and the job spec's finalize refuse (and
 * their valid neighbours): refused fixture scripts with file:line, malformed
 * directives, directive forms, inconsistent or over-limit specs.
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

/* ---- refused scripts: file:line, and nothing accepted ---- */

static void expect_refused(const char *name, const char *where, const char *what)
{
    phx_jobspec_t s;
    phx_scripttest_warnings_t w = {0};
    phx_error_t err = {{0}};
    assert_int_equal(phx_scripttest_build(name, 0, NULL, &s, &w, &err), -1);
    if (strncmp(err.text, where, strlen(where)) || !strstr(err.text, what))
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
    expect_refused("bad_gres.sh",
                   "bad_gres.sh:3: ", "generic resource \"fpga\" is not supported");
    expect_refused("bad_dos.sh", "bad_dos.sh: ", "DOS line breaks");
    expect_refused("bad_no_shebang.sh", "bad_no_shebang.sh:1: ", "#!");
    expect_refused("bad_ntasks_nodes.sh", "bad_ntasks_nodes.sh:3: ",
                   "ntasks 2 is less than the minimum node count 4 (see also "
                   "bad_ntasks_nodes.sh:2)");
    expect_refused("bad_quote.sh", "bad_quote.sh:2: ", "unterminated \" quote");
    expect_refused("bad_array_range.sh", "bad_array_range.sh:2: ",
                   "index 200000 is above the maximum 100000");
}

static int parse_text(const char *text, phx_jobspec_t *s, phx_error_t *err)
{
    phx_script_opts_t opts = {.filename = "t.sh", .now = PHX_SCRIPTTEST_NOW};
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
    expect_text_error("#!/bin/sh\n#SBATCH -L matlab\n", "\"-L\" (--licenses) is not "
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

/* ---- finalize ---- */

static int finalize_text(const char *text, phx_jobspec_t *s, phx_error_t *err)
{
    phx_script_opts_t opts = {.filename = "t.sh", .now = PHX_SCRIPTTEST_NOW};
    phx_jobspec_defaults_t def = {.work_dir = "/w", .time_limit = 60};
    return phx_script_build(text, strlen(text), 0, NULL, &opts, &def,
                            &phx_scripttest_limits, s, err);
}

/* directives is line 2 of the script: the error must say so. */
static void expect_finalize_error(const char *directives, const char *what)
{
    char text[512];
    snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", directives);
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(finalize_text(text, &s, &err), -1);
    if (strncmp(err.text, "t.sh:2: ", 8) || !strstr(err.text, what))
        fail_msg("%s: expected \"t.sh:2: ...%s...\", not \"%s\"", directives, what,
                 err.text);
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
    expect_finalize_error("#SBATCH -m plane=0", "\"plane=0\" is not supported");
    expect_finalize_error("#SBATCH -m block:block:block:block",
                          "a core-level distribution (\"block:block\") is not "
                          "supported");
    expect_finalize_error("#SBATCH -m diagonal", "invalid distribution");
    expect_finalize_error("#SBATCH -m block:", "invalid distribution");
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
    expect_finalize_error("#SBATCH --array=abc", "invalid array");
    expect_finalize_error("#SBATCH -d afterok:x", "afterok");
    expect_finalize_error("#SBATCH -N 3-2", "decreasing");
    expect_finalize_error("#SBATCH --nice=-2147483646", "integer adjustment from "
                                                        "-2147483645 to 2147483645");
    expect_finalize_error("#SBATCH --nice=2147483646", "integer adjustment");
    /* The agents run a task for at most 100 years (PHX_TASK_TIME_LIMIT_MAX):
     * a longer job would be refused at every ACCEPT. */
    expect_finalize_error("#SBATCH -t 36501-00:00:00",
                          "time 3153686400 is out of range (0..3153600000)");

    /* And the valid neighbours of those. */
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(finalize_text("#!/bin/sh\n#SBATCH -m cyclic:cyclic "
                                   "--cpu-bind=verbose,sockets --mail-type=ALL "
                                   "--export=NONE -e err-%4j-%%.log "
                                   "--nice=-2147483645\n",
                                   &s, &err),
                     0);
    assert_string_equal(s.cpu_bind, "verbose,sockets");
    assert_int_equal(s.nice, -2147483645);
    assert_int_equal(s.time_limit, 60); /* the partition default */
    assert_string_equal(s.job_name, "phx");
    phx_jobspec_clear(&s);
    assert_int_equal(finalize_text("#!/bin/sh\n#SBATCH -t 36500-00:00:00\n", &s, &err),
                     0);
    assert_int_equal(s.time_limit, PHX_TASK_TIME_LIMIT_MAX);
    phx_jobspec_clear(&s);
}

/* What Phalanx does not implement is refused by name, with what to use. */
static void test_unsupported_values(void **state)
{
    (void)state;
    static const char *const binds[] = {"threads",    "ldoms",       "rank",
                                        "rank_ldom",  "map_cpu:0,1", "mask_cpu:0x3",
                                        "map_ldom:0", "mask_ldom:1", "verbose,threads"};
    char line[128], what[128];
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++) {
        snprintf(line, sizeof(line), "#SBATCH --cpu-bind=%s", binds[i]);
        expect_finalize_error(line, "is not supported (use none, cores or sockets");
    }
    static const char *const dists[] = {"arbitrary",     "plane=4",
                                        "block:fcyclic", "cyclic:block:block",
                                        "block,pack",    "cyclic,nopack"};
    for (size_t i = 0; i < sizeof(dists) / sizeof(dists[0]); i++) {
        snprintf(line, sizeof(line), "#SBATCH --distribution=%s", dists[i]);
        expect_finalize_error(line, "is not supported (use block, cyclic or *");
    }
    static const char *const hints[] = {"multithread"};
    for (size_t i = 0; i < 1; i++) {
        snprintf(line, sizeof(line), "#SBATCH --hint=%s", hints[i]);
        snprintf(what, sizeof(what),
                 "--hint=%s is not supported (use --hint=compute_bound", hints[i]);
        expect_finalize_error(line, what);
    }
    expect_finalize_error("#SBATCH --open-mode=sometimes",
                          "invalid open-mode \"sometimes\" (append or truncate)");
    expect_text_error("#!/bin/sh\n#SBATCH --input=in.txt\n",
                      "t.sh:2: invalid directive \"--input\" is not supported: a batch "
                      "job's standard input is /dev/null");
    expect_text_error("#!/bin/sh\n#SBATCH -i in.txt\n",
                      "t.sh:2: invalid directive \"-i\" (--input) is not supported");
    /* --ntasks-per-core: 1 is what a task always has (whole cores) */
    expect_text_error("#!/bin/sh\n#SBATCH --ntasks-per-core=2\n",
                      "t.sh:2: invalid directive \"--ntasks-per-core=2\": only 1 is "
                      "accepted (a task never shares a core)");
    expect_text_error("#!/bin/sh\n#SBATCH --ntasks-per-core=x\n",
                      "\"--ntasks-per-core=x\": only 1 is accepted");

    /* What is accepted. */
    static const char *const ok[] = {"--cpu-bind=none",
                                     "--cpu-bind=no",
                                     "--cpu-bind=cores",
                                     "--cpu-bind=sockets",
                                     "--cpu-bind=quiet,cores",
                                     "--cpu-bind=v,none",
                                     "-m block",
                                     "-m cyclic",
                                     "-m *",
                                     "-m block:cyclic",
                                     "-m cyclic:block",
                                     "-m *:cyclic",
                                     "-m block:*",
                                     "--hint=compute_bound",
                                     "--hint=nomultithread",
                                     "--hint=memory_bound",
                                     "--open-mode=truncate",
                                     "--open-mode=append",
                                     "--ntasks-per-core=1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        phx_jobspec_t s;
        phx_error_t err = {{0}};
        snprintf(line, sizeof(line), "#!/bin/sh\n#SBATCH %s\n", ok[i]);
        if (finalize_text(line, &s, &err) < 0)
            fail_msg("%s: %s", ok[i], err.text);
        phx_jobspec_clear(&s);
    }
}

static int build_argv(const char *text, int argc, char *const argv[], phx_jobspec_t *s,
                      phx_error_t *err)
{
    phx_script_opts_t opts = {.filename = "job.sh", .now = PHX_SCRIPTTEST_NOW};
    phx_jobspec_defaults_t def = {.work_dir = "/w", .time_limit = 60};
    return phx_script_build(text, strlen(text), argc, argv, &opts, &def,
                            &phx_scripttest_limits, s, err);
}

static void expect_build_error(const char *text, int argc, char *const argv[],
                               const char *exact)
{
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(build_argv(text, argc, argv, &s, &err), -1);
    assert_string_equal(err.text, exact);
    assert_null(s.job_name);
}

/* Every value finalize refuses is located: the line of its directive, the
 * later (and the other) of two at odds, or the command line. */
static void test_finalize_error_lines(void **state)
{
    (void)state;
    expect_build_error(
        "#!/bin/sh\n#SBATCH -J x\n\n#SBATCH --array=abc\n", 0, NULL,
        "job.sh:4: invalid array \"abc\": expected indices like 0-15, 0,6,16-32, "
        "0-15:4, optionally followed by %N");
    expect_build_error("#!/bin/sh\n#SBATCH -N 2\n#SBATCH --ntasks-per-node=2\n"
                       "#SBATCH -t 5\n#SBATCH -n 5\n",
                       0, NULL,
                       "job.sh:5: ntasks 5 exceeds ntasks-per-node 2 x nodes 2 (see "
                       "also job.sh:2, job.sh:3)");
    expect_build_error("#!/bin/sh\n#SBATCH --mail-type=END,SOMETIMES\n"
                       "#SBATCH --export=1BAD\n",
                       0, NULL, "job.sh:2: invalid mail-type \"END,SOMETIMES\"");
    expect_build_error("#!/bin/sh\n#SBATCH -t 5\n#SBATCH --export=1BAD\n", 0, NULL,
                       "job.sh:3: invalid export \"1BAD\" (ALL, NONE or "
                       "NAME[=value],...)");
    expect_build_error("#!/bin/sh\n#SBATCH -t 5\n#SBATCH --exclusive=node\n", 0, NULL,
                       "job.sh:3: invalid exclusive mode \"node\" (user, mcs, topo)");
    expect_build_error("#!/bin/sh\n#SBATCH -t 5\n#SBATCH -o out-%q.log\n", 0, NULL,
                       "job.sh:3: output: invalid pattern \"out-%q.log\": unknown "
                       "escape \"%q\"");
    expect_build_error(
        "#!/bin/sh\n#SBATCH -t 5\n\n#SBATCH -e err-%\n", 0, NULL,
        "job.sh:4: error: invalid pattern \"err-%\": unknown escape \"%\"");
    expect_build_error("#!/bin/sh\n#SBATCH --hint=nomultithread\n#SBATCH -t 5\n"
                       "#SBATCH -B 2:4\n",
                       0, NULL,
                       "job.sh:4: --hint cannot be combined with -B or "
                       "--sockets-per-node/--cores-per-socket (see also job.sh:2)");
    expect_build_error(
        "#!/bin/sh\n#SBATCH -t 5\n#SBATCH -d afterok\n", 0, NULL,
        "job.sh:3: invalid dependency \"afterok\": dependency \"afterok\" needs at "
        "least one job id");
    expect_build_error("#!/bin/sh\n#SBATCH --cpu-bind=threads\n", 0, NULL,
                       "job.sh:2: cpu-bind \"threads\": \"threads\" is not supported "
                       "(use none, cores or sockets, optionally after \"verbose,\" or "
                       "\"quiet,\")");
    /* -w, -x, -C: where the option at fault was given */
    expect_build_error("#!/bin/sh\n#SBATCH -t 5\n#SBATCH -C \"a&(b\"\n", 0, NULL,
                       "job.sh:3: --constraint \"a&(b\": ')' expected at its end");
    expect_build_error("#!/bin/sh\n#SBATCH -w n[1-3]\n#SBATCH -N 4\n", 0, NULL,
                       "job.sh:3: -N 4 asks for more nodes than --nodelist n[1-3] "
                       "names (3): other nodes are never added to a -w list");
    expect_build_error("#!/bin/sh\n#SBATCH -t 5\n#SBATCH -w n[1-3] -x n3\n", 0, NULL,
                       "job.sh:3: node n3 is both in --nodelist and in --exclude");
    expect_build_error("#!/bin/sh\n#SBATCH -t 5\n#SBATCH -w ./hosts\n", 0, NULL,
                       "job.sh:3: --nodelist \"./hosts\": a file of node names is not "
                       "supported (list the nodes, e.g. n[1-4],n7)");

    /* The command line: its values say so, and still override. */
    char *bad_array[] = {"-t", "5", "--array=1-3%0"};
    expect_build_error("#!/bin/sh\n#SBATCH --array=1-3\n", 3, bad_array,
                       "command line: invalid array \"1-3%0\": expected indices like "
                       "0-15, 0,6,16-32, 0-15:4, optionally followed by %N");
    char *more_tasks[] = {"-n", "9"};
    expect_build_error("#!/bin/sh\n#SBATCH -N 2\n#SBATCH --ntasks-per-node=2\n", 2,
                       more_tasks,
                       "command line: ntasks 9 exceeds ntasks-per-node 2 x nodes 2 "
                       "(see also job.sh:2, job.sh:3)");
    char *bind[] = {"--cpu-bind=rank"};
    expect_build_error("#!/bin/sh\n#SBATCH --cpu-bind=cores\n", 1, bind,
                       "command line: cpu-bind \"rank\": \"rank\" is not supported "
                       "(use none, cores or sockets, optionally after \"verbose,\" or "
                       "\"quiet,\")");
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    char *fix[] = {"--cpu-bind=sockets", "-n", "4"};
    assert_int_equal(build_argv("#!/bin/sh\n#SBATCH --cpu-bind=threads\n#SBATCH -n "
                                "99 -N 2 --ntasks-per-node=2\n",
                                3, fix, &s, &err),
                     0);
    assert_string_equal(s.cpu_bind, "sockets");
    assert_int_equal(s.ntasks, 4);
    phx_jobspec_clear(&s);
}

static void test_finalize_limits_and_strings(void **state)
{
    (void)state;
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    phx_jobspec_init(&s);
    s.job_name = strdup("bad\nname");
    assert_int_equal(phx_jobspec_finalize(&s, NULL, &phx_scripttest_limits, &err), -1);
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

/* A work dir and output pattern that could expand past PATH_MAX are refused
 * at submission (such a job was accepted and then pended forever, its
 * output file name too long to make), located at the pattern's or the work
 * dir's line. */
static void test_output_path_fits(void **state)
{
    (void)state;
    static char text[8192], dir[4090];
    memset(dir, 'd', sizeof(dir) - 1);
    dir[0] = '/';
    dir[sizeof(dir) - 1] = '\0';
    snprintf(text, sizeof(text), "#!/bin/sh\n#SBATCH -t 5\n#SBATCH -D %s\n", dir);
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(build_argv(text, 0, NULL, &s, &err), -1);
    assert_non_null(
        strstr(err.text, "job.sh:3: the file name from pattern \"phx-%j.out\""));
    assert_non_null(strstr(err.text, "could be longer than 4095 bytes"));
    /* a long dir that leaves room for the default name: accepted */
    dir[3700] = '\0';
    snprintf(text, sizeof(text), "#!/bin/sh\n#SBATCH -t 5\n#SBATCH -D %s\n", dir);
    if (build_argv(text, 0, NULL, &s, &err) < 0)
        fail_msg("%s", err.text);
    phx_jobspec_clear(&s);
    /* but not with the longest first node name in the pattern */
    snprintf(text, sizeof(text),
             "#!/bin/sh\n#SBATCH -t 5\n#SBATCH -D %s\n#SBATCH -e %%N.%%N.err\n", dir);
    assert_int_equal(build_argv(text, 0, NULL, &s, &err), -1);
    assert_non_null(
        strstr(err.text, "job.sh:4: the file name from pattern \"%N.%N.err\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_scripts),
        cmocka_unit_test(test_malformed_directives),
        cmocka_unit_test(test_directive_forms),
        cmocka_unit_test(test_finalize_consistency),
        cmocka_unit_test(test_unsupported_values),
        cmocka_unit_test(test_finalize_error_lines),
        cmocka_unit_test(test_output_path_fits),
        cmocka_unit_test(test_finalize_limits_and_strings),
    };
    return cmocka_run_group_tests(tests, phx_scripttest_setup, NULL);
}
