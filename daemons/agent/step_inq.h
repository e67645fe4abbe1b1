/* phx-agent: the standard input of a step's ranks (doc/steps.md, "Standard
 * input").  Pure: no I/O, unit-tested (test_agent_step_inq).
 *
 * An agent whose ranks get input keeps one queue per step: the bytes of the
 * input stream from base on, each receiving rank at its own offset (what was
 * written into its pipe), the bytes below every open rank's offset freed.
 * The origin agent (that of `phx run`) keeps, for the other agents that get
 * input, a credit window: it sends at most PHX_STEP_INPUT_WINDOW bytes past
 * the lowest offset an agent acknowledged (STEP_INPUT_ACK: written into its
 * ranks' pipes), and holds at most PHX_STEP_INPUT_LOCAL bytes for its own
 * ranks; past either it stops reading `phx run`'s socket, so that `phx run`
 * stops reading its standard input.  Nothing is ever dropped. */
#ifndef PHX_AGENT_STEP_INQ_H
#define PHX_AGENT_STEP_INQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One INPUT frame of `phx run` carries at most this many bytes. */
#define PHX_STEP_INPUT_CHUNK 65536u
/* Bytes sent to one other agent and not yet acknowledged, at most. */
#define PHX_STEP_INPUT_WINDOW (1u << 20)
/* Bytes the origin agent holds for its own ranks, at most. */
#define PHX_STEP_INPUT_LOCAL (1u << 20)
/* -i/--input: every rank, none, else one rank number (>= 0). */
#define PHX_STEP_INPUT_ALL  (-1)
#define PHX_STEP_INPUT_NONE (-2)

typedef struct phx_step_inq {
    uint8_t *buf;          /* bytes [base, base + len) of the stream at */
    size_t head, len, cap; /* buf + head */
    uint64_t base;         /* stream offset of buf[0] */
    bool eof;              /* the stream ends at base + len */
} phx_step_inq_t;

/* The end of what was received (stream offset). */
uint64_t phx_step_inq_end(const phx_step_inq_t *q);
/* Append len bytes received at stream offset off (which must be the end);
 * eof: the stream ends after them.  -1 (nothing kept) on a gap, an overlap,
 * bytes after the end, or no memory. */
int phx_step_inq_push(phx_step_inq_t *q, uint64_t off, const void *data, size_t len,
                      bool eof);
/* The bytes of the stream from off on (off within [base, end]): *len of
 * them at the returned pointer. */
const uint8_t *phx_step_inq_at(const phx_step_inq_t *q, uint64_t off, size_t *len);
/* Every reader is at or past off: free what is below (off is clamped to
 * [base, end]). */
void phx_step_inq_trim(phx_step_inq_t *q, uint64_t off);
void phx_step_inq_clear(phx_step_inq_t *q);

/* The origin's credit window over the other agents that get input. */
typedef struct phx_step_window {
    int n;           /* agents */
    uint64_t sent;   /* bytes sent to each */
    uint64_t *acked; /* per agent: acknowledged, <= sent */
} phx_step_window_t;

/* May len more bytes be sent?  Always with no agent. */
bool phx_step_window_room(const phx_step_window_t *w, size_t len);
/* Agent i acknowledged everything below off: 0, or -1 for an offset past
 * what was sent or an agent out of range (ignored).  An older offset than
 * one seen already changes nothing. */
int phx_step_window_ack(phx_step_window_t *w, int i, uint64_t off);
/* Bytes sent and not acknowledged by the slowest agent. */
uint64_t phx_step_window_unacked(const phx_step_window_t *w);

#endif
