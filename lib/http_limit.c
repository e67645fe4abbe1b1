/* The connection bound of HTTP servers: lib/http_limit.h says what and how. */
#include "lib/http_limit.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/hmap.h"
#include "lib/log.h"

#define LOG_EVERY 10 /* seconds between two lines about refused connections */

struct phx_http_limit {
    struct evhttp *http;
    struct event *fixup; /* counts the connections accepted since it last ran */
    const char *key;
    size_t max, open;
    uint64_t refused, unlogged;
    time_t logged_at;
    struct bufferevent **pending; /* accepted, not yet counted (a reference each) */
    size_t npending, cap;
    phx_http_conn_hooks_t hooks;
};

/* A connection counted by a limit. */
typedef struct conn_rec {
    phx_http_limit_t *limit;
    struct evhttp_connection *conn;
    void (*cb)(struct evhttp_connection *, void *); /* the code's own close callback */
    void *arg;
    void *data; /* the hooks' (phx_http_limit_set_hooks) */
} conn_rec_t;

/* evhttp_connection → conn_rec_t, for phx_http_conn_closecb: evhttp 2.1 has
 * no getter for a connection's close callback.  Loop thread only. */
static phx_hmap_t *recs;

static void conn_key(const struct evhttp_connection *conn, char key[32])
{
    snprintf(key, 32, "%p", (const void *)conn);
}

static void conn_closed(struct evhttp_connection *conn, void *arg)
{
    conn_rec_t *r = arg;
    char key[32];
    conn_key(conn, key);
    if (recs)
        phx_hmap_del(recs, key);
    if (recs && phx_hmap_count(recs) == 0) {
        phx_hmap_destroy(recs);
        recs = NULL;
    }
    r->limit->open--;
    if (r->data && r->limit->hooks.detach)
        r->limit->hooks.detach(r->data);
    void (*cb)(struct evhttp_connection *, void *) = r->cb;
    void *cbarg = r->arg;
    free(r);
    if (cb)
        cb(conn, cbarg);
}

void phx_http_conn_closecb(struct evhttp_connection *conn,
                           void (*cb)(struct evhttp_connection *, void *), void *arg)
{
    char key[32];
    conn_key(conn, key);
    conn_rec_t *r = recs ? phx_hmap_get(recs, key) : NULL;
    if (!r) {
        evhttp_connection_set_closecb(conn, cb, arg);
        return;
    }
    r->cb = cb;
    r->arg = arg;
}

