/* Task execution by the real phx-agent binary ($BUILD/bin/phx-agent), driven
 * by the fake master of tests/unit/support/agentharness.h: real processes,
 * real cgroups v1, a real user, real munge credentials.  Needs root.
 *
 * A task runs as its user, in its cpuset and cgroups, with its environment
 * and output files; launches the agent must refuse are refused before
 * anything runs; a duplicate LAUNCH is ignored; a task over its memory is
 * OOM-killed; one past its time limit gets SIGTERM, then SIGKILL after the
 * grace; KILL leaves no process behind; a reused cgroup reports its task's
 * own usage, and one with a process left is not reused.  Survival of tasks
 * across agent restarts: test_agent_recover.c. */
#include <pwd.h>
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
#include "topology/bind.h"
#include "topology/topo.h"

static phx_agentharness_t *const H = &phx_agentharness;

static void test_runs_as_user_in_its_cpuset(void **state)
{
    (void)state;
    char script[1024];
    snprintf(script, sizeof(script),
             "id -u; id -g; pwd; echo \"$PHX_TASK_ID $PHX_NODE $PHX_CPUS_ON_NODE "
             "FOO=$FOO HOME=$HOME\"; grep -E '^(Cpus|Mems)_allowed_list' "
             "/proc/self/status; grep -c %s/" PHX_AGENTHARNESS_NODE
             "/" PHX_AGENTHARNESS_KEY("t-user") " /proc/self/cgroup; echo oops >&2",
             H->cgroot);
    phx_agentharness_launch(phx_agentharness_task_new("t-user", script),
                            PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_status("t-user", "TASK_RUNNING", 10);
    json_decref(s);
    s = phx_agentharness_wait_end("t-user", 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")),
                        "TASK_FINISHED");
    assert_int_equal(json_integer_value(json_object_get(s, "exit_code")), 0);
    assert_true(json_is_null(json_object_get(s, "signal")));
    assert_string_equal(json_string_value(json_object_get(s, "framework_id")), "fw-1");
    json_t *u = json_object_get(s, "usage");
    assert_true(json_is_object(u));
    assert_true(json_integer_value(json_object_get(u, "max_rss_bytes")) > 0);
    assert_true(json_is_number(json_object_get(u, "user_cpu_s")));
    assert_true(json_is_number(json_object_get(u, "system_cpu_s")));
    json_decref(s);

    /* The PUs binding gives emulated core 1 on this machine. */
    phx_error_t err;
    phx_topo_t *topo = phx_topo_load_synthetic(PHX_AGENTHARNESS_TOPO, &err);
    assert_non_null(topo);
    phx_topo_coreset_t *cores = phx_topo_coreset_create(phx_topo_ncores(topo));
    phx_topo_coreset_add(cores, 1);
    char *cpus = phx_topo_bind_cpuset_str(topo, cores, &err);
    assert_non_null(cpus);
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "%u\n%u\n%s\nt-user " PHX_AGENTHARNESS_NODE " 1 FOO=bar baz HOME=%s\n"
             "Cpus_allowed_list:\t%s\nMems_allowed_list:\t0\n",
             (unsigned)H->uid, (unsigned)H->gid, H->shared,
             getpwnam(PHX_AGENTHARNESS_USER)->pw_dir, cpus);
    free(cpus);
    phx_topo_coreset_destroy(cores);
    phx_topo_destroy(topo);

    char path[512];
    snprintf(path, sizeof(path), "%s/tasks/" PHX_AGENTHARNESS_KEY("t-user") "/stdout",
             H->state);
    char *out = phx_agentharness_slurp(path);
    assert_non_null(out);
    /* The cgroup line count (last line) is that of the hierarchies joined. */
    if (strncmp(out, expect, strlen(expect)) != 0)
        fail_msg("stdout:\n%s\nexpected to start with:\n%s", out, expect);
    assert_true(atoi(out + strlen(expect)) >= 4);
    free(out);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, H->uid);
    snprintf(path, sizeof(path), "%s/tasks/" PHX_AGENTHARNESS_KEY("t-user") "/stderr",
             H->state);
    out = phx_agentharness_slurp(path);
    assert_string_equal(out, "oops\n");
    free(out);
    /* Acknowledged: records and cgroups gone. */
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("t-user"), 10);
    assert_false(
        phx_agentharness_cgroup_exists("cpuset", PHX_AGENTHARNESS_KEY("t-user")));
    assert_false(
        phx_agentharness_cgroup_exists("memory", PHX_AGENTHARNESS_KEY("t-user")));
    assert_false(
        phx_agentharness_cgroup_exists("freezer", PHX_AGENTHARNESS_KEY("t-user")));
}

