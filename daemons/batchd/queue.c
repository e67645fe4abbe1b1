/* The in-memory queue: every active job plus the finished ones of the last
 * batchd.keep_ended seconds, rebuilt from the jobs table at start.  Every
 * transition is written through the store (the jobs_transition trigger
 * records it in job_events with its time).
 *
 * What the jobs table has no column for lives in jobs.spec under the key
 * "batchd": {"env": {...}, "args": [...], "max_run": N} (the submitter's
 * environment, the script's arguments, the array throttle), written at
 * submission (and by an update, with "limit_start": update_api.c);
 * phx_jobspec_from_json never sees it.  The tasks of the current
 * run are jobs.run_tasks. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/rows.h"
#include "daemons/batchd/timefmt.h"
#include "db/db.h"
#include "lib/log.h"

bjob_t *batchd_job_new(void)
{
    bjob_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    phx_jobspec_init(&j->spec);
    j->array_task_id = -1;
    j->submit_time = j->eligible_time = j->start_time = j->end_time = -1;
    j->expected_start = j->requeued_run = -1;
    return j;
}

void batchd_job_free(bjob_t *j)
{
    if (!j)
        return;
    phx_jobspec_clear(&j->spec);
    phx_depend_clear(&j->dep);
    free(j->user);
    free(j->script);
    json_decref(j->env);
    json_decref(j->args);
    free(j->submit_dir);
    free(j->submit_host);
    free(j->submit_line);
    free(j->tasks);
    free(j->node_list);
    free(j->stdout_path);
    free(j->stderr_path);
    free(j->part_list);
    free(j->nodes_ok);
    free(j);
}

static void key_of(uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64, id);
}

/* An array task's key in b->array_tasks: "A_T". */
static void array_key_of(uint64_t array_job_id, int64_t task, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64 "_%" PRId64, array_job_id, task);
}

int batchd_queue_add(batchd_t *b, bjob_t *j)
{
    char key[24], akey[48];
    key_of(j->id, key, sizeof(key));
    array_key_of(j->array_job_id, j->array_task_id, akey, sizeof(akey));
    if (b->njobs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        bjob_t **o = realloc(b->order, cap * sizeof(*o));
        if (!o)
            return -1;
        b->order = o;
        b->cap = cap;
    }
    if (j->array_job_id && phx_hmap_put(b->array_tasks, akey, j) < 0)
        return -1;
    if (phx_hmap_put(b->jobs, key, j) < 0) {
        if (j->array_job_id)
            phx_hmap_del(b->array_tasks, akey);
        return -1;
    }
    /* ids mostly arrive in order; keep the array sorted */
    size_t i = b->njobs;
    while (i > 0 && b->order[i - 1]->id > j->id) {
        b->order[i] = b->order[i - 1];
        i--;
    }
    b->order[i] = j;
    b->njobs++;
    if (i < b->live_from)
        b->live_from = i;
    if (j->state == PHX_JOB_PENDING)
        b->prio_dirty = true;
    if (j->state == PHX_JOB_PENDING)
        b->npending++;
    else if (j->state == PHX_JOB_RUNNING)
        b->nrunning++;
    batchd_userlim_move(b, j->uid, PHX_JOB_STATE_COUNT, j->state);
    for (size_t k = 0; k < j->ntasks; k++)
        if (!j->tasks[k].ended)
            phx_hmap_put(b->tasks, j->tasks[k].id, j);
    return 0;
}

bjob_t *batchd_job_find(const batchd_t *b, uint64_t id)
{
    char key[24];
    key_of(id, key, sizeof(key));
    return phx_hmap_get(b->jobs, key);
}

bjob_t *batchd_array_task_find(const batchd_t *b, uint64_t array_job_id, int64_t task)
{
    char key[48];
    if (!array_job_id || task < 0)
        return NULL;
    array_key_of(array_job_id, task, key, sizeof(key));
    return phx_hmap_get(b->array_tasks, key);
}

