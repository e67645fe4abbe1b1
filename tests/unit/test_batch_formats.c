/* batchd: Slurm time, memory, host list and tasks-per-node formats, output
 * patterns and array specs, with round trips.
 *
 * Unit tests cannot link daemon objects, so the sources are included. */
#include "daemons/batchd/array.c"
#include "daemons/batchd/outpath.c"
#include "daemons/batchd/timefmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static int64_t tparse(const char *s)
{
    int64_t v = -99;
    phx_error_t err = {{0}};
    if (phx_time_parse(s, &v, &err) < 0)
        return -1;
    return v;
}

static void test_time_parse(void **state)
{
    (void)state;
    assert_int_equal(tparse("10"), 600);          /* min */
    assert_int_equal(tparse("5:30"), 330);        /* min:sec */
    assert_int_equal(tparse("90:00"), 5400);      /* min:sec, minutes unbounded */
    assert_int_equal(tparse("1:02:03"), 3723);    /* h:m:s */
    assert_int_equal(tparse("48:00:00"), 172800); /* hours unbounded without days */
    assert_int_equal(tparse("2-3"), 2 * 86400 + 3 * 3600);          /* d-h */
    assert_int_equal(tparse("2-3:04"), 2 * 86400 + 3 * 3600 + 240); /* d-h:m */
    assert_int_equal(tparse("1-02:03:04"), 93784);                  /* d-h:m:s */
    assert_int_equal(tparse("0"), PHX_TIME_UNLIMITED);
    assert_int_equal(tparse("UNLIMITED"), PHX_TIME_UNLIMITED);
    assert_int_equal(tparse("infinite"), PHX_TIME_UNLIMITED);
    const char *bad[] = {"",    "-5",      "1:60",        "1:2:60", "1-24", "1-1:60",
                         "abc", "1:2:3:4", "1-",          "1--2",   "1:",   "10m",
                         " 10", "1.5",     "99999999999", "1-2-3",  "0x10", NULL};
    for (int i = 0; bad[i]; i++)
        if (tparse(bad[i]) != -1)
            fail_msg("\"%s\" was accepted", bad[i]);
    phx_error_t err = {{0}};
    int64_t v;
    assert_int_equal(phx_time_parse("1:75:00", &v, &err), -1);
    assert_string_equal(err.text, "invalid time limit \"1:75:00\": field out of range");
}

