/* Retention of the tasks' default output folders (daemons/agent/outputs.c):
 * a sweep removes the folders of ended tasks once they are old enough,
 * keeps those of known tasks and recent ones, and removal (as root) never
 * follows a symbolic link a task's user planted in its folder. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemons/agent/outputs.c"

static char top[64];

static void path(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/%s", top, rel);
}

static void mk(const char *rel)
{
    char p[256];
    path(p, sizeof(p), rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void put(const char *rel, const char *text)
{
    char p[256];
    path(p, sizeof(p), rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void link_to(const char *target_rel, const char *rel)
{
    char t[256], p[256];
    path(t, sizeof(t), target_rel);
    path(p, sizeof(p), rel);
    assert_int_equal(symlink(t, p), 0);
}

static bool there(const char *rel)
{
    char p[256];
    struct stat st;
    path(p, sizeof(p), rel);
    return lstat(p, &st) == 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(top, sizeof(top), "/tmp/phx-outputs-XXXXXX");
    if (!mkdtemp(top))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    return system(cmd) == 0 ? 0 : -1;
}

/* A victim outside the tasks' folder: what a user would like root to remove
 * or to write through. */
static void make_victim(void)
{
    mk("victim");
    put("victim/precious", "keep me\n");
    mk("tasks");
}

static void test_remove_does_not_follow_links(void **state)
{
    (void)state;
    make_victim();
    mk("tasks/k1");
    put("tasks/k1/stdout", "out\n");
    mk("tasks/k1/sub");
    mk("tasks/k1/sub/deeper");
    put("tasks/k1/sub/deeper/f", "x");
    link_to("victim", "tasks/k1/dirlink");
    link_to("victim/precious", "tasks/k1/filelink");
    link_to("victim", "tasks/k1/sub/deeper/up");
    char p[256];
    path(p, sizeof(p), "tasks/k1/fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    path(p, sizeof(p), "tasks/k1/sub");
    assert_int_equal(chmod(p, 0), 0); /* the user's own modes do not stop root */
    path(p, sizeof(p), "tasks");
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(phx_outputs_remove_at(fd, "k1"), 0);
    /* Absent already is done. */
    assert_int_equal(phx_outputs_remove_at(fd, "k1"), 0);
    close(fd);
    assert_false(there("tasks/k1"));
    assert_true(there("victim/precious"));
    assert_true(there("victim"));
}

/* Nesting beyond the bound is left, not recursed into without end. */
static void test_depth_bound(void **state)
{
    (void)state;
    mk("tasks");
    char rel[1024] = "tasks/deep";
    mk(rel);
    for (int i = 0; i < PHX_OUTPUTS_MAX_DEPTH + 2; i++) {
        strcat(rel, "/d");
        mk(rel);
    }
    char p[256];
    path(p, sizeof(p), "tasks");
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    assert_int_equal(phx_outputs_remove_at(fd, "deep"), -1);
    assert_int_equal(errno, ELOOP);
    close(fd);
    assert_true(there("tasks/deep"));
}

static bool live_is_running(const char *key, void *arg)
{
    (void)arg;
    return strcmp(key, "running") == 0;
}

static void test_sweep(void **state)
{
    (void)state;
    make_victim();
    mk("tasks/ended");
    put("tasks/ended/stdout", "out\n");
    link_to("victim", "tasks/ended/v");
    mk("tasks/running");
    put("tasks/running/stdout", "still going\n");
    link_to("victim", "tasks/elsewhere"); /* not the agent's: not followed */
    /* left by an earlier sweep that could not finish: tried again */
    mk("tasks/.trash");
    mk("tasks/.trash/left");
    put("tasks/.trash/left/stdout", "x");
    /* A user may backdate mtimes, not ctimes: a folder just written looks
     * recent whatever its mtimes say. */
    char p[256];
    path(p, sizeof(p), "tasks/ended/stdout");
    struct timespec old[2] = {{1, 0}, {1, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    path(p, sizeof(p), "tasks/ended");
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    path(p, sizeof(p), "tasks");
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    double now = (double)time(NULL);
    char t[256];
    path(t, sizeof(t), "tasks/.trash");
    assert_int_equal(chmod(t, 0700), 0);
    /* Recent: kept. */
    assert_int_equal(phx_outputs_sweep(fd, now, 3600, live_is_running, NULL), 0);
    assert_true(there("tasks/ended/stdout"));
    assert_false(there("tasks/.trash/left"));
    /* Old enough: the ended task's folder goes, the running task's stays. */
    assert_int_equal(phx_outputs_sweep(fd, now + 7200, 3600, live_is_running, NULL), 1);
    assert_false(there("tasks/ended"));
    assert_true(there("tasks/running/stdout"));
    assert_true(there("tasks/elsewhere"));
    assert_true(there("victim/precious"));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remove_does_not_follow_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_depth_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
