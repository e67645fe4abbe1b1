/* The check of a request's credential at its head: lib/http_guard.h says
 * what and how. */
#include "lib/http_guard.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/http_head.h"
#include "lib/json.h"
#include "lib/log.h"

#define LOG_EVERY 10 /* seconds between two lines about refused requests */
/* Bytes a connection may bring past a request evhttp reads, before evhttp
 * hands that request over: at most a read or two (16 KiB each). */
#define SLACK   (256u << 10)
#define MISSING "missing \"Authorization: Munge <credential>\" header"

/* A credential decoded at a request's head. */
typedef struct pre {
    char *raw; /* the credential (NULL: none) */
    int rc, errnum;
    phx_munge_cred_t cred;
    phx_error_t err;
} pre_t;

enum { READING, WAITING, REFUSED };

typedef struct gconn {
    phx_http_guard_t *g;
    struct evhttp_connection *conn;
    struct bufferevent *bev;
    struct evbuffer_cb_entry *cbe;
    phx_http_head_t head;
    int state;
    size_t waited, wait_max; /* bytes since the head, and their bound */
    pre_t pending;           /* the head just read */
    pre_t current;           /* the request handed to the server's callback */
    bool handing;            /* evhttp hands a request over: it reads no more now */
    bool later;              /* refused then: closed once evhttp reads on */
    size_t later_bytes;      /* bytes come since */
    int code;                /* refused: the answer */
    char why[PHX_ERROR_TEXT_MAX];
    struct gconn *next_kill;
} gconn_t;

struct phx_http_guard {
    struct evhttp *http;
    struct event *kill_ev;
    phx_munge_t *munge;
    size_t head_max, body_max;
    void (*cb)(struct evhttp_request *, void *);
    void *cbarg;
    phx_http_guard_decode_f decode;
    void *decode_arg;
    char admit_header[64];
    phx_http_guard_admit_f admit;
    void *admit_arg;
    gconn_t *kills;
    uint64_t refused, unlogged;
    time_t logged_at;
};

static void pre_clear(pre_t *p)
{
    if (p->raw) {
        explicit_bzero(p->raw, strlen(p->raw));
        free(p->raw);
    }
    phx_munge_cred_clear(&p->cred);
    memset(p, 0, sizeof(*p));
}

static int munge_decode(void *arg, const char *cred, phx_munge_cred_t *out,
                        phx_error_t *err)
{
    return phx_munge_decode(arg, cred, NULL, time(NULL), out, err);
}

/* Answer and close c's connection from the loop, not from inside the read
 * of its bytes (evhttp goes on with them). */
