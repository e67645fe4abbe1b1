/* Job holds, as Slurm's (doc/batchd.md, "Holds"): a held job stays PENDING
 * with reason JobHeldUser (sbatch -H, or a hold by its owner) or
 * JobHeldAdmin (a hold by an operator, or -H from one), is never eligible
 * (order.c), so it sends no gang request and the planner reserves nothing
 * for it, until it is released.  The reason is the hold: it is the jobs
 * row's reason column, so a hold survives a restart of batchd, and the
 * jobs_transition trigger records each hold and release in job_events
 * (db/migrations/008_job_holds.sql).
 *
 *   POST /api/v1/jobs/ID/hold      hold (an operator's is an admin hold)
 *   POST /api/v1/jobs/ID/uhold     a user hold, also from an operator
 *   POST /api/v1/jobs/ID/release   release
 *
 * ID: a job id (an array job id A: every pending task of the array), A_T
 * (task T of array A) or A_LIST (LIST in --array syntax: those tasks).  A
 * user holds and releases its own pending jobs, and may not release (nor
 * turn into its own) an operator's hold; operators act on any job.  A job
 * that is not pending is refused by name with its state.  Another user's
 * job is answered 404, as the rest of the API does.  An array job id still
 * names the array once job A (its task 0) has left memory, while other
 * tasks of it are there.
 *
 * A held job's age starts again at release: its eligible time is unset
 * then, as for a job submitted held, and the next pass sets it (order.c),
 * so the time it was held does not count, as Slurm leaves it out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/array.h"
#include "daemons/batchd/batchd.h"
#include "lib/http.h"
#include "lib/log.h"

static const char *const op_names[] = {"hold", "uhold", "release"};

/* The reason of a job released: what it waits for now, until the next
 * pass (order.c) evaluates it again and sets its eligible time. */
static phx_job_reason_t released_reason(const bjob_t *j, int64_t now)
{
    if (j->dep.count > 0)
        return PHX_REASON_DEPENDENCY;
    if (j->account_invalid) /* its user left its account (accounts_db.c) */
        return PHX_REASON_INVALID_ACCOUNT;
    if (j->spec.begin_time != PHX_UNSET && j->spec.begin_time > now)
        return PHX_REASON_BEGIN_TIME;
    return PHX_REASON_PRIORITY;
}

int batchd_hold_job(batchd_t *b, bjob_t *j, uid_t by, batchd_hold_op_t op,
                    phx_error_t *err)
{
    char name[48];
    bool oper = batchd_is_operator(b, by);
    batchd_job_text(j, name, sizeof(name));
    if (j->state != PHX_JOB_PENDING) {
        phx_error_set(err, "job %s is not pending (%s): only a pending job can be %s",
                      name, phx_job_state_name(j->state),
                      op == BATCHD_RELEASE ? "released" : "held");
        errno = EBUSY;
        return -1;
    }
    if (j->reason == PHX_REASON_HELD_ADMIN && !oper) {
        phx_error_set(err, "job %s is held by an operator: only an operator may %s",
                      name, op == BATCHD_RELEASE ? "release it" : "change its hold");
        errno = EPERM;
        return -1;
    }
    phx_job_reason_t was = j->reason;
    if (op == BATCHD_RELEASE) {
        if (!batchd_job_held(j))
            return 0;
        j->reason = released_reason(j, batchd_now());
        j->eligible_time = -1; /* its age starts again (order.c sets it) */
        b->prio_n = 0;         /* the priority order left it out: made again */
        b->prio_dirty = true;
    } else {
        j->reason = op == BATCHD_HOLD && oper ? PHX_REASON_HELD_ADMIN : PHX_REASON_HELD;
        if (j->reason == was)
            return 0;
        /* the master stops holding nodes for it */
        if (j->request_id[0]) {
            batchd_request_drop(b, j);
            batchd_request_flush(b);
        }
    }
    if (op == BATCHD_RELEASE) /* placed once the release is committed */
        batchd_job_persist_placed(b, j);
    else
        batchd_job_persist(b, j);
    batchd_sched_dirty(b); /* other jobs may take its place, or it theirs */
    phx_log_info("job %s: %s by uid %u (%s, was %s)", name, op_names[op], (unsigned)by,
                 phx_job_reason_name(j->reason), phx_job_reason_name(was));
    return 1;
}

