/* phx run inside a batch job: the job's --cpu-bind and -m (PHX_CPU_BIND,
 * PHX_DISTRIBUTION) as the defaults, mapped to phx run's values; anything
 * else ignored (NULL: the built-in default) with a warning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_run.c"
#include "cli/sock.c"
#include "cli/run_input.c"
#include "cli/run_pty.c"
#include "cli/run_tasks.c"

phx_run_out_t *phx_run_out_create(int size, bool label, int fd_out, int fd_err)
{
    (void)size, (void)label, (void)fd_out, (void)fd_err;
    return NULL;
}

void phx_run_out_data(phx_run_out_t *o, int rank, int stream, const uint8_t *data,
                      size_t len)
{
    (void)o, (void)rank, (void)stream, (void)data, (void)len;
}

void phx_run_out_destroy(phx_run_out_t *o)
{
    (void)o;
}

int phx_run_alloc(const phx_run_opts_t *o, int argc, char **argv)
{
    (void)o, (void)argc, (void)argv;
    return 1;
}

static const char *bind_of(const char *v)
{
    setenv("PHX_CPU_BIND", v, 1);
    return job_cpu_bind();
}

static const char *dist_of(const char *v)
{
    setenv("PHX_DISTRIBUTION", v, 1);
    return job_distribution();
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

static void test_cpu_bind(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"cores", "cores"},         {"sockets", "sockets"},
        {"none", "none"},           {"no", "none"},
        {"verbose,cores", "cores"}, {"quiet,sockets", "sockets"},
        {"verbose,none", "none"},   {"", NULL},
        {"threads", NULL},          {"map_cpu:0,1", NULL},
        {"verbose", NULL},          {"cores,verbose", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        assert_str_or_null(bind_of(cases[i][0]), cases[i][1]);
    unsetenv("PHX_CPU_BIND");
    assert_null(job_cpu_bind());
}

static void test_distribution(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"block", "block"},
        {"cyclic", "cyclic"},
        {"cyclic:block", "cyclic"},
        {"block:cyclic", "block"},
        {"*", NULL},
        {"*:cyclic", NULL},
        {"plane=4", NULL},
        {"arbitrary", NULL},
        {"blockx", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        assert_str_or_null(dist_of(cases[i][0]), cases[i][1]);
    unsetenv("PHX_DISTRIBUTION");
    assert_null(job_distribution());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_bind),
        cmocka_unit_test(test_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
