/* The fake master of agentharness.h. */
#include "tests/unit/support/agentharness.h"

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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/support/paths.h"

phx_agentharness_t phx_agentharness;
static phx_agentharness_t *const H = &phx_agentharness;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double phx_agentharness_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *phx_agentharness_jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(missing)";
}

void phx_agentharness_send(json_t *hdr)
{
    uint8_t *buf;
    size_t len;
    phx_error_t err;
    if (H->sealing)
        assert_int_equal(phx_wire_seal(H->session, PHX_SEAL_M2A, ++H->seal_sent, hdr,
                                       NULL, 0, 1 << 20, &buf, &len, &err),
                         0);
    else
        assert_int_equal(phx_wire_encode(hdr, NULL, 0, 1 << 20, &buf, &len, &err), 0);
    json_decref(hdr);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(H->cfd, buf + off, len - off);
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
        int r = phx_wire_decoder_next(H->dec, &f, &err);
        assert_true(r >= 0);
        if (r == 1 && H->sealing) {
            phx_frame_t inner;
            if (phx_wire_unseal(H->session, PHX_SEAL_A2M, &H->seal_received, &f,
                                1 << 20, &inner, &err) < 0)
                fail_msg("frame from the agent refused: %s", err.text);
            phx_frame_clear(&f);
            f = inner;
        }
        if (r == 1) {
            json_t *h = json_incref(f.header);
            phx_frame_clear(&f);
            const char *type = json_string_value(json_object_get(h, "type"));
            if (strcmp(type, "HEARTBEAT") == 0) {
                json_decref(h);
                phx_agentharness_send(json_pack("{s:s}", "type", "HEARTBEAT_ACK"));
                continue;
            }
            return h;
        }
        double left = end - now();
        if (left <= 0)
            return NULL;
        struct pollfd p = {H->cfd, POLLIN, 0};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        char buf[65536];
        ssize_t n = read(H->cfd, buf, sizeof(buf));
        if (n <= 0)
            return NULL;
        assert_int_equal(phx_wire_decoder_feed(H->dec, buf, (size_t)n, &err), 0);
    }
}

void phx_agentharness_agent_start(void)
{
    char master[64], cgroot[128], run[300];
    snprintf(master, sizeof(master), "127.0.0.1:%d", H->port);
    snprintf(run, sizeof(run), "%s/%s", H->state, H->run_sub ? H->run_sub : "run");
    snprintf(cgroot, sizeof(cgroot), "agent.cgroup_root=%s", H->cgroot);
    /* What the last agent sent stays with it: a wait after a restart sees
     * what the new agent sends. */
    json_array_clear(H->backlog);
    pid_t self = getpid();
    H->agent = fork();
    assert_true(H->agent >= 0);
    if (H->agent == 0) {
        char log[256];
        snprintf(log, sizeof(log), "%s/agent.log", H->dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        setsid(); /* like the e2e harness: killing its group must spare tasks */
        /* but not outlive the test: a test killed by its timeout left an
         * agent running for good (its tasks are the teardown's) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(127);
        /* as nohup would: the agent must not pass it on to its tasks */
        signal(SIGHUP, SIG_IGN);
        execl(H->bin, "phx-agent", "-n", PHX_AGENTHARNESS_NODE, "-m", master, "-t",
              "synthetic:" PHX_AGENTHARNESS_TOPO, "-d", H->state, "-r", run,
              "--munge-socket", H->munged.socket, "-s", "agent.status_retry=0.3", "-s",
              cgroot, "-v", H->extra_set ? "-s" : (char *)NULL, H->extra_set,
              (char *)NULL);
        _exit(127);
    }
    struct pollfd p = {H->lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 15000), 1);
    H->cfd = accept(H->lfd, NULL, NULL);
    assert_true(H->cfd >= 0);
    H->dec = phx_wire_decoder_create(1 << 20);
    H->sealing = false;
    H->seal_sent = H->seal_received = 0;
    json_t *reg = next_frame(10);
    assert_non_null(reg);
    assert_string_equal(json_string_value(json_object_get(reg, "type")), "REGISTER");
    json_decref(H->reg);
    H->reg = reg;
    /* A session key for this connection, for the agent's uid (ours). */
    unsigned char key[PHX_MAC_KEY_LEN];
    char hex[PHX_MAC_HEX_LEN + 1], payload[512], *cred = NULL;
    phx_error_t err;
    assert_int_equal(phx_mac_random(key, sizeof(key)), 0);
    phx_mac_to_hex(key, sizeof(key), hex);
    phx_mac_destroy(H->session);
    assert_non_null(H->session = phx_mac_create(key, sizeof(key), &err));
    H->seq = 0;
    snprintf(payload, sizeof(payload), "phx-session %s %s %s", PHX_AGENTHARNESS_NODE,
             phx_agentharness_jstr(reg, "nonce"), hex);
    if (phx_munge_encode_for(H->munge, payload, strlen(payload), 0, geteuid(), &cred,
                             &err) < 0)
        fail_msg("%s", err.text);
    phx_agentharness_send(json_pack("{s:s, s:i, s:f, s:i, s:s}", "type", "REGISTERED",
                                    "agent_id", 1, "heartbeat_interval", 1.0,
                                    "heartbeat_missed", 5, "session", cred));
    free(cred);
    H->sealing = true;
}

