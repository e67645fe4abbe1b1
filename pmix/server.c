/* The PMIx server host: init, the hand-off from PMIx's thread to the
 * agent's loop, and the host callbacks.
 *
 * PMIx's module callbacks carry no host pointer, and PMIx allows one server
 * per process: the running server is kept in one file-local pointer. */
#include <errno.h>
#include <fcntl.h>
#include <pmix.h>
#include <pmix_server.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "pmix/pmix_impl.h"

static phx_pmix_t *server; /* the running server, or NULL */

/* ---- hand-off: PMIx thread → loop thread ---- */

static void post(phx_pmix_t *p, phx_pmix_ev_t *ev)
{
    pthread_mutex_lock(&p->lock);
    ev->next = NULL;
    if (p->tail)
        p->tail->next = ev;
    else
        p->head = ev;
    p->tail = ev;
    pthread_mutex_unlock(&p->lock);
    char c = 0;
    ssize_t w = write(p->wake[1], &c, 1); /* full pipe: a wake-up is pending */
    (void)w;
}

static phx_pmix_ev_t *ev_new(phx_pmix_ev_kind_t kind, const pmix_proc_t *proc)
{
    phx_pmix_ev_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->kind = kind;
    if (proc) {
        snprintf(ev->nspace, sizeof(ev->nspace), "%s", proc->nspace);
        ev->rank = proc->rank == PMIX_RANK_WILDCARD ? -1 : (int)proc->rank;
    }
    return ev;
}

static void ev_free(phx_pmix_ev_t *ev)
{
    if (!ev)
        return;
    free(ev->data);
    free(ev->msg);
    free(ev);
}

/* Pending operations waiting for a _done call, by token. */
static void pending_add(phx_pmix_t *p, phx_pmix_ev_t *ev)
{
    ev->token = ++p->next_token;
    ev->next = p->pending;
    p->pending = ev;
}

static phx_pmix_ev_t *pending_take(phx_pmix_t *p, uint64_t token)
{
    for (phx_pmix_ev_t **pp = &p->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->token == token) {
            phx_pmix_ev_t *ev = *pp;
            *pp = ev->next;
            return ev;
        }
    return NULL;
}

static void release_buf(void *cbdata)
{
    free(cbdata);
}

static void complete_modex(phx_pmix_ev_t *ev, int status, const void *data, size_t len)
{
    char *copy = NULL;
    if (len > 0 && !(copy = malloc(len))) {
        status = -1;
        len = 0;
    }
    if (len > 0)
        memcpy(copy, data, len);
    ev->modex_cb(status == 0 ? PMIX_SUCCESS : PMIX_ERROR, copy, len, ev->cbdata,
                 release_buf, copy);
}

void phx_pmix_fence_done(phx_pmix_t *p, uint64_t token, int status, const void *data,
                         size_t len)
{
    phx_pmix_ev_t *ev = pending_take(p, token);
    if (!ev)
        return;
    complete_modex(ev, status, data, len);
    ev_free(ev);
}

void phx_pmix_dmodex_done(phx_pmix_t *p, uint64_t token, int status, const void *data,
                          size_t len)
{
    phx_pmix_fence_done(p, token, status, data, len);
}

/* Fail the pending operations of a namespace (step end). */
void phx_pmix_pending_fail(phx_pmix_t *p, const char *nspace)
{
    phx_pmix_ev_t **pp = &p->pending;
    while (*pp) {
        phx_pmix_ev_t *ev = *pp;
        if (strcmp(ev->nspace, nspace) != 0) {
            pp = &ev->next;
            continue;
        }
        *pp = ev->next;
        complete_modex(ev, -1, NULL, 0);
        ev_free(ev);
    }
}

