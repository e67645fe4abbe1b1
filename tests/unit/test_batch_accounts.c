/* Accounts: the partitions' AllowAccounts, DenyAccounts and Hidden keys
 * (partition.c), the membership rules of batchd.enforce_accounts
 * (accounts.c), which partitions a user is shown (accounts_db.c), and
 * migration 007's tables, constraints and roles against a private
 * PostgreSQL. */
#include "daemons/batchd/accounts.c"
#include "daemons/batchd/accounts_db.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/timefmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/support/sqltest.h"

/* --- stubs of the daemon's other files --- */
static uid_t operator_uid = 12345;

int64_t batchd_now(void)
{
    return 1000;
}

bool batchd_is_operator(const batchd_t *b, uid_t uid)
{
    (void)b;
    return uid == 0 || uid == operator_uid;
}

void batchd_sched_dirty(batchd_t *b)
{
    (void)b;
}

static void parse_ok(const char *spec, bpart_t *p)
{
    bool d;
    phx_error_t err = {{0}};
    if (batchd_partition_parse(spec, 3600, 0, p, &d, &err) < 0)
        fail_msg("\"%s\": %s", spec, err.text);
}

static void parse_fails(const char *spec, const char *want)
{
    bpart_t p;
    bool d;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_partition_parse(spec, 3600, 0, &p, &d, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("\"%s\": error \"%s\" does not say \"%s\"", spec, err.text, want);
    assert_null(p.name);
    assert_null(p.accounts);
}

static void test_parse_keys(void **state)
{
    (void)state;
    bpart_t p;
    parse_ok("PartitionName=a Nodes=ALL AllowAccounts=Physics,bio hidden=yes", &p);
    assert_true(p.hidden);
    assert_false(p.deny_accounts);
    assert_int_equal(p.naccounts, 2);
    assert_string_equal(p.accounts[0], "bio"); /* lower case, sorted */
    assert_string_equal(p.accounts[1], "physics");
    assert_string_equal(p.accounts_text, "Physics,bio");
    batchd_partition_clear(&p);
    parse_ok("PartitionName=a Nodes=ALL allowaccounts=ALL Hidden=NO", &p);
    assert_null(p.accounts);
    assert_false(p.hidden);
    batchd_partition_clear(&p);
    parse_ok("PartitionName=a Nodes=ALL DenyAccounts=guest", &p);
    assert_true(p.deny_accounts);
    assert_int_equal(p.naccounts, 1);
    batchd_partition_clear(&p);
    parse_ok("PartitionName=a Nodes=ALL", &p);
    assert_null(p.accounts);
    assert_false(p.hidden);
    batchd_partition_clear(&p);
}

static void test_parse_key_errors(void **state)
{
    (void)state;
    parse_fails("PartitionName=a Nodes=ALL AllowAccounts=x DenyAccounts=y",
                "AllowAccounts and DenyAccounts on one partition");
    parse_fails("PartitionName=a Nodes=ALL DenyAccounts=y AllowAccounts=ALL",
                "AllowAccounts and DenyAccounts on one partition");
    parse_fails("PartitionName=a Nodes=ALL AllowAccounts=x AllowAccounts=y",
                "AllowAccounts given twice");
    parse_fails("PartitionName=a Nodes=ALL DenyAccounts=x DenyAccounts=y",
                "DenyAccounts given twice");
    parse_fails("PartitionName=a Nodes=ALL AllowAccounts=a,b/c",
                "AllowAccounts=a,b/c: \"b/c\" is not an account name");
    parse_fails("PartitionName=a Nodes=ALL DenyAccounts=,a",
                "DenyAccounts=,a: \"\" is not an account name");
    parse_fails("PartitionName=a Nodes=ALL AllowAccounts=a,",
                "AllowAccounts=a,: an empty account name");
    parse_fails("PartitionName=a Nodes=ALL AllowAccounts=-a", "is not an account name");
    parse_fails("PartitionName=a Nodes=ALL DenyAccounts=ALL",
                "DenyAccounts=ALL would refuse every job");
    parse_fails("PartitionName=a Nodes=ALL Hidden=maybe", "Hidden=maybe: YES or NO");
    char many[4096] = "PartitionName=a Nodes=ALL AllowAccounts=";
    for (int i = 0; i < 257; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sa%d",
                 i ? "," : "", i);
    parse_fails(many, "AllowAccounts: more than 256 accounts");
    parse_fails("PartitionName=a Nodes=ALL Foo=1",
                "AllowGroups, AllowAccounts, DenyAccounts, Hidden)");
}

static void account_refused(const bpart_t *p, const char *account, const char *want)
{
    phx_error_t err = {{0}};
    assert_false(batchd_partition_account_ok(p, account, &err));
    if (!strstr(err.text, want))
        fail_msg("account %s: error \"%s\" does not say \"%s\"", account, err.text,
                 want);
}

static void test_allow_deny(void **state)
{
    (void)state;
    bpart_t allow, deny, all;
    parse_ok("PartitionName=phys Nodes=ALL AllowAccounts=physics,bio", &allow);
    parse_ok("PartitionName=open Nodes=ALL DenyAccounts=guest", &deny);
    parse_ok("PartitionName=any Nodes=ALL AllowAccounts=ALL", &all);
    assert_true(batchd_partition_account_ok(&allow, "physics", NULL));
    assert_true(batchd_partition_account_ok(&allow, "BIO", NULL)); /* any case */
    account_refused(&allow, "chem",
                    "account chem may not use partition phys "
                    "(AllowAccounts=physics,bio)");
    account_refused(&allow, NULL,
                    "partition phys takes jobs of accounts physics,bio only "
                    "(AllowAccounts): give one with -A");
    account_refused(&allow, "physicsx", "account physicsx may not use");
    account_refused(&deny, "Guest",
                    "account Guest may not use partition open (DenyAccounts=guest)");
    assert_true(batchd_partition_account_ok(&deny, "physics", NULL));
    assert_true(batchd_partition_account_ok(&deny, NULL, NULL));
    assert_true(batchd_partition_account_ok(&all, NULL, NULL));
    assert_true(batchd_partition_account_ok(&all, "anything", NULL));
    batchd_partition_clear(&allow);
    batchd_partition_clear(&deny);
    batchd_partition_clear(&all);
}

static void resolves(const baccounts_t *a, const char *user, const char *given,
                     const char *want)
{
    char *acct = given ? strdup(given) : NULL;
    phx_error_t err = {{0}};
    if (batchd_accounts_resolve(a, user, &acct, &err) < 0)
        fail_msg("%s -A %s: %s", user, given ? given : "(none)", err.text);
    assert_string_equal(acct, want);
    free(acct);
}

static void refused(const baccounts_t *a, const char *user, const char *given,
                    const char *want)
{
    char *acct = given ? strdup(given) : NULL;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_accounts_resolve(a, user, &acct, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("%s -A %s: error \"%s\" does not say \"%s\"", user,
                 given ? given : "(none)", err.text, want);
    if (given)
        assert_string_equal(acct, given); /* unchanged */
    else
        assert_null(acct);
    free(acct);
}

static void add_fails(baccounts_t *a, const char *user, const char *account, bool d,
                      const char *want)
{
    phx_error_t err = {{0}};
    assert_int_equal(batchd_accounts_add(a, user, account, d, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, want);
}

static void test_membership(void **state)
{
    (void)state;
    baccounts_t *a = batchd_accounts_create();
    phx_error_t err;
    assert_non_null(a);
    assert_int_equal(batchd_accounts_add(a, "alice", "physics", false, &err), 0);
    assert_int_equal(batchd_accounts_add(a, "alice", "Bio", true, &err), 0);
    assert_int_equal(batchd_accounts_add(a, "bob", "chem", false, &err), 0);
    assert_int_equal(batchd_accounts_count(a), 3);
    add_fails(a, "alice", "chem", true,
              "user alice has two default accounts (bio and chem)");
    add_fails(a, "alice", "PHYSICS", false,
              "user alice is a member of account PHYSICS twice");
    add_fails(a, "al ice", "chem", false, "invalid user name \"al ice\"");
    add_fails(a, "carol", "a/b", false, "user carol: invalid account name \"a/b\"");
    assert_int_equal(batchd_accounts_count(a), 3);
    assert_true(batchd_accounts_member(a, "alice", "PhYsics"));
    assert_false(batchd_accounts_member(a, "alice", "chem"));
    assert_false(batchd_accounts_member(a, "nobody", "chem"));
    assert_string_equal(batchd_accounts_default(a, "alice"), "bio");
    assert_null(batchd_accounts_default(a, "bob"));
    /* none given: the default; given: in lower case, if a member */
    resolves(a, "alice", NULL, "bio");
    resolves(a, "alice", "Physics", "physics");
    resolves(a, "bob", "chem", "chem");
    refused(a, "alice", "chem",
            "user alice is not a member of account chem (its accounts: physics, bio)");
    refused(a, "bob", NULL,
            "user bob has no default account: give one with -A (its "
            "accounts: chem)");
    refused(a, "carol", NULL, "user carol is a member of no account");
    refused(a, "carol", "chem", "user carol is not a member of account chem");
    refused(NULL, "carol", "chem", "user carol is not a member of account chem");
    /* may_use: any of the user's accounts passes the partition */
    bpart_t phys, open;
    parse_ok("PartitionName=phys Nodes=ALL AllowAccounts=physics", &phys);
    parse_ok("PartitionName=open Nodes=ALL DenyAccounts=chem", &open);
    assert_true(batchd_accounts_may_use(a, "alice", &phys));
    assert_false(batchd_accounts_may_use(a, "bob", &phys));
    assert_false(batchd_accounts_may_use(a, "carol", &phys));
    assert_true(batchd_accounts_may_use(a, "alice", &open));
    assert_false(batchd_accounts_may_use(a, "bob", &open)); /* chem only */
    batchd_partition_clear(&phys);
    batchd_partition_clear(&open);
    batchd_accounts_destroy(a);
    batchd_accounts_destroy(NULL);
}

static const phx_conf_key_t schema[] = {
    {"batchd.partition", PHX_CONF_STRING, "batch", 0, 0, false, NULL},
    {"batchd.partitions", PHX_CONF_STRLIST, "", 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

/* Hidden partitions are shown to operators and to the users who may use
 * them; the others to everyone. */
static void test_visible(void **state)
{
    (void)state;
    phx_error_t err;
    phx_conf_t *c = phx_conf_load_string(
        schema,
        "batchd: { partitions = [\"PartitionName=open Nodes=ALL\", "
        "\"PartitionName=phys Nodes=ALL AllowAccounts=physics Hidden=YES\", "
        "\"PartitionName=rooms Nodes=ALL AllowGroups=root Hidden=YES\", "
        "\"PartitionName=shown Nodes=ALL AllowAccounts=physics\"]; };",
        "test.conf", &err);
    assert_non_null(c);
    batchd_t b = {0};
    assert_int_equal(batchd_parts_make(c, 3600, 0, &b.parts, &err), 0);
    phx_conf_destroy(c);
    /* accounts not enforced: any user may name physics, so phys is shown;
     * rooms is root's group's only (daemon, uid 1, is not in it) */
    assert_int_equal(batchd_parts_visible(&b, 1, 1), 0x1 | 0x2 | 0x8);
    assert_int_equal(batchd_parts_visible(&b, 0, 0), 0xf);
    assert_int_equal(batchd_parts_visible(&b, operator_uid, 100), 0xf);
    /* enforced: phys only to members of physics */
    b.enforce_accounts = true;
    b.accounts = batchd_accounts_create();
    assert_int_equal(batchd_parts_visible(&b, 1, 1), 0x1 | 0x8);
    assert_int_equal(batchd_accounts_add(b.accounts, "daemon", "physics", true, &err),
                     0);
    assert_int_equal(batchd_parts_visible(&b, 1, 1), 0x1 | 0x2 | 0x8);
    assert_int_equal(batchd_parts_visible(&b, 0, 0), 0xf);
    /* an unknown uid sees no hidden partition */
    assert_int_equal(batchd_parts_visible(&b, 4000000, 4000000), 0x1 | 0x8);
    /* the JSON of the partitions shown */
    json_t *j = batchd_parts_json(&b.parts, 0x1 | 0x8);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(j, 1), "name")), "shown");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(j, 1), "allow_accounts")),
        "physics");
    json_decref(j);
    batchd_accounts_destroy(b.accounts);
    batchd_parts_clear(&b.parts);
}

