/* Who may do what as a framework.  Any munge user may subscribe one (framework
 * authors are users), so what a framework could take from others is
 * bounded:
 *   - a role the operators gave a weight (master.role_weights) is theirs
 *     to hand out: only uid 0, operators and the users master.role_users
 *     lists for it may take it (a user once subscribed as "batch" with
 *     batchd's weight);
 *   - a role listed in master.role_users is its users' alone;
 *   - "*", the default role, stays open to all (weighted or listed);
 *   - at most master.max_frameworks_per_user frameworks of one user (all
 *     unauthenticated ones count as one user) and at most
 *     master.max_requests_per_framework gang requests outstanding for one
 *     framework; uid 0 and operators are not limited.
 * Every key is read at each call: a reload applies at once. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "lib/hmap.h"
#include "lib/log.h"

bool phx_master_is_operator(const phx_master_t *m, uid_t uid)
{
    for (size_t i = 0; i < m->noperator_uids; i++)
        if (m->operator_uids[i] == uid)
            return true;
    return false;
}

/* uid 0 runs batchd: never limited here, whoever the operators are */
static bool is_operator(const phx_master_t *m, uid_t uid)
{
    return uid == 0 || phx_master_is_operator(m, uid);
}

/* "role=" starts entry e of a "role=..." list. */
static bool entry_for(const char *e, const char *role)
{
    size_t n = strlen(role);
    return strncmp(e, role, n) == 0 && e[n] == '=';
}

/* Whether user (name or uid) is in the comma-separated list. */
static bool listed(const char *list, uid_t uid)
{
    struct passwd *pw = getpwuid(uid);
    char num[16];
    snprintf(num, sizeof(num), "%u", (unsigned)uid);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if ((pw && strlen(pw->pw_name) == n && strncmp(p, pw->pw_name, n) == 0) ||
            (strlen(num) == n && strncmp(p, num, n) == 0))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

const char *phx_master_role_refused(const phx_master_t *m, const char *role,
                                    bool authenticated, uid_t uid)
{
    if ((authenticated && is_operator(m, uid)) || strcmp(role, "*") == 0)
        return NULL; /* "*", every framework's default, is open to all */
    const phx_conf_t *c = m->conf;
    for (size_t i = 0; i < phx_conf_list_len(c, "master.role_users"); i++) {
        const char *e = phx_conf_list_get(c, "master.role_users", i);
        if (entry_for(e, role))
            return authenticated && listed(e + strlen(role) + 1, uid)
                       ? NULL
                       : "the role is reserved to the users master.role_users lists "
                         "for it";
    }
    for (size_t i = 0; i < phx_conf_list_len(c, "master.role_weights"); i++)
        if (entry_for(phx_conf_list_get(c, "master.role_weights", i), role))
            return "the role has a weight set by the operators (master.role_weights): "
                   "only operators and the users master.role_users lists for it may "
                   "take it";
    return NULL;
}

const char *phx_master_frameworks_refused(const phx_master_t *m, const char *id,
                                          bool authenticated, uid_t uid)
{
    long max = (long)phx_conf_int(m->conf, "master.max_frameworks_per_user");
    if (max == 0 || (authenticated && is_operator(m, uid)))
        return NULL;
    long n = 0;
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        const phx_fw_t *fw = v;
        if (!fw->removed && strcmp(fw->id, id) != 0 &&
            fw->authenticated == authenticated && (!authenticated || fw->uid == uid))
            n++;
    }
    for (const phx_sub_inflight_t *s = m->subs_inflight; s; s = s->next)
        if (strcmp(s->id, id) != 0 && s->authenticated == authenticated &&
            (!authenticated || s->uid == uid))
            n++;
    return n >= max ? "the user has master.max_frameworks_per_user frameworks already "
                      "(TEARDOWN one)"
                    : NULL;
}

const char *phx_master_requests_refused(const phx_master_t *m, const phx_fw_t *fw,
                                        size_t adding)
{
    long max = (long)phx_conf_int(m->conf, "master.max_requests_per_framework");
    if (max == 0 || (fw->authenticated && is_operator(m, fw->uid)))
        return NULL;
    phx_alloc_framework_info_t fi;
    if (phx_alloc_framework_info(m->alloc, fw->id, &fi) < 0)
        return NULL;
    return (long)fi.nrequests + (long)adding > max
               ? "the framework would have more than master.max_requests_per_framework "
                 "gang requests outstanding"
               : NULL;
}

void phx_master_policy_audit(const phx_master_t *m)
{
    for (size_t i = 0; i < phx_conf_list_len(m->conf, "master.role_users"); i++) {
        const char *e = phx_conf_list_get(m->conf, "master.role_users", i);
        if (entry_for(e, "*"))
            phx_log_warnx("master.role_users entry \"%s\" is ignored: \"*\", every "
                          "framework's default role, is open to all",
                          e);
    }
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        const phx_fw_t *fw = v;
        const char *why =
            fw->removed
                ? NULL
                : phx_master_role_refused(m, fw->role, fw->authenticated, fw->uid);
        if (why)
            phx_log_warnx(
                "framework %s (%s %u) holds role \"%s\", which the "
                "configuration no longer allows it (%s): it keeps it until it "
                "subscribes again; an operator may TEARDOWN it",
                fw->id, fw->authenticated ? "uid" : "unauthenticated, uid",
                (unsigned)fw->uid, fw->role, why);
    }
}
