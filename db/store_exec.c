/* The DB thread's side of the store: one libpq connection in pipeline mode,
 * prepared statements cached per SQL text, group commit with isolation of a
 * failing request. */
#include "db/store_internal.h"
#include "lib/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_BUCKETS    256
#define CACHE_MAX        4096 /* beyond this, statements run unnamed */
#define SPLIT_ROUNDS     4    /* then one transaction per request */
#define PLANS_MAX_AGE_MS 1000

const char *phx_db_plans_sql = "DISCARD PLANS";

/* ---- prepared statement cache ---- */

typedef struct cache_entry {
    struct cache_entry *next;
    char *sql;
    char name[24];
    bool ready; /* the server has it */
} cache_entry_t;

struct stmt_cache {
    cache_entry_t *buckets[CACHE_BUCKETS];
    size_t count;
    unsigned long serial;
};

static unsigned hash_sql(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % CACHE_BUCKETS;
}

static cache_entry_t *cache_find(stmt_cache_t *c, const char *sql)
{
    for (cache_entry_t *e = c->buckets[hash_sql(sql)]; e; e = e->next)
        if (strcmp(e->sql, sql) == 0)
            return e;
    return NULL;
}

static cache_entry_t *cache_add(stmt_cache_t *c, const char *sql)
{
    if (c->count >= CACHE_MAX)
        return NULL;
    cache_entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->sql = strdup(sql))) {
        free(e);
        return NULL;
    }
    snprintf(e->name, sizeof(e->name), "phx_%lu", ++c->serial);
    unsigned b = hash_sql(sql);
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->count++;
    return e;
}

static void cache_remove(stmt_cache_t *c, cache_entry_t *gone)
{
    for (cache_entry_t **p = &c->buckets[hash_sql(gone->sql)]; *p; p = &(*p)->next) {
        if (*p == gone) {
            *p = gone->next;
            free(gone->sql);
            free(gone);
            c->count--;
            return;
        }
    }
}

static void cache_clear(stmt_cache_t *c)
{
    for (int b = 0; b < CACHE_BUCKETS; b++) {
        while (c->buckets[b]) {
            cache_entry_t *e = c->buckets[b];
            c->buckets[b] = e->next;
            free(e->sql);
            free(e);
        }
    }
    c->count = 0;
}

/* ---- session ---- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    phx_log_debug("database: %.*s", (int)strcspn(message, "\n"), message);
}

int phx_db_session_open(db_session_t *s, const char *dsn, phx_error_t *err)
{
    if (!s->cache && !(s->cache = calloc(1, sizeof(*s->cache))))
        return phx_error_set(err, "out of memory");
    s->pg = phx_db_pq_connect(dsn, "phalanx-store", err);
    if (!s->pg)
        return -1;
    PQsetNoticeProcessor(s->pg, quiet_notices, NULL);
    /* Generic plans for every prepared statement, made again each second
     * (plans_refresh): the many-row statements used to be planned at every
     * execution (a custom plan, sized by their arrays), 0.14 ms of the
     * 0.3 ms of six jobs' UPDATE (measured; 0.025 ms with a generic plan).
     * The store's statements name rows by key, where a generic plan is as
     * good as a custom one. */
    PGresult *gp = PQexec(s->pg, "SET plan_cache_mode = force_generic_plan");
    if (PQresultStatus(gp) != PGRES_COMMAND_OK)
        phx_log_warnx("database: could not set plan_cache_mode: %s",
                      PQresultErrorMessage(gp));
    PQclear(gp);
    if (PQenterPipelineMode(s->pg) != 1 || PQsetnonblocking(s->pg, 1) != 0) {
        phx_db_set_pg_error(err, "could not enter pipeline mode", NULL, s->pg, "08000");
        PQfinish(s->pg);
        s->pg = NULL;
        return -1;
    }
    return 0;
}

