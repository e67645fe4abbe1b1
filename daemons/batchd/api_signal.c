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
 * one per node of the job, and the answer waits for the master's answers:
 * 200 when every call was taken; 200 too when some nodes were refused
 * (a task not running yet, an agent away or too old) but others got it,
 * with "failed" (each refused node, its job and the master's reason) and
 * "message" ("signalled on 3 of 4 nodes; n2: agent ... unreachable"): the
 * others got it, a retry would signal them twice; 409 when no node got it,
 * with the reasons per node.  A refusal is the master's, or the agent's
 * when it signalled nothing there (the master passes on its SIGNAL_DONE:
 * "agent "n2" signalled nothing: the kill's error"); a node where no step
 * of the job runs (PHX_SIGNAL_NO_STEP) had nothing to signal and is
 * neither sent nor failed, and 409 names that when it holds for every node;
 * an agent too old to say, or silent for 5 s, counts as signalled.
 * A pending job is refused (409), but KILL cancels it, as Slurm does.
 * Authorised as cancel is (api.c): the caller owns the job or is an
 * operator, else 404. */
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
    uint64_t job_id; /* as asked: the array's id for every task of it */
    bool array;
    int signal;
    const char *scope; /* static */
    int out;           /* calls not answered yet */
    int calls;         /* calls made (nodes) */
    int sent;          /* calls taken by the master */
    int idle;          /* nodes where no step of the job runs (scope steps) */
    json_t *failed;    /* [{"job_id", "node", "error"}] refused or not sent */
} sigop_t;

/* One SIGNAL call: a node of a job. */
typedef struct sigcall {
    sigop_t *op;
    uint64_t job_id, array_job_id; /* 0: not an array task */
    int64_t array_task_id;
    char node[128];
} sigcall_t;

static const struct {
    const char *scope;
    phx_task_sig_to_t first; /* the batch task's */
    bool others;             /* the other tasks' steps too */
} scopes[] = {
    {"steps", PHX_SIG_TO_STEPS, true},
    {"batch", PHX_SIG_TO_MAIN, false},
    {"full", PHX_SIG_TO_ALL, true},
};

/* "signalled on 3 of 4 nodes; n2: why[; ...]" (with each job's id for an
 * array), at most len bytes; what did not fit is counted. */
static void describe(const sigop_t *op, char *buf, size_t len)
{
    size_t at = 0, nf = json_array_size(op->failed), i;
    int w = op->sent == 0 && nf == 0
                ? snprintf(buf, len, "no step of the job runs on its %d node%s",
                           op->idle, op->idle == 1 ? "" : "s")
            : op->sent == 0 ? snprintf(buf, len, "no node got it")
                            : snprintf(buf, len, "signalled on %d of %d nodes",
                                       op->sent, op->calls);
    at = w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
    for (i = 0; i < nf && at + 64 < len; i++) {
        const json_t *f = json_array_get(op->failed, i);
        const char *task = json_string_value(json_object_get(f, "job"));
        w = snprintf(buf + at, len - at - 40, "; %s%s%s: %s", op->array ? task : "",
                     op->array ? " on " : "",
                     json_string_value(json_object_get(f, "node")),
                     json_string_value(json_object_get(f, "error")));
        if (w < 0 || (size_t)w >= len - at - 40)
            break; /* cut: not shown, counted below */
        at += (size_t)w;
    }
    if (i < nf)
        snprintf(buf + at, len - at, "; and %zu more", nf - i);
}

static void finish(sigop_t *op)
{
    struct evhttp_request *req = phx_http_deferred_req(op->reply);
    char msg[1024];
    describe(op, msg, sizeof(msg));
    if (req && op->sent == 0)
        phx_http_reply_error(req, 409, "could not signal job %" PRIu64 ": %s",
                             op->job_id, msg);
    else if (req && json_array_size(op->failed))
        phx_http_reply_json(req, 200,
                            json_pack("{s:I, s:i, s:s, s:i, s:i, s:O, s:s}", "job_id",
                                      (json_int_t)op->job_id, "signal", op->signal,
                                      "scope", op->scope, "tasks", op->sent, "nodes",
                                      op->calls, "failed", op->failed, "message", msg));
    else if (req)
        phx_http_reply_json(req, 200,
                            json_pack("{s:I, s:i, s:s, s:i, s:i}", "job_id",
                                      (json_int_t)op->job_id, "signal", op->signal,
                                      "scope", op->scope, "tasks", op->sent, "nodes",
                                      op->calls));
    if (json_array_size(op->failed))
        phx_log_warnx("job %" PRIu64 ": signal %d: %s", op->job_id, op->signal, msg);
    phx_http_deferred_free(op->reply);
    json_decref(op->failed);
    free(op);
}

/* Record that call k's node did not get the signal, and why. */
static void failed(sigcall_t *k, const char *why)
{
    char job[48];
    if (k->array_job_id)
        snprintf(job, sizeof(job), "%" PRIu64 "_%" PRId64, k->array_job_id,
                 k->array_task_id);
    else
        snprintf(job, sizeof(job), "%" PRIu64, k->job_id);
    json_array_append_new(k->op->failed, json_pack("{s:s, s:I, s:s, s:s}", "job", job,
                                                   "job_id", (json_int_t)k->job_id,
                                                   "node", k->node, "error", why));
    phx_log_warnx("job %s: signal %d not sent on %s: %s", job, k->op->signal, k->node,
                  why);
}

