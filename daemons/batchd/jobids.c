/* Job ids for submissions, taken from jobs_id_seq in blocks.
 *
 * A submission's INSERT names its ids, so that the INSERTs of submissions
 * that meet in a group commit are one statement (phx_db_store_write_row):
 * RETURNING cannot hand each of them its id back.  The ids come from the
 * same sequence, BLOCK at a time (more for an array larger than that),
 * fetched ahead when fewer than LOW are left; a submission that finds too
 * few waits for the next block, in arrival order.  An array takes its tasks'
 * ids from here too, so that job ids follow the order of submission: an
 * array taking its own from the sequence got ids above the block at hand,
 * and the plain jobs submitted after it lower ones.  Ids still unused when
 * batchd stops are skipped: job ids keep growing, with a gap of at most
 * BLOCK + LOW - 1 after a restart (doc/batchd.md). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "lib/log.h"

#define BLOCK 128
#define LOW   64

typedef struct waiter {
    size_t n; /* ids wanted */
    batchd_jobids_f *ready;
    void *arg;
    struct waiter *next;
} waiter_t;

struct batchd_jobids {
    uint64_t *ids;
    size_t cap;
    size_t head, n; /* ids[head .. head + n) are at hand */
    bool fetching;
    waiter_t *first, *last;
};

static const char BLOCK_SQL[] =
    "SELECT nextval('jobs_id_seq') FROM generate_series(1, $1::int)";

static void fetch(batchd_t *b);

/* Hand ids to the waiters in order while there are enough for the first,
 * then fetch ahead; or fail them all with err. */
static void serve(batchd_t *b, const phx_error_t *err)
{
    batchd_jobids_t *p = b->jobids;
    while (p->first && (err || p->n >= p->first->n)) {
        waiter_t *w = p->first;
        if (!(p->first = w->next))
            p->last = NULL;
        if (err) {
            w->ready(b, NULL, 0, err, w->arg);
        } else {
            const uint64_t *ids = p->ids + p->head;
            p->head += w->n;
            p->n -= w->n;
            w->ready(b, ids, w->n, NULL, w->arg);
        }
        free(w);
    }
    if (!err && (p->n < LOW || p->first))
        fetch(b);
}

static void fetched(const phx_error_t *err, phx_db_result_t *const *res, int n,
                    void *arg)
{
    batchd_t *b = arg;
    batchd_jobids_t *p = b->jobids;
    p->fetching = false;
    phx_error_t e;
    if (!err && (n < 1 || phx_db_result_rows(res[0]) < 1)) {
        phx_error_set(&e, "no job ids from jobs_id_seq");
        err = &e;
    }
    size_t rows = err ? 0 : (size_t)phx_db_result_rows(res[0]);
    if (!err && p->n + rows > p->cap) {
        uint64_t *ids = malloc((p->n + rows) * sizeof(*ids));
        if (!ids) {
            phx_error_set(&e, "out of memory");
            err = &e;
        } else {
            if (p->n)
                memcpy(ids, p->ids + p->head, p->n * sizeof(*ids));
            free(p->ids);
            p->ids = ids;
            p->cap = p->n + rows;
            p->head = 0;
        }
    }
    if (err) {
        phx_log_errx("could not take job ids: %s", err->text);
        if (p->first)
            serve(b, err);
        return;
    }
    memmove(p->ids, p->ids + p->head, p->n * sizeof(*p->ids));
    p->head = 0;
    for (size_t i = 0; i < rows; i++)
        p->ids[p->n++] = strtoull(phx_db_result_get(res[0], (int)i, 0), NULL, 10);
    serve(b, NULL);
}

static void fetch(batchd_t *b)
{
    batchd_jobids_t *p = b->jobids;
    if (p->fetching || !b->store)
        return;
    size_t want = BLOCK;
    if (p->first && p->first->n > p->n && p->first->n - p->n + LOW > want)
        want = p->first->n - p->n + LOW; /* a large array */
    char count[24];
    snprintf(count, sizeof(count), "%zu", want);
    const char *params[] = {count};
    phx_error_t err;
    if (phx_db_store_read(b->store, BLOCK_SQL, 1, params, fetched, b, &err) < 0) {
        phx_log_errx("could not take job ids: %s", err.text);
        serve(b, &err);
        return;
    }
    p->fetching = true;
}

int batchd_jobids_init(batchd_t *b)
{
    if (!(b->jobids = calloc(1, sizeof(*b->jobids))))
        return -1;
    return 0;
}

int batchd_jobids_take(batchd_t *b, size_t n, batchd_jobids_f *ready, void *arg)
{
    batchd_jobids_t *p = b->jobids;
    waiter_t *w = n ? malloc(sizeof(*w)) : NULL;
    if (!w)
        return -1;
    *w = (waiter_t){.n = n, .ready = ready, .arg = arg};
    if (p->last)
        p->last->next = w;
    else
        p->first = w;
    p->last = w;
    serve(b, NULL);
    return 0;
}

void batchd_jobids_destroy(batchd_t *b)
{
    if (!b->jobids)
        return;
    phx_error_t err;
    phx_error_set(&err, "batchd is shutting down");
    b->jobids->fetching = true; /* no more fetches */
    serve(b, &err);
    free(b->jobids->ids);
    free(b->jobids);
    b->jobids = NULL;
}
