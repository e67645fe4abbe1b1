/* POST /api/v1/jobs/ID/update {"fields": ["KEY=VALUE", ...]}: scontrol
 * update for jobs (doc/jobs.md, "Changing a job"; the fields and rules are
 * update.c's).
 *
 * ID as for holds: N, A (every pending task of array A), A_T or A_LIST.  A
 * user changes its own jobs, an operator any (another user's job is
 * answered 404, as the rest of the API does).  Each job is changed all or
 * nothing: its new spec is checked as a submission is (jobspec finalize,
 * then here the account, the nodes named, the partitions with their
 * limits and the cluster fit, the dependency's jobs) and only then
 * replaces the old one, in memory and in the jobs row (spec and columns),
 * so a restart keeps it.  A changed pending job is ordered again, its gang
 * request dropped and its partition and node caches made again.
 *
 * A running job's time limit can only be lowered: its node agents enforce
 * the limit it started with (they take no new one), so batchd enforces the
 * lowered one itself: once a second (batchd_update_tick) it kills the job
 * whose run passed it, and end.c counts the kill as the job's TIMEOUT
 * (killed at its limit).  Which run's limit was lowered is kept in jobs.spec
 * ("batchd": {"limit_start": its start time}) for a restarted batchd. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/array.h"
#include "daemons/batchd/batchd.h"
#include "daemons/batchd/timefmt.h"
#include "daemons/batchd/update.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"

/* The refusals a reply names; past them it says how many more. */
#define UPD_REFUSALS_MAX 20

typedef struct upd_run {
    batchd_t *b;
    uid_t uid;
    const batchd_update_t *u;
    int matched, changed, refused;
    int status;
    json_t *changes, *warnings;
} upd_run_t;

static bool given(const batchd_update_t *u, batchd_upd_field_t f)
{
    return u->given & (1u << f);
}

/* The spec (as jobs.spec holds it) of j with s for its spec: a running
 * job's list of partitions (-p a,b) again, and batchd's own keys. */
