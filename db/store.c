/* The store's loop side and its DB thread: a bounded queue in, completions
 * back to the loop through an eventfd. */
#include "db/store_internal.h"
#include "lib/log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct phx_db_store {
    struct event_base *base;
    struct event *done_ev;
    int efd;
    char *dsn;
    phx_db_store_opts_t opts;

    /* Loop thread only. */
    size_t outstanding; /* accepted, callback not yet run */
    bool closing;       /* destroy was called: refuse new work */
    bool destroy_pending;
    bool destroying;
    int in_dispatch;
    char refused_state[6]; /* phx_db_store_on_refused */
    phx_db_refused_f refused;
    void *refused_arg;

    pthread_t thread;
    bool thread_started;

    /* Under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    request_t *head, *tail; /* queued for the DB thread */
    request_t *done_head, *done_tail;
    bool stopping;
    stmt_t *fence;
    unsigned fence_gen;
    phx_db_store_stats_t stats;

    /* DB thread only (and create/destroy around it). */
    db_session_t session;
    unsigned session_fence_gen;
};

/* ---- statements and requests ---- */

void phx_db_stmt_free(stmt_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nparams; i++)
        free(s->params[i]);
    free(s->params);
    free(s->sql);
    memset(s, 0, sizeof(*s));
}

int phx_db_stmt_copy(stmt_t *dst, const char *sql, int nparams,
                     const char *const *params)
{
    memset(dst, 0, sizeof(*dst));
    dst->sql = strdup(sql);
    if (!dst->sql)
        return -1;
    if (nparams > 0 && !(dst->params = calloc((size_t)nparams, sizeof(char *)))) {
        phx_db_stmt_free(dst);
        return -1;
    }
    dst->nparams = nparams;
    for (int i = 0; i < nparams; i++) {
        if (params[i] && !(dst->params[i] = strdup(params[i]))) {
            phx_db_stmt_free(dst);
            errno = ENOMEM;
            return -1;
        }
    }
    return 0;
}

static int check_stmt_args(const char *sql, int nparams, const char *const *params,
                           phx_error_t *err)
{
    if (!sql || nparams < 0 || nparams > PHX_DB_MAX_PARAMS ||
        (nparams > 0 && !params)) {
        errno = EINVAL;
        return phx_error_set(err, "invalid statement arguments");
    }
    return 0;
}

void phx_db_request_clear_results(request_t *req)
{
    req->written = false;
    for (int i = 0; i < req->nstmts; i++) {
        if (req->resv && req->resv[i].pg) {
            PQclear(req->resv[i].pg);
            req->resv[i].pg = NULL;
        }
    }
}

static void request_free(request_t *req)
{
    if (!req)
        return;
    int saved = errno;
    phx_db_request_clear_results(req);
    for (int i = 0; i < req->nstmts; i++)
        phx_db_stmt_free(&req->stmts[i]);
    free(req->stmts);
    free(req->resv);
    free(req->results);
    free(req);
    errno = saved;
}

phx_db_txn_t *phx_db_txn_create(void)
{
    request_t *req = calloc(1, sizeof(*req));
    if (req)
        req->kind = REQ_WRITE;
    return req;
}

void phx_db_txn_destroy(phx_db_txn_t *txn)
{
    request_free(txn);
}

int phx_db_txn_add(phx_db_txn_t *txn, const char *sql, int nparams,
                   const char *const *params, phx_error_t *err)
{
    if (!txn) {
        errno = EINVAL;
        return phx_error_set(err, "invalid transaction");
    }
    if (check_stmt_args(sql, nparams, params, err) < 0)
        return -1;
    if (txn->nstmts == txn->cap) {
        int cap = txn->cap ? 2 * txn->cap : 4;
        stmt_t *stmts = realloc(txn->stmts, (size_t)cap * sizeof(*stmts));
        if (!stmts)
            return phx_error_set(err, "out of memory");
        txn->stmts = stmts;
        txn->cap = cap;
    }
    if (phx_db_stmt_copy(&txn->stmts[txn->nstmts], sql, nparams, params) < 0)
        return phx_error_set(err, "out of memory");
    txn->nstmts++;
    return 0;
}

