/* phx run: its standard input, forwarded to the step's ranks as INPUT
 * frames (doc/steps.md, "Standard input").  Nothing is read before the step
 * started, at most PHX_RUN_INPUT_CHUNK bytes a frame, and the next read
 * waits until the last frame is written: when the agent stops reading
 * (its ranks or another agent are a window behind), phx run stops reading
 * its stdin, and nothing piles up anywhere. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/run.h"
#include "lib/wire.h"

int phx_run_input_parse(const char *v)
{
    if (!v)
        return PHX_RUN_INPUT_BAD;
    if (strcmp(v, "all") == 0)
        return PHX_RUN_INPUT_ALL;
    if (strcmp(v, "none") == 0)
        return PHX_RUN_INPUT_NONE;
    size_t n = strlen(v);
    if (n == 0 || n > 7 || strspn(v, "0123456789") != n)
        return PHX_RUN_INPUT_BAD;
    return atoi(v);
}

bool phx_run_stdin_is_null(int fd)
{
    struct stat in, null;
    if (fstat(fd, &in) < 0)
        return true; /* closed: nothing to read */
    return S_ISCHR(in.st_mode) && stat("/dev/null", &null) == 0 &&
           in.st_rdev == null.st_rdev;
}

bool phx_run_stdin_is_file(int fd)
{
    struct stat in;
    return fstat(fd, &in) == 0 && S_ISREG(in.st_mode);
}

bool phx_run_in_want_read(const phx_run_in_t *in)
{
    return in->fd >= 0 && in->started && !in->ended && in->off == in->len;
}

bool phx_run_in_want_write(const phx_run_in_t *in)
{
    return in->off < in->len;
}

static void encode(phx_run_in_t *in, const uint8_t *data, size_t len, bool eof)
{
    json_t *h = json_pack("{s:s, s:b}", "type", "INPUT", "eof", eof);
    phx_error_t err;
    free(in->frame);
    in->frame = NULL;
    in->len = in->off = 0;
    if (!h || phx_wire_encode(h, data, len, PHX_WIRE_DEFAULT_MAX, &in->frame, &in->len,
                              &err) < 0) {
        fprintf(stderr, "phx run: %s; the ranks' standard input ends here\n",
                h ? err.text : "out of memory");
        in->len = 0;
        in->ended = true;
    }
    json_decref(h);
    in->ended = in->ended || eof;
}

void phx_run_in_read(phx_run_in_t *in)
{
    uint8_t buf[PHX_RUN_INPUT_CHUNK];
    ssize_t n;
    do
        n = read(in->fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n < 0)
        fprintf(stderr,
                "phx run: could not read the standard input: %s; the ranks' "
                "standard input ends here\n",
                strerror(errno));
    encode(in, buf, n > 0 ? (size_t)n : 0, n <= 0);
}

int phx_run_in_write(phx_run_in_t *in, int sock)
{
    while (in->off < in->len) {
        ssize_t n = send(sock, in->frame + in->off, in->len - in->off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0) { /* the agent is gone: its ERROR or EOF is read next */
            in->ended = true;
            in->off = in->len;
            return -1;
        }
        in->off += (size_t)n;
    }
    return 0;
}

void phx_run_in_clear(phx_run_in_t *in)
{
    free(in->frame);
    in->frame = NULL;
    in->len = in->off = 0;
}
