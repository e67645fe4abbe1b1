/* REGISTER: the first frame of every agent connection.
 *
 *   {"type":"REGISTER", "name":"n01", "nonce":"<hex>", "cred":"MUNGE:...",
 *    "topology":{...}, "version":"0.1.0", "features":["signal"]}
 *
 * The munge credential must come from a trusted uid and its payload must be
 * "phx-register <name> <nonce>"; munged refuses a replayed credential.  The
 * agent row is upserted (a known name keeps its id), then REGISTERED goes
 * back with the id, the heartbeat interval and the connection's launch
 * session: a fresh random key in a munge credential only the agent's uid
 * may decode, over "phx-session <name> <nonce> <key, hex>" (doc/agent.md,
 * "Launch authentication").  Every later frame, both ways, is sealed with
 * that key (agent_conn.c, "Channel authentication"). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "lib/json.h"
#include "lib/log.h"

#define NAME_MAX_LEN 63
#define CRED_MAX_AGE 60

typedef struct reg_op {
    phx_master_t *m;
    phx_master_conn_t *conn;
    char *name;
    char *nonce;
    uid_t uid; /* the agent's, from its credential: the session's is for it */
    phx_topo_t *topo;
    json_t *tasks; /* what the agent says it runs */
    bool can_signal;
    bool signal_done;
} reg_op_t;

/* "features": frames the agent knows beyond the first version's (an older
 * agent sends none; the master then refuses what it would ignore).  At
 * most 32 names of at most 32 characters; others are not ours. */
