/* A bound on the connections an evhttp server keeps open, and its idle
 * timeout.
 *
 * libevent 2.1's evhttp accepts every connection and, unless told, never
 * times one out: anyone who can reach the port could hold connections open
 * without sending a byte until the daemon ran out of descriptors (its agent
 * connections, database and munge sockets with it; libevent's listener then
 * spins on EMFILE).  With a limit, a connection past max is answered "503
 * Service Unavailable" at once, without reading its request, and closed;
 * the ones already open are untouched.  A line is logged at most every 10
 * seconds, with how many were refused since the last.
 *
 * How: evhttp 2.1 has no hook for a new or a closed connection.  The
 * bufferevent callback (evhttp_set_bevcb) sees each accepted connection; a
 * moment later, before any of its I/O, an event of the highest priority
 * takes its evhttp_connection (the bufferevent's callback argument), counts
 * it and sets its close callback, which counts it out.  So other code must
 * not set close callbacks with evhttp_connection_set_closecb on the
 * server's connections: phx_http_conn_closecb keeps the limit's. */
#ifndef PHX_HTTP_LIMIT_H
#define PHX_HTTP_LIMIT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

typedef struct phx_http_limit phx_http_limit_t;

/* Bound http (before it accepts anything) to max connections open, and
 * close a connection idle, or whose request or reply makes no progress, for
 * timeout_s seconds (evhttp_set_timeout; 0: none).  key names the setting
 * in messages ("master.max_http_connections"; borrowed, must outlive the
 * limit).  Destroy it after evhttp_free(http), whose closing of the
 * connections it counts. */
phx_http_limit_t *phx_http_limit_create(struct evhttp *http, struct event_base *base,
                                        const char *key, size_t max, double timeout_s,
                                        phx_error_t *err);
/* NULL is a no-op. */
void phx_http_limit_destroy(phx_http_limit_t *l);
/* A new bound (a reload): connections above it stay; new ones wait for room. */
void phx_http_limit_set_max(phx_http_limit_t *l, size_t max);
/* Connections open now, and refused since the start. */
size_t phx_http_limit_open(const phx_http_limit_t *l);
uint64_t phx_http_limit_refused(const phx_http_limit_t *l);

/* State another layer keeps per connection (lib/http_guard.c): attach(arg,
 * conn, bev) when a connection is counted, before any of its I/O (NULL:
 * no memory, the connection is closed), detach(data) when it closes,
 * destroy(arg) with the limit. */
typedef struct phx_http_conn_hooks {
    void *(*attach)(void *arg, struct evhttp_connection *conn, struct bufferevent *bev);
    void (*detach)(void *data);
    void (*destroy)(void *arg);
    void *arg;
} phx_http_conn_hooks_t;
void phx_http_limit_set_hooks(phx_http_limit_t *l, const phx_http_conn_hooks_t *hooks);
/* What attach returned for conn (NULL: none, or not counted). */
void *phx_http_conn_data(struct evhttp_connection *conn);

/* evhttp_connection_set_closecb for servers' connections (any connection:
 * one the limit does not count gets evhttp's own).  cb NULL: none. */
void phx_http_conn_closecb(struct evhttp_connection *conn,
                           void (*cb)(struct evhttp_connection *, void *), void *arg);

#endif
