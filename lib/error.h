/* A text error for users: filled by phx_error_set, read from err->text. */
#ifndef PHX_ERROR_H
#define PHX_ERROR_H

#include <stdarg.h>

#define PHX_ERROR_TEXT_MAX 512

typedef struct phx_error {
    char text[PHX_ERROR_TEXT_MAX];
} phx_error_t;

/* Format a message into err (which may be NULL) and return -1, so that a
 * failing function can end with `return phx_error_set(err, ...);`.
 * errno is preserved. */
int phx_error_set(phx_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* phx_error_set with a va_list. */
int phx_error_vset(phx_error_t *err, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Prefix an existing message: "prefix: old text". Returns -1. */
int phx_error_prefix(phx_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