void phx_agentharness_agent_kill9(void)
{
    if (H->agent > 0) {
        kill(H->agent, SIGKILL);
        waitpid(H->agent, NULL, 0);
        H->agent = 0;
    }
    if (H->cfd >= 0)
        close(H->cfd);
    H->cfd = -1;
    H->sealing = false;
    phx_wire_decoder_destroy(H->dec);
    H->dec = NULL;
}

static bool status_is(const json_t *h, const char *fw, const char *id,
                      const char *state)
{
    return strcmp(phx_agentharness_jstr(h, "task_id"), id) == 0 &&
           (!fw || strcmp(phx_agentharness_jstr(h, "framework_id"), fw) == 0) &&
           (!state || strcmp(phx_agentharness_jstr(h, "state"), state) == 0);
}

/* Record (and acknowledge, unless told not to) a STATUS received. */
static void got_status(json_t *h)
{
    json_array_append(H->statuses, h);
    if (H->autoack)
        phx_agentharness_send(json_pack("{s:s, s:O, s:O}", "type", "STATUS_ACK",
                                        "task_id", json_object_get(h, "task_id"),
                                        "uuid", json_object_get(h, "uuid")));
}

json_t *phx_agentharness_wait_fw_status(const char *fw, const char *id,
                                        const char *state, double timeout)
{
    size_t i;
    json_t *b;
    json_array_foreach(H->backlog, i, b)
    {
        if (status_is(b, fw, id, state)) {
            json_incref(b);
            json_array_remove(H->backlog, i);
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
        json_array_append_new(H->backlog, h);
    }
}

json_t *phx_agentharness_wait_status(const char *id, const char *state, double timeout)
{
    return phx_agentharness_wait_fw_status(NULL, id, state, timeout);
}

json_t *phx_agentharness_wait_fw_end(const char *fw, const char *id, double timeout)
{
    double end = now() + timeout;
    json_t *s = phx_agentharness_wait_fw_status(fw, id, NULL, timeout);
    while (strcmp(json_string_value(json_object_get(s, "state")), "TASK_RUNNING") ==
           0) {
        json_decref(s);
        s = phx_agentharness_wait_fw_status(fw, id, NULL, end - now());
    }
    return s;
}

json_t *phx_agentharness_wait_end(const char *id, double timeout)
{
    return phx_agentharness_wait_fw_end(NULL, id, timeout);
}

void phx_agentharness_drain(double s)
{
    double end = now() + s;
    json_t *h;
    while ((h = next_frame(end - now()))) {
        if (strcmp(json_string_value(json_object_get(h, "type")), "STATUS") == 0) {
            got_status(h);
            json_array_append(H->backlog, h);
        }
        json_decref(h);
    }
}

int phx_agentharness_count_fw_states(const char *fw, const char *id, const char *state)
{
    int n = 0;
    size_t i;
    json_t *s;
    json_array_foreach(H->statuses, i, s)
    {
        const char *uuid = json_string_value(json_object_get(s, "uuid"));
        bool again = false;
        for (size_t k = 0; k < i && !again; k++)
            again = strcmp(json_string_value(
                               json_object_get(json_array_get(H->statuses, k), "uuid")),
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

int phx_agentharness_count_states(const char *id, const char *state)
{
    return phx_agentharness_count_fw_states(NULL, id, state);
}

json_t *phx_agentharness_task_new(const char *id, const char *script)
{
    return json_pack(
        "{s:s, s:s, s:i, s:s, s:i, s:i, s:[s,s,s], s:{s:s}, s:s, s:n, s:n, "
        "s:s, s:I, s:s, s:i, s:i}",
        "task_id", id, "framework_id", "fw-1", "gang_id", 7, "user",
        PHX_AGENTHARNESS_USER, "uid", (int)H->uid, "gid", (int)H->gid, "argv",
        "/bin/sh", "-c", script, "env", "FOO", "bar baz", "cwd", H->shared, "stdout",
        "stderr", "cores", "1", "memory", (json_int_t)256 << 20, "numas", "0",
        "time_limit", 0, "kill_grace", 1);
}

void phx_agentharness_launch(json_t *task, phx_agentharness_cred_t how)
{
    char *payload = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *hdr = json_pack("{s:s, s:o}", "type", "LAUNCH", "task", task);
    if (how != PHX_AGENTHARNESS_UNSIGNED) {
        phx_mac_t *key = H->session;
        uint64_t seq = how == PHX_AGENTHARNESS_REPLAYED ? H->seq : ++H->seq;
        if (how == PHX_AGENTHARNESS_TAMPERED)
            payload[strlen(payload) / 2] ^= 1;
        if (how == PHX_AGENTHARNESS_WRONG_KEY) {
            unsigned char other[PHX_MAC_KEY_LEN];
            assert_int_equal(phx_mac_random(other, sizeof(other)), 0);
            key = phx_mac_create(other, sizeof(other), NULL);
        }
        unsigned char mac[PHX_MAC_LEN];
        char hex[PHX_MAC_HEX_LEN + 1];
        assert_int_equal(
            phx_mac_compute_seq(key, "phx-launch", seq, payload, strlen(payload), mac),
            0);
        if (key != H->session)
            phx_mac_destroy(key);
        phx_mac_to_hex(mac, sizeof(mac), hex);
        json_object_set_new(hdr, "seq", json_integer((json_int_t)seq));
        json_object_set_new(hdr, "mac", json_string(hex));
    }
    phx_agentharness_send(hdr);
    free(payload);
}

char *phx_agentharness_slurp(const char *path)
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

bool phx_agentharness_records_exist(const char *key)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/run/%s", H->state, key);
    return access(p, F_OK) == 0;
}

void phx_agentharness_wait_forgotten(const char *key, double timeout)
{
    double end = now() + timeout;
    while (phx_agentharness_records_exist(key)) {
        if (now() > end)
            fail_msg("the records of task %s are still there after %.0f s", key,
                     timeout);
        phx_agentharness_drain(0.05);
    }
}

bool phx_agentharness_cgroup_exists(const char *ctrl, const char *key)
{
    char p[512];
    snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s/" PHX_AGENTHARNESS_NODE "/%s", ctrl,
             H->cgroot, key);
    return access(p, F_OK) == 0;
}

int phx_agentharness_pool_count(const char *ctrl)
{
    char p[512];
    snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s/" PHX_AGENTHARNESS_NODE, ctrl,
             H->cgroot);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, ".pool-", 6) == 0;
    closedir(d);
    return n;
}

