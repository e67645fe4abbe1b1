/* A change is answered once committed (doc/batchd.md, "When a change is
 * answered").
 *
 * While api.c's router handles a POST (batchd_ack_begin .. batchd_ack_end),
 * every store write queued through batchd_write or batchd_write_row is
 * counted in the request's ack.  batchd_reply then answers at once if none
 * is outstanding, else keeps the answer (a deferred reply, and the body: no
 * job pointer) until the last of those writes' callbacks, which the store
 * runs after their commit: the answer is sent then, or 503 with the first
 * error if one of them failed (the change was made in memory but may not
 * survive a restart of batchd).  A write's own callback runs first,
 * unchanged.  Writes queued outside a request, or by handlers that answer
 * by themselves (submit, signal), are not counted.
 *
 * A change is acted on once committed too: kill.c kills for a cancel or
 * requeue after its commit, and a pending job released or updated is not
 * placed before its change is committed (kill.c: batchd_job_persist_placed, read
 * by order.c through bjob_t.place_wait): started first, a batchd that dies
 * before the commit would leave a job running that the database says is
 * held (or of another shape). */
#include <stdlib.h>

#include "daemons/batchd/batchd.h"
#include "lib/http.h"
#include "lib/log.h"

struct batchd_ack {
    size_t pending;  /* writes queued and not yet done */
    bool open;       /* between begin and end */
    bool answered;   /* batchd_reply kept its answer */
    bool failed;     /* a write failed: err */
    phx_error_t err; /* the first failure */
    phx_http_deferred_t *reply;
    int code;
    json_t *body;
};

typedef struct ack_write {
    batchd_ack_t *a;
    phx_db_done_f cb;
    void *arg;
} ack_write_t;

static void ack_failed(batchd_ack_t *a, const phx_error_t *err)
{
    if (a->failed)
        return;
    a->failed = true;
    a->err = *err;
}

static void send_answer(batchd_ack_t *a, struct evhttp_request *req)
{
    if (!req) { /* the client went away */
        json_decref(a->body);
    } else if (a->failed) {
        json_decref(a->body);
        phx_http_reply_error(req, 503, "could not record the change: %s", a->err.text);
    } else {
        phx_http_reply_json(req, a->code, a->body);
    }
    a->body = NULL;
}

/* Free a once nothing refers to it: closed, and no write outstanding. */
static void ack_settle(batchd_ack_t *a)
{
    if (a->open || a->pending > 0)
        return;
    if (a->answered) {
        send_answer(a, phx_http_deferred_req(a->reply));
        phx_http_deferred_free(a->reply);
    }
    free(a);
}

static void ack_written(const phx_error_t *err, phx_db_result_t *const *res, int n,
                        void *arg)
{
    ack_write_t *w = arg;
    batchd_ack_t *a = w->a;
    if (w->cb)
        w->cb(err, res, n, w->arg);
    free(w);
    if (err)
        ack_failed(a, err);
    a->pending--;
    ack_settle(a);
}

/* The callback and argument to queue a write with: wrapped when a request
 * counts it.  *w is the wrapper (NULL: not counted). */
static void ack_wrap(batchd_t *b, phx_db_done_f *cb, void **arg, ack_write_t **w)
{
    *w = NULL;
    if (!b->ack)
        return;
    if (!(*w = malloc(sizeof(**w)))) {
        phx_error_t oom;
        phx_error_set(&oom, "out of memory");
        ack_failed(b->ack, &oom);
        return;
    }
    **w = (ack_write_t){b->ack, *cb, *arg};
    b->ack->pending++;
    *cb = ack_written;
    *arg = *w;
}

/* The write was not queued: its callback never runs. */
static int ack_unwrap(batchd_t *b, ack_write_t *w, int rc, const phx_error_t *err)
{
    if (rc < 0 && b->ack)
        ack_failed(b->ack, err);
    if (rc < 0 && w) {
        w->a->pending--;
        free(w);
    }
    return rc;
}

int batchd_write(batchd_t *b, const char *sql, int nparams, const char *const *params,
                 phx_db_done_f cb, void *arg, phx_error_t *err)
{
    ack_write_t *w;
    ack_wrap(b, &cb, &arg, &w);
    return ack_unwrap(
        b, w, phx_db_store_write(b->store, sql, nparams, params, cb, arg, err), err);
}

int batchd_write_row(batchd_t *b, const phx_db_rows_t *kind, const char *const *params,
                     phx_db_done_f cb, void *arg, phx_error_t *err)
{
    ack_write_t *w;
    ack_wrap(b, &cb, &arg, &w);
    return ack_unwrap(
        b, w, phx_db_store_write_row(b->store, kind, params, cb, arg, err), err);
}

void batchd_ack_begin(batchd_t *b)
{
    batchd_ack_end(b);
    if ((b->ack = calloc(1, sizeof(*b->ack))) != NULL)
        b->ack->open = true;
    else
        phx_log_errx("out of memory: a change is answered before its commit");
}

void batchd_ack_end(batchd_t *b)
{
    batchd_ack_t *a = b->ack;
    if (!a)
        return;
    b->ack = NULL;
    a->open = false;
    ack_settle(a);
}

void batchd_reply(batchd_t *b, struct evhttp_request *req, int code, json_t *body)
{
    batchd_ack_t *a = b->ack;
    if (!a) {
        phx_http_reply_json(req, code, body);
        return;
    }
    a->code = code;
    a->body = body;
    if (a->pending > 0 && (a->reply = phx_http_defer(req)) != NULL) {
        a->answered = true; /* by ack_settle, once the last write is done */
        return;
    }
    send_answer(a, req); /* nothing to wait for (or no memory to wait) */
}
