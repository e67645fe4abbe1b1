/* POST /api/v1/jobs: a submission.
 *
 * Body: {"script": text, "filename": name, "argv": [options...], "args":
 * [script arguments], "cwd": dir, "env": {NAME: value}, "submit_line": text,
 * "submit_host": name}.  The script's directives, then argv over them, are
 * read by phx_script_build; any error refuses the whole submission with the
 * parser's file:line message and nothing is stored.  A negative --nice (a
 * higher priority) is refused unless the submitter is an operator.  With
 * batchd.enforce_accounts the account must be one of the submitter's
 * (account_users, in memory: accounts_db.c), its default one when none is
 * given.  The answer,
 * {"job_id": N, "warnings": [...], "wait": bool, "parsable": bool} (the
 * submission's -W and --parsable, from the script or argv), leaves only after the job's
 * rows are committed (an array: every task's row, N = the array job id). */
#include <event2/http.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/array.h"
#include "daemons/batchd/batchd.h"
#include "daemons/batchd/jobsig.h"
#include "daemons/batchd/mail.h"
#include "daemons/batchd/rows.h"
#include "daemons/batchd/timefmt.h"
#include "daemons/batchd/script.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"

#define MAX_ARGV 256

typedef struct submission {
    batchd_t *b;
    phx_http_deferred_t *reply;
    bjob_t *proto; /* the job; copied per array task */
    phx_array_t array;
    json_t *warnings;
    uint32_t reserved; /* jobs counted against the limits (userlim.c) */
    /* With an Idempotency-Key (submit_key.c): the key, the body's digest;
     * in b->submit_inflight until answered, with the same key's later
     * submissions waiting for its answer (they store nothing). */
    char key[BATCHD_SUBMIT_KEY_MAX + 1];
    char digest[BATCHD_SUBMIT_DIGEST_LEN + 1];
    bool inflight;
    int refused;             /* the limits refused it (a status): unless sent again */
    phx_error_t refusal;     /* why */
    struct submission *next; /* in b->submit_inflight, or among waiters */
    struct submission *waiters; /* same uid and key, arrived meanwhile */
} submission_t;

static void warn_cb(void *arg, const char *msg)
{
    json_array_append_new(arg, json_string(msg));
}

static void submission_free(submission_t *s)
{
    if (s->reserved)
        batchd_userlim_release(s->b, s->proto->uid, s->reserved);
    phx_http_deferred_free(s->reply);
    batchd_job_free(s->proto);
    phx_array_clear(&s->array);
    json_decref(s->warnings);
    free(s);
}

/* Answer s: 200 with job id (digest: of the body that stored it; another
 * one is a key used twice for different submissions, 409), or status with
 * why. */
static void answer(submission_t *s, int status, uint64_t id, const char *digest,
                   const char *why)
{
    struct evhttp_request *req = phx_http_deferred_req(s->reply);
    if (!req)
        return;
    if (status != 200) {
        phx_http_reply_error(req, status, "%s", why);
    } else if (strcmp(digest, s->digest) != 0) {
        phx_http_reply_error(req, 409,
                             "Idempotency-Key \"%s\" was already used for another "
                             "submission (job %" PRIu64 "): send a new submission with "
                             "a new key",
                             s->key, id);
    } else {
        /* wait and parsable: phx submit honours them from the script too */
        json_t *o = json_pack("{s:I, s:O, s:b, s:b}", "job_id", (json_int_t)id,
                              "warnings", s->warnings, "wait", s->proto->spec.wait == 1,
                              "parsable", s->proto->spec.parsable == 1);
        phx_http_reply_json(req, 200, o);
    }
}

/* The end of s: answered, with its waiters (the same uid and key), and
 * freed. */
