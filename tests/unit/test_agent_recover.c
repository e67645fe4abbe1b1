/* Survival and recovery of tasks across restarts of the real phx-agent
 * binary ($BUILD/bin/phx-agent), driven by the fake master of
 * tests/unit/support/agentharness.h: real processes, real cgroups v1, a real
 * user, real munge credentials.  Needs root.
 *
 * Tasks outlive an agent killed with SIGKILL, and the next agent reports how
 * they ended, also the end of one that ended while no agent ran; an agent
 * adopts the tasks of an older one that kept its records elsewhere; a
 * status is sent again until acknowledged, also by the next agent; SIGTERM
 * stops the agent and leaves its tasks running; the same task id in two
 * frameworks is two tasks, across a restart too; the pids cgroups of an
 * older agent are removed; pooled cgroups outlive no agent, and the
 * counters of a reused one survive a restart.  Task execution: test_agent_exec.c. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/support/agentharness.h"

#define IDMAX 128 /* longest task and framework ids */

static phx_agentharness_t *const H = &phx_agentharness;

static void test_agent_killed_task_survives(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_go_task("v-run", 7),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("v-run", "TASK_RUNNING", 10));
    phx_agentharness_launch(phx_agentharness_go_task("v-down", 3),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("v-down", "TASK_RUNNING", 10));
    phx_agentharness_agent_kill9();
    phx_agentharness_go("v-down"); /* v-down ends while no agent runs */
    phx_agentharness_wait_exit_record(PHX_AGENTHARNESS_KEY("v-down"), 20);
    phx_agentharness_agent_start();
    json_t *tasks = json_object_get(H->reg, "tasks");
    assert_int_equal(json_array_size(tasks), 2);
    phx_agentharness_go("v-run"); /* v-run ends under the new agent */
    json_t *s = phx_agentharness_wait_status("v-down", "TASK_FAILED", 10);
    phx_agentharness_assert_exit(s, "TASK_FAILED", 3);
    json_decref(s);
    s = phx_agentharness_wait_status("v-run", "TASK_FAILED", 10);
    phx_agentharness_assert_exit(s, "TASK_FAILED", 7);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("v-run"), 10);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("v-down"), 10);
    phx_agentharness_drain(0.3);
    assert_int_equal(phx_agentharness_count_states("v-run", "TASK_FAILED"), 1);
    assert_int_equal(phx_agentharness_count_states("v-down", "TASK_FAILED"), 1);
}

/* An agent of a version that kept its records in <state_dir>/run (the
 * default run_dir is elsewhere now) is replaced while a task runs: the new
 * agent adopts the task from there and reports its true end. */
static void test_upgrade_adopts_old_records(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_go_task("g-old", 5),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("g-old", "TASK_RUNNING", 10));
    phx_agentharness_agent_kill9();
    H->run_sub = "run-new";
    phx_agentharness_agent_start();
    assert_int_equal(json_array_size(json_object_get(H->reg, "tasks")), 1);
    phx_agentharness_go("g-old");
    json_t *s = phx_agentharness_wait_status("g-old", "TASK_FAILED", 10);
    phx_agentharness_assert_exit(s, "TASK_FAILED", 5);
    json_decref(s);
    /* Removed from <state>/run. */
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("g-old"), 10);
    phx_agentharness_agent_kill9();
    H->run_sub = NULL;
    phx_agentharness_agent_start();
}

static void test_unacked_status_resent(void **state)
{
    (void)state;
    H->autoack = false;
    phx_agentharness_launch(phx_agentharness_task_new("u-1", "exit 0"),
                            PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_status("u-1", "TASK_FINISHED", 10);
    const char *uuid = json_string_value(json_object_get(s, "uuid"));
    /* Sent again after status_retry (0.3 s). */
    json_t *again = phx_agentharness_wait_status("u-1", "TASK_FINISHED", 3);
    assert_string_equal(json_string_value(json_object_get(again, "uuid")), uuid);
    json_decref(again);
    /* Across a restart too, listed in REGISTER. */
    phx_agentharness_agent_kill9();
    phx_agentharness_agent_start();
    json_t *tasks = json_object_get(H->reg, "tasks");
    assert_int_equal(json_array_size(tasks), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(tasks, 0), "state")),
        "TASK_FINISHED");
    again = phx_agentharness_wait_status("u-1", "TASK_FINISHED", 3);
    assert_string_equal(json_string_value(json_object_get(again, "uuid")), uuid);
    json_decref(again);
    /* This ack names the framework too (the master's do not). */
    phx_agentharness_send(json_pack("{s:s, s:s, s:s, s:s}", "type", "STATUS_ACK",
                                    "framework_id", "fw-1", "task_id", "u-1", "uuid",
                                    uuid));
    json_decref(s);
    H->autoack = true;
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("u-1"), 10);
}

