/* What the agent's use of cgroups v1 relies on, checked with the real
 * phx-agent binary and the fake master of tests/unit/support/agentharness.h
 * (real cgroups, a real user; needs root).
 *
 * A task's process is in the task's cgroup of every hierarchy, and its user
 * cannot take it out of any (cgroup.procs files are root's): the sweep, the
 * limits and the usage of a task hold for all its processes.  (Root can
 * move a process; test_agent_exec's test_leftover_process_not_reused shows
 * a cgroup holding one is not reused.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/support/agentharness.h"

static phx_agentharness_t *const H = &phx_agentharness;

/* The line of /proc/<pid>/cgroup text for controller ctrl ("N:a,b:/path"),
 * its path; NULL if none. */
static char *cgroup_of(const char *text, const char *ctrl)
{
    static char path[1024];
    for (const char *l = text; l && *l;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *c = strchr(l, ':'), *p = c ? strchr(c + 1, ':') : NULL;
        if (!p)
            continue;
        size_t n = strlen(ctrl);
        for (const char *k = c + 1; k < p;
             k = strchr(k, ',') ? strchr(k, ',') + 1 : p) {
            if (strncmp(k, ctrl, n) == 0 && (k[n] == ',' || k + n == p)) {
                size_t len = strcspn(p + 1, "\n");
                snprintf(path, sizeof(path), "%.*s", (int)len, p + 1);
                return path;
            }
            if (!strchr(k, ',') || strchr(k, ',') > p)
                break;
        }
    }
    return NULL;
}

static void test_task_cannot_leave_its_cgroups(void **state)
{
    (void)state;
    static const char *const ctrls[] = {"freezer", "cpuset", "memory", "cpuacct"};
    char script[2048];
    /* As the task's user: to the agent's folder, and to the root cgroup. */
    snprintf(script, sizeof(script),
             "for h in freezer cpuset memory cpuacct; do "
             "for d in /sys/fs/cgroup/$h/%s/" PHX_AGENTHARNESS_NODE
             " /sys/fs/cgroup/$h; do "
             "if (echo $$ > $d/cgroup.procs) 2>/dev/null; then echo moved $h $d; fi; "
             "done; done; cat /proc/$$/cgroup",
             H->cgroot);
    phx_agentharness_launch(phx_agentharness_task_new("c-stay", script),
                            PHX_AGENTHARNESS_SIGNED);
    json_t *s = phx_agentharness_wait_end("c-stay", 20);
    phx_agentharness_assert_exit(s, "TASK_FINISHED", 0);
    json_decref(s);
    char *out = phx_agentharness_stdout(PHX_AGENTHARNESS_KEY("c-stay"));
    assert_non_null(out);
    if (strstr(out, "moved"))
        fail_msg("the task's user moved its process: %s", out);
    char want[512];
    snprintf(want, sizeof(want), "/%s/" PHX_AGENTHARNESS_NODE "/%s", H->cgroot,
             PHX_AGENTHARNESS_KEY("c-stay"));
    for (int i = 0; i < 4; i++) {
        const char *path = cgroup_of(out, ctrls[i]);
        if (!path || strcmp(path, want) != 0)
            fail_msg("%s: the task's process is in %s, not %s:\n%s", ctrls[i],
                     path ? path : "(none)", want, out);
    }
    free(out);
    phx_agentharness_wait_forgotten(PHX_AGENTHARNESS_KEY("c-stay"), 10);
}

#define TEST(f) cmocka_unit_test_teardown(f, phx_agentharness_reset)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_task_cannot_leave_its_cgroups),
    };
    return cmocka_run_group_tests(tests, phx_agentharness_setup,
                                  phx_agentharness_teardown);
}