/* What a connection past the bound reads before it is closed. */
static void refuse(phx_http_limit_t *l, struct evhttp_connection *conn, int fd)
{
    char body[256], reply[512];
    int blen = snprintf(body, sizeof(body),
                        "{\"error\": \"too many HTTP connections (%s = %zu): "
                        "retry later\"}\n",
                        l->key, l->max);
    int n = snprintf(reply, sizeof(reply),
                     "HTTP/1.1 503 Service Unavailable\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n"
                     "Retry-After: 1\r\nConnection: close\r\n\r\n%s",
                     blen, body);
    /* a fresh socket's buffer takes it whole; a client that cannot be told
     * is closed all the same */
    if (fd >= 0 && n > 0 && (size_t)n < sizeof(reply))
        (void)send(fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    l->refused++;
    l->unlogged++;
    time_t now = time(NULL);
    if (now - l->logged_at >= LOG_EVERY) {
        char *host = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(conn, &host, &port);
        phx_log_warnx("HTTP connection from %s:%u refused: %zu open (%s = %zu); "
                      "%llu refused since the last message",
                      host ? host : "?", (unsigned)port, l->open, l->key, l->max,
                      (unsigned long long)l->unlogged);
        l->logged_at = now;
        l->unlogged = 0;
    }
    evhttp_connection_free(conn); /* the request it was to read goes too */
}

void *phx_http_conn_data(struct evhttp_connection *conn)
{
    char key[32];
    conn_key(conn, key);
    conn_rec_t *r = recs && conn ? phx_hmap_get(recs, key) : NULL;
    return r ? r->data : NULL;
}

/* Count conn and take its close callback; -1 with ENOMEM. */
static int track(phx_http_limit_t *l, struct evhttp_connection *conn,
                 struct bufferevent *bev)
{
    char key[32];
    conn_key(conn, key);
    conn_rec_t *r = calloc(1, sizeof(*r));
    if (!r || (!recs && !(recs = phx_hmap_create())) ||
        phx_hmap_put(recs, key, r) < 0) {
        free(r);
        errno = ENOMEM;
        return -1;
    }
    if (l->hooks.attach && !(r->data = l->hooks.attach(l->hooks.arg, conn, bev))) {
        phx_hmap_del(recs, key);
        free(r);
        errno = ENOMEM;
        return -1;
    }
    r->limit = l;
    r->conn = conn;
    evhttp_connection_set_closecb(conn, conn_closed, r);
    l->open++;
    return 0;
}

/* Count (or refuse) what was accepted: runs before any I/O of theirs. */
static void fixup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_http_limit_t *l = arg;
    for (size_t i = 0; i < l->npending; i++) {
        struct bufferevent *bev = l->pending[i];
        bufferevent_data_cb readcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
        struct evhttp_connection *conn = cbarg;
        if (!readcb || !conn) {
            /* evhttp dropped it already (no memory) */
        } else if (l->open >= l->max) {
            refuse(l, conn, (int)bufferevent_getfd(bev));
        } else if (track(l, conn, bev) < 0) {
            phx_log_errx("out of memory: an HTTP connection closed");
            evhttp_connection_free(conn);
        } else {
            /* replies and event-stream chunks go out at once: small
             * writes that Nagle's algorithm would hold back until the
             * peer's delayed ACK (~40 ms); set once per connection */
            int one = 1, sock = (int)bufferevent_getfd(bev);
            if (sock >= 0)
                setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        bufferevent_decref(bev);
    }
    l->npending = 0;
}

/* evhttp's bufferevent for a connection it accepted: noted for fixup.  It
 * closes the socket when freed (evhttp's own would have evhttp close it), so
 * that our reference keeps the socket while it keeps the events. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
    phx_http_limit_t *l = arg;
    if (l->npending == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct bufferevent **p = realloc(l->pending, cap * sizeof(*p));
        if (!p)
            return NULL; /* evhttp makes its own: not counted */
        l->pending = p;
        l->cap = cap;
    }
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    bufferevent_incref(bev);
    l->pending[l->npending++] = bev;
    event_active(l->fixup, EV_TIMEOUT, 1);
    return bev;
}

phx_http_limit_t *phx_http_limit_create(struct evhttp *http, struct event_base *base,
                                        const char *key, size_t max, double timeout_s,
                                        phx_error_t *err)
{
    phx_http_limit_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->fixup = event_new(base, -1, 0, fixup, l))) {
        free(l);
        phx_error_set(err, "out of memory");
        return NULL;
    }
    /* before any connection's I/O (the master has two priorities) */
    event_priority_set(l->fixup, 0);
    l->http = http;
    l->key = key;
    l->max = max;
    evhttp_set_bevcb(http, new_bev, l);
    if (timeout_s > 0) {
        struct timeval tv = {(time_t)timeout_s,
                             (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
        evhttp_set_timeout_tv(http, &tv);
    }
    return l;
}

void phx_http_limit_destroy(phx_http_limit_t *l)
{
    if (!l)
        return;
    int saved = errno;
    for (size_t i = 0; i < l->npending; i++)
        bufferevent_decref(l->pending[i]);
    free(l->pending);
    event_free(l->fixup);
    if (l->hooks.destroy)
        l->hooks.destroy(l->hooks.arg);
    free(l);
    errno = saved;
}

void phx_http_limit_set_hooks(phx_http_limit_t *l, const phx_http_conn_hooks_t *hooks)
{
    l->hooks = *hooks;
}

void phx_http_limit_set_max(phx_http_limit_t *l, size_t max)
{
    if (l)
        l->max = max;
}

size_t phx_http_limit_open(const phx_http_limit_t *l)
{
    return l ? l->open : 0;
}

uint64_t phx_http_limit_refused(const phx_http_limit_t *l)
{
    return l ? l->refused : 0;
}
