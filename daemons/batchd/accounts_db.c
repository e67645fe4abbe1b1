/* account_users into memory (accounts.h), and which partitions a user is
 * shown.
 *
 * With batchd.enforce_accounts, the memberships are read once at start
 * (synchronously, before the API listens: batchd does not start without
 * them), then again after every SIGHUP and every batchd.accounts_refresh
 * seconds through the store, off the submission path: a submission checks
 * its account in memory and costs no database round trip.  A membership
 * added with SQL therefore counts within accounts_refresh seconds (at once
 * after `systemctl reload`).  A read that fails keeps the table in use.
 * Each read checks the queued jobs' accounts again (recheck_jobs). */
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "db/db.h"
#include "lib/log.h"

#define ACCOUNTS_SQL "SELECT user_name, account, is_default FROM account_users"

/* The table of a result (user_name, account, is_default); a row refused
 * (the table's constraints make it unlikely) is logged and left out. */
static baccounts_t *table_of(const phx_db_result_t *res)
{
    baccounts_t *a = batchd_accounts_create();
    int rows = phx_db_result_rows(res);
    for (int i = 0; a && i < rows; i++) {
        phx_error_t err;
        if (batchd_accounts_add(
                a, phx_db_result_get(res, i, 0), phx_db_result_get(res, i, 1),
                strcmp(phx_db_result_get(res, i, 2), "t") == 0, &err) < 0)
            phx_log_warnx("account_users: %s: row left out", err.text);
    }
    return a;
}

/* Pending jobs logged by name per read; past them, a count. */
#define RECHECK_LOGGED 20

/* Whose user may no longer use its job's account (bjob_t.account_invalid)
 * by the table in use, for every job not ended: a job submitted before its
 * user left the account (or before the account was deleted: its members go
 * with it), or with no account from before enforcement.  Running jobs are
 * marked too (a requeue makes them pending again) and keep running; a
 * pending one waits with reason InvalidAccount (order.c) until a read
 * finds its user back in the account, or enforcement turned off.  A walk
 * of the queue per read of the table (accounts_refresh), never per pass.
 * True when a job changed: the priority order is made again. */
static bool recheck_jobs(batchd_t *b)
{
    size_t changed = 0, logged = 0;
    for (size_t i = b->live_from; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (j->state != PHX_JOB_PENDING && j->state != PHX_JOB_RUNNING)
            continue;
        bool invalid = b->enforce_accounts &&
                       !batchd_accounts_member(b->accounts, j->user, j->spec.account);
        if (invalid == j->account_invalid)
            continue;
        j->account_invalid = invalid;
        changed++;
        if (j->state != PHX_JOB_PENDING || !b->enforce_accounts ||
            logged++ >= RECHECK_LOGGED)
            continue;
        if (!invalid)
            phx_log_info("job %" PRIu64 ": user %s may use account %s again", j->id,
                         j->user, j->spec.account);
        else if (j->spec.account)
            phx_log_info("job %" PRIu64 ": user %s is no longer a member of account "
                         "%s: not started while so (InvalidAccount)",
                         j->id, j->user, j->spec.account);
        else
            phx_log_info("job %" PRIu64 ": no account, and accounts are enforced: "
                         "not started while so (InvalidAccount)",
                         j->id);
    }
    if (logged > RECHECK_LOGGED)
        phx_log_info("and %zu more pending jobs whose account became invalid or valid",
                     logged - RECHECK_LOGGED);
    if (changed) {
        b->prio_n = 0; /* the order left out those now valid */
        b->prio_dirty = true;
    }
    return changed > 0;
}

static bool install(batchd_t *b, baccounts_t *a)
{
    size_t before = batchd_accounts_count(b->accounts);
    bool was = b->enforce_accounts;
    batchd_accounts_destroy(b->accounts);
    b->accounts = a;
    b->enforce_accounts = true;
    b->accounts_loaded = batchd_now();
    if (!was || before != batchd_accounts_count(a))
        phx_log_info("accounts enforced: %zu memberships", batchd_accounts_count(a));
    return recheck_jobs(b);
}

