/* The agent's SIGNAL (daemons/agent/signal.c, scancel -s/-b/-f): every
 * signal goes from a child that takes the task's user's uid and gid, so
 * that the kernel signals only that user's processes (not a root one, as a
 * setuid-root helper that did setresuid(0, 0, 0) is), pid by pid or by
 * process group; the shim and `phx run` clients are left out in the parent;
 * a child that cannot become the user sends nothing and says so.  Needs
 * root (skipped otherwise): real processes of uid 65534 and 0 are the
 * targets.  The e2e t0344 has the setuid-root helper of a real job.
 *
 * Unit tests cannot link daemon objects, so signal.c is included; what it
 * calls in other agent files is stubbed. */
#include "daemons/agent/signal.c"

#include <linux/capability.h>
#include <poll.h>
#include <sys/prctl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NOBODY 65534

/* --- stubs --- */

static pid_t client_pid = -1; /* the `phx run` client */
static pid_t cg_pids[8];
static int cg_npids;

bool phx_step_svc_is_client(pid_t pid)
{
    return pid == client_pid;
}

int phx_cg_pids(const phx_cg_t *cg, const char *id, pid_t *pids, int max)
{
    (void)cg;
    (void)id;
    for (int i = 0; i < cg_npids && i < max; i++)
        pids[i] = cg_pids[i];
    return cg_npids;
}

static phx_task_t *found; /* the task phx_task_find finds, NULL: none */
static json_t *answered;  /* the last frame sent to the master */

phx_task_t *phx_task_find(phx_agentd_t *a, const char *framework_id, const char *id)
{
    (void)a;
    (void)framework_id;
    (void)id;
    return found;
}

int phx_agentd_send(phx_agentd_t *a, json_t *hdr, const void *attach, size_t attach_len)
{
    (void)a;
    (void)attach;
    (void)attach_len;
    json_decref(answered);
    answered = hdr;
    return 0;
}

static int lstep_result; /* the steps' answer: 0 none there, -1 none signalled */
int phx_lstep_signal_task(const char *framework_id, const char *task_id, int sig)
{
    (void)framework_id;
    (void)task_id;
    (void)sig;
    return lstep_result;
}

/* --- targets: a process of uid, in a process group of its own --- */

static pid_t spawn(uid_t uid)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
            _exit(1);
        /* never left behind by a failed test, nor holding its output */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 3; fd++)
            dup2(null, fd);
        close(p[0]);
        close(p[1]); /* ready */
        for (;;)
            pause();
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 0);
    close(p[0]);
    setpgid(pid, pid);
    return pid;
}

/* A process of uid that writes the uid of each SIGUSR2's sender (si_uid)
 * to *fd: the agent's kill must come from the user, not from root. */
static int report_fd = -1;
static void on_usr2(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    uint32_t u = (uint32_t)si->si_uid;
    if (write(report_fd, &u, sizeof(u)) < 0)
        _exit(3);
}

static pid_t spawn_recorder(uid_t uid, int *fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO;
    struct sigaction old;
    sigaction(SIGUSR2, &sa, &old); /* inherited by the child, then undone */
    report_fd = p[1];
    pid_t pid = spawn(uid);
    sigaction(SIGUSR2, &old, NULL);
    close(p[1]);
    *fd = p[0];
    return pid;
}

/* The sender's uid the recorder on fd saw, -1 if none within a second. */
static long sender_uid(int fd)
{
    struct pollfd pf = {fd, POLLIN, 0};
    uint32_t u;
    if (poll(&pf, 1, 1000) != 1 || read(fd, &u, sizeof(u)) != (ssize_t)sizeof(u))
        return -1;
    return (long)u;
}

/* Did pid die of sig (reaped then), or does it live on? */
static bool died_of(pid_t pid, int sig)
{
    int status;
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFSIGNALED(status) && WTERMSIG(status) == sig;
        usleep(5000);
    }
    return false;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("test_agent_signal: needs root, skipped\n");
        skip();
    }
    return 0;
}

