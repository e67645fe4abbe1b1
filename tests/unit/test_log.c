/* The logger writes one line per record: text a peer controls (a frame's
 * type, a node's name) cannot forge a record or send terminal escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

/* What one call to log() wrote on stderr. */
#define CAPTURE(buf, ...)                                                              \
    do {                                                                               \
        FILE *tmp = tmpfile();                                                         \
        assert_non_null(tmp);                                                          \
        fflush(stderr);                                                                \
        int saved = dup(2);                                                            \
        assert_true(saved >= 0);                                                       \
        assert_int_equal(dup2(fileno(tmp), 2), 2);                                     \
        __VA_ARGS__;                                                                   \
        fflush(stderr);                                                                \
        assert_int_equal(dup2(saved, 2), 2);                                           \
        close(saved);                                                                  \
        rewind(tmp);                                                                   \
        size_t n = fread((buf), 1, sizeof(buf) - 1, tmp);                              \
        (buf)[n] = '\0';                                                               \
        fclose(tmp);                                                                   \
    } while (0)

static size_t count(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static void test_controls_escaped(void **state)
{
    (void)state;
    char out[4096];
    phx_log_init("t", PHX_LOG_STDERR, LOG_DEBUG);
    CAPTURE(out,
            phx_log_warnx(
                "unknown frame type \"%s\"",
                "x\n2026-11-25T00:00:00.000 phx-master[1]: error: forged\x1b[2J\t"));
    assert_int_equal(count(out, '\n'), 1);
    assert_non_null(
        strstr(out, ": warning: unknown frame type \"x\\x0a2026-11-25T00:00:00.000 "
                    "phx-master[1]: error: forged\\x1b[2J\\x09\"\n"));
    /* Ordinary text, UTF-8 included, is left alone. */
    CAPTURE(out, phx_log_notice("node n1 up: 4 cores, état ok"));
    assert_non_null(strstr(out, ": notice: node n1 up: 4 cores, état ok\n"));
}

static void test_long_record_cut_at_whole_escape(void **state)
{
    (void)state;
    char big[3000], out[8192];
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    phx_log_init("t", PHX_LOG_STDERR, LOG_DEBUG);
    CAPTURE(out, phx_log_warnx("%s", big));
    assert_int_equal(count(out, '\n'), 1);
    const char *msg = strstr(out, ": warning: ");
    assert_non_null(msg);
    msg += strlen(": warning: ");
    size_t len = strlen(msg) - 1; /* the record's newline */
    assert_true(len > 2000 && len < 2048);
    assert_int_equal(len % 4, 0);
    for (size_t i = 0; i < len; i += 4)
        assert_memory_equal(msg + i, "\\x0a", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controls_escaped),
        cmocka_unit_test(test_long_record_cut_at_whole_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
