/* POST /api/v1/scheduler: Mesos v1 scheduler calls in JSON.
 *
 * SUBSCRIBE answers with a RecordIO event stream and a Mesos-Stream-Id; every
 * other call must carry that id (400 otherwise) and is answered 202.  A
 * SUBSCRIBE carries a munge credential (Authorization: Munge ...) unless the
 * master allows unauthenticated frameworks; the stream id, 128 random bits,
 * then authenticates the framework's calls. */
#include <errno.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/framework.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"

typedef int (*call_f)(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                      phx_error_t *err);

static void random_hex(char *out, size_t bytes)
{
    unsigned char raw[32];
    if (bytes > sizeof(raw))
        bytes = sizeof(raw);
    if (getrandom(raw, bytes, 0) != (ssize_t)bytes)
        abort(); /* the kernel's CSPRNG does not fail after boot */
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* "<value>" of {"value": "..."} at obj[key]. */
static int id_value(const json_t *obj, const char *key, bool required, const char **out,
                    phx_error_t *err)
{
    json_t *o = NULL;
    if (phx_json_obj(obj, key, required, &o, err) < 0)
        return -1;
    if (!o)
        return 0;
    if (phx_json_str(o, "value", true, out, err) < 0)
        return phx_error_prefix(err, "%s", key);
    if (!**out || strlen(*out) > PHX_FW_ID_MAX)
        return phx_error_set(err, "field \"%s.value\" must be 1-%d characters", key,
                             PHX_FW_ID_MAX);
    return 0;
}

double phx_master_role_weight(const phx_master_t *m, const char *role)
{
    size_t n = phx_conf_list_len(m->conf, "master.role_weights");
    for (size_t i = 0; i < n; i++) {
        const char *e = phx_conf_list_get(m->conf, "master.role_weights", i);
        const char *eq = strchr(e, '=');
        if (eq && (size_t)(eq - e) == strlen(role) &&
            strncmp(e, role, strlen(role)) == 0)
            return atof(eq + 1) > 0 ? atof(eq + 1) : 1.0;
    }
    return 1.0;
}

/* ---- SUBSCRIBE ---- */

typedef struct sub_op {
    phx_sub_inflight_t inflight; /* first: linked in m->subs_inflight */
    bool linked;
    phx_master_t *m;
    phx_http_deferred_t *reply;
    char id[PHX_FW_ID_MAX + 1];
    char *name, *user, *role;
    uid_t uid;
    bool authenticated;
    double failover_timeout;
} sub_op_t;

static void sub_op_unlink(sub_op_t *op)
{
    for (phx_sub_inflight_t **pp = &op->m->subs_inflight; op->linked && *pp;
         pp = &(*pp)->next)
        if (*pp == &op->inflight) {
            *pp = op->inflight.next;
            break;
        }
    op->linked = false;
}

static void sub_op_free(sub_op_t *op)
{
    if (op->m)
        sub_op_unlink(op);
    phx_http_deferred_free(op->reply);
    free(op->name);
    free(op->user);
    free(op->role);
    free(op);
}

static void subscribed(const phx_error_t *err, phx_db_result_t *const *res, int nres,
                       void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    sub_op_t *op = arg;
    phx_master_t *m = op->m;
    sub_op_unlink(op); /* a framework now, or nothing */
    struct evhttp_request *req = phx_http_deferred_req(op->reply);
    if (err) {
        phx_log_errx("could not record framework %s: %s", op->id, err->text);
        if (req)
            phx_http_reply_error(req, 503, "could not record the framework: %s",
                                 err->text);
        goto out;
    }
    if (nres < 1 || phx_db_result_rows(res[0]) != 1) {
        if (req)
            phx_http_reply_error(req, 403, "framework %s has been removed", op->id);
        goto out;
    }
    if (!req) {
        phx_log_info("framework %s went away while subscribing", op->id);
        goto out;
    }
    phx_fw_t *fw = phx_fw_find(m, op->id);
    bool failover = fw != NULL;
    if (!fw && !(fw = phx_fw_create(m, op->id))) {
        phx_http_reply_error(req, 500, "out of memory");
        goto out;
    }
    if (fw->stream) { /* a new scheduler instance took over */
        phx_stream_close(fw->stream);
        fw->stream = NULL;
    }
    if (fw->failover_ev)
        event_del(fw->failover_ev);
    free(fw->name);
    free(fw->user);
    free(fw->role);
    fw->name = op->name;
    fw->user = op->user;
    fw->role = op->role;
    op->name = op->user = op->role = NULL;
    fw->uid = op->uid;
    fw->authenticated = op->authenticated;
    fw->failover_timeout = op->failover_timeout;
    fw->weight = phx_master_role_weight(m, fw->role);
    phx_error_t werr;
    if (phx_alloc_role_set_weight(m->alloc, fw->role, fw->weight, &werr) < 0)
        phx_log_errx("role %s: %s", fw->role, werr.text);
    random_hex(fw->stream_id, 16);
    /* The stream owns the request now: drop the deferred reply (and its
     * close callback) before the stream sets its own. */
    phx_http_deferred_free(op->reply);
    op->reply = NULL;
    if (!(fw->stream = phx_stream_open(m, fw, req))) {
        phx_http_reply_error(req, 500, "out of memory");
        goto out;
    }
    phx_log_notice("framework %s (%s) %s: user %s, role %s, weight %g%s", fw->id,
                   fw->name, failover ? "resubscribed" : "subscribed", fw->user,
                   fw->role, fw->weight, fw->authenticated ? "" : ", unauthenticated");
    phx_stream_send(fw->stream,
                    json_pack("{s:s, s:{s:{s:s}, s:f, s:s}}", "type", "SUBSCRIBED",
                              "subscribed", "framework_id", "value", fw->id,
                              "heartbeat_interval_seconds", m->framework_heartbeat,
                              "master_id", m->master_id));
    phx_error_t aerr;
    if (!fw->in_alloc) {
        if (phx_alloc_framework_add(m->alloc, fw->id, fw->role, &aerr) < 0)
            phx_log_errx("framework %s: %s", fw->id, aerr.text);
        else
            fw->in_alloc = true;
    } else {
        phx_alloc_framework_activate(m->alloc, fw->id);
    }
    /* Updates it has not acknowledged yet go out again. */
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(fw->tasks, &pos, NULL, &v)) {
        phx_task_t *t = v;
        if (t->pending)
            phx_fw_send(fw, json_pack("{s:s, s:{s:O}}", "type", "UPDATE", "update",
                                      "status", t->pending));
    }
    phx_sched_dirty(m);
out:
    sub_op_free(op);
}

