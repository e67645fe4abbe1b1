#include "daemons/batchd/array.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool read_u32(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return false;
        s++;
    }
    *p = s;
    *out = (uint32_t)v;
    return true;
}

int phx_array_parse(const char *spec, uint32_t max_index, phx_array_t *out,
                    phx_error_t *err)
{
    const char *p = spec ? spec : "";
    /* A bitmap bounds the work by max_index, whatever the text says. */
    size_t nbits = (size_t)max_index + 1;
    uint8_t *bits = calloc((nbits + 7) / 8, 1);
    uint32_t throttle = 0;
    size_t count = 0;
    if (!bits)
        return phx_error_set(err, "out of memory");
    if (!*p)
        goto bad;
    for (;;) {
        uint32_t lo, hi, step = 1;
        if (!read_u32(&p, &lo))
            goto bad;
        hi = lo;
        if (*p == '-') {
            p++;
            if (!read_u32(&p, &hi))
                goto bad;
            if (hi < lo) {
                phx_error_set(err,
                              "invalid array \"%s\": range %" PRIu32 "-%" PRIu32
                              " is decreasing",
                              spec, lo, hi);
                goto fail;
            }
            if (*p == ':') {
                p++;
                if (!read_u32(&p, &step) || step == 0)
                    goto bad;
            }
        }
        if (hi > max_index) {
            phx_error_set(err,
                          "invalid array \"%s\": index %" PRIu32
                          " is above the maximum %" PRIu32,
                          spec, hi, max_index);
            goto fail;
        }
        for (uint64_t i = lo; i <= hi; i += step)
            if (!(bits[i / 8] & (1u << (i % 8)))) {
                bits[i / 8] |= (uint8_t)(1u << (i % 8));
                count++;
            }
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '%') {
            p++;
            if (!read_u32(&p, &throttle) || throttle == 0 || *p)
                goto bad;
        }
        if (*p)
            goto bad;
        break;
    }
    uint32_t *ids = malloc(count * sizeof(*ids));
    if (!ids) {
        free(bits);
        return phx_error_set(err, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < nbits && n < count; i++)
        if (bits[i / 8] & (1u << (i % 8)))
            ids[n++] = (uint32_t)i;
    free(bits);
    out->ids = ids;
    out->count = count;
    out->max_running = throttle;
    return 0;
bad:
    phx_error_set(err,
                  "invalid array \"%s\": expected indices like 0-15, 0,6,16-32, "
                  "0-15:4, optionally followed by %%N",
                  spec ? spec : "");
fail:
    free(bits);
    return -1;
}

void phx_array_clear(phx_array_t *array)
{
    if (!array)
        return;
    free(array->ids);
    array->ids = NULL;
    array->count = 0;
    array->max_running = 0;
}

char *phx_array_format(const phx_array_t *a)
{
    size_t cap = a->count * 24 + 32, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < a->count;) {
        size_t j = i;
        uint32_t stride = i + 1 < a->count ? a->ids[i + 1] - a->ids[i] : 0;
        while (j + 1 < a->count && a->ids[j + 1] - a->ids[j] == stride)
            j++;
        const char *sep = i ? "," : "";
        if (j - i >= 2 || (j > i && stride == 1)) {
            if (stride == 1)
                len += (size_t)snprintf(s + len, cap - len, "%s%" PRIu32 "-%" PRIu32,
                                        sep, a->ids[i], a->ids[j]);
            else
                len += (size_t)snprintf(s + len, cap - len,
                                        "%s%" PRIu32 "-%" PRIu32 ":%" PRIu32, sep,
                                        a->ids[i], a->ids[j], stride);
            i = j + 1;
        } else {
            len += (size_t)snprintf(s + len, cap - len, "%s%" PRIu32, sep, a->ids[i]);
            i++;
        }
    }
    if (a->max_running)
        snprintf(s + len, cap - len, "%%%" PRIu32, a->max_running);
    return s;
}

void phx_array_stats(const phx_array_t *a, phx_array_stats_t *out)
{
    *out = (phx_array_stats_t){0};
    if (a->count == 0)
        return;
    uint32_t step = a->count > 1 ? a->ids[1] - a->ids[0] : 1;
    for (size_t i = 2; i < a->count && step != 1; i++)
        if (a->ids[i] - a->ids[i - 1] != step)
            step = 1;
    out->count = (uint32_t)a->count;
    out->min = a->ids[0];
    out->max = a->ids[a->count - 1];
    out->step = step;
}

int phx_array_may_start(const phx_array_t *array, uint32_t running)
{
    return array->max_running == 0 || running < array->max_running;
}
