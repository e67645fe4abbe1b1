/* pmix/gate.c without PMIx: a listener of our own stands in for PMIx's.
 * The kernel's uid of a connecting socket, and none once its owner closed
 * it (the kernel then reports uid 0); a silent connection holds nothing
 * while a step owner's whole connect message gets through, bytes intact,
 * after a doorbell; a user with no step is turned away at once. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pmix/gate.c"
#include "pmix/hello.c"

#define OWNER    65534 /* nobody */
#define STRANGER 65533

static int listener(struct sockaddr_in *at)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    *at = (struct sockaddr_in){.sin_family = AF_INET,
                               .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t len = sizeof(*at);
    assert_int_equal(bind(l, (struct sockaddr *)at, sizeof(*at)), 0);
    assert_int_equal(listen(l, 64), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)at, &len), 0);
    return l;
}

/* A child as uid: connects to at, sends len bytes of msg, then waits for
 * go (a pipe: its closing) unless close_at_once, and exits. */
static pid_t client(uid_t uid, const struct sockaddr_in *at, const void *msg,
                    size_t len, bool close_at_once, int *go)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        if (setgid(uid) < 0 || setuid(uid) < 0)
            _exit(3);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (const struct sockaddr *)at, sizeof(*at)) < 0)
            _exit(4);
        if (len && write(s, msg, len) != (ssize_t)len)
            _exit(5);
        if (!close_at_once) {
            char c;
            ssize_t r = read(p[0], &c, 1); /* until the parent closes it */
            (void)r;
        }
        close(s);
        _exit(0);
    }
    close(p[0]);
    *go = p[1];
    return pid;
}

static void reap(pid_t pid, int go)
{
    int st;
    close(go);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static uid_t uid_of(int conn)
{
    struct sockaddr_in peer, self;
    socklen_t a = sizeof(peer), b = sizeof(self);
    assert_int_equal(getpeername(conn, (struct sockaddr *)&peer, &a), 0);
    assert_int_equal(getsockname(conn, (struct sockaddr *)&self, &b), 0);
    uid_t uid = 12345;
    return phx_pmix_gate_peer_uid(&peer, &self, &uid) == 0 ? uid : (uid_t)-1;
}

static void test_peer_uid(void **state)
{
    (void)state;
    if (geteuid() != 0)
        fail_msg("test_pmix_gate must run as root");
    struct sockaddr_in at;
    int l = listener(&at), go;
    pid_t c = client(OWNER, &at, "x", 1, false, &go);
    int conn = accept4(l, NULL, NULL, 0);
    assert_true(conn >= 0);
    assert_int_equal(uid_of(conn), OWNER);
    reap(c, go);
    close(conn);
    /* closed by its owner before we looked: no uid (the kernel says 0) */
    c = client(OWNER, &at, "x", 1, true, &go);
    reap(c, go);
    conn = accept4(l, NULL, NULL, 0);
    assert_true(conn >= 0);
    assert_int_equal(uid_of(conn), (uid_t)-1);
    close(conn);
    close(l);
}

static size_t hello(unsigned char *b, uid_t uid, const char *nspace, uint32_t rank)
{
    unsigned char m[256];
    size_t at = 0;
    memcpy(m, "native", 7);
    at = 7;
    uint32_t n = htonl(8);
    memcpy(m + at, &n, 4);
    at += 4;
    uint32_t cred[2] = {uid, uid};
    memcpy(m + at, cred, 8);
    at += 8;
    m[at++] = 0;
    memcpy(m + at, nspace, strlen(nspace) + 1);
    at += strlen(nspace) + 1;
    n = htonl(rank);
    memcpy(m + at, &n, 4);
    at += 4;
    memcpy(m + at, "4.2.2\0v41\0\1hash\0\0", 17);
    at += 17;
    phx_pmix_hello_hdr_t h = {-1, 0xffffffffu, at};
    memcpy(b, &h, sizeof(h));
    memcpy(b + sizeof(h), m, at);
    return sizeof(h) + at;
}

/* One accept() as PMIx's listener makes it: when the socket is readable. */
static int pmix_accept(int l)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(l, &r);
    struct timeval tv = {5, 0};
    if (select(l + 1, &r, NULL, NULL, &tv) != 1)
        fail_msg("the listener did not become readable in 5 s");
    return accept(l, NULL, NULL);
}

static void test_gate(void **state)
{
    (void)state;
    struct sockaddr_in at;
    int l = listener(&at);
    char file[] = "/tmp/phx-gate-uri.XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    dprintf(fd, "pmix-server.1;tcp4://127.0.0.1:%u\n", ntohs(at.sin_port));
    close(fd);
    phx_error_t err = {{0}};
    /* while PMIx starts, nobody */
    phx_pmix_gate_prepare();
    int go0;
    pid_t c0 = client(OWNER, &at, "", 0, false, &go0);
    errno = 0;
    assert_int_equal(pmix_accept(l), -1);
    assert_int_equal(errno, ECONNABORTED);
    reap(c0, go0);
    assert_int_equal(phx_pmix_gate_arm(file, &err), 0);
    unlink(file);
    int rank0 = 0, nranks = 1;
    const int *ranks[] = {&rank0};
    const char *nodes[] = {"n1"};
    phx_pmix_map_t map = {.nspace = "phx.1.1",
                          .size = 1,
                          .nnodes = 1,
                          .nodes = nodes,
                          .nranks = &nranks,
                          .ranks = ranks,
                          .node = 0,
                          .uid = OWNER,
                          .gid = OWNER};
    assert_int_equal(phx_pmix_gate_step_add(&map), 0);

    /* a stranger: turned away at once */
    int go;
    pid_t c = client(STRANGER, &at, "", 0, false, &go);
    errno = 0;
    assert_int_equal(pmix_accept(l), -1);
    assert_int_equal(errno, ECONNABORTED);
    reap(c, go);
    /* the owner, silent: pending, and accept() returns at once */
    int silent_go;
    pid_t silent = client(OWNER, &at, "", 0, false, &silent_go);
    assert_int_equal(pmix_accept(l), -1);
    /* the owner's rank 0: through, after a doorbell, its bytes all there */
    unsigned char msg[512];
    size_t len = hello(msg, OWNER, "phx.1.1", 0);
    int rank_go;
    pid_t rank = client(OWNER, &at, msg, len, false, &rank_go);
    int got = -1;
    for (int i = 0; i < 4 && got < 0; i++)
        got = pmix_accept(l); /* the rank's connection, then the doorbell */
    assert_true(got >= 0);
    pthread_mutex_lock(&gate.lock);
    size_t still = gate.npending; /* the silent one waits on, holding nothing */
    pthread_mutex_unlock(&gate.lock);
    assert_int_equal(still, 1);
    unsigned char back[512];
    assert_int_equal(recv(got, back, sizeof(back), MSG_DONTWAIT), (ssize_t)len);
    assert_memory_equal(back, msg, len);
    assert_int_equal(uid_of(got), OWNER);
    close(got);
    reap(rank, rank_go);
    /* the same as rank 1 (not a rank of the step here): refused */
    len = hello(msg, OWNER, "phx.1.1", 1);
    rank = client(OWNER, &at, msg, len, false, &rank_go);
    assert_int_equal(pmix_accept(l), -1);
    reap(rank, rank_go);
    reap(silent, silent_go);
    phx_pmix_gate_disarm();
    close(l);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_uid),
        cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