bjob_t *batchd_array_any_task(const batchd_t *b, uint64_t array_job_id)
{
    if (!array_job_id)
        return NULL;
    size_t lo = 0, hi = b->njobs; /* the first id >= the array's: its tasks' */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->order[mid]->id < array_job_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < b->njobs; i++)
        if (b->order[i]->array_job_id == array_job_id)
            return b->order[i];
    return NULL;
}

/* The jobs (and arrays) that pending jobs' dependencies name, as keys: an
 * ended one stays in memory while they wait, else its dependents would
 * find it gone and be cancelled as never satisfied.  NULL if out of memory. */
static phx_hmap_t *dep_targets(const batchd_t *b)
{
    phx_hmap_t *set = phx_hmap_create();
    for (size_t i = b->live_from; set && i < b->njobs; i++) {
        const bjob_t *j = b->order[i];
        if (j->state != PHX_JOB_PENDING)
            continue;
        for (size_t t = 0; t < j->dep.count; t++) {
            char key[24];
            if (!j->dep.terms[t].job_id)
                continue;
            key_of(j->dep.terms[t].job_id, key, sizeof(key));
            if (phx_hmap_put(set, key, (void *)1) < 0) {
                phx_hmap_destroy(set);
                return NULL;
            }
        }
    }
    return set;
}

static bool dep_named(const phx_hmap_t *set, const bjob_t *j)
{
    char key[24];
    key_of(j->id, key, sizeof(key));
    if (phx_hmap_get(set, key))
        return true;
    key_of(j->array_job_id, key, sizeof(key));
    return j->array_job_id && phx_hmap_get(set, key);
}

void batchd_queue_expire(batchd_t *b, int64_t now)
{
    size_t out = 0, before_live = 0;
    phx_hmap_t *named = NULL; /* made at the first job old enough to go */
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (phx_job_state_is_final(j->state) && j->tasks_live == 0 &&
            j->end_time >= 0 && now - j->end_time > b->keep_ended &&
            (named || (named = dep_targets(b))) && !dep_named(named, j)) {
            char key[24];
            key_of(j->id, key, sizeof(key));
            phx_hmap_del(b->jobs, key);
            if (j->array_job_id) {
                char akey[48];
                array_key_of(j->array_job_id, j->array_task_id, akey, sizeof(akey));
                phx_hmap_del(b->array_tasks, akey);
            }
            /* the priority order holds jobs pending when it was made: one
             * that ended since may be in it */
            if (b->prio_n > 0 && j->end_time >= b->prio_at - 1)
                b->prio_n = 0;
            before_live += i < b->live_from;
            if (j->request_id[0])
                batchd_request_drop(b, j);
            batchd_job_free(j);
            continue;
        }
        b->order[out++] = j;
    }
    b->njobs = out;
    b->live_from -= before_live;
    phx_hmap_destroy(named);
}

/* Jobs end in about the order they were submitted: a pass starts after the
 * leading ended ones, which a queue kept for keep_ended holds by thousands. */
size_t batchd_live_from(batchd_t *b)
{
    while (b->live_from < b->njobs &&
           phx_job_state_is_final(b->order[b->live_from]->state))
        b->live_from++;
    return b->live_from;
}

/* A job no longer final (requeued) may lie before live_from. */
static void live_again(batchd_t *b, const bjob_t *j)
{
    size_t lo = 0, hi = b->live_from;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->order[mid]->id < j->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < b->live_from)
        b->live_from = lo;
}

void batchd_queue_destroy(batchd_t *b)
{
    for (size_t i = 0; i < b->njobs; i++)
        batchd_job_free(b->order[i]);
    batchd_request_clear(b);
    batchd_userlim_clear(b);
    free(b->order);
    b->order = NULL;
    b->njobs = 0;
    free(b->prio_order);
    free(b->prio_value);
    b->prio_order = NULL;
    b->prio_value = NULL;
    b->prio_n = 0;
}

