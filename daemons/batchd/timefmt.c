#include "daemons/batchd/timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NUMBER_MAX 1000000000LL /* one field of a time or size */

/* Digits only, at most NUMBER_MAX; advances *p.  false if no digit. */
static bool read_number(const char **p, long long *out)
{
    const char *s = *p;
    long long v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v > NUMBER_MAX)
            return false;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

int phx_time_parse(const char *text, int64_t *secs, phx_error_t *err)
{
    if (!text || !*text)
        return phx_error_set(err, "empty time limit");
    if (!strcasecmp(text, "UNLIMITED") || !strcasecmp(text, "INFINITE")) {
        *secs = PHX_TIME_UNLIMITED;
        return 0;
    }
    const char *p = text;
    long long days = -1, f[3];
    int nf = 0;
    if (!read_number(&p, &f[0]))
        goto bad;
    nf = 1;
    if (*p == '-') {
        days = f[0];
        p++;
        if (!read_number(&p, &f[0]))
            goto bad;
    }
    while (*p == ':' && nf < 3) {
        p++;
        if (!read_number(&p, &f[nf]))
            goto bad;
        nf++;
    }
    if (*p)
        goto bad;
    long long total;
    if (days >= 0) {
        /* d-h, d-h:m, d-h:m:s */
        long long h = f[0], m = nf > 1 ? f[1] : 0, s = nf > 2 ? f[2] : 0;
        if (h > 23 || m > 59 || s > 59)
            goto range;
        total = ((days * 24 + h) * 60 + m) * 60 + s;
    } else if (nf == 1) {
        total = f[0] * 60; /* minutes */
    } else if (nf == 2) {
        if (f[1] > 59)
            goto range;
        total = f[0] * 60 + f[1]; /* min:sec */
    } else {
        if (f[1] > 59 || f[2] > 59)
            goto range;
        total = (f[0] * 60 + f[1]) * 60 + f[2];
    }
    *secs = total;
    return 0;
bad:
    return phx_error_set(err,
                         "invalid time limit \"%s\": expected min, min:sec, h:m:s, "
                         "d-h, d-h:m, d-h:m:s or UNLIMITED",
                         text);
range:
    return phx_error_set(err, "invalid time limit \"%s\": field out of range", text);
}

int phx_time_format(int64_t secs, char *buf, size_t len)
{
    if (secs <= 0)
        return snprintf(buf, len, "UNLIMITED");
    int64_t d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, s = secs % 60;
    if (d > 0)
        return snprintf(buf, len, "%" PRId64 "-%02" PRId64 ":%02" PRId64 ":%02" PRId64,
                        d, h, m, s);
    if (h > 0)
        return snprintf(buf, len, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, h, m, s);
    return snprintf(buf, len, "%02" PRId64 ":%02" PRId64, m, s);
}

int phx_mem_parse(const char *text, uint64_t *mib, phx_error_t *err)
{
    const char *p = text;
    long long n;
    if (!text || !read_number(&p, &n))
        goto bad;
    uint64_t v = (uint64_t)n;
    switch (toupper((unsigned char)*p)) {
    case '\0': break;
    case 'K': v = (v + 1023) / 1024, p++; break;
    case 'M': p++; break;
    case 'G': v *= 1024, p++; break;
    case 'T': v *= 1024 * 1024, p++; break;
    default: goto bad;
    }
    if (*p == 'B' || *p == 'b')
        p++;
    if (*p)
        goto bad;
    *mib = v;
    return 0;
bad:
    return phx_error_set(err,
                         "invalid memory size \"%s\": expected a number with "
                         "an optional K, M, G or T suffix",
                         text ? text : "");
}

int phx_mem_format(uint64_t mib, char *buf, size_t len)
{
    if (mib && mib % (1024 * 1024) == 0)
        return snprintf(buf, len, "%" PRIu64 "T", mib / (1024 * 1024));
    if (mib && mib % 1024 == 0)
        return snprintf(buf, len, "%" PRIu64 "G", mib / 1024);
    return snprintf(buf, len, "%" PRIu64 "M", mib);
}

/* ---- sbatch --begin ---- */

static int64_t local_mktime(struct tm *tm)
{
    tm->tm_isdst = -1;
    return (int64_t)mktime(tm);
}

int phx_begin_parse(const char *text, int64_t now, int64_t *when, phx_error_t *err)
{
    time_t t = (time_t)now;
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, s = 0, used = 0;
    if (!localtime_r(&t, &tm))
        return phx_error_set(err, "invalid current time");
    if (!strncasecmp(text, "now", 3)) {
        const char *p = text + 3;
        if (!*p) {
            *when = now;
            return 0;
        }
        char *end;
        if (*p != '+' || !isdigit((unsigned char)p[1]))
            goto bad;
        errno = 0;
        long long n = strtoll(p + 1, &end, 10);
        static const struct {
            const char *unit;
            int64_t secs;
        } units[] = {{"", 1},          {"s", 1},         {"sec", 1},
                     {"second", 1},    {"seconds", 1},   {"min", 60},
                     {"minute", 60},   {"minutes", 60},  {"hour", 3600},
                     {"hours", 3600},  {"day", 86400},   {"days", 86400},
                     {"week", 604800}, {"weeks", 604800}};
        if (errno || n > 100LL * 366 * 86400)
            goto bad;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (!strcasecmp(end, units[i].unit)) {
                *when = now + n * units[i].secs;
                return 0;
            }
        goto bad;
    }
    struct {
        const char *word;
        int hour, add_day;
    } words[] = {{"midnight", 0, 1}, {"noon", 12, 0}, {"fika", 15, 0},
                 {"teatime", 16, 0}, {"today", 0, 0}, {"tomorrow", 0, 1}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcasecmp(text, words[i].word)) {
            tm.tm_hour = words[i].hour;
            tm.tm_min = tm.tm_sec = 0;
            tm.tm_mday += words[i].add_day;
            int64_t v = local_mktime(&tm);
            if (words[i].hour && v < now) {
                tm.tm_mday++;
                v = local_mktime(&tm);
            }
            *when = v;
            return 0;
        }
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &used) == 3 && used == 10) {
        const char *p = text + used;
        if (*p == 'T') {
            int u2 = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &u2) != 2)
                goto bad;
            p += 1 + u2;
            if (*p == ':') {
                if (sscanf(p + 1, "%2d%n", &s, &u2) != 1)
                    goto bad;
                p += 1 + u2;
            }
        }
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 ||
            y < 1970)
            goto bad;
        struct tm b = {.tm_year = y - 1900,
                       .tm_mon = mo - 1,
                       .tm_mday = d,
                       .tm_hour = h,
                       .tm_min = mi,
                       .tm_sec = s};
        *when = local_mktime(&b);
        return 0;
    }
    used = 0;
    if (sscanf(text, "%2d:%2d%n", &h, &mi, &used) == 2) {
        const char *p = text + used;
        if (*p == ':') {
            int u2 = 0;
            if (sscanf(p + 1, "%2d%n", &s, &u2) != 1)
                goto bad;
            p += 1 + u2;
        }
        if (*p || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59)
            goto bad;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = s;
        int64_t v = local_mktime(&tm);
        if (v < now) {
            tm.tm_mday++;
            v = local_mktime(&tm);
        }
        *when = v;
        return 0;
    }
bad:
    return phx_error_set(
        err,
        "invalid begin time \"%s\" (now+N[units], YYYY-MM-DD[THH:MM[:SS]], "
        "HH:MM[:SS], midnight, noon, teatime, today, tomorrow)",
        text);
}
