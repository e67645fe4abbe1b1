/* The agent's launch authentication (daemons/agent/launch_auth.c, compiled
 * in): the session key of REGISTERED, sealed by munge for our uid, then
 * LAUNCH frames signed with it.  A private munged; no agent runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemons/agent/launch_auth.c"
#include "tests/unit/support/mungetest.h"

static phx_test_munged_t munged;
static phx_munge_t *munge;
static phx_agentd_t A;
static uid_t master_uid;
static unsigned char key[PHX_MAC_KEY_LEN];

static int setup(void **state)
{
    (void)state;
    if (phx_test_munged_start(&munged) < 0 ||
        !(munge = phx_munge_create(munged.socket, NULL)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    phx_munge_destroy(munge);
    phx_test_munged_stop(&munged);
    return 0;
}

/* Before each test: an agent "n01" whose connection's nonce is "0123abcd",
 * trusting our uid as the master's, no key yet; a fresh key to give it. */
static int reset(void **state)
{
    (void)state;
    phx_launch_auth_forget(&A);
    memset(&A, 0, sizeof(A));
    A.munge = munge;
    A.name = "n01";
    snprintf(A.nonce, sizeof(A.nonce), "0123abcd");
    master_uid = getuid();
    A.master_uids = &master_uid;
    A.nmaster_uids = 1;
    assert_int_equal(phx_mac_random(key, sizeof(key)), 0);
    return 0;
}

static char *session_cred(const char *name, const char *nonce, uid_t for_uid,
                          bool sealed)
{
    char hex[PHX_MAC_HEX_LEN + 1], payload[512], *cred = NULL;
    phx_error_t err;
    phx_mac_to_hex(key, sizeof(key), hex);
    snprintf(payload, sizeof(payload), "phx-session %s %s %s", name, nonce, hex);
    int rc = sealed ? phx_munge_encode_for(munge, payload, strlen(payload), 0, for_uid,
                                           &cred, &err)
                    : phx_munge_encode(munge, payload, strlen(payload), 0, &cred, &err);
    if (rc < 0)
        fail_msg("%s", err.text);
    return cred;
}

static void give_key(void)
{
    char *cred = session_cred("n01", "0123abcd", geteuid(), true);
    phx_error_t err;
    if (phx_launch_auth_session(&A, cred, &err) < 0)
        fail_msg("%s", err.text);
    free(cred);
    assert_non_null(A.session);
}

static json_t *task_new(const char *id)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:[s,s], s:s}", "task_id", id,
                     "framework_id", "fw-1", "user", "phxtest", "uid", 4242, "argv",
                     "/bin/true", "x", "cores", "0-1");
}

/* A LAUNCH header for task, signed with k (NULL: the session key) over
 * signed_task (NULL: task), sequence number seq. */
