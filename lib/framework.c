#include "lib/framework.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/munge.h"

#define RECORD_MAX (64u << 20)
/* Connections for ACKNOWLEDGE calls.  libevent's HTTP client sends one request
 * at a time per connection and waits for its answer, so every call used to
 * queue behind every other: at a few hundred tasks a second the two
 * acknowledgements per task kept ACCEPTs waiting.  Calls whose order matters
 * (ACCEPT, KILL after ACCEPT, SUPPRESS/REVIVE, REQUEST...) keep one
 * connection; acknowledgements, which the master takes in any order (an
 * older update's uuid is ignored), go to the least busy of these. */
#define ACK_CONNS 4

struct phx_fwc {
    struct event_base *base;
    phx_fwc_opts_t opts;
    phx_fwc_callbacks_t cbs;
    void *arg;
    char *framework_id;
    char stream_id[64];
    struct evhttp_connection *stream_conn;
    struct evhttp_request *stream_req;
    struct evbuffer *pending; /* RecordIO bytes not yet parsed */
    struct evhttp_connection *call_conn;
    int call_busy; /* requests made on call_conn and not yet answered */
    /* SIGNAL's own: the master answers it only once the agent has said what
     * it signalled (up to 5 s), and a connection carries one request at a
     * time: on call_conn it held ACCEPT, KILL and the others back */
    struct evhttp_connection *sig_conn;
    int sig_busy;
    struct evhttp_connection *ack_conn[ACK_CONNS];
    int ack_busy[ACK_CONNS]; /* requests made and not yet answered */
    struct event *retry_ev;
    double backoff;
    phx_masters_t masters; /* the current one is where everything goes */
    bool redirected;       /* a standby named the leader: try it next */
    bool subscribed;
    bool destroyed;
};

/* Which connection a call goes on (send_call): */
enum { LANE_CALL, LANE_ACK, LANE_SIGNAL };
#define LANE_CALL_SLOT   (-1)
#define LANE_SIGNAL_SLOT (-2)

typedef struct call_ctx {
    phx_fwc_t *c;
    phx_fwc_done_f done;
    void *arg;
    int ack_slot; /* index into ack_conn, or LANE_CALL_SLOT, LANE_SIGNAL_SLOT */
    struct evhttp_connection *conn; /* counted busy there (unless retired) */
} call_ctx_t;

static void schedule_resubscribe(phx_fwc_t *c, const char *why);
static void retry(evutil_socket_t fd, short what, void *arg);
static void retire_conns(phx_fwc_t *c);

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

phx_fwc_t *phx_fwc_create(struct event_base *base, const phx_fwc_opts_t *opts,
                          const phx_fwc_callbacks_t *cbs, void *arg, phx_error_t *err)
{
    phx_fwc_t *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->base = base;
    c->opts = *opts;
    c->cbs = *cbs;
    c->arg = arg;
    c->backoff = 0.1;
    c->opts.host = NULL; /* c->masters' current one instead */
    c->opts.masters = NULL;
    c->opts.name = dup_or_null(opts->name ? opts->name : "phx-framework");
    c->opts.user = dup_or_null(opts->user ? opts->user : "root");
    c->opts.role = dup_or_null(opts->role ? opts->role : "*");
    c->opts.munge_socket = dup_or_null(opts->munge_socket);
    c->framework_id = dup_or_null(opts->framework_id);
    if (opts->masters) {
        c->masters = *opts->masters;
    } else if (opts->host && strlen(opts->host) < sizeof(c->masters.host[0])) {
        snprintf(c->masters.host[0], sizeof(c->masters.host[0]), "%s", opts->host);
        c->masters.port[0] = opts->port;
        c->masters.n = 1;
    }
    if (c->masters.n == 0 || c->masters.cur >= c->masters.n) {
        phx_fwc_destroy(c);
        phx_error_set(err, "no usable master address");
        errno = EINVAL;
        return NULL;
    }
    c->pending = evbuffer_new();
    c->retry_ev = event_new(base, -1, 0, retry, c);
    if (!c->opts.name || !c->opts.user || !c->opts.role || !c->pending ||
        !c->retry_ev || (opts->framework_id && !c->framework_id))
        goto oom;
    return c;
oom:
    phx_fwc_destroy(c);
    phx_error_set(err, "out of memory");
    errno = ENOMEM;
    return NULL;
}

