/* phx alloc's pure parts (cli/alloc_tunnel.c): the relay's announcement
 * line, the variables it passes on, the credentials' payloads, and the
 * splice of two connections (over socketpairs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/alloc_tunnel.c"

static int parse(const char *line, phx_alloc_announce_t *a, phx_error_t *err)
{
    return phx_alloc_announce_parse(line, strlen(line), a, err);
}

static void test_announce_round_trip(void **state)
{
    (void)state;
    json_t *env = json_pack("{s:s, s:s}", "PHX_JOB_ID", "41", "SLURM_JOB_ID", "41");
    char *line = phx_alloc_announce_format("node-1.example", 40123, env);
    assert_non_null(line);
    assert_string_equal(line, "phx-alloc-relay node-1.example 40123 "
                              "{\"PHX_JOB_ID\":\"41\",\"SLURM_JOB_ID\":\"41\"}\n");
    phx_alloc_announce_t a = {0};
    phx_error_t err;
    assert_int_equal(0, phx_alloc_announce_parse(line, strlen(line) - 1, &a, &err));
    assert_string_equal(a.host, "node-1.example");
    assert_int_equal(40123, a.port);
    assert_true(json_equal(env, a.env));
    phx_alloc_announce_clear(&a);
    assert_null(a.env);
    free(line);
    json_decref(env);
}

static void test_announce_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "phx-alloc-relay",
        "phx-alloc-relay n1 40000",
        "phx-alloc-relay n1 40000 ",
        "phx-alloc-relay n1 0 {}",
        "phx-alloc-relay n1 65536 {}",
        "phx-alloc-relay n1 4x {}",
        "phx-alloc-relay  40000 {}",
        "phx-alloc-relay n;1 40000 {}",
        "phx-alloc-relay n1 40000 []",
        "phx-alloc-relay n1 40000 {\"PHX_JOB_ID\":41}",
        /* a variable that is not a job's: never set in the user's shell */
        "phx-alloc-relay n1 40000 {\"LD_PRELOAD\":\"/tmp/x.so\"}",
        "phx-alloc-relay n1 40000 {\"PHX_AGENT_SOCKET\":\"/tmp/s\"}",
        "phx-alloc-relay n1 40000 {\"PHX_JOB_ID\":\"1\",\"PHX_JOB_ID\":\"2\"}",
        "other text 40000 {}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        phx_alloc_announce_t a = {.port = -7};
        phx_error_t err = {0};
        assert_int_equal(-1, parse(bad[i], &a, &err));
        assert_int_equal(-7, a.port);
        assert_null(a.env);
        assert_true(err.text[0] != '\0');
    }
    phx_alloc_announce_t a = {0};
    phx_error_t err;
    assert_int_equal(0, parse("phx-alloc-relay 10.0.0.1 1 {}", &a, &err));
    assert_int_equal(1, a.port);
    phx_alloc_announce_clear(&a);
    assert_int_equal(0, parse("phx-alloc-relay fe80::1 65535 {}", &a, &err));
    assert_string_equal("fe80::1", a.host);
    phx_alloc_announce_clear(&a);
}

static void test_env_wanted(void **state)
{
    (void)state;
    assert_true(phx_alloc_env_wanted("PHX_JOB_ID"));
    assert_true(phx_alloc_env_wanted("PHX_TASK_ID"));
    assert_true(phx_alloc_env_wanted("SLURM_JOB_NODELIST"));
    assert_true(phx_alloc_env_wanted("OMPI_MCA_plm_rsh_agent"));
    assert_true(phx_alloc_env_wanted("OMPI_MCA_orte_default_dash_host"));
    assert_false(phx_alloc_env_wanted("PHX_AGENT_SOCKET"));
    assert_false(phx_alloc_env_wanted("PHX_MUNGE_SOCKET"));
    assert_false(phx_alloc_env_wanted("PHX_CONFIG"));
    assert_false(phx_alloc_env_wanted("PATH"));
    assert_false(phx_alloc_env_wanted("HOME"));
    assert_false(phx_alloc_env_wanted("OMPI_MCA_btl"));
    /* the first node's, not the allocation's */
    assert_false(phx_alloc_env_wanted("PHX_NODEID"));
    assert_false(phx_alloc_env_wanted("SLURM_PROCID"));
    assert_false(phx_alloc_env_wanted("PHX_CPUSET"));
    assert_false(phx_alloc_env_wanted("SLURM_TOPOLOGY_ADDR"));
    assert_true(phx_alloc_env_wanted("PHX_NNODES"));
    assert_true(phx_alloc_env_wanted("SLURM_NODELIST"));
}