static void settle(submission_t *s, int status, uint64_t id, const char *digest,
                   const char *why)
{
    char text[PHX_ERROR_TEXT_MAX + 64];
    if (status == 503) {
        snprintf(text, sizeof(text), "could not store the job: %s", why);
        why = text;
    }
    answer(s, status, id, digest, why);
    if (s->inflight) {
        submission_t **at = &s->b->submit_inflight;
        while (*at && *at != s)
            at = &(*at)->next;
        if (*at)
            *at = s->next;
        s->inflight = false;
    }
    for (submission_t *w = s->waiters, *next; w; w = next) {
        next = w->next;
        answer(w, status, id, digest, why);
        submission_free(w);
    }
    s->waiters = NULL;
    submission_free(s);
}

static submission_t *inflight_find(const batchd_t *b, uid_t uid, const char *key)
{
    for (submission_t *s = b->submit_inflight; s; s = s->next)
        if (s->proto->uid == uid && strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

static void key_read(const phx_error_t *err, phx_db_result_t *const *res, int n,
                     void *arg)
{
    submission_t *s = arg;
    if (err || n < 1) {
        settle(s, 503, 0, NULL, err ? err->text : "no result");
    } else if (phx_db_result_rows(res[0]) < 1 && s->refused) {
        settle(s, s->refused, 0, NULL, s->refusal.text); /* not sent before */
    } else if (phx_db_result_rows(res[0]) < 1) {
        /* its job's row went in between: nothing is known of it now */
        settle(s, 503, 0, NULL, "the job of this Idempotency-Key is gone: send again");
    } else {
        uint64_t id = strtoull(phx_db_result_get(res[0], 0, 0), NULL, 10);
        phx_log_info("submission of %s sent again (Idempotency-Key %s): job %" PRIu64,
                     s->proto->user, s->key, id);
        settle(s, 200, id, phx_db_result_get(res[0], 0, 1), NULL);
    }
}

/* Its uid stored s->key already (the insert wrote nothing): answer with
 * that job. */
static void lookup_key(submission_t *s)
{
    char uid[16];
    snprintf(uid, sizeof(uid), "%u", (unsigned)s->proto->uid);
    const char *p[] = {uid, s->key};
    phx_error_t err;
    if (phx_db_store_read(s->b->store,
                          "SELECT coalesce(array_job_id, id), submit_digest FROM jobs "
                          "WHERE uid = $1::int AND submit_key = $2::text",
                          2, p, key_read, s, &err) < 0)
        settle(s, 503, 0, NULL, err.text);
}

static bjob_t *job_copy(const bjob_t *p)
{
    bjob_t *j = batchd_job_new();
    if (!j || phx_jobspec_copy(&j->spec, &p->spec) < 0) {
        batchd_job_free(j);
        return NULL;
    }
    j->id = p->id;
    j->uid = p->uid;
    j->gid = p->gid;
    j->user = strdup(p->user);
    j->script = strdup(p->script);
    j->env = json_incref(p->env);
    j->args = json_incref(p->args);
    j->submit_dir = strdup(p->submit_dir);
    j->submit_host = p->submit_host ? strdup(p->submit_host) : NULL;
    j->submit_line = strdup(p->submit_line);
    j->state = p->state;
    j->reason = p->reason;
    j->submit_time = p->submit_time;
    j->eligible_time = p->eligible_time;
    j->array_max_run = p->array_max_run;
    j->array_stats = p->array_stats;
    if (!j->user || !j->script || !j->submit_dir || !j->submit_line ||
        (p->spec.dependency &&
         phx_depend_parse(p->spec.dependency, &j->dep, NULL) < 0)) {
        batchd_job_free(j);
        return NULL;
    }
    return j;
}

static void inserted(const phx_error_t *err, phx_db_result_t *const *res, int n,
                     void *arg)
{
    submission_t *s = arg;
    batchd_t *b = s->b;
    /* a single job's id is its own (jobids.c); an array's come back */
    bool single = s->proto->id != 0;
    if (err || (!single && n < 1)) {
        phx_log_errx("could not store a job of %s: %s", s->proto->user,
                     err ? err->text : "no result");
        settle(s, 503, 0, NULL, err ? err->text : "no result");
        return;
    }
    /* nothing written: its uid has the key already (rows.h, insert_array) */
    if (single ? n == 0 : phx_db_result_rows(res[0]) == 0) {
        if (s->key[0]) {
            lookup_key(s);
            return;
        }
        settle(s, 503, 0, NULL, "no row written");
        return;
    }
    int rows = single ? 1 : phx_db_result_rows(res[0]);
    uint64_t first = 0;
    for (int i = 0; i < rows; i++) {
        bjob_t *j = job_copy(s->proto);
        if (!j) {
            phx_log_errx("out of memory loading a new job");
            continue;
        }
        if (!single) {
            j->id = strtoull(phx_db_result_get(res[0], i, 0), NULL, 10);
            j->array_job_id = strtoull(phx_db_result_get(res[0], i, 1), NULL, 10);
            j->array_task_id = strtoll(phx_db_result_get(res[0], i, 2), NULL, 10);
        }
        if (!first || j->id < first)
            first = j->array_job_id ? j->array_job_id : j->id;
        if (batchd_queue_add(b, j) < 0)
            batchd_job_free(j);
    }
    phx_log_debug("job %" PRIu64 " of %s submitted", first, s->proto->user);
    batchd_sched_dirty(b);
    settle(s, 200, first, s->digest, NULL);
}

static int argv_of(const json_t *arr, char **argv, int *argc, phx_error_t *err)
{
    *argc = 0;
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > MAX_ARGV)
        return phx_error_set(err, "\"argv\" must be an array of at most %d strings",
                             MAX_ARGV);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return phx_error_set(err, "argv[%zu] must be a string", i);
        argv[(*argc)++] = (char *)json_string_value(v);
    }
    return 0;
}

