/* What the agents of a step exchange through the master: fences (a star:
 * every agent's contribution in, their plain concatenation out to all),
 * direct-modex requests and answers, rank output, and the input of `phx run`
 * with its acknowledgements. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step.h"
#include "lib/json.h"
#include "lib/log.h"

static phx_step_part_t *part_named(phx_step_t *s, const char *name)
{
    for (int i = 0; i < s->nparts; i++)
        if (strcmp(s->parts[i].agent, name) == 0)
            return &s->parts[i];
    return NULL;
}

/* A fence that cannot complete fails its step at once (it would otherwise
 * hang until the job's time limit): `phx run` hears why on its stderr, the
 * ranks are killed and the step ends with code 1. */
static void fence_fail(phx_master_t *m, phx_step_t *s, const char *why)
{
    char msg[PHX_ERROR_TEXT_MAX + 200];
    snprintf(msg, sizeof(msg), "phx: step %s failed: %s\n", s->nspace, why);
    phx_step_send(m, s->origin,
                  json_pack("{s:s, s:I, s:i, s:i}", "type", "STEP_OUTPUT", "step",
                            (json_int_t)s->id, "rank", -1, "stream", 2),
                  msg, strlen(msg));
    phx_step_kill(m, s, 1, why);
}

static void fence_release(phx_master_t *m, phx_step_t *s)
{
    uint8_t *all = NULL;
    size_t total = 0;
    phx_error_t err;
    int rc =
        phx_step_fence_gather(s->parts, s->nparts, m->max_frame, &all, &total, &err);
    for (int i = 0; i < s->nparts; i++) {
        phx_step_part_t *p = &s->parts[i];
        free(p->fence);
        p->fence = NULL;
        p->fence_len = 0;
        p->fenced = false;
    }
    s->fenced = 0;
    uint64_t seq = s->fence_seq++;
    if (rc < 0) {
        char why[PHX_ERROR_TEXT_MAX + 32];
        snprintf(why, sizeof(why), "fence %llu: %s", (unsigned long long)seq, err.text);
        fence_fail(m, s, why);
        return;
    }
    for (int i = 0; i < s->nparts; i++)
        if (phx_step_send(m, s->parts[i].agent,
                          json_pack("{s:s, s:I, s:I}", "type", "FENCE_DONE", "step",
                                    (json_int_t)s->id, "seq", (json_int_t)seq),
                          all, total) < 0) {
            char why[300];
            snprintf(why, sizeof(why),
                     "fence %llu: could not send its data (%zu bytes) to agent "
                     "\"%s\"",
                     (unsigned long long)seq, total, s->parts[i].agent);
            fence_fail(m, s, why);
            break;
        }
    free(all);
}

void phx_step_on_fence(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    phx_step_part_t *p = s ? part_named(s, a->name) : NULL;
    if (!p) {
        phx_log_info("agent \"%s\": fence of an unknown step ignored", a->name);
        return;
    }
    long long seq = -1;
    phx_error_t err;
    if (phx_json_int(f->header, "seq", true, 0, INT64_MAX, &seq, &err) < 0 ||
        (uint64_t)seq != s->fence_seq || p->fenced) {
        char why[200];
        snprintf(why, sizeof(why),
                 "agent \"%s\" sent fence %lld out of order (at %llu)", a->name, seq,
                 (unsigned long long)s->fence_seq);
        phx_step_kill(m, s, 1, why);
        return;
    }
    if (s->aborted)
        return; /* killed already: its ranks are going */
    p->fenced = true;
    s->fenced++;
    if (phx_step_fence_fits(s->parts, s->nparts, f->attach_len, m->max_frame, &err) <
        0) {
        char why[PHX_ERROR_TEXT_MAX + 32];
        snprintf(why, sizeof(why), "fence %lld: %s", seq, err.text);
        fence_fail(m, s, why);
        return;
    }
    if (f->attach_len > 0) {
        if (!(p->fence = malloc(f->attach_len))) {
            char why[200];
            snprintf(why, sizeof(why),
                     "fence %lld: out of memory for the %zu bytes of agent \"%s\"", seq,
                     f->attach_len, a->name);
            fence_fail(m, s, why);
            return;
        }
        memcpy(p->fence, f->attach, f->attach_len);
        p->fence_len = f->attach_len;
    }
    if (s->fenced == s->nparts)
        fence_release(m, s);
}