static void test_time_round_trip(void **state)
{
    (void)state;
    char buf[32];
    static const struct {
        int64_t secs;
        const char *text;
    } cases[] = {{0, "UNLIMITED"},      {59, "00:59"},
                 {600, "10:00"},        {3723, "01:02:03"},
                 {86399, "23:59:59"},   {86400, "1-00:00:00"},
                 {93784, "1-02:03:04"}, {400 * 86400 + 1, "400-00:00:01"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        phx_time_format(cases[i].secs, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(tparse(buf), cases[i].secs == 59 ? 59 : cases[i].secs);
    }
    /* Every whole second from 0 to 3 days survives format and parse. */
    for (int64_t s = 1; s < 3 * 86400; s += 7) {
        phx_time_format(s, buf, sizeof(buf));
        if (tparse(buf) != s)
            fail_msg("%lld -> \"%s\" -> %lld", (long long)s, buf,
                     (long long)tparse(buf));
    }
    volatile size_t small = 4; /* hidden from the compiler's truncation check */
    assert_int_equal(phx_time_format(93784, buf, small), 10); /* length told */
    assert_string_equal(buf, "1-0");
}

static void test_mem(void **state)
{
    (void)state;
    uint64_t m;
    phx_error_t err = {{0}};
    static const struct {
        const char *text;
        uint64_t mib;
    } ok[] = {{"0", 0},     {"100", 100},    {"100M", 100}, {"2G", 2048},
              {"2g", 2048}, {"1T", 1048576}, {"1024K", 1},  {"1K", 1},
              {"1025K", 2}, {"4GB", 4096},   {"512mb", 512}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(phx_mem_parse(ok[i].text, &m, &err), 0);
        assert_int_equal(m, ok[i].mib);
    }
    const char *bad[] = {"", "G", "-1", "1.5G", "2X", "2GG", "1 G", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(phx_mem_parse(bad[i], &m, &err), -1);
    char buf[32];
    static const struct {
        uint64_t mib;
        const char *text;
    } fmt[] = {
        {0, "0M"}, {1500, "1500M"}, {4096, "4G"}, {1048576, "1T"}, {1049600, "1025G"}};
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        phx_mem_format(fmt[i].mib, buf, sizeof(buf));
        assert_string_equal(buf, fmt[i].text);
        assert_int_equal(phx_mem_parse(buf, &m, &err), 0);
        assert_int_equal(m, fmt[i].mib);
    }
}

static void expect_expand(const char *list, const char *joined)
{
    char **names;
    size_t n;
    phx_error_t err = {{0}};
    if (phx_hostlist_expand(list, 0, &names, &n, &err) < 0)
        fail_msg("%s: %s", list, err.text);
    char buf[4096] = "";
    for (size_t i = 0; i < n; i++) {
        strcat(buf, i ? " " : "");
        strcat(buf, names[i]);
    }
    assert_string_equal(buf, joined);
    phx_hostlist_free(names, n);
}

static void test_hostlist_expand(void **state)
{
    (void)state;
    expect_expand("n01", "n01");
    expect_expand("n[01-04,07]", "n01 n02 n03 n04 n07");
    expect_expand("n[8-11]", "n8 n9 n10 n11");
    expect_expand("login1,n[1-2],gpu[001-002]-ib", "login1 n1 n2 gpu001-ib gpu002-ib");
    expect_expand("r[1-2]n[1-2]", "r1n1 r1n2 r2n1 r2n2");
    char **names;
    size_t n;
    phx_error_t err = {{0}};
    const char *bad[] = {"n[1-", "n[a-b]", "n[3-1]", "n[1-2]]", "",
                         "a,,b", "n[[1]]", "n[1;2]", "n 1",     NULL};
    for (int i = 0; bad[i]; i++)
        if (phx_hostlist_expand(bad[i], 0, &names, &n, &err) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(phx_hostlist_expand("n[1-100000]", 1000, &names, &n, &err), -1);
    assert_non_null(strstr(err.text, "more than 1000 names"));
    assert_int_equal(phx_hostlist_expand("a[1-40]b[1-40]", 1000, &names, &n, &err), -1);
}

/* The order of names in their compressed list: groups as they first
 * appear, numbers sorted; equal names cannot be ordered. */
static void test_hostlist_order(void **state)
{
    (void)state;
    const char *names[] = {"n10", "login1", "n9", "n010", "n2"};
    size_t order[5] = {0};
    assert_int_equal(phx_hostlist_order(names, 5, order), 0);
    /* n[2,9-10],login1,n010 */
    size_t want[5] = {4, 2, 0, 1, 3};
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(order[k], want[k]);
    const char *dup[] = {"n1", "n2", "n1"};
    size_t keep[3] = {7, 7, 7};
    errno = 0;
    assert_int_equal(phx_hostlist_order(dup, 3, keep), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(keep[0], 7);
    assert_int_equal(phx_hostlist_order(names, 0, order), 0);
}

static void expect_compress(const char *const *names, size_t n, const char *want)
{
    char *got = phx_hostlist_compress(names, n);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_hostlist_compress(void **state)
{
    (void)state;
    const char *a[] = {"n01", "n02", "n03", "n04", "n07"};
    expect_compress(a, 5, "n[01-04,07]");
    const char *b[] = {"n07", "n03", "n01", "n02", "n04", "n03"};
    expect_compress(b, 6, "n[01-04,07]");
    const char *c[] = {"login", "n1", "n10", "n9", "gpu01-ib", "gpu02-ib", "login"};
    expect_compress(c, 7, "login,n[1,9-10],gpu[01-02]-ib");
    const char *d[] = {"n1", "n01"}; /* different paddings never merge */
    expect_compress(d, 2, "n1,n01");
    const char *f[] = {"n09", "n10", "n11", "n01", "n9", "n100"};
    expect_compress(f, 6, "n[01,09-11,100],n9");
    const char *e[] = {"node5"};
    expect_compress(e, 1, "node5");
    expect_compress(NULL, 0, "");
    /* Round trip over a generated list. */
    char *many[300];
    for (int i = 0; i < 300; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "c%03d", (i * 7) % 300 + (i % 5 == 0 ? 500 : 0));
        many[i] = strdup(buf);
    }
    char *list = phx_hostlist_compress((const char *const *)many, 300);
    char **names;
    size_t n;
    phx_error_t err = {{0}};
    assert_int_equal(phx_hostlist_expand(list, 0, &names, &n, &err), 0);
    assert_int_equal(n, 300);
    for (size_t i = 0; i < n; i++) { /* sorted, and each one was in the input */
        bool found = false;
        for (int j = 0; j < 300 && !found; j++)
            found = !strcmp(names[i], many[j]);
        assert_true(found);
        if (i)
            assert_true(strcmp(names[i - 1], names[i]) < 0);
    }
    phx_hostlist_free(names, n);
    free(list);
    for (int i = 0; i < 300; i++)
        free(many[i]);
}

static void test_tasks_per_node(void **state)
{
    (void)state;
    uint32_t v[] = {2, 2, 2, 1};
    char *s = phx_tasks_per_node_format(v, 4);
    assert_string_equal(s, "2(x3),1");
    uint32_t *back;
    size_t n;
    phx_error_t err = {{0}};
    assert_int_equal(phx_tasks_per_node_parse(s, &back, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(back, v, sizeof(v));
    free(back);
    free(s);
    uint32_t w[] = {4, 1, 4, 4};
    s = phx_tasks_per_node_format(w, 4);
    assert_string_equal(s, "4,1,4(x2)");
    free(s);
    s = phx_tasks_per_node_format(w, 1);
    assert_string_equal(s, "4");
    free(s);
    const char *bad[] = {"", "2(x)", "2(x0)", "2(3)", "2,", "x", "2(x3", NULL};
    for (int i = 0; bad[i]; i++)
        if (phx_tasks_per_node_parse(bad[i], &back, &n, &err) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
}

static void test_outpath(void **state)
{
    (void)state;
    char buf[256];
    phx_error_t err = {{0}};
    phx_outpath_ctx_t c = {.job_id = 42,
                           .array_task_id = -1,
                           .job_name = "sim",
                           .user = "alice",
                           .first_node = "n03.cluster",
                           .work_dir = "/home/alice"};
    assert_int_equal(phx_outpath_expand("phx-%j.out", &c, buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "/home/alice/phx-42.out");
    assert_int_equal(
        phx_outpath_expand("/tmp/%u/%x-%6j-%N-100%%.log", &c, buf, sizeof(buf), &err),
        0);
    assert_string_equal(buf, "/tmp/alice/sim-000042-n03-100%.log");
    /* Not an array task: %A is the job, %a Slurm's NO_VAL-ish number. */
    assert_int_equal(phx_outpath_expand("/o/%A_%a", &c, buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "/o/42_4294967294");
    c.array_job_id = 40;
    c.array_task_id = 7;
    c.work_dir = NULL;
    assert_int_equal(phx_outpath_expand("%x_%A_%3a.txt", &c, buf, sizeof(buf), &err),
                     0);
    assert_string_equal(buf, "sim_40_007.txt");
    c.first_node = NULL;
    assert_int_equal(phx_outpath_expand("[%N]", &c, buf, sizeof(buf), &err), 0);
    assert_string_equal(buf, "[]");
    assert_int_equal(phx_outpath_expand("%j-%q", &c, buf, sizeof(buf), &err), -1);
    assert_non_null(strstr(err.text, "unknown escape \"%q\""));
    assert_int_equal(phx_outpath_expand("x%", &c, buf, sizeof(buf), &err), -1);
    assert_int_equal(phx_outpath_expand("%99j", &c, buf, sizeof(buf), &err), -1);
    assert_int_equal(phx_outpath_expand("", &c, buf, sizeof(buf), &err), -1);
    assert_int_equal(phx_outpath_expand("%x%x%x%x", &c, buf, 8, &err), -1);
    assert_non_null(strstr(err.text, "too long"));
    assert_int_equal(phx_outpath_check("ok-%A.%a.%4j.%%", &err), 0);
}

static char *array_text(const char *spec, uint32_t max)
{
    phx_array_t a;
    phx_error_t err = {{0}};
    if (phx_array_parse(spec, max, &a, &err) < 0)
        return NULL;
    char *s = phx_array_format(&a);
    phx_array_clear(&a);
    return s;
}

static void expect_array(const char *spec, const char *canon, size_t count,
                         uint32_t throttle)
{
    phx_array_t a;
    phx_error_t err = {{0}};
    if (phx_array_parse(spec, 100000, &a, &err) < 0)
        fail_msg("%s: %s", spec, err.text);
    assert_int_equal(a.count, count);
    assert_int_equal(a.max_running, throttle);
    for (size_t i = 1; i < a.count; i++)
        assert_true(a.ids[i - 1] < a.ids[i]);
    char *s = phx_array_format(&a);
    assert_string_equal(s, canon);
    char *again = array_text(s, 100000); /* canonical text is a fixed point */
    assert_string_equal(again, canon);
    free(again);
    free(s);
    phx_array_clear(&a);
}

static void test_array(void **state)
{
    (void)state;
    expect_array("0-15", "0-15", 16, 0);
    expect_array("0,6,16-32", "0,6,16-32", 19, 0);
    expect_array("0-15:4", "0-12:4", 4, 0);
    expect_array("1-100%10", "1-100%10", 100, 10);
    expect_array("5,3,4,4", "3-5", 3, 0);
    expect_array("7", "7", 1, 0);
    expect_array("1,3", "1,3", 2, 0);
    expect_array("0-100000:50000", "0-100000:50000", 3, 0);
    expect_array("2,4,6,7", "2-6:2,7", 4, 0);
    phx_array_t a;
    phx_error_t err = {{0}};
    const char *bad[] = {"",       "-1",           "1-",  "a",   "1-3:0",
                         "3-1",    "1,,2",         "1%",  "1%0", "1-5%2%3",
                         "100001", "0-4294967296", "1 2", NULL};
    for (int i = 0; bad[i]; i++)
        if (phx_array_parse(bad[i], 100000, &a, &err) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(phx_array_parse("0-20", 10, &a, &err), -1);
    assert_string_equal(err.text,
                        "invalid array \"0-20\": index 20 is above the maximum 10");
    assert_int_equal(phx_array_parse("1-10%2", 100, &a, &err), 0);
    assert_true(phx_array_may_start(&a, 1));
    assert_false(phx_array_may_start(&a, 2));
    phx_array_clear(&a);
    assert_int_equal(phx_array_parse("1-10", 100, &a, &err), 0);
    assert_true(phx_array_may_start(&a, 1000));
    phx_array_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_mem),
        cmocka_unit_test(test_hostlist_expand),
        cmocka_unit_test(test_hostlist_order),
        cmocka_unit_test(test_hostlist_compress),
        cmocka_unit_test(test_tasks_per_node),
        cmocka_unit_test(test_outpath),
        cmocka_unit_test(test_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
