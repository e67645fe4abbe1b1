/* A terminal's size on the wire: {"rows": R, "cols": C}, each 1 to 65535
 * (`phx run --pty`'s STEP_REQUEST "pty", its WINSIZE frames and the
 * agents' STEP_WINSIZE; doc/steps.md, "Terminal").  Pure. */
#ifndef PHX_WINSIZE_H
#define PHX_WINSIZE_H

#include <jansson.h>

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

#endif