void phx_db_session_close(db_session_t *s)
{
    if (s->pg)
        PQfinish(s->pg);
    s->pg = NULL;
    if (s->cache)
        cache_clear(s->cache);
    phx_db_rows_plan_clear(&s->plan);
    free(s->plan.runs);
    s->plan = (row_plan_t){0};
}

bool phx_db_session_check(db_session_t *s)
{
    if (!s->pg)
        return false;
    /* A server that ended the session (restart, pg_terminate_backend) sent
     * an error and closed its end: reconnect now rather than fail a batch. */
    struct pollfd p = {.fd = PQsocket(s->pg), .events = POLLIN | POLLRDHUP};
    bool dead = false;
    if (poll(&p, 1, 0) > 0) {
        dead = (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
        if (!dead && (p.revents & POLLIN))
            dead = !PQconsumeInput(s->pg) || PQstatus(s->pg) != CONNECTION_OK;
    }
    if (dead) {
        phx_log_warnx("database connection closed while idle; reconnecting");
        phx_db_session_close(s);
        return false;
    }
    return true;
}

/* ---- one pipeline ---- */

typedef enum op_kind {
    OP_DISCARD, /* DISCARD PLANS, in a segment of its own: a failure only logged */
    OP_BEGIN,
    OP_FENCE,
    OP_PREPARE,
    OP_STMT,
    OP_SYNC,
} op_kind_t;

typedef struct op {
    op_kind_t kind;
    request_t *req; /* OP_STMT, OP_PREPARE (the statement that needs it) */
    int stmt;
    cache_entry_t *entry; /* OP_PREPARE */
    int run;              /* OP_STMT of a many-row statement: its run, else -1 */
} op_t;

typedef struct pipeline {
    op_t *ops;
    size_t n, cap;
    bool send_failed;
} pipeline_t;

static void push_op(pipeline_t *p, op_kind_t kind, request_t *req, int stmt,
                    cache_entry_t *entry)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        op_t *ops = realloc(p->ops, cap * sizeof(*ops));
        if (!ops) {
            p->send_failed = true;
            return;
        }
        p->ops = ops;
        p->cap = cap;
    }
    p->ops[p->n++] = (op_t){kind, req, stmt, entry, -1};
}

