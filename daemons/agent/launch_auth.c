/* phx-agent: a LAUNCH runs only if it is signed with the session key the
 * master gave this connection (doc/agent.md, "Launch authentication").
 *
 * The key comes in REGISTERED, in a munge credential that must be made by a
 * uid of agent.master_users, be restricted to our uid and encrypted, and
 * carry "phx-session <our name> <this connection's nonce> <key, hex>".  A
 * LAUNCH then carries "seq" and "mac": HMAC-SHA256 under the key of
 * "phx-launch <seq>\n" and our own canonical dump of the task received
 * (json_dumps with JSON_COMPACT | JSON_SORT_KEYS, as the master made it);
 * seq must be above that of the last LAUNCH accepted on this connection.
 * The key lives in memory only and is wiped when the connection goes. */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemons/agent/task.h"
#include "lib/daemon.h"

#define SESSION_MAX_AGE 60 /* seconds: REGISTERED follows REGISTER at once */

int phx_launch_auth_init(phx_agentd_t *a, phx_error_t *err)
{
    const char *key = "agent.master_users";
    if (phx_conf_list_len(a->conf, key) == 0)
        return phx_error_set(err, "%s: must name at least one user", key);
    return phx_daemon_uid_list(a->conf, key, &a->master_uids, &a->nmaster_uids, err);
}

void phx_launch_auth_forget(phx_agentd_t *a)
{
    phx_mac_destroy(a->session);
    a->session = NULL;
    a->launch_seq = 0;
    a->seal_sent = a->seal_received = 0;
}

int phx_launch_auth_session(phx_agentd_t *a, const char *cred, phx_error_t *err)
{
    phx_launch_auth_forget(a);
    if (!cred || !*cred)
        return phx_error_set(err, "REGISTERED carries no session key (\"session\")");
    phx_munge_policy_t policy = {
        .uids = a->master_uids,
        .nuids = a->nmaster_uids,
        .max_age = SESSION_MAX_AGE,
    };
    phx_munge_cred_t mc;
    phx_error_t e;
    if (phx_munge_decode(a->munge, cred, &policy, time(NULL), &mc, &e) < 0)
        return phx_error_set(err, "session key refused: %s", e.text);
    char prefix[512];
    int n = snprintf(prefix, sizeof(prefix), "phx-session %s %s ", a->name, a->nonce);
    unsigned char key[PHX_MAC_KEY_LEN];
    int rc = -1;
    if (mc.restricted_to != geteuid() || !mc.encrypted)
        phx_error_set(err, "session key refused: its credential is not sealed for "
                           "our uid (restricted, encrypted)");
    else if (n < 0 || (size_t)n >= sizeof(prefix) ||
             mc.len != (size_t)n + PHX_MAC_HEX_LEN ||
             memcmp(mc.payload, prefix, (size_t)n) != 0)
        phx_error_set(err,
                      "session key refused: not bound to this node and connection");
    else if (phx_mac_from_hex((const char *)mc.payload + n, key, sizeof(key)) < 0)
        phx_error_set(err, "session key refused: malformed");
    else if (!(a->session = phx_mac_create(key, sizeof(key), &e)))
        phx_error_set(err, "session key refused: %s", e.text);
    else
        rc = 0;
    phx_mac_wipe(key, sizeof(key));
    phx_munge_cred_clear(&mc); /* wipes the payload */
    return rc;
}

int phx_launch_auth_check(phx_agentd_t *a, const json_t *task, const json_t *hdr,
                          phx_error_t *err)
{
    if (!a->session)
        return phx_error_set(err, "no session key with the master yet");
    const char *mac_hex = json_string_value(json_object_get(hdr, "mac"));
    json_t *jseq = json_object_get(hdr, "seq");
    if (!mac_hex)
        return phx_error_set(err, "launch is not signed (no \"mac\")");
    if (!json_is_integer(jseq) || json_integer_value(jseq) < 1)
        return phx_error_set(err, "launch has no sequence number (\"seq\" >= 1)");
    uint64_t seq = (uint64_t)json_integer_value(jseq);
    unsigned char mac[PHX_MAC_LEN];
    if (phx_mac_from_hex(mac_hex, mac, sizeof(mac)) < 0)
        return phx_error_set(err, "launch signature malformed (\"mac\": %d hex digits)",
                             PHX_MAC_HEX_LEN);
    char *text = json_dumps(task, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return phx_error_set(err, "out of memory");
    bool ok =
        phx_mac_verify_seq(a->session, "phx-launch", seq, text, strlen(text), mac);
    free(text);
    if (!ok)
        return phx_error_set(err, "launch signature refused (another key, or the task "
                                  "or its sequence number changed)");
    if (seq <= a->launch_seq)
        return phx_error_set(err,
                             "launch refused: sequence number %llu is not above %llu, "
                             "the last accepted (a replay)",
                             (unsigned long long)seq,
                             (unsigned long long)a->launch_seq);
    a->launch_seq = seq;
    return 0;
}
