/* The user API (HTTP, JSON, munge-authenticated; doc/batchd.md):
 *
 *   POST /api/v1/jobs              submit (submit.c)
 *   GET  /api/v1/jobs[?user=U&state=S]   the queue
 *   GET  /api/v1/jobs/ID           one job (ID, or A_T: task T of array A)
 *   POST /api/v1/jobs/ID/cancel    cancel one job (an array job id A: every
 *                                  task of the array)
 *   POST /api/v1/jobs/A_T/cancel   cancel tasks of array A: T is one index or
 *                                  indices like 1-3,5 or 0-15:4
 *   POST /api/v1/jobs/ID/hold, /uhold, /release   holds (hold.c)
 *   POST /api/v1/jobs/ID/requeue, /requeuehold     requeue (requeue.c)
 *   POST /api/v1/jobs/ID/update    {"fields": ["KEY=VALUE", ...]}: scontrol
 *                                  update (update_api.c)
 *   POST /api/v1/jobs/ID/signal    {"signal": S, "scope": steps|batch|full}:
 *                                  scancel -s (api_signal.c)
 *   POST /api/v1/jobs/cancel       {"user": U, "name": N}: cancel U's active
 *                                  jobs (named N; without U the caller's, or
 *                                  everyone's for an operator)
 *   GET  /api/v1/partitions[?partition=P,...]   the partitions (partition.c):
 *                                  Hidden ones only to those who may use
 *                                  them (and operators), or when named
 *   GET  /health                   unauthenticated liveness
 *
 * A job is found in memory only (ID in b->jobs, A_T in b->array_tasks, both
 * direct lookups): one that ended more than batchd.keep_ended seconds ago
 * has left it and is answered 404, as if it never existed (phx acct reads
 * the database).  An array job id A still names the array (cancel, hold)
 * once job A has left while other tasks of it are in memory.
 *
 * Users see and cancel their own jobs; operators (batchd.operators) all.
 * Another user's job is answered as if it did not exist (404), as the queue
 * does not show it either. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/array.h"
#include "daemons/batchd/batchd.h"
#include "lib/http.h"
#include "lib/http_guard.h"
#include "lib/http_limit.h"
#include "lib/json.h"
#include "lib/log.h"

#define PREFIX "/api/v1/jobs"

static bool may_see(const batchd_t *b, uid_t uid, const bjob_t *j)
{
    return j->uid == uid || batchd_is_operator(b, uid);
}

/* Does the list want ("a,b", squeue -p's) name a partition of the job's
 * (one, or its list while pending)? */
static bool parts_meet(const char *want, const char *job)
{
    const char *n;
    size_t len;
    char one[128];
    while ((n = batchd_parts_next(&want, &len)))
        if (len > 0 && len < sizeof(one)) {
            memcpy(one, n, len);
            one[len] = '\0';
            if (batchd_parts_list_has(job, one))
                return true;
        }
    return false;
}

/* The bits of the partitions the list ("a,b") names. */
static uint64_t named(const batchd_t *b, const char *list)
{
    uint64_t m = list && *list ? batchd_parts_job_mask(&b->parts, list) : 0;
    return m == BATCHD_PART_GONE ? 0 : m;
}

/* GET /api/v1/partitions[?partition=a,b|all=1]: those the caller is shown
 * (batchd_parts_visible), and the Hidden ones it names (all=1: every one,
 * as sinfo -a). */
static void list_parts(batchd_t *b, struct evhttp_request *req, uid_t uid, gid_t gid)
{
    struct evkeyvalq q;
    const char *uri = evhttp_request_get_uri(req), *qs = strchr(uri, '?');
    TAILQ_INIT(&q);
    const char *part = NULL, *all = NULL;
    if (qs && evhttp_parse_query_str(qs + 1, &q) == 0) {
        part = evhttp_find_header(&q, "partition");
        all = evhttp_find_header(&q, "all");
    }
    uint64_t shown = all && strcmp(all, "1") == 0
                         ? batchd_parts_visible(b, 0, 0)
                         : batchd_parts_visible(b, uid, gid) | named(b, part);
    evhttp_clear_headers(&q);
    phx_http_reply_json(
        req, 200,
        json_pack("{s:o}", "partitions", batchd_parts_json(&b->parts, shown)));
}