void phx_fwc_destroy(phx_fwc_t *c)
{
    if (!c)
        return;
    c->destroyed = true;
    if (c->stream_conn)
        evhttp_connection_free(c->stream_conn);
    if (c->call_conn)
        evhttp_connection_free(c->call_conn);
    if (c->sig_conn)
        evhttp_connection_free(c->sig_conn);
    for (int i = 0; i < ACK_CONNS; i++)
        if (c->ack_conn[i])
            evhttp_connection_free(c->ack_conn[i]);
    if (c->retry_ev)
        event_free(c->retry_ev);
    if (c->pending)
        evbuffer_free(c->pending);
    free((char *)c->opts.name);
    free((char *)c->opts.user);
    free((char *)c->opts.role);
    free((char *)c->opts.munge_socket);
    free(c->framework_id);
    free(c);
}

const char *phx_fwc_id(const phx_fwc_t *c)
{
    return c->subscribed ? c->framework_id : NULL;
}

static void handle_event(phx_fwc_t *c, const json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type)
        return;
    if (strcmp(type, "SUBSCRIBED") == 0) {
        const char *id = json_string_value(json_object_get(
            json_object_get(json_object_get(ev, "subscribed"), "framework_id"),
            "value"));
        if (!id)
            return;
        free(c->framework_id);
        c->framework_id = strdup(id);
        c->subscribed = true;
        c->backoff = 0.1;
        if (c->cbs.subscribed)
            c->cbs.subscribed(c, id, c->arg);
    } else if (strcmp(type, "OFFERS") == 0) {
        json_t *offers = json_object_get(json_object_get(ev, "offers"), "offers");
        if (json_is_array(offers) && c->cbs.offers)
            c->cbs.offers(c, offers, c->arg);
    } else if (strcmp(type, "RESCIND") == 0) {
        const char *id = json_string_value(json_object_get(
            json_object_get(json_object_get(ev, "rescind"), "offer_id"), "value"));
        if (id && c->cbs.rescind)
            c->cbs.rescind(c, id, c->arg);
    } else if (strcmp(type, "UPDATE") == 0) {
        json_t *st = json_object_get(json_object_get(ev, "update"), "status");
        if (!json_is_object(st))
            return;
        if (c->cbs.update)
            c->cbs.update(c, st, c->arg);
        /* a reconciliation's answer has a null uuid: nothing to acknowledge */
        if (!c->destroyed && c->opts.auto_ack &&
            json_is_string(json_object_get(st, "uuid")))
            phx_fwc_acknowledge(c, st);
    } else if (strcmp(type, "ERROR") == 0) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(ev, "error"), "message"));
        if (c->cbs.error)
            c->cbs.error(c, msg ? msg : "(no message)", c->arg);
    }
}

/* Parse every complete "<length>\n<json>" record. */
static int parse_records(phx_fwc_t *c)
{
    for (;;) {
        size_t avail = evbuffer_get_length(c->pending);
        struct evbuffer_ptr nl = evbuffer_search(c->pending, "\n", 1, NULL);
        if (nl.pos < 0)
            return avail > 20 ? -1 : 0; /* a length has at most 20 digits */
        char len_text[24];
        if (nl.pos == 0 || nl.pos > 20)
            return -1;
        evbuffer_copyout(c->pending, len_text, (size_t)nl.pos);
        len_text[nl.pos] = '\0';
        char *end;
        unsigned long long len = strtoull(len_text, &end, 10);
        if (*end || len > RECORD_MAX)
            return -1;
        if (avail < (size_t)nl.pos + 1 + len)
            return 0;
        evbuffer_drain(c->pending, (size_t)nl.pos + 1);
        char *text = malloc(len + 1);
        if (!text)
            return -1;
        evbuffer_remove(c->pending, text, len);
        json_t *ev = json_loadb(text, len, 0, NULL);
        free(text);
        if (!ev)
            return -1;
        handle_event(c, ev);
        json_decref(ev);
        if (c->destroyed)
            return 0;
    }
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
    phx_fwc_t *c = arg;
    evbuffer_add_buffer(c->pending, evhttp_request_get_input_buffer(req));
    if (evhttp_request_get_response_code(req) != 200)
        return; /* an error's body, kept for on_stream_done to tell */
    if (parse_records(c) < 0)
        schedule_resubscribe(c, "malformed event stream");
}