static int check_env(const json_t *env, phx_error_t *err)
{
    if (!env)
        return 0;
    if (!json_is_object(env))
        return phx_error_set(err, "\"env\" must be an object of strings");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        if (!json_is_string(v) || !*k || strchr(k, '='))
            return phx_error_set(err, "env: malformed variable \"%s\"", k);
    }
    return 0;
}

/* err's text, prefixed with where the option of field was given. */
static int located(const phx_script_opts_t *o, size_t field, phx_error_t *err)
{
    if (!o) /* an update (update_api.c): no script, no command line */
        return -1;
    phx_jobspec_blame_t bl = {.field = {field}, .count = 1};
    return phx_script_blame(o, o->origin, &bl, err);
}

/* Whether partition part takes the job: its state, AllowGroups,
 * AllowAccounts or DenyAccounts (the job's account), MaxTime
 * (with *tl, the job's time limit or PHX_UNSET, which its DefaultTime then
 * sets) and its nodes.  -1 with err and *field, the option to blame
 * (SIZE_MAX: none). */
static int part_takes(const batchd_t *b, const bpart_t *part, phx_jobspec_t *sp,
                      int64_t *tl, uid_t uid, gid_t gid, const char *user,
                      size_t *field, phx_error_t *err)
{
    *field = offsetof(phx_jobspec_t, partition);
    if (part->state == BPART_DRAIN || part->state == BPART_INACTIVE)
        return phx_error_set(err, "partition %s is %s: it takes no new jobs",
                             part->name,
                             part->state == BPART_DRAIN ? "DRAIN" : "INACTIVE");
    if (!batchd_partition_allows(part, uid, gid, user))
        return phx_error_set(err, "user %s may not use partition %s (AllowGroups=%s)",
                             user, part->name, part->allow_text);
    if (!batchd_partition_account_ok(part, sp->account, err))
        return -1;
    int64_t t = *tl != PHX_UNSET ? *tl : part->default_time;
    if (part->max_time > 0 && (t == 0 || t > part->max_time)) {
        char m[32];
        phx_time_format(part->max_time, m, sizeof(m));
        *field = offsetof(phx_jobspec_t, time_limit);
        return phx_error_set(err, "time limit exceeds partition %s's maximum (%s)",
                             part->name, m);
    }
    char *was = sp->partition;
    sp->partition = part->name;
    int rc = batchd_cluster_check(b, sp, field, err);
    sp->partition = was;
    if (rc < 0)
        return -1;
    *tl = t;
    return 0;
}

