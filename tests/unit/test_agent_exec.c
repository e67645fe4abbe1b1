/* Task execution by the real phx-agent binary ($BUILD/bin/phx-agent), driven
 * by a fake master in this test (a loopback listener speaking the wire):
 * real processes, real cgroups v1, a real user (phxtest2, created if
 * missing), real munge credentials from a private munged.  Needs root.
 *
 * The fake master answers REGISTER and heartbeats, sends LAUNCH and KILL,
 * records every STATUS and acknowledges it (unless told not to). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/munge.h"
#include "lib/wire.h"
#include "tests/unit/support/mungetest.h"
#include "topology/bind.h"
#include "topology/topo.h"

#define TOPO    "pack:1 numa:2 core:2 pu:1" /* 4 emulated cores, 2 NUMA domains */
#define USER    "phxtest2"
#define AGENTNM "ux1"
#define IDMAX   128 /* longest task and framework ids */

static struct {
    phx_test_munged_t munged;
    phx_munge_t *munge;
    char dir[128], state[192], shared[192], bin[4096];
    const char *run_sub; /* the agent's run dir under state; NULL: "run" */
    /* phx-unit-<our pid>: an agent sweeps every cgroup of its folder it has
     * no records of, so two runs of this test (two build dirs, at the same
     * time) must not share one, or each kills the other's tasks. */
    char cgroot[64];
    int lfd, cfd, port;
    pid_t agent;
    phx_wire_decoder_t *dec;
    json_t *statuses; /* every STATUS received */
    json_t *backlog;  /* received, not yet returned by a wait_* (in order) */
    json_t *reg;      /* the last REGISTER */
    bool autoack;
    uid_t uid;
    gid_t gid;
} F;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The clock of the agent's timestamps and records. */
static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A string member, never NULL (a missing one must fail an assertion, not
 * crash the test). */
static const char *jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(missing)";
}

