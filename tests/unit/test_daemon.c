/* lib/daemon.c: a daemon keeps no descriptor it inherited but 0, 1, 2. */
#include "lib/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closes_all_but_stdio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