/* ---- DB thread ---- */

static void post_done(phx_db_store_t *store, request_t *list)
{
    /* Called with mu held. */
    if (!list)
        return;
    if (store->done_tail)
        store->done_tail->next = list;
    else
        store->done_head = list;
    while (list->next)
        list = list->next;
    store->done_tail = list;
    uint64_t one = 1;
    if (write(store->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        phx_log_err("could not wake the event loop");
}

static void fail_queued(phx_db_store_t *store, const phx_error_t *err)
{
    /* Called with mu held. */
    size_t n = 0;
    for (request_t *r = store->head; r; r = r->next, n++) {
        r->failed = true;
        r->err = *err;
    }
    store->stats.failed += n;
    post_done(store, store->head);
    store->head = store->tail = NULL;
}

static void merge_stats(phx_db_store_stats_t *to, phx_db_store_stats_t *delta)
{
    to->transactions += delta->transactions;
    to->committed += delta->committed;
    to->failed += delta->failed;
    to->reads += delta->reads;
    to->group_retries += delta->group_retries;
    to->rows_merged += delta->rows_merged;
    if (delta->max_group > to->max_group)
        to->max_group = delta->max_group;
    memset(delta, 0, sizeof(*delta));
}

static void wait_backoff(phx_db_store_t *store, unsigned ms)
{
    /* Called with mu held; returns early on stop. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!store->stopping &&
           pthread_cond_timedwait(&store->cv, &store->mu, &until) != ETIMEDOUT)
        ;
}

/* Connect for queued work; on failure fail it all and back off.  Called and
 * returns with mu held; true if connected. */
static bool reconnect(phx_db_store_t *store, unsigned *delay)
{
    phx_error_t err;
    pthread_mutex_unlock(&store->mu);
    int rc = phx_db_session_open(&store->session, store->dsn, &err);
    pthread_mutex_lock(&store->mu);
    if (rc == 0) {
        store->stats.reconnects++;
        *delay = store->opts.reconnect_min_ms;
        phx_log_notice("reconnected to the database");
        return true;
    }
    if (store->stopping) {
        phx_log_warnx("%s", err.text);
        phx_db_set_state_error(&err, "08003",
                               "database store is shutting down and the database "
                               "is unreachable");
    } else {
        phx_log_warnx("%s; retrying in %u ms", err.text, *delay);
    }
    fail_queued(store, &err);
    if (!store->stopping) {
        wait_backoff(store, *delay);
        *delay = *delay * 2 > store->opts.reconnect_max_ms
                     ? store->opts.reconnect_max_ms
                     : *delay * 2;
    }
    return false;
}

typedef struct batch {
    request_t *list; /* everything taken, in order */
    request_t **writes, **reads;
    size_t nwrites, nreads, cap;
} batch_t;

/* Take up to max_batch statements' worth of requests.  Called with mu held. */
static int take_batch(phx_db_store_t *store, batch_t *b)
{
    size_t stmts = 0;
    request_t **tail = &b->list;
    while (store->head && (stmts == 0 || stmts < store->opts.max_batch)) {
        request_t *r = store->head;
        if (b->nwrites + b->nreads == b->cap) {
            size_t cap = b->cap ? 2 * b->cap : 256;
            request_t **w = realloc(b->writes, cap * sizeof(*w));
            if (w)
                b->writes = w;
            request_t **rd = w ? realloc(b->reads, cap * sizeof(*rd)) : NULL;
            if (rd)
                b->reads = rd;
            if (!w || !rd)
                return b->list ? 0 : -1;
            b->cap = cap;
        }
        store->head = r->next;
        if (!store->head)
            store->tail = NULL;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
        if (r->kind == REQ_READ)
            b->reads[b->nreads++] = r;
        else
            b->writes[b->nwrites++] = r;
        stmts += (size_t)r->nstmts;
    }
    return 0;
}

static void refresh_fence(phx_db_store_t *store)
{
    /* Called with mu held. */
    if (store->session_fence_gen == store->fence_gen)
        return;
    db_session_t *s = &store->session;
    if (s->fence) {
        phx_db_stmt_free(s->fence);
        free(s->fence);
        s->fence = NULL;
    }
    if (store->fence) {
        stmt_t *copy = calloc(1, sizeof(*copy));
        if (!copy || phx_db_stmt_copy(copy, store->fence->sql, store->fence->nparams,
                                      (const char *const *)store->fence->params) < 0) {
            free(copy);
            return; /* the caller fails the batch rather than run unfenced */
        }
        s->fence = copy;
    }
    store->session_fence_gen = store->fence_gen;
}

static void *db_main(void *arg)
{
    phx_db_store_t *store = arg;
    unsigned delay = store->opts.reconnect_min_ms;
    batch_t b = {0};
    pthread_mutex_lock(&store->mu);
    for (;;) {
        while (!store->head && !store->stopping)
            pthread_cond_wait(&store->cv, &store->mu);
        if (!store->head)
            break;
        pthread_mutex_unlock(&store->mu);
        bool alive = phx_db_session_check(&store->session);
        pthread_mutex_lock(&store->mu);
        if (!alive && !reconnect(store, &delay))
            continue;
        refresh_fence(store);
        if (store->session_fence_gen != store->fence_gen) {
            phx_error_t err;
            phx_error_set(&err, "could not install the fence: out of memory");
            fail_queued(store, &err);
            continue;
        }
        b.list = NULL;
        b.nwrites = b.nreads = 0;
        if (take_batch(store, &b) < 0) {
            phx_error_t err;
            phx_error_set(&err, "out of memory");
            fail_queued(store, &err);
            continue;
        }
        pthread_mutex_unlock(&store->mu);
        phx_db_session_run(&store->session, b.writes, b.nwrites, b.reads, b.nreads);
        pthread_mutex_lock(&store->mu);
        merge_stats(&store->stats, &store->session.delta);
        post_done(store, b.list);
    }
    pthread_mutex_unlock(&store->mu);
    free(b.writes);
    free(b.reads);
    return NULL;
}

/* ---- loop thread ---- */

static void deliver(phx_db_store_t *store, request_t *list)
{
    store->in_dispatch++;
    while (list) {
        request_t *r = list;
        list = r->next;
        char state[6];
        if (r->failed && store->refused && phx_db_error_sqlstate(&r->err, state) &&
            strcmp(state, store->refused_state) == 0)
            store->refused(&r->err, store->refused_arg);
        if (r->failed)
            r->cb(&r->err, NULL, 0, r->arg);
        else if (r->rows)
            r->cb(NULL, NULL, r->rows->returns && r->written ? 1 : 0, r->arg);
        else
            r->cb(NULL, r->results, r->nstmts, r->arg);
        request_free(r);
        store->outstanding--;
    }
    store->in_dispatch--;
}

static request_t *take_done(phx_db_store_t *store)
{
    pthread_mutex_lock(&store->mu);
    request_t *list = store->done_head;
    store->done_head = store->done_tail = NULL;
    pthread_mutex_unlock(&store->mu);
    return list;
}

static void finish_destroy(phx_db_store_t *store);

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    phx_db_store_t *store = arg;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        phx_log_err("could not read the store's eventfd");
    deliver(store, take_done(store));
    if (store->destroy_pending && store->in_dispatch == 0)
        finish_destroy(store);
}

static int enqueue(phx_db_store_t *store, request_t *req, phx_db_done_f cb, void *arg,
                   phx_error_t *err)
{
    if (store->closing) {
        errno = ESHUTDOWN;
        return phx_error_set(err, "database store is shutting down");
    }
    if (store->outstanding >= store->opts.max_queue) {
        errno = EAGAIN;
        return phx_error_set(err, "database queue is full (%zu requests)",
                             store->outstanding);
    }
    req->resv = calloc((size_t)req->nstmts, sizeof(*req->resv));
    req->results = calloc((size_t)req->nstmts, sizeof(*req->results));
    if (!req->resv || !req->results)
        return phx_error_set(err, "out of memory");
    for (int i = 0; i < req->nstmts; i++)
        req->results[i] = &req->resv[i];
    req->cb = cb;
    req->arg = arg;
    req->next = NULL;
    store->outstanding++;
    pthread_mutex_lock(&store->mu);
    if (store->tail)
        store->tail->next = req;
    else
        store->head = req;
    store->tail = req;
    pthread_cond_signal(&store->cv);
    pthread_mutex_unlock(&store->mu);
    return 0;
}

/* rows: the kind of a row write (sql is then its one-row form), else NULL. */
static int queue_one(phx_db_store_t *store, req_kind_t kind, const phx_db_rows_t *rows,
                     const char *sql, int nparams, const char *const *params,
                     phx_db_done_f cb, void *arg, phx_error_t *err)
{
    if (!store || !cb) {
        errno = EINVAL;
        return phx_error_set(err, "invalid store arguments");
    }
    request_t *req = phx_db_txn_create();
    if (!req)
        return phx_error_set(err, "out of memory");
    req->kind = kind;
    req->rows = rows;
    if (phx_db_txn_add(req, sql, nparams, params, err) < 0 ||
        enqueue(store, req, cb, arg, err) < 0) {
        request_free(req);
        return -1;
    }
    return 0;
}

int phx_db_store_write(phx_db_store_t *store, const char *sql, int nparams,
                       const char *const *params, phx_db_done_f cb, void *arg,
                       phx_error_t *err)
{
    return queue_one(store, REQ_WRITE, NULL, sql, nparams, params, cb, arg, err);
}

int phx_db_store_write_row(phx_db_store_t *store, const phx_db_rows_t *kind,
                           const char *const *params, phx_db_done_f cb, void *arg,
                           phx_error_t *err)
{
    if (!kind || !kind->one || !kind->many || kind->nparams < 1 ||
        kind->nparams > PHX_DB_ROWS_MAX_PARAMS || kind->nkeys < 1 ||
        kind->nkeys > kind->nparams) {
        errno = EINVAL;
        return phx_error_set(err, "invalid row statement");
    }
    return queue_one(store, REQ_WRITE, kind, kind->one, kind->nparams, params, cb, arg,
                     err);
}

int phx_db_store_read(phx_db_store_t *store, const char *sql, int nparams,
                      const char *const *params, phx_db_done_f cb, void *arg,
                      phx_error_t *err)
{
    return queue_one(store, REQ_READ, NULL, sql, nparams, params, cb, arg, err);
}

int phx_db_store_txn(phx_db_store_t *store, phx_db_txn_t *txn, phx_db_done_f cb,
                     void *arg, phx_error_t *err)
{
    if (!store || !txn || !cb || txn->nstmts == 0) {
        bool empty = txn && txn->nstmts == 0;
        request_free(txn);
        errno = EINVAL;
        return phx_error_set(err, "invalid transaction: %s",
                             empty ? "no statements" : "bad arguments");
    }
    if (enqueue(store, txn, cb, arg, err) < 0) {
        request_free(txn);
        return -1;
    }
    return 0;
}

int phx_db_store_set_fence(phx_db_store_t *store, const char *sql, int nparams,
                           const char *const *params, phx_error_t *err)
{
    if (!store || (sql && check_stmt_args(sql, nparams, params, err) < 0)) {
        errno = EINVAL;
        return phx_error_set(err, "invalid fence arguments");
    }
    stmt_t *fence = NULL;
    if (sql) {
        fence = calloc(1, sizeof(*fence));
        if (!fence || phx_db_stmt_copy(fence, sql, nparams, params) < 0) {
            free(fence);
            return phx_error_set(err, "out of memory");
        }
    }
    pthread_mutex_lock(&store->mu);
    stmt_t *old = store->fence;
    store->fence = fence;
    store->fence_gen++;
    pthread_mutex_unlock(&store->mu);
    if (old) {
        phx_db_stmt_free(old);
        free(old);
    }
    return 0;
}

void phx_db_store_on_refused(phx_db_store_t *store, const char *sqlstate,
                             phx_db_refused_f cb, void *arg)
{
    snprintf(store->refused_state, sizeof(store->refused_state), "%s",
             cb && sqlstate ? sqlstate : "");
    store->refused = cb;
    store->refused_arg = arg;
}

void phx_db_store_stats(phx_db_store_t *store, phx_db_store_stats_t *out)
{
    pthread_mutex_lock(&store->mu);
    *out = store->stats;
    pthread_mutex_unlock(&store->mu);
    out->queued = store->outstanding;
}

phx_db_store_t *phx_db_store_create(struct event_base *base, const char *dsn,
                                    const phx_db_store_opts_t *opts, phx_error_t *err)
{
    phx_db_store_t *store = calloc(1, sizeof(*store));
    if (!store || !base) {
        free(store);
        errno = store ? EINVAL : ENOMEM;
        phx_error_set(err, "could not create the database store: %s", strerror(errno));
        return NULL;
    }
    store->efd = -1;
    if (opts)
        store->opts = *opts;
    if (!store->opts.max_queue)
        store->opts.max_queue = 10000;
    if (!store->opts.max_batch)
        store->opts.max_batch = 1000;
    if (!store->opts.reconnect_min_ms)
        store->opts.reconnect_min_ms = 100;
    if (!store->opts.reconnect_max_ms)
        store->opts.reconnect_max_ms = 5000;
    if (store->opts.reconnect_max_ms < store->opts.reconnect_min_ms)
        store->opts.reconnect_max_ms = store->opts.reconnect_min_ms;
    store->base = base;
    pthread_mutex_init(&store->mu, NULL);
    pthread_cond_init(&store->cv, NULL);
    if (!(store->dsn = strdup(dsn ? dsn : ""))) {
        phx_error_set(err, "out of memory");
        goto error;
    }
    if (phx_db_session_open(&store->session, store->dsn, err) < 0)
        goto error;
    store->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (store->efd < 0 ||
        !(store->done_ev =
              event_new(base, store->efd, EV_READ | EV_PERSIST, on_done, store)) ||
        event_add(store->done_ev, NULL) < 0) {
        phx_error_set(err, "could not create the store's completion event: %s",
                      strerror(errno));
        goto error;
    }
    int rc = pthread_create(&store->thread, NULL, db_main, store);
    if (rc != 0) {
        errno = rc;
        phx_error_set(err, "could not start the database thread: %s", strerror(rc));
        goto error;
    }
    store->thread_started = true;
    return store;
error:
    finish_destroy(store);
    return NULL;
}

static void finish_destroy(phx_db_store_t *store)
{
    int saved = errno;
    store->destroying = true;
    store->closing = true;
    if (store->thread_started) {
        pthread_mutex_lock(&store->mu);
        store->stopping = true;
        pthread_cond_broadcast(&store->cv);
        pthread_mutex_unlock(&store->mu);
        pthread_join(store->thread, NULL);
        store->thread_started = false;
    }
    if (store->done_ev)
        event_free(store->done_ev);
    deliver(store, take_done(store));
    if (store->efd >= 0)
        close(store->efd);
    phx_db_session_close(&store->session);
    free(store->session.cache);
    if (store->session.fence) {
        phx_db_stmt_free(store->session.fence);
        free(store->session.fence);
    }
    if (store->fence) {
        phx_db_stmt_free(store->fence);
        free(store->fence);
    }
    pthread_cond_destroy(&store->cv);
    pthread_mutex_destroy(&store->mu);
    free(store->dsn);
    free(store);
    errno = saved;
}

void phx_db_store_destroy(phx_db_store_t *store)
{
    if (!store || store->destroying)
        return;
    store->closing = true;
    if (store->in_dispatch > 0) {
        store->destroy_pending = true;
        return;
    }
    finish_destroy(store);
}