static int64_t num(const phx_db_result_t *r, int row, int col, int64_t dflt)
{
    if (phx_db_result_isnull(r, row, col))
        return dflt;
    return strtoll(phx_db_result_get(r, row, col), NULL, 10);
}

static char *str(const phx_db_result_t *r, int row, int col)
{
    if (phx_db_result_isnull(r, row, col))
        return NULL;
    return strdup(phx_db_result_get(r, row, col));
}

/* A task's GPUs in run_tasks: their device ids, [0, 1] (bit i: device i). */
static json_t *gpu_ids(uint64_t gpus)
{
    json_t *a = json_array();
    for (int i = 0; a && i < 64; i++)
        if (gpus & (UINT64_C(1) << i))
            json_array_append_new(a, json_integer(i));
    return a;
}

static int load_tasks(bjob_t *j, const json_t *tasks)
{
    size_t n = json_array_size(tasks);
    if (n == 0)
        return 0;
    j->tasks = calloc(n, sizeof(*j->tasks));
    if (!j->tasks)
        return -1;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        bj_task_t *bt = &j->tasks[i];
        snprintf(bt->id, sizeof(bt->id), "%s",
                 json_string_value(json_object_get(t, "id")) ?: "");
        snprintf(bt->agent_id, sizeof(bt->agent_id), "%s",
                 json_string_value(json_object_get(t, "agent_id")) ?: "");
        snprintf(bt->host, sizeof(bt->host), "%s",
                 json_string_value(json_object_get(t, "host")) ?: "");
        bt->cpus = (uint32_t)json_integer_value(json_object_get(t, "cpus"));
        bt->tasks = (uint32_t)json_integer_value(json_object_get(t, "tasks"));
        bt->mem = (uint64_t)json_integer_value(json_object_get(t, "mem"));
        bt->ended = json_is_true(json_object_get(t, "ended"));
        size_t k;
        json_t *g;
        json_array_foreach(json_object_get(t, "gpus"), k, g)
        {
            json_int_t d = json_integer_value(g);
            if (d >= 0 && d < 64)
                bt->gpus |= UINT64_C(1) << d;
        }
        if (!bt->ended)
            j->tasks_live++;
    }
    j->ntasks = n;
    return 0;
}