static void send_plain(db_session_t *s, pipeline_t *p, const char *sql, op_kind_t kind)
{
    if (!PQsendQueryParams(s->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
        p->send_failed = true;
    push_op(p, kind, NULL, 0, NULL);
}

/* Prepared once per SQL text (cached; beyond CACHE_MAX, unnamed: planned at
 * every execution). */
static void send_stmt(db_session_t *s, pipeline_t *p, const stmt_t *st, op_kind_t kind,
                      request_t *req, int idx)
{
    const char *const *params = (const char *const *)st->params;
    cache_entry_t *e = cache_find(s->cache, st->sql);
    if (!e && (e = cache_add(s->cache, st->sql)) != NULL) {
        if (!PQsendPrepare(s->pg, e->name, st->sql, st->nparams, NULL))
            p->send_failed = true;
        push_op(p, OP_PREPARE, req, idx, e);
    }
    int ok =
        e ? PQsendQueryPrepared(s->pg, e->name, st->nparams, params, NULL, NULL, 0)
          : PQsendQueryParams(s->pg, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
    if (!ok)
        p->send_failed = true;
    push_op(p, kind, req, idx, NULL);
}

static void send_sync(db_session_t *s, pipeline_t *p)
{
    if (!PQpipelineSync(s->pg))
        p->send_failed = true;
    push_op(p, OP_SYNC, NULL, 0, NULL);
}

/* Flush everything, reading input meanwhile so neither side can block on a
 * full socket buffer (libpq's documented pipeline pattern). */
static int flush_pipeline(db_session_t *s)
{
    for (;;) {
        int r = PQflush(s->pg);
        if (r <= 0)
            return r;
        struct pollfd p = {.fd = PQsocket(s->pg), .events = POLLIN | POLLOUT};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return -1;
        if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(s->pg))
            return -1;
    }
}

/* The result of the next queued command, NULL if the connection failed. */
static PGresult *next_result(PGconn *pg)
{
    PGresult *r = PQgetResult(pg);
    if (!r || PQresultStatus(r) == PGRES_PIPELINE_SYNC)
        return r;
    PGresult *extra;
    while (PQstatus(pg) == CONNECTION_OK && (extra = PQgetResult(pg)) != NULL)
        PQclear(extra);
    return r;
}

typedef enum seg_status {
    SEG_OK,
    SEG_ALL_FAIL, /* begin or fence failed: every request fails, no retry */
    SEG_REQ_FAIL, /* one request failed: fail it, retry the others */
    SEG_RUN_FAIL, /* a many-row statement failed: retry its rows alone */
    SEG_COMMIT_FAIL,
    SEG_LOST,
} seg_status_t;

typedef struct outcome {
    seg_status_t status;
    request_t *culprit; /* SEG_REQ_FAIL */
    int run;            /* SEG_RUN_FAIL */
    size_t merged;      /* rows written by many-row statements */
    phx_error_t err;
} outcome_t;

static void set_lost(db_session_t *s, outcome_t *o, const PGresult *r)
{
    o->status = SEG_LOST;
    phx_db_set_pg_error(&o->err, "connection to the database was lost", r, s->pg,
                        "08006");
}

static void describe_failure(outcome_t *o, const op_t *op, const PGresult *r,
                             const stmt_t *fence, const row_plan_t *plan)
{
    char excerpt[72], prefix[160];
    if (op->run >= 0) {
        const row_run_t *run = &plan->runs[op->run];
        snprintf(prefix, sizeof(prefix), "statement for %zu rows \"%s\" failed", run->n,
                 phx_db_sql_excerpt(run->kind->many, excerpt, sizeof(excerpt)));
    } else if (op->kind == OP_BEGIN) {
        snprintf(prefix, sizeof(prefix), "could not begin transaction");
    } else if (op->kind == OP_FENCE || !op->req) {
        snprintf(prefix, sizeof(prefix), "fence \"%s\" failed",
                 phx_db_sql_excerpt(fence->sql, excerpt, sizeof(excerpt)));
    } else if (op->req->nstmts > 1) {
        snprintf(
            prefix, sizeof(prefix), "statement %d of %d \"%s\" failed", op->stmt + 1,
            op->req->nstmts,
            phx_db_sql_excerpt(op->req->stmts[op->stmt].sql, excerpt, sizeof(excerpt)));
    } else {
        snprintf(
            prefix, sizeof(prefix), "statement \"%s\" failed",
            phx_db_sql_excerpt(op->req->stmts[op->stmt].sql, excerpt, sizeof(excerpt)));
    }
    phx_db_set_pg_error(&o->err, prefix, r, NULL, NULL);
    o->status = op->req ? SEG_REQ_FAIL : SEG_ALL_FAIL;
    o->culprit = op->req;
}

/* A returning kind's many-row statement: mark the rows whose key came back
 * (usually in the run's order: each search starts after the last found). */
static void mark_written(const row_run_t *run, const PGresult *r)
{
    if (!run->kind->returns || run->n == 0)
        return;
    size_t at = 0;
    for (int t = 0; t < PQntuples(r); t++) {
        const char *key = PQgetvalue(r, t, 0);
        for (size_t k = 0; k < run->n; k++) {
            request_t *row = run->rows[(at + k) % run->n];
            const char *mine = row->stmts[0].params[0];
            if (mine && strcmp(mine, key) == 0) {
                row->written = true;
                at = (at + k + 1) % run->n;
                break;
            }
        }
    }
}

/* Read the results of every op.  Statement results go to their requests;
 * the first failure is described in o.  Returns false if the connection was
 * lost. */
static bool read_results(db_session_t *s, pipeline_t *p, outcome_t *o)
{
    for (size_t i = 0; i < p->n; i++) {
        op_t *op = &p->ops[i];
        PGresult *r = next_result(s->pg);
        if (!r || PQstatus(s->pg) != CONNECTION_OK) {
            set_lost(s, o, r);
            PQclear(r);
            return false;
        }
        ExecStatusType st = PQresultStatus(r);
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (op->kind == OP_DISCARD) {
            if (!ok) /* the plans stay as they were; the writes go on */
                phx_log_warnx("database: DISCARD PLANS failed: %s",
                              PQresultErrorMessage(r));
            PQclear(r);
            continue;
        }
        if (op->kind == OP_PREPARE) {
            if (ok)
                op->entry->ready = true;
            else
                cache_remove(s->cache, op->entry);
        }
        if (st == PGRES_FATAL_ERROR && o->status == SEG_OK) {
            describe_failure(o, op, r, s->fence, &s->plan);
            if (op->run >= 0) {
                o->status = SEG_RUN_FAIL;
                o->run = op->run;
            }
        }
        if (op->run >= 0 && op->kind == OP_STMT) {
            if (ok)
                mark_written(&s->plan.runs[op->run], r);
            PQclear(r); /* the rows' callbacks get no results */
            continue;
        }
        if (op->kind == OP_STMT && ok && op->req->rows)
            op->req->written = PQntuples(r) > 0;
        if (op->kind == OP_FENCE && ok && PQntuples(r) == 0 && o->status == SEG_OK) {
            char excerpt[72];
            o->status = SEG_ALL_FAIL;
            phx_db_set_state_error(
                &o->err, PHX_DB_SQLSTATE_FENCE, "fence \"%s\" returned no row",
                phx_db_sql_excerpt(s->fence->sql, excerpt, sizeof(excerpt)));
        }
        if (op->kind == OP_STMT && ok) {
            op->req->resv[op->stmt].pg = r;
            continue;
        }
        PQclear(r);
    }
    return true;
}

static void reset_pipeline(pipeline_t *p)
{
    p->n = 0;
    p->send_failed = false;
}

/* Send what p holds and read it back.  False if the connection was lost. */
static bool round_trip(db_session_t *s, pipeline_t *p, outcome_t *o)
{
    if (p->send_failed || flush_pipeline(s) < 0) {
        set_lost(s, o, NULL);
        return false;
    }
    return read_results(s, p, o);
}

/* Finish the open transaction with COMMIT (if o is still OK) or ROLLBACK. */
static void finish_txn(db_session_t *s, pipeline_t *p, outcome_t *o)
{
    bool commit = o->status == SEG_OK;
    reset_pipeline(p);
    send_plain(s, p, commit ? "COMMIT" : "ROLLBACK", OP_BEGIN);
    send_sync(s, p);
    if (p->send_failed || flush_pipeline(s) < 0) {
        set_lost(s, o, NULL);
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        PGresult *r = next_result(s->pg);
        if (!r || PQstatus(s->pg) != CONNECTION_OK) {
            set_lost(s, o, r);
            PQclear(r);
            return;
        }
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
                  strcmp(PQcmdStatus(r), commit ? "COMMIT" : "ROLLBACK") == 0;
        if (i == 0 && commit && !ok) {
            o->status = SEG_COMMIT_FAIL;
            phx_db_set_pg_error(&o->err, "could not commit transaction", r, s->pg,
                                NULL);
        }
        PQclear(r);
    }
}

/* The session's plans are made again (DISCARD PLANS, ahead of the
 * transaction in the same pipeline, in a segment of its own so that its
 * failure fails no write) when older than PLANS_MAX_AGE_MS: generic plans
 * (phx_db_session_open) follow the tables' sizes, which the planner reads
 * at planning time; a replan a second costs far less than the custom plan
 * of every many-row statement did. */
static void plans_refresh(db_session_t *s, pipeline_t *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (s->plans_at && now - s->plans_at < PLANS_MAX_AGE_MS)
        return;
    s->plans_at = now;
    send_plain(s, p, phx_db_plans_sql, OP_DISCARD);
    send_sync(s, p);
}

/* The many-row statement of a run, written where its last row is. */
static void send_run(db_session_t *s, pipeline_t *p, int run, outcome_t *o)
{
    const row_run_t *r = &s->plan.runs[run];
    request_t *last = r->rows[r->n - 1];
    if (r->n == 1) {
        send_stmt(s, p, &last->stmts[0], OP_STMT, last, 0);
        return;
    }
    stmt_t many;
    if (phx_db_rows_stmt(r, &many) < 0) {
        /* Out of memory for the arrays: the rows one by one, here. */
        for (size_t i = 0; i < r->n; i++)
            send_stmt(s, p, &r->rows[i]->stmts[0], OP_STMT, r->rows[i], 0);
        return;
    }
    /* Prepared, its generic plan made for the table's size at most
     * PLANS_MAX_AGE_MS ago (plans_refresh): a plan made once for a table
     * that was empty then (a seq scan) is not kept as it grows. */
    size_t first = p->n;
    send_stmt(s, p, &many, OP_STMT, last, 0);
    for (size_t i = first; i < p->n; i++)
        p->ops[i].run = run; /* its PREPARE too: a failure is the run's */
    phx_db_stmt_free(&many); /* libpq has copied it */
    o->merged += r->n;
}

/* One write transaction over reqs: BEGIN, fence, statements, Sync; then,
 * having seen every result, COMMIT or ROLLBACK.  Two round trips whatever
 * the group size. */
static void run_write_txn(db_session_t *s, pipeline_t *p, request_t **reqs, size_t n,
                          outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    reset_pipeline(p);
    phx_db_rows_plan(&s->plan, reqs, n); /* on ENOMEM every row goes alone */
    plans_refresh(s, p);
    send_plain(s, p, "BEGIN", OP_BEGIN);
    if (s->fence)
        send_stmt(s, p, s->fence, OP_FENCE, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        int run = reqs[i]->run;
        if (run >= 0) {
            if (s->plan.runs[run].last == i)
                send_run(s, p, run, o);
            continue;
        }
        for (int j = 0; j < reqs[i]->nstmts; j++)
            send_stmt(s, p, &reqs[i]->stmts[j], OP_STMT, reqs[i], j);
    }
    send_sync(s, p);
    if (!round_trip(s, p, o))
        return;
    finish_txn(s, p, o);
}

static void fail_request(request_t *req, const phx_error_t *err)
{
    phx_db_request_clear_results(req);
    req->failed = true;
    req->err = *err;
}

static void lost(db_session_t *s, request_t **reqs, size_t n, const outcome_t *o)
{
    for (size_t i = 0; i < n; i++)
        fail_request(reqs[i], &o->err);
    s->delta.failed += n;
    phx_db_session_close(s);
}

static void committed(db_session_t *s, size_t n, const outcome_t *o)
{
    s->delta.transactions++;
    s->delta.committed += n;
    s->delta.rows_merged += o->merged;
    if (n > s->delta.max_group)
        s->delta.max_group = n;
}

/* A bad row is expected now and then (it then fails alone); a many-row
 * statement that fails every time is a bug worth seeing: say so, at most once
 * a minute. */
static void warn_run_failed(db_session_t *s, const row_run_t *run,
                            const phx_error_t *err)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s->run_warned_at != 0 && now.tv_sec - s->run_warned_at < 60)
        return;
    s->run_warned_at = now.tv_sec;
    phx_log_warnx("database: %s; writing its %zu rows one by one", err->text, run->n);
}

