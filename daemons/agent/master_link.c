/* The agent's link to the master: connect, REGISTER with a munge credential,
 * take the connection's session key from REGISTERED (launch_auth.c),
 * heartbeat, and reconnect with exponential backoff (with jitter) when the
 * master goes away or stops answering.  The key goes with the connection.
 *
 * Several masters (agent.master, doc/admin.md "High availability"): a lost
 * registered link is tried again at the same address first; a connection
 * or a registration that fails moves on to the next address, and a
 * standby's refusal to the leader it names, if that is one of ours.
 *
 * Channel authentication (doc/agent.md): REGISTER, then REGISTERED or an
 * ERROR, are the only frames that travel unsealed.  Until REGISTERED is
 * accepted we send nothing else; from then on every frame we send is
 * sealed with the key (lib/wire_seal.h) and every frame we receive must be
 * sealed, verified and next in sequence, or the connection is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "daemons/agent/agent.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/wire_seal.h"

static void schedule_reconnect(phx_agentd_t *a);

static void drop(phx_agentd_t *a, const char *why)
{
    if (a->bev) {
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    phx_wire_decoder_destroy(a->dec);
    a->dec = NULL;
    phx_launch_auth_forget(a);
    event_del(a->heartbeat_ev);
    char addr[PHX_MASTER_ADDR_MAX];
    phx_masters_addr(&a->masters, addr, sizeof(addr));
    if (a->link == PHX_LINK_REGISTERED) {
        phx_log_warnx("lost the master at %s: %s", addr, why);
        phx_agentd_steps_link_lost(a);
    } else {
        phx_log_warnx("could not register with the master at %s: %s", addr, why);
        if (!a->redirected)
            phx_masters_next(&a->masters);
    }
    a->link = PHX_LINK_IDLE;
    schedule_reconnect(a);
}

int phx_agentd_send(phx_agentd_t *a, json_t *hdr, const void *attach, size_t attach_len)
{
    if (!a->bev) {
        json_decref(hdr);
        errno = ENOTCONN;
        return -1;
    }
    uint8_t *buf;
    size_t len;
    phx_error_t err;
    const char *type = json_string_value(json_object_get(hdr, "type"));
    bool sealed = a->link == PHX_LINK_REGISTERED && a->session;
    if (!sealed && !(type && strcmp(type, "REGISTER") == 0)) {
        /* No key yet: the master would refuse it, and an unsealed frame is
         * what it must never accept after REGISTER. */
        phx_log_debug("not registered: \"%.40s\" not sent to the master",
                      type ? type : "?");
        json_decref(hdr);
        errno = ENOTCONN;
        return -1;
    }
    int rc = sealed ? phx_wire_seal(a->session, PHX_SEAL_A2M, a->seal_sent + 1, hdr,
                                    attach, attach_len, a->max_frame, &buf, &len, &err)
                    : phx_wire_encode(hdr, attach, attach_len, a->max_frame, &buf, &len,
                                      &err);
    json_decref(hdr);
    if (rc < 0) {
        phx_log_errx("could not send to the master: %s", err.text);
        return -1;
    }
    rc = bufferevent_write(a->bev, buf, len);
    free(buf);
    if (rc == 0 && sealed)
        a->seal_sent++; /* a frame not queued uses no number */
    return rc;
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_agentd_t *a = arg;
    phx_agentd_send(a,
                    json_pack("{s:s, s:I}", "type", "HEARTBEAT", "seq",
                              (json_int_t)++a->heartbeat_seq),
                    NULL, 0);
}

static void on_registered(phx_agentd_t *a, const json_t *hdr)
{
    phx_error_t err;
    long long id = 0, missed = 5;
    double interval = 1.0;
    if (phx_json_int(hdr, "agent_id", true, 1, INT64_MAX, &id, &err) < 0 ||
        phx_json_num(hdr, "heartbeat_interval", true, 0.01, 3600, &interval, &err) <
            0 ||
        phx_json_int(hdr, "heartbeat_missed", false, 1, 1000, &missed, &err) < 0) {
        drop(a, err.text);
        return;
    }
    /* No key, no link: a master we cannot authenticate gets no node (and a
     * munged that failed once gets another try at the next connection). */
    if (phx_launch_auth_session(a, json_string_value(json_object_get(hdr, "session")),
                                &err) < 0) {
        drop(a, err.text);
        return;
    }
    a->agent_id = id;
    a->heartbeat_interval = interval;
    a->heartbeat_missed = (int)missed;
    a->link = PHX_LINK_REGISTERED;
    a->backoff = 0.1;
    char addr[PHX_MASTER_ADDR_MAX];
    phx_log_notice("registered with the master at %s as agent %lld",
                   phx_masters_addr(&a->masters, addr, sizeof(addr)), id);
    struct timeval tv = {(time_t)interval,
                         (suseconds_t)((interval - (time_t)interval) * 1e6)};
    event_add(a->heartbeat_ev, &tv);
    /* The master answers every heartbeat: silence means it is gone. */
    double limit = interval * (missed + 1);
    struct timeval rt = {(time_t)limit, (suseconds_t)((limit - (time_t)limit) * 1e6)};
    bufferevent_set_timeouts(a->bev, &rt, NULL);
}

