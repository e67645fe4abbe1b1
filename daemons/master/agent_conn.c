/* The agent wire on the master side: accept connections, decode frames,
 * dispatch them from a table, send frames, close cleanly.  A connection is
 * freed only from a deferred event, never inside its own callback.
 *
 * Channel authentication (doc/agent.md): before REGISTERED only REGISTER
 * comes in and only REGISTERED or ERROR goes out, unsealed.  From the frame
 * after REGISTERED on, every frame sent is sealed with the connection's
 * session key (lib/wire_seal.h) and every frame received must be sealed,
 * verified and next in sequence; anything else closes the connection. */
#include <errno.h>
#include <sys/ioctl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "daemons/master/step.h"
#include "lib/http.h"
#include "lib/log.h"
#include "lib/wire.h"
#include "lib/wire_seal.h"

struct phx_master_conn {
    phx_master_t *m;
    struct bufferevent *bev;
    phx_wire_decoder_t *dec;
    char peer[64];
    uint64_t serial;
    phx_master_agent_t *agent; /* once registered */
    phx_mac_t *session;        /* the launch key, once registered */
    uint64_t launch_seq;       /* the last LAUNCH's sequence number */
    bool sealing;              /* REGISTERED sent: every frame sealed */
    uint64_t seal_sent;        /* number of the last frame sealed */
    uint64_t seal_received;    /* number of the last sealed frame accepted */
    bool registering;
    bool quiet;         /* evicted: its close is logged at debug level */
    double accepted_at; /* monotonic: REGISTER is due within REGISTER_SECONDS */
    bool closed;
    bool free_scheduled;
    int refs;
    LIST_ENTRY(phx_master_conn) link;
};

typedef void (*frame_handler_f)(phx_master_conn_t *c, const phx_frame_t *f);

static void on_heartbeat(phx_master_conn_t *c, const phx_frame_t *f);
static void on_status(phx_master_conn_t *c, const phx_frame_t *f);
static void on_step(phx_master_conn_t *c, const phx_frame_t *f);
static void on_signal_done(phx_master_conn_t *c, const phx_frame_t *f);

/* Frames a registered agent may send.  REGISTER is handled before this. */
static const struct {
    const char *type;
    frame_handler_f handler;
} handlers[] = {
    /* clang-format off */
    {"HEARTBEAT", on_heartbeat},
    {"STATUS", on_status},
    {"STEP_REQUEST", on_step},
    {"STEP_EXIT", on_step},
    {"STEP_ABORT", on_step},
    {"STEP_OUTPUT", on_step},
    {"STEP_INPUT", on_step},
    {"STEP_INPUT_ACK", on_step},
    {"STEP_WINSIZE", on_step},
    {"FENCE", on_step},
    {"DMODEX", on_step},
    {"DMODEX_DATA", on_step},
    {"SIGNAL_DONE", on_signal_done},
    /* clang-format on */
};

const char *phx_master_conn_peer(const phx_master_conn_t *c)
{
    return c->peer;
}

static void conn_free(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_conn_t *c = arg;
    if (c->refs > 0) {
        c->free_scheduled = false; /* the last release frees it */
        return;
    }
    LIST_REMOVE(c, link);
    if (c->bev)
        bufferevent_free(c->bev);
    phx_wire_decoder_destroy(c->dec);
    phx_mac_destroy(c->session);
    free(c);
}

static void schedule_free(phx_master_conn_t *c)
{
    if (c->free_scheduled)
        return;
    c->free_scheduled = true;
    struct timeval zero = {0, 0};
    if (event_base_once(c->m->base, -1, EV_TIMEOUT, conn_free, c, &zero) < 0)
        phx_log_err("could not schedule freeing connection from %s", c->peer);
}

void phx_master_conn_hold(phx_master_conn_t *c)
{
    c->refs++;
}

