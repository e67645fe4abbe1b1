/* What every daemon's main() does with its configuration: load the file,
 * apply command-line "key=value" overrides, set the log level. */
#ifndef PHX_DAEMON_H
#define PHX_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/config.h"

/* Load file (NULL: defaults only) against schema, apply the nsets overrides,
 * and set the log level from the string key level_key (debug if verbose);
 * then close every inherited descriptor (phx_daemon_close_inherited).  On
 * failure print "prog: message" on stderr and return NULL. */
phx_conf_t *phx_daemon_conf(const char *prog, const phx_conf_key_t *schema,
                            const char *file, char *const *sets, int nsets,
                            const char *level_key, bool verbose);

/* Reloading (SIGHUP): read the configuration again as phx_daemon_conf did
 * (the file, then the same overrides) into a new one; NULL with err naming
 * the problem (file:line) when it cannot be read or is wrong, and the
 * running configuration is untouched. */
phx_conf_t *phx_daemon_conf_reread(const phx_conf_key_t *schema, const char *file,
                                   char *const *sets, int nsets, const char *level_key,
                                   phx_error_t *err);
/* Then take fresh's reloadable keys into conf (phx_conf_take_reloadable), set
 * the log level from level_key unless verbose, and log what was applied and
 * what changed but needs a restart.  Returns the number of keys applied;
 * the caller re-reads them from conf and destroys fresh. */
int phx_daemon_conf_apply(phx_conf_t *conf, phx_conf_t *fresh, const char *file,
                          const char *level_key, bool verbose);

/* Close every descriptor but 0, 1 and 2: a daemon keeps no descriptor of
 * whoever started it (a shell's lock, a terminal, a pipe), which would stay
 * open for its whole life and reach what it spawns.  phx_daemon_conf calls
 * it once the configuration is read (it may come from /dev/fd/N).  It
 * allocates nothing: a child forked from a threaded process may call it. */
void phx_daemon_close_inherited(void);

/* Resolve the list of user names or numeric uids at key: *uids (caller
 * frees; never NULL on success) and *n.  -1 with err naming key and the
 * unknown user. */
int phx_daemon_uid_list(const phx_conf_t *conf, const char *key, uid_t **uids,
                        size_t *n, phx_error_t *err);

/* --check-config: print every setting, then "configuration OK".  Returns 0. */
int phx_daemon_check_config(const phx_conf_t *conf);

#endif