static void test_payload(void **state)
{
    (void)state;
    int code = -1;
#define P(s) s, strlen(s)
    assert_int_equal(0, phx_alloc_payload_parse(P("tunnel 41"), 41, &code));
    assert_int_equal(1, phx_alloc_payload_parse(P("exit 41 3"), 41, &code));
    assert_int_equal(3, code);
    assert_int_equal(1, phx_alloc_payload_parse(P("exit 41 255"), 41, &code));
    assert_int_equal(255, code);
    assert_int_equal(-1, phx_alloc_payload_parse(P("tunnel 42"), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("tunnel 411"), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("tunnel 41 "), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("exit 42 0"), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("exit 41 256"), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("exit 41 1000"), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("exit 41 "), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P("exit 41 -1"), 41, &code));
    assert_int_equal(-1, phx_alloc_payload_parse(P(""), 41, &code));
    assert_int_equal(255, code);
#undef P
}

/* Step the splice until nothing moves. */
static bool pump(phx_splice_t *s)
{
    for (int i = 0; i < 20; i++) {
        struct pollfd p[2];
        phx_splice_events(s, p);
        if (poll(p, 2, 50) <= 0)
            return true;
        if (!phx_splice_step(s, p))
            return false;
    }
    return true;
}

static void test_splice(void **state)
{
    (void)state;
    int a[2], b[2];
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, a));
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, b));
    phx_alloc_set_nonblock(a[1]);
    phx_alloc_set_nonblock(b[0]);
    /* a[1] <-> b[0] spliced; "pre" was read from a[1] already */
    phx_splice_t *s = phx_splice_create(a[1], b[0], "pre", 3);
    assert_non_null(s);
    assert_int_equal(5, write(a[0], "hello", 5));
    assert_true(pump(s));
    char buf[64] = "";
    assert_int_equal(8, read(b[1], buf, sizeof(buf)));
    assert_memory_equal("prehello", buf, 8);
    assert_int_equal(3, write(b[1], "bye", 3));
    assert_true(pump(s));
    assert_int_equal(3, read(a[0], buf, sizeof(buf)));
    assert_memory_equal("bye", buf, 3);
    /* one side closes: what it sent is delivered, then the splice ends */
    assert_int_equal(4, write(a[0], "last", 4));
    close(a[0]);
    assert_false(pump(s));
    assert_int_equal(4, read(b[1], buf, sizeof(buf)));
    assert_memory_equal("last", buf, 4);
    phx_splice_close(s);
    assert_int_equal(0, read(b[1], buf, sizeof(buf))); /* closed */
    close(b[1]);
}

/* A side that hung up while what it sent waits for the other side (that
 * reads nothing): the splice waits for that side to take it, without
 * spinning on the hang-up (poll reported POLLHUP at once, again and again:
 * a core busy in the relay and in phx alloc on the login node). */
static void test_splice_hangup_waits(void **state)
{
    (void)state;
    int a[2], b[2];
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, a));
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_STREAM, 0, b));
    phx_alloc_set_nonblock(a[1]);
    phx_alloc_set_nonblock(b[0]);
    static char fill[65536];
    while (send(b[0], fill, sizeof(fill), MSG_DONTWAIT) > 0) /* b[1] reads nothing */
        ;
    phx_splice_t *s = phx_splice_create(a[1], b[0], NULL, 0);
    assert_non_null(s);
    assert_int_equal(5, write(a[0], "hello", 5));
    close(a[0]);
    struct pollfd p[2];
    phx_splice_events(s, p);
    assert_int_equal(1, poll(p, 2, 1000));
    assert_true(phx_splice_step(s, p)); /* read, not written: b[0] is full */
    assert_int_equal(5, s->len[0] - s->off[0]);
    phx_splice_events(s, p);
    assert_int_equal(0, poll(p, 2, 100)); /* nothing to do until b[1] reads */
    char buf[65536];
    while (read(b[1], buf, sizeof(buf)) == sizeof(buf) && s->off[0] < s->len[0]) {
        phx_splice_events(s, p);
        if (poll(p, 2, 100) > 0 && !phx_splice_step(s, p))
            break;
    }
    phx_splice_close(s);
    close(b[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announce_round_trip),
        cmocka_unit_test(test_announce_refused),
        cmocka_unit_test(test_env_wanted),
        cmocka_unit_test(test_payload),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_splice_hangup_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
