/* phx run -i/--input (cli/run_input.c): all, none or a rank number, srun's
 * file name patterns refused; /dev/null (or a closed stdin) forwards
 * nothing; INPUT frames carry at most a chunk, the last one eof. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>

#include "cli/run_input.c"

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(phx_run_input_parse("all"), PHX_RUN_INPUT_ALL);
    assert_int_equal(phx_run_input_parse("none"), PHX_RUN_INPUT_NONE);
    assert_int_equal(phx_run_input_parse("0"), 0);
    assert_int_equal(phx_run_input_parse("17"), 17);
    const char *bad[] = {"", "-1", "1x", "file%t", "in.txt", "ALL", "12345678", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(phx_run_input_parse(bad[i]), PHX_RUN_INPUT_BAD);
    assert_int_equal(phx_run_input_parse(NULL), PHX_RUN_INPUT_BAD);
}

static void test_stdin_kinds(void **state)
{
    (void)state;
    int null = open("/dev/null", O_RDONLY);
    assert_true(null >= 0);
    assert_true(phx_run_stdin_is_null(null));
    assert_false(phx_run_stdin_is_file(null));
    close(null);
    assert_true(phx_run_stdin_is_null(null)); /* closed */
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_false(phx_run_stdin_is_null(fileno(f)));
    assert_true(phx_run_stdin_is_file(fileno(f)));
    fclose(f);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_false(phx_run_stdin_is_null(p[0]));
    assert_false(phx_run_stdin_is_file(p[0]));
    close(p[0]);
    close(p[1]);
}

/* 100 000 bytes through a pipe: frames of at most a chunk, in order, then
 * one with eof; nothing is read before the step started or while a frame
 * waits to be written. */
static void test_frames(void **state)
{
    (void)state;
    int p[2], s[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    static char data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    phx_run_in_t in = {.fd = p[0]};
    assert_false(phx_run_in_want_read(&in));
    in.started = true;
    assert_true(phx_run_in_want_read(&in));
    phx_wire_decoder_t *dec = phx_wire_decoder_create(PHX_WIRE_DEFAULT_MAX);
    static char got[sizeof(data)];
    size_t have = 0;
    bool eof = false;
    size_t written = 0;
    while (!eof) {
        if (written < sizeof(data)) {
            ssize_t w =
                write(p[1], data + written,
                      sizeof(data) - written > 30000 ? 30000 : sizeof(data) - written);
            assert_true(w > 0);
            written += (size_t)w;
            if (written == sizeof(data))
                close(p[1]);
        }
        assert_true(phx_run_in_want_read(&in));
        phx_run_in_read(&in);
        assert_false(phx_run_in_want_read(&in)); /* the frame first */
        assert_true(phx_run_in_want_write(&in) || in.ended);
        assert_int_equal(phx_run_in_write(&in, s[0]), 0);
        uint8_t buf[1 << 17];
        ssize_t n = read(s[1], buf, sizeof(buf));
        assert_true(n > 0);
        phx_error_t err;
        assert_int_equal(phx_wire_decoder_feed(dec, buf, (size_t)n, &err), 0);
        phx_frame_t f;
        while (phx_wire_decoder_next(dec, &f, &err) == 1) {
            assert_string_equal(f.type, "INPUT");
            assert_true(f.attach_len <= PHX_RUN_INPUT_CHUNK);
            memcpy(got + have, f.attach, f.attach_len);
            have += f.attach_len;
            eof = json_is_true(json_object_get(f.header, "eof"));
            phx_frame_clear(&f);
        }
    }
    assert_int_equal(have, sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    assert_true(in.ended);
    assert_false(phx_run_in_want_read(&in));
    phx_run_in_clear(&in);
    phx_wire_decoder_destroy(dec);
    close(p[0]);
    close(s[0]);
    close(s[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_stdin_kinds),
        cmocka_unit_test(test_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
