/* A terminal's size on the wire (winsize.h). */
#include "lib/winsize.h"

#include <time.h>

static int dimension(const json_t *v, const char *key, unsigned *out, phx_error_t *err)
{
    json_t *n = json_object_get(v, key);
    if (!json_is_integer(n))
        return phx_error_set(err, "pty.%s: not an integer", key);
    json_int_t x = json_integer_value(n);
    if (x < 1 || x > PHX_WINSIZE_MAX)
        return phx_error_set(err, "pty.%s: %lld is not between 1 and %d", key,
                             (long long)x, PHX_WINSIZE_MAX);
    *out = (unsigned)x;
    return 0;
}

int phx_winsize_parse(const json_t *v, phx_winsize_t *ws, phx_error_t *err)
{
    phx_winsize_t w;
    if (!json_is_object(v))
        return phx_error_set(err, "pty: not an object");
    if (dimension(v, "rows", &w.rows, err) < 0 ||
        dimension(v, "cols", &w.cols, err) < 0)
        return -1;
    *ws = w;
    return 0;
}

json_t *phx_winsize_json(const phx_winsize_t *ws)
{
    return json_pack("{s:i, s:i}", "rows", (int)ws->rows, "cols", (int)ws->cols);
}

void phx_winsize_gate_put(phx_winsize_gate_t *g, const phx_winsize_t *ws)
{
    g->held = *ws;
    g->holding = true;
}

int phx_winsize_gate_take(phx_winsize_gate_t *g, int64_t now_ms, phx_winsize_t *ws,
                          int64_t *wait_ms)
{
    if (!g->holding)
        return -1;
    if (now_ms < g->next_ms) {
        *wait_ms = g->next_ms - now_ms;
        return 0;
    }
    *ws = g->held;
    g->holding = false;
    g->next_ms = now_ms + 1000 / PHX_WINSIZE_RATE;
    return 1;
}

int64_t phx_winsize_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