/* The job's partition (-p; none: the default) or list of them (-p a,b:
 * the job runs in one of them, the first that can start it, as sbatch's).
 * Each must exist; those that cannot take the job (state, AllowGroups,
 * AllowAccounts/DenyAccounts, MaxTime, too few nodes) are left out with a
 * warning; none left: the first one's error.  The first that takes it sets
 * an unset time limit. */
static int resolve_partitions(const batchd_t *b, phx_jobspec_t *sp, uid_t uid,
                              gid_t gid, const char *user, json_t *warnings,
                              const phx_script_opts_t *o, phx_error_t *err)
{
    const bparts_t *ps = &b->parts;
    const bpart_t *dflt = sp->partition ? NULL : batchd_parts_find(ps, NULL, NULL);
    const char *list = sp->partition ? sp->partition : dflt ? dflt->name : "";
    char kept[1024] = "", names[512], one[128];
    size_t len, field = SIZE_MAX, nkept = 0, nlisted = 0, idx;
    int64_t tl = sp->time_limit;
    uint64_t seen = 0;
    phx_error_t first = {{0}};
    const char *first_name = NULL;
    for (const char *at = list, *n; (n = batchd_parts_next(&at, &len));) {
        const bpart_t *part = NULL;
        if (len > 0 && len < sizeof(one)) {
            memcpy(one, n, len);
            one[len] = '\0';
            part = batchd_parts_find(ps, one, &idx);
        }
        if (!part) {
            batchd_parts_names(ps, names, sizeof(names));
            phx_error_set(err, "invalid partition \"%.*s\" (the partitions are: %s)",
                          (int)(len < 128 ? len : 128), n, names);
            return located(o, offsetof(phx_jobspec_t, partition), err);
        }
        if (seen & (UINT64_C(1) << idx))
            continue; /* named twice */
        seen |= UINT64_C(1) << idx;
        nlisted++;
        size_t f;
        phx_error_t why = {{0}};
        if (part_takes(b, part, sp, &tl, uid, gid, user, &f, &why) < 0) {
            if (nlisted == 1) {
                first = why;
                first_name = part->name;
                field = f;
            } else {
                json_array_append_new(
                    warnings,
                    json_sprintf("partition %s left out: %s", part->name, why.text));
            }
            continue;
        }
        size_t at_kept = strlen(kept);
        if (at_kept + strlen(part->name) + 2 > sizeof(kept))
            return phx_error_set(err, "partition list too long");
        snprintf(kept + at_kept, sizeof(kept) - at_kept, "%s%s", nkept ? "," : "",
                 part->name);
        nkept++;
    }
    if (nlisted == 0) {
        batchd_parts_names(ps, names, sizeof(names));
        phx_error_set(err, "invalid partition \"%s\" (the partitions are: %s)", list,
                      names);
        return located(o, offsetof(phx_jobspec_t, partition), err);
    }
    if (nkept == 0) {
        *err = first;
        return field == SIZE_MAX ? -1 : located(o, field, err);
    }
    if (first_name)
        json_array_append_new(warnings, json_sprintf("partition %s left out: %s",
                                                     first_name, first.text));
    if (!sp->partition || strcmp(sp->partition, kept) != 0) {
        char *k = strdup(kept);
        if (!k)
            return phx_error_set(err, "out of memory");
        free(sp->partition);
        sp->partition = k;
    }
    sp->time_limit = tl;
    return 0;
}

int batchd_resolve_partitions(const batchd_t *b, phx_jobspec_t *sp, uid_t uid,
                              gid_t gid, const char *user, json_t *warnings,
                              phx_error_t *err)
{
    return resolve_partitions(b, sp, uid, gid, user, warnings, NULL, err);
}

