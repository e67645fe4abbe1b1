/* phx-agent: a LAUNCH runs only if its credential is the master's munge
 * signature over the task: made by a uid of agent.master_users, with a
 * payload equal to our own canonical dump of the task we received
 * (json_dumps with JSON_COMPACT | JSON_SORT_KEYS, as the master made it). */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemons/agent/task.h"

int phx_launch_auth_init(phx_agentd_t *a, phx_error_t *err)
{
    const char *key = "agent.master_users";
    size_t len = phx_conf_list_len(a->conf, key);
    if (len == 0)
        return phx_error_set(err, "%s: must name at least one user", key);
    if (!(a->master_uids = calloc(len, sizeof(uid_t))))
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const char *name = phx_conf_list_get(a->conf, key, i);
        char *end;
        errno = 0;
        unsigned long v = strtoul(name, &end, 10);
        if (*name && !*end && !errno) {
            a->master_uids[i] = (uid_t)v;
            continue;
        }
        struct passwd *pw = getpwnam(name);
        if (!pw)
            return phx_error_set(err, "%s: unknown user \"%s\"", key, name);
        a->master_uids[i] = pw->pw_uid;
    }
    a->nmaster_uids = len;
    return 0;
}

int phx_launch_auth_check(phx_agentd_t *a, const json_t *task, const char *cred,
                          phx_error_t *err)
{
    if (!cred || !*cred)
        return phx_error_set(err, "launch is not signed (no \"cred\")");
    char *expect = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
    if (!expect)
        return phx_error_set(err, "out of memory");
    phx_munge_policy_t policy = {
        .uids = a->master_uids,
        .nuids = a->nmaster_uids,
        .expect = expect,
        .expect_len = strlen(expect),
    };
    phx_munge_cred_t out;
    phx_error_t e;
    int rc = phx_munge_decode(a->munge, cred, &policy, time(NULL), &out, &e);
    free(expect);
    if (rc < 0)
        return phx_error_set(err, "launch signature refused: %s", e.text);
    phx_munge_cred_clear(&out);
    return 0;
}
