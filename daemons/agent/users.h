/* phx-agent: a cache of the users tasks run as (loop thread only).
 *
 * Every launch needs the user's passwd entry (uid check, home, shell) and
 * group list (the task's supplementary groups).  With files in nsswitch
 * that is a stat of /etc/nsswitch.conf per lookup and a read and parse of
 * /etc/passwd and /etc/group per task; with sssd or LDAP, a round trip.
 * The cache keeps an entry per (user name, gid) for PHX_USERS_TTL seconds,
 * as slurmd caches group lists (GroupUpdateTime): a change to a user's
 * groups or home reaches new tasks within the TTL, an edit of a passwd
 * entry's uid too.  A user that does
 * not exist is not cached: a new user may run tasks at once. */
#ifndef PHX_AGENT_USERS_H
#define PHX_AGENT_USERS_H

#include <stddef.h>
#include <sys/types.h>

#define PHX_USERS_TTL 60.0 /* seconds */

typedef struct phx_user {
    char *name, *dir, *shell;
    uid_t uid;
    gid_t gid; /* the gid the group list was made for (the task's) */
    gid_t *groups;
    int ngroups;
} phx_user_t;

typedef struct phx_users phx_users_t;

/* Fill *out (its strings and groups malloc'd, freed by the cache) for user
 * name with gid as primary group; 0, or -1 with errno (ENOENT: no such
 * user).  The default, phx_users_lookup_nss, asks getpwnam_r and
 * getgrouplist; tests pass their own. */
typedef int (*phx_users_lookup_f)(const char *name, gid_t gid, phx_user_t *out,
                                  void *arg);
int phx_users_lookup_nss(const char *name, gid_t gid, phx_user_t *out, void *arg);

/* ttl in seconds (0: every get looks up); lookup NULL: phx_users_lookup_nss. */
phx_users_t *phx_users_create(double ttl, phx_users_lookup_f lookup, void *arg);
void phx_users_destroy(phx_users_t *u);

/* The user name with primary group gid, as of at most ttl seconds before
 * now (a monotonic clock, seconds).  The entry is borrowed: valid until the
 * next phx_users_get or phx_users_destroy.  NULL with errno (ENOENT: no such
 * user). */
const phx_user_t *phx_users_get(phx_users_t *u, const char *name, gid_t gid,
                                double now);

/* Monotonic clock, seconds: the now of phx_users_get. */
double phx_users_now(void);

#endif