static char *spec_text(const bjob_t *j, phx_jobspec_t *s)
{
    char *ran = s->partition;
    if (j->part_list)
        s->partition = j->part_list;
    json_t *o = phx_jobspec_to_json(s);
    s->partition = ran;
    if (!o)
        return NULL;
    json_t *extra = json_pack("{s:o, s:o, s:i}", "env",
                              j->env ? json_incref(j->env) : json_object(), "args",
                              j->args ? json_incref(j->args) : json_array(), "max_run",
                              (int)j->array_max_run);
    if (extra && j->limit_start > 0)
        json_object_set_new(extra, "limit_start", json_integer(j->limit_start));
    if (extra && j->mail_sent && j->state == PHX_JOB_RUNNING) /* kept (mail.c) */
        json_object_set_new(extra, "mail",
                            json_pack("[I, I, i]", (json_int_t)j->start_time,
                                      (json_int_t)j->mail_limit, (int)j->mail_sent));
    json_object_set_new(o, "batchd", extra);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void written(const phx_error_t *err, phx_db_result_t *const *r, int n, void *arg)
{
    (void)r;
    (void)n;
    if (err)
        phx_log_errx("job %" PRIu64 ": could not record its change: %s",
                     (uint64_t)(uintptr_t)arg, err->text);
}

static const char *num(int64_t v, char *buf, size_t len)
{
    if (v == PHX_UNSET)
        return NULL;
    snprintf(buf, len, "%" PRId64, v);
    return buf;
}

/* The jobs row's spec and the columns an update may change. */
void batchd_job_persist_spec(batchd_t *b, bjob_t *j)
{
    phx_jobspec_t *s = &j->spec;
    char *text = spec_text(j, s);
    if (!text) {
        phx_log_errx("job %" PRIu64 ": out of memory recording its change", j->id);
        return;
    }
    char id[24], nice[24], tl[24], nmin[24], nmax[24], nt[24], tpn[24], mpn[24],
        mpc[24];
    snprintf(id, sizeof(id), "%" PRIu64, j->id);
    const char *p[15] = {
        id,
        s->job_name,
        s->account,
        j->state == PHX_JOB_PENDING ? s->partition : NULL, /* NULL: unchanged */
        s->qos,
        num(s->nice == PHX_UNSET ? 0 : s->nice, nice, sizeof(nice)),
        text,
        s->dependency,
        s->time_limit > 0 ? num(s->time_limit, tl, sizeof(tl)) : NULL,
        num(s->nodes_min, nmin, sizeof(nmin)),
        num(s->nodes_max, nmax, sizeof(nmax)),
        num(s->ntasks, nt, sizeof(nt)),
        num(s->ntasks_per_node, tpn, sizeof(tpn)),
        num(s->mem_per_node, mpn, sizeof(mpn)),
        num(s->mem_per_cpu, mpc, sizeof(mpc)),
    };
    phx_error_t err;
    phx_db_done_f cb = written;
    void *arg = (void *)(uintptr_t)j->id;
    /* a lowered time limit: batchd_update_tick kills at it once committed */
    if (j->state == PHX_JOB_RUNNING)
        batchd_kill_wrap(b, j, &cb, &arg);
    if (batchd_write(
            b,
            "UPDATE jobs SET name = $2, account = $3, partition = coalesce($4, "
            "partition), qos = $5, nice = $6::int, spec = $7::jsonb, dependency = $8, "
            "time_limit = $9::int, nodes_min = $10::int, nodes_max = $11::int, "
            "ntasks = $12::int, ntasks_per_node = $13::int, mem_per_node = "
            "$14::bigint, mem_per_cpu = $15::bigint, updated_at = now() WHERE id = $1",
            15, p, cb, arg, &err) < 0) {
        batchd_kill_unwrap(b, cb, arg);
        phx_log_errx("job %" PRIu64 ": could not queue its change: %s", j->id,
                     err.text);
    }
    free(text);
}

/* The most jobs a loop search follows (past it: no loop is assumed). */
#define DEP_WALK_MAX 100000

/* Would j waiting on dep close a loop: does a job it names wait, through
 * the dependencies of pending jobs, on j (or on j's array)?  A submission
 * cannot make one (it names older jobs), an update can (Slurm refuses it as
 * a circular dependency). */
static bool dep_loops(const batchd_t *b, const bjob_t *j, const phx_depend_t *dep)
{
    size_t n = 0, cap = dep->count + 16;
    uint64_t *seen = malloc(cap * sizeof(*seen));
    bool loop = false;
    for (size_t i = 0; seen && i < dep->count; i++)
        if (dep->terms[i].job_id)
            seen[n++] = dep->terms[i].job_id;
    for (size_t head = 0; seen && head < n && !loop && head < DEP_WALK_MAX; head++) {
        uint64_t id = seen[head];
        if (id == j->id || (j->array_job_id && id == j->array_job_id)) {
            loop = true;
            break;
        }
        const bjob_t *x = batchd_job_find(b, id);
        if (!x || x->state != PHX_JOB_PENDING)
            continue;
        for (size_t t = 0; t < x->dep.count; t++) {
            uint64_t next = x->dep.terms[t].job_id;
            bool known = next == 0;
            for (size_t k = 0; k < n && !known; k++)
                known = seen[k] == next;
            if (known)
                continue;
            if (n == cap) {
                uint64_t *m = realloc(seen, 2 * cap * sizeof(*seen));
                if (!m)
                    break;
                seen = m;
                cap *= 2;
            }
            seen[n++] = next;
        }
    }
    free(seen);
    return loop;
}

/* What the daemon checks of a pending job's new spec s, as at submission;
 * dep gets the parsed dependency when one is given. */
static int check_pending(batchd_t *b, bjob_t *j, phx_jobspec_t *s,
                         const batchd_update_t *u, json_t *warnings, phx_depend_t *dep,
                         phx_error_t *err)
{
    if (given(u, BATCHD_UPD_ACCOUNT) && b->enforce_accounts &&
        batchd_accounts_resolve(b->accounts, j->user, &s->account, err) < 0)
        return -1;
    size_t field;
    if ((u->given & ((1u << BATCHD_UPD_EXCLUDE) | (1u << BATCHD_UPD_NODELIST) |
                     (1u << BATCHD_UPD_FEATURES))) &&
        batchd_nodesel_check(b, s, &field, err) < 0)
        return -1;
    uint32_t shaped = (1u << BATCHD_UPD_DEPENDENCY) | (1u << BATCHD_UPD_NICE) |
                      (1u << BATCHD_UPD_JOB_NAME) | (1u << BATCHD_UPD_QOS) |
                      (1u << BATCHD_UPD_COMMENT);
    if (u->given & ~shaped) {
        /* without Partition the job's list stays as it is: the check may
         * leave out a partition that cannot take the job now (DRAIN), no
         * reason to drop it for good (nor to warn about it) */
        bool keep = !given(u, BATCHD_UPD_PARTITION);
        char *list = keep && s->partition ? strdup(s->partition) : NULL;
        if (keep && s->partition && !list)
            return phx_error_set(err, "out of memory");
        json_t *w = keep ? json_array() : json_incref(warnings);
        int rc = batchd_resolve_partitions(b, s, j->uid, j->gid, j->user, w, err);
        json_decref(w);
        if (list) {
            free(s->partition);
            s->partition = list;
        }
        if (rc < 0)
            return -1;
    }
    if (!given(u, BATCHD_UPD_DEPENDENCY) || !s->dependency)
        return 0;
    if (phx_depend_parse(s->dependency, dep, err) < 0)
        return phx_error_prefix(err, "invalid dependency");
    for (size_t i = 0; i < dep->count; i++) {
        uint64_t on = dep->terms[i].job_id;
        if (on && (on == j->id || on == j->array_job_id))
            return phx_error_set(err,
                                 "invalid dependency: a job cannot depend on itself");
    }
    phx_dep_env_t denv;
    batchd_dep_env(b, j, &denv);
    if (phx_depend_check(dep, &denv, err) < 0)
        return phx_error_prefix(err, "invalid dependency");
    if (dep_loops(b, j, dep))
        return phx_error_set(err, "invalid dependency: circular (a job it names waits "
                                  "on this one)");
    return 0;
}

/* Swap the checked spec s (and dep) in, and have the job ordered and
 * placed again. */
static void commit(batchd_t *b, bjob_t *j, phx_jobspec_t *s, phx_depend_t *dep,
                   const batchd_update_t *u)
{
    bool lowered = j->state == PHX_JOB_RUNNING && given(u, BATCHD_UPD_TIME_LIMIT) &&
                   s->time_limit != j->spec.time_limit;
    phx_jobspec_clear(&j->spec);
    j->spec = *s;
    if (lowered) {
        j->limit_start = j->start_time;
        b->limits_lowered++;
    }
    if (j->state == PHX_JOB_PENDING) {
        if (given(u, BATCHD_UPD_DEPENDENCY)) {
            phx_depend_clear(&j->dep);
            j->dep = *dep;
            *dep = (phx_depend_t){0};
            if (!batchd_job_held(j)) { /* order.c decides again */
                j->reason = j->dep.count ? PHX_REASON_DEPENDENCY : PHX_REASON_PRIORITY;
                j->eligible_time = -1;
            }
        }
        /* a new account was checked (check_pending): order.c lets an
         * InvalidAccount job go again at once, not at the next read of the
         * members (accounts_db.c) */
        if (given(u, BATCHD_UPD_ACCOUNT))
            j->account_invalid =
                b->enforce_accounts &&
                !batchd_accounts_member(b->accounts, j->user, j->spec.account);
        b->prio_n = 0; /* ordered again: priority, partitions, nodes */
        b->prio_dirty = true;
        j->run_mask_gen = 0;
        free(j->nodes_ok);
        j->nodes_ok = NULL;
        if (j->request_id[0]) { /* asked for the old shape */
            batchd_request_drop(b, j);
            batchd_request_flush(b);
        }
    }
    batchd_job_persist_spec(b, j);
    if (j->state == PHX_JOB_PENDING) /* placed once the change is committed */
        batchd_job_persist_placed(b, j);
    else
        batchd_job_persist(b, j);
    batchd_sched_dirty(b);
}

int batchd_update_job(batchd_t *b, bjob_t *j, uid_t by, const batchd_update_t *u,
                      json_t *warnings, char *done, size_t len, phx_error_t *err)
{
    char name[48];
    batchd_job_text(j, name, sizeof(name));
    done[0] = '\0';
    phx_jobspec_t s;
    phx_depend_t dep = {0};
    if (batchd_update_spec(&j->spec, j->state, batchd_is_operator(b, by), u, &b->limits,
                           &s, err) < 0) {
        int e = errno;
        phx_error_prefix(err, "job %s", name);
        errno = e;
        return -1;
    }
    if (j->state == PHX_JOB_PENDING &&
        check_pending(b, j, &s, u, warnings, &dep, err) < 0) {
        phx_jobspec_clear(&s);
        phx_depend_clear(&dep);
        phx_error_prefix(err, "job %s", name);
        errno = EINVAL;
        return -1;
    }
    batchd_update_describe(&j->spec, &s, u, done, len);
    if (!done[0]) {
        phx_jobspec_clear(&s);
        phx_depend_clear(&dep);
        return 0;
    }
    commit(b, j, &s, &dep, u);
    phx_depend_clear(&dep);
    phx_log_info("job %s: updated by uid %u: %s", name, (unsigned)by, done);
    return 1;
}

/* ---- the request: its jobs ---- */

static void refuse(upd_run_t *r, int status, const phx_error_t *err)
{
    if (r->refused == 0)
        r->status = status;
    if (r->refused < UPD_REFUSALS_MAX)
        json_array_append_new(r->warnings, json_string(err->text));
    r->refused++;
}

static void apply(upd_run_t *r, bjob_t *j)
{
    phx_error_t err;
    char done[1024], name[48], line[1100];
    r->matched++;
    int rc =
        batchd_update_job(r->b, j, r->uid, r->u, r->warnings, done, sizeof(done), &err);
    if (rc < 0) {
        refuse(r, errno == EPERM ? 403 : errno == EBUSY ? 409 : 400, &err);
        return;
    }
    batchd_job_text(j, name, sizeof(name));
    snprintf(line, sizeof(line), "job %s: %s", name, rc > 0 ? done : "no change");
    json_array_append_new(r->changes, json_string(line));
    r->changed += rc;
}

static void apply_one(void *arg, bjob_t *j)
{
    apply(arg, j);
}

/* The jobs that text (N, A, A_T, A_LIST) names (jobs_named.c), as for
 * holds; an array with no pending task is refused.  -1 when malformed. */
static int apply_text(upd_run_t *r, const char *text)
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

/* The "fields" of the body, parsed into u.  -1 with err. */
static int read_fields(const json_t *body, batchd_update_t *u, phx_error_t *err)
{
    json_t *arr = NULL;
    if (phx_json_arr(body, "fields", true, &arr, err) < 0)
        return -1;
    const char *texts[BATCHD_UPDATE_MAX];
    size_t n = json_array_size(arr);
    if (n > BATCHD_UPDATE_MAX)
        return phx_error_set(err, "too many fields (at most %d)", BATCHD_UPDATE_MAX);
    for (size_t i = 0; i < n; i++)
        if (!(texts[i] = json_string_value(json_array_get(arr, i))))
            return phx_error_set(err, "fields[%zu] must be a string", i);
    return batchd_update_parse(texts, n, u, err);
}

void batchd_api_update(batchd_t *b, struct evhttp_request *req, uid_t uid,
                       const char *idtext, size_t len)
{
    char text[256];
    if (len >= sizeof(text)) {
        phx_http_reply_error(req, 400, "job id too long");
        return;
    }
    memcpy(text, idtext, len);
    text[len] = '\0';
    phx_error_t err;
    batchd_update_t u;
    json_t *body = phx_http_body_json(req, 65536, &err);
    if (!body || read_fields(body, &u, &err) < 0) {
        json_decref(body);
        phx_http_reply_error(req, 400, "%s", err.text);
        return;
    }
    json_decref(body);
    upd_run_t r = {.b = b, .uid = uid, .u = &u};
    r.changes = json_array();
    r.warnings = json_array();
    int rc = r.changes && r.warnings ? apply_text(&r, text) : -2;
    batchd_update_clear(&u);
    if (rc == -2)
        phx_http_reply_error(req, 500, "out of memory");
    else if (rc < 0)
        phx_http_reply_error(req, 400,
                             "invalid job id %s: expected N, A_T or A_[1-3,5]", text);
    else if (r.matched == 0)
        phx_http_reply_error(req, 404, "invalid job id %s", text);
    else if (r.refused > 0 && r.refused == r.matched && r.refused == 1)
        phx_http_reply_error(req, r.status, "%s",
                             json_string_value(json_array_get(r.warnings, 0)));
    else if (r.refused > 0 && r.refused == r.matched)
        phx_http_reply_error(req, r.status, "%s (and %d more jobs refused)",
                             json_string_value(json_array_get(r.warnings, 0)),
                             r.refused - 1);
    else {
        if (r.refused > UPD_REFUSALS_MAX)
            json_array_append_new(
                r.warnings,
                json_sprintf("and %d more jobs refused", r.refused - UPD_REFUSALS_MAX));
        batchd_reply(b, req, 200, /* once committed */
                     json_pack("{s:s, s:i, s:i, s:i, s:O, s:O}", "job_id", text, "jobs",
                               r.matched, "changed", r.changed, "refused", r.refused,
                               "changes", r.changes, "warnings", r.warnings));
    }
    json_decref(r.changes);
    json_decref(r.warnings);
}

/* ---- a running job's lowered time limit ---- */

void batchd_update_tick(batchd_t *b, int64_t now)
{
    if (b->limits_scanned && b->limits_lowered == 0)
        return;
    size_t n = 0;
    for (size_t i = batchd_live_from(b); i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (j->limit_start <= 0)
            continue;
        if (j->state != PHX_JOB_RUNNING || j->start_time != j->limit_start) {
            j->limit_start = 0; /* that run ended */
            continue;
        }
        /* not subscribed (a master restart): the kill would be lost, so
         * it waits for the link, as a kill that failed waits a tick; nor
         * before the lowered limit is committed (kill.c): a restarted
         * batchd would count the kill as a failure, not the TIMEOUT */
        if (j->cancel_requested || j->ending || j->kill_wait > 0 ||
            j->spec.time_limit <= 0 || now < j->start_time + j->spec.time_limit ||
            !b->fwc || !b->subscribed) {
            n++;
            continue;
        }
        char tl[32];
        phx_time_format(j->spec.time_limit, tl, sizeof(tl));
        phx_log_info("job %" PRIu64 ": time limit %s reached (lowered while it ran): "
                     "killing it",
                     j->id, tl);
        int lost = 0;
        for (size_t k = 0; k < j->ntasks; k++)
            if (!j->tasks[k].ended &&
                phx_fwc_kill(b->fwc, j->tasks[k].id, j->tasks[k].agent_id) < 0)
                lost++;
        if (lost) {
            n++; /* again at the next tick */
            continue;
        }
        j->limit_start = 0; /* killed: end.c counts it TIMEOUT */
    }
    b->limits_lowered = n;
    b->limits_scanned = true;
}