static bjob_t *job_from_row(const phx_db_result_t *r, int i, phx_error_t *err)
{
    bjob_t *j = batchd_job_new();
    if (!j) {
        phx_error_set(err, "out of memory");
        return NULL;
    }
    j->id = (uint64_t)num(r, i, 0, 0);
    j->array_job_id = (uint64_t)num(r, i, 1, 0);
    j->array_task_id = num(r, i, 2, -1);
    j->uid = (uid_t)num(r, i, 3, 0);
    j->gid = (gid_t)num(r, i, 4, 0);
    j->user = str(r, i, 5);
    int st = phx_job_state_parse(phx_db_result_get(r, i, 6));
    j->state = st < 0 ? PHX_JOB_FAILED : (phx_job_state_t)st;
    const char *reason = phx_db_result_get(r, i, 7);
    for (int k = 0; k < PHX_REASON_COUNT; k++)
        if (strcmp(reason, phx_job_reason_name((phx_job_reason_t)k)) == 0)
            j->reason = (phx_job_reason_t)k;
    j->priority = (uint32_t)num(r, i, 8, 0);
    json_t *spec = json_loads(phx_db_result_get(r, i, 9), 0, NULL);
    json_t *extra = json_object_get(spec, "batchd");
    json_incref(extra);
    if (spec)
        json_object_del(spec, "batchd");
    if (!spec || phx_jobspec_from_json(spec, &j->spec, err) < 0) {
        json_decref(spec);
        json_decref(extra);
        batchd_job_free(j);
        return NULL;
    }
    json_decref(spec);
    j->env = json_incref(json_object_get(extra, "env"));
    j->args = json_incref(json_object_get(extra, "args"));
    j->array_max_run = (uint32_t)json_integer_value(json_object_get(extra, "max_run"));
    j->limit_start = json_integer_value(json_object_get(extra, "limit_start"));
    /* the TIME_LIMIT* mails of a run sent (mail.c): [start, limit, bits] */
    json_t *ms = json_object_get(extra, "mail");
    int64_t mail_run = json_integer_value(json_array_get(ms, 0));
    if (json_array_size(ms) == 3) {
        j->mail_limit = json_integer_value(json_array_get(ms, 1));
        j->mail_sent = (uint16_t)json_integer_value(json_array_get(ms, 2));
    }
    json_decref(extra);
    json_t *tasks = json_loads(phx_db_result_get(r, i, 25), 0, NULL);
    load_tasks(j, tasks);
    json_decref(tasks);
    j->script = str(r, i, 10);
    j->submit_dir = str(r, i, 11);
    j->submit_line = str(r, i, 12);
    j->submit_host = str(r, i, 13);
    j->submit_time = num(r, i, 14, -1);
    j->eligible_time = num(r, i, 15, -1);
    j->start_time = num(r, i, 16, -1);
    if (j->mail_sent && (j->start_time < 0 || j->start_time != mail_run))
        j->mail_sent = 0; /* of an earlier run */
    j->end_time = num(r, i, 17, -1);
    j->exit_code = (int)num(r, i, 18, 0);
    j->exit_signal = (int)num(r, i, 19, 0);
    j->requeue_count = (int)num(r, i, 20, 0);
    j->node_list = str(r, i, 21);
    j->alloc_cpus = num(r, i, 22, 0);
    j->stdout_path = str(r, i, 23);
    j->stderr_path = str(r, i, 24);
    /* a job of several partitions (spec) that started in one (the row) */
    const char *ran = phx_db_result_get(r, i, 26);
    if (j->state != PHX_JOB_PENDING && ran && *ran && j->spec.partition &&
        strcmp(ran, j->spec.partition) != 0) {
        char *one = strdup(ran);
        if (one) {
            j->part_list = j->spec.partition;
            j->spec.partition = one;
        }
    }
    /* a cancel (batchd_job_cancel) or else a requeue (requeue.c) asked
     * while it ran, before a restart: killed again once subscribed */
    const char *by = phx_db_result_get(r, i, 28);
    j->cancel_requested = j->state == PHX_JOB_RUNNING && by && *by;
    if ((j->state == PHX_JOB_RUNNING && !j->cancel_requested) ||
        phx_job_state_is_final(j->state)) /* recorded, not requeued yet */
        j->requeue_asked = (uint8_t)batchd_requeue_parse(phx_db_result_get(r, i, 27));
    if (j->spec.dependency && phx_depend_parse(j->spec.dependency, &j->dep, err) < 0) {
        batchd_job_free(j);
        return NULL;
    }
    return j;
}

/* The stats of j's array, from the first of its tasks loaded: parsing the
 * index text per task would cost O(array size) per task.  cache: array job
 * id text → malloc'd phx_array_stats_t.  An array batchd can no longer parse
 * (batchd.max_array_index lowered since) has none: its tasks are not told. */
static void load_array_stats(batchd_t *b, phx_hmap_t *cache, bjob_t *j)
{
    if (!j->array_job_id || !j->spec.array)
        return;
    char key[24];
    key_of(j->array_job_id, key, sizeof(key));
    phx_array_stats_t *st = phx_hmap_get(cache, key);
    if (st) {
        j->array_stats = *st;
        return;
    }
    phx_array_t a = {0};
    phx_error_t err;
    if (phx_array_parse(j->spec.array, b->limits.max_array_index, &a, &err) < 0)
        phx_log_warnx("array %" PRIu64 ": could not parse its indices: %s",
                      j->array_job_id, err.text);
    else
        phx_array_stats(&a, &j->array_stats);
    phx_array_clear(&a);
    if ((st = malloc(sizeof(*st))) == NULL || phx_hmap_put(cache, key, st) < 0)
        free(st); /* parsed again for the next task */
    else
        *st = j->array_stats;
}

