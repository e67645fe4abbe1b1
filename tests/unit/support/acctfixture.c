#include "tests/unit/support/acctfixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>

#include "tests/unit/support/sqltest.h"

/* Times are offsets from a base time (intervals: "10:00" is ten hours);
 * NULL means the job never got there. */

typedef struct step {
    const char *id, *name;
    int cpus;
    const char *start, *end;
    double user_s, sys_s;
    long long rss;
    const char *state;
    int code, sig;
} step_t;

typedef struct job {
    const char *name, *user, *account;
    int uid;
    int array_first; /* 0, or the fixture number (1-based) of the array's first task */
    int array_task;
    int nodes, ntasks, cpus_per_task, alloc_cpus;
    const char *mem_per_node; /* MiB, NULL = none */
    const char *time_limit;   /* seconds, NULL = UNLIMITED */
    const char *submit, *eligible, *start, *end;
    const char *state;
    int code, sig;
    bool steps_after_end; /* the steps' CPU times arrive after the job's end */
    step_t steps[2];
} job_t;

static const job_t fixture[] = {
    /* 1: two nodes, batch step and an MPI step: COMPLETED */
    {"sim",
     "alice",
     "physics",
     1000,
     0,
     0,
     2,
     8,
     2,
     16,
     "4096",
     "3600",
     "10:00",
     "10:00:05",
     "10:01",
     "10:31:01",
     "COMPLETED",
     0,
     0,
     false,
     {{"batch", "", 2, "10:01", "10:31:01", 1, 0.5, 10000000, "COMPLETED", 0, 0},
      {"0", "lmp", 16, "10:01:02", "10:31:00", 25000.5, 300, 2000000000, "COMPLETED", 0,
       0}}},
    /* 2: exits 3: FAILED 3:0 */
    {"fail",
     "alice",
     "physics",
     1000,
     0,
     0,
     1,
     1,
     4,
     4,
     NULL,
     "600",
     "11:00",
     NULL,
     "11:00:30",
     "11:02:30",
     "FAILED",
     3,
     0,
     false,
     {{"batch", "", 4, "11:00:30", "11:02:30", 100, 20, 50000000, "FAILED", 3, 0}}},
    /* 3: runs past its 10 minutes, SIGTERM: TIMEOUT 0:15 */
    {"long",
     "bob",
     "chem",
     1001,
     0,
     0,
     1,
     1,
     8,
     8,
     NULL,
     "600",
     "12:00",
     "12:00",
     "12:00",
     "12:10:30",
     "TIMEOUT",
     0,
     15,
     false,
     {{"batch", "", 8, "12:00", "12:10:30", 4700, 100, 1000000000, "CANCELLED", 0,
       15}}},
    /* 4: killed by the cgroup's memory limit: OUT_OF_MEMORY 0:9 */
    {"big",
     "bob",
     "chem",
     1001,
     0,
     0,
     1,
     1,
     2,
     2,
     "1024",
     "3600",
     "13:00",
     "13:00",
     "13:00:10",
     "13:05:10",
     "OUT_OF_MEMORY",
     0,
     9,
     false,
     {{"batch", "", 2, "13:00:10", "13:05:10", 250, 40, 1073741824, "OUT_OF_MEMORY", 0,
       9}}},
    /* 5: cancelled while running, over midnight; CPU times come in late */
    {"night",
     "alice",
     "bio",
     1000,
     0,
     0,
     1,
     1,
     8,
     8,
     NULL,
     NULL,
     "21:00",
     "21:00",
     "22:00",
     "1 day 02:00",
     "CANCELLED",
     0,
     15,
     true,
     {{"batch", "", 8, "22:00", "1 day 02:00", 19000, 1000, 3000000000, "CANCELLED", 0,
       15}}},
    /* 6: cancelled while pending: never charged */
    {"never", "bob",   "chem", 1001, 0,       0,           1, 1, 1,     0,    NULL,
     "60",    "14:00", NULL,   NULL, "14:30", "CANCELLED", 0, 0, false, {{0}}},
    /* 7-9: array sweep 0-2 of carol's */
    {"sweep",
     "carol",
     "physics",
     1002,
     7,
     0,
     1,
     1,
     1,
     1,
     NULL,
     "1200",
     "15:00",
     "15:00",
     "15:00",
     "15:10",
     "COMPLETED",
     0,
     0,
     false,
     {{"batch", "", 1, "15:00", "15:10", 500, 0, 1000000, "COMPLETED", 0, 0}}},
    {"sweep",
     "carol",
     "physics",
     1002,
     7,
     1,
     1,
     1,
     1,
     1,
     NULL,
     "1200",
     "15:00",
     "15:00",
     "15:00",
     "15:05",
     "FAILED",
     1,
     0,
     false,
     {{"batch", "", 1, "15:00", "15:05", 200, 0, 2000000, "FAILED", 1, 0}}},
    {"sweep",
     "carol",
     "physics",
     1002,
     7,
     2,
     1,
     1,
     1,
     1,
     NULL,
     "1200",
     "15:00",
     "15:10",
     "15:10",
     "15:20",
     "COMPLETED",
     0,
     0,
     false,
     {{"batch", "", 1, "15:10", "15:20", 550, 0, 3000000, "COMPLETED", 0, 0}}},
    /* 10: pending */
    {"queued", "bob",   "chem",  1001, 0,    0,         1, 1, 1,     0,    NULL,
     "60",     "16:00", "16:00", NULL, NULL, "PENDING", 0, 0, false, {{0}}},
};
#define NFIXTURE (sizeof(fixture) / sizeof(fixture[0]))

