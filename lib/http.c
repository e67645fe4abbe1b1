#include "lib/http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_guard.h"
#include "lib/http_limit.h"
#include "lib/json.h"
#include "lib/mac.h"

int phx_http_body(struct evhttp_request *req, size_t max, char **out, size_t *len,
                  phx_error_t *err)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n > max) {
        errno = EMSGSIZE;
        return phx_error_set(
            err, "request body of %zu bytes exceeds the maximum of %zu", n, max);
    }
    char *buf = malloc(n + 1);
    if (!buf)
        return phx_error_set(err, "out of memory");
    if (n && evbuffer_copyout(in, buf, n) != (ssize_t)n) {
        free(buf);
        return phx_error_set(err, "could not read request body");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

json_t *phx_http_body_json(struct evhttp_request *req, size_t max, phx_error_t *err)
{
    char *buf;
    size_t len;
    if (phx_http_body(req, max, &buf, &len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!v) {
        phx_error_set(err, "request body is not valid JSON: %s (line %d, column %d)",
                      jerr.text, jerr.line, jerr.column);
        errno = EINVAL;
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        phx_error_set(err, "request body must be a JSON object");
        errno = EINVAL;
        return NULL;
    }
    return v;
}

void phx_http_reply_text(struct evhttp_request *req, int code, const char *content_type,
                         const char *text)
{
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      content_type);
    evbuffer_add(out, text, strlen(text));
    evhttp_send_reply(req, code, NULL, out);
    evbuffer_free(out);
}

void phx_http_reply_json(struct evhttp_request *req, int code, json_t *body)
{
    char *text = body ? phx_json_dump(body) : NULL;
    json_decref(body);
    if (!text) {
        evhttp_send_error(req, 500, "could not serialise reply");
        return;
    }
    phx_http_reply_text(req, code, "application/json", text);
    free(text);
}

void phx_http_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    phx_http_reply_json(req, code, json_pack("{s:s}", "error", msg));
}

const char *phx_http_method(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

int phx_http_auth_payload(const char *method, const char *path, const void *body,
                          size_t body_len, char *buf, size_t len)
{
    char hash[PHX_MAC_HEX_LEN + 1];
    if (phx_sha256_hex(body, body_len, hash) < 0)
        return -1;
    int n = snprintf(buf, len, "%s %s %s", method, path, hash);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int phx_http_auth(struct evhttp_request *req, phx_munge_t *m,
                  const phx_munge_policy_t *p, phx_munge_cred_t *out, phx_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *h =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || strncmp(h, "Munge ", 6) != 0) {
        errno = EACCES;
        return phx_error_set(err,
                             "missing \"Authorization: Munge <credential>\" header");
    }
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    const unsigned char *body = blen ? evbuffer_pullup(in, -1) : NULL;
    char expect[1200];
    if ((blen && !body) || phx_http_auth_payload(phx_http_method(req), uri, body, blen,
                                                 expect, sizeof(expect)) < 0) {
        errno = EINVAL;
        return phx_error_set(err, "request path too long");
    }
    phx_munge_policy_t bound = p ? *p : (phx_munge_policy_t){0};
    bound.expect = expect;
    bound.expect_len = strlen(expect);
    /* decoded when the request's head came (lib/http_guard.h): munged
     * would call a second decode a replay */
    int rc;
    if (phx_http_guard_take(req, h + 6, out, &rc, err))
        return rc < 0 ? -1 : phx_munge_check(out, &bound, time(NULL), err);
    return phx_munge_decode(m, h + 6, &bound, time(NULL), out, err);
}

struct phx_http_deferred {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
};

static void deferred_conn_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    phx_http_deferred_t *d = arg;
    d->req = NULL;
    d->conn = NULL;
}

phx_http_deferred_t *phx_http_defer(struct evhttp_request *req)
{
    phx_http_deferred_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->req = req;
    d->conn = evhttp_request_get_connection(req);
    if (d->conn)
        phx_http_conn_closecb(d->conn, deferred_conn_closed, d);
    return d;
}

struct evhttp_request *phx_http_deferred_req(const phx_http_deferred_t *d)
{
    return d->req;
}

void phx_http_deferred_free(phx_http_deferred_t *d)
{
    if (!d)
        return;
    if (d->conn)
        phx_http_conn_closecb(d->conn, NULL, NULL);
    free(d);
}

/* --- blocking client --- */

typedef struct call_state {
    phx_http_response_t *resp;
    int done;
    int failed;
    int reached; /* connected: evhttp reports a failure after it (error_cb) */
    char why[256];
} call_state_t;

/* evhttp calls it for a failure once connected (EOF, timeout), not for a
 * connection refused or never made. */