static int on_headers(struct evhttp_request *req, void *arg)
{
    phx_fwc_t *c = arg;
    const char *sid =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Mesos-Stream-Id");
    if (sid)
        snprintf(c->stream_id, sizeof(c->stream_id), "%s", sid);
    return 0;
}

static void on_stream_done(struct evhttp_request *req, void *arg)
{
    phx_fwc_t *c = arg;
    c->stream_req = NULL;
    if (c->destroyed)
        return;
    char why[2400], addr[PHX_MASTER_ADDR_MAX];
    phx_masters_addr(&c->masters, addr, sizeof(addr));
    bool was_subscribed = c->subscribed;
    size_t came_from = c->masters.cur;
    if (!req || evhttp_request_get_response_code(req) == 0)
        snprintf(why, sizeof(why), "could not reach the master at %s", addr);
    else if (evhttp_request_get_response_code(req) != 200) {
        /* the body came through on_chunk, or is still in the request */
        struct evbuffer *in = evbuffer_get_length(c->pending)
                                  ? c->pending
                                  : evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        char body[2048] = "", leader[PHX_MASTER_ADDR_MAX];
        evbuffer_copyout(in, body, n < sizeof(body) - 1 ? n : sizeof(body) - 1);
        snprintf(why, sizeof(why), "SUBSCRIBE answered %d from %s: %s",
                 evhttp_request_get_response_code(req), addr, body);
        if (phx_masters_refusal_text(body, strlen(body), leader, sizeof(leader)) == 1 &&
            *leader && phx_masters_follow(&c->masters, leader)) {
            c->redirected = true;
            was_subscribed = true; /* stay on the leader followed */
        }
    } else
        snprintf(why, sizeof(why), "event stream from %s ended", addr);
    /* A stream that worked is tried again at the same master first; a
     * master that did not take SUBSCRIBE is followed by the next one. */
    size_t before = came_from;
    if (!was_subscribed)
        phx_masters_next(&c->masters);
    if (c->masters.cur != before)
        retire_conns(c);
    schedule_resubscribe(c, why);
}

/* The calls' connections go to the master of before: let them finish
 * (their callbacks run, failing if it is gone) and make new ones. */
static void retire_conns(phx_fwc_t *c)
{
    if (c->call_conn) {
        if (c->call_busy > 0)
            evhttp_connection_free_on_completion(c->call_conn);
        else
            evhttp_connection_free(c->call_conn);
        c->call_conn = NULL;
        c->call_busy = 0;
    }
    if (c->sig_conn) {
        if (c->sig_busy > 0)
            evhttp_connection_free_on_completion(c->sig_conn);
        else
            evhttp_connection_free(c->sig_conn);
        c->sig_conn = NULL;
        c->sig_busy = 0;
    }
    for (int i = 0; i < ACK_CONNS; i++) {
        if (!c->ack_conn[i])
            continue;
        if (c->ack_busy[i] > 0)
            evhttp_connection_free_on_completion(c->ack_conn[i]);
        else
            evhttp_connection_free(c->ack_conn[i]);
        c->ack_conn[i] = NULL;
        c->ack_busy[i] = 0;
    }
}

/* Nagle off on a connection's socket, once made (evhttp makes it in
 * evhttp_make_request, or again after a reconnect: set at each call, one
 * system call).  With it on, the tail of a call longer than a TCP segment
 * (an ACCEPT of a hundred jobs is ~100 KB) waited for the master's ACK of
 * the segments before it, which the master delayed (up to 40 ms) as it
 * had no answer to send before the whole body: every core idle meanwhile. */
