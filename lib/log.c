#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "phx";
static phx_log_dest_t log_dest = PHX_LOG_STDERR;
/* set by the main thread (a reload), read by every thread (PMIx's too) */
static _Atomic int log_level = LOG_INFO;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
    [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void phx_log_init(const char *ident, phx_log_dest_t dest, int level)
{
    log_ident = ident ? ident : "phx";
    log_dest = dest;
    log_level = level;
    if (dest == PHX_LOG_SYSLOG)
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void phx_log_set_level(int level)
{
    log_level = level;
}

int phx_log_level(void)
{
    return log_level;
}

int phx_log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= LOG_DEBUG; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "err") == 0)
        return LOG_ERR;
    if (strcasecmp(name, "warn") == 0)
        return LOG_WARNING;
    char *end;
    long v = strtol(name, &end, 10);
    if (*name && !*end && v >= 0 && v <= LOG_DEBUG)
        return (int)v;
    return -1;
}

/* A log record is one line of text: control characters (a peer's newline
 * forging a record of its own, a terminal escape) become \xNN, truncated
 * at a whole escape. */
static void escape_controls(const char *in, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        bool ctl = c < 0x20 || c == 0x7f;
        if (o + (ctl ? 4 : 1) >= len)
            break;
        if (ctl) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void phx_log(int level, bool with_errno, const char *fmt, ...)
{
    int saved = errno;
    if (level > log_level) {
        errno = saved;
        return;
    }
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    if (with_errno)
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(saved));
    char line[sizeof(msg)];
    escape_controls(msg, line, sizeof(line));

    if (log_dest == PHX_LOG_SYSLOG) {
        syslog(level, "%s", line);
    } else {
        struct timeval tv;
        struct tm tm;
        char stamp[32];
        gettimeofday(&tv, NULL);
        localtime_r(&tv.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s[%d]: %s: %s\n", stamp, (long)tv.tv_usec / 1000,
                log_ident, (int)getpid(), level_names[level & 7], line);
    }
    errno = saved;
}