static void dispatch(phx_pmix_t *p, phx_pmix_ev_t *ev)
{
    const phx_pmix_ops_t *o = &p->ops;
    switch (ev->kind) {
    case PHX_PMIX_EV_FENCE:
        pending_add(p, ev);
        o->fence(p->arg, ev->nspace, ev->token, ev->data, ev->len);
        return; /* kept until done */
    case PHX_PMIX_EV_DMODEX:
        pending_add(p, ev);
        o->dmodex(p->arg, ev->nspace, ev->rank, ev->token);
        return;
    case PHX_PMIX_EV_DMODEX_DATA:
        o->dmodex_data(p->arg, ev->token, ev->status, ev->data, ev->len);
        break;
    case PHX_PMIX_EV_ABORT:
        o->abort(p->arg, ev->nspace, ev->rank, ev->status, ev->msg ? ev->msg : "");
        if (ev->op_cb)
            ev->op_cb(PMIX_SUCCESS, ev->cbdata);
        break;
    case PHX_PMIX_EV_LOG:
        phx_log_notice("step %s rank %d: %s", ev->nspace, ev->rank,
                       ev->msg ? ev->msg : "");
        if (ev->op_cb) /* deferred: the client hangs if called inside */
            ev->op_cb(PMIX_SUCCESS, ev->cbdata);
        break;
    case PHX_PMIX_EV_CONNECTED: o->connected(p->arg, ev->nspace, ev->rank); break;
    case PHX_PMIX_EV_FINALIZED: o->finalized(p->arg, ev->nspace, ev->rank); break;
    case PHX_PMIX_EV_LOST: o->lost(p->arg, ev->nspace, ev->rank); break;
    }
    ev_free(ev);
}

/* Run every queued event.  Also called before the agent looks at a rank's
 * exit, so that a finalize is seen before the exit it preceded. */
void phx_pmix_drain(phx_pmix_t *p)
{
    if (!p)
        return;
    char buf[256];
    while (read(p->wake[0], buf, sizeof(buf)) > 0)
        ;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        phx_pmix_ev_t *ev = p->head;
        if (ev && !(p->head = ev->next))
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        if (!ev)
            break;
        dispatch(p, ev);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_pmix_drain(arg);
}

/* ---- host callbacks (PMIx's thread) ---- */

static pmix_status_t cb_connected(const pmix_proc_t *proc, void *obj,
                                  pmix_op_cbfunc_t cbfunc, void *cbdata)
{
    (void)obj;
    (void)cbfunc;
    (void)cbdata;
    phx_pmix_ev_t *ev = server ? ev_new(PHX_PMIX_EV_CONNECTED, proc) : NULL;
    if (ev)
        post(server, ev);
    return PMIX_OPERATION_SUCCEEDED;
}

static pmix_status_t cb_finalized(const pmix_proc_t *proc, void *obj,
                                  pmix_op_cbfunc_t cbfunc, void *cbdata)
{
    (void)obj;
    (void)cbfunc;
    (void)cbdata;
    phx_pmix_ev_t *ev = server ? ev_new(PHX_PMIX_EV_FINALIZED, proc) : NULL;
    if (ev)
        post(server, ev);
    return PMIX_OPERATION_SUCCEEDED;
}

static pmix_status_t cb_abort(const pmix_proc_t *proc, void *obj, int status,
                              const char msg[], pmix_proc_t procs[], size_t nprocs,
                              pmix_op_cbfunc_t cbfunc, void *cbdata)
{
    (void)obj;
    (void)procs;
    (void)nprocs; /* any abort ends the whole step: gang semantics */
    phx_pmix_ev_t *ev = server ? ev_new(PHX_PMIX_EV_ABORT, proc) : NULL;
    if (!ev)
        return PMIX_ERR_NOMEM;
    ev->status = status;
    ev->msg = msg ? strdup(msg) : NULL;
    ev->op_cb = cbfunc;
    ev->cbdata = cbdata;
    post(server, ev);
    return PMIX_SUCCESS;
}

static pmix_status_t cb_fence(const pmix_proc_t procs[], size_t nprocs,
                              const pmix_info_t info[], size_t ninfo, char *data,
                              size_t ndata, pmix_modex_cbfunc_t cbfunc, void *cbdata)
{
    (void)info;
    (void)ninfo;
    if (!server || nprocs < 1)
        return PMIX_ERR_BAD_PARAM;
    phx_pmix_ev_t *ev = ev_new(PHX_PMIX_EV_FENCE, &procs[0]);
    if (!ev || (ndata > 0 && !(ev->data = malloc(ndata)))) {
        ev_free(ev);
        return PMIX_ERR_NOMEM;
    }
    if (ndata > 0)
        memcpy(ev->data, data, ndata);
    ev->len = ndata;
    ev->modex_cb = cbfunc;
    ev->cbdata = cbdata;
    post(server, ev);
    return PMIX_SUCCESS;
}

