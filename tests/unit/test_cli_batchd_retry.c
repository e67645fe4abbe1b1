/* phx with several batchd (cli/client.c, PHX_BATCHD=a,b): a request that
 * reached a batchd and got no answer (it closed the connection, or timed
 * out) may have been carried out there -- a submission committed before
 * its batchd died.  A GET is asked of the next one; anything else is not
 * sent again (a second job), only after a refused connection or a
 * standby's refusal (503), which did nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/client.c"
#include "cli/job_submit.c"

/* A batchd: mute (reads the request, closes without an answer) or answers
 * 200 {} to every request; counts the requests it read. */
typedef struct fake {
    int fd, port;
    bool mute;
    int status; /* not mute: the status of its answers (0: 200 {}) */
    int requests;
    int keyed; /* requests with the Idempotency-Key of key */
    char key[80];
    pthread_t thread;
} fake_t;

static void *serve(void *arg)
{
    fake_t *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[8192];
        size_t got = 0;
        ssize_t n;
        /* the headers, then the body Content-Length names (small here) */
        while (got < sizeof(buf) - 1 &&
               (n = read(c, buf + got, sizeof(buf) - 1 - got)) > 0) {
            got += (size_t)n;
            buf[got] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            char *cl = strcasestr(buf, "Content-Length:");
            if (end && (!cl || strlen(end + 4) >= (size_t)atoi(cl + 15)))
                break;
        }
        char *k = strcasestr(buf, "\r\nIdempotency-Key: ");
        if (k) {
            k += strlen("\r\nIdempotency-Key: ");
            size_t len = strcspn(k, "\r");
            if (!f->key[0] && len < sizeof(f->key))
                memcpy(f->key, k, len);
            if (len == strlen(f->key) && strncmp(k, f->key, len) == 0)
                __atomic_add_fetch(&f->keyed, 1, __ATOMIC_SEQ_CST);
        }
        __atomic_add_fetch(&f->requests, 1, __ATOMIC_SEQ_CST);
        if (!f->mute && f->status) {
            char no[256];
            int len = snprintf(no, sizeof(no),
                               "HTTP/1.1 %d No\r\nContent-Type: application/json\r\n"
                               "Content-Length: 20\r\nConnection: close\r\n\r\n"
                               "{\"error\": \"db down\"}",
                               f->status);
            (void)!write(c, no, (size_t)len);
        } else if (!f->mute) {
            const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
            (void)!write(c, ok, sizeof(ok) - 1);
        }
        close(c);
    }
}

static void fake_start(fake_t *f, bool mute)
{
    memset(f, 0, sizeof(*f));
    f->mute = mute;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->fd, 8), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
}

/* A port nothing listens on: a refused connection. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void use(int first, int second)
{
    char list[64];
    snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d", first, second);
    setenv("PHX_BATCHD", list, 1);
    /* the list is read once per process: start it again */
    phx_masters_t *l = daemons(PHX_CLI_BATCHD);
    phx_error_t err;
    memset(l, 0, sizeof(*l));
    assert_int_equal(phx_masters_add(l, list, &err), 0);
}

static int requests(fake_t *f)
{
    return __atomic_load_n(&f->requests, __ATOMIC_SEQ_CST);
}

static void test_post_not_sent_again(void **state)
{
    (void)state;
    fake_t mute, ok;
    fake_start(&mute, true);
    fake_start(&ok, false);
    use(mute.port, ok.port);
    json_t *body = json_pack("{s:s}", "script", "#!/bin/sh\n");
    int status = -1;
    json_t *r =
        phx_cli_call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false, &status);
    /* the mute batchd read it: it may have stored the job */
    assert_int_equal(requests(&mute), 1);
    assert_int_equal(requests(&ok), 0);
    assert_null(r);
    /* a GET is asked of the next one */
    use(mute.port, ok.port);
    r = phx_cli_call(PHX_CLI_BATCHD, "GET", "/api/v1/jobs", NULL, false, &status);
    assert_non_null(r);
    assert_int_equal(status, 200);
    assert_int_equal(requests(&ok), 1);
    json_decref(r);
    /* a refused connection did nothing: the POST goes to the next one */
    use(closed_port(), ok.port);
    r = phx_cli_call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false, &status);
    assert_non_null(r);
    assert_int_equal(requests(&ok), 2);
    json_decref(r);
    json_decref(body);
}

/* A submission with its key: the batchd that read it and gave no answer
 * may have stored it, and a resend with the same key gets that job, not a
 * second one: it goes to the next batchd with the same key. */
static void test_keyed_submission_sent_again(void **state)
{
    (void)state;
    fake_t mute, ok;
    fake_start(&mute, true);
    fake_start(&ok, false);
    use(mute.port, ok.port);
    json_t *body = json_pack("{s:s}", "script", "#!/bin/sh\n");
    int status = -1;
    json_t *r = call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false,
                     "0123456789abcdef0123456789abcdef", &status);
    assert_non_null(r);
    assert_int_equal(status, 200);
    assert_int_equal(requests(&mute), 1);
    assert_int_equal(requests(&ok), 1);
    assert_string_equal(mute.key, "0123456789abcdef0123456789abcdef");
    assert_string_equal(ok.key, mute.key);
    json_decref(r);
    /* every batchd mute: sent again, a bounded number of times */
    fake_t mute2;
    fake_start(&mute2, true);
    use(mute.port, mute2.port);
    r = call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false,
             "0123456789abcdef0123456789abcdef", &status);
    assert_null(r);
    assert_int_equal(requests(&mute) - 1 + requests(&mute2), PHX_CLI_SUBMIT_SENDS);
    assert_int_equal(mute.keyed - 1 + mute2.keyed, PHX_CLI_SUBMIT_SENDS);
    json_decref(body);
}