/* DMODEX {step, rank, id}: ask the agent hosting rank. */
void phx_step_on_dmodex(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    long long rank = -1, id = 0;
    phx_error_t err;
    if (!s || !part_named(s, a->name) ||
        phx_json_int(f->header, "rank", true, 0, INT32_MAX, &rank, &err) < 0 ||
        phx_json_int(f->header, "id", true, 0, INT64_MAX, &id, &err) < 0)
        return;
    for (int i = 0; i < s->nparts; i++)
        for (int k = 0; k < s->parts[i].nranks; k++)
            if (s->parts[i].ranks[k] == rank) {
                phx_step_send(m, s->parts[i].agent,
                              json_pack("{s:s, s:I, s:I, s:I, s:s}", "type",
                                        "DMODEX_REQ", "step", (json_int_t)s->id, "rank",
                                        (json_int_t)rank, "id", (json_int_t)id, "to",
                                        a->name),
                              NULL, 0);
                return;
            }
    phx_step_send(m, a->name,
                  json_pack("{s:s, s:I, s:I, s:i}", "type", "DMODEX_DONE", "step",
                            (json_int_t)s->id, "id", (json_int_t)id, "status", -1),
                  NULL, 0);
}

/* DMODEX_DATA {step, id, to, status} + blob: back to the asking agent. */
void phx_step_on_dmodex_data(phx_master_t *m, phx_master_agent_t *a,
                             const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    if (s && !part_named(s, a->name))
        return;
    const char *to = NULL;
    long long id = 0, status = -1;
    phx_error_t err;
    if (!s || phx_json_str(f->header, "to", true, &to, &err) < 0 ||
        phx_json_int(f->header, "id", true, 0, INT64_MAX, &id, &err) < 0 ||
        !part_named(s, to))
        return;
    phx_json_int(f->header, "status", false, -1000, 1000, &status, &err);
    phx_step_send(m, to,
                  json_pack("{s:s, s:I, s:I, s:i}", "type", "DMODEX_DONE", "step",
                            (json_int_t)s->id, "id", (json_int_t)id, "status",
                            (int)status),
                  f->attach, f->attach_len);
}

/* STEP_OUTPUT {step, rank, stream} + bytes: to the agent of `phx run`. */
void phx_step_on_output(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    if (!s || !part_named(s, a->name))
        return; /* only the step's agents speak for its ranks */
    phx_step_send(m, s->origin, json_copy(f->header), f->attach, f->attach_len);
}

bool phx_step_part_gets_input(const phx_step_t *s, const phx_step_part_t *p)
{
    if (s->input == PHX_STEP_IN_ALL)
        return p->nranks > 0;
    for (int k = 0; s->input >= 0 && k < p->nranks; k++)
        if (p->ranks[k] == s->input)
            return true;
    return false;
}

void phx_step_on_input(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    long long off = -1;
    phx_error_t err;
    if (!s || strcmp(a->name, s->origin) != 0 || a->links != s->origin_link) {
        phx_log_info("agent \"%s\": input of a step it did not start ignored", a->name);
        return; /* only the agent of `phx run` speaks for its stdin */
    }
    if (phx_json_int(f->header, "offset", true, 0, INT64_MAX, &off, &err) < 0) {
        phx_log_warnx("agent \"%s\": malformed STEP_INPUT ignored: %s", a->name,
                      err.text);
        return;
    }
    bool eof = json_is_true(json_object_get(f->header, "eof"));
    for (int i = 0; i < s->nparts; i++) {
        phx_step_part_t *p = &s->parts[i];
        if (strcmp(p->agent, s->origin) == 0 || !phx_step_part_gets_input(s, p))
            continue;
        if (!p->exited &&
            phx_step_send(m, p->agent,
                          json_pack("{s:s, s:I, s:I, s:b}", "type", "STEP_INPUT",
                                    "step", (json_int_t)s->id, "offset",
                                    (json_int_t)off, "eof", eof),
                          f->attach, f->attach_len) == 0)
            continue;
        /* its ranks are gone (or it is): acknowledged for it, or the
         * origin's window would wait for it for good */
        phx_step_send(m, s->origin,
                      json_pack("{s:s, s:I, s:I, s:s}", "type", "STEP_INPUT_ACK",
                                "step", (json_int_t)s->id, "offset",
                                (json_int_t)(off + (long long)f->attach_len), "agent",
                                p->agent),
                      NULL, 0);
    }
}