static void send_frame(json_t *hdr)
{
    uint8_t *buf;
    size_t len;
    phx_error_t err;
    assert_int_equal(phx_wire_encode(hdr, NULL, 0, 1 << 20, &buf, &len, &err), 0);
    json_decref(hdr);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(F.cfd, buf + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    free(buf);
}

/* The next frame other than a heartbeat (answered), or NULL after timeout s. */
static json_t *next_frame(double timeout)
{
    double end = now() + timeout;
    for (;;) {
        phx_frame_t f;
        phx_error_t err;
        int r = phx_wire_decoder_next(F.dec, &f, &err);
        assert_true(r >= 0);
        if (r == 1) {
            json_t *h = json_incref(f.header);
            phx_frame_clear(&f);
            const char *type = json_string_value(json_object_get(h, "type"));
            if (strcmp(type, "HEARTBEAT") == 0) {
                json_decref(h);
                send_frame(json_pack("{s:s}", "type", "HEARTBEAT_ACK"));
                continue;
            }
            return h;
        }
        double left = end - now();
        if (left <= 0)
            return NULL;
        struct pollfd p = {F.cfd, POLLIN, 0};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        char buf[65536];
        ssize_t n = read(F.cfd, buf, sizeof(buf));
        if (n <= 0)
            return NULL;
        assert_int_equal(phx_wire_decoder_feed(F.dec, buf, (size_t)n, &err), 0);
    }
}

static void agent_start(void)
{
    char master[64], cgroot[128], run[300];
    snprintf(master, sizeof(master), "127.0.0.1:%d", F.port);
    snprintf(run, sizeof(run), "%s/%s", F.state, F.run_sub ? F.run_sub : "run");
    snprintf(cgroot, sizeof(cgroot), "agent.cgroup_root=%s", F.cgroot);
    /* What the last agent sent stays with it: a wait after a restart sees
     * what the new agent sends. */
    json_array_clear(F.backlog);
    F.agent = fork();
    assert_true(F.agent >= 0);
    if (F.agent == 0) {
        char log[256];
        snprintf(log, sizeof(log), "%s/agent.log", F.dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        setsid(); /* like the e2e harness: killing its group must spare tasks */
        execl(F.bin, "phx-agent", "-n", AGENTNM, "-m", master, "-t", "synthetic:" TOPO,
              "-d", F.state, "-r", run, "--munge-socket", F.munged.socket, "-s",
              "agent.status_retry=0.3", "-s", cgroot, "-v", (char *)NULL);
        _exit(127);
    }
    struct pollfd p = {F.lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 15000), 1);
    F.cfd = accept(F.lfd, NULL, NULL);
    assert_true(F.cfd >= 0);
    F.dec = phx_wire_decoder_create(1 << 20);
    json_t *reg = next_frame(10);
    assert_non_null(reg);
    assert_string_equal(json_string_value(json_object_get(reg, "type")), "REGISTER");
    json_decref(F.reg);
    F.reg = reg;
    send_frame(json_pack("{s:s, s:i, s:f, s:i}", "type", "REGISTERED", "agent_id", 1,
                         "heartbeat_interval", 1.0, "heartbeat_missed", 5));
}

static void agent_kill9(void)
{
    if (F.agent > 0) {
        kill(F.agent, SIGKILL);
        waitpid(F.agent, NULL, 0);
        F.agent = 0;
    }
    if (F.cfd >= 0)
        close(F.cfd);
    F.cfd = -1;
    phx_wire_decoder_destroy(F.dec);
    F.dec = NULL;
}

static bool status_is(const json_t *h, const char *fw, const char *id,
                      const char *state)
{
    return strcmp(jstr(h, "task_id"), id) == 0 &&
           (!fw || strcmp(jstr(h, "framework_id"), fw) == 0) &&
           (!state || strcmp(jstr(h, "state"), state) == 0);
}

/* Record (and acknowledge, unless told not to) a STATUS received. */
static void got_status(json_t *h)
{
    json_array_append(F.statuses, h);
    if (F.autoack)
        send_frame(json_pack("{s:s, s:O, s:O}", "type", "STATUS_ACK", "task_id",
                             json_object_get(h, "task_id"), "uuid",
                             json_object_get(h, "uuid")));
}

/* Wait for a STATUS of task id of framework fw (any framework if NULL), in
 * any state if state is NULL, else that one.  Statuses of other tasks that
 * came first are not lost: the agent sends its tasks' statuses in no set
 * order (e.g. those of two tasks that ended while it was down), so the next
 * waits look at them first. */
static json_t *wait_fw_status(const char *fw, const char *id, const char *state,
                              double timeout)
{
    size_t i;
    json_t *b;
    json_array_foreach(F.backlog, i, b)
    {
        if (status_is(b, fw, id, state)) {
            json_incref(b);
            json_array_remove(F.backlog, i);
            return b;
        }
    }
    double end = now() + timeout;
    for (;;) {
        json_t *h = next_frame(end - now());
        if (!h)
            fail_msg("no %s status for task %s/%s within %.0f s", state ? state : "",
                     fw ? fw : "*", id, timeout);
        if (strcmp(json_string_value(json_object_get(h, "type")), "STATUS") != 0) {
            json_decref(h);
            continue;
        }
        got_status(h);
        if (status_is(h, fw, id, state))
            return h;
        json_array_append_new(F.backlog, h);
    }
}

static json_t *wait_status(const char *id, const char *state, double timeout)
{
    return wait_fw_status(NULL, id, state, timeout);
}

/* The first status past TASK_RUNNING: an acknowledged TASK_RUNNING may still
 * be sent again, when the agent's resend timer beats the ack. */
static json_t *wait_fw_end(const char *fw, const char *id, double timeout)
{
    double end = now() + timeout;
    json_t *s = wait_fw_status(fw, id, NULL, timeout);
    while (strcmp(json_string_value(json_object_get(s, "state")), "TASK_RUNNING") ==
           0) {
        json_decref(s);
        s = wait_fw_status(fw, id, NULL, end - now());
    }
    return s;
}

static json_t *wait_end(const char *id, double timeout)
{
    return wait_fw_end(NULL, id, timeout);
}

/* Drain frames for s seconds (recording and acking statuses). */
static void drain(double s)
{
    double end = now() + s;
    json_t *h;
    while ((h = next_frame(end - now()))) {
        if (strcmp(json_string_value(json_object_get(h, "type")), "STATUS") == 0) {
            got_status(h);
            json_array_append(F.backlog, h);
        }
        json_decref(h);
    }
}

/* Statuses of a task in a state, each counted once: a status resent
 * before its ack arrived comes again with the same uuid. */
static int count_fw_states(const char *fw, const char *id, const char *state)
{
    int n = 0;
    size_t i;
    json_t *s;
    json_array_foreach(F.statuses, i, s)
    {
        const char *uuid = json_string_value(json_object_get(s, "uuid"));
        bool again = false;
        for (size_t k = 0; k < i && !again; k++)
            again = strcmp(json_string_value(
                               json_object_get(json_array_get(F.statuses, k), "uuid")),
                           uuid) == 0;
        if (!again &&
            strcmp(json_string_value(json_object_get(s, "task_id")), id) == 0 &&
            (!fw ||
             strcmp(json_string_value(json_object_get(s, "framework_id")), fw) == 0) &&
            strcmp(json_string_value(json_object_get(s, "state")), state) == 0)
            n++;
    }
    return n;
}

static int count_states(const char *id, const char *state)
{
    return count_fw_states(NULL, id, state);
}

static json_t *task_new(const char *id, const char *script)
{
    return json_pack(
        "{s:s, s:s, s:i, s:s, s:i, s:i, s:[s,s,s], s:{s:s}, s:s, s:n, s:n, "
        "s:s, s:I, s:s, s:i, s:i}",
        "task_id", id, "framework_id", "fw-1", "gang_id", 7, "user", USER, "uid",
        (int)F.uid, "gid", (int)F.gid, "argv", "/bin/sh", "-c", script, "env", "FOO",
        "bar baz", "cwd", F.shared, "stdout", "stderr", "cores", "1", "memory",
        (json_int_t)256 << 20, "numas", "0", "time_limit", 0, "kill_grace", 1);
}

typedef enum { SIGNED, UNSIGNED, TAMPERED } how_t;

static void launch(json_t *task, how_t how)
{
    char *payload = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
    char *cred = NULL;
    phx_error_t err;
    if (how == TAMPERED)
        payload[strlen(payload) / 2] ^= 1;
    if (how != UNSIGNED)
        assert_int_equal(
            phx_munge_encode(F.munge, payload, strlen(payload), 0, &cred, &err), 0);
    json_t *hdr = json_pack("{s:s, s:o}", "type", "LAUNCH", "task", task);
    if (cred)
        json_object_set_new(hdr, "cred", json_string(cred));
    send_frame(hdr);
    free(cred);
    free(payload);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The agent's local name of task id of framework fw-1 (doc/agent.md). */
#define KEY(id) "fw-1+" id

static bool records_exist(const char *key)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/run/%s", F.state, key);
    return access(p, F_OK) == 0;
}

/* Wait until the agent forgot task key (its terminal status acknowledged,
 * its records removed), recording and acknowledging statuses meanwhile. */
static void wait_forgotten(const char *key, double timeout)
{
    double end = now() + timeout;
    while (records_exist(key)) {
        if (now() > end)
            fail_msg("the records of task %s are still there after %.0f s", key,
                     timeout);
        drain(0.05);
    }
}

static bool cgroup_exists(const char *ctrl, const char *key)
{
    char p[512];
    snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s/" AGENTNM "/%s", ctrl, F.cgroot, key);
    return access(p, F_OK) == 0;
}

static bool pid_alive(pid_t pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *c = strrchr(buf, ')');
    return c && c[2] != 'Z' && c[2] != 'X';
}

/* s must be state with exit code code (json_integer_value reads a null
 * exit_code, e.g. of a task killed by a signal, as 0: say what came). */
static void assert_exit(json_t *s, const char *state, int code)
{
    json_t *c = json_object_get(s, "exit_code");
    if (strcmp(jstr(s, "state"), state) != 0 || !json_is_integer(c) ||
        json_integer_value(c) != code || !json_is_null(json_object_get(s, "signal")))
        fail_msg("expected %s with exit code %d, got %s", state, code,
                 json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS));
}