/* Migration 007: the tables' rules, who may read and write them, and the
 * table batchd reads from them. */
static void test_tables(void **state)
{
    (void)state;
    phx_db_conn_t *c = phx_sqltest_fresh_db();
    char buf[512];
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('alice')");
    phx_sqltest_exec_ok(c, "SELECT phx_acct_grant_user('bob')");
    phx_sqltest_exec_ok(c, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                           "rolname = 'acctadm') THEN CREATE ROLE acctadm IN ROLE "
                           "phx_acct_admin; END IF; END $$");
    phx_sqltest_exec_ok(c, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                           "rolname = 'daemon_r') THEN CREATE ROLE daemon_r IN ROLE "
                           "phx_daemon; END IF; END $$");
    phx_sqltest_exec_ok(c, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                           "rolname = 'carol_r') THEN CREATE ROLE carol_r IN ROLE "
                           "phx_accountant; END IF; END $$");
    /* an account administrator adds accounts and members */
    phx_sqltest_as_role(c, "acctadm");
    phx_sqltest_exec_ok(c, "INSERT INTO accounts (name, description) VALUES "
                           "('physics', 'Physics'), ('chem', ''), ('bio', '')");
    phx_sqltest_exec_ok(c,
                        "INSERT INTO account_users (user_name, account, is_default) "
                        "VALUES ('alice', 'physics', true), ('alice', 'bio', false), "
                        "('bob', 'chem', true)");
    /* one default per user; moved by one UPDATE (deferred constraint) */
    phx_sqltest_exec_refused(c,
                             "UPDATE account_users SET is_default = true WHERE "
                             "user_name = 'alice' AND account = 'bio'",
                             "23P01");
    phx_sqltest_exec_ok(c, "UPDATE account_users SET is_default = (account = 'bio') "
                           "WHERE user_name = 'alice'");
    phx_sqltest_exec_refused(c, "INSERT INTO accounts (name) VALUES ('Physics')",
                             "23514"); /* lower case only */
    phx_sqltest_exec_refused(c, "INSERT INTO accounts (name) VALUES ('a b')", "23514");
    phx_sqltest_exec_refused(
        c, "INSERT INTO account_users (user_name, account) VALUES ('x y', 'chem')",
        "23514");
    phx_sqltest_exec_refused(
        c, "INSERT INTO account_users (user_name, account) VALUES ('carol', 'nope')",
        "23503");
    phx_sqltest_as_role(c, NULL);
    /* users read their own memberships and accounts, write nothing */
    phx_sqltest_as_role(c, "alice");
    assert_string_equal(phx_sqltest_rows(c,
                                         "SELECT account || ':' || is_default FROM "
                                         "account_users ORDER BY account",
                                         buf, sizeof(buf)),
                        "bio:true physics:false");
    assert_string_equal(phx_sqltest_rows(c, "SELECT name FROM accounts ORDER BY name",
                                         buf, sizeof(buf)),
                        "bio physics");
    phx_sqltest_exec_refused(
        c, "INSERT INTO account_users (user_name, account) VALUES ('alice', 'chem')",
        "42501");
    phx_sqltest_exec_refused(c, "UPDATE accounts SET description = 'x'", "42501");
    phx_sqltest_as_role(c, NULL);
    /* the daemons and accountants read every row, write nothing */
    const char *readers[] = {"daemon_r", "carol_r"};
    for (int i = 0; i < 2; i++) {
        phx_sqltest_as_role(c, readers[i]);
        assert_string_equal(phx_sqltest_rows(c,
                                             "SELECT user_name || ':' || account FROM "
                                             "account_users ORDER BY 1",
                                             buf, sizeof(buf)),
                            "alice:bio alice:physics bob:chem");
        phx_sqltest_exec_refused(c, "INSERT INTO accounts (name) VALUES ('x')",
                                 "42501");
        phx_sqltest_exec_refused(c, "DELETE FROM account_users", "42501");
        phx_sqltest_as_role(c, NULL);
    }
    /* batchd's read (as the daemons' role) into its table */
    phx_sqltest_as_role(c, "daemon_r");
    phx_db_result_t *res = phx_sqltest_query(c, ACCOUNTS_SQL, 0, NULL);
    baccounts_t *a = table_of(res);
    phx_db_result_destroy(res);
    phx_sqltest_as_role(c, NULL);
    assert_int_equal(batchd_accounts_count(a), 3);
    assert_string_equal(batchd_accounts_default(a, "alice"), "bio");
    assert_true(batchd_accounts_member(a, "alice", "physics"));
    assert_false(batchd_accounts_member(a, "bob", "physics"));
    batchd_accounts_destroy(a);
    /* doc/accounting.md's examples, as an account administrator */
    phx_sqltest_as_role(c, "acctadm");
    phx_sqltest_exec_ok(
        c, "INSERT INTO account_users (user_name, account) VALUES "
           "('alice', 'chem') ON CONFLICT (user_name, account) DO NOTHING");
    phx_sqltest_exec_ok(c, "UPDATE account_users SET is_default = (account = 'chem') "
                           "WHERE user_name = 'alice'");
    assert_string_equal(
        phx_sqltest_rows(c,
                         "SELECT a.name || '=' || coalesce(string_agg(m.user_name || "
                         "CASE WHEN m.is_default THEN '*' ELSE '' END, ', ' ORDER BY "
                         "m.user_name), '') AS members FROM accounts a LEFT JOIN "
                         "account_users m ON m.account = a.name GROUP BY a.name "
                         "ORDER BY a.name",
                         buf, sizeof(buf)),
        "bio=alice chem=alice*, bob* physics=alice");
    phx_sqltest_exec_ok(c, "DELETE FROM account_users WHERE user_name = 'alice' AND "
                           "account = 'chem'");
    phx_sqltest_exec_ok(c, "UPDATE account_users SET is_default = (account = 'bio') "
                           "WHERE user_name = 'alice'");
    phx_sqltest_as_role(c, NULL);
    /* an account removed takes its memberships with it */
    phx_sqltest_exec_ok(c, "DELETE FROM accounts WHERE name = 'bio'");
    assert_string_equal(phx_sqltest_rows(c,
                                         "SELECT account FROM account_users WHERE "
                                         "user_name = 'alice'",
                                         buf, sizeof(buf)),
                        "physics");
    phx_db_conn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_keys), cmocka_unit_test(test_parse_key_errors),
        cmocka_unit_test(test_allow_deny), cmocka_unit_test(test_membership),
        cmocka_unit_test(test_visible),    cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, phx_sqltest_setup, phx_sqltest_teardown);
}