/* The master's answer to one SIGNAL call. */
static void answered(phx_fwc_t *c, int status, const char *body, void *arg)
{
    (void)c;
    sigcall_t *k = arg;
    sigop_t *op = k->op;
    if (status == 202) {
        op->sent++;
    } else {
        json_t *j = json_loads(body ? body : "", 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "error"));
        char why[400];
        if (status == 0)
            snprintf(why, sizeof(why), "no answer from the master");
        else if (status == 409 && msg && strstr(msg, PHX_SIGNAL_NO_STEP)) {
            /* nothing to signal there: neither sent nor failed */
            op->idle++;
            json_decref(j);
            goto done;
        } else if (msg && strstr(msg, "unsupported call type"))
            snprintf(why, sizeof(why),
                     "the master runs a version without SIGNAL; upgrade it");
        else if (msg) { /* "SIGNAL: task T: why": the node is named already */
            const char *m = strncmp(msg, "SIGNAL: ", 8) == 0 ? msg + 8 : msg;
            const char *colon = strncmp(m, "task ", 5) == 0 ? strstr(m, ": ") : NULL;
            snprintf(why, sizeof(why), "%.390s", colon ? colon + 2 : m);
        } else
            snprintf(why, sizeof(why), "refused by the master (HTTP %d)", status);
        json_decref(j);
        failed(k, why);
    }
done:
    free(k);
    if (--op->out == 0)
        finish(op);
}

/* The SIGNAL calls for one running job, one per node. */
static void signal_job(batchd_t *b, sigop_t *op, const bjob_t *j, size_t k)
{
    for (size_t i = 0; i < j->ntasks; i++) {
        if (j->tasks[i].ended || (i > 0 && !scopes[k].others))
            continue;
        phx_task_signal_t s = {op->signal, i == 0 ? scopes[k].first : PHX_SIG_TO_STEPS};
        sigcall_t one = {op, j->id, j->array_job_id, j->array_task_id, ""};
        snprintf(one.node, sizeof(one.node), "%s",
                 j->tasks[i].host[0] ? j->tasks[i].host : j->tasks[i].id);
        sigcall_t *c = malloc(sizeof(*c));
        op->calls++;
        if (!c) {
            failed(&one, "out of memory");
            continue;
        }
        *c = one;
        if (!b->fwc || phx_fwc_signal(b->fwc, j->tasks[i].id, &s, answered, c) < 0) {
            failed(c, "batchd is not connected to the master; try again");
            free(c);
            continue;
        }
        op->out++;
    }
}

void batchd_api_signal(batchd_t *b, struct evhttp_request *req, uid_t uid, bjob_t *j,
                       uint64_t array_id)
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
    bool array = array_id && j->array_job_id == array_id;
    uint64_t id = array ? array_id : j->id; /* as asked */
    size_t nrun = 0, pending = 0, cancelled = 0, cancelling = 0;
    for (size_t i = 0; i < (array ? b->njobs : 1); i++) {
        bjob_t *x = array ? b->order[i] : j;
        if (array && x->array_job_id != id)
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
        if (cancelled) /* once committed */
            batchd_reply(b, req, 200,
                         json_pack("{s:I, s:i, s:s, s:i, s:i}", "job_id",
                                   (json_int_t)id, "signal", sig, "scope",
                                   scopes[k].scope, "tasks", 0, "cancelled",
                                   (int)cancelled));
        else if (cancelling)
            phx_http_reply_error(req, 409, "job %" PRIu64 " is being cancelled", id);
        else if (pending)
            phx_http_reply_error(req, 409,
                                 "job %" PRIu64 " is pending: only a running job can "
                                 "be signalled (KILL, or phx cancel, cancels it)",
                                 id);
        else
            phx_http_reply_error(req, 409, "job %" PRIu64 " is not running (%s)", id,
                                 phx_job_state_name(j->state));
        return;
    }
    sigop_t *op = calloc(1, sizeof(*op));
    if (!op || !(op->failed = json_array()) || !(op->reply = phx_http_defer(req))) {
        if (op)
            json_decref(op->failed);
        free(op);
        phx_http_reply_error(req, 503, "out of memory");
        return;
    }
    op->job_id = id;
    op->array = array;
    op->signal = sig;
    op->scope = scopes[k].scope;
    op->out = 1; /* held until every call is out */
    for (size_t i = 0; i < (array ? b->njobs : 1); i++) {
        bjob_t *x = array ? b->order[i] : j;
        if ((array && x->array_job_id != id) || x->state != PHX_JOB_RUNNING ||
            x->cancel_requested)
            continue;
        signal_job(b, op, x, k);
    }
    phx_log_info("job %" PRIu64 ": signal %d (%s) by uid %u: %d calls to the master",
                 id, sig, op->scope, (unsigned)uid, op->out - 1);
    if (--op->out == 0)
        finish(op);
}