/* A task script that ends with status code once the test creates
 * <shared>/go-<id> (so that it ends when the test says, not after a sleep
 * that a loaded machine makes too short or too long). */
static const char *wait_go(char *buf, size_t len, const char *id, int code)
{
    snprintf(buf, len, "while [ ! -e %s/go-%s ]; do sleep 0.05; done; exit %d",
             F.shared, id, code);
    return buf;
}

static void go(const char *id)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/go-%s", F.shared, id);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
}

/* Wait until the shim of task key recorded how its program ended. */
static void wait_exit_record(const char *key, double timeout)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/run/%s/exit", F.state, key);
    double end = now() + timeout;
    while (access(p, F_OK) != 0) {
        if (now() > end)
            fail_msg("no exit record %s within %.0f s", p, timeout);
        usleep(20000);
    }
}

/* ------------------------------------------------------------------------- */

static void test_runs_as_user_in_its_cpuset(void **state)
{
    (void)state;
    char script[1024];
    snprintf(script, sizeof(script),
             "id -u; id -g; pwd; echo \"$PHX_TASK_ID $PHX_NODE $PHX_CPUS_ON_NODE "
             "FOO=$FOO HOME=$HOME\"; grep -E '^(Cpus|Mems)_allowed_list' "
             "/proc/self/status; grep -c %s/" AGENTNM
             "/" KEY("t-user") " /proc/self/cgroup; echo oops >&2",
             F.cgroot);
    launch(task_new("t-user", script), SIGNED);
    json_t *s = wait_status("t-user", "TASK_RUNNING", 10);
    json_decref(s);
    s = wait_end("t-user", 10);
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
    phx_topo_t *topo = phx_topo_load_synthetic(TOPO, &err);
    assert_non_null(topo);
    phx_topo_coreset_t *cores = phx_topo_coreset_create(phx_topo_ncores(topo));
    phx_topo_coreset_add(cores, 1);
    char *cpus = phx_topo_bind_cpuset_str(topo, cores, &err);
    assert_non_null(cpus);
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "%u\n%u\n%s\nt-user " AGENTNM " 1 FOO=bar baz HOME=%s\n"
             "Cpus_allowed_list:\t%s\nMems_allowed_list:\t0\n",
             (unsigned)F.uid, (unsigned)F.gid, F.shared, getpwnam(USER)->pw_dir, cpus);
    free(cpus);
    phx_topo_coreset_destroy(cores);
    phx_topo_destroy(topo);

    char path[512];
    snprintf(path, sizeof(path), "%s/tasks/" KEY("t-user") "/stdout", F.state);
    char *out = slurp(path);
    assert_non_null(out);
    /* The cgroup line count (last line) is that of the hierarchies joined. */
    if (strncmp(out, expect, strlen(expect)) != 0)
        fail_msg("stdout:\n%s\nexpected to start with:\n%s", out, expect);
    assert_true(atoi(out + strlen(expect)) >= 4);
    free(out);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, F.uid);
    snprintf(path, sizeof(path), "%s/tasks/" KEY("t-user") "/stderr", F.state);
    out = slurp(path);
    assert_string_equal(out, "oops\n");
    free(out);
    /* Acknowledged: records and cgroups gone. */
    wait_forgotten(KEY("t-user"), 10);
    assert_false(cgroup_exists("cpuset", KEY("t-user")));
    assert_false(cgroup_exists("memory", KEY("t-user")));
    assert_false(cgroup_exists("freezer", KEY("t-user")));
}

