/* phx-agent: the standard input of a step's local ranks (doc/steps.md,
 * "Standard input").  A rank that gets input has a pipe as its stdin (or,
 * under --pty, rank 0 a terminal: step_pty.c); the
 * agent writes the step's queue (step_inq.h) into it without ever blocking
 * (a rank that does not read only stops its own pipe, and the queue then
 * holds at most the window), closes it once the input ended and was
 * written, and forgets it when the rank closes it or exits.  What every
 * open pipe got is acknowledged: to the origin's window through the master
 * (STEP_INPUT_ACK), or, on the origin itself, by letting its `phx run`
 * client's socket be read again.  Every step's queue is charged to the
 * agent's input budget (step_inq.h): on a receiving agent what it let the
 * origin send, the window of each acknowledgement being what the budget
 * has left. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/agent/step.h"
#include "lib/json.h"
#include "lib/log.h"

static phx_step_budget_t budget = {.limit = PHX_STEP_INPUT_BUDGET};

phx_step_budget_t *phx_step_input_budget(void)
{
    return &budget;
}

static bool gets_input(const phx_lstep_t *s, const phx_step_rank_t *r)
{
    return s->input == PHX_STEP_INPUT_ALL || s->input == r->rank;
}

static bool is_origin(const phx_lstep_t *s)
{
    return strcmp(s->origin, phx_step_agent()->name) == 0;
}

int phx_lstep_input_pipe(phx_lstep_t *s, phx_step_rank_t *r, int p[2], phx_error_t *err)
{
    p[0] = p[1] = -1;
    if (!gets_input(s, r))
        return 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return phx_error_set(err, "could not make a pipe: %s", strerror(errno));
    return 0;
}

static void pump(phx_lstep_t *s);

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_step_rank_t *r = arg;
    pump(r->step);
}

void phx_lstep_input_started(phx_step_rank_t *r, int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    p[0] = -1;
    r->in_fd = p[1];
    p[1] = -1;
    if (r->in_fd < 0)
        return;
    fcntl(r->in_fd, F_SETFL, O_NONBLOCK);
    r->in_ev = event_new(phx_step_agent()->base, r->in_fd, EV_WRITE | EV_PERSIST,
                         on_writable, r);
    if (!r->in_ev) { /* no way to wait for it: it gets EOF rather than hang */
        close(r->in_fd);
        r->in_fd = -1;
    }
    /* input that came before the rank (none today: ranks start first) */
    r->in_off = r->step->inq.base;
}

static void close_rank(phx_step_rank_t *r)
{
    if (r->in_ev) {
        event_free(r->in_ev);
        r->in_ev = NULL;
    }
    if (r->in_fd >= 0)
        close(r->in_fd);
    r->in_fd = -1;
}

static bool pipe_open(const phx_lstep_t *s)
{
    for (int i = 0; s->local && i < s->nlocal; i++)
        if (s->local[i].in_fd >= 0)
            return true;
    return false;
}

/* What the step's input costs here: its queue's buffer, and on a receiving
 * agent at least what it let the origin send, while a pipe may hold it back
 * (with none, what comes is acknowledged at once) and the input did not
 * end.  The clients waiting for the budget may read again when it goes
 * down. */
static void recharge(phx_lstep_t *s)
{
    uint64_t now = s->inq.cap;
    if (!is_origin(s) && !s->inq.eof && pipe_open(s)) {
        uint64_t limit = s->in_limit ? s->in_limit : PHX_STEP_INPUT_CHUNK;
        if (limit > s->inq.base && limit - s->inq.base > now)
            now = limit - s->inq.base;
    }
    uint64_t was = s->in_charge;
    phx_step_budget_charge(&budget, &s->in_charge, now);
    if (now < was)
        phx_step_svc_input_resume_all();
}

/* Write what r's pipe takes; false when r's stdin is closed now. */
static bool write_rank(phx_lstep_t *s, phx_step_rank_t *r)
{
    for (;;) {
        size_t n;
        const uint8_t *p = phx_step_inq_at(&s->inq, r->in_off, &n);
        if (n == 0) {
            if (s->inq.eof) { /* all of it written: EOF for the rank */
                if (r->tty)   /* its end-of-file character: ^D */
                    phx_lstep_pty_eof(r);
                close_rank(r);
                return false;
            }
            event_del(r->in_ev);
            return true;
        }
        ssize_t w = write(r->in_fd, p, n);
        if (w > 0) {
            r->in_off += (uint64_t)w;
            r->in_partial = p[w - 1] != '\n';
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            event_add(r->in_ev, NULL);
            return true;
        }
        /* EPIPE: the rank closed its stdin or exited; it reads no more */
        close_rank(r);
        return false;
    }
}

/* What every open pipe got: the stream's end when none is open. */
static uint64_t written(const phx_lstep_t *s)
{
    uint64_t low = phx_step_inq_end(&s->inq);
    for (int i = 0; i < s->nlocal; i++)
        if (s->local[i].in_fd >= 0 && s->local[i].in_off < low)
            low = s->local[i].in_off;
    return low;
}

/* On a receiving agent, the acknowledgement says how far the origin may
 * send: what the budget has left (at least a chunk) past what was written.
 * A larger limit alone is said only a chunk at a time. */
