/* The leader election in the database: migration 009's fence (PXL01
 * unless the epoch is the current one; a new epoch waits for the old
 * leader's transaction in flight), 015's for batchd (PXL02), watching the
 * lock connection (phx_db_conn_check sees a session the server ended;
 * pings keep it busy), and db/leader.c's election of two processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "db/db.h"
#include "db/leader.h"
#include "db/migrate.h"
#include "tests/unit/support/paths.h"
#include "tests/unit/support/pgtest.h"

static phx_test_pg_t pg;

static phx_db_conn_t *connect_to(const char *dsn)
{
    phx_error_t err = {{0}};
    phx_db_conn_t *c = phx_db_connect(dsn, &err);
    if (!c)
        fail_msg("connect: %s", err.text);
    return c;
}

/* A fresh database with the project's migrations. */
static phx_db_conn_t *migrated_db(char *dsn, size_t len)
{
    static int serial;
    char name[32], repo[PATH_MAX - 32], dir[PATH_MAX];
    snprintf(name, sizeof(name), "l%d", ++serial);
    assert_int_equal(phx_test_pg_createdb(&pg, name, dsn, len), 0);
    assert_int_equal(phx_test_repo_dir(repo, sizeof(repo)), 0);
    snprintf(dir, sizeof(dir), "%s/db/migrations", repo);
    phx_db_conn_t *c = connect_to(dsn);
    phx_error_t err = {{0}};
    if (phx_db_migrate(c, dir, &err) < 0)
        fail_msg("migrate: %s", err.text);
    return c;
}

static int run(phx_db_conn_t *c, const char *sql, phx_error_t *err)
{
    return phx_db_query(c, sql, 0, NULL, NULL, err);
}