/* Read and check the submission into s->proto.  -1 with err (a 400). */
static int build(batchd_t *b, const json_t *body, uid_t uid, gid_t gid, submission_t *s,
                 phx_error_t *err)
{
    const char *script = NULL, *filename = "script", *cwd = NULL, *line = NULL,
               *host = NULL;
    json_t *env = NULL, *args = NULL;
    if (phx_json_str(body, "script", true, &script, err) < 0 ||
        phx_json_str(body, "filename", false, &filename, err) < 0 ||
        phx_json_str(body, "cwd", true, &cwd, err) < 0 ||
        phx_json_str(body, "submit_line", false, &line, err) < 0 ||
        phx_json_str(body, "submit_host", false, &host, err) < 0 ||
        phx_json_obj(body, "env", false, &env, err) < 0 ||
        phx_json_arr(body, "args", false, &args, err) < 0 || check_env(env, err) < 0)
        return -1;
    if (cwd[0] != '/')
        return phx_error_set(err, "cwd \"%s\" must be an absolute path", cwd);
    size_t len = json_string_length(json_object_get(body, "script"));
    char *argv[MAX_ARGV];
    int argc;
    if (argv_of(json_object_get(body, "argv"), argv, &argc, err) < 0)
        return -1;
    for (size_t i = 0; i < json_array_size(args); i++)
        if (!json_is_string(json_array_get(args, i)))
            return phx_error_set(err, "args[%zu] must be a string", i);
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096];
    if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 || !pwp)
        return phx_error_set(err, "uid %u has no user name", (unsigned)uid);
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    int64_t now = batchd_now();
    phx_script_origin_t origin;
    phx_script_opts_t o = {.filename = filename,
                           .now = now,
                           .max_bytes = b->max_script,
                           .warn = warn_cb,
                           .warn_arg = s->warnings,
                           .origin = &origin};
    phx_jobspec_defaults_t def = {.job_name = *base ? base : "phx",
                                  .work_dir = cwd,
                                  .time_limit = PHX_UNSET}; /* the partition's */
    bjob_t *j = s->proto;
    if (phx_script_build(script, len, argc, argv, &o, &def, &b->limits, &j->spec, err) <
        0)
        return -1;
    phx_jobspec_t *sp = &j->spec;
    if (sp->nice != PHX_UNSET && sp->nice < 0 && !batchd_is_operator(b, uid)) {
        phx_error_set(err,
                      "--nice=%" PRId64 ": only an operator may raise a job's priority "
                      "(a negative nice); use --nice=0 or above",
                      sp->nice);
        return located(&o, offsetof(phx_jobspec_t, nice), err);
    }
    if (phx_mail_rcpt_count(sp->mail_user) > PHX_MAIL_RCPT_MAX) {
        phx_error_set(err, "--mail-user has %zu addresses: at most %d are allowed",
                      phx_mail_rcpt_count(sp->mail_user), PHX_MAIL_RCPT_MAX);
        return located(&o, offsetof(phx_jobspec_t, mail_user), err);
    }
    /* the account first: the partitions' AllowAccounts check it */
    if (b->enforce_accounts &&
        batchd_accounts_resolve(b->accounts, pw.pw_name, &sp->account, err) < 0)
        return located(&o, offsetof(phx_jobspec_t, account), err);
    size_t field;
    if (batchd_nodesel_check(b, sp, &field, err) < 0)
        return located(&o, field, err);
    if (resolve_partitions(b, sp, uid, gid, pw.pw_name, s->warnings, &o, err) < 0)
        return -1;
    phx_jobsig_t warn;
    if (sp->signal && sp->time_limit > 0 &&
        phx_jobsig_parse(sp->signal, &warn, NULL) == 0 && warn.before >= sp->time_limit)
        json_array_append_new(s->warnings,
                              json_sprintf("--signal=%s: the time limit is %" PRId64
                                           " s, so the signal comes as the job starts",
                                           sp->signal, sp->time_limit));
    if (sp->array &&
        phx_array_parse(sp->array, b->limits.max_array_index, &s->array, err) < 0) {
        phx_error_prefix(err, "invalid array specification");
        return located(&o, offsetof(phx_jobspec_t, array), err);
    }
    if (sp->dependency) {
        phx_dep_env_t denv;
        if (phx_depend_parse(sp->dependency, &j->dep, err) < 0) {
            phx_error_prefix(err, "invalid dependency");
            return located(&o, offsetof(phx_jobspec_t, dependency), err);
        }
        batchd_dep_env(b, j, &denv);
        if (phx_depend_check(&j->dep, &denv, err) < 0) {
            phx_error_prefix(err, "invalid dependency");
            return located(&o, offsetof(phx_jobspec_t, dependency), err);
        }
    }
    j->uid = uid;
    j->gid = gid;
    j->user = strdup(pw.pw_name);
    j->script = strndup(script, len);
    j->env = json_incref(env);
    j->args = json_incref(args);
    j->submit_dir = strdup(cwd);
    j->submit_host = host ? strdup(host) : NULL;
    j->submit_line = strdup(line ? line : "phx submit");
    j->array_max_run = s->array.max_running;
    phx_array_stats(&s->array, &j->array_stats);
    j->submit_time = now;
    j->state = PHX_JOB_PENDING;
    if (sp->hold == 1) /* eligible once released (hold.c); an operator's: admin */
        j->reason =
            batchd_is_operator(b, uid) ? PHX_REASON_HELD_ADMIN : PHX_REASON_HELD;
    else if (sp->dependency)
        j->reason = PHX_REASON_DEPENDENCY;
    else if (sp->begin_time != PHX_UNSET && sp->begin_time > now)
        j->reason = PHX_REASON_BEGIN_TIME;
    else {
        j->reason = PHX_REASON_PRIORITY;
        j->eligible_time = now;
    }
    if (!j->user || !j->script || !j->submit_dir || !j->submit_line)
        return phx_error_set(err, "out of memory");
    return 0;
}