/* A lone batchd: a keyed submission that got no answer is sent again to
 * it (a restarted batchd), PHX_CLI_SUBMIT_SENDS times at most. */
static void test_keyed_submission_lone_batchd(void **state)
{
    (void)state;
    fake_t mute;
    fake_start(&mute, true);
    char list[64];
    snprintf(list, sizeof(list), "127.0.0.1:%d", mute.port);
    phx_masters_t *l = daemons(PHX_CLI_BATCHD);
    phx_error_t err;
    memset(l, 0, sizeof(*l));
    assert_int_equal(phx_masters_add(l, list, &err), 0);
    json_t *body = json_pack("{s:s}", "script", "#!/bin/sh\n");
    int status = -1;
    assert_null(call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false,
                     "fedcba9876543210fedcba9876543210", &status));
    assert_int_equal(requests(&mute), PHX_CLI_SUBMIT_SENDS);
    assert_int_equal(mute.keyed, PHX_CLI_SUBMIT_SENDS);
    /* without a key: once */
    memset(l, 0, sizeof(*l));
    assert_int_equal(phx_masters_add(l, list, &err), 0);
    assert_null(
        phx_cli_call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false, &status));
    assert_int_equal(requests(&mute), PHX_CLI_SUBMIT_SENDS + 1);
    json_decref(body);
}

/* stderr of fn(arg) into out (cap bytes). */
static void stderr_of(void (*fn)(void *), void *arg, char *out, size_t cap)
{
    char path[] = "/tmp/test_cli_batchd_retry.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

static void keyed_call(void *arg)
{
    json_t *body = json_pack("{s:s}", "script", "#!/bin/sh\n");
    int status = -1;
    *(json_t **)arg = call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, false,
                           "00112233445566778899aabbccddeeff", &status);
    json_decref(body);
}

/* The first send reached a batchd that died without an answer (it may have
 * stored the job); the later ones find no batchd listening.  phx must still
 * say that the submission may be stored, and its key: a user told only "is
 * phx-batchd running?" submits again with a new key, a second job. */
static void test_keyed_key_told_after_refusals(void **state)
{
    (void)state;
    fake_t mute;
    fake_start(&mute, true);
    use(mute.port, closed_port());
    json_t *r = NULL;
    char out[4096];
    stderr_of(keyed_call, &r, out, sizeof(out));
    assert_null(r);
    /* mute, refused, mute, refused: the last send found no batchd */
    assert_int_equal(requests(&mute), PHX_CLI_SUBMIT_SENDS / 2);
    if (!strstr(out, "PHX_SUBMIT_KEY=00112233445566778899aabbccddeeff"))
        fail_msg("the key is not told: %s", out);
}

/* The same when the last send got a batchd's failure (503, not a
 * standby's refusal: it could not store the job): an earlier one may have. */
static void test_keyed_key_told_after_failure(void **state)
{
    (void)state;
    fake_t mute, down;
    fake_start(&mute, true);
    fake_start(&down, false);
    down.status = 503;
    use(mute.port, down.port);
    json_t *r = NULL;
    char out[4096];
    stderr_of(keyed_call, &r, out, sizeof(out));
    assert_null(r);
    assert_int_equal(requests(&down), 1);
    if (!strstr(out, "db down") ||
        !strstr(out, "PHX_SUBMIT_KEY=00112233445566778899aabbccddeeff"))
        fail_msg("the failure or the key is not told: %s", out);
}

/* The environment sent with a submission (the job's) leaves PHX_SUBMIT_KEY
 * out: it is in the body's digest, so a submission sent again by hand with
 * PHX_SUBMIT_KEY (as phx advises) after a first send with a random key
 * would be another body (409); and the job would inherit the key, so that
 * a phx submit inside it reuses its job's key (409, or its job's id). */
static void test_environ_without_submit_key(void **state)
{
    (void)state;
    setenv("PHX_SUBMIT_KEY", "0123456789abcdef0123", 1);
    setenv("PHX_TEST_ENV_KEPT", "1", 1);
    json_t *env = phx_cli_environ();
    assert_non_null(env);
    assert_non_null(json_object_get(env, "PHX_TEST_ENV_KEPT"));
    assert_null(json_object_get(env, "PHX_SUBMIT_KEY"));
    json_decref(env);
    unsetenv("PHX_SUBMIT_KEY");
    unsetenv("PHX_TEST_ENV_KEPT");
}

/* The keys phx makes: 32 hex digits (128 random bits), new each time. */
static void test_submit_key(void **state)
{
    (void)state;
    char a[33], b[33];
    assert_int_equal(phx_cli_submit_key(a), 0);
    assert_int_equal(phx_cli_submit_key(b), 0);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_not_sent_again),
        cmocka_unit_test(test_keyed_submission_sent_again),
        cmocka_unit_test(test_keyed_submission_lone_batchd),
        cmocka_unit_test(test_submit_key),
        cmocka_unit_test(test_keyed_key_told_after_refusals),
        cmocka_unit_test(test_keyed_key_told_after_failure),
        cmocka_unit_test(test_environ_without_submit_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