static void call_error(enum evhttp_request_error what, void *arg)
{
    call_state_t *st = arg;
    st->reached = 1;
    snprintf(st->why, sizeof(st->why), "%s",
             what == EVREQ_HTTP_TIMEOUT ? "no answer in time"
                                        : "the connection closed before an answer");
}

static void call_done(struct evhttp_request *req, void *arg)
{
    call_state_t *st = arg;
    st->done = 1;
    if (!req || evhttp_request_get_response_code(req) == 0) {
        st->failed = 1;
        if (st->reached) /* call_error said why */
            return;
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(st->why, sizeof(st->why), "%s",
                 e ? evutil_socket_error_to_string(e) : "no response");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    st->resp->status = evhttp_request_get_response_code(req);
    st->resp->body = malloc(n + 1);
    if (!st->resp->body) {
        st->failed = 1;
        snprintf(st->why, sizeof(st->why), "out of memory");
        return;
    }
    evbuffer_remove(in, st->resp->body, n);
    st->resp->body[n] = '\0';
    st->resp->len = n;
}

int phx_http_call(const char *host, int port, const char *method, const char *path,
                  const char *body, phx_munge_t *munge, double timeout_s,
                  phx_http_response_t *resp, phx_error_t *err)
{
    return phx_http_call_with(host, port, method, path, body, NULL, munge, timeout_s,
                              resp, err);
}

int phx_http_call_with(const char *host, int port, const char *method, const char *path,
                       const char *body, const char *const *headers, phx_munge_t *munge,
                       double timeout_s, phx_http_response_t *resp, phx_error_t *err)
{
    memset(resp, 0, sizeof(*resp));
    enum evhttp_cmd_type cmd;
    if (strcmp(method, "GET") == 0)
        cmd = EVHTTP_REQ_GET;
    else if (strcmp(method, "POST") == 0)
        cmd = EVHTTP_REQ_POST;
    else if (strcmp(method, "DELETE") == 0)
        cmd = EVHTTP_REQ_DELETE;
    else
        return phx_error_set(err, "unsupported HTTP method %s", method);

    char *cred = NULL;
    if (munge) {
        char payload[1200];
        if (phx_http_auth_payload(method, path, body, body ? strlen(body) : 0, payload,
                                  sizeof(payload)) < 0)
            return phx_error_set(err, "request path too long");
        if (phx_munge_encode(munge, payload, strlen(payload), 0, &cred, err) < 0)
            return -1;
    }
    int rc = -1, fail_errno = 0;
    call_state_t st = {.resp = resp};
    struct event_base *base = event_base_new();
    struct evhttp_connection *conn =
        base ? evhttp_connection_base_new(base, NULL, host, (unsigned short)port)
             : NULL;
    struct evhttp_request *req = conn ? evhttp_request_new(call_done, &st) : NULL;
    if (!req) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    evhttp_request_set_error_cb(req, call_error);
    evhttp_connection_set_timeout(conn, (int)(timeout_s > 1 ? timeout_s : 1));
    evhttp_connection_set_retries(conn, 0);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Connection", "close");
    if (cred) {
        char auth[PHX_MUNGE_CRED_MAX + 16];
        snprintf(auth, sizeof(auth), "Munge %s", cred);
        evhttp_add_header(h, "Authorization", auth);
    }
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        evhttp_add_header(h, headers[i], headers[i + 1]);
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    if (evhttp_make_request(conn, req, cmd, path) < 0) { /* frees req */
        phx_error_set(err, "could not send request to %s:%d", host, port);
        goto out;
    }
    while (!st.done && event_base_dispatch(base) == 0)
        ;
    if (!st.done || st.failed) {
        phx_error_set(err, "could not reach %s:%d: %s", host, port,
                      st.why[0] ? st.why : "no response");
        phx_http_response_clear(resp);
        fail_errno = st.reached ? ECONNRESET : ECONNREFUSED;
        goto out;
    }
    rc = 0;
out:
    if (conn)
        evhttp_connection_free(conn);
    if (base)
        event_base_free(base);
    free(cred);
    if (fail_errno) /* the frees above may change errno */
        errno = fail_errno;
    return rc;
}

void phx_http_response_clear(phx_http_response_t *resp)
{
    if (resp) {
        free(resp->body);
        memset(resp, 0, sizeof(*resp));
    }
}

int phx_http_parse_addr(const char *addr, char *host, size_t hostlen, int *port,
                        phx_error_t *err)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr)
        return phx_error_set(err, "address \"%s\" must be host:port", addr ? addr : "");
    size_t n = (size_t)(colon - addr);
    if (n >= hostlen)
        return phx_error_set(err, "host in \"%s\" too long", addr);
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return phx_error_set(err, "port in \"%s\" must be 1-65535", addr);
    memcpy(host, addr, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}