static void step_start(phx_db_conn_t *c, const char *base, const char *id,
                       const step_t *s)
{
    char cpus[16];
    snprintf(cpus, sizeof(cpus), "%d", s->cpus);
    const char *p[] = {base, id, s->id, s->name, s->start, cpus};
    phx_db_result_destroy(phx_sqltest_query(
        c,
        "INSERT INTO job_steps (job_id, step_id, name, start_time, ntasks, "
        "nnodes, node_list, alloc_cpus) VALUES ($2, $3, $4, "
        "$1::timestamptz + $5::interval, 1, 1, 'n01', $6)",
        6, p));
}

static void step_end(phx_db_conn_t *c, const char *base, const char *id,
                     const step_t *s)
{
    char user[32], sys[32], rss[32], code[16], sig[16];
    snprintf(user, sizeof(user), "%.3f", s->user_s);
    snprintf(sys, sizeof(sys), "%.3f", s->sys_s);
    snprintf(rss, sizeof(rss), "%lld", s->rss);
    snprintf(code, sizeof(code), "%d", s->code);
    snprintf(sig, sizeof(sig), "%d", s->sig);
    const char *p[] = {base, id, s->id, s->end, s->state, code, sig, user, sys, rss};
    phx_db_result_destroy(phx_sqltest_query(
        c,
        "UPDATE job_steps SET end_time = $1::timestamptz + $4::interval, state = "
        "$5::text, "
        "exit_code = $6, exit_signal = $7, user_cpu_s = $8, system_cpu_s = $9, "
        "max_rss_bytes = $10 WHERE job_id = $2 AND step_id = $3",
        10, p));
}