static char *int_text(int64_t v, char *buf, size_t len)
{
    if (v == PHX_UNSET)
        return NULL;
    snprintf(buf, len, "%lld", (long long)v);
    return buf;
}

/* The columns a submission writes, as text parameters; p[30] is the array
 * specification (NULL for a single job). */
enum { NCOLS = 31 };
typedef struct cols {
    const char *p[NCOLS];
    char *spec_text;
    char uid[16], gid[16], nice[24], tl[24], nmin[24], nmax[24], nt[24], tpn[24],
        cpt[24], mpn[24], mpc[24], bt[24], el[24], sub[24];
    char grbuf[4096];
} cols_t;

static int cols_make(batchd_t *b, const bjob_t *j, cols_t *c, phx_error_t *err)
{
    const phx_jobspec_t *sp = &j->spec;
    json_t *spec = phx_jobspec_to_json(sp);
    if (!spec)
        return phx_error_set(err, "out of memory");
    json_object_set_new(spec, "batchd",
                        json_pack("{s:o, s:o, s:i}", "env",
                                  j->env ? json_incref(j->env) : json_object(), "args",
                                  j->args ? json_incref(j->args) : json_array(),
                                  "max_run", (int)j->array_max_run));
    c->spec_text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    if (!c->spec_text)
        return phx_error_set(err, "out of memory");
    struct group gr, *grp = NULL;
    getgrgid_r(j->gid, &gr, c->grbuf, sizeof(c->grbuf), &grp);
    snprintf(c->uid, sizeof(c->uid), "%u", (unsigned)j->uid);
    snprintf(c->gid, sizeof(c->gid), "%u", (unsigned)j->gid);
    snprintf(c->sub, sizeof(c->sub), "%lld", (long long)j->submit_time);
    const char *p[NCOLS] = {
        sp->job_name,
        c->uid,
        c->gid,
        j->user,
        grp ? gr.gr_name : NULL,
        sp->account,
        sp->partition ? sp->partition : b->partition,
        sp->qos,
        phx_job_reason_name(j->reason),
        int_text(sp->nice == PHX_UNSET ? 0 : sp->nice, c->nice, sizeof(c->nice)),
        c->spec_text,
        j->script,
        sp->work_dir,
        j->submit_dir,
        j->submit_line,
        j->submit_host,
        sp->dependency,
        sp->time_limit > 0 ? int_text(sp->time_limit, c->tl, sizeof(c->tl)) : NULL,
        int_text(sp->nodes_min, c->nmin, sizeof(c->nmin)),
        int_text(sp->nodes_max, c->nmax, sizeof(c->nmax)),
        int_text(sp->ntasks, c->nt, sizeof(c->nt)),
        int_text(sp->ntasks_per_node, c->tpn, sizeof(c->tpn)),
        int_text(sp->cpus_per_task, c->cpt, sizeof(c->cpt)),
        int_text(sp->mem_per_node, c->mpn, sizeof(c->mpn)),
        int_text(sp->mem_per_cpu, c->mpc, sizeof(c->mpc)),
        sp->exclusive == 1 ? "true" : "false",
        sp->requeue == 0 ? "false" : "true",
        sp->begin_time != PHX_UNSET ? int_text(sp->begin_time, c->bt, sizeof(c->bt))
                                    : NULL,
        j->eligible_time >= 0 ? int_text(j->eligible_time, c->el, sizeof(c->el)) : NULL,
        c->sub,
        sp->array,
    };
    memcpy(c->p, p, sizeof(p));
    return 0;
}