/* The status record is written when a status is made, not again when the
 * master acknowledges it (doc/agent.md, Reliable statuses): the record of
 * a running task still lists its acknowledged TASK_RUNNING.  After a
 * kill -9 the next agent sends that TASK_RUNNING again, same uuid, and the
 * task's end once, with its exit code. */
static void test_status_written_once_per_state(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_go_task("w-once", 4),
                            PHX_AGENTHARNESS_SIGNED);
    json_t *run = phx_agentharness_wait_status("w-once", "TASK_RUNNING", 10);
    char *uuid = strdup(phx_agentharness_jstr(run, "uuid"));
    json_decref(run);
    char path[512];
    snprintf(path, sizeof(path), "%s/run/%s/status", H->state,
             PHX_AGENTHARNESS_KEY("w-once"));
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    /* The ack went out when TASK_RUNNING came; the agent handles frames in
     * order, so once it answered a later KILL it has handled the ack. */
    phx_agentharness_send(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id",
                                    "fw-1", "task_id", "w-none"));
    json_decref(phx_agentharness_wait_status("w-none", "TASK_LOST", 10));
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* not written again */
    json_t *rec = json_load_file(path, 0, NULL);
    json_t *pending = json_object_get(rec, "pending");
    assert_int_equal(json_array_size(pending), 1);
    assert_string_equal(phx_agentharness_jstr(json_array_get(pending, 0), "uuid"),
                        uuid);
    json_decref(rec);

    phx_agentharness_agent_kill9();
    phx_agentharness_go("w-once");
    phx_agentharness_wait_exit_record(PHX_AGENTHARNESS_KEY("w-once"), 20);
    phx_agentharness_agent_start();
    json_t *again = phx_agentharness_wait_status("w-once", "TASK_RUNNING", 10);
    assert_string_equal(phx_agentharness_jstr(again, "uuid"), uuid);
    json_decref(again);
    json_t *s = phx_agentharness_wait_status("w-once", "TASK_FAILED", 10);
    phx_agentharness_assert_exit(s, "TASK_FAILED", 4);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("w-once"), 10);
    phx_agentharness_drain(0.3);
    assert_int_equal(phx_agentharness_count_states("w-once", "TASK_RUNNING"), 1);
    assert_int_equal(phx_agentharness_count_states("w-once", "TASK_FAILED"), 1);
    free(uuid);
}

/* First versions of records are created in place, not renamed (doc/agent.md,
 * Reliable statuses): a crash while one is written leaves it cut, and the
 * next agent reads a cut record as none.  A cut "task" record: the folder
 * is removed, the task not adopted (its shim never started).  A cut
 * "status": the task is adopted from its other records, its TASK_RUNNING
 * made again from the shim record, its end reported with its exit code. */
static void test_cut_records_read_as_none(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_go_task("c-cut", 5),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("c-cut", "TASK_RUNNING", 10));
    phx_agentharness_agent_kill9();
    char path[512];
    snprintf(path, sizeof(path), "%s/run/%s/status", H->state,
             PHX_AGENTHARNESS_KEY("c-cut"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"last\":{\"exit_code\":null,\"framework_id\":\"fw-1\",\"mess", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/run/%s", H->state, PHX_AGENTHARNESS_KEY("c-new"));
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/run/%s/task", H->state,
             PHX_AGENTHARNESS_KEY("c-new"));
    assert_non_null(f = fopen(path, "w"));
    fputs("{\"started_at\":1.5,\"task\":{\"framework_id\":\"fw-1\",\"ta", f);
    fclose(f);
    phx_agentharness_go("c-cut");
    phx_agentharness_wait_exit_record(PHX_AGENTHARNESS_KEY("c-cut"), 20);
    phx_agentharness_agent_start();
    json_t *tasks = json_object_get(H->reg, "tasks");
    assert_int_equal(json_array_size(tasks), 1);
    assert_string_equal(phx_agentharness_jstr(json_array_get(tasks, 0), "task_id"),
                        "c-cut");
    assert_false(phx_agentharness_records_exist(PHX_AGENTHARNESS_KEY("c-new")));
    json_decref(phx_agentharness_wait_status("c-cut", "TASK_RUNNING", 10));
    json_t *s = phx_agentharness_wait_status("c-cut", "TASK_FAILED", 10);
    phx_agentharness_assert_exit(s, "TASK_FAILED", 5);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("c-cut"), 10);
    phx_agentharness_drain(0.3);
    assert_int_equal(phx_agentharness_count_states("c-cut", "TASK_FAILED"), 1);
}