static bool uid_in(const uid_t *list, size_t n, uid_t uid)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == uid)
            return true;
    return false;
}

static void subscribe(phx_master_t *m, struct evhttp_request *req, const json_t *call)
{
    phx_error_t err;
    json_t *sub = NULL, *info = NULL;
    const char *user = NULL, *name = NULL, *id = NULL, *role = NULL;
    double failover = 0;
    if (phx_json_obj(call, "subscribe", true, &sub, &err) < 0 ||
        phx_json_obj(sub, "framework_info", true, &info, &err) < 0 ||
        phx_json_str(info, "user", true, &user, &err) < 0 ||
        phx_json_str(info, "name", true, &name, &err) < 0 ||
        id_value(info, "id", false, &id, &err) < 0 ||
        phx_json_num(info, "failover_timeout", false, 0, 365 * 86400.0, &failover,
                     &err) < 0) {
        phx_http_reply_error(req, 400, "SUBSCRIBE: %s", err.text);
        return;
    }
    json_t *roles = json_object_get(info, "roles");
    if (json_is_array(roles) && json_array_size(roles) > 0)
        role = json_string_value(json_array_get(roles, 0));
    if (!role)
        phx_json_str(info, "role", false, &role, NULL);
    if (!role || !*role)
        role = "*";

    sub_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        phx_http_reply_error(req, 500, "out of memory");
        return;
    }
    phx_munge_cred_t cred;
    if (evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization")) {
        if (phx_http_auth(req, m->munge, NULL, &cred, &err) < 0) {
            phx_log_warnx("SUBSCRIBE of \"%s\" refused: %s", name, err.text);
            phx_http_reply_error(req, 401, "SUBSCRIBE: %s", err.text);
            free(op);
            return;
        }
        op->authenticated = true;
        op->uid = cred.uid;
        phx_munge_cred_clear(&cred);
    } else if (!m->allow_unauthenticated) {
        phx_http_reply_error(
            req, 401, "SUBSCRIBE: missing \"Authorization: Munge <credential>\"");
        free(op);
        return;
    }
    op->m = m;
    op->failover_timeout = failover;
    if (id)
        snprintf(op->id, sizeof(op->id), "%s", id);
    else
        random_hex(op->id, 16);
    phx_fw_t *known = phx_fw_find(m, op->id);
    if (known && known->authenticated &&
        (!op->authenticated || op->uid != known->uid)) {
        phx_http_reply_error(req, 403, "SUBSCRIBE: framework %s belongs to uid %u",
                             op->id, (unsigned)known->uid);
        free(op);
        return;
    }
    for (const phx_sub_inflight_t *s = m->subs_inflight; s; s = s->next)
        if (strcmp(s->id, op->id) == 0) {
            phx_http_reply_error(
                req, 409, "SUBSCRIBE: framework %s is being subscribed; retry", op->id);
            free(op);
            return;
        }
    const char *why = phx_master_role_refused(m, role, op->authenticated, op->uid);
    /* a framework new to this user (new, removed, or another's taken over)
     * counts against their cap, and while it is being written too */
    bool counted = !known || known->removed ||
                   known->authenticated != op->authenticated || known->uid != op->uid;
    if (!why && counted)
        why = phx_master_frameworks_refused(m, op->id, op->authenticated, op->uid);
    if (why) {
        phx_log_notice("SUBSCRIBE of \"%s\" as role \"%s\" by %s %u refused: %s", name,
                       role, op->authenticated ? "uid" : "unauthenticated, uid",
                       (unsigned)op->uid, why);
        phx_http_reply_error(req, 403, "SUBSCRIBE as role \"%s\": %s", role, why);
        free(op);
        return;
    }
    if (!(op->name = strdup(name)) || !(op->user = strdup(user)) ||
        !(op->role = strdup(role)) || !(op->reply = phx_http_defer(req))) {
        sub_op_free(op);
        phx_http_reply_error(req, 500, "out of memory");
        return;
    }
    char uidtext[16];
    snprintf(uidtext, sizeof(uidtext), "%u", (unsigned)op->uid);
    char weight[32], fo[32];
    snprintf(weight, sizeof(weight), "%g", phx_master_role_weight(m, role));
    snprintf(fo, sizeof(fo), "%g", failover);
    const char *params[] = {op->id, name,   user, op->authenticated ? uidtext : NULL,
                            role,   weight, fo};
    if (counted) { /* a reconnection is counted once, as the framework it is */
        snprintf(op->inflight.id, sizeof(op->inflight.id), "%s", op->id);
        op->inflight.uid = op->uid;
        op->inflight.authenticated = op->authenticated;
        op->inflight.next = m->subs_inflight;
        m->subs_inflight = &op->inflight;
        op->linked = true;
    }
    if (phx_db_store_write(
            m->store,
            "INSERT INTO frameworks (id, name, user_name, uid, roles, weight, "
            "failover_timeout) VALUES ($1, $2, $3, $4::integer, ARRAY[$5], $6::float8, "
            "$7::float8) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
            "user_name = EXCLUDED.user_name, uid = EXCLUDED.uid, roles = "
            "EXCLUDED.roles, "
            "weight = EXCLUDED.weight, failover_timeout = EXCLUDED.failover_timeout, "
            "state = 'active', disconnected_at = NULL WHERE frameworks.state <> "
            "'removed' "
            "RETURNING id",
            7, params, subscribed, op, &err) < 0) {
        struct evhttp_request *r = phx_http_deferred_req(op->reply);
        sub_op_free(op);
        phx_http_reply_error(r, 503, "%s", err.text);
    }
    (void)uid_in;
}

