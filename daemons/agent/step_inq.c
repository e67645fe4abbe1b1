/* phx-agent: the queue of a step's input, the origin's credit window and
 * the agent's budget for all of them (step_inq.h).  Pure. */
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
    if (q->len == 0) {
        free(q->buf); /* a step whose input paused holds nothing */
        q->buf = NULL;
        q->cap = 0;
    } else if (q->cap > PHX_STEP_INPUT_CHUNK && q->len <= q->cap / 4) {
        memmove(q->buf, q->buf + q->head, q->len);
        q->head = 0;
        size_t cap = q->cap / 2;
        while (cap > PHX_STEP_INPUT_CHUNK && q->len <= cap / 4)
            cap /= 2;
        uint8_t *buf = realloc(q->buf, cap);
        if (buf) { /* else the larger one stays */
            q->buf = buf;
            q->cap = cap;
        }
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
    if (w->n == 0)
        return true;
    if (phx_step_window_unacked(w) + len > PHX_STEP_INPUT_WINDOW)
        return false;
    for (int i = 0; i < w->n; i++)
        if (w->sent + len > w->limit[i])
            return false;
    return true;
}

int phx_step_window_ack(phx_step_window_t *w, int i, uint64_t off, uint64_t window)
{
    if (i < 0 || i >= w->n || off > w->sent)
        return -1;
    if (off > w->acked[i])
        w->acked[i] = off;
    if (window == 0 || window > PHX_STEP_INPUT_WINDOW)
        window = PHX_STEP_INPUT_WINDOW;
    if (off + window > w->limit[i])
        w->limit[i] = off + window;
    return 0;
}

void phx_step_budget_charge(phx_step_budget_t *b, uint64_t *charge, uint64_t now)
{
    b->used = b->used - *charge + now;
    *charge = now;
}

bool phx_step_budget_room(const phx_step_budget_t *b, uint64_t charge, size_t len)
{
    return charge == 0 || b->used + len <= b->limit;
}

uint64_t phx_step_budget_grant(const phx_step_budget_t *b, uint64_t charge)
{
    uint64_t others = b->used - charge;
    uint64_t left = others < b->limit ? b->limit - others : 0;
    if (left < PHX_STEP_INPUT_CHUNK)
        return PHX_STEP_INPUT_CHUNK;
    return left < PHX_STEP_INPUT_WINDOW ? left : PHX_STEP_INPUT_WINDOW;
}