static void expect_error(const char *id, json_t *task, phx_agentharness_cred_t how,
                         const char *reason, const char *needle)
{
    char marker[512];
    snprintf(marker, sizeof(marker), "%s/ran-%s", H->shared, id);
    json_object_set_new(task, "task_id", json_string(id));
    phx_agentharness_launch(task, how);
    json_t *s = phx_agentharness_wait_status(id, NULL, 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_ERROR");
    assert_string_equal(json_string_value(json_object_get(s, "reason")), reason);
    const char *msg = json_string_value(json_object_get(s, "message"));
    if (!strstr(msg, needle))
        fail_msg("task %s: message \"%s\" lacks \"%s\"", id, msg, needle);
    json_decref(s);
    assert_int_equal(access(marker, F_OK), -1);
    /* Nothing of it stays: not its records, not a cgroup (a pooled one it
     * took is given back). */
    char key[256];
    snprintf(key, sizeof(key), PHX_AGENTHARNESS_KEY("%s"), id);
    phx_agentharness_wait_forgotten(key, 10);
    assert_false(phx_agentharness_cgroup_exists("cpuset", key));
}

/* The task starts with every signal's default disposition and none
 * blocked, whatever the agent ignores (SIGPIPE; SIGHUP here, as under
 * nohup: the harness starts it so) and the shim (SIGTERM, SIGINT, SIGHUP,
 * SIGPIPE): the agent spawns the shim with all dispositions reset, and the
 * shim's child resets the four it ignores, and glibc's signals 32 and 33
 * (ignored by posix_spawn: this failed before the shim reset them). */
static void test_task_signals_default(void **state)
{
    (void)state;
    phx_agentharness_launch(
        phx_agentharness_task_new("t-sig", "grep -E '^Sig(Ign|Blk)' /proc/self/status"),
        PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end("t-sig", 10);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    char *out = phx_agentharness_stdout(PHX_AGENTHARNESS_KEY("t-sig"));
    assert_non_null(out);
    assert_string_equal(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    free(out);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("t-sig"), 10);
}

static void test_refused_launches(void **state)
{
    (void)state;
    char script[512];
    json_t *t;
#define MARK(id)                                                                       \
    (snprintf(script, sizeof(script), "touch %s/ran-%s", H->shared, id), script)
    expect_error("r-unsigned",
                 phx_agentharness_task_new("r-unsigned", MARK("r-unsigned")),
                 PHX_AGENTHARNESS_UNSIGNED, "REASON_TASK_UNAUTHORIZED", "not signed");
    expect_error("r-tampered",
                 phx_agentharness_task_new("r-tampered", MARK("r-tampered")),
                 PHX_AGENTHARNESS_TAMPERED, "REASON_TASK_UNAUTHORIZED",
                 "launch signature refused");
    expect_error("r-wrongkey",
                 phx_agentharness_task_new("r-wrongkey", MARK("r-wrongkey")),
                 PHX_AGENTHARNESS_WRONG_KEY, "REASON_TASK_UNAUTHORIZED",
                 "launch signature refused");
    /* Signed, then changed in flight. */
    {
        json_t *task = phx_agentharness_task_new("r-changed", MARK("r-changed"));
        char *payload = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
        unsigned char mac[PHX_MAC_LEN];
        char hex[PHX_MAC_HEX_LEN + 1];
        uint64_t seq = ++H->seq;
        assert_int_equal(phx_mac_compute_seq(H->session, "phx-launch", seq, payload,
                                             strlen(payload), mac),
                         0);
        phx_mac_to_hex(mac, sizeof(mac), hex);
        json_object_set_new(task, "uid", json_integer(0));
        json_object_set_new(task, "user", json_string("root"));
        phx_agentharness_send(json_pack("{s:s, s:o, s:I, s:s}", "type", "LAUNCH",
                                        "task", task, "seq", (json_int_t)seq, "mac",
                                        hex));
        free(payload);
        json_t *s = phx_agentharness_wait_status("r-changed", NULL, 10);
        assert_string_equal(json_string_value(json_object_get(s, "reason")),
                            "REASON_TASK_UNAUTHORIZED");
        json_decref(s);
    }
    /* Well signed, but with a sequence number already used: a replay.  (The
     * LAUNCH before it, refused for its task, still used its number.) */
    t = phx_agentharness_task_new("x", MARK("r-ok"));
    json_object_set_new(t, "cores", json_string("2-9"));
    expect_error("r-ok", t, PHX_AGENTHARNESS_SIGNED, "REASON_TASK_INVALID",
                 "cores \"2-9\"");
    expect_error("r-replayed",
                 phx_agentharness_task_new("r-replayed", MARK("r-replayed")),
                 PHX_AGENTHARNESS_REPLAYED, "REASON_TASK_UNAUTHORIZED", "is not above");
    t = phx_agentharness_task_new("x", MARK("r-nouser"));
    json_object_set_new(t, "user", json_string("no-such-user-phx"));
    expect_error(
        "r-nouser", t, PHX_AGENTHARNESS_SIGNED, "REASON_TASK_INVALID",
        "user \"no-such-user-phx\" does not exist on node \"" PHX_AGENTHARNESS_NODE
        "\"");
    t = phx_agentharness_task_new("x", MARK("r-uid"));
    json_object_set_new(t, "uid", json_integer((json_int_t)H->uid + 1));
    expect_error("r-uid", t, PHX_AGENTHARNESS_SIGNED, "REASON_TASK_INVALID", "has uid");
    t = phx_agentharness_task_new("x", MARK("r-root"));
    json_object_set_new(t, "user", json_string("root"));
    json_object_set_new(t, "uid", json_integer(0));
    expect_error("r-root", t, PHX_AGENTHARNESS_SIGNED, "REASON_TASK_UNAUTHORIZED",
                 "agent.allow_root");
    t = phx_agentharness_task_new("x", MARK("r-cores"));
    json_object_set_new(t, "cores", json_string("2-9"));
    expect_error("r-cores", t, PHX_AGENTHARNESS_SIGNED, "REASON_TASK_INVALID",
                 "cores \"2-9\"");
    t = phx_agentharness_task_new("x", MARK("r-out"));
    json_object_set_new(t, "stdout", json_string("/root/phx-not-yours/out"));
    expect_error("r-out", t, PHX_AGENTHARNESS_SIGNED, "REASON_COMMAND_EXECUTOR_FAILED",
                 "could not open stdout \"/root/phx-not-yours/out\"");
    t = phx_agentharness_task_new("x", MARK("r-exec"));
    json_object_set_new(t, "argv", json_pack("[s]", "/nonexistent/program"));
    expect_error("r-exec", t, PHX_AGENTHARNESS_SIGNED, "REASON_COMMAND_EXECUTOR_FAILED",
                 "could not execute \"/nonexistent/program\"");
    t = phx_agentharness_task_new("x", MARK("r-cwd"));
    json_object_set_new(t, "cwd", json_string("/root"));
    expect_error("r-cwd", t, PHX_AGENTHARNESS_SIGNED, "REASON_COMMAND_EXECUTOR_FAILED",
                 "could not change to directory \"/root\"");
    /* An id that cannot name records: refused without records. */
    t = phx_agentharness_task_new("bad/id", "true");
    phx_agentharness_launch(t, PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_status("bad/id", "TASK_ERROR", 10);
    json_decref(s);
    /* The agent is still there and runs good tasks. */
    phx_agentharness_launch(phx_agentharness_task_new("r-after", "exit 0"),
                            PHX_AGENTHARNESS_SIGNED);
    s = phx_agentharness_wait_status("r-after", "TASK_FINISHED", 10);
    json_decref(s);
#undef MARK
}

/* A forged LAUNCH leaves nothing behind: the master's own launch of that
 * task id still runs, and a forgery naming a running task does not fail it
 * (before, the forgery's task was recorded first: the real launch was then
 * "duplicate launch ignored" and the task never ran). */
static void test_forged_launch_leaves_no_trace(void **state)
{
    (void)state;
    char marker[512];
    snprintf(marker, sizeof(marker), "%s/ran-f-1", H->shared);
    phx_agentharness_launch(phx_agentharness_task_new("f-1", "exit 3"),
                            PHX_AGENTHARNESS_UNSIGNED);
    json_t *s = phx_agentharness_wait_status("f-1", NULL, 10);
    assert_string_equal(json_string_value(json_object_get(s, "reason")),
                        "REASON_TASK_UNAUTHORIZED");
    json_decref(s);
    assert_false(phx_agentharness_records_exist(PHX_AGENTHARNESS_KEY("f-1")));
    char script[600];
    snprintf(script, sizeof(script), "touch %s", marker);
    phx_agentharness_launch(phx_agentharness_task_new("f-1", script),
                            PHX_AGENTHARNESS_SIGNED);
    s = phx_agentharness_wait_end("f-1", 10);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    assert_int_equal(access(marker, F_OK), 0);

    phx_agentharness_launch(phx_agentharness_task_new("f-2", "sleep 1"),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("f-2", "TASK_RUNNING", 10));
    phx_agentharness_launch(phx_agentharness_task_new("f-2", "exit 9"),
                            PHX_AGENTHARNESS_WRONG_KEY);
    s = phx_agentharness_wait_end("f-2", 10);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    phx_agentharness_drain(0.5);
    assert_int_equal(phx_agentharness_count_states("f-2", "TASK_ERROR"), 0);
}

static void test_duplicate_launch_ignored(void **state)
{
    (void)state;
    phx_agentharness_launch(phx_agentharness_task_new("d-1", "sleep 1"),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("d-1", "TASK_RUNNING", 10));
    phx_agentharness_launch(phx_agentharness_task_new("d-1", "sleep 1"),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("d-1", "TASK_FINISHED", 10));
    phx_agentharness_drain(0.5);
    assert_int_equal(phx_agentharness_count_states("d-1", "TASK_FINISHED"), 1);
    assert_int_equal(phx_agentharness_count_states("d-1", "TASK_ERROR"), 0);
}

static void test_memory_hog_is_oom(void **state)
{
    (void)state;
    json_t *t = phx_agentharness_task_new("m-hog", "exec tail /dev/zero");
    json_object_set_new(t, "memory", json_integer(64 << 20));
    phx_agentharness_launch(t, PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end("m-hog", 20);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_FAILED");
    assert_string_equal(json_string_value(json_object_get(s, "reason")),
                        "REASON_CONTAINER_LIMITATION_MEMORY");
    assert_int_equal(json_integer_value(json_object_get(s, "signal")), SIGKILL);
    json_int_t rss = json_integer_value(
        json_object_get(json_object_get(s, "usage"), "max_rss_bytes"));
    assert_true(rss > (32 << 20) && rss <= (64 << 20) + (1 << 20));
    json_decref(s);
}

/* Time limit 1 s, grace 2 s, a task that survives SIGTERM.  What the agent
 * guarantees, on its own clock (the wall clock, its statuses' timestamps):
 * SIGTERM at the limit, then SIGKILL once the grace is over.  Its timers
 * count from the start of the event loop's iteration that armed them
 * (libevent's cached time), so they may fire some milliseconds early: we
 * allow half a second, far from the 1 s or 2 s a missing limit or grace
 * would make.  How much later it all happens depends on the machine's load:
 * no upper bound but the wait's. */
static void test_time_limit(void **state)
{
    (void)state;
    char script[512], termf[256];
    snprintf(termf, sizeof(termf), "%s/term-l-sleep", H->shared);
    unlink(termf);
    /* SIGTERM kills its sleeps, not the shell: it notes it, sleeps on. */
    snprintf(script, sizeof(script),
             "trap 'echo TERM >>%s' TERM; while :; do sleep 0.1; done; exit 0", termf);
    json_t *t = phx_agentharness_task_new("l-sleep", script);
    json_object_set_new(t, "time_limit", json_integer(1));
    json_object_set_new(t, "kill_grace", json_integer(2));
    double t0 = phx_agentharness_wall(); /* the task's clock starts after this */
    phx_agentharness_launch(t, PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end("l-sleep", 60);
    double ended = json_number_value(json_object_get(s, "timestamp"));
    if (strcmp(phx_agentharness_jstr(s, "state"), "TASK_FAILED") != 0 ||
        strcmp(phx_agentharness_jstr(s, "reason"),
               "REASON_MAX_COMPLETION_TIME_REACHED") != 0 ||
        json_integer_value(json_object_get(s, "signal")) != SIGKILL ||
        !json_is_null(json_object_get(s, "exit_code")) ||
        !strstr(phx_agentharness_jstr(s, "message"),
                "time limit of 1 s reached (terminated)"))
        fail_msg("expected TASK_FAILED, time limit reached, SIGKILL: got %s",
                 json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS));
    json_decref(s);
    /* It had SIGTERM before it was killed... */
    char *txt = phx_agentharness_slurp(termf);
    if (!txt || strncmp(txt, "TERM\n", 5) != 0)
        fail_msg("the task did not get SIGTERM before its SIGKILL (%s: \"%s\")", termf,
                 txt ? txt : "missing");
    free(txt);
    /* ...and was killed no sooner than limit + grace after its launch. */
    if (ended < t0 + 1 + 2 - 0.5)
        fail_msg("time limit 1 s + grace 2 s: killed %.2f s after the launch",
                 ended - t0);
}

static void test_kill_leaves_nothing(void **state)
{
    (void)state;
    char script[2048], pidfile[256];
    snprintf(pidfile, sizeof(pidfile), "%s/escapee.pid", H->shared);
    unlink(pidfile);
    /* A double-forked, new-session child: it must die with the task. */
    snprintf(script, sizeof(script),
             "setsid sh -c 'sleep 300 & echo $! > %s.tmp; mv %s.tmp %s; wait' & "
             "trap '' TERM; sleep 300",
             pidfile, pidfile, pidfile);
    phx_agentharness_launch(phx_agentharness_task_new("k-tree", script),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("k-tree", "TASK_RUNNING", 10));
    char *txt = NULL;
    for (int i = 0; i < 100 && !(txt = phx_agentharness_slurp(pidfile)); i++)
        usleep(50000);
    assert_non_null(txt);
    pid_t escapee = atoi(txt);
    free(txt);
    assert_true(escapee > 0 && phx_agentharness_pid_alive(escapee));
    phx_agentharness_send(json_pack("{s:s, s:s, s:s, s:f}", "type", "KILL",
                                    "framework_id", "fw-1", "task_id", "k-tree",
                                    "grace", 0.5));
    json_t *s = phx_agentharness_wait_end("k-tree", 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_KILLED");
    assert_string_equal(json_string_value(json_object_get(s, "reason")),
                        "REASON_TASK_KILLED");
    json_decref(s);
    for (int i = 0; i < 20 && phx_agentharness_pid_alive(escapee); i++)
        usleep(50000);
    assert_false(phx_agentharness_pid_alive(escapee));
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("k-tree"), 10);
    assert_false(
        phx_agentharness_cgroup_exists("freezer", PHX_AGENTHARNESS_KEY("k-tree")));
    /* KILL of a finished task: nothing; of an unknown task (or of a known
     * task id of another framework): TASK_LOST. */
    phx_agentharness_send(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id",
                                    "fw-1", "task_id", "k-tree"));
    phx_agentharness_send(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id",
                                    "fw-9", "task_id", "k-tree"));
    phx_agentharness_send(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id",
                                    "fw-1", "task_id", "k-nosuch"));
    json_decref(phx_agentharness_wait_fw_status("fw-9", "k-tree", "TASK_LOST", 5));
    json_decref(phx_agentharness_wait_fw_status("fw-1", "k-nosuch", "TASK_LOST", 5));
    assert_int_equal(phx_agentharness_count_fw_states("fw-1", "k-tree", "TASK_LOST"),
                     0);
}

/* The agent's cgroup of task key in hierarchy ctrl. */
static const char *cg_dir(const char *ctrl, const char *key)
{
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "/sys/fs/cgroup/%s/%s/" PHX_AGENTHARNESS_NODE "/%s",
             ctrl, H->cgroot, key);
    return b;
}

