/* Logging: one module, syslog levels, to stderr or syslog.
 * phx_log_err/warn append strerror(errno); the ...x variants do not. */
#ifndef PHX_LOG_H
#define PHX_LOG_H

#include <stdbool.h>
#include <syslog.h>

typedef enum phx_log_dest {
    PHX_LOG_STDERR,
    PHX_LOG_SYSLOG,
} phx_log_dest_t;

/* ident is borrowed for the life of the program. */
void phx_log_init(const char *ident, phx_log_dest_t dest, int level);
void phx_log_set_level(int level);
int phx_log_level(void);
/* Parse "err", "warning", "notice", "info", "debug" (or a number). -1 if bad. */
int phx_log_level_parse(const char *name);

void phx_log(int level, bool with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define phx_log_err(...)    phx_log(LOG_ERR, true, __VA_ARGS__)
#define phx_log_errx(...)   phx_log(LOG_ERR, false, __VA_ARGS__)
#define phx_log_warn(...)   phx_log(LOG_WARNING, true, __VA_ARGS__)
#define phx_log_warnx(...)  phx_log(LOG_WARNING, false, __VA_ARGS__)
#define phx_log_notice(...) phx_log(LOG_NOTICE, false, __VA_ARGS__)
#define phx_log_info(...)   phx_log(LOG_INFO, false, __VA_ARGS__)
#define phx_log_debug(...)  phx_log(LOG_DEBUG, false, __VA_ARGS__)

#endif
