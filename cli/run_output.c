/* phx run: the ranks' output, whole lines at a time (as srun writes it), each
 * line after "rank: " under --label.  phx run is the only writer of its
 * stdout and stderr, so lines of different ranks can no longer meet in the
 * middle: a rank's partial line waits for its end, for PHX_RUN_LINE_MAX
 * bytes, or for the end of the step. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run.h"

typedef struct pending {
    char *buf;
    size_t len, cap;
} pending_t;

struct phx_run_out {
    int size; /* ranks; output of others is written as it comes */
    bool label;
    int fd[2];        /* stdout, stderr */
    pending_t *lines; /* 2 per rank: a partial line of each stream */
};

phx_run_out_t *phx_run_out_create(int size, bool label, int fd_out, int fd_err)
{
    phx_run_out_t *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->label = label;
    o->fd[0] = fd_out;
    o->fd[1] = fd_err;
    if (size > 0 && (o->lines = calloc((size_t)size * 2, sizeof(*o->lines))) != NULL)
        o->size = size;
    return o;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* stdout gone: the ranks still run to their end */
        p += n;
        len -= (size_t)n;
    }
}

/* Text that ends at a line's end or is the last of a line: every line after
 * its label.  Rank -1 is the agent's or the master's own words: no label. */
static void emit(phx_run_out_t *o, int fd, int rank, const char *s, size_t len)
{
    if (!o->label || rank < 0) {
        write_all(fd, s, len);
        return;
    }
    char prefix[24];
    int plen = snprintf(prefix, sizeof(prefix), "%d: ", rank);
    while (len > 0) {
        const char *nl = memchr(s, '\n', len);
        size_t n = nl ? (size_t)(nl - s) + 1 : len;
        write_all(fd, prefix, (size_t)plen);
        write_all(fd, s, n);
        s += n;
        len -= n;
    }
}

static int keep(pending_t *q, const char *s, size_t len)
{
    if (q->len + len > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        while (cap < q->len + len)
            cap *= 2;
        char *buf = realloc(q->buf, cap);
        if (!buf)
            return -1;
        q->buf = buf;
        q->cap = cap;
    }
    memcpy(q->buf + q->len, s, len);
    q->len += len;
    return 0;
}

void phx_run_out_data(phx_run_out_t *o, int rank, int stream, const uint8_t *data,
                      size_t len)
{
    const char *s = (const char *)data;
    int k = stream == 2 ? 1 : 0;
    if (rank < 0 || rank >= o->size) {
        emit(o, o->fd[k], rank, s, len);
        return;
    }
    pending_t *q = &o->lines[2 * rank + k];
    size_t whole = len; /* up to the last line end */
    while (whole > 0 && s[whole - 1] != '\n')
        whole--;
    if (whole == 0 && q->len + len <= PHX_RUN_LINE_MAX && keep(q, s, len) == 0)
        return;
    if (q->len > 0 && keep(q, s, whole) == 0) {
        emit(o, o->fd[k], rank, q->buf, q->len);
    } else { /* nothing kept, or no memory: write what there is */
        if (q->len > 0)
            emit(o, o->fd[k], rank, q->buf, q->len);
        emit(o, o->fd[k], rank, s, whole);
    }
    q->len = 0;
    s += whole;
    len -= whole;
    if (len > PHX_RUN_LINE_MAX || (len > 0 && keep(q, s, len) < 0))
        emit(o, o->fd[k], rank, s, len);
}

void phx_run_out_flush(phx_run_out_t *o)
{
    for (int i = 0; i < 2 * o->size; i++) {
        if (o->lines[i].len > 0)
            emit(o, o->fd[i % 2], i / 2, o->lines[i].buf, o->lines[i].len);
        o->lines[i].len = 0;
    }
}

void phx_run_out_destroy(phx_run_out_t *o)
{
    if (!o)
        return;
    phx_run_out_flush(o);
    for (int i = 0; i < 2 * o->size; i++)
        free(o->lines[i].buf);
    free(o->lines);
    free(o);
}