/* squeue -j: job ids, "A" (the job, or every task of array A) or "A_T". */
#define LIST_IDS_MAX 256
typedef struct list_id {
    uint64_t id;
    int64_t task; /* -1: any */
} list_id_t;

/* The ids of "jobs=" into ids; their number, or -1 when one is malformed. */
static int list_ids(const char *text, list_id_t *ids)
{
    int n = 0;
    for (const char *at = text; *at;) {
        char *end;
        if (*at < '0' || *at > '9' || n == LIST_IDS_MAX)
            return -1;
        errno = 0;
        ids[n].id = strtoull(at, &end, 10);
        ids[n].task = -1;
        if (errno || ids[n].id == 0) /* no job is 0 (an array id 0 is "none") */
            return -1;
        if (*end == '_') {
            at = end + 1;
            if (*at < '0' || *at > '9')
                return -1;
            unsigned long long t = strtoull(at, &end, 10);
            if (errno || t > INT64_MAX)
                return -1;
            ids[n].task = (int64_t)t;
        }
        n++;
        if ((*end != ',' && *end) || (*end == ',' && !end[1]))
            return -1; /* another character, or a trailing ',' */
        at = *end ? end + 1 : end;
    }
    return n;
}

static bool id_listed(const bjob_t *j, const list_id_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (ids[i].task < 0
                ? j->id == ids[i].id || j->array_job_id == ids[i].id
                : j->array_job_id == ids[i].id && j->array_task_id == ids[i].task)
            return true;
    return false;
}

static void list(batchd_t *b, struct evhttp_request *req, uid_t uid, gid_t gid)
{
    struct evkeyvalq q;
    const char *uri = evhttp_request_get_uri(req), *qs = strchr(uri, '?');
    const char *user = NULL, *state = NULL, *part = NULL, *jobs_text = NULL,
               *name = NULL, *all_parts = NULL;
    TAILQ_INIT(&q);
    if (qs && evhttp_parse_query_str(qs + 1, &q) == 0) {
        user = evhttp_find_header(&q, "user");
        state = evhttp_find_header(&q, "state");
        part = evhttp_find_header(&q, "partition");
        jobs_text = evhttp_find_header(&q, "jobs");
        name = evhttp_find_header(&q, "name");
        all_parts = evhttp_find_header(&q, "all");
    }
    list_id_t ids[LIST_IDS_MAX];
    int nids = jobs_text && *jobs_text ? list_ids(jobs_text, ids) : 0;
    if (nids < 0) {
        phx_http_reply_error(req, 400,
                             "invalid job list \"%.64s\" (ids N or A_T, at most %d, "
                             "separated by ',')",
                             jobs_text, LIST_IDS_MAX);
        evhttp_clear_headers(&q);
        return;
    }
    /* squeue -t: states by name or code, a list of them, or "all" */
    unsigned want = 0;
    char one[32];
    const char *at = state, *n;
    size_t len;
    while (state && *state && strcasecmp(state, "all") != 0 &&
           (n = batchd_parts_next(&at, &len))) {
        int st = -1;
        if (len < sizeof(one)) {
            memcpy(one, n, len);
            one[len] = '\0';
            st = phx_job_state_parse(one);
        }
        if (st < 0) {
            phx_http_reply_error(req, 400, "unknown state \"%.*s\"",
                                 (int)(len < 64 ? len : 64), n);
            evhttp_clear_headers(&q);
            return;
        }
        want |= 1u << st;
    }
    bool all = state && strcasecmp(state, "all") == 0;
    /* jobs of Hidden partitions the caller may not use are left out, unless
     * -p names them (a pending job of a list: when all its are hidden) */
    uint64_t shown = batchd_parts_visible(b, uid, gid) | named(b, part);
    if (all_parts && strcmp(all_parts, "1") == 0) /* squeue -a */
        shown = batchd_parts_visible(b, 0, 0);
    bool hiding = shown != batchd_parts_visible(b, 0, 0); /* root sees all */
    json_t *jobs = json_array();
    for (size_t i = 0; jobs && i < b->njobs; i++) {
        const bjob_t *j = b->order[i];
        if (!may_see(b, uid, j) || (user && *user && strcmp(user, j->user) != 0) ||
            (nids && !id_listed(j, ids, nids)) ||
            (name && *name && !batchd_parts_list_has(name, j->spec.job_name ?: "")))
            continue;
        if (part && *part &&
            !parts_meet(part, j->spec.partition ? j->spec.partition : b->partition))
            continue;
        uint64_t m = hiding ? batchd_parts_job_mask(&b->parts, j->spec.partition) : 0;
        if (hiding && m != BATCHD_PART_GONE && !(m & shown))
            continue;
        if (want ? !(want & (1u << j->state))
                 : !all && phx_job_state_is_final(j->state) && j->end_time >= 0 &&
                       batchd_now() - j->end_time > 300)
            continue;
        json_array_append_new(jobs, batchd_job_json(b, j, false));
    }
    evhttp_clear_headers(&q);
    phx_http_reply_json(req, 200, json_pack("{s:o}", "jobs", jobs));
}

