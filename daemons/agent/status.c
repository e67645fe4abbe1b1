/* phx-agent: reliable task statuses.
 *
 * Each STATUS gets a fresh uuid, is appended to the task's unacknowledged
 * list and written to its records ("status": {"pending": [...], "last": {...}},
 * fsync'd) before it is sent.  Unacknowledged statuses are sent again every
 * agent.status_retry seconds and after each registration, until the master
 * answers STATUS_ACK with their uuid.  A task makes at most one terminal
 * status; once it is acknowledged the task's records are removed.
 *
 * The record is written when a status is made, not when one is
 * acknowledged: a short task's TASK_RUNNING is often acknowledged after its
 * terminal status was made, and writing the record again for that was a
 * third write per task.  So a restarted agent may send a status that the
 * master had acknowledged already; the master acknowledges it again and
 * ignores it (the status of an ended task, or the uuid it saw last), as it
 * does when an acknowledgement was lost on the way, which the protocol has
 * always allowed (statuses are sent at least once). */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/task.h"
#include "lib/json.h"
#include "lib/log.h"

bool phx_status_is_terminal(const char *state)
{
    static const char *const terminal[] = {"TASK_FINISHED", "TASK_FAILED",
                                           "TASK_KILLED", "TASK_ERROR", "TASK_LOST"};
    for (size_t i = 0; state && i < sizeof(terminal) / sizeof(*terminal); i++)
        if (strcmp(state, terminal[i]) == 0)
            return true;
    return false;
}

const char *phx_status_state(const phx_task_t *t)
{
    const char *s = json_string_value(json_object_get(t->last, "state"));
    return s ? s : "TASK_STARTING";
}

static void make_uuid(char out[33])
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        memset(raw, 0, sizeof(raw)); /* not reached on Linux ≥ 3.17 */
    /* RFC 4122 version 4 bits, written as 32 hex digits. */
    raw[6] = (unsigned char)((raw[6] & 0x0f) | 0x40);
    raw[8] = (unsigned char)((raw[8] & 0x3f) | 0x80);
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void send_copy(phx_agentd_t *a, json_t *status)
{
    if (phx_agentd_link_ready(a))
        phx_agentd_send(a, json_deep_copy(status), NULL, 0);
}

static int persist(phx_task_t *t)
{
    json_t *rec = json_pack("{s:O, s:O?}", "pending", t->pending, "last", t->last);
    phx_error_t err;
    /* The first status (TASK_RUNNING, or a refusal) makes the file: no
     * rename (phx_rec_create); later ones replace it atomically. */
    int rc = !rec                 ? phx_error_set(&err, "out of memory")
             : t->status_recorded ? phx_rec_write(t->dir, "status", rec, &err)
                                  : phx_rec_create(t->dir, "status", rec, &err);
    if (rc == 0)
        t->status_recorded = true;
    json_decref(rec);
    if (rc < 0)
        phx_log_errx("task %s: could not record its status: %s", t->label, err.text);
    return rc;
}

int phx_status_emit(phx_task_t *t, const char *state, const char *reason,
                    const char *message, int exit_code, int sig, json_t *usage)
{
    if (phx_status_is_terminal(phx_status_state(t))) {
        phx_log_errx("task %s: %s after %s refused (one outcome per task)", t->label,
                     state, phx_status_state(t));
        json_decref(usage);
        errno = EALREADY;
        return -1;
    }
    char uuid[33];
    make_uuid(uuid);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f}", "type", "STATUS", "task_id",
                          t->id, "framework_id", t->framework_id, "state", state,
                          "uuid", uuid, "timestamp", phx_rec_now());
    if (!s) {
        json_decref(usage);
        errno = ENOMEM;
        return -1;
    }
    json_object_set_new(s, "message", json_string(message ? message : ""));
    if (reason)
        json_object_set_new(s, "reason", json_string(reason));
    json_object_set_new(s, "exit_code",
                        exit_code >= 0 ? json_integer(exit_code) : json_null());
    json_object_set_new(s, "signal", sig >= 0 ? json_integer(sig) : json_null());
    if (usage)
        json_object_set_new(s, "usage", usage);
    json_array_append(t->pending, s);
    json_decref(t->last);
    t->last = s;
    if (phx_status_is_terminal(state))
        t->phase = PHX_TASK_DONE;
    persist(t);
    int level = phx_status_is_terminal(state) ? LOG_NOTICE : LOG_INFO;
    phx_log(level, false, "task %s: %s%s%s%s%s%s", t->label, state, reason ? " (" : "",
            reason ? reason : "", reason ? ")" : "", message && *message ? ": " : "",
            message ? message : "");
    send_copy(t->a, s);
    return 0;
}