static void on_error_frame(phx_agentd_t *a, const phx_frame_t *f)
{
    const char *msg = "(no message)";
    phx_json_str(f->header, "message", false, &msg, NULL);
    char why[512], leader[PHX_MASTER_ADDR_MAX];
    snprintf(why, sizeof(why), "master refused: %s", msg);
    /* A standby names the leader: go there next, if it is one of ours. */
    if (a->link != PHX_LINK_REGISTERED &&
        phx_masters_refusal(f->header, leader, sizeof(leader)) == 1) {
        char *end = why + strlen(why);
        size_t room = sizeof(why) - (size_t)(end - why);
        if (!*leader)
            snprintf(end, room, " (no leader yet)");
        else if (phx_masters_follow(&a->masters, leader))
            a->redirected = true;
        else
            snprintf(end, room, " (the leader %s is not in agent.master: not followed)",
                     leader);
    }
    drop(a, why);
}

static void on_registered_frame(phx_agentd_t *a, const phx_frame_t *f)
{
    on_registered(a, f->header);
    /* Statuses the master has not acknowledged, in order, after a failover
     * or a restart too. */
    if (a->link == PHX_LINK_REGISTERED)
        phx_agentd_status_resend(a);
}

static void on_heartbeat_ack(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    (void)f; /* arrival alone resets the read timeout */
}

static const struct {
    const char *type;
    phx_agent_link_state_t state; /* the frame is accepted only in this state */
    void (*handler)(phx_agentd_t *a, const phx_frame_t *f);
} handlers[] = {
    {"ERROR", PHX_LINK_IDLE, on_error_frame}, /* IDLE: any state */
    {"REGISTERED", PHX_LINK_REGISTERING, on_registered_frame},
    {"HEARTBEAT_ACK", PHX_LINK_REGISTERED, on_heartbeat_ack},
    {"LAUNCH", PHX_LINK_REGISTERED, phx_agentd_on_launch},
    {"KILL", PHX_LINK_REGISTERED, phx_agentd_on_kill},
    {"SIGNAL", PHX_LINK_REGISTERED, phx_agentd_on_signal},
    {"STATUS_ACK", PHX_LINK_REGISTERED, phx_agentd_on_status_ack},
    {"STEP_LAUNCH", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_KILL", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_REFUSED", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_STARTED", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_DONE", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_OUTPUT", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_INPUT", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_INPUT_ACK", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"STEP_WINSIZE", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"FENCE_DONE", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"DMODEX_REQ", PHX_LINK_REGISTERED, phx_agentd_on_step},
    {"DMODEX_DONE", PHX_LINK_REGISTERED, phx_agentd_on_step},
};

static void dispatch(phx_agentd_t *a, const phx_frame_t *f)
{
    if (!a->session && strcmp(f->type, "REGISTERED") != 0 &&
        strcmp(f->type, "ERROR") != 0) {
        char why[128];
        snprintf(why, sizeof(why), "unexpected frame \"%.40s\" before registration",
                 f->type);
        drop(a, why);
        return;
    }
    for (size_t i = 0; i < sizeof(handlers) / sizeof(*handlers); i++) {
        if (strcmp(f->type, handlers[i].type) != 0)
            continue;
        if (handlers[i].state != PHX_LINK_IDLE && handlers[i].state != a->link)
            break;
        handlers[i].handler(a, f);
        return;
    }
    phx_log_warnx("unexpected frame \"%.40s\" from the master, ignored", f->type);
}

bool phx_agentd_link_ready(const phx_agentd_t *a)
{
    return a->bev && a->link == PHX_LINK_REGISTERED;
}

/* With a key, only a sealed frame, next in sequence, is taken: anything
 * else may be an attacker's and ends the connection. */
static void receive(phx_agentd_t *a, const phx_frame_t *f)
{
    if (!a->session) {
        dispatch(a, f);
        return;
    }
    phx_frame_t inner;
    phx_error_t err;
    if (phx_wire_unseal(a->session, PHX_SEAL_M2A, &a->seal_received, f, a->max_frame,
                        &inner, &err) < 0) {
        char why[PHX_ERROR_TEXT_MAX + 32];
        snprintf(why, sizeof(why), "frame refused: %s", err.text);
        drop(a, why);
        return;
    }
    dispatch(a, &inner);
    phx_frame_clear(&inner);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    phx_agentd_t *a = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    phx_error_t err;
    while (a->bev == bev && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (phx_wire_decoder_feed(a->dec, v.iov_base, v.iov_len, &err) < 0) {
            drop(a, err.text);
            return;
        }
        evbuffer_drain(in, v.iov_len);
        phx_frame_t f;
        int r = 0;
        while (a->bev == bev && (r = phx_wire_decoder_next(a->dec, &f, &err)) == 1) {
            receive(a, &f);
            phx_frame_clear(&f);
        }
        if (a->bev == bev && r < 0) {
            drop(a, err.text);
            return;
        }
    }
}

static int send_register(phx_agentd_t *a, phx_error_t *err)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return phx_error_set(err, "could not make a nonce: %s", strerror(errno));
    char nonce[2 * sizeof(raw) + 1];
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(nonce + 2 * i, 3, "%02x", raw[i]);
    _Static_assert(sizeof(nonce) <= sizeof(a->nonce), "nonce fits");
    memcpy(a->nonce, nonce, sizeof(nonce)); /* the session key is bound to it */
    char payload[256];
    snprintf(payload, sizeof(payload), "phx-register %s %s", a->name, nonce);
    char *cred;
    if (phx_munge_encode(a->munge, payload, strlen(payload), 0, &cred, err) < 0)
        return -1;
    /* Our tasks (running, or with statuses not yet acknowledged), so that a
     * new leader can reconcile; the frames we know beyond the first
     * version's, so that it does not send us others (doc/admin.md). */
    json_t *hdr =
        json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:o, s:[s, s]}", "type", "REGISTER",
                  "name", a->name, "nonce", nonce, "cred", cred, "topology",
                  a->topo_json, "version", PHX_VERSION, "tasks",
                  phx_agentd_tasks_json(a), "features", "signal", "signal_done");
    free(cred);
    if (!hdr || phx_agentd_send(a, hdr, NULL, 0) < 0)
        return phx_error_set(err, "could not send REGISTER");
    a->link = PHX_LINK_REGISTERING;
    return 0;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    phx_agentd_t *a = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        phx_error_t err;
        if (send_register(a, &err) < 0)
            drop(a, err.text);
        return;
    }
    if (what & BEV_EVENT_EOF)
        drop(a, "connection closed by the master");
    else if (what & BEV_EVENT_TIMEOUT)
        drop(a, "the master stopped answering");
    else if (what & BEV_EVENT_ERROR)
        drop(a, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void connect_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_agentd_t *a = arg;
    a->dec = phx_wire_decoder_create(a->max_frame);
    a->bev = bufferevent_socket_new(a->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!a->dec || !a->bev) {
        drop(a, "out of memory");
        return;
    }
    bufferevent_setcb(a->bev, on_read, NULL, on_event, a);
    bufferevent_enable(a->bev, EV_READ | EV_WRITE);
    /* Registration must complete within a bounded time too. */
    struct timeval rt = {10, 0};
    bufferevent_set_timeouts(a->bev, &rt, NULL);
    a->link = PHX_LINK_CONNECTING;
    /* Resolves without a DNS base (blocking, but only names from the
     * configuration, usually addresses). */
    if (bufferevent_socket_connect_hostname(a->bev, NULL, AF_INET,
                                            phx_masters_host(&a->masters),
                                            phx_masters_port(&a->masters)) < 0) {
        drop(a, "could not start connecting");
        return;
    }
    /* libevent makes the socket without close-on-exec: no child of ours
     * may inherit the master connection */
    int sock = bufferevent_getfd(a->bev);
    if (sock >= 0)
        fcntl(sock, F_SETFD, FD_CLOEXEC);
}

