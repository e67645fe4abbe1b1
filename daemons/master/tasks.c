/* Tasks in the master: status updates (from agents or made here), kills,
 * agent loss and reconciliation, forgetting acknowledged terminal tasks.
 * A task never reports two different terminal states. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/json.h"
#include "lib/log.h"

static const char *const states[] = {
    "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED", "TASK_FAILED",
    "TASK_KILLED",  "TASK_LOST",     "TASK_ERROR",   "TASK_DROPPED",
};

/* The static string for a state name, or NULL if it is not one. */
static const char *state_of(const char *name)
{
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(states[i], name) == 0)
            return states[i];
    return NULL;
}

bool phx_task_state_terminal(const char *s)
{
    return strcmp(s, "TASK_FINISHED") == 0 || strcmp(s, "TASK_FAILED") == 0 ||
           strcmp(s, "TASK_KILLED") == 0 || strcmp(s, "TASK_LOST") == 0 ||
           strcmp(s, "TASK_ERROR") == 0 || strcmp(s, "TASK_DROPPED") == 0;
}

phx_task_t *phx_task_find(phx_fw_t *fw, const char *id)
{
    return phx_hmap_get(fw->tasks, id);
}

json_t *phx_task_status_json(const phx_task_t *t, const char *state, const char *reason,
                             const char *message, const char *uuid)
{
    char agent_id[32];
    snprintf(agent_id, sizeof(agent_id), "%lld", (long long)t->agent->id);
    return json_pack("{s:{s:s}, s:s, s:s, s:{s:s}, s:f, s:s?, s:s?, s:s?}", "task_id",
                     "value", t->id, "state", state, "source", "SOURCE_MASTER",
                     "agent_id", "value", agent_id, "timestamp",
                     (double)phx_master_wall(), "reason", reason, "message", message,
                     "uuid", uuid);
}

void phx_task_free(phx_task_t *t)
{
    if (!t)
        return;
    phx_topo_grant_destroy(t->grant);
    json_decref(t->launch);
    free(t->canon);
    json_decref(t->pending);
    free(t->last_agent_uuid);
    free(t->id);
    free(t);
}

void phx_task_forget(phx_master_t *m, phx_task_t *t)
{
    phx_fw_t *fw = t->fw;
    phx_task_unindex(t);
    phx_gang_release(t->gang, t);
    phx_task_free(t);
    if (fw->removed && phx_hmap_count(fw->tasks) == 0)
        phx_fw_forget(m, fw);
}

static bool abnormal(const phx_task_t *t, const char *state)
{
    if (strcmp(state, "TASK_FINISHED") == 0)
        return false;
    if (strcmp(state, "TASK_KILLED") == 0 && t->killing)
        return false; /* its framework asked */
    return true;
}

/* A task's state, named by $1 (framework) and $2 (task). */
static const phx_db_rows_t task_state_rows = {
    .one = "UPDATE tasks SET state = $3, reason = $4, message = $5, "
           "exit_code = $6::integer, exit_signal = $7::integer, "
           "user_cpu_s = $8::float8, system_cpu_s = $9::float8, "
           "max_rss_bytes = $10::bigint, started_at = CASE WHEN $3 = 'TASK_RUNNING' "
           "THEN coalesce(started_at, now()) ELSE started_at END, "
           "ended_at = CASE WHEN $11::boolean THEN now() END "
           "WHERE framework_id = $1 AND task_id = $2",
    .many = "UPDATE tasks SET state = u.state, reason = u.reason, message = u.message, "
            "exit_code = u.ec, exit_signal = u.es, user_cpu_s = u.ucpu, "
            "system_cpu_s = u.scpu, max_rss_bytes = u.rss, "
            "started_at = CASE WHEN u.state = 'TASK_RUNNING' "
            "THEN coalesce(tasks.started_at, now()) ELSE tasks.started_at END, "
            "ended_at = CASE WHEN u.ended THEN now() END "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
            "$6::integer[], $7::integer[], $8::float8[], $9::float8[], $10::bigint[], "
            "$11::boolean[]) AS u (fw, id, state, reason, message, ec, es, ucpu, scpu, "
            "rss, ended) WHERE tasks.framework_id = u.fw AND tasks.task_id = u.id",
    .nparams = 11,
    .nkeys = 2,
};