/* The refusals a reply names; past them it says how many more. */
#define HOLD_REFUSALS_MAX 20

/* One request's jobs: how many were matched, changed and refused, the first
 * refusal's HTTP status and the text of the first HOLD_REFUSALS_MAX. */
typedef struct hold_run {
    batchd_t *b;
    uid_t uid;
    batchd_hold_op_t op;
    int matched, changed, refused;
    int status;
    phx_error_t refusals[HOLD_REFUSALS_MAX];
} hold_run_t;

static void refuse(hold_run_t *r, int status, const phx_error_t *err)
{
    if (r->refused == 0)
        r->status = status;
    if (r->refused < HOLD_REFUSALS_MAX)
        r->refusals[r->refused] = *err;
    r->refused++;
}

static void apply(hold_run_t *r, bjob_t *j)
{
    phx_error_t err;
    r->matched++;
    int rc = batchd_hold_job(r->b, j, r->uid, r->op, &err);
    if (rc > 0)
        r->changed++;
    if (rc < 0)
        refuse(r, errno == EPERM ? 403 : 409, &err);
}

static void apply_one(void *arg, bjob_t *j)
{
    apply(arg, j);
}

/* The jobs that text (N, A, A_T, A_LIST) names (jobs_named.c); an array
 * with no pending task is refused.  -1 when it is malformed. */
static int apply_text(hold_run_t *r, const char *text)
{
    uint64_t empty;
    if (batchd_jobs_named(r->b, r->uid, text, apply_one, r, &empty) < 0)
        return -1;
    if (empty) {
        phx_error_t err;
        phx_error_set(&err, "array job %" PRIu64 " has no pending task", empty);
        r->matched++;
        refuse(r, 409, &err);
    }
    return 0;
}

/* Every refusal's text, the first HOLD_REFUSALS_MAX of them and then
 * "and N more jobs refused". */
static json_t *refusal_list(const hold_run_t *r)
{
    json_t *a = json_array();
    int shown = r->refused < HOLD_REFUSALS_MAX ? r->refused : HOLD_REFUSALS_MAX;
    for (int i = 0; a && i < shown; i++)
        json_array_append_new(a, json_string(r->refusals[i].text));
    if (a && r->refused > shown) {
        char more[64];
        snprintf(more, sizeof(more), "and %d more jobs refused", r->refused - shown);
        json_array_append_new(a, json_string(more));
    }
    return a;
}

void batchd_api_hold(batchd_t *b, struct evhttp_request *req, uid_t uid,
                     const char *idtext, size_t len, batchd_hold_op_t op)
{
    char text[256];
    if (len >= sizeof(text)) {
        phx_http_reply_error(req, 400, "job id too long");
        return;
    }
    memcpy(text, idtext, len);
    text[len] = '\0';
    hold_run_t r = {.b = b, .uid = uid, .op = op};
    if (apply_text(&r, text) < 0) {
        phx_http_reply_error(req, 400,
                             "invalid job id %s: expected N, A_T or A_[1-3,5]", text);
        return;
    }
    if (r.matched == 0) {
        phx_http_reply_error(req, 404, "invalid job id %s", text);
        return;
    }
    if (r.refused > 0 && r.refused == r.matched) {
        if (r.refused > 1)
            phx_http_reply_error(req, r.status, "%s (and %d more jobs refused)",
                                 r.refusals[0].text, r.refused - 1);
        else
            phx_http_reply_error(req, r.status, "%s", r.refusals[0].text);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:i, s:i}", "job_id", text, "op", op_names[op],
                          "jobs", r.matched, "changed", r.changed);
    if (o && r.refused > 0)
        json_object_set_new(o, "warnings", refusal_list(&r));
    batchd_reply(b, req, 200, o); /* once committed */
}