char *phx_agentharness_stdout(const char *key)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/tasks/%s/stdout", H->state, key);
    return phx_agentharness_slurp(p);
}

bool phx_agentharness_pid_alive(pid_t pid)
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

void phx_agentharness_assert_exit(json_t *s, const char *state, int code)
{
    json_t *c = json_object_get(s, "exit_code");
    if (strcmp(phx_agentharness_jstr(s, "state"), state) != 0 || !json_is_integer(c) ||
        json_integer_value(c) != code || !json_is_null(json_object_get(s, "signal")))
        fail_msg("expected %s with exit code %d, got %s", state, code,
                 json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS));
}

json_t *phx_agentharness_go_task(const char *id, int code)
{
    char script[512];
    snprintf(script, sizeof(script),
             "while [ ! -e %s/go-%s ]; do sleep 0.05; done; exit %d", H->shared, id,
             code);
    return phx_agentharness_task_new(id, script);
}

void phx_agentharness_go(const char *id)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/go-%s", H->shared, id);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
}

void phx_agentharness_wait_exit_record(const char *key, double timeout)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/run/%s/exit", H->state, key);
    double end = now() + timeout;
    while (access(p, F_OK) != 0) {
        if (now() > end)
            fail_msg("no exit record %s within %.0f s", p, timeout);
        usleep(20000);
    }
}