/* The kernel's rule, at the kill: the user's process gets it, root's not. */
static void test_kill_as_user(void **state)
{
    (void)state;
    pid_t mine = spawn(NOBODY), root = spawn(0);
    pid_t targets[] = {root, mine};
    int last_err = -1;
    assert_int_equal(kill_as(NOBODY, NOBODY, targets, 2, SIGTERM, false, &last_err), 1);
    assert_int_equal(last_err, EPERM);
    assert_true(died_of(mine, SIGTERM));
    assert_false(died_of(root, SIGTERM)); /* alive: the root helper */
    reap(root);

    /* by process group: the group of a rank, its children too */
    mine = spawn(NOBODY);
    root = spawn(0);
    pid_t groups[] = {mine, root};
    assert_int_equal(phx_signal_groups_as(NOBODY, NOBODY, groups, 2, SIGUSR1), 1);
    assert_true(died_of(mine, SIGUSR1));
    assert_false(died_of(root, SIGUSR1));
    reap(root);
    assert_int_equal(phx_signal_groups_as(NOBODY, NOBODY, groups, 0, SIGUSR1), 0);

    /* sbatch --signal=B: (limits.c): the batch shell alone, as the user */
    mine = spawn(NOBODY);
    root = spawn(0);
    assert_int_equal(phx_signal_pid_as(NOBODY, NOBODY, root, SIGUSR2), 0);
    assert_int_equal(phx_signal_pid_as(NOBODY, NOBODY, mine, SIGUSR2), 1);
    assert_true(died_of(mine, SIGUSR2));
    assert_false(died_of(root, SIGUSR2));
    reap(root);
}

/* -f: the cgroup's processes but the shim and a `phx run` client (spared,
 * counted); -b: the program alone, refused when it is root's now. */
static void test_cgroup_and_main(void **state)
{
    (void)state;
    phx_agentd_t a = {0};
    phx_task_t t = {0};
    t.a = &a;
    t.uid = t.gid = NOBODY;
    snprintf(t.label, sizeof(t.label), "fw/t1");
    pid_t mine = spawn(NOBODY), root = spawn(0), shim = spawn(NOBODY),
          client = spawn(NOBODY);
    t.shim = shim;
    client_pid = client;
    cg_pids[0] = shim;
    cg_pids[1] = root;
    cg_pids[2] = client;
    cg_pids[3] = mine;
    cg_npids = 4;
    int spared = 0;
    assert_int_equal(signal_cgroup(&t, SIGHUP, &spared), 1);
    assert_int_equal(spared, 1);
    assert_true(died_of(mine, SIGHUP));
    assert_false(died_of(root, SIGHUP));
    assert_false(died_of(shim, SIGHUP));
    assert_false(died_of(client, SIGHUP));

    /* sent as the user (the kernel's check), not as root after a look */
    int fd;
    pid_t rec = spawn_recorder(NOBODY, &fd);
    cg_pids[0] = rec;
    cg_npids = 1;
    spared = 0;
    assert_int_equal(signal_cgroup(&t, SIGUSR2, &spared), 1);
    assert_int_equal(sender_uid(fd), NOBODY);
    pid_t prog = rec; /* -b: the program alone */
    assert_int_equal(signal_pids(&t, &prog, 1, SIGUSR2, &spared), 1);
    assert_int_equal(sender_uid(fd), NOBODY);
    close(fd);
    reap(rec);

    /* only root's left: none could be signalled, EPERM */
    cg_pids[0] = root;
    cg_npids = 1;
    spared = 0;
    errno = 0;
    assert_int_equal(signal_cgroup(&t, SIGHUP, &spared), -1);
    assert_int_equal(errno, EPERM);
    pid_t one = root;
    assert_int_equal(signal_pids(&t, &one, 1, SIGHUP, &spared), -1);
    /* as the agent sends -b: phx_agentd_on_signal's main path */
    assert_int_equal(errno, EPERM);
    assert_false(died_of(root, SIGHUP));
    reap(root);
    reap(shim);
    reap(client);
    client_pid = -1;
}

/* A child that cannot take the user's credentials (here: an agent without
 * CAP_SETUID) sends nothing and says why, rather than signal as root. */