/* A status row being written: what its callback needs, in one allocation
 * (the log line naming it is made only if the write fails).  uuid: the
 * agent's uuid of the status, acknowledged to agent once the row committed
 * (doc/scheduler-api.md: STATUS_ACK only after the status is committed);
 * NULL for a status made here. */
typedef struct status_op {
    phx_master_t *m;
    const char *state;                          /* static */
    const char *fw_id, *task_id, *agent, *uuid; /* into text */
    char text[];
} status_op_t;

static status_op_t *status_op_new(phx_master_t *m, const char *fw_id,
                                  const char *task_id, const char *state,
                                  const char *agent, const char *uuid)
{
    size_t lf = strlen(fw_id) + 1, lt = strlen(task_id) + 1;
    size_t la = agent ? strlen(agent) + 1 : 0, lu = uuid ? strlen(uuid) + 1 : 0;
    status_op_t *op = malloc(sizeof(*op) + lf + lt + la + lu);
    if (!op)
        return NULL;
    char *p = op->text;
    op->m = m;
    op->state = state;
    op->fw_id = memcpy(p, fw_id, lf);
    op->task_id = memcpy(p += lf, task_id, lt);
    p += lt;
    op->agent = agent ? memcpy(p, agent, la) : NULL;
    op->uuid = uuid ? memcpy(p + la, uuid, lu) : NULL;
    return op;
}

static void send_status_ack(phx_master_t *m, const char *agent, const char *task_id,
                            const char *uuid)
{
    phx_master_agent_t *a = phx_master_agent_find(m, agent);
    if (a && a->conn) /* durable here: the agent may forget it */
        phx_master_conn_send(a->conn,
                             json_pack("{s:s, s:s, s:s}", "type", "STATUS_ACK",
                                       "task_id", task_id, "uuid", uuid),
                             NULL, 0);
}

static void status_written(const phx_error_t *err, phx_db_result_t *const *res,
                           int nres, void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    (void)res;
    (void)nres;
    status_op_t *op = arg;
    if (err)
        phx_log_errx("could not record task %s of framework %s as %s: %s", op->task_id,
                     op->fw_id, op->state, err->text);
    else if (op->uuid)
        send_status_ack(op->m, op->agent, op->task_id, op->uuid);
    free(op);
}

/* Queue the task's new state; with agent and uuid, STATUS_ACK them once it
 * committed.  Rows go together once the gang's insert has committed (a row
 * write may be delayed past later writes, never moved before earlier ones). */
