/* phx run's output: ranks' lines are written whole (never two ranks' halves
 * on one line), under --label each after its rank (rank -1 unlabelled),
 * stderr apart, partial lines at the end, overlong ones without waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_output.c"

typedef struct pipes {
    int out[2], err[2];
} pipes_t;

static void pipes_open(pipes_t *p)
{
    assert_int_equal(pipe2(p->out, O_NONBLOCK), 0);
    assert_int_equal(pipe2(p->err, O_NONBLOCK), 0);
    fcntl(p->out[1], F_SETPIPE_SZ, 1 << 20);
}

/* Everything written to fd so far (nonblocking read end). */
static char *drain(int fd)
{
    size_t cap = 1 << 21, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return buf;
}

static void pipes_close(pipes_t *p)
{
    for (int i = 0; i < 2; i++) {
        close(p->out[i]);
        close(p->err[i]);
    }
}

static void put(phx_run_out_t *o, int rank, int stream, const char *s)
{
    phx_run_out_data(o, rank, stream, (const uint8_t *)s, strlen(s));
}

static void test_lines_of_ranks_never_meet(void **state)
{
    (void)state;
    pipes_t p;
    pipes_open(&p);
    phx_run_out_t *o = phx_run_out_create(2, false, p.out[1], p.err[1]);
    put(o, 0, 1, "step");
    put(o, 1, 1, "step=");
    put(o, 1, 1, "1\nmore");
    put(o, 0, 1, "=0\n");
    char *got = drain(p.out[0]);
    assert_string_equal(got, "step=1\nstep=0\n");
    free(got);
    put(o, 1, 1, " of 1\n");
    got = drain(p.out[0]);
    assert_string_equal(got, "more of 1\n");
    free(got);
    phx_run_out_destroy(o);
    pipes_close(&p);
}

static void test_label_and_streams(void **state)
{
    (void)state;
    pipes_t p;
    pipes_open(&p);
    phx_run_out_t *o = phx_run_out_create(2, true, p.out[1], p.err[1]);
    put(o, 0, 1, "a\nb");
    put(o, 1, 1, "c\n");
    put(o, 1, 2, "oops ");
    put(o, 0, 1, "\n");
    put(o, 1, 2, "failed\n");
    put(o, 0, 1, "x\ny\n");
    char *out = drain(p.out[0]), *err = drain(p.err[0]);
    assert_string_equal(out, "0: a\n1: c\n0: b\n0: x\n0: y\n");
    assert_string_equal(err, "1: oops failed\n");
    free(out);
    free(err);
    /* The agent's or the master's own words (rank -1): no label. */
    put(o, -1, 2, "phx run: lost\n");
    err = drain(p.err[0]);
    assert_string_equal(err, "phx run: lost\n");
    free(err);
    phx_run_out_destroy(o);
    pipes_close(&p);
}

static void test_partial_lines_at_the_end(void **state)
{
    (void)state;
    pipes_t p;
    pipes_open(&p);
    phx_run_out_t *o = phx_run_out_create(2, true, p.out[1], p.err[1]);
    put(o, 1, 1, "no newline");
    put(o, 0, 2, "progress 50%");
    char *got = drain(p.out[0]);
    assert_string_equal(got, "");
    free(got);
    phx_run_out_destroy(o);
    got = drain(p.out[0]);
    assert_string_equal(got, "1: no newline");
    free(got);
    got = drain(p.err[0]);
    assert_string_equal(got, "0: progress 50%");
    free(got);
    pipes_close(&p);
}

static void test_overlong_line_and_unknown_ranks(void **state)
{
    (void)state;
    pipes_t p;
    pipes_open(&p);
    phx_run_out_t *o = phx_run_out_create(1, false, p.out[1], p.err[1]);
    size_t n = PHX_RUN_LINE_MAX + 10;
    char *big = malloc(n + 1);
    memset(big, 'z', n);
    big[n] = '\0';
    put(o, 0, 1, big); /* no newline, but too long to wait for one */
    char *got = drain(p.out[0]);
    assert_int_equal(strlen(got), n);
    free(got);
    free(big);
    put(o, 7, 1, "rank 7 is not in the step");
    got = drain(p.out[0]);
    assert_string_equal(got, "rank 7 is not in the step");
    free(got);
    phx_run_out_destroy(o);
    /* Before the step's size is known: as it comes. */
    o = phx_run_out_create(0, false, p.out[1], p.err[1]);
    put(o, 0, 1, "early");
    got = drain(p.out[0]);
    assert_string_equal(got, "early");
    free(got);
    phx_run_out_destroy(o);
    pipes_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_of_ranks_never_meet),
        cmocka_unit_test(test_label_and_streams),
        cmocka_unit_test(test_partial_lines_at_the_end),
        cmocka_unit_test(test_overlong_line_and_unknown_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