static pmix_status_t cb_dmodex(const pmix_proc_t *proc, const pmix_info_t info[],
                               size_t ninfo, pmix_modex_cbfunc_t cbfunc, void *cbdata)
{
    (void)info;
    (void)ninfo;
    phx_pmix_ev_t *ev = server ? ev_new(PHX_PMIX_EV_DMODEX, proc) : NULL;
    if (!ev)
        return PMIX_ERR_NOMEM;
    ev->modex_cb = cbfunc;
    ev->cbdata = cbdata;
    post(server, ev);
    return PMIX_SUCCESS;
}

static void cb_log(const pmix_proc_t *client, const pmix_info_t data[], size_t ndata,
                   const pmix_info_t directives[], size_t ndirs,
                   pmix_op_cbfunc_t cbfunc, void *cbdata)
{
    (void)directives;
    (void)ndirs;
    phx_pmix_ev_t *ev = server ? ev_new(PHX_PMIX_EV_LOG, client) : NULL;
    if (!ev) {
        if (cbfunc)
            cbfunc(PMIX_ERR_NOMEM, cbdata);
        return;
    }
    size_t cap = 1, len = 0;
    for (size_t i = 0; i < ndata; i++)
        if (data[i].value.type == PMIX_STRING && data[i].value.data.string)
            cap += strlen(data[i].value.data.string) + 1;
    if ((ev->msg = malloc(cap))) {
        ev->msg[0] = '\0';
        for (size_t i = 0; i < ndata; i++)
            if (data[i].value.type == PMIX_STRING && data[i].value.data.string)
                len += (size_t)snprintf(ev->msg + len, cap - len, "%s%s",
                                        len ? " " : "", data[i].value.data.string);
    }
    ev->op_cb = cbfunc;
    ev->cbdata = cbdata;
    post(server, ev);
}

static void on_lost(size_t id, pmix_status_t status, const pmix_proc_t *source,
                    pmix_info_t info[], size_t ninfo, pmix_info_t *results,
                    size_t nresults, pmix_event_notification_cbfunc_fn_t cbfunc,
                    void *cbdata)
{
    (void)id;
    (void)status;
    (void)info;
    (void)ninfo;
    (void)results;
    (void)nresults;
    phx_pmix_ev_t *ev = server && source ? ev_new(PHX_PMIX_EV_LOST, source) : NULL;
    if (ev)
        post(server, ev);
    if (cbfunc)
        cbfunc(PMIX_EVENT_ACTION_COMPLETE, NULL, 0, NULL, NULL, cbdata);
}

static void dmodex_answer(pmix_status_t status, char *data, size_t sz, void *cbdata)
{
    phx_pmix_ev_t *ev = cbdata;
    ev->status = status == PMIX_SUCCESS ? 0 : -1;
    if (sz > 0 && (ev->data = malloc(sz))) {
        memcpy(ev->data, data, sz);
        ev->len = sz;
    }
    if (server)
        post(server, ev);
    else
        ev_free(ev);
}

int phx_pmix_dmodex_request(phx_pmix_t *p, const char *nspace, int rank, uint64_t req)
{
    phx_pmix_ev_t *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return -1;
    ev->kind = PHX_PMIX_EV_DMODEX_DATA;
    ev->token = req;
    pmix_proc_t proc;
    PMIX_PROC_LOAD(&proc, nspace, (pmix_rank_t)rank);
    snprintf(ev->nspace, sizeof(ev->nspace), "%s", nspace);
    pmix_status_t rc = PMIx_server_dmodex_request(&proc, dmodex_answer, ev);
    if (rc != PMIX_SUCCESS) {
        free(ev);
        (void)p;
        errno = EIO;
        return -1;
    }
    return 0;
}

/* ---- life ---- */

static pmix_server_module_t module = {
    .client_connected = cb_connected,
    .client_finalized = cb_finalized,
    .abort = cb_abort,
    .fence_nb = cb_fence,
    .direct_modex = cb_dmodex,
    .log = cb_log,
};

