/* Accounts and their members, in memory (accounts.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/accounts.h"
#include "lib/hmap.h"

#define USER_MAX 63 /* as phx_acct_grant_user's and the table's CHECK */

typedef struct buser {
    char **accounts; /* lower case, in the order added */
    size_t n, cap;
    ssize_t deflt; /* index in accounts, -1: none */
} buser_t;

struct baccounts {
    phx_hmap_t *users; /* user name → buser_t */
    size_t count;
};

baccounts_t *batchd_accounts_create(void)
{
    baccounts_t *a = calloc(1, sizeof(*a));
    if (!a || !(a->users = phx_hmap_create())) {
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

void batchd_accounts_destroy(baccounts_t *a)
{
    if (!a)
        return;
    int saved = errno;
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(a->users, &pos, NULL, &v)) {
        buser_t *u = v;
        for (size_t i = 0; i < u->n; i++)
            free(u->accounts[i]);
        free(u->accounts);
        free(u);
    }
    phx_hmap_destroy(a->users);
    free(a);
    errno = saved;
}

size_t batchd_accounts_count(const baccounts_t *a)
{
    return a ? a->count : 0;
}

static bool user_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > USER_MAX || s[0] == '-' || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static ssize_t find(const buser_t *u, const char *account)
{
    for (size_t i = 0; u && account && i < u->n; i++)
        if (strcasecmp(u->accounts[i], account) == 0)
            return (ssize_t)i;
    return -1;
}

int batchd_accounts_add(baccounts_t *a, const char *user, const char *account,
                        bool is_default, phx_error_t *err)
{
    if (!user || !user_ok(user))
        return phx_error_set(err, "invalid user name \"%.64s\"", user ? user : "");
    if (!account || !batchd_account_name_ok(account, strlen(account)))
        return phx_error_set(err, "user %s: invalid account name \"%.80s\"", user,
                             account ? account : "");
    buser_t *u = phx_hmap_get(a->users, user);
    if (!u) {
        if (!(u = calloc(1, sizeof(*u))) || phx_hmap_put(a->users, user, u) < 0) {
            free(u);
            return phx_error_set(err, "out of memory");
        }
        u->deflt = -1;
    }
    if (find(u, account) >= 0)
        return phx_error_set(err, "user %s is a member of account %s twice", user,
                             account);
    if (is_default && u->deflt >= 0)
        return phx_error_set(err, "user %s has two default accounts (%s and %s)", user,
                             u->accounts[u->deflt], account);
    if (u->n == BATCHD_USER_ACCOUNTS_MAX)
        return phx_error_set(err, "user %s: more than %d accounts", user,
                             BATCHD_USER_ACCOUNTS_MAX);
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 4;
        char **v = realloc(u->accounts, cap * sizeof(*v));
        if (!v)
            return phx_error_set(err, "out of memory");
        u->accounts = v;
        u->cap = cap;
    }
    char *copy = strdup(account);
    if (!copy)
        return phx_error_set(err, "out of memory");
    for (char *c = copy; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (is_default)
        u->deflt = (ssize_t)u->n;
    u->accounts[u->n++] = copy;
    a->count++;
    return 0;
}

bool batchd_accounts_member(const baccounts_t *a, const char *user, const char *account)
{
    return a && user && find(phx_hmap_get(a->users, user), account) >= 0;
}

const char *batchd_accounts_default(const baccounts_t *a, const char *user)
{
    const buser_t *u = a && user ? phx_hmap_get(a->users, user) : NULL;
    return u && u->deflt >= 0 ? u->accounts[u->deflt] : NULL;
}

/* "a, b, c" (the first few) into buf. */
static void list_of(const buser_t *u, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; u && i < u->n && at + 1 < len; i++)
        at +=
            (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", u->accounts[i]);
}

int batchd_accounts_resolve(const baccounts_t *a, const char *user, char **account,
                            phx_error_t *err)
{
    const buser_t *u = a && user ? phx_hmap_get(a->users, user) : NULL;
    char mine[512];
    list_of(u, mine, sizeof(mine));
    if (!*account) {
        if (!u || u->n == 0)
            return phx_error_set(err,
                                 "user %s is a member of no account: an administrator "
                                 "must add it to one (account_users)",
                                 user);
        if (u->deflt < 0)
            return phx_error_set(err,
                                 "user %s has no default account: give one with -A "
                                 "(its accounts: %s)",
                                 user, mine);
        char *d = strdup(u->accounts[u->deflt]);
        if (!d)
            return phx_error_set(err, "out of memory");
        *account = d;
        return 0;
    }
    ssize_t i = find(u, *account);
    if (i < 0) {
        if (u && u->n)
            return phx_error_set(err,
                                 "user %s is not a member of account %.80s (its "
                                 "accounts: %s)",
                                 user, *account, mine);
        return phx_error_set(err, "user %s is not a member of account %.80s", user,
                             *account);
    }
    char *d = strdup(u->accounts[i]);
    if (!d)
        return phx_error_set(err, "out of memory");
    free(*account);
    *account = d;
    return 0;
}

bool batchd_accounts_may_use(const baccounts_t *a, const char *user, const bpart_t *p)
{
    if (!p->accounts)
        return true;
    const buser_t *u = a && user ? phx_hmap_get(a->users, user) : NULL;
    for (size_t i = 0; u && i < u->n; i++)
        if (batchd_partition_account_ok(p, u->accounts[i], NULL))
            return true;
    return false;
}