/* Run task id (script, memory) to its end; its status (caller owns it) and
 * the first line of its output, the inode of its memory cgroup. */
static json_t *run_reused(const char *id, const char *script, long long memory,
                          unsigned long *ino, char **out)
{
    char key[256], full[2048];
    snprintf(key, sizeof(key), PHX_AGENTHARNESS_KEY("%s"), id);
    const char *mem = cg_dir("memory", key);
    snprintf(full, sizeof(full), "stat -c %%i %s; cd %s; %s", mem, mem, script);
    json_t *t = phx_agentharness_task_new(id, full);
    json_object_set_new(t, "memory", json_integer(memory));
    phx_agentharness_launch(t, PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end(id, 60);
    phx_agentharness_wait_forgotten(key, 10);
    *out = phx_agentharness_stdout(key);
    assert_non_null(*out);
    *ino = strtoul(*out, NULL, 10);
    assert_true(*ino > 0);
    return s;
}

/* A reused cgroup keeps what its last task's create wrote, and the next
 * create writes only what differs: the same cores and limit twice, then
 * another core, then no limit, each task sees its own. */
static void test_reused_cgroup_gets_own_cpus_and_limit(void **state)
{
    (void)state;
    static const struct {
        const char *id, *core, *numa;
        long long memory;
        const char *pus, *limit;
    } runs[] = {
        {"k-a", "1", "0", 128 << 20, "1", "134217728"},
        {"k-b", "1", "0", 128 << 20, "1", "134217728"}, /* nothing written */
        {"k-c", "2", "1", 128 << 20, "0", "134217728"}, /* cpuset.cpus only */
        {"k-d", "2", "1", 0, "0", "9223372036854771712"},
        {"k-e", "1", "0", 128 << 20, "1", "134217728"},
    };
    unsigned long first = 0;
    for (size_t i = 0; i < sizeof(runs) / sizeof(*runs); i++) {
        char key[256], script[2048], want[256];
        snprintf(key, sizeof(key), PHX_AGENTHARNESS_KEY("%s"), runs[i].id);
        const char *mem = cg_dir("memory", key);
        snprintf(script, sizeof(script),
                 "stat -c %%i %s; cat %s/memory.limit_in_bytes; "
                 "grep Cpus_allowed_list /proc/self/status",
                 mem, mem);
        json_t *t = phx_agentharness_task_new(runs[i].id, script);
        json_object_set_new(t, "memory", json_integer(runs[i].memory));
        json_object_set_new(t, "cores", json_string(runs[i].core));
        json_object_set_new(t, "numas", json_string(runs[i].numa));
        phx_agentharness_launch(t, PHX_AGENTHARNESS_SIGNED);
        json_t *s = phx_agentharness_wait_end(runs[i].id, 60);
        phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
        json_decref(s);
        phx_agentharness_wait_forgotten(key, 10);
        char *out = phx_agentharness_stdout(key);
        assert_non_null(out);
        unsigned long ino = strtoul(out, NULL, 10);
        if (i == 0)
            first = ino;
        else if (ino != first) /* a task in between could take it: not here */
            fail_msg("%s: not the reused cgroup (%lu, not %lu)", runs[i].id, ino,
                     first);
        snprintf(want, sizeof(want), "\n%s\nCpus_allowed_list:\t%s\n", runs[i].limit,
                 runs[i].pus);
        if (!strstr(out, want))
            fail_msg("%s: expected \"%s\" in \"%s\"", runs[i].id, want, out);
        free(out);
    }
}

static double cpu_of(const json_t *s)
{
    const json_t *u = json_object_get(s, "usage");
    return json_number_value(json_object_get(u, "user_cpu_s")) +
           json_number_value(json_object_get(u, "system_cpu_s"));
}

static long long rss_of(const json_t *s)
{
    return json_integer_value(
        json_object_get(json_object_get(s, "usage"), "max_rss_bytes"));
}

/* A task's cgroups, empty once it ended, are the next task's (the same
 * directories, renamed), which reports its own usage only: CPU time and OOM
 * kills less what the cgroup had counted, its own peak, and its own memory
 * limit, higher than the last or none. */
static void test_reused_cgroup_counts_own_usage(void **state)
{
    (void)state;
    unsigned long busy, idle, hog, after, none;
    char *out;
    json_t *s = run_reused("p-busy",
                           "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; "
                           "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null",
                           256 << 20, &busy, &out);
    free(out);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    double busy_cpu = cpu_of(s);
    if (busy_cpu < 0.2 || rss_of(s) < (64 << 20))
        fail_msg("p-busy: expected >= 0.2 s of CPU and a 64 MiB peak, got %s",
                 json_dumps(s, JSON_COMPACT));
    json_decref(s);
    assert_true(phx_agentharness_pool_count("freezer") >= 1);

    s = run_reused("p-idle", "true", 256 << 20, &idle, &out);
    free(out);
    assert_int_equal(idle, busy);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    if (cpu_of(s) > 0.1 || rss_of(s) > (16 << 20))
        fail_msg("p-idle (after %.2f s of CPU in its cgroup): expected its own "
                 "usage, got %s",
                 busy_cpu, json_dumps(s, JSON_COMPACT));
    json_decref(s);

    /* An OOM kill counts for its task only; a higher limit, then none. */
    s = run_reused("p-hog", "exec tail /dev/zero", 64 << 20, &hog, &out);
    free(out);
    assert_int_equal(hog, busy);
    assert_string_equal(phx_agentharness_jstr(s, "reason"),
                        "REASON_CONTAINER_LIMITATION_MEMORY");
    json_decref(s);
    s = run_reused("p-after", "cat memory.limit_in_bytes", 256 << 20, &after, &out);
    assert_int_equal(after, busy);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    assert_true(json_object_get(s, "reason") == NULL ||
                json_is_null(json_object_get(s, "reason")));
    assert_true(rss_of(s) < (16 << 20));
    assert_non_null(strstr(out, "\n268435456\n"));
    free(out);
    json_decref(s);
    s = run_reused("p-none", "cat memory.limit_in_bytes memory.memsw.limit_in_bytes", 0,
                   &none, &out);
    assert_int_equal(none, busy);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    assert_non_null(strstr(out, "\n9223372036854771712\n9223372036854771712\n"));
    free(out);
    json_decref(s);

    /* One that leaves more than 64 pages charged (its 1 MB of output, in
     * the page cache) is removed, not pooled. */
    int pooled = phx_agentharness_pool_count("memory");
    s = run_reused("p-big", "head -c 1000000 /dev/zero", 256 << 20, &none, &out);
    free(out);
    assert_int_equal(none, busy);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    assert_int_equal(phx_agentharness_pool_count("memory"), pooled - 1);
    assert_false(
        phx_agentharness_cgroup_exists("memory", PHX_AGENTHARNESS_KEY("p-big")));
}

/* A cgroup with a process left in it (here one the test moved into the
 * task's memory cgroup only, which the kill sweep of the freezer's list
 * does not see) is not given to another task. */
static void test_leftover_process_not_reused(void **state)
{
    (void)state;
    const char *key = PHX_AGENTHARNESS_KEY("q-left");
    phx_agentharness_launch(phx_agentharness_go_task("q-left", 0),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("q-left", "TASK_RUNNING", 10));
    int pooled = phx_agentharness_pool_count("memory");
    pid_t left = fork();
    assert_true(left >= 0);
    if (left == 0) {
        execlp("sleep", "sleep", "300", (char *)NULL);
        _exit(127);
    }
    char path[600], pid[32];
    snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir("memory", key));
    snprintf(pid, sizeof(pid), "%d\n", (int)left);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(pid, f) >= 0);
    assert_int_equal(fclose(f), 0);
    phx_agentharness_go("q-left");
    json_t *s = phx_agentharness_wait_end("q-left", 10);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    phx_agentharness_wait_forgotten(key, 10);
    /* Still where it was, under the task's name, not pooled. */
    assert_true(phx_agentharness_pid_alive(left));
    char *procs = phx_agentharness_slurp(path);
    assert_non_null(procs);
    assert_string_equal(procs, pid);
    free(procs);
    assert_int_equal(phx_agentharness_pool_count("memory"), pooled);
    assert_false(phx_agentharness_cgroup_exists("freezer", key));
    kill(left, SIGKILL);
    waitpid(left, NULL, 0);
    assert_int_equal(rmdir(cg_dir("memory", key)), 0);
}