static void schedule_reconnect(phx_agentd_t *a)
{
    unsigned r = 0;
    getrandom(&r, sizeof(r), GRND_NONBLOCK);
    double delay = a->backoff * (0.75 + 0.5 * (r % 1000) / 1000.0);
    a->backoff = a->backoff * 2 > a->backoff_max ? a->backoff_max : a->backoff * 2;
    /* To the leader a standby named: soon, but at most once a second
     * while the standbys still name a leader that is gone. */
    if (a->redirected && delay > 1.0)
        delay = 1.0;
    a->redirected = false;
    struct timeval tv = {(time_t)delay, (suseconds_t)((delay - (time_t)delay) * 1e6)};
    event_add(a->reconnect_ev, &tv);
}

int phx_agentd_link_start(phx_agentd_t *a, phx_error_t *err)
{
    a->backoff = 0.1;
    a->reconnect_ev = event_new(a->base, -1, 0, connect_now, a);
    a->heartbeat_ev = event_new(a->base, -1, EV_PERSIST, on_heartbeat, a);
    if (!a->reconnect_ev || !a->heartbeat_ev)
        return phx_error_set(err, "out of memory");
    struct timeval now = {0, 0};
    event_add(a->reconnect_ev, &now);
    return 0;
}

void phx_agentd_link_stop(phx_agentd_t *a)
{
    if (a->bev)
        bufferevent_free(a->bev);
    a->bev = NULL;
    phx_launch_auth_forget(a);
    phx_wire_decoder_destroy(a->dec);
    a->dec = NULL;
    if (a->reconnect_ev)
        event_free(a->reconnect_ev);
    if (a->heartbeat_ev)
        event_free(a->heartbeat_ev);
    a->reconnect_ev = a->heartbeat_ev = NULL;
}