/* The records of an acknowledged task are removed by name ("task" first),
 * then the folder; anything else in it (the temporary file of a write cut
 * short) still goes, by a listing. */
static void test_records_removed_with_strays(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_go_task("r-stray", 0),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("r-stray", "TASK_RUNNING", 10));
    char path[512];
    snprintf(path, sizeof(path), "%s/run/%s/.status.1.tmp", H->state,
             PHX_AGENTHARNESS_KEY("r-stray"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    phx_agentharness_go("r-stray");
    json_t *s = phx_agentharness_wait_end("r-stray", 10);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("r-stray"), 10);
}

/* SIGTERM stops the agent cleanly (exit 0: no leak under ASan) and leaves
 * its task running; the next agent reports it. */
static void test_agent_sigterm_keeps_tasks(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_go_task("s-1", 5),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("s-1", "TASK_RUNNING", 10));
    kill(H->agent, SIGTERM);
    int st;
    assert_int_equal(waitpid(H->agent, &st, 0), H->agent);
    H->agent = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(phx_agentharness_cgroup_exists("freezer", PHX_AGENTHARNESS_KEY("s-1")));
    phx_agentharness_agent_kill9(); /* closes the connection */
    phx_agentharness_agent_start();
    json_t *tasks = json_object_get(H->reg, "tasks");
    assert_int_equal(json_array_size(tasks), 1);
    assert_string_equal(phx_agentharness_jstr(json_array_get(tasks, 0), "state"),
                        "TASK_RUNNING");
    phx_agentharness_go("s-1"); /* it ends under the new agent, which adopted it */
    json_t *s = phx_agentharness_wait_status("s-1", "TASK_FAILED", 10);
    phx_agentharness_assert_exit(s, "TASK_FAILED", 5);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("s-1"), 10);
}

/* Task ids are unique per framework only: two frameworks' "c-0" run side by
 * side, report separately (acks name no framework, like the master's),
 * survive an agent restart as two tasks, and a KILL of one spares the other. */
static json_t *fw_task(const char *fw, const char *id, const char *script)
{
    json_t *t = phx_agentharness_task_new(id, script);
    json_object_set_new(t, "framework_id", json_string(fw));
    return t;
}