/* A job id, or "A_T" (A the array job id, T a task index): the job, or NULL
 * after answering 404 (also for another user's job). */
static bjob_t *job_of(batchd_t *b, struct evhttp_request *req, uid_t uid,
                      const char *idtext, size_t len)
{
    char *end;
    uint64_t id = strtoull(idtext, &end, 10);
    bjob_t *j = NULL;
    if (len > 0 && end == idtext + len) {
        j = batchd_job_find(b, id);
    } else if (end > idtext && *end == '_' && end[1] >= '0' && end[1] <= '9') {
        char *tend;
        unsigned long long t = strtoull(end + 1, &tend, 10);
        if (tend == idtext + len && t <= INT64_MAX)
            j = batchd_array_task_find(b, id, (int64_t)t);
    }
    if (!j || !may_see(b, uid, j)) {
        phx_http_reply_error(req, 404, "invalid job id %.*s", (int)len, idtext);
        return NULL;
    }
    return j;
}

/* For cancel, signal and show: job_of, or for an array job id whose job A
 * (task 0) left memory, the array's first task still known (cancel_one and
 * signal then take the whole array). */
static bjob_t *job_or_array_of(batchd_t *b, struct evhttp_request *req, uid_t uid,
                               const char *idtext, size_t len)
{
    char *end;
    uint64_t id = strtoull(idtext, &end, 10);
    if (len > 0 && end == idtext + len && !batchd_job_find(b, id)) {
        bjob_t *x = batchd_array_any_task(b, id);
        if (x && may_see(b, uid, x))
            return x;
    }
    return job_of(b, req, uid, idtext, len);
}

/* Cancel j, or when id (the id asked for) is j's array job id every task of
 * the array. */
static int cancel_tree(batchd_t *b, bjob_t *j, uid_t uid, uint64_t id)
{
    int n = 0;
    if (j->array_job_id && j->array_job_id == id) {
        for (size_t i = 0; i < b->njobs; i++) {
            bjob_t *x = b->order[i];
            if (x->array_job_id == id && !phx_job_state_is_final(x->state)) {
                batchd_job_cancel(b, x, uid);
                n++;
            }
        }
        return n;
    }
    if (!phx_job_state_is_final(j->state)) {
        batchd_job_cancel(b, j, uid);
        n++;
    }
    return n;
}

/* Cancel the job (or array) of id: j, or a task of the array of id. */
static void cancel_one(batchd_t *b, struct evhttp_request *req, uid_t uid, bjob_t *j,
                       uint64_t id)
{
    if (phx_job_state_is_final(j->state) && j->array_job_id != id) {
        phx_http_reply_error(req, 409, "job %" PRIu64 " has already finished (%s)",
                             j->id, phx_job_state_name(j->state));
        return;
    }
    int n = cancel_tree(b, j, uid, id);
    phx_log_info("job %" PRIu64 ": cancel by uid %u (%d jobs)", id, (unsigned)uid, n);
    batchd_reply(b, req, 200,
                 json_pack("{s:I, s:i}", "job_id", (json_int_t)id, "cancelled", n));
}

/* "A_SPEC" (SPEC in --array syntax, without a throttle): those tasks of
 * array A alone, never the whole array, even for the task whose id is A. */
