/* Accounts and their members (db/migrations/007_accounts.sql: accounts,
 * account_users), as Slurm's associations with
 * AccountingStorageEnforce=associations: with batchd.enforce_accounts a job
 * is charged to one of its owner's accounts, the default one when it names
 * none.  Pure C over an in-memory copy of account_users; batchd loads it at
 * start, on SIGHUP and every batchd.accounts_refresh seconds (accounts_db.c),
 * so that a submission never waits on the database for it. */
#ifndef PHX_BATCHD_ACCOUNTS_H
#define PHX_BATCHD_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemons/batchd/partition.h"
#include "lib/error.h"

#define BATCHD_USER_ACCOUNTS_MAX 1024 /* accounts one user may be in */

typedef struct baccounts baccounts_t;

/* An empty table; NULL on ENOMEM.  _destroy(NULL) is a no-op. */
baccounts_t *batchd_accounts_create(void);
void batchd_accounts_destroy(baccounts_t *a);

/* user is a member of account (compared in any case, kept in lower case);
 * is_default: the user's default account.  -1 with err naming the user and
 * the account: a bad name, a second default, the same membership twice,
 * more than BATCHD_USER_ACCOUNTS_MAX accounts, ENOMEM. */
int batchd_accounts_add(baccounts_t *a, const char *user, const char *account,
                        bool is_default, phx_error_t *err);
size_t batchd_accounts_count(const baccounts_t *a); /* memberships */

bool batchd_accounts_member(const baccounts_t *a, const char *user,
                            const char *account);
/* The user's default account, or NULL (a borrowed pointer, valid while a
 * is). */
const char *batchd_accounts_default(const baccounts_t *a, const char *user);

/* The account a job of user is charged to: *account (the job's -A, or NULL)
 * becomes the user's default account when NULL, or its lower-case form; -1
 * with err when the user has no default account (none given) or is not a
 * member of the account given ("user U is not a member of account A").
 * *account is the caller's (malloc'd; replaced on success only). */
int batchd_accounts_resolve(const baccounts_t *a, const char *user, char **account,
                            phx_error_t *err);

/* May user use p by its accounts: does any of them pass p's AllowAccounts
 * and DenyAccounts? */
bool batchd_accounts_may_use(const baccounts_t *a, const char *user, const bpart_t *p);

#endif
