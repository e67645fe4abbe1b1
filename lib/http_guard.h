/* The credential of an HTTP request checked when its head arrives, before
 * its body is read.
 *
 * libevent 2.1's evhttp reads a request's whole body (up to
 * PHX_HTTP_BODY_MAX) before it calls the server's handler, and has no
 * callback for a server request's headers (evhttp_set_newreqcb is 2.2's):
 * without this, clients with no credential could make a daemon buffer
 * max_http_connections x 4 MiB.  The guard watches the bytes of each
 * connection as they arrive (a callback on its bufferevent's input buffer,
 * set when lib/http_limit.c counts the connection) and reads each request's
 * head with lib/http_head.c.  A request whose body evhttp would read past
 * PHX_HTTP_GUARD_OPEN_BODY bytes (a POST, PUT or PATCH with a larger
 * Content-Length, or any Transfer-Encoding) must carry `Authorization: Munge
 * <credential>` that munged decodes (or pass the server's own admit
 * callback: the master's framework calls carry a Mesos-Stream-Id instead);
 * otherwise it is answered 401 with why, and its connection closed, having
 * buffered at most its head and one read (16 KiB) of its body.  A head past
 * the bound evhttp keeps (max) is answered 400 the same way, even while
 * evhttp is not reading (it reads a connection while it writes an answer,
 * to see it closed, and keeps what arrives).
 *
 * The credential decoded then is kept with the connection: munged refuses
 * a second decode of it as a replay.  phx_http_auth takes it
 * (phx_http_guard_take) when the request's Authorization header is the one
 * decoded, and checks it against the request (its payload signs the method,
 * path and body) as it checks one it decodes itself; it decodes any other.
 * Requests of smaller bodies are untouched: their handler decodes.
 *
 * The guard learns that evhttp is done with a request's head and body when
 * evhttp hands the request to the server's callback, which it wraps: the
 * next request's head starts with what is then left in the input buffer.
 * (evhttp answers any request it does not hand over itself, with
 * "Connection: close".)  Loop thread only. */
#ifndef PHX_HTTP_GUARD_H
#define PHX_HTTP_GUARD_H

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/http_limit.h"
#include "lib/munge.h"

/* A body evhttp may read without a credential checked first. */
#define PHX_HTTP_GUARD_OPEN_BODY (16u << 10)

typedef struct phx_http_guard phx_http_guard_t;

/* Guard http's connections counted by limit (which then owns the guard and
 * destroys it with itself), decoding with munge (borrowed), and hand
 * requests to cb(req, cbarg): in place of evhttp_set_gencb.  head_max: the
 * bound of evhttp_set_max_headers_size; body_max: that of
 * evhttp_set_max_body_size. */
phx_http_guard_t *phx_http_guard_create(struct evhttp *http, phx_http_limit_t *limit,
                                        struct event_base *base, phx_munge_t *munge,
                                        size_t head_max, size_t body_max,
                                        void (*cb)(struct evhttp_request *, void *),
                                        void *cbarg, phx_error_t *err);

/* How a credential is decoded (tests): 0 and *out, or -1 with err and
 * errno.  Default: phx_munge_decode without a policy. */
typedef int (*phx_http_guard_decode_f)(void *arg, const char *cred,
                                       phx_munge_cred_t *out, phx_error_t *err);
void phx_http_guard_set_decoder(phx_http_guard_t *g, phx_http_guard_decode_f decode,
                                void *arg);

/* Requests of large bodies without a munge credential that decodes are let
 * through when admit(arg, value) says so; value: the request's header
 * `header` (NULL if absent).  The master's framework calls. */
typedef bool (*phx_http_guard_admit_f)(void *arg, const char *value);
void phx_http_guard_set_admit(phx_http_guard_t *g, const char *header,
                              phx_http_guard_admit_f admit, void *arg);

/* Requests refused since the start. */
uint64_t phx_http_guard_refused(const phx_http_guard_t *g);

/* For phx_http_auth: if req's connection decoded cred (the text after
 * "Munge ") when req's head arrived, that decode's outcome, once: 1 with
 * *rc 0 and *out (the caller clears it), or 1 with *rc -1, err and errno
 * as the decode left them; 0 if there is none for cred. */
int phx_http_guard_take(struct evhttp_request *req, const char *cred,
                        phx_munge_cred_t *out, int *rc, phx_error_t *err);

#endif