static void acknowledge(phx_lstep_t *s, uint64_t off)
{
    if (is_origin(s)) {
        phx_step_svc_input_resume(s->id);
        return;
    }
    uint64_t limit = s->in_limit ? s->in_limit : PHX_STEP_INPUT_CHUNK;
    uint64_t grant = phx_step_budget_grant(&budget, s->in_charge);
    if (off + grant > limit)
        limit = off + grant;
    if (off <= s->in_acked && limit < s->in_limit + PHX_STEP_INPUT_CHUNK)
        return;
    s->in_acked = off > s->in_acked ? off : s->in_acked;
    s->in_limit = limit;
    recharge(s);
    phx_agentd_send(phx_step_agent(),
                    json_pack("{s:s, s:I, s:I, s:I}", "type", "STEP_INPUT_ACK", "step",
                              (json_int_t)s->id, "offset", (json_int_t)off, "window",
                              (json_int_t)(limit - off)),
                    NULL, 0);
}

static void pump(phx_lstep_t *s)
{
    for (int i = 0; i < s->nlocal; i++)
        if (s->local[i].in_fd >= 0)
            write_rank(s, &s->local[i]);
    uint64_t low = written(s);
    phx_step_inq_trim(&s->inq, low);
    recharge(s);
    acknowledge(s, low);
}

void phx_lstep_input_close(phx_step_rank_t *r)
{
    if (r->in_fd < 0)
        return;
    close_rank(r);
    pump(r->step);
}

void phx_lstep_input_end(phx_lstep_t *s)
{
    for (int i = 0; s->local && i < s->nlocal; i++)
        close_rank(&s->local[i]);
    if (s->input != PHX_STEP_INPUT_NONE)
        acknowledge(s, phx_step_inq_end(&s->inq));
    phx_step_inq_clear(&s->inq);
    s->inq.eof = true; /* nothing more is charged for it */
    recharge(s);
}

static bool has_input(const phx_lstep_t *s)
{
    for (int i = 0; i < s->nlocal; i++)
        if (gets_input(s, &s->local[i]))
            return true;
    return false;
}

void phx_lstep_input_local(uint64_t step, const void *data, size_t len, bool eof)
{
    phx_lstep_t *s = phx_lstep_by_id(step);
    if (!s || !has_input(s))
        return;
    if (phx_step_inq_push(&s->inq, phx_step_inq_end(&s->inq), data, len, eof) < 0) {
        /* no memory for at most a window: the ranks get EOF early, said */
        phx_log_warnx("step %s: no memory for %zu bytes of input; its ranks' stdin "
                      "ends here",
                      s->nspace, len);
        s->inq.eof = true;
    }
    pump(s);
}

size_t phx_lstep_input_held(uint64_t step)
{
    const phx_lstep_t *s = phx_lstep_by_id(step);
    return s ? s->inq.len : 0;
}

uint64_t phx_lstep_input_charge(uint64_t step)
{
    const phx_lstep_t *s = phx_lstep_by_id(step);
    return s ? s->in_charge : 0;
}

void phx_step_on_input(phx_agentd_t *a, const phx_frame_t *f)
{
    long long id = 0, off = -1;
    phx_error_t err;
    if (phx_json_int(f->header, "step", true, 1, INT64_MAX, &id, &err) < 0 ||
        phx_json_int(f->header, "offset", true, 0, INT64_MAX, &off, &err) < 0) {
        phx_log_warnx("malformed STEP_INPUT ignored: %s", err.text);
        return;
    }
    bool eof = json_is_true(json_object_get(f->header, "eof"));
    uint64_t end = (uint64_t)off + f->attach_len;
    phx_lstep_t *s = phx_lstep_by_id((uint64_t)id);
    if (!s || is_origin(s) || !has_input(s)) {
        /* its ranks are gone: nothing to write, but the origin's window
         * must not wait for them */
        if (!s || !is_origin(s))
            phx_agentd_send(a,
                            json_pack("{s:s, s:I, s:I}", "type", "STEP_INPUT_ACK",
                                      "step", (json_int_t)id, "offset",
                                      (json_int_t)end),
                            NULL, 0);
        return;
    }
    /* The window bounds what the origin sends; twice it is a broken
     * origin, not a slow rank. */
    if (s->inq.len + f->attach_len > 2 * PHX_STEP_INPUT_WINDOW ||
        phx_step_inq_push(&s->inq, (uint64_t)off, f->attach, f->attach_len, eof) < 0) {
        phx_log_warnx("step %s: input at %lld refused (%zu bytes held, %llu "
                      "expected next): its ranks' stdin ends here",
                      s->nspace, off, s->inq.len,
                      (unsigned long long)phx_step_inq_end(&s->inq));
        s->inq.eof = true;
        s->in_acked = end > s->in_acked ? end : s->in_acked;
        phx_agentd_send(a,
                        json_pack("{s:s, s:I, s:I}", "type", "STEP_INPUT_ACK", "step",
                                  (json_int_t)id, "offset", (json_int_t)end),
                        NULL, 0);
    }
    pump(s);
}

void phx_step_on_input_ack(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    long long id = 0, off = -1, window = 0;
    const char *agent;
    phx_error_t err;
    if (phx_json_int(f->header, "step", true, 1, INT64_MAX, &id, &err) < 0 ||
        phx_json_int(f->header, "offset", true, 0, INT64_MAX, &off, &err) < 0 ||
        phx_json_int(f->header, "window", false, 0, INT64_MAX, &window, &err) < 0 ||
        phx_json_str(f->header, "agent", true, &agent, &err) < 0) {
        phx_log_warnx("malformed STEP_INPUT_ACK ignored: %s", err.text);
        return;
    }
    phx_step_svc_input_ack((uint64_t)id, agent, (uint64_t)off, (uint64_t)window);
}
