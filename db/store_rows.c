/* Row writes of one kind merged into one many-row statement per run (see
 * phx_db_rows_t in store.h).  DB thread only. */
#include "db/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A run is closed at these bounds and the next row starts another. */
#define RUN_MAX_ROWS  256
#define RUN_MAX_BYTES (1u << 20)

static bool same_key(const request_t *a, const request_t *b, int nkeys)
{
    for (int k = 0; k < nkeys; k++) {
        const char *x = a->stmts[0].params[k], *y = b->stmts[0].params[k];
        if (x != y && (!x || !y || strcmp(x, y) != 0))
            return false;
    }
    return true;
}

static bool has_key(const row_run_t *run, const request_t *r)
{
    for (size_t i = 0; i < run->n; i++)
        if (same_key(run->rows[i], r, run->kind->nkeys))
            return true;
    return false;
}

static size_t row_bytes(const request_t *r)
{
    size_t n = 0;
    for (int k = 0; k < r->stmts[0].nparams; k++)
        n += r->stmts[0].params[k] ? strlen(r->stmts[0].params[k]) : 0;
    return n;
}

static row_run_t *open_run_of(row_plan_t *plan, const phx_db_rows_t *kind)
{
    for (size_t i = 0; i < plan->n; i++)
        if (plan->runs[i].open && plan->runs[i].kind == kind)
            return &plan->runs[i];
    return NULL;
}

static row_run_t *new_run(row_plan_t *plan, const phx_db_rows_t *kind)
{
    if (plan->n == plan->cap) {
        size_t cap = plan->cap ? 2 * plan->cap : 8;
        row_run_t *runs = realloc(plan->runs, cap * sizeof(*runs));
        if (!runs)
            return NULL;
        plan->runs = runs;
        plan->cap = cap;
    }
    row_run_t *run = &plan->runs[plan->n++];
    *run = (row_run_t){.kind = kind, .open = true};
    return run;
}

static int add_row(row_run_t *run, request_t *r, size_t index, size_t bytes)
{
    if (run->n == run->cap) {
        size_t cap = run->cap ? 2 * run->cap : 16;
        request_t **rows = realloc(run->rows, cap * sizeof(*rows));
        if (!rows)
            return -1;
        run->rows = rows;
        run->cap = cap;
    }
    run->rows[run->n++] = r;
    run->bytes += bytes;
    run->last = index;
    return 0;
}

void phx_db_rows_plan_clear(row_plan_t *plan)
{
    for (size_t i = 0; i < plan->n; i++)
        free(plan->runs[i].rows);
    plan->n = 0;
}

int phx_db_rows_plan(row_plan_t *plan, request_t **reqs, size_t n)
{
    phx_db_rows_plan_clear(plan);
    for (size_t i = 0; i < n; i++)
        reqs[i]->run = -1;
    for (size_t i = 0; i < n; i++) {
        request_t *r = reqs[i];
        /* Rows written alone are never behind a run of their key: a failed
         * many-row statement makes every row of its kind in the group alone
         * (run_writes), so no run of that kind is left. */
        if (!r->rows || r->unmerged)
            continue;
        row_run_t *run = open_run_of(plan, r->rows);
        size_t bytes = row_bytes(r);
        if (run && (run->n >= RUN_MAX_ROWS || run->bytes + bytes > RUN_MAX_BYTES ||
                    has_key(run, r))) {
            run->open = false;
            run = NULL;
        }
        if ((!run && !(run = new_run(plan, r->rows))) ||
            add_row(run, r, i, bytes) < 0) {
            phx_db_rows_plan_clear(plan);
            for (size_t k = 0; k < n; k++)
                reqs[k]->run = -1;
            errno = ENOMEM;
            return -1;
        }
        r->run = (int)(run - plan->runs);
    }
    return 0;
}

/* {"v1",NULL,"v\"2"}: every value quoted, so that no text needs more. */
static char *array_literal(const row_run_t *run, int k)
{
    size_t len = 3;
    for (size_t i = 0; i < run->n; i++) {
        const char *v = run->rows[i]->stmts[0].params[k];
        len += v ? 2 * strlen(v) + 3 : 5;
    }
    char *s = malloc(len), *o = s;
    if (!s)
        return NULL;
    *o++ = '{';
    for (size_t i = 0; i < run->n; i++) {
        const char *v = run->rows[i]->stmts[0].params[k];
        if (i > 0)
            *o++ = ',';
        if (!v) {
            memcpy(o, "NULL", 4);
            o += 4;
            continue;
        }
        *o++ = '"';
        for (; *v; v++) {
            if (*v == '"' || *v == '\\')
                *o++ = '\\';
            *o++ = *v;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return s;
}

int phx_db_rows_stmt(const row_run_t *run, stmt_t *out)
{
    int np = run->kind->nparams;
    memset(out, 0, sizeof(*out));
    if (!(out->sql = strdup(run->kind->many)) ||
        !(out->params = calloc((size_t)np, sizeof(*out->params)))) {
        phx_db_stmt_free(out);
        errno = ENOMEM;
        return -1;
    }
    out->nparams = np;
    for (int k = 0; k < np; k++) {
        if (!(out->params[k] = array_literal(run, k))) {
            phx_db_stmt_free(out);
            errno = ENOMEM;
            return -1;
        }
    }
    return 0;
}
