/* HTTP helpers over libevent's evhttp: replies in JSON, bounded request
 * bodies, munge authentication of requests, and a blocking client for the
 * CLI and tools.
 *
 * Requests are authenticated with `Authorization: Munge <credential>`; the
 * credential's payload must be "<METHOD> <PATH>" of the request it rides on,
 * so a credential captured from one request cannot authorise another, and
 * munged refuses its replay.  A request of a large body has its credential
 * decoded when its head arrives (lib/http_guard.h); phx_http_auth takes
 * that decode.  doc/http.md. */
#ifndef PHX_HTTP_H
#define PHX_HTTP_H

#include <event2/http.h>
#include <jansson.h>
#include <stddef.h>

#include "lib/error.h"
#include "lib/munge.h"

#define PHX_HTTP_BODY_MAX (4u << 20)
/* The request line and headers a server buffers (evhttp_set_max_headers_size):
 * room for a munge credential of PHX_MUNGE_CRED_MAX and a long URI.  evhttp's
 * own default is SIZE_MAX, and its timeout an idle one: without the bound a
 * client that keeps sending one header is buffered without end, before any
 * credential is checked. */
#define PHX_HTTP_HEADERS_MAX (2u * PHX_MUNGE_CRED_MAX)

/* --- server side --- */

/* The request body as a NUL-terminated copy (caller frees); -1 if larger
 * than max. */
int phx_http_body(struct evhttp_request *req, size_t max, char **out, size_t *len,
                  phx_error_t *err);
/* The body parsed as a JSON object (caller decrefs), or NULL with err. */
json_t *phx_http_body_json(struct evhttp_request *req, size_t max, phx_error_t *err);

/* Reply with a JSON body; steals the reference to body. */
void phx_http_reply_json(struct evhttp_request *req, int code, json_t *body);
/* Reply {"error": "..."} with the given status. */
void phx_http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void phx_http_reply_text(struct evhttp_request *req, int code, const char *content_type,
                         const char *text);

/* The request's method name ("GET", "POST", ...). */
const char *phx_http_method(struct evhttp_request *req);

/* What a request's munge credential signs: "<METHOD> <PATH> <SHA-256 of the
 * body in hex>" (an empty body's hash when there is none), so that neither
 * the request nor its body can be changed on the way.  -1 if it does not
 * fit in len. */
int phx_http_auth_payload(const char *method, const char *path, const void *body,
                          size_t body_len, char *buf, size_t len);

/* Check the request's munge credential under policy; *out as for
 * phx_munge_decode.  The payload must be phx_http_auth_payload's. */
int phx_http_auth(struct evhttp_request *req, phx_munge_t *m,
                  const phx_munge_policy_t *p, phx_munge_cred_t *out, phx_error_t *err);

/* A reply that waits (for a database commit, say).  evhttp frees a request
 * whose client went away; a deferred reply notices and then yields NULL.
 * One deferred reply per connection at a time (evhttp serves a connection's
 * requests one after another). */
typedef struct phx_http_deferred phx_http_deferred_t;
phx_http_deferred_t *phx_http_defer(struct evhttp_request *req);
/* The request, or NULL if the client is gone. */
struct evhttp_request *phx_http_deferred_req(const phx_http_deferred_t *d);
/* Forget the request (call after replying or when the client is gone). */
void phx_http_deferred_free(phx_http_deferred_t *d);

/* --- client side (blocking) --- */

typedef struct phx_http_response {
    int status;
    char *body; /* NUL-terminated, caller frees (phx_http_response_clear) */
    size_t len;
} phx_http_response_t;

/* One request to http://host:port/path.  munge: if not NULL, a credential
 * over phx_http_auth_payload is attached.  body may be NULL.  0 once any HTTP
 * answer arrived (check resp->status), -1 with err if none did.  Once the
 * request was handed to evhttp, errno tells which: ECONNREFUSED when no
 * connection was made (the server never saw the request), ECONNRESET when
 * the connection was made and closed or timed out before an answer (the
 * server may have carried the request out). */
int phx_http_call(const char *host, int port, const char *method, const char *path,
                  const char *body, phx_munge_t *munge, double timeout_s,
                  phx_http_response_t *resp, phx_error_t *err);
/* The same with extra request headers: headers is {name, value, ...,
 * NULL} (NULL: none); they are not covered by the munge credential. */
int phx_http_call_with(const char *host, int port, const char *method, const char *path,
                       const char *body, const char *const *headers, phx_munge_t *munge,
                       double timeout_s, phx_http_response_t *resp, phx_error_t *err);
void phx_http_response_clear(phx_http_response_t *resp);

/* Split "host:port" (port required); host is copied into host (hostlen). */
int phx_http_parse_addr(const char *addr, char *host, size_t hostlen, int *port,
                        phx_error_t *err);

#endif