void phx_status_send_unrecorded(phx_agentd_t *a, const char *framework_id,
                                const char *id, const char *state, const char *reason,
                                const char *message)
{
    char uuid[33];
    make_uuid(uuid);
    phx_log_warnx("task \"%.*s/%.*s\": %s: %s", PHX_TASK_FW_MAX, framework_id,
                  PHX_TASK_ID_MAX, id, state, message);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:n, s:n}", "type",
                          "STATUS", "task_id", id, "framework_id", framework_id,
                          "state", state, "reason", reason, "message", message, "uuid",
                          uuid, "timestamp", phx_rec_now(), "exit_code", "signal");
    if (s && phx_agentd_link_ready(a))
        phx_agentd_send(a, s, NULL, 0);
    else
        json_decref(s);
}

void phx_status_send_task(phx_task_t *t)
{
    size_t i;
    json_t *s;
    json_array_foreach(t->pending, i, s) send_copy(t->a, s);
}

void phx_agentd_status_resend(phx_agentd_t *a)
{
    for (phx_task_t *t = a->tasks; t; t = t->next)
        phx_status_send_task(t);
}

/* The end of a task's story: its terminal status is acknowledged. */
static void forget(phx_task_t *t)
{
    phx_agentd_t *a = t->a;
    if (t->has_cgroup && a->cg->mode != PHX_CG_NONE)
        a->cg->ops->destroy(a->cg, t->key);
    if (phx_rec_remove_dir(t->dir) < 0)
        phx_log_warn("task %s: could not remove its records \"%s\"", t->label, t->dir);
    phx_log_debug("task %s: terminal status acknowledged, records removed", t->label);
    phx_task_remember_done(t);
    phx_task_free(t);
}

/* Index of the pending status with this uuid, or -1. */
static ssize_t pending_index(const phx_task_t *t, const char *uuid)
{
    size_t i;
    json_t *s;
    json_array_foreach(t->pending, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "uuid")), uuid) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* STATUS_ACK names the task by task_id and, when framework_id is missing
 * (the master does not send it), by the status uuid: uuids are random, so
 * task_id + uuid designate one task even when frameworks share task ids. */
void phx_agentd_on_status_ack(phx_agentd_t *a, const phx_frame_t *f)
{
    const char *id = NULL, *fw = NULL, *uuid = NULL;
    phx_error_t err;
    if (phx_json_str(f->header, "task_id", true, &id, &err) < 0 ||
        phx_json_str(f->header, "framework_id", false, &fw, &err) < 0 ||
        phx_json_str(f->header, "uuid", true, &uuid, &err) < 0) {
        phx_log_warnx("STATUS_ACK ignored: %s", err.text);
        return;
    }
    for (phx_task_t *t = a->tasks; t; t = t->next) {
        if (strcmp(t->id, id) != 0 || (fw && strcmp(t->framework_id, fw) != 0))
            continue;
        ssize_t i = pending_index(t, uuid);
        if (i < 0)
            continue;
        json_array_remove(t->pending, (size_t)i);
        if (t->phase == PHX_TASK_DONE && json_array_size(t->pending) == 0)
            forget(t); /* else the record keeps it: sent again at most */
        return;
    }
    phx_log_debug("STATUS_ACK for unknown task \"%.*s/%.*s\" or uuid %s ignored",
                  PHX_TASK_FW_MAX, fw ? fw : "?", PHX_TASK_ID_MAX, id, uuid);
}

json_t *phx_agentd_tasks_json(phx_agentd_t *a)
{
    json_t *arr = json_array();
    for (phx_task_t *t = a->tasks; arr && t; t = t->next)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "task_id", t->id,
                                             "framework_id", t->framework_id, "state",
                                             phx_status_state(t)));
    return arr;
}
