/* lib/daemon.c: a daemon keeps no descriptor it inherited but 0, 1, 2. */
#include "lib/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

static void closes_all_but_stdio(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* in a child: the test's own descriptors stay */
        int a = open("/dev/null", O_RDONLY), b = dup2(a, 200);
        int ok = a > 2 && b == 200;
        phx_daemon_close_inherited();
        ok = ok && fcntl(a, F_GETFD) < 0 && errno == EBADF;
        ok = ok && fcntl(200, F_GETFD) < 0 && errno == EBADF;
        ok = ok && fcntl(0, F_GETFD) >= 0 && fcntl(2, F_GETFD) >= 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static const phx_conf_key_t schema[] = {
    {"d.log_level", PHX_CONF_STRING, "info", 0, 0, true, NULL},
    {"d.listen", PHX_CONF_STRING, "127.0.0.1:1", 0, 0, false, NULL},
    {"d.port", PHX_CONF_INT, "1", 1, 65535, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* SIGHUP's reading: the file and the same overrides again; a wrong file
 * or level is an error naming it and the running configuration is kept;
 * applying sets the log level (not under -v). */
static void reread_and_apply(void **state)
{
    (void)state;
    char path[] = "/tmp/phx-test-daemon-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "d: { log_level = \"info\"; };\n");
    char *sets[] = {(char *)"d.listen=127.0.0.1:2"};
    phx_error_t err;
    phx_conf_t *conf =
        phx_daemon_conf_reread(schema, path, sets, 1, "d.log_level", &err);
    assert_non_null(conf);
    write_file(path, "d: { log_level = \"debug\";\n listen = ; };\n");
    phx_conf_t *fresh =
        phx_daemon_conf_reread(schema, path, sets, 1, "d.log_level", &err);
    assert_null(fresh); /* no value: file:line */
    assert_non_null(strstr(err.text, path));
    assert_non_null(strstr(err.text, ":2:"));
    write_file(path, "d: { log_level = \"loud\"; };\n");
    assert_null(phx_daemon_conf_reread(schema, path, sets, 1, "d.log_level", &err));
    assert_non_null(strstr(err.text, "d.log_level: unknown level \"loud\""));
    write_file(path,
               "d: { log_level = \"debug\"; listen = \"127.0.0.1:3\"; port = 2; };\n");
    fresh = phx_daemon_conf_reread(schema, path, sets, 1, "d.log_level", &err);
    assert_non_null(fresh);
    phx_log_set_level(LOG_INFO);
    assert_int_equal(phx_daemon_conf_apply(conf, fresh, path, "d.log_level", false), 1);
    assert_string_equal(phx_conf_str(conf, "d.log_level"), "debug");
    assert_int_equal(phx_log_level(), LOG_DEBUG);
    /* the override wins over the file; a key read at start keeps its value
     * although the file changed it */
    assert_string_equal(phx_conf_str(conf, "d.listen"), "127.0.0.1:2");
    assert_int_equal(phx_conf_int(conf, "d.port"), 1);
    phx_conf_destroy(fresh);
    write_file(path, "d: { log_level = \"warning\"; };\n");
    fresh = phx_daemon_conf_reread(schema, path, sets, 1, "d.log_level", &err);
    assert_int_equal(phx_daemon_conf_apply(conf, fresh, path, "d.log_level", true), 1);
    assert_int_equal(phx_log_level(), LOG_DEBUG); /* -v */
    phx_conf_destroy(fresh);
    phx_conf_destroy(conf);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closes_all_but_stdio),
        cmocka_unit_test(reread_and_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
