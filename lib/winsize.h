/* A terminal's size on the wire: {"rows": R, "cols": C}, each 1 to 65535
 * (`phx run --pty`'s STEP_REQUEST "pty", its WINSIZE frames and the
 * agents' STEP_WINSIZE; doc/steps.md, "Terminal").  Pure. */
#ifndef PHX_WINSIZE_H
#define PHX_WINSIZE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/error.h"

#define PHX_WINSIZE_MAX  65535
#define PHX_WINSIZE_ROWS 24 /* when nothing says otherwise */
#define PHX_WINSIZE_COLS 80

typedef struct phx_winsize {
    unsigned rows, cols;
} phx_winsize_t;

/* v must be an object with integer rows and cols in [1, 65535]; 0 and *ws
 * filled, or -1 with err naming what is wrong (ws untouched). */
int phx_winsize_parse(const json_t *v, phx_winsize_t *ws, phx_error_t *err);
/* The object; NULL on ENOMEM. */
json_t *phx_winsize_json(const phx_winsize_t *ws);

/* A terminal's new sizes on their way, the latest only and at most
 * PHX_WINSIZE_RATE a second: what each hop keeps of a step's resizes
 * (phx run, the agent of phx run, the master), so that a terminal resized
 * without end, or a client writing WINSIZE frames in a loop, makes no
 * frames queue anywhere: one size at most waits per step.  Pure: the
 * caller passes the time (monotonic, ms) and arms its own timer. */
#define PHX_WINSIZE_RATE 10
typedef struct phx_winsize_gate {
    phx_winsize_t held; /* the latest size, not sent yet */
    bool holding;
    int64_t next_ms; /* none goes before then */
} phx_winsize_gate_t;
/* Hold ws, in place of the one held. */
void phx_winsize_gate_put(phx_winsize_gate_t *g, const phx_winsize_t *ws);
/* 1 and *ws: the held size goes now (the gate holds none after it, and
 * the next goes 1/PHX_WINSIZE_RATE s later); 0 and *wait_ms: one is held,
 * to take again then; -1: none held. */
int phx_winsize_gate_take(phx_winsize_gate_t *g, int64_t now_ms, phx_winsize_t *ws,
                          int64_t *wait_ms);
/* CLOCK_MONOTONIC in ms, for the above. */
int64_t phx_winsize_now_ms(void);

#endif
