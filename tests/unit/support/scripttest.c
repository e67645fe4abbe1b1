/* The script fixtures of scripttest.h. */
#include "tests/unit/support/scripttest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tests/unit/support/paths.h"

const phx_jobspec_limits_t phx_scripttest_limits = {.max_array_index = 100000,
                                                    .max_array_tasks = 50000};

static char fixtures[1024];

static void collect(void *arg, const char *msg)
{
    phx_scripttest_warnings_t *w = arg;
    w->count++;
    snprintf(w->last, sizeof(w->last), "%s", msg);
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/scripts/%s", fixtures, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("could not open \"%s\"", path);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

int phx_scripttest_build(const char *name, int argc, char *const argv[],
                         phx_jobspec_t *spec, phx_scripttest_warnings_t *w,
                         phx_error_t *err)
{
    size_t len;
    char *text = read_fixture(name, &len);
    phx_script_opts_t opts = {
        .filename = name, .now = PHX_SCRIPTTEST_NOW, .warn = collect, .warn_arg = w};
    phx_jobspec_defaults_t def = {
        .job_name = name, .work_dir = "/home/alice/sub", .time_limit = 3600};
    int rc = phx_script_build(text, len, argc, argv, &opts, &def,
                              &phx_scripttest_limits, spec, err);
    free(text);
    return rc;
}

void phx_scripttest_build_ok(const char *name, phx_jobspec_t *spec,
                             phx_scripttest_warnings_t *w)
{
    phx_error_t err = {{0}};
    if (phx_scripttest_build(name, 0, NULL, spec, w, &err) < 0)
        fail_msg("%s: %s", name, err.text);
}

int phx_scripttest_setup(void **state)
{
    (void)state;
    char repo[PATH_MAX - 32];
    if (phx_test_repo_dir(repo, sizeof(repo)) < 0)
        return -1;
    snprintf(fixtures, sizeof(fixtures), "%.900s/tests/unit/fixtures", repo);
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}