static void call_nodelay(struct evhttp_connection *conn)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    int fd = bev ? (int)bufferevent_getfd(bev) : -1, one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int subscribe(phx_fwc_t *c, phx_error_t *err)
{
    if (c->stream_conn)
        evhttp_connection_free(c->stream_conn);
    evbuffer_drain(c->pending, evbuffer_get_length(c->pending));
    c->subscribed = false;
    c->stream_id[0] = '\0';
    c->stream_conn =
        evhttp_connection_base_new(c->base, NULL, phx_masters_host(&c->masters),
                                   (unsigned short)phx_masters_port(&c->masters));
    struct evhttp_request *req =
        c->stream_conn ? evhttp_request_new(on_stream_done, c) : NULL;
    if (!req)
        return phx_error_set(err, "out of memory");
    evhttp_request_set_chunked_cb(req, on_chunk);
    evhttp_request_set_header_cb(req, on_headers);
    json_t *info =
        json_pack("{s:s, s:s, s:[s], s:f}", "user", c->opts.user, "name", c->opts.name,
                  "roles", c->opts.role, "failover_timeout", c->opts.failover_timeout);
    if (c->framework_id)
        json_object_set_new(info, "id", json_pack("{s:s}", "value", c->framework_id));
    json_t *call = json_pack("{s:s, s:{s:o}}", "type", "SUBSCRIBE", "subscribe",
                             "framework_info", info);
    char *body = phx_json_dump(call);
    json_decref(call);
    if (!body) {
        evhttp_request_free(req);
        return phx_error_set(err, "out of memory");
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", phx_masters_host(&c->masters));
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Accept", "application/json");
    if (c->opts.authenticate) {
        phx_munge_t *m = phx_munge_create(c->opts.munge_socket, err);
        char *cred = NULL;
        char payload[256];
        if (phx_http_auth_payload("POST", "/api/v1/scheduler", body, strlen(body),
                                  payload, sizeof(payload)) < 0)
            phx_error_set(err, "could not hash the SUBSCRIBE call");
        else if (!m || phx_munge_encode(m, payload, strlen(payload), 0, &cred, err) < 0)
            cred = NULL;
        if (!cred) {
            phx_munge_destroy(m);
            free(body);
            evhttp_request_free(req);
            return -1;
        }
        phx_munge_destroy(m);
        char auth[PHX_MUNGE_CRED_MAX + 16];
        snprintf(auth, sizeof(auth), "Munge %s", cred);
        free(cred);
        evhttp_add_header(h, "Authorization", auth);
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    free(body);
    if (evhttp_make_request(c->stream_conn, req, EVHTTP_REQ_POST, "/api/v1/scheduler") <
        0)
        return phx_error_set(err, "could not send SUBSCRIBE");
    call_nodelay(c->stream_conn);
    c->stream_req = req;
    return 0;
}

static void retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_fwc_t *c = arg;
    phx_error_t err;
    if (subscribe(c, &err) < 0)
        schedule_resubscribe(c, err.text);
}

static void schedule_resubscribe(phx_fwc_t *c, const char *why)
{
    c->subscribed = false;
    if (c->cbs.disconnected)
        c->cbs.disconnected(c, why, c->arg);
    if (c->destroyed)
        return;
    double d = c->backoff;
    c->backoff = c->backoff * 2 > 5 ? 5 : c->backoff * 2;
    /* To the leader a standby named: soon, but at most once a second
     * while the standbys still name a leader that is gone. */
    if (c->redirected && d > 1.0)
        d = 1.0;
    c->redirected = false;
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (time_t)d) * 1e6)};
    if (!event_pending(c->retry_ev, EV_TIMEOUT, NULL))
        event_add(c->retry_ev, &tv);
}

int phx_fwc_start(phx_fwc_t *c, phx_error_t *err)
{
    return subscribe(c, err);
}

static void on_call_done(struct evhttp_request *req, void *arg)
{
    call_ctx_t *ctx = arg;
    phx_fwc_t *c = ctx->c;
    bool live = true; /* one of our connections, not one retired */
    if (ctx->ack_slot >= 0 && ctx->conn == c->ack_conn[ctx->ack_slot])
        c->ack_busy[ctx->ack_slot]--;
    else if (ctx->ack_slot == LANE_CALL_SLOT && ctx->conn == c->call_conn)
        c->call_busy--;
    else if (ctx->ack_slot == LANE_SIGNAL_SLOT && ctx->conn == c->sig_conn)
        c->sig_busy--;
    else
        live = false;
    /* An answer that closed the connection with calls queued behind it:
     * evhttp has made its socket again, before this callback, and the
     * queued calls go out on it (send_call's call_nodelay was for the old
     * one). */
    if (live)
        call_nodelay(ctx->conn);
    int status = req ? evhttp_request_get_response_code(req) : 0;
    char *body = NULL;
    if (req) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        if ((body = malloc(n + 1))) {
            evbuffer_copyout(in, body, n);
            body[n] = '\0';
        }
    }
    if (ctx->done)
        ctx->done(c, status, body ? body : "", ctx->arg);
    else if (status != 202 && c->cbs.error) {
        char msg[600];
        snprintf(msg, sizeof(msg), "call answered %d: %s", status, body ? body : "");
        c->cbs.error(c, msg, c->arg);
    }
    free(body);
    free(ctx);
}