static void free_values(phx_hmap_t *map)
{
    size_t pos = 0;
    const char *k;
    void *v;
    if (!map)
        return;
    while (phx_hmap_next(map, &pos, &k, &v))
        free(v);
    phx_hmap_destroy(map);
}

int batchd_queue_load(batchd_t *b, phx_error_t *err)
{
    phx_db_conn_t *db = phx_db_connect(b->dsn, err);
    if (!db)
        return -1;
    char keep[32];
    snprintf(keep, sizeof(keep), "%lld", (long long)b->keep_ended);
    const char *p[] = {keep};
    phx_db_result_t *r = NULL;
    int rc = phx_db_query(
        db,
        "WITH deps AS (SELECT DISTINCT m[1]::bigint AS id FROM jobs d, "
        "regexp_matches(d.dependency, ':([0-9]+)', 'g') AS m "
        "WHERE d.state = 'PENDING' AND d.dependency IS NOT NULL) "
        "SELECT id, array_job_id, array_task_id, uid, gid, user_name, state, reason, "
        "priority, spec::text, script, submit_dir, submit_line, submit_host, "
        "extract(epoch FROM submit_time)::bigint, "
        "extract(epoch FROM eligible_time)::bigint, "
        "extract(epoch FROM start_time)::bigint, extract(epoch FROM end_time)::bigint, "
        "exit_code, exit_signal, requeue_count, node_list, alloc_cpus, stdout_path, "
        "stderr_path, run_tasks::text, partition, requeue_asked, "
        /* a cancel of this run: not one left from before it started (a
         * cancel of the job pending whose state was never committed) */
        "CASE WHEN cancel_time >= start_time THEN cancel_uid END FROM jobs "
        "WHERE state IN ('PENDING', 'RUNNING') "
        "OR end_time > now() - make_interval(secs => $1::bigint) "
        /* a run recorded whose requeue did not commit: batchd_requeue_resume */
        "OR requeue_asked IS NOT NULL "
        /* and the jobs pending jobs depend on, however old (queue_expire) */
        "OR id IN (SELECT id FROM deps) OR array_job_id IN (SELECT id FROM deps) "
        "ORDER BY id",
        1, p, &r, err);
    phx_hmap_t *arrays = phx_hmap_create();
    if (rc == 0 && !arrays)
        rc = phx_error_set(err, "out of memory");
    for (int i = 0; rc == 0 && i < phx_db_result_rows(r); i++) {
        bjob_t *j = job_from_row(r, i, err);
        if (!j) {
            phx_log_warnx("job %s: could not load it: %s", phx_db_result_get(r, i, 0),
                          err->text);
            continue;
        }
        load_array_stats(b, arrays, j);
        if (j->state != PHX_JOB_PENDING && j->start_time >= 0 && j->end_time >= 0)
            batchd_usage_add(b, j->user,
                             (double)j->alloc_cpus *
                                 (double)(j->end_time - j->start_time),
                             j->end_time);
        if (batchd_queue_add(b, j) < 0) {
            batchd_job_free(j);
            rc = phx_error_set(err, "out of memory");
        }
    }
    free_values(arrays);
    phx_db_result_destroy(r);
    phx_db_conn_close(db);
    if (rc == 0)
        phx_log_info("queue loaded: %zu pending, %zu running, %zu jobs in memory",
                     b->npending, b->nrunning, b->njobs);
    return rc;
}

static json_t *time_json(int64_t t)
{
    return t >= 0 ? json_integer(t) : json_null();
}