void phx_master_conn_release(phx_master_conn_t *c)
{
    if (--c->refs == 0 && c->closed &&
        (!c->bev || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
        schedule_free(c);
}

bool phx_master_conn_closed(const phx_master_conn_t *c)
{
    return c->closed;
}

void phx_master_conn_set_registering(phx_master_conn_t *c, bool on)
{
    c->registering = on;
}

bool phx_master_conn_registering(const phx_master_conn_t *c)
{
    return c->registering;
}

void phx_master_conn_attach(phx_master_conn_t *c, phx_master_agent_t *a)
{
    c->agent = a;
    a->conn = c;
    a->links++;
}

int phx_master_conn_new_session(phx_master_conn_t *c, char key_hex[PHX_MAC_HEX_LEN + 1])
{
    unsigned char key[PHX_MAC_KEY_LEN];
    if (c->closed) {
        errno = ENOTCONN;
        return -1;
    }
    if (phx_mac_random(key, sizeof(key)) < 0)
        return -1;
    phx_mac_t *mac = phx_mac_create(key, sizeof(key), NULL);
    if (mac)
        phx_mac_to_hex(key, sizeof(key), key_hex);
    phx_mac_wipe(key, sizeof(key));
    if (!mac)
        return -1;
    phx_mac_destroy(c->session);
    c->session = mac;
    c->launch_seq = 0;
    c->sealing = false;
    c->seal_sent = c->seal_received = 0;
    return 0;
}

void phx_master_conn_start_sealing(phx_master_conn_t *c)
{
    if (!c->closed && c->session)
        c->sealing = true;
}

int phx_master_conn_sign_launch(phx_master_conn_t *c, const char *text, size_t len,
                                uint64_t *seq, char mac_hex[PHX_MAC_HEX_LEN + 1])
{
    unsigned char mac[PHX_MAC_LEN];
    if (!c->session || c->closed) {
        errno = ENOTCONN;
        return -1;
    }
    if (phx_mac_compute_seq(c->session, "phx-launch", c->launch_seq + 1, text, len,
                            mac) < 0)
        return -1;
    *seq = ++c->launch_seq;
    phx_mac_to_hex(mac, sizeof(mac), mac_hex);
    return 0;
}

static void on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    phx_master_conn_t *c = arg;
    if (c->refs == 0)
        schedule_free(c);
}

static void on_closing_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    phx_master_conn_t *c = arg;
    if (c->refs == 0)
        schedule_free(c);
}

/* Detach from the agent; the connection's memory goes once written out. */
void phx_master_conn_close(phx_master_conn_t *c, const char *why)
{
    if (c->closed)
        return;
    c->closed = true;
    phx_mac_destroy(c->session); /* nothing is signed on a closed connection */
    c->session = NULL;
    c->sealing = false;
    c->seal_sent = c->seal_received = 0;
    phx_master_agent_t *a = c->agent;
    if (a) {
        phx_log_notice("agent \"%s\" (%s) disconnected: %s", a->name, c->peer, why);
        a->conn = NULL;
        c->agent = NULL;
        phx_sigwait_agent_gone(c->m, a);
        if (a->state == PHX_AGENT_UP)
            phx_master_agent_set_state(c->m, a, PHX_AGENT_UNREACHABLE, why);
    } else if (c->quiet) {
        phx_log_debug("closing connection from %s: %s", c->peer, why);
    } else {
        phx_log_warnx("closing connection from %s: %s", c->peer, why);
    }
    if (c->bev) {
        /* Let a final ERROR frame go out first: free once the output
         * drained, the peer went away, or a short write timeout passed. */
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            struct timeval tv = {2, 0};
            bufferevent_set_timeouts(c->bev, NULL, &tv);
            bufferevent_setcb(c->bev, NULL, on_drained, on_closing_event, c);
            return;
        }
    }
    if (c->refs == 0)
        schedule_free(c);
}

size_t phx_master_conn_backlog(const phx_master_conn_t *c)
{
    return c->closed ? 0 : evbuffer_get_length(bufferevent_get_output(c->bev));
}

