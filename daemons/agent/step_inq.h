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
 * stops reading its standard input.  Nothing is ever dropped.
 *
 * Those bounds are per step; the agent's budget (agent.input_budget) bounds
 * the input of all its steps together.  Every holder is charged what it
 * holds: a queue its buffer, an origin's window the bytes sent and not yet
 * acknowledged by the slowest agent (they may still wait in the agent's
 * link), a receiving agent what it let the origin send.  The origin takes
 * another chunk of `phx run` only while the budget has room, or when the
 * step holds nothing at all (so one chunk each: a step that reads nothing
 * never starves another); a receiving agent lets an origin send past what
 * its ranks took only what the budget has left, at least a chunk, at most
 * the window (STEP_INPUT_ACK's window).  So an agent holds at most about
 * the budget plus a chunk per step. */
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
/* agent.input_budget's default: 16 steps' worth of the per-step bounds. */
#define PHX_STEP_INPUT_BUDGET (16u << 20)
/* -i/--input: every rank, none, else one rank number (>= 0). */
#define PHX_STEP_INPUT_ALL  (-1)
#define PHX_STEP_INPUT_NONE (-2)

/* The agent's budget: the sum of every holder's charge. */
typedef struct phx_step_budget {
    uint64_t limit, used; /* bytes */
} phx_step_budget_t;

/* A holder's *charge (counted in b->used) becomes now. */
void phx_step_budget_charge(phx_step_budget_t *b, uint64_t *charge, uint64_t now);
/* May a step charged `charge` (all its holders) take len more bytes?  While
 * the budget has room, and always when the step holds nothing. */
bool phx_step_budget_room(const phx_step_budget_t *b, uint64_t charge, size_t len);
/* The bytes a receiving agent lets the origin send past what its ranks
 * took, for a step charged `charge`: what the budget has left besides
 * everything else, at least PHX_STEP_INPUT_CHUNK, at most the window. */
uint64_t phx_step_budget_grant(const phx_step_budget_t *b, uint64_t charge);

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
 * [base, end]).  The buffer goes when nothing is left, and shrinks when a
 * quarter of it is used, so that its size (cap, what the budget charges)
 * follows what is held. */
void phx_step_inq_trim(phx_step_inq_t *q, uint64_t off);
void phx_step_inq_clear(phx_step_inq_t *q);

/* The origin's credit window over the other agents that get input. */
typedef struct phx_step_window {
    int n;           /* agents */
    uint64_t sent;   /* bytes sent to each */
    uint64_t *acked; /* per agent: acknowledged, <= sent */
    uint64_t *limit; /* per agent: what it lets be sent (PHX_STEP_INPUT_CHUNK
                      * until its first acknowledgement says more) */
} phx_step_window_t;

/* May len more bytes be sent?  Always with no agent.  No more than the
 * window past the slowest acknowledgement, nor past any agent's limit. */
bool phx_step_window_room(const phx_step_window_t *w, size_t len);
/* Agent i acknowledged everything below off and lets window more bytes be
 * sent (0: it did not say, the whole window; never more): 0, or -1 for an
 * offset past what was sent or an agent out of range (ignored).  An older
 * offset or a lower limit than one seen already changes nothing. */
int phx_step_window_ack(phx_step_window_t *w, int i, uint64_t off, uint64_t window);
/* Bytes sent and not acknowledged by the slowest agent. */
uint64_t phx_step_window_unacked(const phx_step_window_t *w);

#endif
