/* phx-agent: `phx run --pty`: rank 0 of the step on a pseudo-terminal
 * (doc/steps.md, "Terminal").
 *
 * The agent opens the terminal, not a shim: a step's ranks are forked by
 * the agent itself (step.c; the shim supervises batch tasks only), and the
 * master side must be read and written by the agent's loop, which relays
 * it as the rank's stdout (OUTPUT frames) and writes the step's input into
 * it.  Before the fork the agent (root) opens /dev/ptmx and the slave, and
 * gives the slave to the job's user (group tty, mode 0620, as login and
 * sshd do: others may not read it, write(1) may write to it); the master is
 * close-on-exec and closed in the child before anything else.  The child
 * makes its own session (setsid), takes the slave as its controlling
 * terminal (TIOCSCTTY) and as 0, 1 and 2, then becomes the user as every
 * rank does.  The input goes through the step's queue (step_input.c) like
 * a pipe's; its end is the terminal's end-of-file character (^D, twice
 * after a partial line), as script(1) does, since closing our side would
 * hang up the terminal.  Its output ends with EIO on the master once no one
 * holds the slave; when the rank exits, what the master holds is read (a
 * read waits for the kernel's flush of what the slave wrote) and the master
 * closed, as a pipe is. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "daemons/agent/step.h"
#include "lib/json.h"
#include "lib/log.h"

int phx_lstep_pty_open(const phx_lstep_t *s, uid_t uid, int fds[2], phx_error_t *err)
{
    fds[0] = fds[1] = -1;
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char name[64];
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 ||
        ptsname_r(m, name, sizeof(name)) != 0) {
        phx_error_set(err, "could not open a pseudo-terminal: %s", strerror(errno));
        goto error;
    }
    struct winsize ws = {.ws_row = (unsigned short)s->pty.rows,
                         .ws_col = (unsigned short)s->pty.cols};
    ioctl(m, TIOCSWINSZ, &ws);
    /* the peer of this master, not whatever a path names (Linux 4.13) */
    int sl = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0 && (errno == EINVAL || errno == ENOTTY))
        sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct group *tty = getgrnam("tty");
    if (sl < 0 || fchown(sl, uid, tty ? tty->gr_gid : (gid_t)-1) < 0 ||
        fchmod(sl, 0620) < 0) {
        phx_error_set(err, "could not give \"%s\" to uid %d: %s", name, (int)uid,
                      strerror(errno));
        if (sl >= 0)
            close(sl);
        goto error;
    }
    fds[0] = m;
    fds[1] = sl;
    return 0;
error:
    if (m >= 0)
        close(m);
    return -1;
}

int phx_lstep_pty_child(int fds[2])
{
    close(fds[0]);
    if (setsid() < 0 || ioctl(fds[1], TIOCSCTTY, 0) < 0)
        return -1;
    for (int k = 0; k < 3; k++)
        if (dup2(fds[1], k) < 0)
            return -1;
    if (fds[1] > 2)
        close(fds[1]);
    return 0;
}

void phx_lstep_pty_eof(phx_step_rank_t *r)
{
    struct termios t;
    if (r->in_fd < 0 || tcgetattr(r->in_fd, &t) < 0 || !(t.c_lflag & ICANON))
        return; /* a raw program: nothing is end-of-file to it */
    char eof[2] = {(char)t.c_cc[VEOF], (char)t.c_cc[VEOF]};
    /* the first ends a partial line, the next is end-of-file */
    if (write(r->in_fd, eof, r->in_partial ? 2 : 1) < 0)
        phx_log_debug("step %s: could not end rank %d's terminal input: %s",
                      r->step->nspace, r->rank, strerror(errno));
}

static void apply(phx_lstep_t *s, const phx_winsize_t *size)
{
    s->pty = *size;
    for (int i = 0; i < s->nlocal; i++) {
        phx_step_rank_t *r = &s->local[i];
        int fd = r->fds[0] >= 0 ? r->fds[0] : r->in_fd;
        struct winsize ws = {.ws_row = (unsigned short)size->rows,
                             .ws_col = (unsigned short)size->cols};
        /* the kernel sends SIGWINCH to the terminal's foreground group */
        if (r->tty && fd >= 0 && ioctl(fd, TIOCSWINSZ, &ws) < 0)
            phx_log_debug("step %s: could not resize rank %d's terminal: %s", s->nspace,
                          r->rank, strerror(errno));
    }
}

