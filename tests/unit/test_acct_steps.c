/* Numbered steps as phx-master records them (daemons/master/step_record.c,
 * included here for its file-local helpers): a step's outcome from its
 * tasks' exits, its name (cut between UTF-8 characters, bad bytes made '?')
 * and node list; and, against a private PostgreSQL with every migration
 * applied and the accounting fixture (tests/unit/support/acctfixture.h)
 * loaded, the record that finds the step's job through its gang, a late or
 * requeued run, the close of steps a restarted master left running, names
 * the database refuses, the job's CPU charge and who may read the steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemons/master/step_record.c"
#include "db/db.h"
#include "tests/unit/support/acctfixture.h"
#include "tests/unit/support/sqltest.h"

#define E2     "\xc3\xa9\xc3\xa9" /* "éé" */
#define E10    E2 E2 E2 E2 E2
#define E30    E10 E10 E10
#define E31    E30 "\xc3\xa9"
#define CLEF   "\xf0\x9d\x84\x9e" /* U+1D11E */
#define CLEF5  CLEF CLEF CLEF CLEF CLEF
#define CLEF15 CLEF5 CLEF5 CLEF5
#define CLEF16 CLEF15 CLEF

static void test_step_outcome(void **state)
{
    (void)state;
    int code, sig;
    const struct {
        int max_code, max_sig;
        bool aborted;
        int abort_code;
        phx_step_cause_t cause;
        const char *state;
        int code, sig;
    } cases[] = {
        {0, 0, false, 0, PHX_STEP_CAUSE_NONE, "COMPLETED", 0, 0},
        {3, 0, false, 0, PHX_STEP_CAUSE_NONE, "FAILED", 3, 0},
        {0, 9, false, 0, PHX_STEP_CAUSE_NONE, "FAILED", 0, 9},
        {1, 9, true, 42, PHX_STEP_CAUSE_NONE, "FAILED", 42, 0},  /* MPI_Abort(42) */
        {0, 9, true, 300, PHX_STEP_CAUSE_NONE, "FAILED", 44, 0}, /* as exit() */
        {0, 9, true, 130, PHX_STEP_CAUSE_CANCEL, "CANCELLED", 0, 9},
        {0, 15, true, 137, PHX_STEP_CAUSE_NODE_FAIL, "NODE_FAIL", 0, 15},
        {999, 999, false, 0, PHX_STEP_CAUSE_NONE, "FAILED", 255, 127},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *st =
            phx_step_rec_outcome(cases[i].max_code, cases[i].max_sig, cases[i].aborted,
                                 cases[i].abort_code, cases[i].cause, &code, &sig);
        assert_string_equal(st, cases[i].state);
        assert_int_equal(code, cases[i].code);
        assert_int_equal(sig, cases[i].sig);
    }
    phx_step_rec_t r = {0};
    phx_step_rec_set_name(&r, "/usr/bin/python3");
    assert_string_equal(r.name, "python3");
    phx_step_rec_set_name(&r, "lmp");
    assert_string_equal(r.name, "lmp");
    phx_step_rec_set_name(&r, NULL);
    assert_string_equal(r.name, "");
    /* Names are bytes: cut between UTF-8 characters, bad bytes become '?'. */
    const struct {
        const char *argv0, *name;
    } names[] = {
        {"/bin/\xe2\x82\xac", "\xe2\x82\xac"},
        {"ab" E31, "ab" E30}, /* 64 bytes: the last é does not fit */
        {"a\xff"
         "b" E31,
         "a?b" E30},                  /* 63 bytes once the 0xff is a '?' */
        {CLEF16, CLEF15},             /* 4-byte characters */
        {"x\xc0\xafy", "x??y"},       /* overlong '/' */
        {"\xed\xa0\x80", "???"},      /* a UTF-16 surrogate */
        {"\xf4\x90\x80\x80", "????"}, /* past U+10FFFF */
        {"ok\xe2\x82", "ok??"},       /* cut short */
        {"\x80z\xfe", "?z?"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        phx_step_rec_set_name(&r, names[i].argv0);
        if (strcmp(r.name, names[i].name) != 0)
            fail_msg("name %zu: \"%s\", want \"%s\"", i, r.name, names[i].name);
    }
    phx_step_rec_add_node(&r, "n01");
    phx_step_rec_add_node(&r, "n02");
    assert_string_equal(r.node_list, "n01,n02");
    for (int i = 0; i < 400; i++) /* bounded: a cut list ends in "+" */
        phx_step_rec_add_node(&r, "node1234");
    size_t len = strlen(r.node_list);
    assert_true(len < sizeof(r.node_list));
    assert_int_equal(r.node_list[len - 1], '+');
    /* Running: no end, exit or usage; ended: all of them. */
    phx_step_rec_params_t p;
    r.gang_id = 7;
    r.number = 2;
    r.start = 100.5;
    r.end = -1;
    phx_step_rec_params(&r, &p);
    assert_string_equal(p.p[0], "7");
    assert_string_equal(p.p[1], "2");
    assert_string_equal(p.p[3], "RUNNING");
    assert_null(p.p[5]);
    assert_null(p.p[10]);
    assert_null(p.p[12]);
    assert_string_equal(p.p[15], "0"); /* no GPU */
    r.end = 99;                        /* a clock step back: never before the start */
    r.state = "FAILED";
    r.exit_code = 3;
    r.have_usage = true;
    r.user_s = 1.25;
    r.max_rss = 4096;
    r.alloc_gpus = 2;
    phx_step_rec_params(&r, &p);
    assert_string_equal(p.p[15], "2");
    assert_string_equal(p.p[5], "100.500000");
    assert_string_equal(p.p[10], "3");
    assert_string_equal(p.p[11], "0");
    assert_string_equal(p.p[12], "1.250000");
    assert_string_equal(p.p[14], "4096");
    /* the cut list goes as it is; a whole one compressed as Slurm does */
    assert_int_equal(p.p[8][strlen(p.p[8]) - 1], '+');
    phx_step_rec_t q = {0};
    phx_step_rec_add_node(&q, "n03");
    phx_step_rec_add_node(&q, "n01");
    phx_step_rec_add_node(&q, "n02");
    phx_step_rec_add_node(&q, "login1");
    phx_step_rec_params(&q, &p);
    assert_string_equal(p.p[8], "n[01-03],login1");
}

/* Record a step of argv0 as the master does: "job|linkable", the job id it
 * found ("" for none) and whether a job may still come (t/f). */
static const char *record_named(phx_db_conn_t *c, int64_t gang, int number,
                                const char *state, double user_s, const char *argv0,
                                char *buf, size_t len)
{
    phx_step_rec_t r = {.gang_id = gang,
                        .number = number,
                        .ntasks = 4,
                        .nnodes = 2,
                        .alloc_cpus = 4,
                        .alloc_gpus = 3,
                        .state = state};
    phx_step_rec_set_name(&r, argv0);
    phx_step_rec_add_node(&r, "n01");
    phx_step_rec_add_node(&r, "n02");
    r.start = 1709290800; /* 2024-03-01 11:00 UTC */
    r.end = strcmp(state, "RUNNING") == 0 ? -1 : r.start + 60;
    if (r.end >= 0) {
        r.have_usage = true;
        r.user_s = user_s;
        r.system_s = 0.5;
        r.max_rss = 1 << 20;
    }
    phx_step_rec_params_t p;
    phx_step_rec_params(&r, &p);
    phx_db_result_t *res =
        phx_sqltest_query(c, phx_step_rec_sql, PHX_STEP_REC_NPARAMS, p.p);
    assert_int_equal(phx_db_result_rows(res), 1);
    snprintf(buf, len, "%s|%s", phx_db_result_get(res, 0, 0),
             phx_db_result_get(res, 0, 1));
    phx_db_result_destroy(res);
    return buf;
}

/* The job id the record found, "" for none. */
static const char *record_step(phx_db_conn_t *c, int64_t gang, int number,
                               const char *state, double user_s, char *buf, size_t len)
{
    record_named(c, gang, number, state, user_s, "/opt/lmp", buf, len);
    *strchr(buf, '|') = '\0';
    return buf;
}

/* A restarted master closes the numbered steps left running (CANCELLED, end
 * now, never before the start), nothing else.  Job 10 has step 0 of gang 4
 * running and step 1 ended; phx_daemon. */
static void test_step_close(phx_db_conn_t *c)
{
    char buf[1024];
    const char *p[] = {"CANCELLED"};
    assert_string_equal(record_step(c, 4, 2, "RUNNING", 0, buf, sizeof(buf)), "10");
    phx_sqltest_as_role(c, NULL);
    phx_sqltest_exec_ok(c, "UPDATE job_steps SET start_time = now() + interval '1 day' "
                           "WHERE job_id = 10 AND step_id = '2'"); /* a clock ahead */
    /* not the master's: phx-batchd's batch step, a numbered step without a
     * gang (written by hand), an extern step */
    phx_sqltest_exec_ok(
        c, "INSERT INTO job_steps (job_id, step_id, name, state, start_time, "
           "ntasks, nnodes, node_list, alloc_cpus, gang_id) SELECT 10, s, s, "
           "'RUNNING', now() - interval '1 hour', 1, 1, 'n01', 1, g FROM (VALUES "
           "('batch', NULL), ('7', NULL), ('extern', 4)) v (s, g)");
    phx_sqltest_as_role(c, "phx_daemon");
    phx_db_result_t *res = phx_sqltest_query(c, phx_step_rec_close_sql, 1, p);
    assert_int_equal(phx_db_result_affected(res), 2);
    phx_db_result_destroy(res);
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT string_agg(concat_ws('|', step_id, state, CASE WHEN end_time IS "
            "NULL THEN 'open' WHEN end_time = start_time THEN 'start' WHEN end_time "
            "BETWEEN now() - interval '1 minute' AND now() THEN 'now' ELSE 'before' "
            "END), ' ' ORDER BY step_id) FROM job_steps WHERE job_id = 10",
            buf, sizeof(buf)),
        "0|CANCELLED|now 1|COMPLETED|before 2|CANCELLED|start 7|RUNNING|open "
        "batch|RUNNING|open extern|RUNNING|open");
    res = phx_sqltest_query(c, phx_step_rec_close_sql, 1, p); /* nothing left */
    assert_int_equal(phx_db_result_affected(res), 0);
    phx_db_result_destroy(res);
    phx_sqltest_as_role(c, NULL);
    phx_sqltest_exec_ok(
        c, "DELETE FROM job_steps WHERE job_id = 10 AND step_id IN ('2', '7', "
           "'batch', 'extern')");
    phx_sqltest_as_role(c, "phx_daemon");
}

/* A long program name of multibyte characters and a byte that is not
 * UTF-8: recorded (cut between characters, the byte a '?'), where the bytes
 * as they came are refused for good (SQLSTATE 22021: no retry). */
static void test_step_bad_names(phx_db_conn_t *c)
{
    char buf[1024];
    assert_string_equal(record_named(c, 4, 5, "COMPLETED", 1.0,
                                     "/opt/a\xff"
                                     "b" E31,
                                     buf, sizeof(buf)),
                        "10|t");
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT concat_ws('|', job_name = 'a?b' || repeat('\xc3\xa9', 30), "
            "octet_length(job_name), state) FROM acct_steps WHERE job_id = 10 AND "
            "step_id = '5'",
            buf, sizeof(buf)),
        "t|63|COMPLETED");
    phx_step_rec_t r = {.gang_id = 4, .number = 5, .state = "RUNNING", .end = -1};
    phx_step_rec_params_t p;
    phx_error_t err = {{0}};
    char st[6];
    phx_step_rec_params(&r, &p);
    p.p[2] = "ab" E30 "\xc3"; /* what a cut in a character left */
    assert_int_equal(
        phx_db_query(c, phx_step_rec_sql, PHX_STEP_REC_NPARAMS, p.p, NULL, &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "22021");
    assert_true(phx_step_rec_permanent(st));
    assert_true(phx_step_rec_permanent("23505"));
    assert_false(phx_step_rec_permanent("40001")); /* serialization: retried */
    assert_false(phx_step_rec_permanent("08006")); /* connection lost: retried */
    assert_false(phx_step_rec_permanent(NULL));
    phx_sqltest_as_role(c, NULL);
    phx_sqltest_exec_ok(c, "DELETE FROM job_steps WHERE job_id = 10 AND step_id = '5'");
    phx_sqltest_as_role(c, "phx_daemon");
}

static void test_step_records(void **state)
{
    (void)state;
    char buf[1024];
    phx_db_conn_t *c = phx_acctfixture_db();
    /* Job 10 (bob) runs in gang 1 of phx-batchd's framework; a framework of
     * another user has a task of the same id in its gang 2. */
    phx_sqltest_exec_ok(
        c, "INSERT INTO agents (name, topology, sockets, numas, cores, pus, "
           "memory_bytes) VALUES ('n01', '{}', 1, 1, 4, 4, 0)");
    phx_sqltest_exec_ok(
        c, "INSERT INTO frameworks (id, name, user_name) VALUES "
           "('fw-b', 'phx-batchd', 'root'), ('fw-m', 'phx-batchd', 'mallory'), "
           "('fw-s', 'spark', 'carol'), ('fw-o', 'old-batch', 'root')");
    phx_sqltest_exec_ok(c,
                        "INSERT INTO gangs (id, framework_id, ntasks, nagents) VALUES "
                        "(1, 'fw-b', 2, 2), (2, 'fw-m', 1, 1), (4, 'fw-b', 1, 1), "
                        "(5, 'fw-s', 1, 1), (6, 'fw-o', 1, 1)");
    phx_sqltest_exec_ok(
        c, "INSERT INTO tasks (framework_id, task_id, gang_id, agent_id, user_name, "
           "uid, cores, cpus, memory_bytes, command) SELECT f, t, g, a.id, 'bob', "
           "1001, '0', 1, 0, '{}' FROM agents a, (VALUES ('fw-b', '10.0', 1), "
           "('fw-b', '10.1', 1), ('fw-m', '10.0', 2), ('fw-b', '10.r1.0', 4), "
           "('fw-s', '10.0', 5), ('fw-o', 'w1', 6)) v (f, t, g)");
    /* fw-o ran job 6 once (under another name): it runs batch jobs */
    phx_sqltest_exec_ok(c,
                        "UPDATE jobs SET framework_id = 'fw-o', batch_task_id = 'w0' "
                        "WHERE id = 6");
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET state = 'RUNNING', start_time = '" PHX_ACCTFIXTURE_BASE
           "'::timestamptz "
           "+ interval '10:59', node_list = 'n[01-02]', alloc_nodes = 2, "
           "alloc_cpus = 4, framework_id = 'fw-b', batch_task_id = '10.0' "
           "WHERE id = 10");
    phx_sqltest_as_role(c, "phx_daemon");
    assert_string_equal(record_step(c, 1, 0, "RUNNING", 0, buf, sizeof(buf)), "10");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobid, job_name, state, exit_code, "
                         "ntasks, alloc_nodes, node_list, alloc_cpus, \"end\" IS "
                         "NULL, user_name) FROM acct_steps WHERE job_id = 10",
                         buf, sizeof(buf)),
        "10.0|lmp|RUNNING|0:0|4|2|n[01-02]|4|t|bob");
    /* Its GPUs (016): alloc_gpus and sacct's AllocTRES of the step. */
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT concat_ws('|', alloc_gpus, alloc_tres) FROM acct_steps "
            "WHERE job_id = 10",
            buf, sizeof(buf)),
        "3|cpu=4,node=2,gres/gpu=3");
    /* A batch step's: those of the run's task on its node, else the first's. */
    assert_string_equal(
        phx_sqltest_rows(
            c,
            "SELECT concat_ws('|', acct_batch_gpus(t, 'n02'), "
            "acct_batch_gpus(t, 'n09'), acct_batch_gpus(NULL, 'n01'), "
            "acct_batch_gpus('[{\"host\": \"n01\"}]', 'n01')) FROM (SELECT "
            "'[{\"host\": \"n01\", \"gpus\": [0]}, {\"host\": \"n02\", "
            "\"gpus\": [1, 2]}]'::jsonb AS t) v",
            buf, sizeof(buf)),
        "2|1|0|0");
    /* Not the job's: the other framework's gang, or no gang at all. */
    assert_string_equal(record_step(c, 2, 1, "RUNNING", 0, buf, sizeof(buf)), "");
    assert_string_equal(record_step(c, 3, 1, "RUNNING", 0, buf, sizeof(buf)), "");
    /* No job will ever come (no retries) only for a gang, visible, of a
     * framework that never ran a batch job and is not named phx-batchd
     * (whose first job's link may still be on its way). */
    const struct {
        int64_t gang;
        const char *want;
    } links[] = {{1, "10|t"}, {2, "|t"}, {3, "|t"}, {5, "|f"}, {6, "|t"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        assert_string_equal(
            record_named(c, links[i].gang, 0, "RUNNING", 0, "lmp", buf, sizeof(buf)),
            links[i].want);
    /* The end; a late RUNNING record of the same run changes nothing. */
    assert_string_equal(record_step(c, 1, 0, "FAILED", 2.0, buf, sizeof(buf)), "10");
    assert_string_equal(record_step(c, 1, 0, "RUNNING", 0, buf, sizeof(buf)), "10");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', jobid, state, exit_code, elapsed_s, "
                         "cpu_time_s, total_cpu_s, max_rss_bytes) FROM acct_steps "
                         "WHERE job_id = 10",
                         buf, sizeof(buf)),
        "10.0|FAILED|0:0|60|240|2.5|1048576");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', alloc_gpus, gpu_time_s) "
                         "FROM acct_steps WHERE job_id = 10",
                         buf, sizeof(buf)),
        "3|180");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT concat_ws('|', nsteps, total_cpu_s) FROM acct_jobs "
                         "WHERE job_id = 10",
                         buf, sizeof(buf)),
        "1|2.5");
    assert_string_equal(record_step(c, 1, 1, "COMPLETED", 1.0, buf, sizeof(buf)), "10");
    /* Requeued: the new run (gang 4) replaces the old run's step 0; the old
     * gang is not the job's any more. */
    phx_sqltest_as_role(c, NULL);
    phx_sqltest_exec_ok(c, "UPDATE jobs SET batch_task_id = '10.r1.0' WHERE id = 10");
    phx_sqltest_as_role(c, "phx_daemon");
    assert_string_equal(record_step(c, 4, 0, "RUNNING", 0, buf, sizeof(buf)), "10");
    assert_string_equal(record_step(c, 1, 2, "RUNNING", 0, buf, sizeof(buf)), "");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(concat_ws('|', jobid, state), ' ' ORDER "
                         "BY step_order) FROM acct_steps WHERE job_id = 10",
                         buf, sizeof(buf)),
        "10.0|RUNNING 10.1|COMPLETED");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(gang_id::text, ' ' ORDER BY step_id) "
                         "FROM job_steps WHERE job_id = 10",
                         buf, sizeof(buf)),
        "4 1");
    test_step_close(c);
    test_step_bad_names(c);
    phx_sqltest_as_role(c, NULL);
    /* The job's end charges its steps' CPU (step 1's; the new step 0 has
     * reported none yet). */
    phx_sqltest_exec_ok(
        c, "CREATE TEMP TABLE before AS SELECT total_cpu_s FROM usage_daily "
           "WHERE user_name = 'bob' AND day = '2024-03-01'");
    phx_sqltest_exec_ok(
        c, "UPDATE jobs SET state = 'COMPLETED', end_time = start_time + interval "
           "'2 minutes', exit_code = 0, exit_signal = 0 WHERE id = 10");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT u.total_cpu_s - b.total_cpu_s FROM usage_daily u, "
                         "before b WHERE u.user_name = 'bob' AND u.day = "
                         "'2024-03-01'",
                         buf, sizeof(buf)),
        "1.5");
    /* Row-level security: the owner's steps only. */
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('alice')");
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('bob')");
    phx_sqltest_as_role(c, "alice");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT (SELECT count(*) FROM acct_steps WHERE job_id = "
                         "10) || '/' || (SELECT count(*) FROM job_steps WHERE "
                         "job_id = 10)",
                         buf, sizeof(buf)),
        "0/0");
    phx_sqltest_exec_refused(
        c, "UPDATE job_steps SET state = 'COMPLETED' WHERE job_id = 10", "42501");
    phx_sqltest_as_role(c, "bob");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT string_agg(jobid, ' ' ORDER BY step_order) FROM "
                         "acct_steps WHERE job_id = 10",
                         buf, sizeof(buf)),
        "10.0 10.1");
    phx_sqltest_as_role(c, "phx_accountant");
    assert_string_equal(
        phx_sqltest_rows(c, "SELECT count(*) FROM acct_steps WHERE job_id = 10", buf,
                         sizeof(buf)),
        "2");
    phx_sqltest_exec_refused(c, "DELETE FROM job_steps WHERE job_id = 10", "42501");
    phx_sqltest_as_role(c, NULL);
    phx_db_conn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_outcome),
        cmocka_unit_test(test_step_records),
    };
    return cmocka_run_group_tests(tests, phx_sqltest_setup, phx_sqltest_teardown);
}