/* ---- calls of a subscribed framework ---- */

static int call_teardown(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                         phx_error_t *err)
{
    (void)call;
    (void)err;
    phx_fw_remove(m, fw, "TEARDOWN");
    return 0;
}

static int call_accept(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                       phx_error_t *err)
{
    json_t *accept = NULL;
    if (phx_json_obj(call, "accept", true, &accept, err) < 0)
        return -1;
    if (phx_accept(m, fw, accept, err) < 0) {
        phx_fw_send(fw, json_pack("{s:s, s:{s:s}}", "type", "ERROR", "error", "message",
                                  err->text));
        return -1;
    }
    return 0;
}

static int call_decline(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                        phx_error_t *err)
{
    json_t *d = NULL, *ids = NULL, *filters = NULL;
    double refuse = 5.0;
    if (phx_json_obj(call, "decline", true, &d, err) < 0 ||
        phx_json_arr(d, "offer_ids", true, &ids, err) < 0 ||
        phx_json_obj(d, "filters", false, &filters, err) < 0 ||
        phx_json_num(filters, "refuse_seconds", false, 0, 365 * 86400.0, &refuse, err) <
            0)
        return phx_error_prefix(err, "DECLINE");
    size_t i;
    json_t *o;
    json_array_foreach(ids, i, o)
    {
        const char *id = json_string_value(json_object_get(o, "value"));
        if (!id)
            return phx_error_set(err, "DECLINE: offer_ids[%zu] has no string \"value\"",
                                 i);
        phx_offer_t *of = phx_offer_find(m, id);
        if (of && of->fw != fw)
            return phx_error_set(err, "DECLINE: offer %s belongs to another framework",
                                 id);
    }
    json_array_foreach(ids, i, o)
    {
        phx_offer_t *of =
            phx_offer_find(m, json_string_value(json_object_get(o, "value")));
        if (!of)
            continue; /* rescinded or used meanwhile: nothing to do */
        phx_alloc_filter(m->alloc, fw->id, of->agent->id, phx_master_clock() + refuse);
        phx_offer_drop(m, of, false);
    }
    phx_sched_dirty(m);
    return 0;
}