static bool output_there(const char *key)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/tasks/%s", H->state, key);
    return lstat(p, &st) == 0;
}

static bool wait_output_gone(const char *key, double timeout)
{
    for (int i = 0; i < (int)(timeout * 10); i++) {
        if (!output_there(key))
            return true;
        phx_agentharness_drain(0.1);
    }
    return !output_there(key);
}

/* agent.task_output_keep: the default output folder of an ended task goes
 * that long after its last change, without following the links its user
 * planted there (the agent is root); a running task's folder stays. */
static void test_output_folder_retention(void **state)
{
    (void)state;
    phx_agentharness_agent_kill9();
    H->extra_set = "agent.task_output_keep=1";
    phx_agentharness_agent_start();
    char victim[256], precious[300];
    snprintf(victim, sizeof(victim), "%s/victim", H->dir);
    snprintf(precious, sizeof(precious), "%s/precious", victim);
    assert_int_equal(mkdir(victim, 0755), 0);
    FILE *f = fopen(precious, "w");
    assert_non_null(f);
    fputs("keep me\n", f);
    fclose(f);

    phx_agentharness_launch(phx_agentharness_go_task("o-run", 0),
                            PHX_AGENTHARNESS_SIGNED);
    json_decref(phx_agentharness_wait_status("o-run", "TASK_RUNNING", 10));
    char script[1024];
    snprintf(script, sizeof(script),
             "d=$(dirname \"$(readlink /proc/self/fd/1)\"); echo out; "
             "ln -s %s \"$d/dir\" && ln -s %s \"$d/file\" && mkdir \"$d/sub\" && "
             "ln -s %s \"$d/sub/up\" && echo planted",
             victim, precious, victim);
    phx_agentharness_launch(phx_agentharness_task_new("o-end", script),
                            PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end("o-end", 10);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    char out[512];
    snprintf(out, sizeof(out), "%s/tasks/%s/stdout", H->state,
             PHX_AGENTHARNESS_KEY("o-end"));
    char *text = phx_agentharness_slurp(out);
    assert_non_null(text);
    assert_string_equal(text, "out\nplanted\n");
    free(text);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("o-end"), 10);
    assert_true(wait_output_gone(PHX_AGENTHARNESS_KEY("o-end"), 10));
    struct stat st;
    assert_int_equal(lstat(precious, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* Older than the retention by now, but its task runs. */
    assert_true(output_there(PHX_AGENTHARNESS_KEY("o-run")));
    phx_agentharness_go("o-run");
    json_decref(phx_agentharness_wait_end("o-run", 10));
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("o-run"), 10);
    assert_true(wait_output_gone(PHX_AGENTHARNESS_KEY("o-run"), 10));

    phx_agentharness_agent_kill9();
    H->extra_set = NULL;
    phx_agentharness_agent_start();
}

#define TEST(f) cmocka_unit_test_teardown(f, phx_agentharness_reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_runs_as_user_in_its_cpuset),
        TEST(test_task_signals_default),
        TEST(test_refused_launches),
        TEST(test_forged_launch_leaves_no_trace),
        TEST(test_duplicate_launch_ignored),
        TEST(test_memory_hog_is_oom),
        TEST(test_time_limit),
        TEST(test_kill_leaves_nothing),
        TEST(test_reused_cgroup_counts_own_usage),
        TEST(test_reused_cgroup_gets_own_cpus_and_limit),
        TEST(test_leftover_process_not_reused),
        TEST(test_output_folder_retention),
    };
    return cmocka_run_group_tests(tests, phx_agentharness_setup,
                                  phx_agentharness_teardown);
}