static void test_same_task_id_two_frameworks(void **state)
{
    (void)state;
    char script[512], go[256], path[512];
    snprintf(go, sizeof(go), "%s/go-c0", H->shared);
    unlink(go);
    snprintf(script, sizeof(script),
             "echo \"$PHX_FRAMEWORK_ID $PHX_TASK_ID\"; "
             "while [ ! -e %s ]; do sleep 0.05; done; exit 0",
             go);
    phx_agentharness_launch(fw_task("fw-a", "c-0", script), PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_fw_status("fw-a", "c-0", "TASK_RUNNING", 10));
    phx_agentharness_launch(fw_task("fw-b", "c-0", script), PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_fw_status("fw-b", "c-0", "TASK_RUNNING", 10));
    assert_true(phx_agentharness_cgroup_exists("freezer", "fw-a+c-0"));
    assert_true(phx_agentharness_cgroup_exists("freezer", "fw-b+c-0"));

    /* Both are reported after a restart, each with its framework. */
    phx_agentharness_agent_kill9();
    phx_agentharness_agent_start();
    json_t *tasks = json_object_get(H->reg, "tasks"), *e;
    assert_int_equal(json_array_size(tasks), 2);
    int seen = 0;
    size_t i;
    json_array_foreach(tasks, i, e)
    {
        const char *fw = json_string_value(json_object_get(e, "framework_id"));
        assert_string_equal(json_string_value(json_object_get(e, "task_id")), "c-0");
        assert_string_equal(json_string_value(json_object_get(e, "state")),
                            "TASK_RUNNING");
        seen |= strcmp(fw, "fw-a") == 0 ? 1 : strcmp(fw, "fw-b") == 0 ? 2 : 4;
    }
    assert_int_equal(seen, 3);

    /* KILL fw-a's c-0: fw-b's keeps running. */
    phx_agentharness_send(json_pack("{s:s, s:s, s:s, s:f}", "type", "KILL",
                                    "framework_id", "fw-a", "task_id", "c-0", "grace",
                                    0.2));
    json_t *s = phx_agentharness_wait_fw_end("fw-a", "c-0", 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_KILLED");
    json_decref(s);
    phx_agentharness_wait_forgotten("fw-a+c-0", 10);
    assert_false(phx_agentharness_cgroup_exists("freezer", "fw-a+c-0"));
    assert_true(phx_agentharness_records_exist("fw-b+c-0"));
    assert_true(phx_agentharness_cgroup_exists("freezer", "fw-b+c-0"));
    assert_int_equal(phx_agentharness_count_fw_states("fw-b", "c-0", "TASK_KILLED"), 0);
    assert_int_equal(phx_agentharness_count_fw_states("fw-b", "c-0", "TASK_FINISHED"),
                     0);

    /* fw-b's ends on its own, with its own outcome. */
    int fd = open(go, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    s = phx_agentharness_wait_fw_status("fw-b", "c-0", "TASK_FINISHED", 10);
    assert_int_equal(json_integer_value(json_object_get(s, "exit_code")), 0);
    json_decref(s);
    phx_agentharness_wait_forgotten("fw-b+c-0", 10);
    phx_agentharness_drain(0.3);
    assert_int_equal(phx_agentharness_count_fw_states("fw-a", "c-0", "TASK_KILLED"), 1);
    assert_int_equal(phx_agentharness_count_fw_states("fw-a", "c-0", "TASK_FINISHED"),
                     0);
    assert_int_equal(phx_agentharness_count_fw_states("fw-b", "c-0", "TASK_FINISHED"),
                     1);
    const char *fws[] = {"fw-a", "fw-b"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/tasks/%s+c-0/stdout", H->state, fws[k]);
        char *out = phx_agentharness_slurp(path), expect[64];
        snprintf(expect, sizeof(expect), "%s c-0\n", fws[k]);
        assert_non_null(out);
        assert_string_equal(out, expect);
        free(out);
    }

    /* A third framework's c-0 is not a duplicate of the two done ones. */
    phx_agentharness_launch(fw_task("fw-c", "c-0", "exit 0"), PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_fw_status("fw-c", "c-0", "TASK_FINISHED", 10));

    /* Ids too long together for a file name: a hashed key, same story. */
    char longfw[IDMAX + 1], longid[IDMAX + 1];
    memset(longfw, 'f', IDMAX);
    memset(longid, 'i', IDMAX);
    longfw[IDMAX] = longid[IDMAX] = '\0';
    snprintf(script, sizeof(script), "test \"$PHX_TASK_ID\" = %s", longid);
    phx_agentharness_launch(fw_task(longfw, longid, script), PHX_AGENTHARNESS_SIGNED);
    s = phx_agentharness_wait_fw_end(longfw, longid, 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")),
                        "TASK_FINISHED");
    json_decref(s);
}

/* The v1 pids hierarchy is not used: a task gets no cgroup there.  The task
 * cgroups an agent before that change made there go: the empty ones when
 * the next agent starts, that of a task it adopts when the task ends, the
 * agent's folder at a clean stop. */
static void pids_dir(char *buf, size_t len, const char *key)
{
    snprintf(buf, len, "/sys/fs/cgroup/pids/%s/" PHX_AGENTHARNESS_NODE "%s%s",
             H->cgroot, key ? "/" : "", key ? key : "");
}

static void test_pids_cgroups_retired(void **state)
{
    (void)state;
    char old[512], gone[512], folder[512], procs[600];
    assert_int_equal(access("/sys/fs/cgroup/pids/cgroup.procs", F_OK), 0);
    pids_dir(old, sizeof(old), PHX_AGENTHARNESS_KEY("p-old"));
    pids_dir(gone, sizeof(gone), PHX_AGENTHARNESS_KEY("p-gone"));
    pids_dir(folder, sizeof(folder), NULL);
    phx_agentharness_launch(phx_agentharness_go_task("p-old", 0),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("p-old", "TASK_RUNNING", 10));
    assert_false(phx_agentharness_cgroup_exists("pids", PHX_AGENTHARNESS_KEY("p-old")));
    assert_true(
        phx_agentharness_cgroup_exists("freezer", PHX_AGENTHARNESS_KEY("p-old")));

    /* What an older agent left: p-old's processes in a pids cgroup of its
     * own, and the empty one of a task that ended. */
    phx_agentharness_agent_kill9();
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' '%s' && for p in $(cat "
             "/sys/fs/cgroup/freezer/%s/" PHX_AGENTHARNESS_NODE
             "/" PHX_AGENTHARNESS_KEY("p-old") "/cgroup.procs); do echo $p 2>/dev/null "
                                               ">'%s/cgroup.procs' || :; done",
             old, gone, H->cgroot, old);
    assert_int_equal(system(cmd), 0);
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", old);
    char *pids = phx_agentharness_slurp(procs);
    assert_non_null(pids);
    assert_true(*pids != '\0');
    free(pids);

    phx_agentharness_agent_start();
    assert_int_equal(access(gone, F_OK), -1);
    assert_int_equal(access(old, F_OK), 0); /* its task still runs */
    phx_agentharness_go("p-old");
    json_t *s = phx_agentharness_wait_status("p-old", "TASK_FINISHED", 10);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("p-old"), 10);
    assert_int_equal(access(old, F_OK), -1);

    /* A clean stop removes the agent's folder there too. */
    kill(H->agent, SIGTERM);
    assert_int_equal(waitpid(H->agent, NULL, 0), H->agent);
    H->agent = 0;
    assert_int_equal(access(folder, F_OK), -1);
    phx_agentharness_agent_kill9(); /* closes the connection */
    phx_agentharness_agent_start();
}