static json_t *launch_hdr(json_t *task, const unsigned char *k, json_t *signed_task,
                          uint64_t seq)
{
    phx_mac_t *m = phx_mac_create(k ? k : key, PHX_MAC_KEY_LEN, NULL);
    char *text =
        json_dumps(signed_task ? signed_task : task, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char mac[PHX_MAC_LEN];
    char hex[PHX_MAC_HEX_LEN + 1];
    assert_int_equal(phx_mac_compute_seq(m, "phx-launch", seq, text, strlen(text), mac),
                     0);
    phx_mac_to_hex(mac, sizeof(mac), hex);
    free(text);
    phx_mac_destroy(m);
    return json_pack("{s:s, s:O, s:I, s:s}", "type", "LAUNCH", "task", task, "seq",
                     (json_int_t)seq, "mac", hex);
}

/* Check hdr; NULL when accepted, else the refusal's text (static). */
static const char *check(json_t *hdr)
{
    static phx_error_t err;
    int rc = phx_launch_auth_check(&A, json_object_get(hdr, "task"), hdr, &err);
    json_decref(hdr);
    return rc == 0 ? NULL : err.text;
}

static void assert_refused(const char *text, const char *needle)
{
    if (!text)
        fail_msg("accepted; expected a refusal with \"%s\"", needle);
    if (!strstr(text, needle))
        fail_msg("refusal \"%s\" lacks \"%s\"", text, needle);
}

static void test_good_launches(void **state)
{
    (void)state;
    give_key();
    json_t *t = task_new("t0");
    assert_null(check(launch_hdr(t, NULL, NULL, 1)));
    assert_null(check(launch_hdr(t, NULL, NULL, 2)));
    assert_null(check(launch_hdr(t, NULL, NULL, 10))); /* gaps are fine */
    assert_int_equal(A.launch_seq, 10);
    /* The agent checks its own canonical dump: the order of the members the
     * frame came with does not matter. */
    json_t *reordered = json_pack("{s:s, s:s, s:i, s:s, s:[s,s], s:s}", "cores", "0-1",
                                  "user", "phxtest", "uid", 4242, "framework_id",
                                  "fw-1", "argv", "/bin/true", "x", "task_id", "t0");
    assert_null(check(launch_hdr(reordered, NULL, t, 11)));
    json_decref(reordered);
    json_decref(t);
}

static void test_bad_launches(void **state)
{
    (void)state;
    json_t *t = task_new("t1");
    /* Before any key. */
    assert_refused(check(launch_hdr(t, NULL, NULL, 1)), "no session key");
    give_key();
    assert_null(check(launch_hdr(t, NULL, NULL, 5)));

    /* Replayed, or an older number. */
    assert_refused(check(launch_hdr(t, NULL, NULL, 5)), "is not above 5");
    assert_refused(check(launch_hdr(t, NULL, NULL, 4)), "is not above 5");

    /* The task changed after signing: its user, one character of it. */
    json_t *changed = json_deep_copy(t);
    json_object_set_new(changed, "uid", json_integer(0));
    assert_refused(check(launch_hdr(changed, NULL, t, 6)), "launch signature refused");
    json_object_set_new(changed, "uid", json_integer(4242));
    json_object_set_new(changed, "cores", json_string("0-2"));
    assert_refused(check(launch_hdr(changed, NULL, t, 6)), "launch signature refused");
    json_decref(changed);

    /* Another key (a forger's, or the previous connection's). */
    unsigned char other[PHX_MAC_KEY_LEN];
    memcpy(other, key, sizeof(other));
    other[0] ^= 1;
    assert_refused(check(launch_hdr(t, other, NULL, 6)), "launch signature refused");

    /* A sequence number changed after signing. */
    json_t *h = launch_hdr(t, NULL, NULL, 6);
    json_object_set_new(h, "seq", json_integer(7));
    assert_refused(check(h), "launch signature refused");

    /* Missing or malformed fields. */
    h = launch_hdr(t, NULL, NULL, 6);
    json_object_del(h, "mac");
    assert_refused(check(h), "not signed");
    h = launch_hdr(t, NULL, NULL, 6);
    json_object_del(h, "seq");
    assert_refused(check(h), "no sequence number");
    h = launch_hdr(t, NULL, NULL, 6);
    json_object_set_new(h, "seq", json_string("6"));
    assert_refused(check(h), "no sequence number");
    h = launch_hdr(t, NULL, NULL, 6);
    json_object_set_new(h, "mac", json_string("00ff"));
    assert_refused(check(h), "malformed");
    h = json_pack("{s:s, s:O, s:s}", "type", "LAUNCH", "task", t, "cred", "MUNGE:x:");
    assert_refused(check(h), "not signed");

    /* None of the refusals moved the last number accepted. */
    assert_int_equal(A.launch_seq, 5);
    assert_null(check(launch_hdr(t, NULL, NULL, 6)));

    /* The connection went: the key with it. */
    phx_launch_auth_forget(&A);
    assert_null(A.session);
    assert_refused(check(launch_hdr(t, NULL, NULL, 7)), "no session key");
    json_decref(t);
}

static void session_refused(char *cred, const char *needle)
{
    phx_error_t err;
    assert_int_equal(phx_launch_auth_session(&A, cred, &err), -1);
    if (!strstr(err.text, needle))
        fail_msg("refusal \"%s\" lacks \"%s\"", err.text, needle);
    assert_null(A.session);
    free(cred);
}

static void test_bad_sessions(void **state)
{
    (void)state;
    /* Bound to another node, another connection. */
    session_refused(session_cred("n02", "0123abcd", geteuid(), true), "not bound");
    session_refused(session_cred("n01", "0123abce", geteuid(), true), "not bound");
    /* Readable by anyone of the realm, or meant for another uid. */
    session_refused(session_cred("n01", "0123abcd", geteuid(), false), "not sealed");
    session_refused(session_cred("n01", "0123abcd", geteuid() + 4242, true),
                    "restricted to another user");
    /* Made by a uid that is not in agent.master_users. */
    master_uid = getuid() + 1;
    session_refused(session_cred("n01", "0123abcd", geteuid(), true), "not allowed");
    master_uid = getuid();
    /* Missing, garbage, replayed. */
    phx_error_t err;
    assert_int_equal(phx_launch_auth_session(&A, NULL, &err), -1);
    assert_non_null(strstr(err.text, "no session key"));
    session_refused(strdup("MUNGE:garbage:"), "session key refused");
    char *cred = session_cred("n01", "0123abcd", geteuid(), true);
    assert_int_equal(phx_launch_auth_session(&A, cred, &err), 0);
    session_refused(cred, "replayed");

    /* A refused session leaves no key behind, even after a good one. */
    give_key();
    session_refused(session_cred("n02", "0123abcd", geteuid(), true), "not bound");
    json_t *t = task_new("t2");
    assert_refused(check(launch_hdr(t, NULL, NULL, 1)), "no session key");
    json_decref(t);
}

/* A new session (a new connection) starts its numbers again. */
static void test_new_session_new_numbers(void **state)
{
    (void)state;
    give_key();
    json_t *t = task_new("t3");
    assert_null(check(launch_hdr(t, NULL, NULL, 100)));
    unsigned char old[PHX_MAC_KEY_LEN];
    memcpy(old, key, sizeof(old));
    snprintf(A.nonce, sizeof(A.nonce), "4567cdef");
    assert_int_equal(phx_mac_random(key, sizeof(key)), 0);
    char *cred = session_cred("n01", "4567cdef", geteuid(), true);
    phx_error_t err;
    assert_int_equal(phx_launch_auth_session(&A, cred, &err), 0);
    free(cred);
    assert_null(check(launch_hdr(t, NULL, NULL, 1)));
    /* The old connection's frames are nothing now. */
    assert_refused(check(launch_hdr(t, old, NULL, 101)), "launch signature refused");
    json_decref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_launches, reset, reset),
        cmocka_unit_test_setup_teardown(test_bad_launches, reset, reset),
        cmocka_unit_test_setup_teardown(test_bad_sessions, reset, reset),
        cmocka_unit_test_setup_teardown(test_new_session_new_numbers, reset, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