int phx_master_conn_send(phx_master_conn_t *c, json_t *hdr, const void *attach,
                         size_t attach_len)
{
    if (c->closed) {
        json_decref(hdr);
        errno = ENOTCONN;
        return -1;
    }
    uint8_t *buf;
    size_t len;
    phx_error_t err;
    const char *type = json_string_value(json_object_get(hdr, "type"));
    if (!c->sealing &&
        !(type && (strcmp(type, "REGISTERED") == 0 || strcmp(type, "ERROR") == 0))) {
        /* The agent takes nothing else before its key: a bug if reached. */
        phx_log_errx("not sending \"%.40s\" to %s before REGISTERED", type ? type : "?",
                     c->peer);
        json_decref(hdr);
        errno = ENOTCONN;
        return -1;
    }
    int rc = c->sealing
                 ? phx_wire_seal(c->session, PHX_SEAL_M2A, c->seal_sent + 1, hdr,
                                 attach, attach_len, c->m->max_frame, &buf, &len, &err)
                 : phx_wire_encode(hdr, attach, attach_len, c->m->max_frame, &buf, &len,
                                   &err);
    json_decref(hdr);
    if (rc < 0) {
        phx_log_errx("could not send to %s: %s", c->peer, err.text);
        return -1;
    }
    rc = bufferevent_write(c->bev, buf, len);
    free(buf);
    if (rc < 0)
        phx_master_conn_close(c, "could not queue a frame");
    else if (c->sealing)
        c->seal_sent++;
    return rc;
}

int phx_master_conn_send_text(phx_master_conn_t *c, const char *type, const char *text,
                              size_t len)
{
    if (c->closed || !c->sealing) { /* LAUNCH and the like: sealed only */
        errno = ENOTCONN;
        return -1;
    }
    uint8_t *buf;
    size_t n;
    phx_error_t err;
    if (phx_wire_seal_text(c->session, PHX_SEAL_M2A, c->seal_sent + 1, type, text, len,
                           c->m->max_frame, &buf, &n, &err) < 0) {
        phx_log_errx("could not send to %s: %s", c->peer, err.text);
        return -1;
    }
    int rc = bufferevent_write(c->bev, buf, n);
    free(buf);
    if (rc < 0)
        phx_master_conn_close(c, "could not queue a frame");
    else
        c->seal_sent++;
    return rc;
}

struct phx_master_blob {
    int refs;
    size_t len;
    void *data;
    unsigned char digest[PHX_MAC_LEN]; /* SHA-256 of data: what frames seal */
};

phx_master_blob_t *phx_master_blob_create(void *data, size_t len)
{
    phx_master_blob_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    if (phx_sha256(data, len, b->digest) < 0) {
        free(b);
        return NULL;
    }
    b->refs = 1;
    b->len = len;
    b->data = data;
    return b;
}

