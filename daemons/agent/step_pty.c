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

void phx_step_pty_resize(uint64_t step, bool elsewhere, const phx_winsize_t *ws)
{
    phx_lstep_t *s = phx_lstep_by_id(step);
    if (s && s->pty.rows > 0)
        apply(s, ws);
    if (elsewhere) /* to the agent of rank 0, through the master */
        phx_agentd_send(phx_step_agent(),
                        json_pack("{s:s, s:I, s:i, s:i}", "type", "STEP_WINSIZE",
                                  "step", (json_int_t)step, "rows", (int)ws->rows,
                                  "cols", (int)ws->cols),
                        NULL, 0);
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
