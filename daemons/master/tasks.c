/* Tasks in the master: status updates (from agents or made here), kills,
 * agent loss and reconciliation, forgetting acknowledged terminal tasks.
 * A task never reports two different terminal states. */
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

static void persist(phx_master_t *m, phx_task_t *t, const char *state,
                    const char *reason, const char *message, const json_t *extra)
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
    char what[200];
    snprintf(what, sizeof(what), "task %s of framework %s as %s", t->id, t->fw->id,
             state);
    /* Rows go together once the gang's insert has committed (a row write may
     * be delayed past later writes, never moved before earlier ones). */
    if (t->gang && t->gang->id > 0)
        phx_master_write_row(m, what, &task_state_rows, params);
    else
        phx_master_write(m, what, task_state_rows.one, 11, params);
}

void phx_task_update(phx_master_t *m, phx_task_t *t, const char *state,
                     const char *reason, const char *message, const json_t *extra)
{
    if (phx_task_state_terminal(t->state))
        return; /* one outcome only */
    const char *s = state_of(state);
    if (!s)
        return;
    t->state = s;
    persist(m, t, s, reason, message, extra);
    unsigned char raw[16];
    char uuid[33];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        abort();
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(uuid + 2 * i, 3, "%02x", raw[i]);
    json_t *st = phx_task_status_json(t, s, reason, message, uuid);
    if (st && extra)
        json_object_set(st, "phx", (json_t *)extra);
    json_decref(t->pending);
    t->pending = st;
    if (st)
        phx_fw_send(t->fw, json_pack("{s:s, s:{s:O}}", "type", "UPDATE", "update",
                                     "status", st));
    if (!phx_task_state_terminal(s))
        return;
    if (t->in_alloc &&
        phx_alloc_usage_sub(m->alloc, t->agent->id, t->fw->id, t->id) < 0)
        phx_log_errx("task %s on agent \"%s\": could not release its resources", t->id,
                     t->agent->name);
    t->in_alloc = false;
    phx_sched_dirty(m);
    phx_gang_task_ended(m, t, abnormal(t, s));
    if (t->fw->removed) /* nobody will acknowledge */
        phx_task_forget(m, t);
}

/* Signed with the connection's session key (doc/agent.md): the MAC covers
 * the sequence number and the canonical JSON of the task, which the agent
 * makes again from the task it receives. */
int phx_task_send_launch(phx_master_t *m, phx_task_t *t)
{
    (void)m;
    if (!t->agent->conn || !t->launch)
        return -1;
    char *payload = json_dumps(t->launch, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t seq;
    char mac[PHX_MAC_HEX_LEN + 1];
    if (!payload || phx_master_conn_sign_launch(t->agent->conn, payload,
                                                strlen(payload), &seq, mac) < 0) {
        phx_log_errx("could not sign the launch of task %s: %s", t->id,
                     payload ? "no session key with its agent" : "out of memory");
        free(payload);
        return -1;
    }
    free(payload);
    int rc =
        phx_master_conn_send(t->agent->conn,
                             json_pack("{s:s, s:O, s:I, s:s}", "type", "LAUNCH", "task",
                                       t->launch, "seq", (json_int_t)seq, "mac", mac),
                             NULL, 0);
    if (rc == 0) {
        json_decref(t->launch);
        t->launch = NULL;
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
    phx_master_agent_t *a = phx_master_agent_find(op->m, op->agent);
    if (err)
        phx_log_errx("could not record a status of task %s: %s", op->task_id,
                     err->text);
    else if (a && a->conn) /* durable here: the agent may forget it */
        phx_master_conn_send(a->conn,
                             json_pack("{s:s, s:s, s:s}", "type", "STATUS_ACK",
                                       "task_id", op->task_id, "uuid", op->uuid),
                             NULL, 0);
    free(op->agent);
    free(op->task_id);
    free(op->uuid);
    free(op);
}

/* Acknowledge to the agent once whatever was written before has committed. */
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
    phx_task_update(m, t, state, reason, message, extra);
    json_decref(extra);
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