/* Pooled cgroups (cgroup.h): what a reused cgroup had counted is in its
 * task's record, so a task adopted by the next agent reports its own CPU
 * time; the pool of an agent killed with SIGKILL is removed by the next,
 * that of an agent stopped with SIGTERM by itself. */
static void test_pooled_cgroups_across_restarts(void **state)
{
    (void)state;
    static const char *const ctrls[] = {"freezer", "cpuset", "memory", "cpuacct"};
    phx_agentharness_launch(
        phx_agentharness_task_new("w-busy",
                                  "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"),
        PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end("w-busy", 60);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_t *u = json_object_get(s, "usage");
    double busy = json_number_value(json_object_get(u, "user_cpu_s")) +
                  json_number_value(json_object_get(u, "system_cpu_s"));
    assert_true(busy >= 0.2);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("w-busy"), 10);
    int pooled = phx_agentharness_pool_count("freezer");
    assert_true(pooled >= 1);

    phx_agentharness_launch(phx_agentharness_go_task("w-base", 0),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("w-base", "TASK_RUNNING", 10));
    assert_int_equal(phx_agentharness_pool_count("freezer"), pooled - 1);
    phx_agentharness_agent_kill9();
    for (int i = 0; i < 4; i++)
        assert_int_equal(phx_agentharness_pool_count(ctrls[i]), pooled - 1);
    phx_agentharness_agent_start();
    for (int i = 0; i < 4; i++)
        assert_int_equal(phx_agentharness_pool_count(ctrls[i]), 0);
    phx_agentharness_go("w-base");
    s = phx_agentharness_wait_status("w-base", "TASK_FINISHED", 10);
    u = json_object_get(s, "usage");
    double own = json_number_value(json_object_get(u, "user_cpu_s")) +
                 json_number_value(json_object_get(u, "system_cpu_s"));
    if (own > 0.1)
        fail_msg("w-base, in the cgroup of w-busy (%.2f s): %.2f s of CPU", busy, own);
    json_decref(s);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("w-base"), 10);
    assert_int_equal(phx_agentharness_pool_count("freezer"), 1);

    /* A clean stop leaves no pooled cgroup, nor the agent's folder. */
    kill(H->agent, SIGTERM);
    assert_int_equal(waitpid(H->agent, NULL, 0), H->agent);
    H->agent = 0;
    for (int i = 0; i < 4; i++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s/" PHX_AGENTHARNESS_NODE,
                 ctrls[i], H->cgroot);
        assert_int_equal(access(dir, F_OK), -1);
    }
    phx_agentharness_agent_kill9(); /* closes the connection */
    phx_agentharness_agent_start();
}

#define TEST(f) cmocka_unit_test_teardown(f, phx_agentharness_reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_agent_killed_task_survives),
        TEST(test_upgrade_adopts_old_records),
        TEST(test_unacked_status_resent),
        TEST(test_status_written_once_per_state),
        TEST(test_cut_records_read_as_none),
        TEST(test_records_removed_with_strays),
        TEST(test_agent_sigterm_keeps_tasks),
        TEST(test_same_task_id_two_frameworks),
        TEST(test_pids_cgroups_retired),
        TEST(test_pooled_cgroups_across_restarts),
    };
    return cmocka_run_group_tests(tests, phx_agentharness_setup,
                                  phx_agentharness_teardown);
}