void phx_master_blob_release(phx_master_blob_t *b)
{
    if (b && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

/* libevent's cleanup of a reference: the frame was written or dropped. */
static void blob_written(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    phx_master_blob_release(arg);
}

int phx_master_conn_send_shared(phx_master_conn_t *c, json_t *hdr, phx_master_blob_t *b,
                                phx_error_t *err)
{
    if (c->closed || !c->sealing) {
        json_decref(hdr);
        errno = ENOTCONN;
        return phx_error_set(err, "not connected");
    }
    uint8_t *head;
    size_t len;
    int rc = phx_wire_seal_head(c->session, PHX_SEAL_M2A, c->seal_sent + 1, hdr,
                                b->digest, b->len, c->m->max_frame, &head, &len, err);
    json_decref(hdr);
    if (rc < 0)
        return -1;
    /* both pieces or neither: a frame cut short would desynchronise the
     * stream */
    struct evbuffer *frame = evbuffer_new();
    rc = frame ? evbuffer_add(frame, head, len) : -1;
    free(head);
    if (rc == 0 && b->len > 0) {
        b->refs++;
        if ((rc = evbuffer_add_reference(frame, b->data, b->len, blob_written, b)) < 0)
            b->refs--;
    }
    if (rc == 0)
        rc = evbuffer_add_buffer(bufferevent_get_output(c->bev), frame);
    if (frame)
        evbuffer_free(frame); /* releases the blob if the frame was not moved */
    if (rc < 0) {
        errno = ENOMEM;
        phx_master_conn_close(c, "could not queue a frame");
        return phx_error_set(err, "could not queue a frame");
    }
    c->seal_sent++;
    return 0;
}

/* Tell the peer why, then close. */
static void refuse(phx_master_conn_t *c, const char *why)
{
    phx_master_conn_send(c, json_pack("{s:s, s:s}", "type", "ERROR", "message", why),
                         NULL, 0);
    phx_master_conn_close(c, why);
}

static void on_heartbeat(phx_master_conn_t *c, const phx_frame_t *f)
{
    (void)f;
    c->agent->last_seen = phx_master_now();
    phx_master_conn_send(c, json_pack("{s:s}", "type", "HEARTBEAT_ACK"), NULL, 0);
}

static void on_signal_done(phx_master_conn_t *c, const phx_frame_t *f)
{
    phx_sigwait_done(c->m, c->agent, f->header);
}

static void on_status(phx_master_conn_t *c, const phx_frame_t *f)
{
    c->agent->last_seen = phx_master_now();
    phx_tasks_on_status(c->m, c->agent, f->header);
}

/* Step frames: step.h. */
static void on_step(phx_master_conn_t *c, const phx_frame_t *f)
{
    c->agent->last_seen = phx_master_now();
    phx_step_on_frame(c->m, c->agent, f);
}

static void dispatch(phx_master_conn_t *c, const phx_frame_t *f)
{
    if (!c->agent) {
        if (c->registering) {
            refuse(c, "frame before registration completed");
        } else if (strcmp(f->type, "REGISTER") != 0) {
            char why[128];
            snprintf(why, sizeof(why), "first frame must be REGISTER, not \"%.40s\"",
                     f->type);
            refuse(c, why);
        } else if (c->m->standby) {
            /* another master leads: name it (leader.c), then close */
            json_t *why = phx_master_standby_refusal(c->m, false);
            phx_log_info("agent connection from %s: refused, %s", c->peer,
                         json_string_value(json_object_get(why, "message")));
            json_object_set_new(why, "type", json_string("ERROR"));
            phx_master_conn_send(c, why, NULL, 0);
            phx_master_conn_close(c, "standby");
        } else {
            phx_master_register(c, c->m, f->header);
        }
        return;
    }
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (strcmp(f->type, handlers[i].type) == 0) {
            handlers[i].handler(c, f);
            return;
        }
    }
    char why[128];
    snprintf(why, sizeof(why), "unknown frame type \"%.40s\"", f->type);
    refuse(c, why);
}

/* After REGISTERED, only a sealed frame next in sequence is taken: anything
 * else may be an attacker's, and closes the connection. */
static void receive(phx_master_conn_t *c, const phx_frame_t *f)
{
    if (!c->sealing) {
        if (c->agent)
            refuse(c, "frame before the session key was sent");
        else
            dispatch(c, f);
        return;
    }
    phx_frame_t inner;
    phx_error_t err;
    if (phx_wire_unseal(c->session, PHX_SEAL_A2M, &c->seal_received, f, c->m->max_frame,
                        &inner, &err) < 0) {
        char why[PHX_ERROR_TEXT_MAX + 32];
        snprintf(why, sizeof(why), "frame refused: %s", err.text);
        refuse(c, why);
        return;
    }
    dispatch(c, &inner);
    phx_frame_clear(&inner);
}

/* Before REGISTER anyone on the network may connect: what such peers may
 * make the master hold is bounded (each could otherwise buffer a whole
 * max_frame, on as many connections as they opened), and they may not keep
 * agents out: a connection must send REGISTER within REGISTER_SECONDS, and
 * past UNREGISTERED_CONNS_MAX waiting ones the oldest goes, not the new one
 * (refusing new ones let 40 idle connections keep agents from registering).
 * An agent sends REGISTER as soon as it is connected. */
#define UNREGISTERED_CONNS_MAX 32
#define UNREGISTERED_BYTES_MAX (4u << 20)
#define REGISTER_SECONDS       5.0

static bool waiting(const phx_master_conn_t *c)
{
    return !c->agent && !c->registering && !c->closed;
}

void phx_master_conns_check(phx_master_t *m, double now)
{
    phx_master_conn_t *c, *next;
    for (c = LIST_FIRST(&m->conns); c; c = next) {
        next = LIST_NEXT(c, link);
        if (waiting(c) && now - c->accepted_at > REGISTER_SECONDS)
            refuse(c, "no REGISTER within 5 s");
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    phx_master_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    phx_error_t err;
    while (!c->closed && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (phx_wire_decoder_feed(c->dec, v.iov_base, v.iov_len, &err) < 0) {
            refuse(c, err.text);
            return;
        }
        evbuffer_drain(in, v.iov_len);
        if (!c->agent && phx_wire_decoder_pending(c->dec) > UNREGISTERED_BYTES_MAX) {
            refuse(c, "more than 4 MiB before registering");
            return;
        }
        phx_frame_t f;
        int r = 0;
        while (!c->closed && (r = phx_wire_decoder_next(c->dec, &f, &err)) == 1) {
            receive(c, &f);
            phx_frame_clear(&f);
        }
        if (!c->closed && r < 0) {
            refuse(c, err.text);
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    phx_master_conn_t *c = arg;
    if (what & BEV_EVENT_EOF) {
        if (phx_wire_decoder_pending(c->dec) > 0)
            phx_master_conn_close(c, "connection closed inside a frame (truncated)");
        else
            phx_master_conn_close(c, "connection closed");
    } else if (what & BEV_EVENT_ERROR) {
        phx_master_conn_close(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    } else if (what & BEV_EVENT_TIMEOUT) {
        phx_master_conn_close(c, "no frame within the heartbeat timeout");
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    phx_master_t *m = arg;
    int unregistered = 0;
    /* the oldest waiting connection with nothing to read (one whose
     * REGISTER is already in its socket is an agent's: kept if possible) */
    phx_master_conn_t *o, *oldest = NULL, *oldest_any = NULL;
    LIST_FOREACH(o, &m->conns, link)
    if (waiting(o)) {
        int pending = 0;
        unregistered++;
        oldest_any = o; /* the list is newest first */
        if (ioctl(bufferevent_getfd(o->bev), FIONREAD, &pending) == 0 && pending == 0 &&
            evbuffer_get_length(bufferevent_get_input(o->bev)) == 0)
            oldest = o;
    }
    if (!oldest)
        oldest = oldest_any;
    if (unregistered >= UNREGISTERED_CONNS_MAX && oldest) {
        static double warned;
        double now = phx_master_now();
        if (now - warned >= 10) {
            warned = now;
            phx_log_warnx("%d agent connections have not sent REGISTER: closing the "
                          "oldest as new ones come (logged every 10 s at most)",
                          unregistered);
        }
        oldest->quiet = true;
        refuse(oldest, "too many connections waiting to register");
    }
    phx_master_conn_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->dec = phx_wire_decoder_create(m->max_frame))) {
        phx_log_err("could not accept an agent connection");
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->m = m;
    c->serial = ++m->next_conn_serial;
    c->accepted_at = phx_master_now();
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        phx_log_err("could not accept connection from %s", c->peer);
        phx_wire_decoder_destroy(c->dec);
        free(c);
        evutil_closesocket(fd);
        return;
    }
    LIST_INSERT_HEAD(&m->conns, c, link);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    /* A peer silent for the whole heartbeat allowance is gone. */
    double limit = m->heartbeat_interval * (m->heartbeat_missed + 1);
    struct timeval tv = {(time_t)limit, (suseconds_t)((limit - (time_t)limit) * 1e6)};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    phx_log_debug("connection from %s", c->peer);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    phx_log_err("could not accept an agent connection");
}

int phx_master_conn_listen(phx_master_t *m, const char *addr, phx_error_t *err)
{
    char host[256];
    int port;
    if (phx_http_parse_addr(addr, host, sizeof(host), &port, err) < 0)
        return -1;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char spec[300];
    snprintf(spec, sizeof(spec), "%s:%d", host, port);
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) < 0)
        return phx_error_set(err, "could not parse agent address \"%s\"", addr);
    m->agent_listener = evconnlistener_new_bind(
        m->base, on_accept, m, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
        (struct sockaddr *)&ss, sslen);
    if (!m->agent_listener)
        return phx_error_set(err, "could not listen for agents on %s: %s", addr,
                             strerror(errno));
    evconnlistener_set_error_cb(m->agent_listener, on_accept_error);
    return 0;
}

void phx_master_conns_destroy(phx_master_t *m)
{
    if (m->agent_listener)
        evconnlistener_free(m->agent_listener);
    m->agent_listener = NULL;
    phx_master_conn_t *c;
    while ((c = LIST_FIRST(&m->conns))) {
        LIST_REMOVE(c, link);
        if (c->agent)
            c->agent->conn = NULL;
        if (c->bev)
            bufferevent_free(c->bev);
        phx_wire_decoder_destroy(c->dec);
        phx_mac_destroy(c->session);
        free(c);
    }
}