void phx_step_on_input_ack(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    long long off = -1, window = 0;
    phx_error_t err;
    if (!s || !part_named(s, a->name) ||
        phx_json_int(f->header, "offset", true, 0, INT64_MAX, &off, &err) < 0 ||
        phx_json_int(f->header, "window", false, 0, INT64_MAX, &window, &err) < 0)
        return;
    /* window: how far past offset the agent lets the origin send (its
     * input budget's share; absent: the whole window) */
    phx_step_send(m, s->origin,
                  json_pack("{s:s, s:I, s:I, s:s, s:I}", "type", "STEP_INPUT_ACK",
                            "step", (json_int_t)s->id, "offset", (json_int_t)off,
                            "agent", a->name, "window", (json_int_t)window),
                  NULL, 0);
}

static void resize_send(phx_step_t *s);

static void on_resize_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    resize_send(arg);
}

/* The held size to the agents of rank 0 (the input's), when it may go. */
static void resize_send(phx_step_t *s)
{
    phx_master_t *m = s->m;
    phx_winsize_t ws;
    int64_t wait = 0;
    int due = phx_winsize_gate_take(&s->resize, phx_winsize_now_ms(), &ws, &wait);
    for (int i = 0; due == 1 && i < s->nparts; i++) {
        phx_step_part_t *p = &s->parts[i];
        phx_master_agent_t *a = phx_master_agent_find(m, p->agent);
        if (strcmp(p->agent, s->origin) != 0 && !p->exited &&
            phx_step_part_gets_input(s, p) && a && a->conn &&
            phx_master_conn_backlog(a->conn) > PHX_STEP_WINSIZE_BACKLOG) {
            phx_winsize_gate_put(&s->resize, &ws); /* an agent behind: later */
            due = 0;
            wait = 1000 / PHX_WINSIZE_RATE;
        }
    }
    for (int i = 0; due == 1 && i < s->nparts; i++) {
        phx_step_part_t *p = &s->parts[i];
        if (strcmp(p->agent, s->origin) != 0 && !p->exited &&
            phx_step_part_gets_input(s, p))
            phx_step_send(m, p->agent,
                          json_pack("{s:s, s:I, s:i, s:i}", "type", "STEP_WINSIZE",
                                    "step", (json_int_t)s->id, "rows", (int)ws.rows,
                                    "cols", (int)ws.cols),
                          NULL, 0);
    }
    if (due == 0 && !evtimer_pending(s->resize_ev, NULL)) {
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000 * 1000)};
        evtimer_add(s->resize_ev, &tv);
    }
}

void phx_step_on_winsize(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    phx_winsize_t ws;
    phx_error_t err;
    if (!s || strcmp(a->name, s->origin) != 0 || a->links != s->origin_link ||
        phx_winsize_parse(f->header, &ws, &err) < 0)
        return; /* only the agent of `phx run` speaks for its terminal */
    if (!s->resize_ev && !(s->resize_ev = evtimer_new(m->base, on_resize_due, s))) {
        phx_log_warnx("step %s: out of memory: a resize of its terminal is lost",
                      s->nspace);
        return;
    }
    s->m = m;
    phx_winsize_gate_put(&s->resize, &ws);
    resize_send(s);
}
