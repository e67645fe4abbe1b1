/* Configuration against a schema: defaults, types, bounds, unknown keys and
 * syntax errors named with file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config.h"

static const phx_conf_key_t schema[] = {
    {"master.port", PHX_CONF_INT, "5050", 1, 65535, false, "agent port"},
    {"master.host", PHX_CONF_STRING, "127.0.0.1", 0, 0, false, "address"},
    {"master.heartbeat", PHX_CONF_DOUBLE, "1.5", 0.1, 60, true, "seconds"},
    {"master.debug", PHX_CONF_BOOL, "false", 0, 0, true, "debug"},
    {"master.operators", PHX_CONF_STRLIST, "root", 0, 0, false, "operators"},
    {"master.dsn", PHX_CONF_STRING, NULL, 0, 0, false, "no default"},
    {"client.master", PHX_CONF_STRLIST, "127.0.0.1:6050", 0, 0, false, "masters"},
    {"agent", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

static phx_conf_t *load(const char *text, phx_error_t *err)
{
    return phx_conf_load_string(schema, text, "test.conf", err);
}

static void expect_error(const char *text, const char *needle)
{
    phx_error_t err = {{0}};
    phx_conf_t *c = load(text, &err);
    if (c)
        fail_msg("config accepted: %s", text);
    if (!strstr(err.text, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, err.text);
}

static void test_defaults(void **state)
{
    (void)state;
    phx_error_t err;
    phx_conf_t *c = load("", &err);
    assert_non_null(c);
    assert_int_equal(phx_conf_int(c, "master.port"), 5050);
    assert_string_equal(phx_conf_str(c, "master.host"), "127.0.0.1");
    assert_true(phx_conf_double(c, "master.heartbeat") == 1.5);
    assert_false(phx_conf_bool(c, "master.debug"));
    assert_int_equal(phx_conf_list_len(c, "master.operators"), 1);
    assert_string_equal(phx_conf_list_get(c, "master.operators", 0), "root");
    assert_null(phx_conf_str(c, "master.dsn"));
    assert_false(phx_conf_is_set(c, "master.port"));
    phx_conf_destroy(c);
}

static void test_values_and_foreign_group(void **state)
{
    (void)state;
    phx_error_t err;
    phx_conf_t *c = load("master: {\n port = 6000;\n heartbeat = 2;\n debug = true;\n"
                         " operators = [\"alice\", \"bob\"];\n};\n"
                         "agent: { anything = \"goes\"; nested: { x = 1; }; };\n",
                         &err);
    if (!c)
        fail_msg("%s", err.text);
    assert_int_equal(phx_conf_int(c, "master.port"), 6000);
    assert_true(phx_conf_is_set(c, "master.port"));
    assert_true(phx_conf_double(c, "master.heartbeat") == 2.0);
    assert_true(phx_conf_bool(c, "master.debug"));
    assert_int_equal(phx_conf_list_len(c, "master.operators"), 2);
    assert_string_equal(phx_conf_list_get(c, "master.operators", 1), "bob");
    assert_null(phx_conf_list_get(c, "master.operators", 2));
    phx_conf_destroy(c);
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    expect_error("master: {\n port = 6000;\n prot = 1;\n};\n",
                 "test.conf:3: unknown setting \"master.prot\"");
    expect_error("mastr: {\n port = 1;\n};\n", "test.conf:1: unknown group \"mastr\"");
    expect_error("master: {\n\n port = \"6000\";\n};\n",
                 "test.conf:3: setting \"master.port\" must be an integer");
    expect_error(
        "master: { port = 70000; };\n",
        "test.conf:1: setting \"master.port\" = 70000 is out of range [1, 65535]");
    expect_error("master: { heartbeat = 0.01; };", "out of range");
    expect_error("master: { debug = 1; };", "\"master.debug\" must be a boolean");
    expect_error("master: { operators = [1, 2]; };", "must be a list of strings");
    expect_error("master: {\n port = 6000;\n host = = \"x\";\n};\n",
                 "test.conf:3: syntax error");
    expect_error("port = 1;", "unknown setting \"port\"");
}

static void test_file_errors(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\nmaster:\n{\n  port = 1;\n  bogus = 2;\n};\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    phx_error_t err;
    assert_null(phx_conf_load(schema, path, &err));
    char want[128];
    snprintf(want, sizeof(want), "%s:5: unknown setting \"master.bogus\"", path);
    assert_string_equal(err.text, want);
    unlink(path);

    assert_null(phx_conf_load(schema, "/nonexistent/phalanx.conf", &err));
    assert_non_null(strstr(err.text, "could not read configuration file"));
    assert_non_null(strstr(err.text, "/nonexistent/phalanx.conf"));
}

static void test_overrides(void **state)
{
    (void)state;
    phx_error_t err;
    phx_conf_t *c = load("master: { port = 6000; };", &err);
    assert_non_null(c);
    assert_int_equal(phx_conf_set(c, "master.port=7000", &err), 0);
    assert_int_equal(phx_conf_int(c, "master.port"), 7000);
    assert_int_equal(phx_conf_set(c, "master.operators=a,b,c", &err), 0);
    assert_int_equal(phx_conf_list_len(c, "master.operators"), 3);
    assert_int_equal(phx_conf_set(c, "master.port=0", &err), -1);
    assert_non_null(strstr(err.text, "out of range"));
    assert_int_equal(phx_conf_int(c, "master.port"), 7000); /* unchanged */
    assert_int_equal(phx_conf_set(c, "master.nope=1", &err), -1);
    assert_non_null(strstr(err.text, "unknown setting \"master.nope\""));
    assert_int_equal(phx_conf_set(c, "master.debug=maybe", &err), -1);
    assert_int_equal(phx_conf_set(c, "noequals", &err), -1);
    phx_conf_destroy(c);
}

