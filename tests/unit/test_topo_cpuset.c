/* Cpusets in list format and binding. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topology/bind.h"
#include "topology/coreset.h"

static phx_topo_t *synth(const char *desc)
{
    phx_error_t err = {{0}};
    phx_topo_t *t = phx_topo_load_synthetic(desc, &err);
    if (!t)
        fail_msg("%s", err.text);
    return t;
}

static void test_cpuset_format(void **state)
{
    (void)state;
    phx_topo_t *t = synth("pack:2 numa:2 core:8 pu:2");
    phx_topo_coreset_t *set = phx_topo_coreset_create(32);
    char *s = phx_topo_cpuset_str(t, set);
    assert_string_equal(s, "");
    free(s);
    for (int c = 0; c < 4; c++)
        phx_topo_coreset_add(set, c);
    phx_topo_coreset_add(set, 8);
    phx_topo_coreset_add(set, 31);
    s = phx_topo_cpuset_str(t, set);
    assert_string_equal(s, "0-7,16-17,62-63");
    phx_topo_coreset_t *back = phx_topo_coreset_create(32);
    phx_error_t err = {{0}};
    assert_int_equal(phx_topo_cpuset_parse(t, s, back, &err), 0);
    assert_true(phx_topo_coreset_equal(set, back));
    free(s);
    s = phx_topo_coreset_str(set);
    assert_string_equal(s, "0-3,8,31");
    free(s);
    assert_int_equal(phx_topo_cpuset_parse(t, "2,3,0-1", back, &err), 0);
    assert_int_equal(phx_topo_coreset_count(back), 2);
    assert_true(phx_topo_coreset_has(back, 0) && phx_topo_coreset_has(back, 1));
    phx_topo_coreset_destroy(back);
    phx_topo_coreset_destroy(set);
    phx_topo_destroy(t);
}

static void expect_parse_error(const phx_topo_t *t, const char *list, const char *want)
{
    phx_topo_coreset_t *set = phx_topo_coreset_create(phx_topo_ncores(t));
    phx_topo_coreset_add(set, 1);
    phx_error_t err = {{0}};
    assert_int_equal(phx_topo_cpuset_parse(t, list, set, &err), -1);
    assert_int_equal(errno, EINVAL);
    if (!strstr(err.text, want))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, want);
    /* Left untouched. */
    assert_int_equal(phx_topo_coreset_count(set), 1);
    assert_true(phx_topo_coreset_has(set, 1));
    phx_topo_coreset_destroy(set);
}

static void test_cpuset_parse_bad(void **state)
{
    (void)state;
    phx_topo_t *t = synth("pack:2 numa:2 core:8 pu:2");
    expect_parse_error(t, "0", "covers only 1 of the 2 PUs of core 0");
    expect_parse_error(t, "0-3,x", "malformed cpuset \"0-3,x\" at offset 4");
    expect_parse_error(t, "3-1", "malformed cpuset");
    expect_parse_error(t, "0-1,", "malformed cpuset");
    expect_parse_error(t, "64", "PU 64 is not in the topology");
    expect_parse_error(t, "99999999", "malformed cpuset");
    phx_topo_destroy(t);
}

/* The PUs this process may use, ascending. */
static int allowed_pus(int *pus, int max)
{
    cpu_set_t mask;
    assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
    int n = 0;
    for (int i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &mask))
            pus[n++] = i;
    return n;
}

static void test_emulated_mapping(void **state)
{
    (void)state;
    int real[CPU_SETSIZE];
    int r = allowed_pus(real, CPU_SETSIZE);
    phx_topo_t *t = synth("pack:2 numa:2 core:8 pu:2");
    phx_topo_coreset_t *set = phx_topo_coreset_create(32);
    phx_topo_coreset_add(set, 5); /* emulated PUs 10 and 11 */
    phx_error_t err = {{0}};
    char *s = phx_topo_bind_cpuset_str(t, set, &err);
    if (!s)
        fail_msg("%s", err.text);
    int a = real[10 % r], b = real[11 % r];
    char want[64];
    if (a == b)
        snprintf(want, sizeof(want), "%d", a);
    else if (b == a + 1)
        snprintf(want, sizeof(want), "%d-%d", a, b);
    else
        snprintf(want, sizeof(want), "%d,%d", a < b ? a : b, a < b ? b : a);
    assert_string_equal(s, want);
    free(s);
    phx_topo_coreset_clear(set);
    s = phx_topo_bind_cpuset_str(t, set, &err);
    assert_null(s);
    assert_non_null(strstr(err.text, "empty core set"));
    phx_topo_coreset_destroy(set);
    phx_topo_destroy(t);
}