static int call_revive(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                       phx_error_t *err)
{
    (void)call;
    (void)err;
    phx_alloc_revive(m->alloc, fw->id);
    phx_sched_dirty(m);
    return 0;
}

static int call_suppress(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                         phx_error_t *err)
{
    (void)call;
    (void)err;
    phx_alloc_suppress(m->alloc, fw->id);
    return 0;
}

static int call_kill(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                     phx_error_t *err)
{
    json_t *k = NULL;
    const char *task_id = NULL;
    if (phx_json_obj(call, "kill", true, &k, err) < 0 ||
        id_value(k, "task_id", true, &task_id, err) < 0)
        return phx_error_prefix(err, "KILL");
    phx_task_t *t = phx_task_find(fw, task_id);
    if (!t) {
        json_t *st =
            json_pack("{s:{s:s}, s:s, s:s, s:s, s:f}", "task_id", "value", task_id,
                      "state", "TASK_LOST", "source", "SOURCE_MASTER", "message",
                      "unknown task", "timestamp", (double)phx_master_wall());
        phx_fw_send(
            fw, json_pack("{s:s, s:{s:o}}", "type", "UPDATE", "update", "status", st));
        return 0;
    }
    if (!phx_task_state_terminal(t->state)) {
        t->killing = true;
        phx_task_kill(m, t, "killed by its framework");
    }
    return 0;
}

/* The calls table's entry for SIGNAL: phx_sched_http calls signal_call,
 * which needs the request, instead. */
static int call_signal(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                       phx_error_t *err)
{
    (void)m;
    (void)fw;
    (void)call;
    return phx_error_set(err, "SIGNAL: not answered here");
}

/* SIGNAL (scancel -s): a signal now to one of the framework's running tasks
 * (lib/framework.h phx_task_signal_t), by its agent.  Refused, so that the
 * framework can tell its user, when the task is not running, its agent is
 * away or does not know SIGNAL (older than "features": ["signal"]).  An
 * agent with "signal_done" says what it signalled, and req's answer waits
 * for that (signal_wait.c).  1 when req is answered later, 0 to answer
 * 202 now, -1 with err. */
