/* POST /api/v1/jobs/ID/signal {"signal": "USR1", "scope": "steps"}: scancel
 * -s (doc/batchd.md).  ID is a job, A_T a task of an array, or an array job
 * id A: every running task of the array.  "signal" is a number or a name
 * (jobsig.h); "scope" (default "steps"):
 *
 *   steps  the ranks of the job's steps on every node (scancel -s), not the
 *          batch shell; KILL cancels the job instead (Slurm's scancel -s
 *          KILL is scancel)
 *   batch  the batch shell alone (scancel -b)
 *   full   the batch shell and its children, and the steps (scancel -f)
 *
 * One SIGNAL call per task of the job goes to the master (the batch task
 * gets "main"/"all"/"steps", the others "steps"; none for them with batch),
 * and the answer waits for the master's answers: 200 when every call was
 * taken, else 409 with the master's reason (a task not running yet, an
 * agent away or too old).  A pending job is refused (409), but KILL
 * cancels it, as Slurm does.  Authorised as cancel is (api.c): the caller
 * owns the job or is an operator, else 404. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/jobsig.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"

typedef struct sigop {
    phx_http_deferred_t *reply;
    uint64_t job_id;
    int signal;
    const char *scope; /* static */
    int out;           /* calls not answered yet */
    int sent;          /* calls taken by the master */
    char error[512];   /* the first refusal */
} sigop_t;

static const struct {
    const char *scope;
    phx_task_sig_to_t first; /* the batch task's */
    bool others;             /* the other tasks' steps too */
} scopes[] = {
    {"steps", PHX_SIG_TO_STEPS, true},
    {"batch", PHX_SIG_TO_MAIN, false},
    {"full", PHX_SIG_TO_ALL, true},
};

static void finish(sigop_t *op)
{
    struct evhttp_request *req = phx_http_deferred_req(op->reply);
    if (req && op->error[0])
        phx_http_reply_error(req, 409, "could not signal job %" PRIu64 ": %s",
                             op->job_id, op->error);
    else if (req)
        phx_http_reply_json(req, 200,
                            json_pack("{s:I, s:i, s:s, s:i}", "job_id",
                                      (json_int_t)op->job_id, "signal", op->signal,
                                      "scope", op->scope, "tasks", op->sent));
    phx_http_deferred_free(op->reply);
    free(op);
}

/* The master's answer to one SIGNAL call. */
static void answered(phx_fwc_t *c, int status, const char *body, void *arg)
{
    (void)c;
    sigop_t *op = arg;
    if (status == 202) {
        op->sent++;
    } else if (!op->error[0]) {
        json_t *j = json_loads(body, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "error"));
        if (status == 0)
            snprintf(op->error, sizeof(op->error), "no answer from the master");
        else if (msg && strstr(msg, "unsupported call type"))
            snprintf(op->error, sizeof(op->error),
                     "the master runs a version without SIGNAL; upgrade it");
        else
            snprintf(op->error, sizeof(op->error), "%.400s",
                     msg ? msg : "refused by the master");
        json_decref(j);
        phx_log_warnx("job %" PRIu64 ": signal %d not sent: %s", op->job_id, op->signal,
                      op->error);
    }
    if (--op->out == 0)
        finish(op);
}

/* The SIGNAL calls for one running job; -1 if one could not be sent. */
static int signal_job(batchd_t *b, sigop_t *op, const bjob_t *j, size_t k)
{
    for (size_t i = 0; i < j->ntasks; i++) {
        if (j->tasks[i].ended || (i > 0 && !scopes[k].others))
            continue;
        phx_task_signal_t s = {op->signal, i == 0 ? scopes[k].first : PHX_SIG_TO_STEPS};
        if (!b->fwc || phx_fwc_signal(b->fwc, j->tasks[i].id, &s, answered, op) < 0)
            return -1;
        op->out++;
    }
    return 0;
}