static void expect_error(const char *id, json_t *task, how_t how, const char *reason,
                         const char *needle)
{
    char marker[512];
    snprintf(marker, sizeof(marker), "%s/ran-%s", F.shared, id);
    json_object_set_new(task, "task_id", json_string(id));
    launch(task, how);
    json_t *s = wait_status(id, NULL, 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_ERROR");
    assert_string_equal(json_string_value(json_object_get(s, "reason")), reason);
    const char *msg = json_string_value(json_object_get(s, "message"));
    if (!strstr(msg, needle))
        fail_msg("task %s: message \"%s\" lacks \"%s\"", id, msg, needle);
    json_decref(s);
    assert_int_equal(access(marker, F_OK), -1);
}

static void test_refused_launches(void **state)
{
    (void)state;
    char script[512];
    json_t *t;
#define MARK(id)                                                                       \
    (snprintf(script, sizeof(script), "touch %s/ran-%s", F.shared, id), script)
    expect_error("r-unsigned", task_new("r-unsigned", MARK("r-unsigned")), UNSIGNED,
                 "REASON_TASK_UNAUTHORIZED", "not signed");
    expect_error("r-tampered", task_new("r-tampered", MARK("r-tampered")), TAMPERED,
                 "REASON_TASK_UNAUTHORIZED", "munge credential payload does not match");
    /* Signed, then changed in flight. */
    {
        json_t *task = task_new("r-changed", MARK("r-changed"));
        char *payload = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS), *cred;
        phx_error_t err;
        assert_int_equal(
            phx_munge_encode(F.munge, payload, strlen(payload), 0, &cred, &err), 0);
        json_object_set_new(task, "uid", json_integer(0));
        json_object_set_new(task, "user", json_string("root"));
        send_frame(
            json_pack("{s:s, s:o, s:s}", "type", "LAUNCH", "task", task, "cred", cred));
        free(cred);
        free(payload);
        json_t *s = wait_status("r-changed", NULL, 10);
        assert_string_equal(json_string_value(json_object_get(s, "reason")),
                            "REASON_TASK_UNAUTHORIZED");
        json_decref(s);
    }
    t = task_new("x", MARK("r-nouser"));
    json_object_set_new(t, "user", json_string("no-such-user-phx"));
    expect_error("r-nouser", t, SIGNED, "REASON_TASK_INVALID",
                 "user \"no-such-user-phx\" does not exist on node \"" AGENTNM "\"");
    t = task_new("x", MARK("r-uid"));
    json_object_set_new(t, "uid", json_integer((json_int_t)F.uid + 1));
    expect_error("r-uid", t, SIGNED, "REASON_TASK_INVALID", "has uid");
    t = task_new("x", MARK("r-root"));
    json_object_set_new(t, "user", json_string("root"));
    json_object_set_new(t, "uid", json_integer(0));
    expect_error("r-root", t, SIGNED, "REASON_TASK_UNAUTHORIZED", "agent.allow_root");
    t = task_new("x", MARK("r-cores"));
    json_object_set_new(t, "cores", json_string("2-9"));
    expect_error("r-cores", t, SIGNED, "REASON_TASK_INVALID", "cores \"2-9\"");
    t = task_new("x", MARK("r-out"));
    json_object_set_new(t, "stdout", json_string("/root/phx-not-yours/out"));
    expect_error("r-out", t, SIGNED, "REASON_COMMAND_EXECUTOR_FAILED",
                 "could not open stdout \"/root/phx-not-yours/out\"");
    t = task_new("x", MARK("r-exec"));
    json_object_set_new(t, "argv", json_pack("[s]", "/nonexistent/program"));
    expect_error("r-exec", t, SIGNED, "REASON_COMMAND_EXECUTOR_FAILED",
                 "could not execute \"/nonexistent/program\"");
    t = task_new("x", MARK("r-cwd"));
    json_object_set_new(t, "cwd", json_string("/root"));
    expect_error("r-cwd", t, SIGNED, "REASON_COMMAND_EXECUTOR_FAILED",
                 "could not change to directory \"/root\"");
    /* An id that cannot name records: refused without records. */
    t = task_new("bad/id", "true");
    launch(t, SIGNED);
    json_t *s = wait_status("bad/id", "TASK_ERROR", 10);
    json_decref(s);
    /* The agent is still there and runs good tasks. */
    launch(task_new("r-after", "exit 0"), SIGNED);
    s = wait_status("r-after", "TASK_FINISHED", 10);
    json_decref(s);
#undef MARK
}