/* The connection for a call, made on first use; its ack slot or -1. */
static struct evhttp_connection *conn_for(phx_fwc_t *c, int lane, int *slot)
{
    struct evhttp_connection **conn = &c->call_conn;
    *slot = LANE_CALL_SLOT;
    if (lane == LANE_SIGNAL) {
        *slot = LANE_SIGNAL_SLOT;
        conn = &c->sig_conn;
    } else if (lane == LANE_ACK) {
        *slot = 0;
        for (int i = 1; i < ACK_CONNS; i++)
            if (c->ack_busy[i] < c->ack_busy[*slot])
                *slot = i;
        conn = &c->ack_conn[*slot];
    }
    if (!*conn)
        *conn =
            evhttp_connection_base_new(c->base, NULL, phx_masters_host(&c->masters),
                                       (unsigned short)phx_masters_port(&c->masters));
    return *conn;
}

static int send_call(phx_fwc_t *c, json_t *call, int lane, phx_fwc_done_f done,
                     void *arg)
{
    if (!c->subscribed || !call) {
        json_decref(call);
        errno = ENOTCONN;
        return -1;
    }
    json_object_set_new(call, "framework_id",
                        json_pack("{s:s}", "value", c->framework_id));
    int slot;
    struct evhttp_connection *conn = conn_for(c, lane, &slot);
    if (!conn) {
        json_decref(call);
        return -1;
    }
    call_ctx_t *ctx = calloc(1, sizeof(*ctx));
    struct evhttp_request *req = ctx ? evhttp_request_new(on_call_done, ctx) : NULL;
    char *body = phx_json_dump(call);
    json_decref(call);
    if (!req || !body) {
        if (req)
            evhttp_request_free(req);
        free(ctx);
        free(body);
        return -1;
    }
    ctx->c = c;
    ctx->done = done;
    ctx->arg = arg;
    ctx->ack_slot = slot;
    ctx->conn = conn;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", phx_masters_host(&c->masters));
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Mesos-Stream-Id", c->stream_id);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    free(body);
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, "/api/v1/scheduler") < 0) {
        free(ctx); /* the request was freed by libevent */
        return -1;
    }
    call_nodelay(conn);
    if (slot >= 0)
        c->ack_busy[slot]++;
    else if (slot == LANE_SIGNAL_SLOT)
        c->sig_busy++;
    else
        c->call_busy++;
    return 0;
}

int phx_fwc_call(phx_fwc_t *c, json_t *json, phx_fwc_done_f done, void *arg)
{
    return send_call(c, json, LANE_CALL, done, arg);
}

int phx_fwc_accept(phx_fwc_t *c, const json_t *offer_ids, const json_t *operations,
                   phx_fwc_done_f done, void *arg)
{
    return phx_fwc_call(c,
                        json_pack("{s:s, s:{s:O, s:O, s:{s:f}}}", "type", "ACCEPT",
                                  "accept", "offer_ids", offer_ids, "operations",
                                  operations, "filters", "refuse_seconds", 0.0),
                        done, arg);
}

int phx_fwc_decline(phx_fwc_t *c, const json_t *offer_ids, double refuse_seconds)
{
    return phx_fwc_call(c,
                        json_pack("{s:s, s:{s:O, s:{s:f}}}", "type", "DECLINE",
                                  "decline", "offer_ids", offer_ids, "filters",
                                  "refuse_seconds", refuse_seconds),
                        NULL, NULL);
}

int phx_fwc_kill(phx_fwc_t *c, const char *task_id, const char *agent_id)
{
    json_t *k = json_pack("{s:{s:s}}", "task_id", "value", task_id);
    if (agent_id)
        json_object_set_new(k, "agent_id", json_pack("{s:s}", "value", agent_id));
    return phx_fwc_call(c, json_pack("{s:s, s:o}", "type", "KILL", "kill", k), NULL,
                        NULL);
}