static void test_cannot_become_user(void **state)
{
    (void)state;
    pid_t root = spawn(0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0)
            _exit(10);
        d[0].effective &= ~(1u << CAP_SETUID);
        if (syscall(SYS_capset, &h, d) < 0)
            _exit(11);
        int last_err;
        pid_t targets[] = {root};
        errno = 0;
        int n = kill_as(NOBODY, NOBODY, targets, 1, SIGTERM, false, &last_err);
        _exit(n == -1 && errno == EPERM ? 0 : 12);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_false(died_of(root, SIGTERM)); /* not signalled as root instead */
    reap(root);
}

/* A SIGNAL as the master sends it, waiting for the answer (reply 7) or
 * not (reply < 0: an older master). */
static void on_signal(phx_agentd_t *a, const char *to, int sig, int reply)
{
    phx_frame_t f = {0};
    f.header = json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "SIGNAL", "task_id", "t1",
                         "framework_id", "fw", "signal", sig, "to", to);
    if (reply >= 0)
        json_object_set_new(f.header, "reply", json_integer(reply));
    f.type = "SIGNAL";
    json_decref(answered);
    answered = NULL;
    phx_agentd_on_signal(a, &f);
    json_decref(f.header);
}

static int answered_sent(void)
{
    assert_non_null(answered);
    assert_string_equal(json_string_value(json_object_get(answered, "type")),
                        "SIGNAL_DONE");
    assert_int_equal(json_integer_value(json_object_get(answered, "reply")), 7);
    assert_string_equal(json_string_value(json_object_get(answered, "task_id")), "t1");
    return (int)json_integer_value(json_object_get(answered, "sent"));
}

static const char *answered_error(void)
{
    const char *e = json_string_value(json_object_get(answered, "error"));
    return e ? e : "";
}

/* SIGNAL_DONE: how many processes got the signal, and with none, why; a
 * master that does not wait (no "reply") gets nothing. */
static void test_answer(void **state)
{
    (void)state;
    phx_agentd_t a = {0};
    phx_task_t t = {0};
    t.a = &a;
    t.uid = t.gid = NOBODY;
    t.phase = PHX_TASK_RUNNING;
    snprintf(t.label, sizeof(t.label), "fw/t1");
    found = &t;

    /* -b: the batch shell gets it */
    pid_t shell = spawn(NOBODY);
    t.child = shell;
    on_signal(&a, "main", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 1);
    assert_null(json_object_get(answered, "error"));
    assert_true(died_of(shell, SIGUSR1));
    /* gone (reaped): nothing signalled, and said so */
    on_signal(&a, "main", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_non_null(strstr(answered_error(), "could not signal the batch shell"));
    assert_non_null(strstr(answered_error(), strerror(ESRCH)));
    /* root's now (a setuid program): refused by the kernel */
    pid_t root = spawn(0);
    t.child = root;
    on_signal(&a, "main", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_non_null(strstr(answered_error(), strerror(EPERM)));
    assert_false(died_of(root, SIGUSR1));
    /* -s: no step runs on the node */
    on_signal(&a, "steps", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_string_equal(answered_error(), "no step of the job runs on its node");
    /* -s: ranks there, none signalled: a failure, not "no step" */
    lstep_result = -1;
    on_signal(&a, "steps", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_string_equal(answered_error(),
                        "none of the steps' ranks on its node could be signalled");
    lstep_result = 2;
    on_signal(&a, "steps", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 2);
    lstep_result = 0;
    /* -f: every process of the cgroup, none of them the user's */
    t.has_cgroup = true;
    cg_pids[0] = root;
    cg_npids = 1;
    on_signal(&a, "all", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_non_null(strstr(answered_error(), "could not signal its processes"));
    /* ending, or no such task */
    t.kill = PHX_KILL_MASTER;
    on_signal(&a, "main", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_string_equal(answered_error(), "not sent: the task is ending");
    found = NULL;
    on_signal(&a, "main", SIGUSR1, 7);
    assert_int_equal(answered_sent(), 0);
    assert_string_equal(answered_error(), "no such task on its node");
    /* an older master waits for nothing */
    on_signal(&a, "main", SIGUSR1, -1);
    assert_null(answered);
    reap(root);
    cg_npids = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_kill_as_user, setup),
        cmocka_unit_test_setup(test_cgroup_and_main, setup),
        cmocka_unit_test_setup(test_cannot_become_user, setup),
        cmocka_unit_test_setup(test_answer, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
