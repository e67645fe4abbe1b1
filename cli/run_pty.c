/* phx run --pty: rank 0 runs on a pseudo-terminal of its node (doc/steps.md,
 * "Terminal").  Here, the client's side: when its stdin is a terminal, that
 * terminal is put in raw mode for the step (restored at exit, and by the
 * signals that end phx run), so that every key, Ctrl-C included, goes to
 * the remote terminal as typed; its size goes with the request and again
 * on SIGWINCH (WINSIZE frames).  When stdin is not a terminal the size is
 * LINES x COLUMNS, or 24 x 80. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli/run.h"
#include "lib/wire.h"

static struct {
    bool raw;             /* stdin is a terminal in raw mode */
    struct termios saved; /* as it was */
    sigset_t poll_mask;   /* the mask while waiting: SIGWINCH let in */
    volatile sig_atomic_t resized;
} term;

static unsigned dimension(const char *v, unsigned dflt)
{
    char *end;
    if (!v || !*v)
        return dflt;
    errno = 0;
    long n = strtol(v, &end, 10);
    return errno || *end || n < 1 || n > PHX_WINSIZE_MAX ? dflt : (unsigned)n;
}

void phx_run_pty_size(int fd, const char *lines, const char *columns, phx_winsize_t *ws)
{
    struct winsize w = {0};
    ws->rows = dimension(lines, PHX_WINSIZE_ROWS);
    ws->cols = dimension(columns, PHX_WINSIZE_COLS);
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &w) == 0) {
        if (w.ws_row > 0)
            ws->rows = w.ws_row;
        if (w.ws_col > 0)
            ws->cols = w.ws_col;
    }
}

void phx_run_pty_restore(void)
{
    if (term.raw)
        tcsetattr(0, TCSAFLUSH, &term.saved);
    term.raw = false;
}

/* The terminal back as it was, then the signal's own action. */
static void on_fatal(int sig)
{
    if (term.raw)
        tcsetattr(0, TCSAFLUSH, &term.saved);
    signal(sig, SIG_DFL);
    raise(sig); /* taken once this handler returns */
}

static void on_winch(int sig)
{
    (void)sig;
    term.resized = 1;
}

bool phx_run_pty_start(phx_winsize_t *ws)
{
    bool tty = isatty(0) && tcgetattr(0, &term.saved) == 0;
    phx_run_pty_size(tty ? 0 : -1, getenv("LINES"), getenv("COLUMNS"), ws);
    if (!tty)
        return false;
    static const int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    struct sigaction sa = {.sa_handler = on_fatal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        sigaction(fatal[i], &sa, NULL);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, NULL);
    /* SIGWINCH only while poll waits (ppoll): none is missed between a
     * check of the flag and the wait */
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, &term.poll_mask);
    sigdelset(&term.poll_mask, SIGWINCH);
    struct termios raw = term.saved;
    cfmakeraw(&raw);
    /* the output of the other ranks and phx run's own messages are lines:
     * keep "\n" a new line on this terminal, as srun does */
    raw.c_oflag |= OPOST;
    term.raw = tcsetattr(0, TCSAFLUSH, &raw) == 0;
    atexit(phx_run_pty_restore);
    if (!term.raw)
        fprintf(stderr, "phx run: could not put the terminal in raw mode: %s\n",
                strerror(errno));
    return term.raw;
}

const sigset_t *phx_run_pty_poll_mask(void)
{
    return term.raw ? &term.poll_mask : NULL;
}

bool phx_run_pty_resized(phx_winsize_t *ws)
{
    if (!term.resized)
        return false;
    term.resized = 0;
    phx_winsize_t was = *ws;
    phx_run_pty_size(0, getenv("LINES"), getenv("COLUMNS"), ws);
    return ws->rows != was.rows || ws->cols != was.cols;
}

int phx_run_pty_frame(phx_run_in_t *in, const phx_winsize_t *ws)
{
    if (in->off < in->len)
        return -1; /* a frame is being written: after it */
    json_t *h = phx_winsize_json(ws);
    uint8_t *buf = NULL;
    size_t len = 0;
    phx_error_t err;
    int rc = -1;
    if (h && json_object_set_new(h, "type", json_string("WINSIZE")) == 0 &&
        phx_wire_encode(h, NULL, 0, PHX_WIRE_DEFAULT_MAX, &buf, &len, &err) == 0) {
        free(in->frame);
        in->frame = buf;
        in->len = len;
        in->off = 0;
        rc = 0;
    }
    json_decref(h);
    return rc;
}

void phx_run_pty_write(const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(1, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* stdout gone: the step still runs to its end */
        data += n;
        len -= (size_t)n;
    }
}
