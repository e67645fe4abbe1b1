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