json_t *batchd_job_json(const batchd_t *b, const bjob_t *j, bool full)
{
    char tl[32], ec[32];
    phx_time_format(j->spec.time_limit, tl, sizeof(tl));
    snprintf(ec, sizeof(ec), "%d:%d", j->exit_code, j->exit_signal);
    int64_t now = batchd_now(), elapsed = 0;
    if (j->start_time >= 0 && j->state == PHX_JOB_RUNNING)
        elapsed = now - j->start_time;
    else if (j->start_time >= 0 && j->end_time >= j->start_time)
        elapsed = j->end_time - j->start_time;
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:I, s:s, s:I, "
        "s:I, s:I, s:I, s:s?, s:s, s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:I, s:I, s:b}",
        "job_id", (json_int_t)j->id, "name", j->spec.job_name ?: "", "user",
        j->user ?: "", "uid", (json_int_t)j->uid, "state", phx_job_state_name(j->state),
        "state_code", phx_job_state_code(j->state), "reason",
        phx_job_reason_name(j->reason), "priority", (json_int_t)j->priority,
        "submit_time", time_json(j->submit_time), "eligible_time",
        time_json(j->eligible_time), "start_time", time_json(j->start_time), "end_time",
        time_json(j->end_time), "time_limit", (json_int_t)j->spec.time_limit,
        "time_limit_text", tl, "elapsed", (json_int_t)elapsed, "nodes",
        (json_int_t)j->spec.nodes_min, "ntasks", (json_int_t)j->spec.ntasks,
        "cpus_per_task", (json_int_t)j->spec.cpus_per_task, "node_list", j->node_list,
        "exit_code", ec, "partition", j->spec.partition ?: b->partition, "account",
        j->spec.account, "work_dir", j->spec.work_dir ?: "", "stdout", j->stdout_path,
        "stderr", j->stderr_path, "dependency", j->spec.dependency, "alloc_cpus",
        (json_int_t)j->alloc_cpus, "requeue_count", (json_int_t)j->requeue_count,
        "exclusive", j->spec.exclusive == 1);
    if (!o)
        return NULL;
    /* squeue --start's START_TIME: only the reserved job of its pool has
     * one (EASY plans no other), while it waits for it (Resources) */
    if (j->state == PHX_JOB_PENDING && j->reason == PHX_REASON_RESOURCES &&
        j->expected_start >= 0 && j->expected_plan == b->plan_no)
        json_object_set_new(o, "expected_start", json_integer(j->expected_start));
    if (j->array_job_id) {
        json_object_set_new(o, "array_job_id",
                            json_integer((json_int_t)j->array_job_id));
        json_object_set_new(o, "array_task_id", json_integer(j->array_task_id));
    }
    if (full) {
        json_object_set_new(o, "spec", phx_jobspec_to_json(&j->spec));
        json_object_set_new(o, "submit_line", json_string(j->submit_line ?: ""));
        json_object_set_new(o, "submit_host", json_string(j->submit_host ?: ""));
        json_object_set_new(o, "gid", json_integer(j->gid));
        json_t *tasks = json_array();
        for (size_t i = 0; i < j->ntasks; i++)
            json_array_append_new(
                tasks,
                json_pack("{s:s, s:s, s:i, s:i, s:I, s:b}", "id", j->tasks[i].id,
                          "node", j->tasks[i].host, "cpus", (int)j->tasks[i].cpus,
                          "tasks", (int)j->tasks[i].tasks, "mem",
                          (json_int_t)j->tasks[i].mem, "ended", j->tasks[i].ended));
        json_object_set_new(o, "tasks", tasks);
    }
    return o;
}

static json_t *tasks_json(const bjob_t *j)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < j->ntasks; i++) {
        const bj_task_t *t = &j->tasks[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:b, s:o}", "id", t->id,
                         "agent_id", t->agent_id, "host", t->host, "cpus", (int)t->cpus,
                         "tasks", (int)t->tasks, "mem", (json_int_t)t->mem, "ended",
                         t->ended, "gpus", gpu_ids(t->gpus)));
    }
    return a;
}

void batchd_job_written(const phx_error_t *err, phx_db_result_t *const *r, int n,
                        void *arg)
{
    (void)r;
    (void)n;
    uint64_t id = (uint64_t)(uintptr_t)arg;
    if (err)
        phx_log_errx("job %" PRIu64 ": could not record its state: %s", id, err->text);
}

