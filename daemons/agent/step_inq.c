/* phx-agent: the queue of a step's input and the origin's credit window
 * (step_inq.h).  Pure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/agent/step_inq.h"

uint64_t phx_step_inq_end(const phx_step_inq_t *q)
{
    return q->base + q->len;
}

int phx_step_inq_push(phx_step_inq_t *q, uint64_t off, const void *data, size_t len,
                      bool eof)
{
    if (off != phx_step_inq_end(q) || (q->eof && len > 0)) {
        errno = EPROTO;
        return -1;
    }
    if (len > 0 && q->head + q->len + len > q->cap && q->head > 0) {
        memmove(q->buf, q->buf + q->head, q->len); /* what was written goes */
        q->head = 0;
    }
    if (len > 0 && q->len + len > q->cap) {
        size_t cap = q->cap ? q->cap : 65536;
        while (cap < q->len + len)
            cap *= 2;
        uint8_t *buf = realloc(q->buf, cap);
        if (!buf)
            return -1;
        q->buf = buf;
        q->cap = cap;
    }
    if (len > 0)
        memcpy(q->buf + q->head + q->len, data, len);
    q->len += len;
    q->eof = q->eof || eof;
    return 0;
}

const uint8_t *phx_step_inq_at(const phx_step_inq_t *q, uint64_t off, size_t *len)
{
    if (off < q->base || off >= phx_step_inq_end(q)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)(phx_step_inq_end(q) - off);
    return q->buf + q->head + (off - q->base);
}

void phx_step_inq_trim(phx_step_inq_t *q, uint64_t off)
{
    if (off <= q->base)
        return;
    size_t drop = off >= phx_step_inq_end(q) ? q->len : (size_t)(off - q->base);
    q->base += drop;
    q->len -= drop;
    q->head = q->len > 0 ? q->head + drop : 0; /* moved down when room is needed */
    if (q->len == 0 && q->cap > PHX_STEP_INPUT_CHUNK) {
        free(q->buf); /* a step whose input paused holds nothing */
        q->buf = NULL;
        q->cap = 0;
    }
}

void phx_step_inq_clear(phx_step_inq_t *q)
{
    free(q->buf);
    q->buf = NULL;
    q->head = q->len = q->cap = 0;
}

uint64_t phx_step_window_unacked(const phx_step_window_t *w)
{
    uint64_t low = w->sent;
    for (int i = 0; i < w->n; i++)
        if (w->acked[i] < low)
            low = w->acked[i];
    return w->sent - low;
}

bool phx_step_window_room(const phx_step_window_t *w, size_t len)
{
    return w->n == 0 || phx_step_window_unacked(w) + len <= PHX_STEP_INPUT_WINDOW;
}

int phx_step_window_ack(phx_step_window_t *w, int i, uint64_t off)
{
    if (i < 0 || i >= w->n || off > w->sent)
        return -1;
    if (off > w->acked[i])
        w->acked[i] = off;
    return 0;
}
