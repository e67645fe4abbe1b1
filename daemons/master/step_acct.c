/* Writing numbered steps' accounting records (step_record.h) through the
 * store, without waiting on them.
 *
 * A step is recorded when it starts (RUNNING) and again when it ends.  Its
 * job is found in SQL from the gang; phx-batchd writes the link when it
 * starts the job, asynchronously, so a step started at once may find no job
 * yet: the write is then retried with the step's latest values (after
 * 0.5 s, doubling to 32 s: 8 retries over about 95 s).  One write per step
 * is in flight at a time; a newer record of the same step waits for it and
 * replaces what it sends.  A step of a gang whose framework never ran a
 * batch job (any framework's task may run `phx run`) has no job to wait for
 * and is not retried; nor is a record the database refuses for its values
 * (SQLSTATE classes 22 and 23): it is logged once.  Loop thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step.h"
#include "db/db.h"
#include "lib/log.h"

#define MAX_ATTEMPTS 9

typedef struct pending {
    struct pending *next;
    phx_master_t *m;
    phx_step_rec_t rec;
    bool inflight; /* a write of it is queued */
    bool dirty;    /* rec changed since that write was queued */
    int attempts;  /* writes that found no job */
    struct event *retry;
} pending_t;

static pending_t *pendings;

static void send_rec(pending_t *p);

static void pending_free(pending_t *p)
{
    for (pending_t **pp = &pendings; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (p->retry)
        event_free(p->retry);
    free(p);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_rec(arg);
}

/* Try again later, or give up after MAX_ATTEMPTS. */
static void later(pending_t *p, const char *why)
{
    if (++p->attempts >= MAX_ATTEMPTS) {
        phx_log_errx("could not record step %d of gang %lld: %s; giving up",
                     p->rec.number, (long long)p->rec.gang_id, why);
        pending_free(p);
        return;
    }
    double delay = 0.5;
    for (int i = 1; i < p->attempts && delay < 30; i++)
        delay *= 2;
    struct timeval tv = {(time_t)delay, (suseconds_t)((delay - (long)delay) * 1e6)};
    if (!p->retry && !(p->retry = event_new(p->m->base, -1, 0, on_retry, p))) {
        phx_log_errx("could not record step %d of gang %lld: out of memory",
                     p->rec.number, (long long)p->rec.gang_id);
        pending_free(p);
        return;
    }
    event_add(p->retry, &tv);
}

static void written(const phx_error_t *err, phx_db_result_t *const *res, int nres,
                    void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    pending_t *p = arg;
    char sqlstate[6];
    p->inflight = false;
    if (err && phx_db_error_sqlstate(err, sqlstate) &&
        phx_step_rec_permanent(sqlstate)) {
        phx_log_errx("could not record step %d of gang %lld (\"%s\", %s): %s",
                     p->rec.number, (long long)p->rec.gang_id, p->rec.name,
                     p->rec.state ? p->rec.state : "RUNNING", err->text);
        if (p->dirty) { /* newer values may be accepted */
            p->dirty = false;
            send_rec(p);
            return;
        }
        pending_free(p);
        return;
    }
    if (err) {
        later(p, err->text);
        return;
    }
    if (nres < 1 || phx_db_result_rows(res[0]) < 1 ||
        phx_db_result_isnull(res[0], 0, 0)) {
        if (p->dirty) { /* newer values: they may find the job now */
            p->dirty = false;
            send_rec(p);
            return;
        }
        const char *linkable = nres < 1 ? NULL : phx_db_result_get(res[0], 0, 1);
        if (linkable && strcmp(linkable, "f") == 0) {
            phx_log_debug("step %d of gang %lld: the gang's framework runs no batch "
                          "jobs; not recorded",
                          p->rec.number, (long long)p->rec.gang_id);
            pending_free(p);
            return;
        }
        phx_log_debug("step %d of gang %lld: no job yet; retrying", p->rec.number,
                      (long long)p->rec.gang_id);
        later(p, "no job of phx-batchd runs in that gang");
        return;
    }
    if (p->dirty) {
        p->dirty = false;
        send_rec(p);
        return;
    }
    pending_free(p);
}

static void send_rec(pending_t *p)
{
    phx_step_rec_params_t params;
    phx_error_t err;
    if (p->retry)
        event_del(p->retry);
    phx_step_rec_params(&p->rec, &params);
    if (!p->m->store) {
        pending_free(p);
        return;
    }
    if (phx_db_store_write(p->m->store, phx_step_rec_sql, PHX_STEP_REC_NPARAMS,
                           params.p, written, p, &err) < 0) {
        if (errno == ESHUTDOWN) {
            pending_free(p);
            return;
        }
        later(p, err.text);
        return;
    }
    p->inflight = true;
    p->dirty = false;
}

void phx_step_acct_write(phx_master_t *m, const phx_step_rec_t *rec)
{
    pending_t *p = pendings;
    while (p && (p->rec.gang_id != rec->gang_id || p->rec.number != rec->number))
        p = p->next;
    if (p) {
        p->rec = *rec;
        if (p->inflight)
            p->dirty = true;
        else
            send_rec(p);
        return;
    }
    if (!(p = calloc(1, sizeof(*p)))) {
        phx_log_errx("could not record step %d of gang %lld: out of memory",
                     rec->number, (long long)rec->gang_id);
        return;
    }
    p->m = m;
    p->rec = *rec;
    p->next = pendings;
    pendings = p;
    send_rec(p);
}

void phx_step_acct_clear(void)
{
    while (pendings)
        pending_free(pendings);
}