static void tparam(char *buf, size_t len, int64_t t, const char **p)
{
    if (t < 0) {
        *p = NULL;
        return;
    }
    snprintf(buf, len, "%lld", (long long)t);
    *p = buf;
}

void batchd_job_persist(batchd_t *b, bjob_t *j)
{
    batchd_job_persist_cb(b, j, batchd_job_written, (void *)(uintptr_t)j->id);
}

int batchd_job_persist_cb(batchd_t *b, bjob_t *j, phx_db_done_f cb, void *arg)
{
    char id[24], prio[16], el[24], st[24], en[24], ec[8], es[8], rq[8], cpus[24],
        nn[16], mem[24];
    snprintf(id, sizeof(id), "%" PRIu64, j->id);
    snprintf(prio, sizeof(prio), "%u", j->priority);
    snprintf(ec, sizeof(ec), "%d", j->exit_code & 255);
    snprintf(es, sizeof(es), "%d", j->exit_signal & 127);
    snprintf(rq, sizeof(rq), "%d", j->requeue_count);
    uint64_t m = 0;
    for (size_t i = 0; i < j->ntasks; i++)
        m += j->tasks[i].mem;
    snprintf(cpus, sizeof(cpus), "%lld", (long long)j->alloc_cpus);
    snprintf(nn, sizeof(nn), "%zu", j->ntasks);
    snprintf(mem, sizeof(mem), "%" PRIu64, m);
    bool final = phx_job_state_is_final(j->state);
    bool alloc = j->ntasks > 0 && j->alloc_cpus > 0;
    json_t *tj = tasks_json(j);
    char *tasks = tj ? json_dumps(tj, JSON_COMPACT) : NULL;
    json_decref(tj);
    char *tpn = NULL;
    if (alloc) {
        uint32_t *counts = calloc(j->ntasks, sizeof(*counts));
        for (size_t i = 0; counts && i < j->ntasks; i++)
            counts[i] = j->tasks[i].tasks;
        tpn = counts ? phx_tasks_per_node_format(counts, j->ntasks) : NULL;
        free(counts);
    }
    const char *p[22] = {id, phx_job_state_name(j->state),
                         phx_job_reason_name(j->reason), prio};
    tparam(el, sizeof(el), j->eligible_time, &p[4]);
    tparam(st, sizeof(st), j->start_time, &p[5]);
    tparam(en, sizeof(en), final ? j->end_time : -1, &p[6]);
    p[7] = final ? ec : NULL;
    p[8] = final ? es : NULL;
    p[9] = rq;
    p[10] = alloc ? j->node_list : NULL;
    p[11] = alloc ? cpus : NULL;
    p[12] = alloc ? nn : NULL;
    p[13] = alloc ? mem : NULL;
    p[14] = tpn;
    p[15] = tasks ? tasks : "[]";
    /* the job's link to its gang, for the master's records of its steps
     * (db/migrations/005_numbered_steps.sql) */
    p[16] = alloc && j->state == PHX_JOB_RUNNING && b->fwc ? phx_fwc_id(b->fwc) : NULL;
    p[17] = alloc && p[16] ? j->tasks[0].id : NULL;
    /* output paths, expanded at start (NULL $19: unchanged; NULL $20: with
     * stdout) */
    bool outputs = j->stdout_path && j->start_time >= 0 && j->state == PHX_JOB_RUNNING;
    p[18] = outputs ? j->stdout_path : NULL;
    p[19] = outputs ? j->stderr_path : NULL;
    /* the partition it runs in, of the list it named (-p a,b: sched.c);
     * the list again once requeued */
    p[20] = j->spec.partition;
    /* kept until the requeue is carried out (requeue.c) */
    p[21] = batchd_requeue_name((batchd_requeue_t)j->requeue_asked);
    phx_error_t err;
    int rc = batchd_write_row(b, &batchd_job_state_rows, p, cb, arg, &err);
    if (rc < 0)
        phx_log_errx("job %" PRIu64 ": could not queue its state: %s", j->id, err.text);
    free(tasks);
    free(tpn);
    return rc;
}