/* Commit reqs as one group.  When one request fails, deliver its error and
 * re-run the others (so it fails alone); after SPLIT_ROUNDS such rounds, or
 * if COMMIT itself fails, fall back to one transaction per request.
 * Returns -1 if the connection was lost. */
static int run_writes(db_session_t *s, pipeline_t *p, request_t **live, size_t n)
{
    outcome_t o;
    for (int round = 0; n > 0 && round < SPLIT_ROUNDS; round++) {
        run_write_txn(s, p, live, n, &o);
        if (o.status == SEG_OK) {
            committed(s, n, &o);
            return 0;
        }
        if (o.status == SEG_RUN_FAIL) {
            /* Not a round: each such failure takes rows out of merging. */
            /* Every row of its kind: so that one kind costs one retry, not
             * one per run (a many-row form that never works). */
            const row_run_t *run = &s->plan.runs[o.run];
            warn_run_failed(s, run, &o.err);
            for (size_t i = 0; i < n; i++)
                if (live[i]->rows == run->kind)
                    live[i]->unmerged = true;
            for (size_t i = 0; i < n; i++)
                phx_db_request_clear_results(live[i]);
            s->delta.group_retries++;
            round--;
            continue;
        }
        if (o.status == SEG_LOST) {
            lost(s, live, n, &o);
            return -1;
        }
        if (o.status == SEG_ALL_FAIL || n == 1) {
            for (size_t i = 0; i < n; i++)
                fail_request(live[i], &o.err);
            s->delta.failed += n;
            return 0;
        }
        for (size_t i = 0; i < n; i++)
            phx_db_request_clear_results(live[i]);
        s->delta.group_retries++;
        if (o.status == SEG_COMMIT_FAIL)
            break;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (live[i] == o.culprit)
                fail_request(live[i], &o.err);
            else
                live[k++] = live[i];
        }
        s->delta.failed += n - k;
        n = k;
    }
    for (size_t i = 0; i < n; i++) {
        run_write_txn(s, p, &live[i], 1, &o);
        if (o.status == SEG_LOST) {
            lost(s, &live[i], n - i, &o);
            return -1;
        }
        if (o.status == SEG_OK) {
            committed(s, 1, &o);
        } else {
            fail_request(live[i], &o.err);
            s->delta.failed++;
        }
    }
    return 0;
}