int phx_fwc_acknowledge(phx_fwc_t *c, const json_t *status)
{
    json_t *task = json_object_get(status, "task_id");
    json_t *agent = json_object_get(status, "agent_id");
    json_t *uuid = json_object_get(status, "uuid");
    if (!task || !json_is_string(uuid))
        return -1;
    json_t *ack = json_pack("{s:O, s:O}", "task_id", task, "uuid", uuid);
    if (agent)
        json_object_set(ack, "agent_id", agent);
    return send_call(c,
                     json_pack("{s:s, s:o}", "type", "ACKNOWLEDGE", "acknowledge", ack),
                     LANE_ACK, NULL, NULL);
}

int phx_fwc_reconcile(phx_fwc_t *c, const json_t *task_ids)
{
    json_t *tasks = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(task_ids, i, id)
        json_array_append_new(tasks, json_pack("{s:{s:O}}", "task_id", "value", id));
    return phx_fwc_call(
        c,
        json_pack("{s:s, s:{s:o}}", "type", "RECONCILE", "reconcile", "tasks", tasks),
        NULL, NULL);
}

static int simple(phx_fwc_t *c, const char *type)
{
    return phx_fwc_call(c, json_pack("{s:s}", "type", type), NULL, NULL);
}

int phx_fwc_revive(phx_fwc_t *c)
{
    return simple(c, "REVIVE");
}

int phx_fwc_suppress(phx_fwc_t *c)
{
    return simple(c, "SUPPRESS");
}

int phx_fwc_teardown(phx_fwc_t *c)
{
    return simple(c, "TEARDOWN");
}

/* obj's "signal": 1-64, not glibc's own 32 and 33. */
static int signal_field(const json_t *obj, long long *sig, phx_error_t *err)
{
    if (phx_json_int(obj, "signal", true, 1, 64, sig, err) < 0)
        return -1;
    if (*sig == 32 || *sig == 33)
        return phx_error_set(err, "signal %lld is the C library's own", *sig);
    return 0;
}

int phx_task_warn_parse(const json_t *obj, phx_task_warn_t *out, phx_error_t *err)
{
    json_t *w = NULL;
    long long sig, before;
    const char *to;
    if (phx_json_obj(obj, "warn", false, &w, err) < 0)
        return -1;
    if (!w)
        return 0;
    if (signal_field(w, &sig, err) < 0 ||
        phx_json_int(w, "before", true, 0, 65535, &before, err) < 0 ||
        phx_json_str(w, "to", true, &to, err) < 0)
        return phx_error_prefix(err, "warn");
    if (strcmp(to, "main") != 0 && strcmp(to, "steps") != 0)
        return phx_error_set(err, "warn.to must be \"main\" or \"steps\", not \"%s\"",
                             to);
    *out = (phx_task_warn_t){(int)sig, (int)before, strcmp(to, "main") == 0};
    return 1;
}

static const char *const sig_to_names[] = {"steps", "main", "all"};

const char *phx_task_sig_to_name(phx_task_sig_to_t to)
{
    return (unsigned)to < 3 ? sig_to_names[to] : "?";
}

int phx_task_signal_parse(const json_t *obj, phx_task_signal_t *out, phx_error_t *err)
{
    long long sig;
    const char *to;
    if (signal_field(obj, &sig, err) < 0 || phx_json_str(obj, "to", true, &to, err) < 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(to, sig_to_names[i]) == 0) {
            *out = (phx_task_signal_t){(int)sig, (phx_task_sig_to_t)i};
            return 0;
        }
    return phx_error_set(
        err, "\"to\" must be \"steps\", \"main\" or \"all\", not \"%.32s\"", to);
}

int phx_fwc_signal(phx_fwc_t *c, const char *task_id, const phx_task_signal_t *s,
                   phx_fwc_done_f done, void *arg)
{
    return send_call(c,
                     json_pack("{s:s, s:{s:{s:s}, s:i, s:s}}", "type", "SIGNAL",
                               "signal", "task_id", "value", task_id, "signal",
                               s->signal, "to", phx_task_sig_to_name(s->to)),
                     LANE_SIGNAL, done, arg);
}
