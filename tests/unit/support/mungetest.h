/* A private munged for unit tests: own key, socket, pid, log and seed files
 * in a temporary directory; stopped and removed by phx_test_munged_stop. */
#ifndef PHX_TEST_MUNGETEST_H
#define PHX_TEST_MUNGETEST_H

#include <sys/types.h>

typedef struct phx_test_munged {
    char dir[128];
    char socket[192];
    pid_t pid;
} phx_test_munged_t;

/* 0 when munged answers on m->socket, -1 (message on stderr) otherwise. */
int phx_test_munged_start(phx_test_munged_t *m);
void phx_test_munged_stop(phx_test_munged_t *m);

#endif
