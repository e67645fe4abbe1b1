/* phx run --pty: the terminal's size (cli/run_pty.c: from the terminal, else
 * LINES x COLUMNS, else 24 x 80), the WINSIZE frame and the "pty" object on
 * the wire (lib/winsize.c: rows and cols 1 to 65535, anything else refused
 * by name). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pty.h>
#include <stdio.h>

#include "cli/run_pty.c"
#include "lib/winsize.h"

static void test_size_env(void **state)
{
    (void)state;
    phx_winsize_t ws;
    phx_run_pty_size(-1, NULL, NULL, &ws);
    assert_int_equal(ws.rows, 24);
    assert_int_equal(ws.cols, 80);
    phx_run_pty_size(-1, "50", "132", &ws);
    assert_int_equal(ws.rows, 50);
    assert_int_equal(ws.cols, 132);
    const char *bad[] = {"", "0", "-3", "12x", "65536", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        phx_run_pty_size(-1, bad[i], bad[i], &ws);
        assert_int_equal(ws.rows, 24);
        assert_int_equal(ws.cols, 80);
    }
    int null = open("/dev/null", O_RDONLY); /* not a terminal: the env's */
    phx_run_pty_size(null, "30", "100", &ws);
    assert_int_equal(ws.rows, 30);
    assert_int_equal(ws.cols, 100);
    close(null);
}

static void test_size_terminal(void **state)
{
    (void)state;
    int m, s;
    struct winsize w = {.ws_row = 33, .ws_col = 111};
    if (openpty(&m, &s, NULL, NULL, &w) < 0)
        skip();
    phx_winsize_t ws;
    phx_run_pty_size(s, "50", "132", &ws); /* the terminal's wins */
    assert_int_equal(ws.rows, 33);
    assert_int_equal(ws.cols, 111);
    struct winsize zero = {0};
    ioctl(m, TIOCSWINSZ, &zero); /* a terminal that says 0 x 0 */
    phx_run_pty_size(s, "50", NULL, &ws);
    assert_int_equal(ws.rows, 50);
    assert_int_equal(ws.cols, 80);
    close(s);
    close(m);
}

static void test_frame(void **state)
{
    (void)state;
    phx_run_in_t in = {.fd = -1};
    phx_winsize_t ws = {40, 120}, back;
    phx_error_t err;
    assert_int_equal(phx_run_pty_frame(&in, &ws), 0);
    assert_true(in.len > 0);
    assert_int_equal(in.off, 0);
    in.off = 1; /* being written: no other frame now */
    assert_int_equal(phx_run_pty_frame(&in, &ws), -1);
    in.off = 0;
    phx_wire_decoder_t *d = phx_wire_decoder_create(PHX_WIRE_DEFAULT_MAX);
    assert_int_equal(phx_wire_decoder_feed(d, in.frame, in.len, &err), 0);
    phx_frame_t f;
    assert_int_equal(phx_wire_decoder_next(d, &f, &err), 1);
    assert_string_equal(f.type, "WINSIZE");
    assert_int_equal(phx_winsize_parse(f.header, &back, &err), 0);
    assert_int_equal(back.rows, 40);
    assert_int_equal(back.cols, 120);
    phx_frame_clear(&f);
    phx_wire_decoder_destroy(d);
    free(in.frame);
}

static void test_parse(void **state)
{
    (void)state;
    phx_winsize_t ws = {7, 7};
    phx_error_t err;
    json_t *v = json_pack("{s:i, s:i}", "rows", 65535, "cols", 1);
    assert_int_equal(phx_winsize_parse(v, &ws, &err), 0);
    assert_int_equal(ws.rows, 65535);
    assert_int_equal(ws.cols, 1);
    json_decref(v);
    static const struct {
        const char *json, *error;
    } bad[] = {
        {"[24, 80]", "pty: not an object"},
        {"{\"cols\": 80}", "pty.rows: not an integer"},
        {"{\"rows\": \"24\", \"cols\": 80}", "pty.rows: not an integer"},
        {"{\"rows\": 24.0, \"cols\": 80}", "pty.rows: not an integer"},
        {"{\"rows\": 0, \"cols\": 80}", "pty.rows: 0 is not between 1 and 65535"},
        {"{\"rows\": 24, \"cols\": 65536}",
         "pty.cols: 65536 is not between 1 and 65535"},
        {"{\"rows\": 24, \"cols\": -80}", "pty.cols: -80 is not between 1 and 65535"},
        {"{\"rows\": 24, \"cols\": null}", "pty.cols: not an integer"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ws.rows = ws.cols = 7;
        v = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        assert_int_equal(phx_winsize_parse(v, &ws, &err), -1);
        assert_string_equal(err.text, bad[i].error);
        assert_int_equal(ws.rows, 7); /* untouched */
        assert_int_equal(ws.cols, 7);
        json_decref(v);
    }
    assert_int_equal(phx_winsize_parse(NULL, &ws, &err), -1);
}

/* The gate every hop keeps per step (lib/winsize.h): the first size goes
 * at once, then the latest only, at most PHX_WINSIZE_RATE a second, so a
 * flood of resizes queues nothing (one held at most) and the last size
 * still arrives. */
static void test_gate(void **state)
{
    (void)state;
    phx_winsize_gate_t g = {0};
    phx_winsize_t ws = {1, 1}, out = {0, 0};
    int64_t wait = -1, now = 1000000;
    assert_int_equal(phx_winsize_gate_take(&g, now, &out, &wait), -1);
    phx_winsize_gate_put(&g, &ws);
    assert_int_equal(phx_winsize_gate_take(&g, now, &out, &wait), 1);
    assert_int_equal(out.rows, 1);
    assert_int_equal(phx_winsize_gate_take(&g, now, &out, &wait), -1);
    /* 10,000 resizes over 2 s, taken as a loop would after each one */
    int sent = 0;
    for (int i = 0; i < 10000; i++) {
        phx_winsize_t w = {(unsigned)(i % 500) + 1, (unsigned)i + 1};
        phx_winsize_gate_put(&g, &w);
        int r = phx_winsize_gate_take(&g, now + i / 5, &out, &wait);
        if (r == 1)
            sent++;
        else {
            assert_int_equal(r, 0);
            assert_true(wait > 0 && wait <= 1000 / PHX_WINSIZE_RATE);
        }
    }
    assert_in_range(sent, 2 * PHX_WINSIZE_RATE - 1, 2 * PHX_WINSIZE_RATE + 1);
    /* the last one is held, and goes once its time came */
    assert_int_equal(phx_winsize_gate_take(&g, now + 1999, &out, &wait), 0);
    assert_int_equal(phx_winsize_gate_take(&g, now + 1999 + wait, &out, &wait), 1);
    assert_int_equal(out.cols, 10000);
    assert_int_equal(out.rows, 9999 % 500 + 1);
    assert_int_equal(phx_winsize_gate_take(&g, now + 5000, &out, &wait), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_env), cmocka_unit_test(test_size_terminal),
        cmocka_unit_test(test_frame),    cmocka_unit_test(test_parse),
        cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
