#include "lib/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int phx_error_vset(phx_error_t *err, const char *fmt, va_list ap)
{
    int saved = errno;
    if (err)
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
    errno = saved;
    return -1;
}

int phx_error_set(phx_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    phx_error_vset(err, fmt, ap);
    va_end(ap);
    return -1;
}

int phx_error_prefix(phx_error_t *err, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        char prefix[PHX_ERROR_TEXT_MAX];
        char old[PHX_ERROR_TEXT_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        char joined[2 * PHX_ERROR_TEXT_MAX + 2];
        memcpy(old, err->text, sizeof(old));
        old[sizeof(old) - 1] = '\0';
        snprintf(joined, sizeof(joined), "%s: %s", prefix, old);
        snprintf(err->text, sizeof(err->text), "%.*s", PHX_ERROR_TEXT_MAX - 1, joined);
    }
    errno = saved;
    return -1;
}