static void ensure_user(void)
{
    if (!getpwnam(PHX_AGENTHARNESS_USER) &&
        system("useradd --system --no-create-home " PHX_AGENTHARNESS_USER) != 0)
        fail_msg("could not create user " PHX_AGENTHARNESS_USER);
    struct passwd *pw = getpwnam(PHX_AGENTHARNESS_USER);
    H->uid = pw->pw_uid;
    H->gid = pw->pw_gid;
}

int phx_agentharness_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "%s needs root\n", program_invocation_short_name);
        return -1;
    }
    ensure_user();
    snprintf(H->dir, sizeof(H->dir), "/tmp/phx-agent-XXXXXX");
    if (!mkdtemp(H->dir) || chmod(H->dir, 0711) < 0)
        return -1;
    snprintf(H->state, sizeof(H->state), "%s/state", H->dir);
    snprintf(H->shared, sizeof(H->shared), "%s/shared", H->dir);
    if (mkdir(H->shared, 0777) < 0 || chmod(H->shared, 01777) < 0)
        return -1;
    char build[sizeof(H->bin) - 32];
    if (phx_test_build_dir(build, sizeof(build)) < 0)
        return -1;
    snprintf(H->bin, sizeof(H->bin), "%s/bin/phx-agent", build);
    if (phx_test_munged_start(&H->munged) < 0)
        return -1;
    phx_error_t err;
    if (!(H->munge = phx_munge_create(H->munged.socket, &err)))
        return -1;
    H->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(H->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(H->lfd, 4) < 0 ||
        getsockname(H->lfd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    H->port = ntohs(sa.sin_port);
    H->cfd = -1;
    H->statuses = json_array();
    H->backlog = json_array();
    snprintf(H->cgroot, sizeof(H->cgroot), "phx-unit-%d", (int)getpid());
    H->autoack = true;
    signal(SIGPIPE, SIG_IGN);
    phx_agentharness_agent_start();
    return 0;
}

int phx_agentharness_teardown(void **state)
{
    (void)state;
    phx_agentharness_agent_kill9();
    /* Whatever a failed test left: kill it, remove the cgroups. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "r=%s; for d in /sys/fs/cgroup/*/$r/" PHX_AGENTHARNESS_NODE "/*/; do "
             "[ -d \"$d\" ] || continue; echo THAWED > \"$d/freezer.state\" "
             "2>/dev/null; for p in $(cat \"$d/cgroup.procs\"); do kill -9 $p; done; "
             "done; sleep 0.2; for d in /sys/fs/cgroup/*/$r/" PHX_AGENTHARNESS_NODE
             "/*/ /sys/fs/cgroup/*/$r/" PHX_AGENTHARNESS_NODE
             "/.pool-*/ /sys/fs/cgroup/*/$r/" PHX_AGENTHARNESS_NODE
             "/ /sys/fs/cgroup/*/$r/; do "
             "rmdir \"$d\" 2>/dev/null; done; true",
             H->cgroot);
    if (system(cmd) != 0)
        fprintf(stderr, "teardown: cleanup failed\n");
    if (getenv("PHX_KEEP"))
        fprintf(stderr, "kept %s\n", H->dir);
    else {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", H->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "teardown: could not remove %s\n", H->dir);
    }
    phx_munge_destroy(H->munge);
    phx_test_munged_stop(&H->munged);
    close(H->lfd);
    json_decref(H->statuses);
    json_decref(H->backlog);
    json_decref(H->reg);
    phx_mac_destroy(H->session);
    return 0;
}

static bool agent_up(void)
{
    if (H->agent > 0 && waitpid(H->agent, NULL, WNOHANG) == H->agent)
        H->agent = 0; /* it died */
    return H->agent > 0 && H->cfd >= 0 && H->dec;
}

static bool no_records(void)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/run", H->state);
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
int phx_agentharness_reset(void **state)
{
    (void)state;
    H->autoack = true;
    for (int i = 0; i < 50 && agent_up() && !no_records(); i++)
        phx_agentharness_drain(0.1);
    if (!agent_up() || !no_records()) {
        fprintf(stderr, "reset: restarting the agent without its tasks\n");
        phx_agentharness_agent_kill9();
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s/run'", H->state);
        if (system(cmd) != 0)
            fprintf(stderr, "reset: could not remove %s/run\n", H->state);
        phx_agentharness_agent_start();
    }
    json_array_clear(H->backlog);
    return 0;
}