static void test_duplicate_launch_ignored(void **state)
{
    (void)state;
    launch(task_new("d-1", "sleep 1"), SIGNED);
    json_decref(wait_status("d-1", "TASK_RUNNING", 10));
    launch(task_new("d-1", "sleep 1"), SIGNED);
    json_decref(wait_status("d-1", "TASK_FINISHED", 10));
    drain(0.5);
    assert_int_equal(count_states("d-1", "TASK_FINISHED"), 1);
    assert_int_equal(count_states("d-1", "TASK_ERROR"), 0);
}

static void test_memory_hog_is_oom(void **state)
{
    (void)state;
    json_t *t = task_new("m-hog", "exec tail /dev/zero");
    json_object_set_new(t, "memory", json_integer(64 << 20));
    launch(t, SIGNED);
    json_t *s = wait_end("m-hog", 20);
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
    snprintf(termf, sizeof(termf), "%s/term-l-sleep", F.shared);
    unlink(termf);
    /* SIGTERM kills its sleeps, not the shell: it notes it, sleeps on. */
    snprintf(script, sizeof(script),
             "trap 'echo TERM >>%s' TERM; while :; do sleep 0.1; done; exit 0", termf);
    json_t *t = task_new("l-sleep", script);
    json_object_set_new(t, "time_limit", json_integer(1));
    json_object_set_new(t, "kill_grace", json_integer(2));
    double t0 = wall(); /* the task's clock starts after this */
    launch(t, SIGNED);
    json_t *s = wait_end("l-sleep", 60);
    double ended = json_number_value(json_object_get(s, "timestamp"));
    if (strcmp(jstr(s, "state"), "TASK_FAILED") != 0 ||
        strcmp(jstr(s, "reason"), "REASON_MAX_COMPLETION_TIME_REACHED") != 0 ||
        json_integer_value(json_object_get(s, "signal")) != SIGKILL ||
        !json_is_null(json_object_get(s, "exit_code")) ||
        !strstr(jstr(s, "message"), "time limit of 1 s reached (terminated)"))
        fail_msg("expected TASK_FAILED, time limit reached, SIGKILL: got %s",
                 json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS));
    json_decref(s);
    /* It had SIGTERM before it was killed... */
    char *txt = slurp(termf);
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
    snprintf(pidfile, sizeof(pidfile), "%s/escapee.pid", F.shared);
    unlink(pidfile);
    /* A double-forked, new-session child: it must die with the task. */
    snprintf(script, sizeof(script),
             "setsid sh -c 'sleep 300 & echo $! > %s.tmp; mv %s.tmp %s; wait' & "
             "trap '' TERM; sleep 300",
             pidfile, pidfile, pidfile);
    launch(task_new("k-tree", script), SIGNED);
    json_decref(wait_status("k-tree", "TASK_RUNNING", 10));
    char *txt = NULL;
    for (int i = 0; i < 100 && !(txt = slurp(pidfile)); i++)
        usleep(50000);
    assert_non_null(txt);
    pid_t escapee = atoi(txt);
    free(txt);
    assert_true(escapee > 0 && pid_alive(escapee));
    send_frame(json_pack("{s:s, s:s, s:s, s:f}", "type", "KILL", "framework_id", "fw-1",
                         "task_id", "k-tree", "grace", 0.5));
    json_t *s = wait_end("k-tree", 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_KILLED");
    assert_string_equal(json_string_value(json_object_get(s, "reason")),
                        "REASON_TASK_KILLED");
    json_decref(s);
    for (int i = 0; i < 20 && pid_alive(escapee); i++)
        usleep(50000);
    assert_false(pid_alive(escapee));
    wait_forgotten(KEY("k-tree"), 10);
    assert_false(cgroup_exists("freezer", KEY("k-tree")));
    /* KILL of a finished task: nothing; of an unknown task (or of a known
     * task id of another framework): TASK_LOST. */
    send_frame(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id", "fw-1",
                         "task_id", "k-tree"));
    send_frame(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id", "fw-9",
                         "task_id", "k-tree"));
    send_frame(json_pack("{s:s, s:s, s:s}", "type", "KILL", "framework_id", "fw-1",
                         "task_id", "k-nosuch"));
    json_decref(wait_fw_status("fw-9", "k-tree", "TASK_LOST", 5));
    json_decref(wait_fw_status("fw-1", "k-nosuch", "TASK_LOST", 5));
    assert_int_equal(count_fw_states("fw-1", "k-tree", "TASK_LOST"), 0);
}

