/* phx-master: a framework's SIGNAL answered once the agent has said what it
 * signalled (scancel -s; lib/framework.h phx_task_signal_t).
 *
 * An agent whose REGISTER says "features": ["signal_done"] gets the SIGNAL
 * with "reply": N and answers SIGNAL_DONE {"reply": N, "sent": n, "error"}
 * (daemons/agent/signal.c).  The scheduler call's HTTP answer waits for it:
 * 202 {"sent": n} when n > 0; 409 "SIGNAL: task T: agent "n2" signalled
 * nothing: why" when none got it; 202 {"sent": null, "unconfirmed": true}
 * when the agent does not answer within SIGNAL_WAIT seconds (it took the
 * frame: the signal may still go).  An agent that goes away first: 409.
 * Older agents are not waited for (202 as the frame leaves). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/master.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"

#define SIGNAL_WAIT 5 /* seconds */

struct phx_sigwait {
    phx_master_t *m;
    uint64_t id;
    phx_master_agent_t *agent; /* borrowed: agents live as long as the master */
    char task_id[128];
    phx_http_deferred_t *reply;
    struct event *timer;
    struct phx_sigwait *next;
};

static void unlink_free(phx_sigwait_t *w)
{
    for (phx_sigwait_t **p = &w->m->sigwaits; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    if (w->timer)
        event_free(w->timer);
    phx_http_deferred_free(w->reply);
    free(w);
}

static void timed_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_sigwait_t *w = arg;
    struct evhttp_request *req = phx_http_deferred_req(w->reply);
    phx_log_warnx("task %s: agent \"%s\" did not say within %d s what it signalled",
                  w->task_id, w->agent->name, SIGNAL_WAIT);
    if (req)
        phx_http_reply_json(req, 202,
                            json_pack("{s:n, s:b}", "sent", "unconfirmed", 1));
    unlink_free(w);
}

int phx_sigwait_start(phx_master_t *m, struct evhttp_request *req,
                      phx_master_agent_t *a, const char *task_id, uint64_t id)
{
    phx_sigwait_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    w->m = m;
    w->id = id;
    w->agent = a;
    snprintf(w->task_id, sizeof(w->task_id), "%s", task_id);
    struct timeval tv = {SIGNAL_WAIT, 0};
    if (!(w->reply = phx_http_defer(req)) ||
        !(w->timer = evtimer_new(m->base, timed_out, w)) ||
        evtimer_add(w->timer, &tv) < 0) {
        if (w->timer)
            event_free(w->timer);
        phx_http_deferred_free(w->reply);
        free(w);
        return -1;
    }
    w->next = m->sigwaits;
    m->sigwaits = w;
    return 0;
}

void phx_sigwait_done(phx_master_t *m, phx_master_agent_t *a, const json_t *hdr)
{
    json_t *r = json_object_get(hdr, "reply"), *sent = json_object_get(hdr, "sent");
    const char *why = json_string_value(json_object_get(hdr, "error"));
    if (!json_is_integer(r) || !json_is_integer(sent)) {
        phx_log_warnx(
            "agent \"%s\": SIGNAL_DONE without \"reply\" or \"sent\": ignored",
            a->name);
        return;
    }
    phx_sigwait_t *w = m->sigwaits;
    while (w && (w->id != (uint64_t)json_integer_value(r) || w->agent != a))
        w = w->next;
    if (!w) /* answered already (timed out) */
        return;
    struct evhttp_request *req = phx_http_deferred_req(w->reply);
    json_int_t n = json_integer_value(sent);
    if (n > 0)
        phx_log_info("task %s: agent \"%s\" signalled %" JSON_INTEGER_FORMAT
                     " processes",
                     w->task_id, a->name, n);
    else
        phx_log_info("task %s: agent \"%s\" signalled nothing: %.200s", w->task_id,
                     a->name, why ? why : "no reason given");
    if (req && n > 0)
        phx_http_reply_json(req, 202, json_pack("{s:I}", "sent", n));
    else if (req)
        phx_http_reply_error(req, 409,
                             "SIGNAL: task %s: agent \"%s\" signalled nothing: %.200s",
                             w->task_id, a->name, why ? why : "no reason given");
    unlink_free(w);
}

void phx_sigwait_agent_gone(phx_master_t *m, phx_master_agent_t *a)
{
    phx_sigwait_t *w = m->sigwaits, *next;
    for (; w; w = next) {
        next = w->next;
        if (w->agent != a)
            continue;
        struct evhttp_request *req = phx_http_deferred_req(w->reply);
        if (req)
            phx_http_reply_error(req, 409,
                                 "SIGNAL: task %s: agent \"%s\" went away before it "
                                 "said what it signalled",
                                 w->task_id, a->name);
        unlink_free(w);
    }
}

void phx_sigwaits_destroy(phx_master_t *m)
{
    while (m->sigwaits) {
        struct evhttp_request *req = phx_http_deferred_req(m->sigwaits->reply);
        if (req)
            phx_http_reply_error(req, 503, "SIGNAL: task %s: the master is stopping",
                                 m->sigwaits->task_id);
        unlink_free(m->sigwaits);
    }
}
