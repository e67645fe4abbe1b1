/* sacct's time forms for phx acct -S and -E (cli/acct_time.h).  Pure: the
 * clock comes in as now. */
#include "cli/acct_time.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The unit after now[+-]N, trailing blanks allowed: seconds per unit, or 0.
 * sacct's names, singular and plural (parse_time.c), and short ones. */
static long unit_seconds(const char *unit)
{
    static const struct {
        const char *name;
        long seconds;
    } units[] = {
        {"", 1},          {"s", 1},          {"sec", 1},      {"second", 1},
        {"seconds", 1},   {"m", 60},         {"min", 60},     {"minute", 60},
        {"minutes", 60},  {"h", 3600},       {"hour", 3600},  {"hours", 3600},
        {"d", 86400},     {"day", 86400},    {"days", 86400}, {"w", 604800},
        {"week", 604800}, {"weeks", 604800},
    };
    size_t len = strcspn(unit, " \t");
    if (*skip_blanks(unit + len))
        return 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == len && strncasecmp(unit, units[i].name, len) == 0)
            return units[i].seconds;
    return 0;
}

/* "now", "now-2days", "now - 2 days": p is past "now". */
static time_t relative(const char *p, time_t now)
{
    p = skip_blanks(p);
    if (!*p)
        return now;
    if (*p != '-' && *p != '+')
        return (time_t)-1;
    int sign = *p == '-' ? -1 : 1;
    p = skip_blanks(p + 1);
    if (!isdigit((unsigned char)*p))
        return (time_t)-1;
    char *unit;
    long n = strtol(p, &unit, 10);
    long mult = unit_seconds(skip_blanks(unit));
    if (mult == 0 || n > 100000L * 86400 / mult)
        return (time_t)-1;
    return now + sign * n * mult;
}

/* The absolute forms.  tm is now's local time. */
static time_t absolute(const char *arg, struct tm tm)
{
    /* two-digit years before four: %Y would read "24" as the year 24 */
    static const struct {
        const char *form;
        bool has_year;
    } forms[] = {
        {"%Y-%m-%dT%H:%M:%S", true},
        {"%Y-%m-%dT%H:%M", true},
        {"%Y-%m-%d", true},
        {"%m/%d/%y-%H:%M:%S", true},
        {"%m/%d/%y-%H:%M", true},
        {"%m/%d/%y", true},
        {"%m/%d/%Y-%H:%M:%S", true},
        {"%m/%d/%Y-%H:%M", true},
        {"%m/%d/%Y", true},
        {"%m/%d-%H:%M:%S", false},
        {"%m/%d-%H:%M", false},
        {"%m/%d", false},
        {"%m%d%y", true},
        {"%m%d", false},
        {"%H:%M:%S", true}, /* today: now's year */
        {"%H:%M", true},
    };
    int this_month = tm.tm_mon;
    struct tm midnight = tm;
    midnight.tm_hour = midnight.tm_min = midnight.tm_sec = 0;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        tm = midnight; /* strptime sets only the fields of its form */
        const char *end = strptime(arg, forms[i].form, &tm);
        if (!end || *end)
            continue;
        /* sacct looks into the past: a later month is last year's */
        if (!forms[i].has_year && tm.tm_mon > this_month)
            tm.tm_year--;
        tm.tm_isdst = -1;
        return mktime(&tm);
    }
    return (time_t)-1;
}

int phx_acct_parse_time(const char *arg, time_t now, time_t *out)
{
    struct tm tm;
    time_t t;
    localtime_r(&now, &tm);
    arg = skip_blanks(arg);
    if (strcasecmp(arg, "today") == 0 || strcasecmp(arg, "midnight") == 0) {
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else if (strncasecmp(arg, "now", 3) == 0)
        t = relative(arg + 3, now);
    else
        t = absolute(arg, tm);
    if (t == (time_t)-1)
        return -1;
    *out = t;
    return 0;
}