/* A comma-separated PostgreSQL array literal of n numbers; NULL: no memory. */
static char *array_text(size_t n, const uint64_t *u64, const uint32_t *u32)
{
    size_t cap = n * 21 + 3, off = 0;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(text + off, cap - off, "%s%" PRIu64, i ? "," : "{",
                                u64 ? u64[i] : (uint64_t)u32[i]);
    snprintf(text + off, cap - off, n ? "}" : "{}");
    return text;
}

/* An array: every task in one statement, with the ids taken for it (in
 * order: the array job id is the first task's). */
static int insert_array(batchd_t *b, submission_t *s, cols_t *c, const uint64_t *jobids,
                        phx_error_t *err)
{
    char first[24];
    snprintf(first, sizeof(first), "%" PRIu64, jobids[0]);
    char *tasks = array_text(s->array.count, NULL, s->array.ids);
    char *ids = array_text(s->array.count, jobids, NULL);
    if (!tasks || !ids) {
        free(tasks);
        free(ids);
        return phx_error_set(err, "out of memory");
    }
    const char *p[NCOLS + 5];
    memcpy(p, c->p, sizeof(c->p));
    p[NCOLS] = tasks;
    p[NCOLS + 1] = s->key[0] ? s->key : NULL;
    p[NCOLS + 2] = s->key[0] ? s->digest : NULL;
    p[NCOLS + 3] = ids;
    p[NCOLS + 4] = first;
    int rc = phx_db_store_write(
        b->store,
        "INSERT INTO jobs (id, array_job_id, array_task_id, " BATCHD_JOB_COLS
        ", array_spec) SELECT t.id, $36::bigint, t.task, "
        "$1, $2::int, $3::int, $4, $5, $6, $7, $8, 'PENDING', $9, $10::int, "
        "$11::jsonb, "
        "$12, $13, $14, $15, $16, $17, $18::int, $19::int, $20::int, $21::int, "
        "$22::int, "
        "$23::int, $24::bigint, $25::bigint, $26::boolean, $27::boolean, "
        "to_timestamp($28::bigint), to_timestamp($29::bigint), "
        "to_timestamp($30::bigint), CASE WHEN t.ord = 1 THEN $33::text END, "
        "CASE WHEN t.ord = 1 THEN $34::text END, $31"
        " FROM unnest($32::int[], $35::bigint[]) WITH ORDINALITY AS t(task, id, ord) "
        /* its uid has the key: no task written (submit_key.c) */
        "WHERE $33::text IS NULL OR NOT EXISTS (SELECT 1 FROM jobs k WHERE "
        "k.uid = $2::int AND k.submit_key = $33::text) "
        "ORDER BY t.ord RETURNING id, array_job_id, array_task_id",
        NCOLS + 5, p, inserted, s, err);
    free(tasks);
    free(ids);
    return rc;
}