static void persist(phx_master_t *m, phx_task_t *t, const char *state,
                    const char *reason, const char *message, const json_t *extra,
                    const char *agent, const char *uuid)
{
    char code[16] = "", sig[16] = "", ucpu[32] = "", scpu[32] = "", rss[32] = "";
    json_t *ec = json_object_get(extra, "exit_code"),
           *sg = json_object_get(extra, "signal");
    json_t *usage = json_object_get(extra, "usage");
    if (json_is_integer(ec))
        snprintf(code, sizeof(code), "%lld", (long long)json_integer_value(ec));
    if (json_is_integer(sg))
        snprintf(sig, sizeof(sig), "%lld", (long long)json_integer_value(sg));
    if (json_is_number(json_object_get(usage, "user_cpu_s")))
        snprintf(ucpu, sizeof(ucpu), "%.6f",
                 json_number_value(json_object_get(usage, "user_cpu_s")));
    if (json_is_number(json_object_get(usage, "system_cpu_s")))
        snprintf(scpu, sizeof(scpu), "%.6f",
                 json_number_value(json_object_get(usage, "system_cpu_s")));
    if (json_is_integer(json_object_get(usage, "max_rss_bytes")))
        snprintf(
            rss, sizeof(rss), "%lld",
            (long long)json_integer_value(json_object_get(usage, "max_rss_bytes")));
    const char *params[] = {t->fw->id,
                            t->id,
                            state,
                            reason,
                            message,
                            *code ? code : NULL,
                            *sig ? sig : NULL,
                            *ucpu ? ucpu : NULL,
                            *scpu ? scpu : NULL,
                            *rss ? rss : NULL,
                            phx_task_state_terminal(state) ? "t" : "f"};
    status_op_t *op = status_op_new(m, t->fw->id, t->id, state, agent, uuid);
    phx_error_t err;
    int rc = !op ? phx_error_set(&err, "out of memory")
             : t->gang && t->gang->id > 0
                 ? phx_db_store_write_row(m->store, &task_state_rows, params,
                                          status_written, op, &err)
                 : phx_db_store_write(m->store, task_state_rows.one, 11, params,
                                      status_written, op, &err);
    if (rc < 0) {
        phx_log_errx("could not record task %s of framework %s as %s: %s", t->id,
                     t->fw->id, state, err.text);
        free(op);
    }
}

/* The update's uuid: 128 random bits in hex, drawn from a pool that one
 * getrandom call fills for 16 of them (a call per update cost a system call
 * per status). */
static void random_uuid(char out[33])
{
    static unsigned char pool[256]; /* getrandom never cuts up to 256 bytes */
    static size_t used = sizeof(pool);
    static const char hex[] = "0123456789abcdef";
    if (used + 16 > sizeof(pool)) {
        if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
            abort(); /* the kernel's CSPRNG does not fail after boot */
        used = 0;
    }
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = hex[pool[used + i] >> 4];
        out[2 * i + 1] = hex[pool[used + i] & 15];
    }
    memset(pool + used, 0, 16); /* handed out once */
    used += 16;
    out[32] = '\0';
}

/* phx_task_update; with agent and uuid (a status from that agent), false if
 * nothing was written, so that the caller acknowledges it otherwise. */
static bool update(phx_master_t *m, phx_task_t *t, const char *state,
                   const char *reason, const char *message, const json_t *extra,
                   const char *agent, const char *agent_uuid)
{
    if (phx_task_state_terminal(t->state))
        return false; /* one outcome only */
    const char *s = state_of(state);
    if (!s)
        return false;
    t->state = s;
    persist(m, t, s, reason, message, extra, agent, agent_uuid);
    char uuid[33];
    random_uuid(uuid);
    json_t *st = phx_task_status_json(t, s, reason, message, uuid);
    if (st && extra)
        json_object_set(st, "phx", (json_t *)extra);
    json_decref(t->pending);
    t->pending = st;
    if (st)
        phx_fw_send(t->fw, json_pack("{s:s, s:{s:O}}", "type", "UPDATE", "update",
                                     "status", st));
    if (!phx_task_state_terminal(s))
        return true;
    if (t->in_alloc &&
        phx_alloc_usage_sub(m->alloc, t->agent->id, t->fw->id, t->id) < 0)
        phx_log_errx("task %s on agent \"%s\": could not release its resources", t->id,
                     t->agent->name);
    t->in_alloc = false;
    phx_sched_dirty(m);
    phx_gang_task_ended(m, t, abnormal(t, s));
    if (t->fw->removed) /* nobody will acknowledge */
        phx_task_forget(m, t);
    return true;
}

void phx_task_update(phx_master_t *m, phx_task_t *t, const char *state,
                     const char *reason, const char *message, const json_t *extra)
{
    update(m, t, state, reason, message, extra, NULL, NULL);
}