static void test_fence(void **state)
{
    (void)state;
    char dsn[256], st[6];
    phx_db_conn_t *c = migrated_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    assert_int_equal(run(c, "SELECT phx_master_fence(0)", &err), 0);
    assert_int_equal(run(c, "UPDATE master_leader SET epoch = epoch + 1", &err), 0);
    assert_int_equal(run(c, "SELECT phx_master_fence(0)", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "PXL01");
    assert_non_null(strstr(err.text, "master epoch 0 is not the current one (1)"));
    assert_int_equal(run(c, "SELECT phx_master_fence(1)", &err), 0);
    /* one row only */
    assert_int_equal(run(c, "INSERT INTO master_leader (id) VALUES (2)", &err), -1);

    /* An old leader's transaction holds the row FOR SHARE: the new
     * leader's bump waits for it (here: gives up after 200 ms). */
    phx_db_conn_t *old = connect_to(dsn);
    assert_int_equal(run(old, "BEGIN", &err), 0);
    assert_int_equal(run(old, "SELECT phx_master_fence(1)", &err), 0);
    assert_int_equal(run(c, "SET lock_timeout = '200ms'", &err), 0);
    assert_int_equal(run(c, "UPDATE master_leader SET epoch = epoch + 1", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "55P03");
    assert_int_equal(run(old, "COMMIT", &err), 0);
    assert_int_equal(run(c, "UPDATE master_leader SET epoch = epoch + 1", &err), 0);
    /* and the old leader's next transaction is refused */
    assert_int_equal(run(old, "SELECT phx_master_fence(1)", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "PXL01");
    phx_db_conn_close(old);
    phx_db_conn_close(c);
}

static void test_watch(void **state)
{
    (void)state;
    char dsn[256];
    phx_db_conn_t *c = migrated_db(dsn, sizeof(dsn));
    phx_db_conn_t *other = connect_to(dsn);
    phx_error_t err = {{0}};
    assert_true(phx_db_conn_socket(c) >= 0);
    assert_int_equal(phx_db_conn_check(c, &err), 0);
    /* pings: sent, answered, the answer dropped; the connection still
     * takes queries */
    assert_int_equal(phx_db_conn_ping(c, 0, &err), 0);
    assert_int_equal(phx_db_conn_ping(c, 0, &err), 0); /* still on its way: no-op */
    usleep(200 * 1000);
    assert_int_equal(phx_db_conn_check(c, &err), 0);
    phx_db_result_t *res = NULL;
    assert_int_equal(phx_db_query(c, "SELECT pg_backend_pid()", 0, NULL, &res, &err),
                     0);
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", phx_db_result_get(res, 0, 0));
    phx_db_result_destroy(res);
    /* the server ends the session: the next check says so */
    const char *p[] = {pid};
    assert_int_equal(phx_db_query(other, "SELECT pg_terminate_backend($1::integer)", 1,
                                  p, NULL, &err),
                     0);
    usleep(200 * 1000);
    assert_int_equal(phx_db_conn_check(c, &err), -1);
    assert_non_null(strstr(err.text, "database connection lost"));
    phx_db_conn_close(other);
    phx_db_conn_close(c);
}

static void test_batchd_fence(void **state)
{
    (void)state;
    char dsn[256], st[6];
    phx_db_conn_t *c = migrated_db(dsn, sizeof(dsn));
    phx_error_t err = {{0}};
    assert_int_equal(run(c, "SELECT phx_batchd_fence(0)", &err), 0);
    assert_int_equal(run(c, "UPDATE batchd_leader SET epoch = epoch + 1", &err), 0);
    assert_int_equal(run(c, "SELECT phx_batchd_fence(0)", &err), -1);
    assert_true(phx_db_error_sqlstate(&err, st));
    assert_string_equal(st, "PXL02");
    assert_non_null(strstr(err.text, "batchd epoch 0 is not the current one (1)"));
    assert_int_equal(run(c, "SELECT phx_batchd_fence(1)", &err), 0);
    /* the masters' epoch is another one */
    assert_int_equal(run(c, "SELECT phx_master_fence(0)", &err), 0);
    assert_int_equal(run(c, "INSERT INTO batchd_leader (id) VALUES (2)", &err), -1);
    phx_db_conn_close(c);
}

typedef struct candidate {
    phx_db_leader_t *l;
    int led;
    int64_t epoch;
} candidate_t;

static int cand_lead(phx_db_leader_t *l, void *arg, phx_error_t *err)
{
    (void)err;
    candidate_t *c = arg;
    c->led++;
    c->epoch = phx_db_leader_epoch(l);
    return 0;
}

static void cand_deposed(const char *why, void *arg)
{
    (void)arg;
    fail_msg("deposed: %s", why);
}

static void cand_failed(const phx_error_t *err, void *arg)
{
    (void)arg;
    fail_msg("could not lead: %s", err->text);
}

static phx_db_leader_t *candidate(struct event_base *base, const char *dsn,
                                  const char *addr, candidate_t *c)
{
    phx_db_leader_opts_t o = {
        .dsn = dsn,
        .lock_key = "31640063647511652",
        .table = "batchd_leader",
        .fence_fn = "phx_batchd_fence",
        .deposed_sqlstate = "PXL02",
        .naddrs = 1,
        .addr_cols = {"http_address"},
        .addr_labels = {"users on"},
        .addrs = {addr},
        .standby_poll = 0.1,
        .lease = 5,
        .lead = cand_lead,
        .deposed = cand_deposed,
        .failed = cand_failed,
        .arg = c,
    };
    phx_error_t err = {{0}};
    c->l = phx_db_leader_create(base, &o, &err);
    if (!c->l)
        fail_msg("create: %s", err.text);
    if (phx_db_leader_elect(c->l, &err) < 0)
        fail_msg("elect: %s", err.text);
    return c->l;
}

/* Two candidates on one database: the first leads (epoch 1, its address
 * recorded), the second stands by naming it; the first gone, the second
 * leads with epoch 2 at its next poll. */
static void test_election(void **state)
{
    (void)state;
    char dsn[256];
    phx_db_conn_t *c = migrated_db(dsn, sizeof(dsn));
    struct event_base *base = event_base_new();
    assert_non_null(base);
    candidate_t a = {0}, b = {0};
    candidate(base, dsn, "10.0.0.1:6060", &a);
    assert_int_equal(a.led, 1);
    assert_int_equal(a.epoch, 1);
    assert_false(phx_db_leader_standby(a.l));
    candidate(base, dsn, "10.0.0.2:6060", &b);
    assert_int_equal(b.led, 0);
    assert_true(phx_db_leader_standby(b.l));
    assert_string_equal(phx_db_leader_addr(b.l, 0), "10.0.0.1:6060");
    assert_string_equal(phx_db_leader_addr(b.l, 1), ""); /* out of range */
    /* a fenced query of the leader commits */
    phx_error_t err = {{0}};
    assert_int_equal(
        phx_db_leader_fenced_query(a.l, c, "SELECT 1", 0, NULL, NULL, &err), 0);
    /* polls while a leads change nothing */
    struct timeval tv = {0, 300 * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(b.led, 0);
    phx_db_leader_destroy(a.l);
    for (int i = 0; i < 50 && !b.led; i++) {
        struct timeval t = {0, 100 * 1000};
        event_base_loopexit(base, &t);
        event_base_dispatch(base);
    }
    assert_int_equal(b.led, 1);
    assert_int_equal(b.epoch, 2);
    assert_false(phx_db_leader_standby(b.l));
    phx_db_result_t *res = NULL;
    assert_int_equal(phx_db_query(c, "SELECT epoch, http_address FROM batchd_leader", 0,
                                  NULL, &res, &err),
                     0);
    assert_string_equal(phx_db_result_get(res, 0, 0), "2");
    assert_string_equal(phx_db_result_get(res, 0, 1), "10.0.0.2:6060");
    phx_db_result_destroy(res);
    phx_db_leader_destroy(b.l);
    event_base_free(base);
    phx_db_conn_close(c);
}

PHX_TEST_PG_GROUP_FIXTURES(pg)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fence),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_batchd_fence),
        cmocka_unit_test(test_election),
    };
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
