/* lib/rmtree.c: a removal that a user keeps feeding with new files ends
 * (each directory is read a bounded number of times); one that cannot
 * finish reports why. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/rmtree.h"

static char top[64];
static atomic_bool stop;

/* A user's process adding files to top/dir as fast as it can. */
static void *feed(void *arg)
{
    (void)arg;
    char p[128];
    for (long i = 0; !atomic_load(&stop); i++) {
        snprintf(p, sizeof(p), "%s/dir/f%ld", top, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static void removal_ends_under_a_writer(void **state)
{
    (void)state;
    snprintf(top, sizeof(top), "/tmp/phx-rmtree-XXXXXX");
    assert_non_null(mkdtemp(top));
    char p[128];
    snprintf(p, sizeof(p), "%s/dir", top);
    assert_int_equal(mkdir(p, 0700), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, feed, NULL), 0);
    usleep(100000);
    int parent = open(top, O_RDONLY | O_DIRECTORY);
    assert_true(parent >= 0);
    /* the unbounded removal this replaced never returned here */
    int rc = phx_rmtree_at(parent, "dir");
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    if (rc < 0)
        assert_int_equal(errno, ENOTEMPTY);
    /* once the writer stopped it goes */
    assert_int_equal(phx_rmtree_at(parent, "dir"), 0);
    struct stat st;
    assert_int_equal(fstatat(parent, "dir", &st, AT_SYMLINK_NOFOLLOW), -1);
    close(parent);
    rmdir(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(removal_ends_under_a_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