void batchd_job_set_state(batchd_t *b, bjob_t *j, phx_job_state_t st,
                          phx_job_reason_t why)
{
    if (j->state == PHX_JOB_PENDING)
        b->npending--;
    else if (j->state == PHX_JOB_RUNNING)
        b->nrunning--;
    if (st == PHX_JOB_PENDING)
        b->npending++;
    else if (st == PHX_JOB_RUNNING)
        b->nrunning++;
    batchd_userlim_move(b, j->uid, j->state, st);
    if (phx_job_state_is_final(j->state) && !phx_job_state_is_final(st))
        live_again(b, j);
    if (st == PHX_JOB_PENDING && j->state != PHX_JOB_PENDING) {
        b->prio_dirty = true; /* requeued */
        if (j->part_list) {   /* of its list of partitions again */
            free(j->spec.partition);
            j->spec.partition = j->part_list;
            j->part_list = NULL;
            j->run_mask_gen = 0;
        }
    }
    phx_job_state_t was = j->state;
    j->state = st;
    j->reason = why;
    batchd_job_persist(b, j);
    batchd_mail_state(b, j, was);
}

/* --- dependencies --- */

typedef struct dep_ctx {
    batchd_t *b;
    bjob_t *j;
} dep_ctx_t;

static int dep_lookup(void *arg, uint64_t job_id, int64_t task, phx_dep_job_t *out)
{
    dep_ctx_t *c = arg;
    bjob_t *o = batchd_job_find(c->b, job_id);
    if (!o)
        return -1;
    if (task >= 0 || !o->array_job_id || o->array_job_id != o->id) {
        if (task >= 0 && !(o = batchd_array_task_find(c->b, job_id, task)))
            return -1; /* one task of the array job_id */
        out->state = o->state;
        out->start_time = o->start_time;
        return 0;
    }
    /* a whole array: the worst state, final only when every task is */
    bool all_final = true, all_ok = true;
    int64_t start = -1;
    phx_job_state_t worst = PHX_JOB_COMPLETED;
    for (size_t i = 0; i < c->b->njobs; i++) {
        bjob_t *x = c->b->order[i];
        if (x->array_job_id != job_id)
            continue;
        if (!phx_job_state_is_final(x->state))
            all_final = false;
        else if (x->state != PHX_JOB_COMPLETED) {
            all_ok = false;
            worst = x->state;
        }
        if (x->start_time >= 0 && (start < 0 || x->start_time < start))
            start = x->start_time;
    }
    out->state = !all_final ? (start >= 0 ? PHX_JOB_RUNNING : PHX_JOB_PENDING)
                            : (all_ok ? PHX_JOB_COMPLETED : worst);
    out->start_time = start;
    return 0;
}

static bool dep_singleton(void *arg)
{
    dep_ctx_t *c = arg;
    for (size_t i = 0; i < c->b->njobs; i++) {
        bjob_t *x = c->b->order[i];
        if (x->id >= c->j->id)
            break;
        if (x->uid == c->j->uid && !phx_job_state_is_final(x->state) &&
            strcmp(x->spec.job_name, c->j->spec.job_name) == 0)
            return false;
    }
    return true;
}

void batchd_dep_env(batchd_t *b, bjob_t *j, phx_dep_env_t *env)
{
    static dep_ctx_t ctx; /* loop thread only; valid until the next call */
    ctx.b = b;
    ctx.j = j;
    env->lookup = dep_lookup;
    env->singleton_clear = dep_singleton;
    env->arg = &ctx;
}

uint32_t batchd_array_running(const batchd_t *b, uint64_t array_job_id)
{
    uint32_t n = 0;
    for (size_t i = b->live_from; i < b->njobs; i++) /* none running before */
        if (b->order[i]->array_job_id == array_job_id &&
            b->order[i]->state == PHX_JOB_RUNNING)
            n++;
    return n;
}