static void kill_soon(gconn_t *c);
static void refuse(gconn_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(gconn_t *c, int code, const char *fmt, ...)
{
    if (c->state == REFUSED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->state = REFUSED;
    c->code = code;
    if (c->handing || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        /* a head that came behind the request evhttp hands over, or while
         * its answer is still being written: evhttp reads it once it
         * answered that one; closing now would drop (or cut) the answer */
        c->later = true;
        return;
    }
    kill_soon(c);
}

static void kill_soon(gconn_t *c)
{
    c->later = false;
    c->next_kill = c->g->kills;
    c->g->kills = c;
    event_active(c->g->kill_ev, EV_TIMEOUT, 1);
}

/* The head of a request was read: let its body come, or refuse it. */
static void judge(gconn_t *c)
{
    phx_http_guard_t *g = c->g;
    phx_http_head_t *h = &c->head;
    pre_clear(&c->pending);
    bool cut;
    const char *cl = phx_http_head_value(h, HEAD_CLEN, &cut);
    unsigned long long declared = 0; /* the body evhttp reads, at most */
    if (!phx_http_head_body_large(h, 0))
        declared = 0;
    else if (cut || phx_http_head_value(h, HEAD_TE, NULL))
        declared = 4 * (unsigned long long)g->body_max; /* chunked, and its framing */
    else if ((declared = strtoull(cl, NULL, 10)) > g->body_max)
        declared = g->body_max; /* refused by evhttp at once */
    c->state = WAITING;
    c->waited = 0;
    c->wait_max = (size_t)declared + 2 * g->head_max + SLACK;
    if (!phx_http_head_body_large(h, PHX_HTTP_GUARD_OPEN_BODY))
        return;
    const char *auth = phx_http_head_value(h, HEAD_AUTH, &cut);
    if (auth && strncmp(auth, "Munge ", 6) == 0) {
        pre_t *p = &c->pending;
        if (!(p->raw = strdup(auth + 6))) {
            refuse(c, 503, "out of memory");
            return;
        }
        if (cut) {
            p->rc = phx_error_set(&p->err, "munge credential too long");
            p->errnum = EACCES;
        } else {
            p->rc = g->decode(g->decode_arg, p->raw, &p->cred, &p->err);
            p->errnum = errno;
        }
        if (p->rc == 0)
            return;
    }
    if (g->admit) {
        const char *value = phx_http_head_value(h, HEAD_EXTRA, &cut);
        if (!cut && g->admit(g->admit_arg, value))
            return;
    }
    refuse(c, 401, "%s", c->pending.raw ? c->pending.err.text : MISSING);
}

/* Read the bytes of buf from off on as the current head. */
static void scan(gconn_t *c, struct evbuffer *buf, size_t off)
{
    size_t len = evbuffer_get_length(buf);
    while (off < len && c->state == READING) {
        struct evbuffer_ptr ptr;
        struct evbuffer_iovec v[8];
        if (evbuffer_ptr_set(buf, &ptr, off, EVBUFFER_PTR_SET) < 0)
            return;
        int n = evbuffer_peek(buf, (ev_ssize_t)(len - off), &ptr, v, 8);
        for (int i = 0; i < n && i < 8 && c->state == READING; i++) {
            size_t used = 0;
            phx_http_head_status_t st =
                phx_http_head_feed(&c->head, v[i].iov_base, v[i].iov_len, &used);
            off += used;
            if (st == PHX_HTTP_HEAD_TOO_LONG) {
                refuse(c, 400, "request line and headers longer than %zu bytes",
                       c->g->head_max);
            } else if (st == PHX_HTTP_HEAD_DONE) {
                judge(c);
                c->waited = len - off; /* what came with the head */
            }
        }
        if (n <= 0)
            return;
    }
    if (c->state == WAITING && c->waited > c->wait_max)
        refuse(c, 400, "more bytes than the request declared");
}

/* Bytes added to (or taken from) the connection's input buffer. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                     void *arg)
{
    gconn_t *c = arg;
    if (c->state == REFUSED) {
        /* evhttp reads the refused head, or bytes keep coming while it
         * writes its answer: close */
        c->later_bytes += info->n_added;
        if (c->later && (info->n_deleted > 0 || c->later_bytes > SLACK))
            kill_soon(c);
        return;
    }
    if (info->n_added == 0)
        return;
    size_t len = evbuffer_get_length(buf);
    size_t added = info->n_added < len ? info->n_added : len;
    if (c->state == WAITING) {
        c->waited += added;
        if (c->waited > c->wait_max)
            refuse(c, 400, "more bytes than the request declared");
        return;
    }
    scan(c, buf, len - added);
}

static void *attach(void *arg, struct evhttp_connection *conn, struct bufferevent *bev)
{
    phx_http_guard_t *g = arg;
    gconn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->g = g;
    c->conn = conn;
    c->bev = bev;
    phx_http_head_init(&c->head, g->head_max,
                       g->admit_header[0] ? g->admit_header : NULL);
    if (!(c->cbe = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c))) {
        phx_http_head_free(&c->head);
        free(c);
        return NULL;
    }
    return c;
}

static void detach(void *data)
{
    gconn_t *c = data;
    phx_http_guard_t *g = c->g;
    for (gconn_t **pp = &g->kills; *pp; pp = &(*pp)->next_kill)
        if (*pp == c) {
            *pp = c->next_kill;
            break;
        }
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->cbe);
    pre_clear(&c->pending);
    pre_clear(&c->current);
    phx_http_head_free(&c->head);
    free(c);
}

static void destroy(void *arg)
{
    phx_http_guard_t *g = arg;
    if (g) {
        event_free(g->kill_ev);
        free(g);
    }
}