static void ids_taken(batchd_t *b, const uint64_t *ids, size_t n,
                      const phx_error_t *taken, void *arg)
{
    submission_t *s = arg;
    phx_error_t err;
    cols_t *c = NULL;
    if (taken) {
        err = *taken;
    } else if (!(c = calloc(1, sizeof(*c)))) {
        phx_error_set(&err, "out of memory");
    } else if (cols_make(b, s->proto, c, &err) == 0) {
        int rc;
        if (s->proto->spec.array) {
            rc = n == s->array.count ? insert_array(b, s, c, ids, &err)
                                     : phx_error_set(&err, "job ids: %zu for %zu tasks",
                                                     n, s->array.count);
        } else {
            char key[24];
            snprintf(key, sizeof(key), "%" PRIu64, ids[0]);
            const char *p[NCOLS + 2] = {key};
            memcpy(p + 1, c->p, (NCOLS - 1) * sizeof(*p)); /* no array_spec */
            p[NCOLS] = s->key[0] ? s->key : NULL;
            p[NCOLS + 1] = s->key[0] ? s->digest : NULL;
            s->proto->id = ids[0];
            rc = phx_db_store_write_row(b->store, &batchd_job_insert_rows, p, inserted,
                                        s, &err);
        }
        if (rc == 0) {
            free(c->spec_text);
            free(c);
            return;
        }
    }
    if (c)
        free(c->spec_text);
    free(c);
    settle(s, 503, 0, NULL, err.text);
}

/* Job ids first (in submission order), then the INSERT (ids_taken). */
static int insert(batchd_t *b, submission_t *s, phx_error_t *err)
{
    size_t n = s->proto->spec.array ? s->array.count : 1;
    if (n == 0)
        return phx_error_set(err, "an array of no task");
    return batchd_jobids_take(b, n, ids_taken, s) < 0
               ? phx_error_set(err, "out of memory")
               : 0;
}

void batchd_api_submit(batchd_t *b, struct evhttp_request *req, uid_t uid, gid_t gid)
{
    phx_error_t err;
    const char *key =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
    if (key && batchd_submit_key_check(key, &err) < 0) {
        phx_http_reply_error(req, 400, "%s", err.text);
        return;
    }
    json_t *body = phx_http_body_json(req, PHX_HTTP_BODY_MAX, &err);
    if (!body) {
        phx_http_reply_error(req, 400, "%s", err.text);
        return;
    }
    submission_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->proto = batchd_job_new()) || !(s->warnings = json_array()) ||
        (key && batchd_submit_digest(body, s->digest) < 0)) {
        json_decref(body);
        if (s)
            submission_free(s);
        phx_http_reply_error(req, 500, "out of memory");
        return;
    }
    s->b = b;
    if (key)
        snprintf(s->key, sizeof(s->key), "%s", key);
    if (build(b, body, uid, gid, s, &err) < 0) {
        json_decref(body);
        submission_free(s);
        phx_http_reply_error(req, 400, "%s", err.text);
        return;
    }
    json_decref(body);
    if (!(s->reply = phx_http_defer(req))) {
        submission_free(s);
        phx_http_reply_error(req, 500, "out of memory");
        return;
    }
    /* the same key on its way in: its answer is this one's too */
    submission_t *first = key ? inflight_find(b, uid, key) : NULL;
    if (first) {
        phx_log_info("submission of %s (Idempotency-Key %s) waits for the same one "
                     "in flight",
                     s->proto->user, key);
        s->next = first->waiters;
        first->waiters = s;
        return;
    }
    int status;
    uint32_t n = s->proto->spec.array ? (uint32_t)s->array.count : 1;
    if (batchd_userlim_reserve(b, uid, s->proto->user, n, &status, &err) < 0) {
        phx_log_notice("submission of %s refused: %s", s->proto->user, err.text);
        if (key) { /* unless it was stored before (sent again): its job */
            s->refused = status;
            s->refusal = err;
            lookup_key(s);
            return;
        }
        phx_http_reply_error(req, status, "%s", err.text);
        submission_free(s);
        return;
    }
    s->reserved = n;
    if (key) {
        s->inflight = true;
        s->next = b->submit_inflight;
        b->submit_inflight = s;
    }
    if (insert(b, s, &err) < 0)
        settle(s, 503, 0, NULL, err.text);
}
