/* batchd: a job's choice of nodes by name and feature (-w, -x, -C) as the
 * script parser and finalize read it (daemons/batchd/jobnodes.c): the lists
 * made canonical, -w's node count, the constraint grammar and its errors.
 * The daemon's side (features, bitmaps, placement): test_batch_nodesel.c. */
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

static int build(const char *text, phx_jobspec_t *s, phx_error_t *err)
{
    phx_script_opts_t o = {.filename = "job.sh", .now = 1700000000};
    phx_jobspec_defaults_t def = {
        .job_name = "job", .work_dir = "/tmp", .time_limit = 60};
    phx_jobspec_limits_t lim = {.max_array_index = 1000};
    return phx_script_build(text, strlen(text), 0, NULL, &o, &def, &lim, s, err);
}

static void build_ok(const char *text, phx_jobspec_t *s)
{
    phx_error_t err = {{0}};
    if (build(text, s, &err) < 0)
        fail_msg("build: %s", err.text);
}

/* -w names the job's nodes, compressed and each once; -N follows it. */
static void nodelist_sets_the_node_count(void **state)
{
    (void)state;
    phx_jobspec_t s;
    build_ok("#!/bin/sh\n#SBATCH -w n3,n[1-2],n1\n", &s);
    assert_string_equal(s.nodelist, "n[1-3]");
    assert_int_equal(s.nodes_min, 3);
    assert_int_equal(s.nodes_max, 3);
    assert_int_equal(s.ntasks, 3); /* a task per node by default */
    phx_jobspec_clear(&s);
    /* a smaller -N, or a range, is raised to the list (as sbatch does) */
    build_ok("#!/bin/sh\n#SBATCH -N 1-5\n#SBATCH --nodelist=n[1-2]\n#SBATCH -n 8\n",
             &s);
    assert_int_equal(s.nodes_min, 2);
    assert_int_equal(s.nodes_max, 2);
    assert_int_equal(s.ntasks, 8);
    phx_jobspec_clear(&s);
    build_ok("#!/bin/sh\n#SBATCH --exclude=b2,b1 -C \"ib&(skl|icl)\"\n", &s);
    assert_string_equal(s.exclude, "b[1-2]");
    assert_string_equal(s.constraint, "ib&(skl|icl)");
    assert_null(s.nodelist);
    assert_int_equal(s.nodes_min, 1);
    phx_jobspec_clear(&s);
}

