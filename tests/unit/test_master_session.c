/* Reading the master's state (daemons/master/http_read.c): web session
 * tokens that `phx ui` hands to a browser (signed, expiring, bound to the
 * master's key and the uid) and master.metrics_token_file's checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemons/master/conf.c"
#include "daemons/master/http_read.c"

/* agents.c's clock, which http_read.c reads only in request handlers */
int64_t phx_master_wall(void)
{
    return (int64_t)time(NULL);
}

#define NOW ((int64_t)1800000000)

static char dir[] = "/tmp/phx-session-XXXXXX";

/* A master with a fresh key and the configuration text extra. */
static int make_master(phx_master_t *m, const char *extra, phx_error_t *err)
{
    memset(m, 0, sizeof(*m));
    char text[1024];
    snprintf(text, sizeof(text), "master: { %s };", extra ? extra : "");
    if (!(m->conf = phx_conf_load_string(phx_master_schema, text, "test.conf", err)))
        return -1;
    return phx_master_http_read_init(m, err);
}

static void drop_master(phx_master_t *m)
{
    phx_master_http_read_clear(m);
    phx_conf_destroy(m->conf);
}

static void test_roundtrip(void **state)
{
    (void)state;
    phx_master_t m;
    phx_error_t err = {{0}};
    assert_int_equal(make_master(&m, NULL, &err), 0);
    assert_int_equal(m.web_session_ttl, 28800);
    char tok[128];
    assert_int_equal(phx_master_session_token(&m, 1234, NOW + 600, tok, sizeof(tok)),
                     0);
    assert_non_null(strstr(tok, "v1.1234.1800000600."));
    uid_t uid = 0;
    const char *why = NULL;
    assert_int_equal(phx_master_session_check(&m, tok, NOW, &uid, &why), 0);
    assert_int_equal(uid, 1234);
    assert_int_equal(phx_master_session_check(&m, tok, NOW + 599, &uid, &why), 0);
    /* expired at its expiry */
    assert_int_equal(phx_master_session_check(&m, tok, NOW + 600, &uid, &why), -1);
    assert_non_null(strstr(why, "expired"));
    /* too small a buffer */
    assert_int_equal(phx_master_session_token(&m, 1234, NOW, tok, 20), -1);
    drop_master(&m);
}

static void test_tampered(void **state)
{
    (void)state;
    phx_master_t m, other;
    phx_error_t err = {{0}};
    assert_int_equal(make_master(&m, NULL, &err), 0);
    assert_int_equal(make_master(&other, NULL, &err), 0);
    char tok[128], bad[160];
    assert_int_equal(phx_master_session_token(&m, 1000, NOW + 600, tok, sizeof(tok)),
                     0);
    const char *mac = strrchr(tok, '.') + 1;
    uid_t uid = 77;
    const char *why = NULL;

    /* another uid, a later expiry, with the same MAC */
    snprintf(bad, sizeof(bad), "v1.0.%lld.%s", (long long)NOW + 600, mac);
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    assert_non_null(strstr(why, "invalid session token"));
    snprintf(bad, sizeof(bad), "v1.1000.%lld.%s", (long long)NOW + 6000000, mac);
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    /* one digit of the MAC changed */
    snprintf(bad, sizeof(bad), "%s", tok);
    char *last = bad + strlen(bad) - 1;
    *last = *last == '0' ? '1' : '0';
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    /* another master's key (or this one's after a restart) */
    assert_int_equal(phx_master_session_check(&other, tok, NOW, &uid, &why), -1);
    assert_int_equal(uid, 77); /* untouched on failure */

    static const char *const malformed[] = {
        "",
        "v1.",
        "v1.1000",
        "v1.1000.1800000600",
        "v1.1000.1800000600.",
        "v2.1000.1800000600.00",
        "Munge abc",
        "v1.x.1800000600.00",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        why = NULL;
        assert_int_equal(phx_master_session_check(&m, malformed[i], NOW, &uid, &why),
                         -1);
        assert_non_null(strstr(why, "malformed"));
    }
    /* other spellings of the same numbers, or of the MAC: refused, one
     * spelling per session */
    char hexmac[PHX_MAC_HEX_LEN + 1];
    snprintf(hexmac, sizeof(hexmac), "%s", mac);
    const char *variants[] = {"v1.01000.%lld.%s",      "v1.+1000.%lld.%s",
                              "v1. 1000.%lld.%s",      "v1.1000.0%lld.%s",
                              "v1.1000.+%lld.%s",      "v1.4294968296.%lld.%s",
                              "v1.-4294966296.%lld.%s"};
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        snprintf(bad, sizeof(bad), variants[i], (long long)NOW + 600, hexmac);
        why = NULL;
        assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
        assert_non_null(strstr(why, "malformed"));
    }
    for (char *c = hexmac; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    snprintf(bad, sizeof(bad), "v1.1000.%lld.%s", (long long)NOW + 600, hexmac);
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    /* the same, spelt as made: accepted */
    snprintf(bad, sizeof(bad), "v1.1000.%lld.%s", (long long)NOW + 600, mac);
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), 0);
    uid = 77;
    /* the MAC one digit short, one too long, not hex */
    snprintf(bad, sizeof(bad), "%.*s", (int)strlen(tok) - 1, tok);
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    snprintf(bad, sizeof(bad), "%s0", tok);
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[strlen(bad) - 1] = 'g';
    assert_int_equal(phx_master_session_check(&m, bad, NOW, &uid, &why), -1);
    drop_master(&m);
    drop_master(&other);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void expect_refused(const char *file, const char *needle)
{
    char extra[512];
    snprintf(extra, sizeof(extra), "metrics_token_file = \"%s\";", file);
    phx_master_t m;
    phx_error_t err = {{0}};
    assert_int_equal(make_master(&m, extra, &err), -1);
    if (!strstr(err.text, needle) || !strstr(err.text, "master.metrics_token_file"))
        fail_msg("expected \"%s\" in \"%s\"", needle, err.text);
    assert_null(m.metrics_token);
    drop_master(&m);
}

