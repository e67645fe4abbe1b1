/* pmix/stepdir.c: step directories live in a base of the agent's own (root's,
 * 0711, a random name), are given to the step's user, and are removed
 * without following any link the user left in them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/rmtree.h"
#include "pmix/pmix_impl.h"

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

/* The user's move during the removal: "sub" becomes a symlink to the
 * outside directory, once (with nftw, root then removed outside/x). */
static const char *race_target;
static int races;

static void swap_for_link(int parent, const char *name)
{
    if (strcmp(name, "sub") != 0 || races++)
        return;
    assert_int_equal(renameat(parent, "sub", parent, "sub-moved"), 0);
    assert_int_equal(symlinkat(race_target, parent, "sub"), 0);
}

static void step_dirs(void **state)
{
    (void)state;
    if (geteuid() != 0) /* chown to another user: the tests run as root */
        fail_msg("test_pmix_stepdir must run as root");
    struct phx_pmix *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    snprintf(p->node, sizeof(p->node), "n1/x");
    snprintf(p->tmpdir, sizeof(p->tmpdir), "/tmp");
    /* the bases of agents killed before (a pid gone) go; a live one's stays */
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    char stale[64], live[64], path0[128];
    snprintf(stale, sizeof(stale), "/dev/shm/phx-n1_x-STALE1");
    snprintf(live, sizeof(live), "/dev/shm/phx-n1_x-LIVE01");
    const char *bases[2] = {stale, live};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mkdir(bases[i], 0711), 0);
        assert_int_equal(chmod(bases[i], 0711), 0);
        snprintf(path0, sizeof(path0), "%s/.agent", bases[i]);
        FILE *f = fopen(path0, "w");
        assert_non_null(f);
        fprintf(f, "%ld\n", i == 0 ? (long)dead : (long)getpid());
        fclose(f);
        snprintf(path0, sizeof(path0), "%s/phx.9.9", bases[i]);
        assert_int_equal(mkdir(path0, 0700), 0);
    }
    phx_error_t err;
    assert_int_equal(phx_pmix_stepbase_create(p, &err), 0);
    struct stat st;
    assert_int_equal(lstat(stale, &st), -1);
    assert_int_equal(lstat(live, &st), 0);
    snprintf(path0, sizeof(path0), "%s/phx.9.9", live);
    rmdir(path0);
    snprintf(path0, sizeof(path0), "%s/.agent", live);
    unlink(path0);
    rmdir(live);
    assert_int_equal(lstat(p->stepbase, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0711);
    assert_int_equal(st.st_uid, 0);
    assert_null(strstr(p->stepbase + strlen("/dev/shm/"), "/")); /* node "n1/x" */

    char dir[1400];
    assert_int_equal(phx_pmix_step_dir(p, "..", dir, sizeof(dir)), -1);
    assert_int_equal(phx_pmix_step_dir(p, "a/b", dir, sizeof(dir)), -1);
    assert_int_equal(phx_pmix_step_dir(p, "", dir, sizeof(dir)), -1);
    assert_int_equal(phx_pmix_step_dir_make(p, "phx.1.1", 65534, 65534, &err), 0);
    assert_int_equal(phx_pmix_step_dir(p, "phx.1.1", dir, sizeof(dir)), 0);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_mode & 07777, 0700);

    /* the user's tree: files, a subdirectory, links to a directory of
     * someone else's files and to one of them */
    char outside[] = "/tmp/phx-stepdir-outside-XXXXXX", path[1600], target[1600];
    assert_non_null(mkdtemp(outside));
    snprintf(target, sizeof(target), "%s/keep", outside);
    touch(target);
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub/deep", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub/deep/file", dir);
    touch(path);
    snprintf(path, sizeof(path), "%s/sub/to-dir", dir);
    assert_int_equal(symlink(outside, path), 0);
    snprintf(path, sizeof(path), "%s/to-file", dir);
    assert_int_equal(symlink(target, path), 0);
    phx_pmix_step_dir_remove(p, "phx.1.1");
    assert_int_equal(lstat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(lstat(target, &st), 0); /* nothing outside went */

    /* "sub" swapped for a link while the removal walks: what the link
     * points at stays, the tree goes */
    assert_int_equal(phx_pmix_step_dir_make(p, "phx.1.4", 65534, 65534, &err), 0);
    assert_int_equal(phx_pmix_step_dir(p, "phx.1.4", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub/keep", dir); /* outside/keep's name */
    touch(path);
    race_target = outside;
    phx_rmtree_race_hook = swap_for_link;
    phx_pmix_step_dir_remove(p, "phx.1.4");
    phx_rmtree_race_hook = NULL;
    assert_int_equal(races, 1);
    assert_int_equal(lstat(target, &st), 0);
    assert_int_equal(lstat(dir, &st), -1);

    /* the base and what is left in it go at the end */
    assert_int_equal(phx_pmix_step_dir_make(p, "phx.1.2", 65534, 65534, &err), 0);
    char base[1024];
    snprintf(base, sizeof(base), "%s", p->stepbase);
    phx_pmix_stepbase_remove(p);
    assert_int_equal(lstat(base, &st), -1);
    assert_int_equal(phx_pmix_step_dir(p, "phx.1.3", dir, sizeof(dir)), -1);
    unlink(target);
    rmdir(outside);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(step_dirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
