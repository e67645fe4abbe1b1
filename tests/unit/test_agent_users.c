/* The agent's cache of user lookups (daemons/agent/users.c): an entry is
 * reused for ttl seconds and looked up again after, per (name, gid); an
 * unknown user is never cached; a ttl of 0 looks up every time.  A fake
 * lookup counts the calls; one test asks nss for root. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/agent/users.c"

typedef struct fake {
    int calls;
    uid_t uid;       /* what the "passwd file" says now */
    int ngroups;     /* supplementary groups besides gid */
    const char *dir; /* home */
    bool exists;
} fake_t;

static int fake_lookup(const char *name, gid_t gid, phx_user_t *out, void *arg)
{
    fake_t *f = arg;
    f->calls++;
    memset(out, 0, sizeof(*out));
    if (!f->exists) {
        errno = ENOENT;
        return -1;
    }
    out->name = strdup(name);
    out->dir = strdup(f->dir);
    out->shell = strdup("/bin/sh");
    out->uid = f->uid;
    out->gid = gid;
    out->ngroups = 1 + f->ngroups;
    out->groups = calloc((size_t)out->ngroups, sizeof(gid_t));
    out->groups[0] = gid;
    for (int i = 1; i < out->ngroups; i++)
        out->groups[i] = (gid_t)(1000 + i);
    return 0;
}

static void test_reused_within_ttl_then_looked_up_again(void **state)
{
    (void)state;
    fake_t f = {.uid = 1001, .ngroups = 1, .dir = "/home/a", .exists = true};
    phx_users_t *u = phx_users_create(60, fake_lookup, &f);
    assert_non_null(u);
    const phx_user_t *p = phx_users_get(u, "alice", 100, 1000.0);
    assert_non_null(p);
    assert_int_equal(f.calls, 1);
    assert_int_equal(p->uid, 1001);
    assert_int_equal(p->ngroups, 2);
    assert_string_equal(p->dir, "/home/a");
    /* The admin adds a group and moves the home: not seen within the ttl. */
    f.ngroups = 2;
    f.dir = "/home/b";
    p = phx_users_get(u, "alice", 100, 1059.9);
    assert_int_equal(f.calls, 1);
    assert_int_equal(p->ngroups, 2);
    /* ... seen once the ttl is over. */
    p = phx_users_get(u, "alice", 100, 1060.0);
    assert_int_equal(f.calls, 2);
    assert_int_equal(p->ngroups, 3);
    assert_string_equal(p->dir, "/home/b");
    /* and kept from then on */
    p = phx_users_get(u, "alice", 100, 1100.0);
    assert_int_equal(f.calls, 2);
    /* A clock that went back (it is monotonic, but) is no reason to trust. */
    p = phx_users_get(u, "alice", 100, 900.0);
    assert_int_equal(f.calls, 3);
    phx_users_destroy(u);
}

/* The group list depends on the primary gid the master gave. */
static void test_keyed_by_name_and_gid(void **state)
{
    (void)state;
    fake_t f = {.uid = 1001, .dir = "/home/a", .exists = true};
    phx_users_t *u = phx_users_create(60, fake_lookup, &f);
    const phx_user_t *p = phx_users_get(u, "alice", 100, 1.0);
    assert_int_equal(p->groups[0], 100);
    p = phx_users_get(u, "alice", 200, 1.0);
    assert_int_equal(f.calls, 2);
    assert_int_equal(p->groups[0], 200);
    p = phx_users_get(u, "bob", 100, 1.0);
    assert_int_equal(f.calls, 3);
    assert_string_equal(p->name, "bob");
    p = phx_users_get(u, "alice", 100, 2.0);
    assert_int_equal(f.calls, 3);
    assert_string_equal(p->name, "alice");
    phx_users_destroy(u);
}

/* A user created after a failed launch may run the next one at once. */
static void test_unknown_user_not_cached(void **state)
{
    (void)state;
    fake_t f = {.uid = 1001, .dir = "/home/a", .exists = false};
    phx_users_t *u = phx_users_create(60, fake_lookup, &f);
    errno = 0;
    assert_null(phx_users_get(u, "carol", 100, 1.0));
    assert_int_equal(errno, ENOENT);
    f.exists = true;
    assert_non_null(phx_users_get(u, "carol", 100, 1.5));
    assert_int_equal(f.calls, 2);
    phx_users_destroy(u);
}

static void test_ttl_zero_looks_up_every_time(void **state)
{
    (void)state;
    fake_t f = {.uid = 1001, .dir = "/home/a", .exists = true};
    phx_users_t *u = phx_users_create(0, fake_lookup, &f);
    for (int i = 0; i < 3; i++)
        assert_non_null(phx_users_get(u, "alice", 100, 5.0));
    assert_int_equal(f.calls, 3);
    phx_users_destroy(u);
}

/* Many users: the oldest entries go, the cache stays bounded. */
static void test_bounded(void **state)
{
    (void)state;
    fake_t f = {.uid = 1001, .dir = "/home/a", .exists = true};
    phx_users_t *u = phx_users_create(60, fake_lookup, &f);
    char name[32];
    for (int i = 0; i < USERS_MAX + 10; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        assert_non_null(phx_users_get(u, name, 100, 1.0));
    }
    assert_int_equal(u->n, USERS_MAX);
    assert_non_null(phx_users_get(u, "u0", 100, 1.0)); /* evicted: again */
    assert_int_equal(f.calls, USERS_MAX + 11);
    snprintf(name, sizeof(name), "u%d", USERS_MAX + 9);
    assert_non_null(phx_users_get(u, name, 100, 1.0)); /* recent: kept */
    assert_int_equal(f.calls, USERS_MAX + 11);
    phx_users_destroy(u);
}

/* The real lookup: root, with its group list for gid 0. */
static void test_nss_root(void **state)
{
    (void)state;
    phx_users_t *u = phx_users_create(60, NULL, NULL);
    const phx_user_t *p = phx_users_get(u, "root", 0, phx_users_now());
    assert_non_null(p);
    assert_int_equal(p->uid, 0);
    assert_true(p->ngroups >= 1);
    assert_int_equal(p->groups[0], 0);
    assert_non_null(p->dir);
    errno = 0;
    assert_null(phx_users_get(u, "no-such-user-phx", 0, phx_users_now()));
    assert_int_equal(errno, ENOENT);
    phx_users_destroy(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_within_ttl_then_looked_up_again),
        cmocka_unit_test(test_keyed_by_name_and_gid),
        cmocka_unit_test(test_unknown_user_not_cached),
        cmocka_unit_test(test_ttl_zero_looks_up_every_time),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_nss_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
