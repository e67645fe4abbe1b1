/* phx acct -S/-E (cli/acct_time.c): sacct's forms against a fixed clock,
 * in UTC: relative times with singular, plural and short units and blanks,
 * and dates without a year, which look into the past as sacct's do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/acct_time.c"

/* 2026-11-26T15:04:30Z, a Thursday */
static const time_t NOW = 1795705470;

static time_t utc(int y, int mon, int d, int h, int min, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = min,
                    .tm_sec = s};
    return timegm(&tm);
}

static void is(const char *arg, time_t now, time_t want)
{
    time_t t = 0;
    if (phx_acct_parse_time(arg, now, &t) < 0)
        fail_msg("\"%s\" refused", arg);
    if (t != want)
        fail_msg("\"%s\": %lld, expected %lld", arg, (long long)t, (long long)want);
}

static void refused(const char *arg)
{
    time_t t = 0;
    if (phx_acct_parse_time(arg, NOW, &t) == 0)
        fail_msg("\"%s\" accepted as %lld", arg, (long long)t);
}

static int utc_zone(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void relative_times(void **state)
{
    (void)state;
    assert_int_equal(utc(2026, 11, 26, 15, 4, 30), NOW);
    is("now", NOW, NOW);
    is("now-30", NOW, NOW - 30);
    is("now-1day", NOW, NOW - 86400);
    is("now-2days", NOW, NOW - 2 * 86400);
    is("now-2hour", NOW, NOW - 7200);
    is("now-2hours", NOW, NOW - 7200);
    is("now-1week", NOW, NOW - 604800);
    is("now-3weeks", NOW, NOW - 3 * 604800);
    is("now-1minute", NOW, NOW - 60);
    is("now-5minutes", NOW, NOW - 300);
    is("now-1second", NOW, NOW - 1);
    is("now-10seconds", NOW, NOW - 10);
    is("now+1DAY", NOW, NOW + 86400);
    is("now-2d", NOW, NOW - 2 * 86400);
    is("now-3h", NOW, NOW - 3 * 3600);
    is("now - 2 days", NOW, NOW - 2 * 86400);
    is(" now -2days ", NOW, NOW - 2 * 86400);
    is("now ", NOW, NOW);
    refused("now-");
    refused("now-days");
    refused("now-2dayz");
    refused("now-2 days x");
    refused("now2days");
    refused("nowhere");
    refused("now-99999999999999999999days");
}

static void absolute_times(void **state)
{
    (void)state;
    is("2024-03-01", NOW, utc(2024, 3, 1, 0, 0, 0));
    is("2024-03-01T10:30", NOW, utc(2024, 3, 1, 10, 30, 0));
    is("03/01/24-11:30:15", NOW, utc(2024, 3, 1, 11, 30, 15));
    is("030124", NOW, utc(2024, 3, 1, 0, 0, 0));
    is("today", NOW, utc(2026, 11, 26, 0, 0, 0));
    is("midnight", NOW, utc(2026, 11, 26, 0, 0, 0));
    is("10:00", NOW, utc(2026, 11, 26, 10, 0, 0));
    refused("13/01/24");
    refused("tomorrowish");
}

/* sacct's parse_time(past=1): without a year, a month after now's is last
 * year's; this month and earlier ones are this year's. */
static void without_year(void **state)
{
    (void)state;
    is("03/01", NOW, utc(2026, 3, 1, 0, 0, 0));
    is("0301", NOW, utc(2026, 3, 1, 0, 0, 0));
    is("11/01", NOW, utc(2026, 11, 1, 0, 0, 0));
    is("11/30", NOW, utc(2026, 11, 30, 0, 0, 0)); /* this month: as sacct */
    is("12/01", NOW, utc(2025, 12, 1, 0, 0, 0));
    is("1201", NOW, utc(2025, 12, 1, 0, 0, 0));
    is("12/01-08:15", NOW, utc(2025, 12, 1, 8, 15, 0));
    time_t jan = utc(2027, 1, 15, 12, 0, 0);
    is("12/31", jan, utc(2026, 12, 31, 0, 0, 0));
    is("01/02", jan, utc(2027, 1, 2, 0, 0, 0));
    is("02/01", jan, utc(2026, 2, 1, 0, 0, 0));
    time_t dec = utc(2026, 12, 31, 23, 0, 0);
    is("12/01", dec, utc(2026, 12, 1, 0, 0, 0));
    is("06/30", dec, utc(2026, 6, 30, 0, 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relative_times),
        cmocka_unit_test(absolute_times),
        cmocka_unit_test(without_year),
    };
    return cmocka_run_group_tests(tests, utc_zone, NULL);
}