/* The resizes of `phx run` on their way to rank 0's agent (STEP_WINSIZE
 * through the master), one per step: the latest size held, at most
 * PHX_WINSIZE_RATE a second, and none while the link to the master has
 * more than PHX_WINSIZE_BACKLOG bytes to write.  A client writing WINSIZE
 * frames in a loop made the agent queue a frame for each. */
#define PHX_WINSIZE_BACKLOG (256u << 10)
typedef struct resize_fwd {
    struct resize_fwd *next;
    uint64_t step;
    phx_winsize_gate_t gate;
    struct event *ev;
} resize_fwd_t;
static resize_fwd_t *fwds;

static void fwd_try(resize_fwd_t *f);

static void on_fwd_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fwd_try(arg);
}

static void fwd_try(resize_fwd_t *f)
{
    phx_agentd_t *a = phx_step_agent();
    phx_winsize_t ws;
    int64_t wait = 0;
    int due = phx_winsize_gate_take(&f->gate, phx_winsize_now_ms(), &ws, &wait);
    if (due == 1 && a->bev &&
        evbuffer_get_length(bufferevent_get_output(a->bev)) > PHX_WINSIZE_BACKLOG) {
        phx_winsize_gate_put(&f->gate, &ws); /* the link is behind: later */
        due = 0;
        wait = 1000 / PHX_WINSIZE_RATE;
    }
    if (due == 1)
        phx_agentd_send(a,
                        json_pack("{s:s, s:I, s:i, s:i}", "type", "STEP_WINSIZE",
                                  "step", (json_int_t)f->step, "rows", (int)ws.rows,
                                  "cols", (int)ws.cols),
                        NULL, 0);
    else if (due == 0 && !evtimer_pending(f->ev, NULL)) {
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000 * 1000)};
        evtimer_add(f->ev, &tv);
    }
}

static resize_fwd_t *fwd_of(uint64_t step)
{
    for (resize_fwd_t *f = fwds; f; f = f->next)
        if (f->step == step)
            return f;
    resize_fwd_t *f = calloc(1, sizeof(*f));
    if (!f || !(f->ev = evtimer_new(phx_step_agent()->base, on_fwd_due, f))) {
        free(f);
        return NULL;
    }
    f->step = step;
    f->next = fwds;
    fwds = f;
    return f;
}

void phx_step_pty_forget(uint64_t step)
{
    for (resize_fwd_t **pp = &fwds; *pp; pp = &(*pp)->next)
        if ((*pp)->step == step) {
            resize_fwd_t *f = *pp;
            *pp = f->next;
            event_free(f->ev);
            free(f);
            return;
        }
}

void phx_step_pty_resize(uint64_t step, bool elsewhere, const phx_winsize_t *ws)
{
    phx_lstep_t *s = phx_lstep_by_id(step);
    if (s && s->pty.rows > 0)
        apply(s, ws); /* at once: nothing waits (the kernel keeps one size) */
    resize_fwd_t *f = elsewhere ? fwd_of(step) : NULL;
    if (elsewhere && !f) {
        phx_log_warnx("step %llu: out of memory: a resize of its terminal is lost",
                      (unsigned long long)step);
        return;
    }
    if (f) { /* to the agent of rank 0, through the master */
        phx_winsize_gate_put(&f->gate, ws);
        fwd_try(f);
    }
}

void phx_step_on_winsize(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    long long id = 0;
    phx_winsize_t ws;
    phx_error_t err;
    if (phx_json_int(f->header, "step", true, 1, INT64_MAX, &id, &err) < 0 ||
        phx_winsize_parse(f->header, &ws, &err) < 0) {
        phx_log_warnx("malformed STEP_WINSIZE ignored: %s", err.text);
        return;
    }
    phx_lstep_t *s = phx_lstep_by_id((uint64_t)id);
    if (s && s->pty.rows > 0)
        apply(s, &ws);
}