static int signal_call(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                       struct evhttp_request *req, phx_error_t *err)
{
    json_t *s = NULL;
    const char *task_id = NULL;
    phx_task_signal_t sig;
    if (phx_json_obj(call, "signal", true, &s, err) < 0 ||
        id_value(s, "task_id", true, &task_id, err) < 0 ||
        phx_task_signal_parse(s, &sig, err) < 0)
        return phx_error_prefix(err, "SIGNAL");
    phx_task_t *t = phx_task_find(fw, task_id); /* its own tasks only */
    if (!t)
        return phx_error_set(err, "SIGNAL: unknown task %s", task_id);
    if (strcmp(t->state, "TASK_RUNNING") != 0 || t->launch)
        return phx_error_set(err, "SIGNAL: task %s is not running (%s)", task_id,
                             t->state);
    if (!t->agent->conn)
        return phx_error_set(err, "SIGNAL: task %s: agent \"%s\" is unreachable",
                             task_id, t->agent->name);
    if (!t->agent->can_signal)
        return phx_error_set(err,
                             "SIGNAL: task %s: agent \"%s\" runs a version without "
                             "SIGNAL; upgrade it",
                             task_id, t->agent->name);
    json_t *frame = json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "SIGNAL", "task_id",
                              t->id, "framework_id", fw->id, "signal", sig.signal, "to",
                              phx_task_sig_to_name(sig.to));
    /* an agent that answers: the HTTP answer waits for it (its wait set
     * up once the frame is out: a failed send closes the connection) */
    uint64_t wait = t->agent->signal_done ? ++m->next_sigwait : 0;
    if (frame && wait)
        json_object_set_new(frame, "reply", json_integer((json_int_t)wait));
    if (!frame || phx_master_conn_send(t->agent->conn, frame, NULL, 0) < 0)
        return phx_error_set(err, "SIGNAL: task %s: could not send to agent \"%s\"",
                             task_id, t->agent->name);
    if (wait && phx_sigwait_start(m, req, t->agent, t->id, wait) < 0)
        wait = 0; /* answered now; its SIGNAL_DONE finds no wait */
    phx_log_info("task %s of framework %s: signal %d (to %s) sent to agent \"%s\"",
                 task_id, fw->id, sig.signal, phx_task_sig_to_name(sig.to),
                 t->agent->name);
    return wait ? 1 : 0;
}

static int call_acknowledge(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                            phx_error_t *err)
{
    json_t *a = NULL;
    const char *task_id = NULL, *uuid = NULL;
    if (phx_json_obj(call, "acknowledge", true, &a, err) < 0 ||
        id_value(a, "task_id", true, &task_id, err) < 0 ||
        phx_json_str(a, "uuid", true, &uuid, err) < 0)
        return phx_error_prefix(err, "ACKNOWLEDGE");
    phx_task_t *t = phx_task_find(fw, task_id);
    if (!t || !t->pending)
        return 0; /* already acknowledged: resends race with acks */
    const char *want = json_string_value(json_object_get(t->pending, "uuid"));
    if (!want || strcmp(want, uuid) != 0)
        return 0; /* an older update's uuid */
    json_decref(t->pending);
    t->pending = NULL;
    if (phx_task_state_terminal(t->state))
        phx_task_forget(m, t);
    return 0;
}