static void build_refused(const char *text, const char *want)
{
    phx_jobspec_t s;
    phx_error_t err = {{0}};
    assert_int_equal(build(text, &s, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("expected \"%s\" in \"%s\"", want, err.text);
}

static void bad_lists_refused(void **state)
{
    (void)state;
    build_refused("#!/bin/sh\n#SBATCH -w n[1-2\n", "job.sh:2: --nodelist: ");
    build_refused("#!/bin/sh\n#SBATCH -x n[2-1]\n", "job.sh:2: --exclude: ");
    build_refused("#!/bin/sh\n#SBATCH -w n[1-2]\n#SBATCH -x n[2-3]\n",
                  "node n2 is both in --nodelist and in --exclude");
    build_refused("#!/bin/sh\n#SBATCH -N 3 -w n[1-2]\n",
                  "-N 3 asks for more nodes than --nodelist n[1-2] names (2)");
    build_refused("#!/bin/sh\n#SBATCH -w n[1-3] -n 2\n",
                  "job.sh:2: --nodelist n[1-3] names 3 nodes, more than the 2 tasks of "
                  "-n (each node runs one at least)");
    build_refused("#!/bin/sh\n#SBATCH -w /etc/hosts\n", "a file of node names");
}

/* The constraint's OR of ANDs, over names given bits in turn. */
static size_t compile(const char *text, uint64_t *t)
{
    size_t n;
    phx_error_t err = {{0}};
    if (phx_constraint_compile(text, NULL, 0, t, &n, &err) < 0)
        fail_msg("compile \"%s\": %s", text, err.text);
    return n;
}

static void constraint_grammar(void **state)
{
    (void)state;
    uint64_t t[PHX_CONSTRAINT_TERMS];
    assert_int_equal(compile("a", t), 1);
    assert_int_equal(t[0], 1);
    assert_int_equal(compile("a&b|c", t), 2); /* & binds closer */
    assert_int_equal(t[0], 3);
    assert_int_equal(t[1], 4);
    assert_int_equal(compile("(a|b)&c", t), 2);
    assert_int_equal(t[0], 5);
    assert_int_equal(t[1], 6);
    assert_int_equal(compile("a&a|a", t), 1); /* the same term once */
    assert_int_equal(compile("(a|b)&(c|d)&(e|f)", t), 8);
    assert_int_equal(compile("x.y-z_1", t), 1);
    /* a node matches when it has every feature of one term */
    compile("a&b|c", t);
    assert_true(phx_constraint_match(t, 2, 3));
    assert_true(phx_constraint_match(t, 2, 4 | 8));
    assert_false(phx_constraint_match(t, 2, 1));
    assert_false(phx_constraint_match(t, 0, UINT64_MAX)); /* no term: nothing */
}

static void constraint_refused(const char *text, const char *want)
{
    uint64_t t[PHX_CONSTRAINT_TERMS];
    size_t n;
    phx_error_t err = {{0}};
    assert_int_equal(phx_constraint_compile(text, NULL, 0, t, &n, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("\"%s\": expected \"%s\" in \"%s\"", text, want, err.text);
}

static void constraint_errors(void **state)
{
    (void)state;
    constraint_refused("", "--constraint: empty");
    constraint_refused("a&", "a feature name expected at its end");
    constraint_refused("&a", "a feature name expected at character 1 ('&')");
    constraint_refused("a||b", "a feature name expected at character 3 ('|')");
    constraint_refused("(a|b", "')' expected at its end");
    constraint_refused("a)", "unbalanced ')' at character 2");
    constraint_refused("a b", "'&', '|' or the end expected at character 2");
    constraint_refused("[a|b]", "matching OR ([a|b]) and node counts (a*2) are not "
                                "supported");
    constraint_refused("a*2", "not supported at character 2");
    constraint_refused("a,b", "',' is not an operator (use '&' for AND)");
    char longname[80];
    memset(longname, 'x', 65);
    longname[65] = '\0';
    constraint_refused(longname, "a feature name is at most 64 characters");
    char deep[80] = "";
    for (int i = 0; i < 33; i++)
        strcat(deep, "(");
    constraint_refused(deep, "parentheses nested too deep");
    /* 2^7 alternatives */
    constraint_refused("(a|b)&(c|d)&(e|f)&(g|h)&(i|j)&(k|l)&(m|n)",
                       "too many alternatives");
    /* with the site's names: an unknown one is named, with the known */
    const char *names[] = {"ib", "skl"};
    uint64_t t[PHX_CONSTRAINT_TERMS];
    size_t n;
    phx_error_t err = {{0}};
    assert_int_equal(phx_constraint_compile("skl&ib", names, 2, t, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(t[0], 3);
    assert_int_equal(phx_constraint_compile("skl&gpu", names, 2, t, &n, &err), -1);
    assert_string_equal(err.text, "--constraint \"skl&gpu\": no node has feature "
                                  "\"gpu\" (the features are: ib, skl)");
    /* a job's constraint after the site dropped a feature: only the terms
     * with that feature drop out */
    assert_int_equal(phx_constraint_compile_now("skl|gpu", names, 2, t), 1);
    assert_int_equal(t[0], 2);
    assert_int_equal(phx_constraint_compile_now("(gpu|ib)&skl", names, 2, t), 1);
    assert_int_equal(t[0], 3);
    assert_int_equal(phx_constraint_compile_now("gpu&skl", names, 2, t), 0);
    assert_int_equal(phx_constraint_compile_now("gpu", names, 0, t), 0); /* none */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nodelist_sets_the_node_count),
        cmocka_unit_test(bad_lists_refused),
        cmocka_unit_test(constraint_grammar),
        cmocka_unit_test(constraint_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