static void kill_one(phx_http_guard_t *g, gconn_t *c)
{
    json_t *j = json_pack("{s:s}", "error", c->why);
    char *body = j ? phx_json_dump(j) : NULL;
    json_decref(j);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     c->code,
                     c->code == 401   ? "Unauthorized"
                     : c->code == 400 ? "Bad Request"
                                      : "Service Unavailable",
                     body ? strlen(body) : 0,
                     c->code == 401 ? "WWW-Authenticate: Munge\r\n" : "");
    int fd = (int)bufferevent_getfd(c->bev);
    /* nothing else is owed on it: evhttp answered what came before this
     * head before it read it, or drops that answer now */
    if (fd >= 0 && n > 0 && (size_t)n < sizeof(head)) {
        (void)send(fd, head, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
        if (body)
            (void)send(fd, body, strlen(body), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    free(body);
    g->refused++;
    g->unlogged++;
    time_t now = time(NULL);
    if (now - g->logged_at >= LOG_EVERY) {
        char *host = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(c->conn, &host, &port);
        phx_log_warnx("HTTP request from %s:%u refused before its body: %s; "
                      "%llu refused so since the last message",
                      host ? host : "?", (unsigned)port, c->why,
                      (unsigned long long)g->unlogged);
        g->logged_at = now;
        g->unlogged = 0;
    }
    evhttp_connection_free(c->conn); /* detaches c */
}

static void kill_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_http_guard_t *g = arg;
    while (g->kills) {
        gconn_t *c = g->kills;
        g->kills = c->next_kill;
        c->next_kill = NULL;
        kill_one(g, c);
    }
}

/* evhttp hands a request over: its head and body are read, and what is
 * left in the input buffer starts the next one. */
static void dispatch(struct evhttp_request *req, void *arg)
{
    phx_http_guard_t *g = arg;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    gconn_t *c = conn ? phx_http_conn_data(conn) : NULL;
    if (c && c->state == REFUSED)
        return; /* closed from the loop in a moment */
    if (c) {
        pre_clear(&c->current);
        c->current = c->pending;
        memset(&c->pending, 0, sizeof(c->pending));
        c->state = READING;
        phx_http_head_reset(&c->head);
        c->handing = true;
        scan(c, bufferevent_get_input(c->bev), 0);
        c->handing = false;
    }
    g->cb(req, g->cbarg);
}

phx_http_guard_t *phx_http_guard_create(struct evhttp *http, phx_http_limit_t *limit,
                                        struct event_base *base, phx_munge_t *munge,
                                        size_t head_max, size_t body_max,
                                        void (*cb)(struct evhttp_request *, void *),
                                        void *cbarg, phx_error_t *err)
{
    phx_http_guard_t *g = calloc(1, sizeof(*g));
    if (!g || !(g->kill_ev = event_new(base, -1, 0, kill_ready, g))) {
        free(g);
        phx_error_set(err, "out of memory");
        return NULL;
    }
    event_priority_set(g->kill_ev, 0); /* before the connection reads on */
    g->http = http;
    g->munge = munge;
    g->head_max = head_max;
    g->body_max = body_max;
    g->cb = cb;
    g->cbarg = cbarg;
    g->decode = munge_decode;
    g->decode_arg = munge;
    phx_http_conn_hooks_t hooks = {attach, detach, destroy, g};
    phx_http_limit_set_hooks(limit, &hooks);
    evhttp_set_gencb(http, dispatch, g);
    return g;
}

void phx_http_guard_set_decoder(phx_http_guard_t *g, phx_http_guard_decode_f decode,
                                void *arg)
{
    g->decode = decode ? decode : munge_decode;
    g->decode_arg = decode ? arg : g->munge;
}

void phx_http_guard_set_admit(phx_http_guard_t *g, const char *header,
                              phx_http_guard_admit_f admit, void *arg)
{
    snprintf(g->admit_header, sizeof(g->admit_header), "%s", header ? header : "");
    g->admit = admit;
    g->admit_arg = arg;
}

uint64_t phx_http_guard_refused(const phx_http_guard_t *g)
{
    return g ? g->refused : 0;
}

int phx_http_guard_take(struct evhttp_request *req, const char *cred,
                        phx_munge_cred_t *out, int *rc, phx_error_t *err)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    gconn_t *c = conn ? phx_http_conn_data(conn) : NULL;
    if (!c || !c->current.raw || strcmp(c->current.raw, cred) != 0)
        return 0;
    pre_t *p = &c->current;
    *rc = p->rc;
    if (p->rc == 0) {
        *out = p->cred;
        memset(&p->cred, 0, sizeof(p->cred));
    } else if (err) {
        *err = p->err;
    }
    int e = p->errnum;
    pre_clear(p);
    errno = e;
    return 1;
}