static void cancel_tasks(batchd_t *b, struct evhttp_request *req, uid_t uid,
                         const char *idtext, size_t len)
{
    char text[256], *end;
    if (len >= sizeof(text)) {
        phx_http_reply_error(req, 400, "job id too long");
        return;
    }
    memcpy(text, idtext, len);
    text[len] = '\0';
    uint64_t array_id = strtoull(text, &end, 10);
    phx_array_t a = {0};
    phx_error_t err;
    if (end == text || *end != '_' || strchr(end, '%') ||
        phx_array_parse(end + 1, b->limits.max_array_index, &a, &err) < 0) {
        phx_http_reply_error(req, 400, "invalid job id %s: expected A_T or A_[1-3,5]",
                             text);
        return;
    }
    int matched = 0, n = 0;
    for (size_t i = 0; i < a.count; i++) { /* in index order: task id order */
        bjob_t *x = batchd_array_task_find(b, array_id, a.ids[i]);
        if (!x || !may_see(b, uid, x))
            continue;
        matched++;
        if (!phx_job_state_is_final(x->state)) {
            batchd_job_cancel(b, x, uid);
            n++;
        }
    }
    phx_array_clear(&a);
    if (matched == 0) {
        phx_http_reply_error(req, 404, "invalid job id %s", text);
        return;
    }
    if (n == 0) {
        phx_http_reply_error(req, 409, "job %s has already finished", text);
        return;
    }
    phx_log_info("job %s: cancel by uid %u (%d jobs)", text, (unsigned)uid, n);
    batchd_reply(
        b, req, 200,
        json_pack("{s:I, s:i}", "job_id", (json_int_t)array_id, "cancelled", n));
}

/* {"user": U, "name": N}: the active jobs of U (every user's for an
 * operator, the caller's for others when U is not given) named N if given. */
static void cancel_user(batchd_t *b, struct evhttp_request *req, uid_t uid)
{
    phx_error_t err;
    json_t *body = phx_http_body_json(req, 65536, &err);
    const char *user = NULL, *name = NULL;
    if (!body || phx_json_str(body, "user", false, &user, &err) < 0 ||
        phx_json_str(body, "name", false, &name, &err) < 0) {
        phx_http_reply_error(req, 400, "%s", err.text);
        json_decref(body);
        return;
    }
    if (!user && !name) {
        phx_http_reply_error(req, 400, "\"user\" or \"name\" is required");
        json_decref(body);
        return;
    }
    struct passwd pw, *pwp = NULL;
    char buf[4096];
    bool any_user = !user && batchd_is_operator(b, uid);
    uid_t whose = uid;
    if (user) {
        if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp) {
            phx_http_reply_error(req, 400, "unknown user \"%s\"", user);
            json_decref(body);
            return;
        }
        if (pw.pw_uid != uid && !batchd_is_operator(b, uid)) {
            phx_http_reply_error(req, 403,
                                 "only %s or an operator may cancel %s's jobs: "
                                 "access denied",
                                 user, user);
            json_decref(body);
            return;
        }
        whose = pw.pw_uid;
    }
    int n = 0;
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if ((any_user || j->uid == whose) && !phx_job_state_is_final(j->state) &&
            (!name || (j->spec.job_name && strcmp(j->spec.job_name, name) == 0))) {
            batchd_job_cancel(b, j, uid);
            n++;
        }
    }
    json_decref(body);
    batchd_reply(b, req, 200, json_pack("{s:i}", "cancelled", n)); /* once committed */
}