static void test_agent_killed_task_survives(void **state)
{
    (void)state;
    char script[512];
    launch(task_new("v-run", wait_go(script, sizeof(script), "v-run", 7)), SIGNED);
    json_decref(wait_status("v-run", "TASK_RUNNING", 10));
    launch(task_new("v-down", wait_go(script, sizeof(script), "v-down", 3)), SIGNED);
    json_decref(wait_status("v-down", "TASK_RUNNING", 10));
    agent_kill9();
    go("v-down"); /* v-down ends while no agent runs */
    wait_exit_record(KEY("v-down"), 20);
    agent_start();
    json_t *tasks = json_object_get(F.reg, "tasks");
    assert_int_equal(json_array_size(tasks), 2);
    go("v-run"); /* v-run ends under the new agent */
    json_t *s = wait_status("v-down", "TASK_FAILED", 10);
    assert_exit(s, "TASK_FAILED", 3);
    json_decref(s);
    s = wait_status("v-run", "TASK_FAILED", 10);
    assert_exit(s, "TASK_FAILED", 7);
    json_decref(s);
    wait_forgotten(KEY("v-run"), 10);
    wait_forgotten(KEY("v-down"), 10);
    drain(0.3);
    assert_int_equal(count_states("v-run", "TASK_FAILED"), 1);
    assert_int_equal(count_states("v-down", "TASK_FAILED"), 1);
}

/* An agent of a version that kept its records in <state_dir>/run (the
 * default run_dir is elsewhere now) is replaced while a task runs: the new
 * agent adopts the task from there and reports its true end. */
static void test_upgrade_adopts_old_records(void **state)
{
    (void)state;
    char script[512];
    launch(task_new("g-old", wait_go(script, sizeof(script), "g-old", 5)), SIGNED);
    json_decref(wait_status("g-old", "TASK_RUNNING", 10));
    agent_kill9();
    F.run_sub = "run-new";
    agent_start();
    assert_int_equal(json_array_size(json_object_get(F.reg, "tasks")), 1);
    go("g-old");
    json_t *s = wait_status("g-old", "TASK_FAILED", 10);
    assert_exit(s, "TASK_FAILED", 5);
    json_decref(s);
    wait_forgotten(KEY("g-old"), 10); /* removed from <state>/run */
    agent_kill9();
    F.run_sub = NULL;
    agent_start();
}

static void test_unacked_status_resent(void **state)
{
    (void)state;
    F.autoack = false;
    launch(task_new("u-1", "exit 0"), SIGNED);
    json_t *s = wait_status("u-1", "TASK_FINISHED", 10);
    const char *uuid = json_string_value(json_object_get(s, "uuid"));
    json_t *again = wait_status("u-1", "TASK_FINISHED", 3); /* status_retry 0.3 s */
    assert_string_equal(json_string_value(json_object_get(again, "uuid")), uuid);
    json_decref(again);
    /* Across a restart too, listed in REGISTER. */
    agent_kill9();
    agent_start();
    json_t *tasks = json_object_get(F.reg, "tasks");
    assert_int_equal(json_array_size(tasks), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(tasks, 0), "state")),
        "TASK_FINISHED");
    again = wait_status("u-1", "TASK_FINISHED", 3);
    assert_string_equal(json_string_value(json_object_get(again, "uuid")), uuid);
    json_decref(again);
    /* This ack names the framework too (the master's do not). */
    send_frame(json_pack("{s:s, s:s, s:s, s:s}", "type", "STATUS_ACK", "framework_id",
                         "fw-1", "task_id", "u-1", "uuid", uuid));
    json_decref(s);
    F.autoack = true;
    wait_forgotten(KEY("u-1"), 10);
}

/* SIGTERM stops the agent cleanly (exit 0: no leak under ASan) and leaves
 * its task running; the next agent reports it. */
static void test_agent_sigterm_keeps_tasks(void **state)
{
    (void)state;
    char script[512];
    launch(task_new("s-1", wait_go(script, sizeof(script), "s-1", 5)), SIGNED);
    json_decref(wait_status("s-1", "TASK_RUNNING", 10));
    kill(F.agent, SIGTERM);
    int st;
    assert_int_equal(waitpid(F.agent, &st, 0), F.agent);
    F.agent = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(cgroup_exists("freezer", KEY("s-1")));
    agent_kill9(); /* closes the connection */
    agent_start();
    json_t *tasks = json_object_get(F.reg, "tasks");
    assert_int_equal(json_array_size(tasks), 1);
    assert_string_equal(jstr(json_array_get(tasks, 0), "state"), "TASK_RUNNING");
    go("s-1"); /* it ends under the new agent, which adopted it */
    json_t *s = wait_status("s-1", "TASK_FAILED", 10);
    assert_exit(s, "TASK_FAILED", 5);
    json_decref(s);
    wait_forgotten(KEY("s-1"), 10);
}