phx_pmix_t *phx_pmix_create(struct event_base *base, const char *node,
                            const char *tmpdir, const phx_pmix_ops_t *ops, void *arg,
                            phx_error_t *err)
{
    if (server) {
        phx_error_set(err, "a PMIx server already runs in this process");
        errno = EBUSY;
        return NULL;
    }
    phx_pmix_t *p = calloc(1, sizeof(*p));
    if (!p) {
        phx_error_set(err, "out of memory");
        return NULL;
    }
    p->wake[0] = p->wake[1] = -1;
    p->ops = *ops;
    p->arg = arg;
    pthread_mutex_init(&p->lock, NULL);
    snprintf(p->node, sizeof(p->node), "%s", node);
    snprintf(p->tmpdir, sizeof(p->tmpdir), "%s", tmpdir);
    if (mkdir(tmpdir, 0755) < 0 && errno != EEXIST) {
        phx_error_set(err, "could not create directory \"%s\": %s", tmpdir,
                      strerror(errno));
        goto error;
    }
    chmod(tmpdir, 0755);
    if (phx_pmix_stepbase_create(p, err) < 0)
        goto error;
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(p->wake_ev = event_new(base, p->wake[0], EV_READ | EV_PERSIST, on_wake, p)) ||
        event_add(p->wake_ev, NULL) < 0) {
        phx_error_set(err, "could not set up the PMIx hand-off: %s", strerror(errno));
        goto error;
    }
    char uri_file[1100];
    snprintf(uri_file, sizeof(uri_file), "%s/server.uri", tmpdir);
    unlink(uri_file);
    pmix_info_t info[7];
    bool no = false, yes = true;
    PMIX_INFO_LOAD(&info[0], PMIX_SERVER_TMPDIR, tmpdir, PMIX_STRING);
    PMIX_INFO_LOAD(&info[1], PMIX_HOSTNAME, node, PMIX_STRING);
    PMIX_INFO_LOAD(&info[2], PMIX_TCP_IF_INCLUDE, "lo", PMIX_STRING);
    PMIX_INFO_LOAD(&info[3], PMIX_TCP_DISABLE_IPV6, &yes, PMIX_BOOL);
    PMIX_INFO_LOAD(&info[4], PMIX_SERVER_TOOL_SUPPORT, &no, PMIX_BOOL);
    PMIX_INFO_LOAD(&info[5], PMIX_SYSTEM_TMPDIR, tmpdir, PMIX_STRING);
    PMIX_INFO_LOAD(&info[6], PMIX_TCP_REPORT_URI, uri_file, PMIX_STRING);
    /* Not ds12: its one lock for every namespace belongs to a single user,
     * so the ranks of everyone else printed a PMIx error in MPI_Init. */
    setenv("PMIX_MCA_gds", "ds21,hash", 1);
    server = p;
    phx_pmix_gate_prepare(); /* nobody gets in until the gate knows the port */
    pmix_status_t rc = PMIx_server_init(&module, info, 7);
    for (int i = 0; i < 7; i++)
        PMIX_INFO_DESTRUCT(&info[i]);
    if (rc != PMIX_SUCCESS) {
        server = NULL;
        phx_error_set(err, "could not start the PMIx server: %s",
                      PMIx_Error_string(rc));
        goto error;
    }
    p->initialized = true;
    if (phx_pmix_gate_arm(uri_file, err) < 0) /* never serve ungated */
        goto error;
    pmix_status_t codes[] = {PMIX_ERR_LOST_CONNECTION};
    PMIx_Register_event_handler(codes, 1, NULL, 0, on_lost, NULL, NULL);
    return p;
error:
    phx_pmix_destroy(p);
    return NULL;
}

void phx_pmix_destroy(phx_pmix_t *p)
{
    if (!p)
        return;
    int saved = errno;
    if (p->initialized)
        PMIx_server_finalize();
    phx_pmix_gate_disarm();
    server = NULL;
    while (p->head) { /* not dispatched: the agent is going away */
        phx_pmix_ev_t *ev = p->head;
        p->head = ev->next;
        ev_free(ev);
    }
    while (p->pending) {
        phx_pmix_ev_t *ev = p->pending;
        p->pending = ev->next;
        ev_free(ev);
    }
    if (p->wake_ev)
        event_free(p->wake_ev);
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    phx_pmix_stepbase_remove(p);
    pthread_mutex_destroy(&p->lock);
    free(p);
    errno = saved;
}