void batchd_api_signal(batchd_t *b, struct evhttp_request *req, uid_t uid, bjob_t *j,
                       bool whole)
{
    phx_error_t err;
    json_t *body = phx_http_body_json(req, 4096, &err);
    const char *name = NULL, *scope = "steps";
    if (!body || phx_json_str(body, "signal", true, &name, &err) < 0 ||
        phx_json_str(body, "scope", false, &scope, &err) < 0) {
        phx_http_reply_error(req, 400, "%s", err.text);
        json_decref(body);
        return;
    }
    size_t k = 0;
    while (k < sizeof(scopes) / sizeof(scopes[0]) && strcmp(scope, scopes[k].scope))
        k++;
    int sig = phx_jobsig_signal(name, &err);
    json_decref(body); /* name and scope are not used below */
    if (k == sizeof(scopes) / sizeof(scopes[0])) {
        phx_http_reply_error(req, 400, "\"scope\" must be steps, batch or full");
        return;
    }
    if (sig < 0) {
        phx_http_reply_error(req, 400, "%s", err.text);
        return;
    }
    /* Slurm's scancel -s KILL is scancel; KILL cancels a pending job */
    bool cancels = sig == SIGKILL && k == 0;
    /* the job, or every task of an array for its array job id */
    bool array = whole && j->array_job_id && j->array_job_id == j->id;
    size_t nrun = 0, pending = 0, cancelled = 0, cancelling = 0;
    for (size_t i = 0; i < (array ? b->njobs : 1); i++) {
        bjob_t *x = array ? b->order[i] : j;
        if (array && x->array_job_id != j->id)
            continue;
        if (sig == SIGKILL && (cancels || x->state == PHX_JOB_PENDING) &&
            !phx_job_state_is_final(x->state) && !x->cancel_requested) {
            batchd_job_cancel(b, x, uid);
            cancelled++;
        } else if (x->state == PHX_JOB_PENDING) {
            pending++;
        } else if (x->state == PHX_JOB_RUNNING && !x->cancel_requested) {
            nrun++;
        } else if (x->state == PHX_JOB_RUNNING) {
            cancelling++;
        }
    }
    if (nrun == 0) {
        if (cancelled)
            phx_http_reply_json(req, 200,
                                json_pack("{s:I, s:i, s:s, s:i, s:i}", "job_id",
                                          (json_int_t)j->id, "signal", sig, "scope",
                                          scopes[k].scope, "tasks", 0, "cancelled",
                                          (int)cancelled));
        else if (cancelling)
            phx_http_reply_error(req, 409, "job %" PRIu64 " is being cancelled", j->id);
        else if (pending)
            phx_http_reply_error(req, 409,
                                 "job %" PRIu64 " is pending: only a running job can "
                                 "be signalled (KILL, or phx cancel, cancels it)",
                                 j->id);
        else
            phx_http_reply_error(req, 409, "job %" PRIu64 " is not running (%s)", j->id,
                                 phx_job_state_name(j->state));
        return;
    }
    sigop_t *op = calloc(1, sizeof(*op));
    if (!op || !(op->reply = phx_http_defer(req))) {
        free(op);
        phx_http_reply_error(req, 503, "out of memory");
        return;
    }
    op->job_id = j->id;
    op->signal = sig;
    op->scope = scopes[k].scope;
    op->out = 1; /* held until every call is out */
    for (size_t i = 0; i < (array ? b->njobs : 1); i++) {
        bjob_t *x = array ? b->order[i] : j;
        if ((array && x->array_job_id != j->id) || x->state != PHX_JOB_RUNNING ||
            x->cancel_requested)
            continue;
        if (signal_job(b, op, x, k) < 0 && !op->error[0])
            snprintf(op->error, sizeof(op->error),
                     "batchd is not connected to the master; try again");
    }
    phx_log_info("job %" PRIu64 ": signal %d (%s) by uid %u: %d calls to the master",
                 j->id, sig, op->scope, (unsigned)uid, op->out - 1);
    if (--op->out == 0)
        finish(op);
}