void phx_acctfixture_load(phx_db_conn_t *c, const char *base)
{
    char ids[NFIXTURE][24];
    for (size_t i = 0; i < NFIXTURE; i++) {
        const job_t *j = &fixture[i];
        char uid[16], nodes[16], ntasks[16], cpt[16], cpus[16], task[16], code[16],
            sig[16];
        snprintf(uid, sizeof(uid), "%d", j->uid);
        snprintf(nodes, sizeof(nodes), "%d", j->nodes);
        snprintf(ntasks, sizeof(ntasks), "%d", j->ntasks);
        snprintf(cpt, sizeof(cpt), "%d", j->cpus_per_task);
        snprintf(cpus, sizeof(cpus), "%d", j->alloc_cpus);
        snprintf(task, sizeof(task), "%d", j->array_task);
        snprintf(code, sizeof(code), "%d", j->code);
        snprintf(sig, sizeof(sig), "%d", j->sig);
        const char *array_of = j->array_first && j->array_task ? ids[j->array_first - 1]
                               : j->array_first                ? ""
                                                               : NULL;
        /* submission: PENDING */
        const char *p[] = {base,       j->name,
                           j->user,    uid,
                           j->account, j->time_limit,
                           nodes,      ntasks,
                           cpt,        j->mem_per_node,
                           j->submit,  j->eligible,
                           array_of,   array_of ? task : NULL};
        phx_db_result_t *res = phx_sqltest_query(
            c,
            "WITH n AS (SELECT nextval('jobs_id_seq') AS id) "
            "INSERT INTO jobs (id, array_job_id, array_task_id, array_spec, name, uid, "
            "gid, user_name, group_name, account, partition, qos, spec, script, "
            "work_dir, submit_dir, submit_line, submit_host, time_limit, nodes_min, "
            "nodes_max, ntasks, cpus_per_task, mem_per_node, submit_time, "
            "eligible_time) "
            "SELECT n.id, CASE WHEN $13::text IS NULL THEN NULL "
            "  ELSE coalesce(nullif($13::text, '')::bigint, n.id) END, $14::integer, "
            "  CASE WHEN $13::text IS NULL THEN NULL ELSE '0-2' END, $2::text, "
            "  $4::integer, 100, $3::text, 'users', $5::text, 'batch', 'normal', "
            "  jsonb_build_object('job_name', $2::text), '#!/bin/sh', '/home/' || "
            "$3::text, "
            "  '/home/' || $3::text, 'phx submit ' || $2::text || '.sh', 'login1', "
            "$6::integer, "
            "  $7::integer, $7::integer, $8::integer, $9::integer, $10::bigint, "
            "  $1::timestamptz + $11::interval, $1::timestamptz + $12::interval "
            "FROM n RETURNING id",
            14, p);
        snprintf(ids[i], sizeof(ids[i]), "%s", phx_db_result_get(res, 0, 0));
        phx_db_result_destroy(res);
        if (j->start) { /* started: RUNNING with its allocation, steps begin */
            const char *q[] = {base, ids[i], j->start, nodes, cpus};
            phx_db_result_destroy(phx_sqltest_query(
                c,
                "UPDATE jobs SET state = 'RUNNING', reason = 'None', start_time = "
                "$1::timestamptz + $3::interval, node_list = CASE WHEN $4::int > 1 "
                "THEN 'n[01-0' || $4 || ']' ELSE 'n01' END, alloc_nodes = $4::int, "
                "alloc_cpus = $5::int, alloc_mem = mem_per_node * $4::int "
                "WHERE id = $2",
                5, q));
            for (int s = 0; s < 2 && j->steps[s].id; s++)
                step_start(c, base, ids[i], &j->steps[s]);
            for (int s = 0; s < 2 && j->steps[s].id && !j->steps_after_end; s++)
                step_end(c, base, ids[i], &j->steps[s]);
        }
        if (j->end) { /* the end: final state, exit code */
            const char *q[] = {base, ids[i], j->state, j->end, code, sig};
            phx_db_result_destroy(
                phx_sqltest_query(c,
                                  "UPDATE jobs SET state = $3::text, end_time = "
                                  "$1::timestamptz + $4::interval, "
                                  "exit_code = $5::int, exit_signal = $6::int, "
                                  "cancel_uid = CASE WHEN $3::text "
                                  "= 'CANCELLED' THEN uid END WHERE id = $2",
                                  6, q));
        }
        for (int s = 0; s < 2 && j->steps[s].id && j->steps_after_end; s++)
            step_end(c, base, ids[i], &j->steps[s]);
    }
}

phx_db_conn_t *phx_acctfixture_db(void)
{
    phx_db_conn_t *c = phx_sqltest_fresh_db();
    phx_sqltest_exec_ok(c, "SET TimeZone = 'UTC'");
    phx_acctfixture_load(c, PHX_ACCTFIXTURE_BASE);
    return c;
}