static void test_bind(void **state)
{
    (void)state;
    cpu_set_t saved, now;
    assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
    int real[CPU_SETSIZE];
    int r = allowed_pus(real, CPU_SETSIZE);
    phx_error_t err = {{0}};

    /* Emulated core 3 (PU 3) lands on the (3 mod R)-th allowed PU. */
    phx_topo_t *t = synth("pack:1 numa:1 core:4 pu:1");
    phx_topo_coreset_t *set = phx_topo_coreset_create(4);
    phx_topo_coreset_add(set, 3);
    if (phx_topo_bind(t, set, &err) < 0)
        fail_msg("%s", err.text);
    assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
    assert_int_equal(CPU_COUNT(&now), 1);
    assert_true(CPU_ISSET(real[3 % r], &now));
    assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
    phx_topo_coreset_destroy(set);
    phx_topo_destroy(t);

    /* The local topology binds to its own PUs. */
    t = phx_topo_load_local(&err);
    assert_non_null(t);
    int last = phx_topo_ncores(t) - 1;
    set = phx_topo_coreset_create(phx_topo_ncores(t));
    phx_topo_coreset_add(set, last);
    if (phx_topo_bind(t, set, &err) < 0)
        fail_msg("%s", err.text);
    assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
    int npus;
    const int *pus = phx_topo_core_pus(t, last, &npus);
    assert_int_equal(CPU_COUNT(&now), npus);
    for (int i = 0; i < npus; i++)
        assert_true(CPU_ISSET(pus[i], &now));
    assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
    phx_topo_coreset_destroy(set);
    phx_topo_destroy(t);
}

/* Core lists round-trip through phx_topo_coreset_str and bad ones leave the
 * set alone. */
static void test_coreset_parse(void **state)
{
    (void)state;
    phx_topo_coreset_t *set = phx_topo_coreset_create(16);
    phx_error_t err;
    assert_int_equal(phx_topo_coreset_parse(set, "0-3,8,10-11", &err), 0);
    assert_int_equal(phx_topo_coreset_count(set), 7);
    assert_true(phx_topo_coreset_has(set, 8));
    assert_false(phx_topo_coreset_has(set, 9));
    char *s = phx_topo_coreset_str(set);
    assert_string_equal(s, "0-3,8,10-11");
    free(s);
    const char *bad[] = {"3-1", "1,", "a", "16", "0-16", "1;2", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.text[0] = '\0';
        assert_int_equal(phx_topo_coreset_parse(set, bad[i], &err), -1);
        assert_true(err.text[0] != '\0');
        assert_int_equal(phx_topo_coreset_count(set), 7); /* unchanged */
    }
    assert_non_null(strstr(err.text, "malformed core list"));
    assert_int_equal(phx_topo_coreset_parse(set, "", &err), 0);
    assert_int_equal(phx_topo_coreset_count(set), 0);
    phx_topo_coreset_destroy(set);
}

static void test_coreset_ops(void **state)
{
    (void)state;
    phx_topo_coreset_t *a = phx_topo_coreset_create(130);
    phx_topo_coreset_t *b = phx_topo_coreset_create(130);
    assert_int_equal(phx_topo_coreset_add(a, 130), -1);
    assert_int_equal(errno, EINVAL);
    phx_topo_coreset_add(a, 0);
    phx_topo_coreset_add(a, 64);
    phx_topo_coreset_add(a, 129);
    assert_int_equal(phx_topo_coreset_next(a, -1), 0);
    assert_int_equal(phx_topo_coreset_next(a, 0), 64);
    assert_int_equal(phx_topo_coreset_next(a, 64), 129);
    assert_int_equal(phx_topo_coreset_next(a, 129), -1);
    assert_false(phx_topo_coreset_intersects(a, b));
    phx_topo_coreset_add(b, 129);
    assert_true(phx_topo_coreset_intersects(a, b));
    assert_int_equal(phx_topo_coreset_copy(b, a), 0);
    assert_true(phx_topo_coreset_equal(a, b));
    phx_topo_coreset_remove(b, 64);
    assert_int_equal(phx_topo_coreset_count(b), 2);
    phx_topo_coreset_destroy(a);
    phx_topo_coreset_destroy(b);
}

int main(void)
{
    /* hwloc's PCI plugin leaks inside libpciaccess (about 1 KB per local
     * discovery), which LeakSanitizer reports; local tests need no PCI. */
    setenv("HWLOC_COMPONENTS", "-pci", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpuset_format),
        cmocka_unit_test(test_cpuset_parse_bad),
        cmocka_unit_test(test_emulated_mapping),
        cmocka_unit_test(test_bind),
        cmocka_unit_test(test_coreset_ops),
        cmocka_unit_test(test_coreset_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