/* Every read is its own implicit transaction (statement, Sync), all in one
 * round trip; an error ends at its Sync and spares the others. */
static int run_reads(db_session_t *s, pipeline_t *p, request_t **reads, size_t n)
{
    outcome_t o = {0};
    reset_pipeline(p);
    for (size_t i = 0; i < n; i++) {
        send_stmt(s, p, &reads[i]->stmts[0], OP_STMT, reads[i], 0);
        send_sync(s, p);
    }
    if (p->send_failed || flush_pipeline(s) < 0) {
        set_lost(s, &o, NULL);
        lost(s, reads, n, &o);
        return -1;
    }
    size_t i = 0, done = 0;
    for (size_t opi = 0; opi < p->n; opi++) {
        pipeline_t one = {.ops = &p->ops[opi], .n = 1, .cap = 1};
        outcome_t mine = {0};
        if (!read_results(s, &one, &mine)) {
            lost(s, reads + done, n - done, &mine);
            return -1;
        }
        if (p->ops[opi].kind != OP_SYNC) {
            if (mine.status != SEG_OK && !reads[i]->failed)
                fail_request(reads[i], &mine.err);
            continue;
        }
        s->delta.failed += reads[i]->failed;
        s->delta.reads += !reads[i]->failed;
        i++;
        done = i;
    }
    return 0;
}

int phx_db_session_run(db_session_t *s, request_t **writes, size_t nwrites,
                       request_t **reads, size_t nreads)
{
    pipeline_t p = {0};
    int rc = 0;
    if (nwrites > 0)
        rc = run_writes(s, &p, writes, nwrites);
    if (nreads > 0) {
        if (rc == 0) {
            rc = run_reads(s, &p, reads, nreads);
        } else {
            outcome_t o = {0};
            phx_db_set_state_error(&o.err, "08006",
                                   "connection to the database was lost");
            for (size_t i = 0; i < nreads; i++)
                fail_request(reads[i], &o.err);
            s->delta.failed += nreads;
        }
    }
    free(p.ops);
    return rc;
}
