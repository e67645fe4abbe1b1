/* phx-master's configuration keys (the "master" group of phalanx.conf). */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/master.h"

const phx_conf_key_t phx_master_schema[] = {
    {"master.agent_listen", PHX_CONF_STRING, "127.0.0.1:6051", 0, 0, false,
     "host:port where agents connect"},
    {"master.http_listen", PHX_CONF_STRING, "127.0.0.1:6050", 0, 0, false,
     "host:port of the scheduler, operator and state HTTP API"},
    {"master.dsn", PHX_CONF_STRING, "dbname=phalanx", 0, 0, false,
     "libpq connection string of the database"},
    {"master.migrations_dir", PHX_CONF_STRING, NULL, 0, 0, false,
     "directory of db/migrations (default: built-in resolution, see doc/db.md)"},
    {"master.munge_socket", PHX_CONF_STRING, NULL, 0, 0, false,
     "munged socket (default: munge's own)"},
    {"master.agent_users", PHX_CONF_STRLIST, "root", 0, 0, false,
     "users (names or uids) whose munge credentials may register agents"},
    {"master.operators", PHX_CONF_STRLIST, "root", 0, 0, true,
     "users (names or uids) allowed operator actions (drain, resume)"},
    {"master.heartbeat_interval", PHX_CONF_DOUBLE, "1.0", 0.05, 300, false,
     "seconds between agent heartbeats"},
    {"master.heartbeat_missed", PHX_CONF_INT, "5", 1, 1000, false,
     "heartbeats an agent may miss before it is lost"},
    {"master.max_frame", PHX_CONF_INT, "16777216", 1024, 1073741824, false,
     "largest agent wire frame in bytes"},
    {"master.offer_timeout", PHX_CONF_DOUBLE, "60", 0.1, 86400, false,
     "seconds before an unused offer is rescinded"},
    {"master.framework_heartbeat", PHX_CONF_DOUBLE, "15", 0.1, 3600, false,
     "seconds between HEARTBEAT events on framework streams"},
    {"master.allow_unauthenticated", PHX_CONF_BOOL, "false", 0, 0, false,
     "accept SUBSCRIBE without a munge credential (Mesos frameworks)"},
    {"master.open_users", PHX_CONF_STRLIST, "", 0, 0, false,
     "users unauthenticated frameworks may run tasks as"},
    {"master.role_weights", PHX_CONF_STRLIST, "", 0, 0, true,
     "role=weight entries for DRF (default weight 1)"},
    {"master.role_users", PHX_CONF_STRLIST, "", 0, 0, true,
     "role=user,user entries: who besides operators may take the role"},
    {"master.max_frameworks_per_user", PHX_CONF_INT, "16", 0, 1000000, true,
     "frameworks one user may have (0: no limit; operators: none)"},
    {"master.max_requests_per_framework", PHX_CONF_INT, "256", 0, 1000000, true,
     "gang requests a framework may have outstanding (0: no limit)"},
    {"master.log_level", PHX_CONF_STRING, "info", 0, 0, true,
     "error, warning, notice, info or debug"},
    {"agent", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"batchd", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"client", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

int phx_master_uid_list(const phx_conf_t *conf, const char *key, uid_t **uids,
                        size_t *n, phx_error_t *err)
{
    size_t len = phx_conf_list_len(conf, key);
    uid_t *out = calloc(len ? len : 1, sizeof(*out));
    if (!out)
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const char *name = phx_conf_list_get(conf, key, i);
        char *end;
        errno = 0;
        unsigned long v = strtoul(name, &end, 10);
        if (*name && !*end && !errno) {
            out[i] = (uid_t)v;
            continue;
        }
        struct passwd *pw = getpwnam(name);
        if (!pw) {
            free(out);
            return phx_error_set(err, "%s: unknown user \"%s\"", key, name);
        }
        out[i] = pw->pw_uid;
    }
    *uids = out;
    *n = len;
    return 0;
}