static void route(struct evhttp_request *req, void *arg)
{
    batchd_t *b = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *method = phx_http_method(req);
    if (batchd_standby_http(b, req)) /* another batchd leads: name it */
        return;
    if (strcmp(uri, "/health") == 0) {
        phx_http_reply_json(
            req, 200,
            json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "status",
                      "ok", "subscribed", b->subscribed, "nodes", (json_int_t)b->nnodes,
                      "pending", (json_int_t)b->npending, "running",
                      (json_int_t)b->nrunning, "launched", (json_int_t)b->launched,
                      "ended", (json_int_t)b->ended, "offer_passes",
                      (json_int_t)b->passes, "offer_pass_seconds", b->pass_time,
                      "http_refused_before_body",
                      (json_int_t)(b->http_guard ? phx_http_guard_refused(b->http_guard)
                                                 : 0)));
        return;
    }
    bool parts = strcmp(uri, "/api/v1/partitions") == 0 ||
                 strncmp(uri, "/api/v1/partitions?", 19) == 0;
    if (!parts && strncmp(uri, PREFIX, strlen(PREFIX)) != 0) {
        phx_http_reply_error(req, 404, "no such resource %s", uri);
        return;
    }
    phx_munge_cred_t cred;
    phx_error_t err;
    if (phx_http_auth(req, b->munge, NULL, &cred, &err) < 0) {
        phx_http_reply_error(req, 401, "%s", err.text);
        return;
    }
    uid_t uid = cred.uid;
    gid_t gid = cred.gid;
    phx_munge_cred_clear(&cred);
    const char *rest = uri + strlen(PREFIX);
    bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    if (post) /* its writes counted: batchd_reply answers once committed */
        batchd_ack_begin(b);
    if (parts) {
        if (get)
            list_parts(b, req, uid, gid);
        else
            phx_http_reply_error(req, 404, "no such resource %s %s", method, uri);
    } else if ((*rest == 0 || *rest == '?') && get) {
        list(b, req, uid, gid);
    } else if (*rest == 0 && post) {
        batchd_api_submit(b, req, uid, gid);
    } else if (strcmp(rest, "/cancel") == 0 && post) {
        cancel_user(b, req, uid);
    } else if (rest[0] == '/') {
        const char *id = rest + 1;
        size_t len = strspn(id, "0123456789_-,:");
        const char *tail = id + len, *task = memchr(id, '_', len);
        if (*tail == 0 && get) { /* A gone: the first task still known */
            bjob_t *j = job_or_array_of(b, req, uid, id, len);
            if (j)
                phx_http_reply_json(req, 200, batchd_job_json(b, j, true));
        } else if (post && (!strcmp(tail, "/hold") || !strcmp(tail, "/uhold") ||
                            !strcmp(tail, "/release"))) {
            batchd_api_hold(b, req, uid, id, len,
                            tail[1] == 'h'   ? BATCHD_HOLD
                            : tail[1] == 'u' ? BATCHD_UHOLD
                                             : BATCHD_RELEASE);
        } else if (post &&
                   (!strcmp(tail, "/requeue") || !strcmp(tail, "/requeuehold"))) {
            batchd_api_requeue(b, req, uid, id, len, tail[8] == 'h');
        } else if (post && strcmp(tail, "/update") == 0) {
            batchd_api_update(b, req, uid, id, len);
        } else if (strcmp(tail, "/cancel") == 0 && post && task) {
            cancel_tasks(b, req, uid, id, len);
        } else if (strcmp(tail, "/signal") == 0 && post) {
            /* A_T: that task alone, even the first (whose id is A) */
            bjob_t *j = task ? job_of(b, req, uid, id, len)
                             : job_or_array_of(b, req, uid, id, len);
            uint64_t a = task ? 0 : strtoull(id, NULL, 10);
            if (j)
                batchd_api_signal(b, req, uid, j, j->array_job_id == a ? a : 0);
        } else if (strcmp(tail, "/cancel") == 0 && post) {
            bjob_t *j = job_or_array_of(b, req, uid, id, len);
            if (j)
                cancel_one(b, req, uid, j, strtoull(id, NULL, 10));
        } else {
            phx_http_reply_error(req, 404, "no such resource %s %s", method, uri);
        }
    } else {
        phx_http_reply_error(req, 404, "no such resource %s %s", method, uri);
    }
    batchd_ack_end(b);
}

int batchd_api_start(batchd_t *b, const char *listen, phx_error_t *err)
{
    char host[256];
    int port;
    if (phx_http_parse_addr(listen, host, sizeof(host), &port, err) < 0)
        return phx_error_prefix(err, "batchd.http_listen");
    if (!(b->http = evhttp_new(b->base)))
        return phx_error_set(err, "out of memory");
    evhttp_set_max_body_size(b->http, PHX_HTTP_BODY_MAX);
    evhttp_set_max_headers_size(b->http, PHX_HTTP_HEADERS_MAX);
    evhttp_set_allowed_methods(b->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    if (!(b->http_limit = phx_http_limit_create(
              b->http, b->base, "batchd.max_http_connections",
              (size_t)phx_conf_int(b->conf, "batchd.max_http_connections"),
              phx_conf_double(b->conf, "batchd.http_timeout"), err)))
        return -1;
    /* a body past 16 KiB only with a credential: lib/http_guard.h */
    if (!(b->http_guard = phx_http_guard_create(b->http, b->http_limit, b->base,
                                                b->munge, PHX_HTTP_HEADERS_MAX,
                                                PHX_HTTP_BODY_MAX, route, b, err)))
        return -1;
    if (evhttp_bind_socket(b->http, host, (ev_uint16_t)port) < 0)
        return phx_error_set(err, "could not listen on %s", listen);
    return 0;
}