static int call_reconcile(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                          phx_error_t *err)
{
    (void)m;
    json_t *r = NULL, *tasks = NULL;
    if (phx_json_obj(call, "reconcile", true, &r, err) < 0 ||
        phx_json_arr(r, "tasks", false, &tasks, err) < 0)
        return phx_error_prefix(err, "RECONCILE");
    if (!tasks || json_array_size(tasks) == 0) { /* implicit: every known task */
        size_t pos = 0;
        void *v;
        while (phx_hmap_next(fw->tasks, &pos, NULL, &v)) {
            phx_task_t *t = v;
            phx_fw_send(
                fw, json_pack("{s:s, s:{s:o}}", "type", "UPDATE", "update", "status",
                              phx_task_status_json(t, t->state, "REASON_RECONCILIATION",
                                                   NULL, NULL)));
        }
        return 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(tasks, i, e)
    {
        const char *id = NULL;
        if (id_value(e, "task_id", true, &id, err) < 0)
            return phx_error_prefix(err, "RECONCILE: tasks[%zu]", i);
    }
    json_array_foreach(tasks, i, e)
    {
        const char *id = NULL;
        id_value(e, "task_id", true, &id, NULL);
        phx_task_t *t = phx_task_find(fw, id);
        json_t *st;
        if (t)
            st = phx_task_status_json(t, t->state, "REASON_RECONCILIATION", NULL, NULL);
        else
            st = json_pack("{s:{s:s}, s:s, s:s, s:s, s:s, s:f}", "task_id", "value", id,
                           "state", "TASK_LOST", "source", "SOURCE_MASTER", "reason",
                           "REASON_RECONCILIATION", "message", "unknown task",
                           "timestamp", (double)phx_master_wall());
        phx_fw_send(
            fw, json_pack("{s:s, s:{s:o}}", "type", "UPDATE", "update", "status", st));
    }
    return 0;
}

static int call_request(phx_master_t *m, phx_fw_t *fw, const json_t *call,
                        phx_error_t *err)
{
    json_t *r = NULL, *reqs = NULL, *cancel = NULL;
    if (phx_json_obj(call, "request", true, &r, err) < 0 ||
        phx_json_arr(r, "requests", false, &reqs, err) < 0 ||
        phx_json_arr(r, "cancel", false, &cancel, err) < 0)
        return phx_error_prefix(err, "REQUEST");
    size_t i;
    json_t *e;
    json_array_foreach(cancel, i, e)
    {
        if (!json_is_string(e))
            return phx_error_set(err, "REQUEST: cancel[%zu] must be a request id", i);
        phx_alloc_request_cancel(m->alloc, fw->id, json_string_value(e));
    }
    /* all of them or none (a refused call left its first requests held) */
    const char *why = phx_master_requests_refused(m, fw, json_array_size(reqs));
    if (why)
        return phx_error_set(err, "REQUEST of %zu gang requests: %s",
                             json_array_size(reqs), why);
    json_array_foreach(reqs, i, e)
    {
        if (phx_sched_request_add(m, fw, e, err) < 0) {
            /* none of the call's requests stays: cancel those added */
            for (size_t k = 0; k < i; k++)
                phx_alloc_request_cancel(
                    m->alloc, fw->id,
                    json_string_value(json_object_get(json_array_get(reqs, k), "id")));
            return phx_error_prefix(err, "REQUEST: requests[%zu]", i);
        }
    }
    phx_sched_dirty(m);
    return 0;
}

static const struct {
    const char *type;
    call_f handler;
} calls[] = {
    {"TEARDOWN", call_teardown},       {"ACCEPT", call_accept},
    {"DECLINE", call_decline},         {"REVIVE", call_revive},
    {"SUPPRESS", call_suppress},       {"KILL", call_kill},
    {"ACKNOWLEDGE", call_acknowledge}, {"RECONCILE", call_reconcile},
    {"REQUEST", call_request},         {"SIGNAL", call_signal},
};

void phx_sched_http(phx_master_t *m, struct evhttp_request *req)
{
    const char *ctype =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (ctype && strncasecmp(ctype, "application/json", 16) != 0) {
        phx_http_reply_error(req, 415, "only application/json is supported, not %s",
                             ctype);
        return;
    }
    phx_error_t err;
    json_t *call = phx_http_body_json(req, PHX_HTTP_BODY_MAX, &err);
    const char *type = NULL;
    if (!call || phx_json_str(call, "type", true, &type, &err) < 0) {
        phx_http_reply_error(req, 400, "%s", err.text);
        json_decref(call);
        return;
    }
    if (strcmp(type, "SUBSCRIBE") == 0) {
        subscribe(m, req, call);
        json_decref(call);
        return;
    }
    call_f handler = NULL;
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
        if (strcmp(type, calls[i].type) == 0)
            handler = calls[i].handler;
    const char *fw_id = NULL;
    if (!handler) {
        phx_http_reply_error(req, 400, "unsupported call type \"%s\"", type);
    } else if (id_value(call, "framework_id", true, &fw_id, &err) < 0) {
        phx_http_reply_error(req, 400, "%s: %s", type, err.text);
    } else {
        phx_fw_t *fw = phx_fw_find(m, fw_id);
        const char *sid = evhttp_find_header(evhttp_request_get_input_headers(req),
                                             "Mesos-Stream-Id");
        if (!fw || fw->removed)
            phx_http_reply_error(req, 400, "%s: framework %s is not subscribed", type,
                                 fw_id);
        else if (!fw->stream || !sid || strcmp(sid, fw->stream_id) != 0)
            phx_http_reply_error(
                req, 400, "%s: missing or wrong Mesos-Stream-Id for framework %s", type,
                fw_id);
        else if (handler == call_signal) {
            int rc = signal_call(m, fw, call, req, &err);
            if (rc < 0)
                phx_http_reply_error(req, 400, "%s", err.text);
            else if (rc == 0)
                phx_http_reply_text(req, 202, "application/json", "");
        } else if (handler(m, fw, call, &err) < 0)
            phx_http_reply_error(req, 400, "%s", err.text);
        else
            phx_http_reply_text(req, 202, "application/json", "");
    }
    json_decref(call);
}