/* Task ids are unique per framework only: two frameworks' "c-0" run side by
 * side, report separately (acks name no framework, like the master's),
 * survive an agent restart as two tasks, and a KILL of one spares the other. */
static json_t *fw_task(const char *fw, const char *id, const char *script)
{
    json_t *t = task_new(id, script);
    json_object_set_new(t, "framework_id", json_string(fw));
    return t;
}

static void test_same_task_id_two_frameworks(void **state)
{
    (void)state;
    char script[512], go[256], path[512];
    snprintf(go, sizeof(go), "%s/go-c0", F.shared);
    unlink(go);
    snprintf(script, sizeof(script),
             "echo \"$PHX_FRAMEWORK_ID $PHX_TASK_ID\"; "
             "while [ ! -e %s ]; do sleep 0.05; done; exit 0",
             go);
    launch(fw_task("fw-a", "c-0", script), SIGNED);
    json_decref(wait_fw_status("fw-a", "c-0", "TASK_RUNNING", 10));
    launch(fw_task("fw-b", "c-0", script), SIGNED);
    json_decref(wait_fw_status("fw-b", "c-0", "TASK_RUNNING", 10));
    assert_true(cgroup_exists("freezer", "fw-a+c-0"));
    assert_true(cgroup_exists("freezer", "fw-b+c-0"));

    /* Both are reported after a restart, each with its framework. */
    agent_kill9();
    agent_start();
    json_t *tasks = json_object_get(F.reg, "tasks"), *e;
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
    send_frame(json_pack("{s:s, s:s, s:s, s:f}", "type", "KILL", "framework_id", "fw-a",
                         "task_id", "c-0", "grace", 0.2));
    json_t *s = wait_fw_end("fw-a", "c-0", 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "TASK_KILLED");
    json_decref(s);
    wait_forgotten("fw-a+c-0", 10);
    assert_false(cgroup_exists("freezer", "fw-a+c-0"));
    assert_true(records_exist("fw-b+c-0"));
    assert_true(cgroup_exists("freezer", "fw-b+c-0"));
    assert_int_equal(count_fw_states("fw-b", "c-0", "TASK_KILLED"), 0);
    assert_int_equal(count_fw_states("fw-b", "c-0", "TASK_FINISHED"), 0);

    /* fw-b's ends on its own, with its own outcome. */
    int fd = open(go, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    s = wait_fw_status("fw-b", "c-0", "TASK_FINISHED", 10);
    assert_int_equal(json_integer_value(json_object_get(s, "exit_code")), 0);
    json_decref(s);
    wait_forgotten("fw-b+c-0", 10);
    drain(0.3);
    assert_int_equal(count_fw_states("fw-a", "c-0", "TASK_KILLED"), 1);
    assert_int_equal(count_fw_states("fw-a", "c-0", "TASK_FINISHED"), 0);
    assert_int_equal(count_fw_states("fw-b", "c-0", "TASK_FINISHED"), 1);
    const char *fws[] = {"fw-a", "fw-b"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/tasks/%s+c-0/stdout", F.state, fws[k]);
        char *out = slurp(path), expect[64];
        snprintf(expect, sizeof(expect), "%s c-0\n", fws[k]);
        assert_non_null(out);
        assert_string_equal(out, expect);
        free(out);
    }

    /* A third framework's c-0 is not a duplicate of the two done ones. */
    launch(fw_task("fw-c", "c-0", "exit 0"), SIGNED);
    json_decref(wait_fw_status("fw-c", "c-0", "TASK_FINISHED", 10));

    /* Ids too long together for a file name: a hashed key, same story. */
    char longfw[IDMAX + 1], longid[IDMAX + 1];
    memset(longfw, 'f', IDMAX);
    memset(longid, 'i', IDMAX);
    longfw[IDMAX] = longid[IDMAX] = '\0';
    snprintf(script, sizeof(script), "test \"$PHX_TASK_ID\" = %s", longid);
    launch(fw_task(longfw, longid, script), SIGNED);
    s = wait_fw_end(longfw, longid, 10);
    assert_string_equal(json_string_value(json_object_get(s, "state")),
                        "TASK_FINISHED");
    json_decref(s);
}

/* ------------------------------------------------------------------------- */

static void ensure_user(void)
{
    if (!getpwnam(USER) && system("useradd --system --no-create-home " USER) != 0)
        fail_msg("could not create user " USER);
    struct passwd *pw = getpwnam(USER);
    F.uid = pw->pw_uid;
    F.gid = pw->pw_gid;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "test_agent_exec needs root\n");
        return -1;
    }
    ensure_user();
    snprintf(F.dir, sizeof(F.dir), "/tmp/phx-agent-XXXXXX");
    if (!mkdtemp(F.dir) || chmod(F.dir, 0711) < 0)
        return -1;
    snprintf(F.state, sizeof(F.state), "%s/state", F.dir);
    snprintf(F.shared, sizeof(F.shared), "%s/shared", F.dir);
    if (mkdir(F.shared, 0777) < 0 || chmod(F.shared, 01777) < 0)
        return -1;
    ssize_t n = readlink("/proc/self/exe", F.bin, sizeof(F.bin) - 32);
    if (n <= 0)
        return -1;
    F.bin[n] = '\0';
    /* $BUILD/tests/unit/test_agent_exec → $BUILD/bin/phx-agent */
    for (int i = 0; i < 3; i++)
        *strrchr(F.bin, '/') = '\0';
    strcat(F.bin, "/bin/phx-agent");
    if (phx_test_munged_start(&F.munged) < 0)
        return -1;
    phx_error_t err;
    if (!(F.munge = phx_munge_create(F.munged.socket, &err)))
        return -1;
    F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(F.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(F.lfd, 4) < 0 ||
        getsockname(F.lfd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    F.port = ntohs(sa.sin_port);
    F.cfd = -1;
    F.statuses = json_array();
    F.backlog = json_array();
    snprintf(F.cgroot, sizeof(F.cgroot), "phx-unit-%d", (int)getpid());
    F.autoack = true;
    signal(SIGPIPE, SIG_IGN);
    agent_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agent_kill9();
    /* Whatever a failed test left: kill it, remove the cgroups. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "r=%s; for d in /sys/fs/cgroup/*/$r/" AGENTNM "/*/; do "
             "[ -d \"$d\" ] || continue; echo THAWED > \"$d/freezer.state\" "
             "2>/dev/null; for p in $(cat \"$d/cgroup.procs\"); do kill -9 $p; done; "
             "done; sleep 0.2; for d in /sys/fs/cgroup/*/$r/" AGENTNM
             "/*/ /sys/fs/cgroup/*/$r/" AGENTNM "/ /sys/fs/cgroup/*/$r/; do "
             "rmdir \"$d\" 2>/dev/null; done; true",
             F.cgroot);
    if (system(cmd) != 0)
        fprintf(stderr, "teardown: cleanup failed\n");
    if (getenv("PHX_KEEP"))
        fprintf(stderr, "kept %s\n", F.dir);
    else {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "teardown: could not remove %s\n", F.dir);
    }
    phx_munge_destroy(F.munge);
    phx_test_munged_stop(&F.munged);
    close(F.lfd);
    json_decref(F.statuses);
    json_decref(F.backlog);
    json_decref(F.reg);
    return 0;
}