int batchd_accounts_start(batchd_t *b, phx_error_t *err)
{
    b->accounts_refresh = phx_conf_int(b->conf, "batchd.accounts_refresh");
    if (!phx_conf_bool(b->conf, "batchd.enforce_accounts"))
        return 0;
    phx_db_conn_t *db = phx_db_connect(b->dsn, err);
    if (!db)
        return -1;
    phx_db_result_t *res = NULL;
    int rc = phx_db_query(db, ACCOUNTS_SQL, 0, NULL, &res, err);
    baccounts_t *a = rc == 0 ? table_of(res) : NULL;
    phx_db_result_destroy(res);
    phx_db_conn_close(db);
    if (rc < 0)
        return phx_error_prefix(err,
                                "batchd.enforce_accounts: could not read account_users "
                                "(migration 007)");
    if (!a)
        return phx_error_set(err, "out of memory");
    install(b, a);
    return 0;
}

static void accounts_read(const phx_error_t *err, phx_db_result_t *const *res, int n,
                          void *arg)
{
    batchd_t *b = arg;
    b->accounts_loading = false;
    if (!phx_conf_bool(b->conf, "batchd.enforce_accounts"))
        return; /* turned off meanwhile */
    baccounts_t *a = NULL;
    if (err || n < 1 || !(a = table_of(res[0]))) {
        phx_log_errx("could not read account_users (%s): %s",
                     b->enforce_accounts ? "the memberships read before stay"
                                         : "accounts are not enforced yet",
                     err ? err->text : "out of memory");
        b->accounts_loaded = batchd_now(); /* try again in accounts_refresh */
        return;
    }
    if (install(b, a))
        batchd_sched_dirty(b); /* reasons, and offers suppressed or revived */
}

static void refresh(batchd_t *b)
{
    if (b->accounts_loading || !b->store)
        return;
    phx_error_t err;
    if (phx_db_store_read(b->store, ACCOUNTS_SQL, 0, NULL, accounts_read, b, &err) == 0)
        b->accounts_loading = true;
    else
        phx_log_warnx("could not read account_users: %s", err.text);
}

void batchd_accounts_reload(batchd_t *b)
{
    b->accounts_refresh = phx_conf_int(b->conf, "batchd.accounts_refresh");
    if (!phx_conf_bool(b->conf, "batchd.enforce_accounts")) {
        if (b->enforce_accounts)
            phx_log_info("accounts no longer enforced");
        b->enforce_accounts = false;
        batchd_accounts_destroy(b->accounts);
        b->accounts = NULL;
        if (recheck_jobs(b)) /* every account valid again */
            batchd_sched_dirty(b);
        return;
    }
    refresh(b); /* enforced (again) once read */
}

void batchd_accounts_tick(batchd_t *b, int64_t now)
{
    /* the configuration's wish: enforcement a reload turned on whose first
     * read failed is tried again too */
    if (b->accounts_refresh > 0 && now - b->accounts_loaded >= b->accounts_refresh &&
        phx_conf_bool(b->conf, "batchd.enforce_accounts"))
        refresh(b);
}

uint64_t batchd_parts_visible(const batchd_t *b, uid_t uid, gid_t gid)
{
    uint64_t all = b->parts.n >= 64 ? UINT64_MAX : (UINT64_C(1) << b->parts.n) - 1;
    if (batchd_is_operator(b, uid))
        return all;
    uint64_t shown = 0;
    for (size_t i = 0; i < b->parts.n; i++)
        if (!b->parts.v[i].hidden)
            shown |= UINT64_C(1) << i;
    if (shown == all)
        return all; /* none hidden: no user lookup */
    struct passwd pw, *pwp = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
        return shown;
    for (size_t i = 0; i < b->parts.n; i++) {
        const bpart_t *p = &b->parts.v[i];
        if (p->hidden && batchd_partition_allows(p, uid, gid, pw.pw_name) &&
            (!b->enforce_accounts ||
             batchd_accounts_may_use(b->accounts, pw.pw_name, p)))
            shown |= UINT64_C(1) << i;
    }
    return shown;
}