/* The LAUNCH object's canonical JSON (json_dumps with JSON_COMPACT |
 * JSON_SORT_KEYS, which the agent makes again to check the MAC) is made
 * once per task, when it is accepted, without its gang_id (known at the
 * commit): as the keys before "gang_id" and those after it, each half
 * dumped sorted.  canon is the first half without its "}" followed by the
 * second without its "{"; the gang's row (gang_id 0) and the LAUNCH put
 * ,"gang_id":N, between them.  The task was dumped twice more before (for
 * its row and for the frame), the master's largest cost per job. */
int phx_task_canon(phx_task_t *t)
{
    json_t *lo = json_object(), *hi = json_object();
    const char *key;
    json_t *v;
    int rc = lo && hi ? 0 : -1;
    json_object_foreach(t->launch, key, v)
    {
        int c = strcmp(key, "gang_id");
        if (rc == 0 && c != 0 && json_object_set(c < 0 ? lo : hi, key, v) < 0)
            rc = -1;
    }
    char *a = rc == 0 ? json_dumps(lo, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *b = rc == 0 ? json_dumps(hi, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(lo);
    json_decref(hi);
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    /* both halves hold keys (argv, env ... / task_id, uid ...): else the
     * LAUNCH is dumped whole when sent */
    char *c = la > 2 && lb > 2 ? malloc(la + lb - 1) : NULL;
    if (c) {
        memcpy(c, a, la - 1);
        memcpy(c + la - 1, b + 1, lb); /* with the NUL */
        free(t->canon);
        t->canon = c;
        t->canon_split = la - 1;
    }
    free(a);
    free(b);
    if (!c && rc < 0)
        errno = ENOMEM;
    return c || rc == 0 ? 0 : -1;
}

char *phx_task_launch_text(const phx_task_t *t, long long gang_id, size_t *len)
{
    if (!t->canon) {
        char *text = json_dumps(t->launch, JSON_COMPACT | JSON_SORT_KEYS);
        *len = text ? strlen(text) : 0;
        return text;
    }
    char mid[48];
    int lm = snprintf(mid, sizeof(mid), ",\"gang_id\":%lld,", gang_id);
    size_t lc = strlen(t->canon), split = t->canon_split;
    char *text = malloc(lc + (size_t)lm + 1);
    if (!text)
        return NULL;
    memcpy(text, t->canon, split);
    memcpy(text + split, mid, (size_t)lm);
    memcpy(text + split + (size_t)lm, t->canon + split, lc - split + 1);
    *len = lc + (size_t)lm;
    return text;
}

/* Signed with the connection's session key (doc/agent.md): the MAC covers
 * the sequence number and the canonical JSON of the task, which the agent
 * makes again from the task it receives.  That text is also the frame's
 * "task" as sent, not serialised once more. */
int phx_task_send_launch(phx_master_t *m, phx_task_t *t)
{
    (void)m;
    if (!t->agent->conn || !t->launch)
        return -1;
    size_t len = 0;
    char *payload = phx_task_launch_text(t, t->gang ? (long long)t->gang->id : 0, &len);
    uint64_t seq;
    char mac[PHX_MAC_HEX_LEN + 1];
    if (!payload ||
        phx_master_conn_sign_launch(t->agent->conn, payload, len, &seq, mac) < 0) {
        phx_log_errx("could not sign the launch of task %s: %s", t->id,
                     payload ? "no session key with its agent" : "out of memory");
        free(payload);
        return -1;
    }
    static const char head[] = "{\"type\":\"LAUNCH\",\"task\":";
    size_t cap = sizeof(head) + len + 128;
    char *text = malloc(cap);
    int rc = -1;
    if (text) {
        memcpy(text, head, sizeof(head) - 1);
        memcpy(text + sizeof(head) - 1, payload, len);
        size_t n = sizeof(head) - 1 + len;
        n += (size_t)snprintf(text + n, cap - n, ",\"seq\":%llu,\"mac\":\"%s\"}",
                              (unsigned long long)seq, mac);
        rc = phx_master_conn_send_text(t->agent->conn, "LAUNCH", text, n);
    } else {
        phx_log_errx("could not send the launch of task %s: out of memory", t->id);
    }
    free(text);
    free(payload);
    if (rc == 0) {
        json_decref(t->launch);
        t->launch = NULL;
        free(t->canon);
        t->canon = NULL;
    }
    return rc;
}

void phx_task_kill(phx_master_t *m, phx_task_t *t, const char *why)
{
    if (phx_task_state_terminal(t->state))
        return;
    if (t->gang && t->gang->id == 0) {
        /* Not committed yet: the commit's callback ends the whole gang. */
        t->gang->failing = true;
        return;
    }
    if (!t->gang || t->launch) { /* never sent to its agent */
        phx_task_update(m, t, "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH", why,
                        NULL);
        return;
    }
    if (!t->killing)
        t->gang->failing = true;
    if (t->agent->conn)
        phx_master_conn_send(t->agent->conn,
                             json_pack("{s:s, s:s, s:s, s:s}", "type", "KILL",
                                       "task_id", t->id, "framework_id", t->fw->id,
                                       "reason", why),
                             NULL, 0);
    else
        phx_log_info("task %s: agent \"%s\" unreachable; it is killed when it returns",
                     t->id, t->agent->name);
}

static phx_task_t **agent_tasks(phx_master_agent_t *a, size_t *n)
{
    *n = phx_hmap_count(a->tasks);
    phx_task_t **list = calloc(*n + 1, sizeof(*list));
    size_t pos = 0, i = 0;
    void *v;
    while (list && phx_hmap_next(a->tasks, &pos, NULL, &v))
        list[i++] = v;
    return list;
}

void phx_tasks_agent_lost(phx_master_t *m, phx_master_agent_t *a)
{
    size_t n;
    phx_task_t **list = agent_tasks(a, &n);
    for (size_t i = 0; list && i < n; i++)
        phx_task_update(m, list[i], "TASK_LOST", "REASON_AGENT_REMOVED",
                        "its agent was lost", NULL);
    free(list);
}

typedef struct ack_op {
    phx_master_t *m;
    char *agent, *task_id, *uuid;
} ack_op_t;

static void status_recorded(const phx_error_t *err, phx_db_result_t *const *res,
                            int nres, void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    (void)res;
    (void)nres;
    ack_op_t *op = arg;
    if (err)
        phx_log_errx("could not record a status of task %s: %s", op->task_id,
                     err->text);
    else
        send_status_ack(op->m, op->agent, op->task_id, op->uuid);
    free(op->agent);
    free(op->task_id);
    free(op->uuid);
    free(op);
}

/* Acknowledge to the agent once whatever was written before has committed:
 * for a status that writes nothing (a resend, an unknown task, a task that
 * already ended); a status written is acknowledged by its row's commit. */
static void ack_after_commit(phx_master_t *m, phx_master_agent_t *a,
                             const char *task_id, const char *uuid)
{
    ack_op_t *op = calloc(1, sizeof(*op));
    phx_error_t err;
    if (op)
        op->m = m;
    if (!op || !(op->agent = strdup(a->name)) || !(op->task_id = strdup(task_id)) ||
        !(op->uuid = strdup(uuid)) ||
        phx_db_store_write(m->store, "SELECT 1", 0, NULL, status_recorded, op, &err) <
            0) {
        if (op) {
            free(op->agent);
            free(op->task_id);
            free(op->uuid);
        }
        free(op);
    }
}

void phx_tasks_on_status(phx_master_t *m, phx_master_agent_t *a, const json_t *hdr)
{
    phx_error_t err;
    const char *task_id = NULL, *fw_id = NULL, *state = NULL, *uuid = NULL,
               *reason = NULL, *message = NULL;
    if (phx_json_str(hdr, "task_id", true, &task_id, &err) < 0 ||
        phx_json_str(hdr, "framework_id", true, &fw_id, &err) < 0 ||
        phx_json_str(hdr, "state", true, &state, &err) < 0 ||
        phx_json_str(hdr, "uuid", true, &uuid, &err) < 0 ||
        phx_json_str(hdr, "reason", false, &reason, &err) < 0 ||
        phx_json_str(hdr, "message", false, &message, &err) < 0 || !state_of(state)) {
        phx_log_warnx("agent \"%s\": malformed STATUS ignored: %s", a->name,
                      state && !state_of(state) ? "unknown state" : err.text);
        return;
    }
    phx_fw_t *fw = phx_fw_find(m, fw_id);
    phx_task_t *t = fw ? phx_task_find(fw, task_id) : NULL;
    if (!t || t->agent != a) {
        phx_log_info("agent \"%s\": status %s of unknown task %s/%s acknowledged",
                     a->name, state, fw_id, task_id);
        ack_after_commit(m, a, task_id, uuid);
        return;
    }
    if (t->last_agent_uuid && strcmp(t->last_agent_uuid, uuid) == 0) {
        ack_after_commit(m, a, task_id, uuid); /* a resend */
        return;
    }
    free(t->last_agent_uuid);
    t->last_agent_uuid = strdup(uuid);
    json_t *extra = json_object();
    const char *keys[] = {"exit_code", "signal", "usage"};
    for (size_t i = 0; extra && i < 3; i++) {
        json_t *v = json_object_get(hdr, keys[i]);
        if (v && !json_is_null(v))
            json_object_set(extra, keys[i], v);
    }
    bool written = update(m, t, state, reason, message, extra, a->name, uuid);
    json_decref(extra);
    if (!written)
        ack_after_commit(m, a, task_id, uuid);
}

void phx_tasks_reconcile_agent(phx_master_t *m, phx_master_agent_t *a,
                               const json_t *reported)
{
    size_t n;
    phx_task_t **list = agent_tasks(a, &n);
    for (size_t i = 0; list && i < n; i++) {
        phx_task_t *t = list[i];
        bool found = false;
        size_t k;
        json_t *e;
        json_array_foreach(reported, k, e)
        {
            const char *id = json_string_value(json_object_get(e, "task_id"));
            const char *fw = json_string_value(json_object_get(e, "framework_id"));
            found |= id && fw && strcmp(id, t->id) == 0 && strcmp(fw, t->fw->id) == 0;
        }
        if (found) {
            if (t->gang && t->gang->failing)
                phx_task_kill(m, t, "its gang failed while the agent was away");
        } else if (!t->launch && t->gang && t->gang->id > 0 &&
                   !phx_task_state_terminal(t->state)) {
            phx_task_update(m, t, "TASK_LOST", "REASON_AGENT_DISCONNECTED",
                            "the agent came back without it", NULL);
        }
    }
    free(list);
    size_t k;
    json_t *e;
    json_array_foreach(reported, k, e)
    {
        const char *id = json_string_value(json_object_get(e, "task_id"));
        const char *fwid = json_string_value(json_object_get(e, "framework_id"));
        phx_fw_t *fw = fwid ? phx_fw_find(m, fwid) : NULL;
        if (id && (!fw || !phx_task_find(fw, id)) && a->conn) {
            phx_log_notice("agent \"%s\" runs unknown task %s/%s: killing it", a->name,
                           fwid ? fwid : "?", id);
            phx_master_conn_send(a->conn,
                                 json_pack("{s:s, s:s, s:s?, s:s}", "type", "KILL",
                                           "task_id", id, "framework_id", fwid,
                                           "reason", "unknown to the master"),
                                 NULL, 0);
        }
    }
}

void phx_sched_resend_updates(phx_master_t *m)
{
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        phx_fw_t *fw = v;
        if (!fw->stream)
            continue;
        size_t tp = 0;
        void *tv;
        while (phx_hmap_next(fw->tasks, &tp, NULL, &tv)) {
            phx_task_t *t = tv;
            if (t->pending)
                phx_fw_send(fw, json_pack("{s:s, s:{s:O}}", "type", "UPDATE", "update",
                                          "status", t->pending));
        }
    }
}