static void test_metrics_token_file(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    char file[128], link[128], extra[512];
    snprintf(file, sizeof(file), "%s/token", dir);
    snprintf(link, sizeof(link), "%s/link", dir);

    write_file(file, "0123456789abcdef0123\n", 0600);
    snprintf(extra, sizeof(extra), "metrics_token_file = \"%s\";", file);
    phx_master_t m;
    phx_error_t err = {{0}};
    assert_int_equal(make_master(&m, extra, &err), 0);
    assert_string_equal(m.metrics_token, "0123456789abcdef0123");
    drop_master(&m);

    write_file(file, "0123456789abcdef0123\n", 0644);
    expect_refused(file, "chmod 600");
    write_file(file, "0123456789abcdef0123\n", 0640);
    expect_refused(file, "chmod 600");
    write_file(file, "short\n", 0600);
    expect_refused(file, "16 to 256");
    write_file(file, "0123456789 abcdef0123\n", 0600);
    expect_refused(file, "without blanks");
    write_file(file, "", 0600);
    expect_refused(file, "one token");
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file(file, big, 0600);
    expect_refused(file, "too long");
    /* a token, then more: not cut to its first line */
    memset(big, 'A', 256);
    snprintf(big + 256, sizeof(big) - 256, "\nSECOND-LINE\n");
    write_file(file, big, 0600);
    expect_refused(file, "too long");
    big[256] = '\0';
    write_file(file, big, 0600); /* 256 characters exactly: fine */
    snprintf(extra, sizeof(extra), "metrics_token_file = \"%s\";", file);
    assert_int_equal(make_master(&m, extra, &err), 0);
    assert_int_equal(strlen(m.metrics_token), 256);
    drop_master(&m);
    write_file(file, "0123456789abcdef0123\n", 0620);
    expect_refused(file, "chmod 600");
    /* a FIFO: refused, not waited on */
    unlink(file);
    assert_int_equal(mkfifo(file, 0600), 0);
    expect_refused(file, "not a regular file");
    unlink(file);
    expect_refused(dir, "not a regular file");
    write_file(file, "0123456789abcdef0123\n", 0600);
    assert_int_equal(symlink(file, link), 0);
    expect_refused(link, link); /* O_NOFOLLOW */
    unlink(link);
    unlink(file);
    expect_refused(file, "No such file");
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_metrics_token_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
