/* phx-agent: the bound on output waiting for one `phx run` client.
 *
 * A client that stops reading (Ctrl-Z, SIGSTOP) while its ranks print made
 * the agent, a root daemon, hold all of their output: a rank printing 1 GB
 * made it hold 1 GB.  Past PHX_STEP_CLIENT_OUTPUT_MAX bytes waiting to be
 * written, the ranks' output for that client is dropped and counted until
 * what waits is down to PHX_STEP_CLIENT_OUTPUT_LOW; the client is then told
 * how much it lost, and output flows again.  Stopping the ranks instead
 * (backpressure through the master) would stall the master's link that
 * carries every other step's traffic (doc/steps.md).  Pure: no I/O. */
#ifndef PHX_AGENT_STEP_BOUND_H
#define PHX_AGENT_STEP_BOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Output frames waiting to be written to one client, at most (bytes, frame
 * headers included; the DONE frame and the loss notice may pass it). */
#define PHX_STEP_CLIENT_OUTPUT_MAX (8u << 20)
/* Dropping stops once what waits is down to this (the write watermark). */
#define PHX_STEP_CLIENT_OUTPUT_LOW (PHX_STEP_CLIENT_OUTPUT_MAX / 2)
/* A local rank's output is read this much at a time.  While the next read
 * would not fit, the agent stops reading the ranks of its own node for at
 * most PHX_STEP_CLIENT_WAIT_SECONDS (they block in write, as on a full
 * terminal) before it reads and drops: an agent reads a pipe faster than
 * it writes a socket, and a client that reads, only later, lost most of a
 * fast rank's output (58 of 100 MB) without that wait. */
#define PHX_STEP_OUTPUT_READ         65536
#define PHX_STEP_CLIENT_WAIT_SECONDS 3

typedef struct phx_step_bound {
    uint64_t lost[2]; /* bytes of stdout, stderr dropped, not yet told */
    bool dropping;    /* since the last drop, until drained to the low mark */
} phx_step_bound_t;

/* May a frame of frame_len bytes, len of them a rank's output on stream
 * (1 stdout, 2 stderr), be queued behind pending bytes?  If not, the len
 * bytes are counted as lost and everything is dropped until
 * phx_step_bound_notice has had its say. */
bool phx_step_bound_admit(phx_step_bound_t *b, size_t pending, size_t frame_len,
                          int stream, size_t len);

/* The line telling the client what was lost, in buf (NUL-terminated), once
 * pending is down to the low mark or at the step's end (end: whatever is
 * pending); its length, or 0 when there is nothing to tell yet.  Telling
 * resets the counts and lets output through again. */
size_t phx_step_bound_notice(phx_step_bound_t *b, size_t pending, bool end, char *buf,
                             size_t size);

#endif
