/* phx-agent: a cache of user lookups (see users.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemons/agent/users.h"

#define USERS_MAX  256   /* entries; the oldest goes first */
#define GROUPS_MAX 65536 /* NGROUPS_MAX of Linux */

typedef struct entry {
    phx_user_t user;
    double fetched; /* now of the lookup */
    struct entry *next;
} entry_t;

struct phx_users {
    double ttl;
    phx_users_lookup_f lookup;
    void *arg;
    entry_t *entries; /* newest first */
    int n;
};

static void user_clear(phx_user_t *u)
{
    free(u->name);
    free(u->dir);
    free(u->shell);
    free(u->groups);
    memset(u, 0, sizeof(*u));
}

int phx_users_lookup_nss(const char *name, gid_t gid, phx_user_t *out, void *arg)
{
    (void)arg;
    memset(out, 0, sizeof(*out));
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = size > 0 ? (size_t)size : 4096;
    struct passwd pw, *res = NULL;
    char *buf = NULL;
    int e;
    for (;;) {
        char *m = realloc(buf, len);
        if (!m) {
            free(buf);
            errno = ENOMEM;
            return -1;
        }
        buf = m;
        e = getpwnam_r(name, &pw, buf, len, &res);
        if (e != ERANGE || len >= (1u << 20))
            break;
        len *= 2;
    }
    if (!res) {
        free(buf);
        errno = e ? e : ENOENT;
        return -1;
    }
    out->uid = pw.pw_uid;
    out->gid = gid;
    out->name = strdup(pw.pw_name);
    out->dir = strdup(pw.pw_dir ? pw.pw_dir : "/");
    out->shell = strdup(pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh");
    free(buf);
    int n = 64;
    for (;;) {
        gid_t *m = realloc(out->groups, (size_t)n * sizeof(gid_t));
        if (!m)
            break; /* ENOMEM below */
        out->groups = m;
        int want = n;
        if (getgrouplist(name, gid, out->groups, &want) >= 0) {
            n = want;
            break;
        }
        if (want <= n || want > GROUPS_MAX) {
            user_clear(out);
            errno = E2BIG;
            return -1;
        }
        n = want; /* the number it needs */
    }
    out->ngroups = n;
    if (!out->name || !out->dir || !out->shell || !out->groups) {
        user_clear(out);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

phx_users_t *phx_users_create(double ttl, phx_users_lookup_f lookup, void *arg)
{
    phx_users_t *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->ttl = ttl > 0 ? ttl : 0;
    u->lookup = lookup ? lookup : phx_users_lookup_nss;
    u->arg = arg;
    return u;
}

static void entry_free(entry_t *e)
{
    user_clear(&e->user);
    free(e);
}

void phx_users_destroy(phx_users_t *u)
{
    if (!u)
        return;
    int e = errno;
    while (u->entries) {
        entry_t *next = u->entries->next;
        entry_free(u->entries);
        u->entries = next;
    }
    free(u);
    errno = e;
}

/* Unlink and free the entry after prev (prev NULL: the first). */
static void drop_after(phx_users_t *u, entry_t *prev)
{
    entry_t *e = prev ? prev->next : u->entries;
    if (prev)
        prev->next = e->next;
    else
        u->entries = e->next;
    entry_free(e);
    u->n--;
}

const phx_user_t *phx_users_get(phx_users_t *u, const char *name, gid_t gid, double now)
{
    entry_t *prev = NULL;
    for (entry_t *e = u->entries; e; prev = e, e = e->next) {
        if (e->user.gid != gid || strcmp(e->user.name, name) != 0)
            continue;
        if (now - e->fetched < u->ttl && now >= e->fetched)
            return &e->user;
        drop_after(u, prev); /* stale: looked up again below */
        break;
    }
    entry_t *e = calloc(1, sizeof(*e));
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    if (u->lookup(name, gid, &e->user, u->arg) < 0) {
        int err = errno;
        free(e);
        errno = err;
        return NULL;
    }
    /* Keyed by the name asked for (nss may answer another spelling). */
    char *key = strdup(name);
    if (!key) {
        entry_free(e);
        errno = ENOMEM;
        return NULL;
    }
    free(e->user.name);
    e->user.name = key;
    e->user.gid = gid;
    e->fetched = now;
    e->next = u->entries;
    u->entries = e;
    if (++u->n > USERS_MAX) { /* drop the oldest */
        entry_t *p = u->entries;
        while (p->next && p->next->next)
            p = p->next;
        drop_after(u, p);
    }
    return &e->user;
}

double phx_users_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