static bool agent_up(void)
{
    if (F.agent > 0 && waitpid(F.agent, NULL, WNOHANG) == F.agent)
        F.agent = 0; /* it died */
    return F.agent > 0 && F.cfd >= 0 && F.dec;
}

static bool no_records(void)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/run", F.state);
    DIR *d = opendir(p);
    if (!d)
        return true;
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(d)))
        empty = de->d_name[0] == '.';
    closedir(d);
    return empty;
}

/* After each test, passed or failed: the next starts with a connected agent
 * that has no task left, acknowledging, and no status in the backlog, so a
 * failure does not fail the tests after it.  A test that passed left nothing
 * (its last acknowledgements may still be on their way); after a failure,
 * the agent is restarted without records: its start sweeps the cgroups of
 * the tasks left behind (killing what runs in them). */
static int reset(void **state)
{
    (void)state;
    F.autoack = true;
    for (int i = 0; i < 50 && agent_up() && !no_records(); i++)
        drain(0.1);
    if (!agent_up() || !no_records()) {
        fprintf(stderr, "reset: restarting the agent without its tasks\n");
        agent_kill9();
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s/run'", F.state);
        if (system(cmd) != 0)
            fprintf(stderr, "reset: could not remove %s/run\n", F.state);
        agent_start();
    }
    json_array_clear(F.backlog);
    return 0;
}

#define TEST(f) cmocka_unit_test_teardown(f, reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_runs_as_user_in_its_cpuset),
        TEST(test_refused_launches),
        TEST(test_duplicate_launch_ignored),
        TEST(test_memory_hog_is_oom),
        TEST(test_time_limit),
        TEST(test_kill_leaves_nothing),
        TEST(test_agent_killed_task_survives),
        TEST(test_upgrade_adopts_old_records),
        TEST(test_unacked_status_resent),
        TEST(test_agent_sigterm_keeps_tasks),
        TEST(test_same_task_id_two_frameworks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