/* Reloading: a reloadable key takes the new value, another keeps its own;
 * both are reported, an unchanged key is not. */
struct seen {
    char text[256];
};

static void note_change(const char *path, bool reloadable, void *arg)
{
    struct seen *s = arg;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "%s%s=%d", n ? " " : "", path,
             (int)reloadable);
}

static void test_take_reloadable(void **state)
{
    (void)state;
    phx_error_t err;
    phx_conf_t *c = load("master: { port = 6000; heartbeat = 2.0; };", &err);
    phx_conf_t *f = load("master: { port = 7000; heartbeat = 3.0; debug = true;\n"
                         "operators = [\"root\", \"ops\"]; };",
                         &err);
    assert_non_null(c);
    assert_non_null(f);
    struct seen seen = {{0}};
    assert_int_equal(phx_conf_take_reloadable(c, f, note_change, &seen), 2);
    assert_string_equal(seen.text, "master.port=0 master.heartbeat=1 master.debug=1 "
                                   "master.operators=0");
    assert_int_equal(phx_conf_int(c, "master.port"), 6000);
    assert_true(phx_conf_double(c, "master.heartbeat") == 3.0);
    assert_true(phx_conf_bool(c, "master.debug"));
    assert_true(phx_conf_is_set(c, "master.debug"));
    assert_int_equal(phx_conf_list_len(c, "master.operators"), 1);
    /* the old values went to f: nothing leaks, nothing is freed twice */
    assert_true(phx_conf_double(f, "master.heartbeat") == 2.0);
    phx_conf_destroy(f);
    f = load("master: { port = 6000; heartbeat = 3.0; debug = true; };", &err);
    seen.text[0] = '\0';
    assert_int_equal(phx_conf_take_reloadable(c, f, note_change, &seen), 0);
    assert_string_equal(seen.text, "");
    phx_conf_destroy(f);
    phx_conf_destroy(c);
}

/* One string for a list: the master addresses only (a partition line's
 * own commas would be split otherwise: a review) */
static void test_string_lists(void **state)
{
    (void)state;
    phx_error_t err;
    phx_conf_t *c = load("client: { master = \"a:1, b:2\"; };", &err);
    assert_non_null(c);
    assert_string_equal(phx_conf_list_get(c, "client.master", 0), "a:1");
    assert_string_equal(phx_conf_list_get(c, "client.master", 1), "b:2");
    phx_conf_destroy(c);
    expect_error("master: { operators = \"root,bob\"; };", "test.conf:1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_string_lists),
        cmocka_unit_test(test_values_and_foreign_group),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_take_reloadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