static bool has_feature(const json_t *hdr, const char *name)
{
    json_t *f = json_object_get(hdr, "features"), *e;
    size_t i;
    if (!json_is_array(f) || json_array_size(f) > 32)
        return false;
    json_array_foreach(f, i, e)
    {
        const char *v = json_string_value(e);
        if (v && strlen(v) <= 32 && strcmp(v, name) == 0)
            return true;
    }
    return false;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static void refuse(phx_master_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refuse(phx_master_conn_t *c, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    phx_log_warnx("registration from %s refused: %s", phx_master_conn_peer(c), why);
    phx_master_conn_send(c, json_pack("{s:s, s:s}", "type", "ERROR", "message", why),
                         NULL, 0);
    phx_master_conn_close(c, "registration refused");
}

static void reg_op_free(reg_op_t *op)
{
    free(op->name);
    free(op->nonce);
    phx_topo_destroy(op->topo);
    json_decref(op->tasks);
    free(op);
}

static bool same_topology(const phx_topo_t *a, const phx_topo_t *b)
{
    if (!a || !b)
        return false;
    json_t *ja = phx_topo_to_json(a), *jb = phx_topo_to_json(b);
    bool same = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}

/* A new or changed node: a new free tracker.  Tasks on the old shape are
 * lost (the allocator forgets the agent and its usage). */
static int replace_topology(phx_master_t *m, phx_master_agent_t *a, reg_op_t *op)
{
    phx_topo_free_t *fr = phx_topo_free_create(op->topo);
    if (!fr)
        return -1;
    if (a->in_alloc) {
        phx_log_warnx("agent \"%s\" registered with a different topology", a->name);
        phx_tasks_agent_lost(m, a);
        size_t pos = 0;
        void *v;
        while (phx_hmap_next(m->offers, &pos, NULL, &v))
            if (((phx_offer_t *)v)->agent == a)
                phx_offer_drop(m, v, true);
        phx_alloc_agent_remove(m->alloc, a->id);
        a->in_alloc = false;
    }
    phx_topo_free_destroy(a->free);
    phx_topo_destroy(a->topo);
    a->topo = op->topo;
    a->free = fr;
    op->topo = NULL;
    return 0;
}

/* The connection's new launch key, in a credential for the agent's uid;
 * NULL (logged) on a failure.  The key's text is wiped here. */
static char *session_cred(phx_master_t *m, phx_master_conn_t *c, const reg_op_t *op)
{
    char key[PHX_MAC_HEX_LEN + 1], payload[PHX_MAC_HEX_LEN + 256];
    char *cred = NULL;
    phx_error_t err;
    if (phx_master_conn_new_session(c, key) < 0) {
        phx_log_err("agent \"%s\": could not make a session key", op->name);
        return NULL;
    }
    int n = snprintf(payload, sizeof(payload), "phx-session %s %s %s", op->name,
                     op->nonce, key);
    phx_mac_wipe(key, sizeof(key));
    if (n < 0 || (size_t)n >= sizeof(payload) ||
        phx_munge_encode_for(m->munge, payload, (size_t)n, 0, op->uid, &cred, &err) <
            0) {
        phx_log_errx("agent \"%s\": could not seal its session key: %s", op->name,
                     n < 0 || (size_t)n >= sizeof(payload) ? "name too long"
                                                           : err.text);
        cred = NULL;
    }
    phx_mac_wipe(payload, sizeof(payload));
    return cred;
}

static void registered(const phx_error_t *err, phx_db_result_t *const *res, int nres,
                       void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    reg_op_t *op = arg;
    phx_master_t *m = op->m;
    phx_master_conn_t *c = op->conn;
    phx_master_conn_set_registering(c, false);
    if (err || nres < 1 || phx_db_result_rows(res[0]) != 1) {
        phx_log_errx("could not record agent \"%s\": %s", op->name,
                     err ? err->text : "no row returned");
        if (!phx_master_conn_closed(c))
            refuse(c, "could not record the registration; try again");
        goto out;
    }
    phx_master_agent_t *a = phx_master_agent_find(m, op->name);
    if (!a && !(a = phx_master_agent_add(m, op->name))) {
        phx_log_err("could not add agent \"%s\"", op->name);
        if (!phx_master_conn_closed(c))
            refuse(c, "master out of memory");
        goto out;
    }
    if (phx_master_agent_set_id(
            m, a, strtoll(phx_db_result_get(res[0], 0, 0), NULL, 10)) < 0) {
        if (!phx_master_conn_closed(c))
            refuse(c, "master out of memory");
        goto out;
    }
    a->drained = strcmp(phx_db_result_get(res[0], 0, 1), "t") == 0;
    free(a->drain_reason);
    a->drain_reason = phx_db_result_isnull(res[0], 0, 2)
                          ? NULL
                          : strdup(phx_db_result_get(res[0], 0, 2));
    free(a->address);
    a->address = strdup(phx_master_conn_peer(c));
    if (!same_topology(a->topo, op->topo) && replace_topology(m, a, op) < 0) {
        if (!phx_master_conn_closed(c))
            refuse(c, "master out of memory");
        goto out;
    }
    a->last_seen = phx_master_now();
    a->registered_at = phx_master_wall();
    a->can_signal = op->can_signal;
    a->signal_done = op->signal_done;
    if (phx_master_conn_closed(c)) {
        /* It went away while we were writing: it has the grace period. */
        a->state = PHX_AGENT_UP;
        phx_master_agent_set_state(m, a, PHX_AGENT_UNREACHABLE,
                                   "disconnected during registration");
        goto out;
    }
    /* Before the agent is attached: no LAUNCH goes out without a key. */
    char *session = session_cred(m, c, op);
    if (!session) {
        a->state = PHX_AGENT_UP;
        phx_master_agent_set_state(m, a, PHX_AGENT_UNREACHABLE,
                                   "could not make its session key");
        refuse(c, "master could not make a session key; try again");
        goto out;
    }
    a->state = PHX_AGENT_UP;
    a->state_changed_at = a->registered_at;
    phx_master_conn_attach(c, a);
    phx_master_agent_sync_alloc(m, a);
    phx_log_notice(
        "agent \"%s\" registered from %s as id %lld: %d sockets, %d NUMA, %d "
        "cores, %llu MiB",
        a->name, a->address, (long long)a->id, phx_topo_nsockets(a->topo),
        phx_topo_nnumas(a->topo), phx_topo_ncores(a->topo),
        (unsigned long long)(phx_topo_memory(a->topo) >> 20));
    int sent = phx_master_conn_send(
        c,
        json_pack("{s:s, s:I, s:f, s:i, s:s}", "type", "REGISTERED", "agent_id",
                  (json_int_t)a->id, "heartbeat_interval", m->heartbeat_interval,
                  "heartbeat_missed", m->heartbeat_missed, "session", session),
        NULL, 0);
    free(session);
    if (sent < 0) { /* the agent has no key: nothing after it could reach it */
        phx_master_conn_close(c, "could not send REGISTERED");
        goto out;
    }
    /* Every frame after REGISTERED, either way, is sealed with the key. */
    phx_master_conn_start_sealing(c);
    phx_tasks_reconcile_agent(m, a, op->tasks);
out:
    phx_master_conn_release(c);
    reg_op_free(op);
}

static const char upsert_sql[] =
    "INSERT INTO agents (name, address, state, topology, sockets, numas, cores, pus, "
    "memory_bytes) VALUES ($1, $2, 'up', $3::jsonb, $4, $5, $6, $7, $8) "
    "ON CONFLICT (name) DO UPDATE SET address = EXCLUDED.address, state = 'up', "
    "topology = EXCLUDED.topology, sockets = EXCLUDED.sockets, numas = EXCLUDED.numas, "
    "cores = EXCLUDED.cores, pus = EXCLUDED.pus, memory_bytes = EXCLUDED.memory_bytes, "
    "registered_at = now(), last_seen = now(), state_changed_at = now() "
    "RETURNING id, drained, drain_reason";

void phx_master_register(phx_master_conn_t *c, phx_master_t *m, const json_t *hdr)
{
    phx_error_t err;
    const char *name = NULL, *nonce = NULL, *cred = NULL;
    json_t *topo_json = NULL;
    if (phx_json_str(hdr, "name", true, &name, &err) < 0 ||
        phx_json_str(hdr, "nonce", true, &nonce, &err) < 0 ||
        phx_json_str(hdr, "cred", true, &cred, &err) < 0 ||
        phx_json_obj(hdr, "topology", true, &topo_json, &err) < 0) {
        refuse(c, "REGISTER: %s", err.text);
        return;
    }
    if (!valid_name(name)) {
        refuse(c, "REGISTER: agent name must be 1-%d characters of [A-Za-z0-9._-]",
               NAME_MAX_LEN);
        return;
    }
    size_t nlen = strlen(nonce);
    if (nlen < 8 || nlen > 128) {
        refuse(c, "REGISTER: nonce must be 8-128 characters");
        return;
    }
    char expect[256];
    snprintf(expect, sizeof(expect), "phx-register %s %s", name, nonce);
    phx_munge_policy_t policy = {
        .uids = m->agent_uids,
        .nuids = m->nagent_uids,
        .max_age = CRED_MAX_AGE,
        .expect = expect,
        .expect_len = strlen(expect),
    };
    phx_munge_cred_t mc;
    if (phx_munge_decode(m->munge, cred, &policy, phx_master_wall(), &mc, &err) < 0) {
        refuse(c, "agent \"%s\": %s", name, err.text);
        return;
    }
    uid_t agent_uid = mc.uid;
    phx_munge_cred_clear(&mc);

    phx_master_agent_t *a = phx_master_agent_find(m, name);
    if (a && a->conn) {
        refuse(c, "agent \"%s\" is already connected from %s", name,
               phx_master_conn_peer(a->conn));
        return;
    }
    phx_topo_t *topo = phx_topo_from_json(topo_json, &err);
    if (!topo) {
        refuse(c, "agent \"%s\": bad topology: %s", name, err.text);
        return;
    }
    reg_op_t *op = calloc(1, sizeof(*op));
    /* Store the canonical form, not the agent's text. */
    json_t *canon = phx_topo_to_json(topo);
    char *topo_text = canon ? json_dumps(canon, JSON_COMPACT) : NULL;
    json_decref(canon);
    if (!op || !(op->name = strdup(name)) || !(op->nonce = strdup(nonce)) ||
        !topo_text) {
        free(topo_text);
        if (op) {
            free(op->name);
            free(op->nonce);
        }
        free(op);
        phx_topo_destroy(topo);
        refuse(c, "master out of memory");
        return;
    }
    op->m = m;
    op->conn = c;
    op->uid = agent_uid;
    op->topo = topo;
    op->can_signal = has_feature(hdr, "signal");
    op->signal_done = has_feature(hdr, "signal_done");
    json_t *tasks = json_object_get(hdr, "tasks");
    op->tasks = json_is_array(tasks) ? json_incref(tasks) : json_array();
    char sockets[16], numas[16], cores[16], pus[16], mem[32];
    snprintf(sockets, sizeof(sockets), "%d", phx_topo_nsockets(topo));
    snprintf(numas, sizeof(numas), "%d", phx_topo_nnumas(topo));
    snprintf(cores, sizeof(cores), "%d", phx_topo_ncores(topo));
    snprintf(pus, sizeof(pus), "%d", phx_topo_npus(topo));
    snprintf(mem, sizeof(mem), "%llu", (unsigned long long)phx_topo_memory(topo));
    const char *params[] = {
        name, phx_master_conn_peer(c), topo_text, sockets, numas, cores, pus, mem};
    int rc = phx_db_store_write(m->store, upsert_sql, 8, params, registered, op, &err);
    free(topo_text);
    if (rc < 0) {
        reg_op_free(op);
        phx_log_errx("could not record agent \"%s\": %s", name, err.text);
        refuse(c, "master busy; try again");
        return;
    }
    phx_master_conn_hold(c);
    phx_master_conn_set_registering(c, true);
}
