/* phx-agent: the local step service.  `phx run` connects to a unix socket
 * in the agent's state directory (PHX_AGENT_SOCKET in every task's
 * environment) and sends one STEP_REQUEST frame naming its job task.  The
 * agent checks the caller with SO_PEERCRED: its pid must be in that task's
 * cgroup (or, without cgroups, descend from the task's processes) and its
 * uid must be the task's user.  The request goes to the master; the client
 * then gets STEP_STARTED, OUTPUT frames (rank, stream + bytes) and one DONE
 * {exit_code}, or ERROR {message}.  A client that goes away kills its step.
 *
 * The socket is open to every local user, so what one may hold is bounded
 * before anything is read: only root and users with a running task here
 * are served, at most STEP_CLIENTS_PER_UID connections each waiting for
 * their request (steps started do not count: a job may start many), a
 * request of at most STEP_REQUEST_MAX bytes that must be whole within
 * STEP_REQUEST_SECONDS of the connection (a user with no job once made the
 * agent buffer 16 MiB on each of as many connections as they opened).
 * Output waiting for a client that does not read is bounded too
 * (step_bound.h): past the bound it is dropped, and the client is told how
 * much once it reads again; DONE is never dropped.
 *
 * Once the step started, the client sends its standard input as INPUT
 * frames ({eof} + at most PHX_STEP_INPUT_CHUNK bytes): to the step's ranks
 * here (step_input.c) and, as STEP_INPUT through the master, to the other
 * agents whose ranks get it.  Input is never dropped: while the ranks here
 * have PHX_STEP_INPUT_LOCAL bytes to take or another agent has not
 * acknowledged PHX_STEP_INPUT_WINDOW bytes (step_inq.h), the client's
 * socket is not read, and `phx run` stops reading its stdin.  The same goes
 * while the agent's input budget, shared by every step, has no room for
 * another chunk (unless the step holds nothing): a window's bytes not yet
 * acknowledged are charged to it (c->in_charge).  Under --pty the client
 * also sends WINSIZE {rows, cols} when its terminal's size changes: applied
 * to rank 0's terminal here, or sent to its agent (STEP_WINSIZE). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/step.h"
#include "daemons/agent/step_bound.h"
#include "daemons/agent/task.h"
#include "lib/json.h"
#include "lib/log.h"

/* A request carries the caller's argv and environment (execve's limit is
 * a quarter of an 8 MiB stack by default: 2 MiB for both). */
#define STEP_REQUEST_MAX     (4u << 20)
#define STEP_REQUEST_SECONDS 10
#define STEP_CLIENTS_PER_UID 32

typedef struct client {
    struct client *next;
    struct bufferevent *bev;
    phx_wire_decoder_t *dec;
    pid_t pid;
    uid_t uid;
    uint64_t req;  /* 0 until forwarded */
    uint64_t step; /* 0 until started */
    bool done;     /* DONE or ERROR sent: close once written */
    bool freeing;
    phx_step_bound_t bound; /* the ranks' output waiting to be written */
    struct event *stall;    /* how long local ranks wait for room */
    bool waiting;           /* local ranks wait for room (step_bound.h) */
    bool waited;            /* long enough: drop until drained */
    struct event *deadline; /* for the request, from the connection */
    phx_step_window_t win;  /* the other agents that get the input */
    char **win_agents;      /* their names */
    bool in_eof;            /* the input ended */
    bool pty;               /* rank 0 on a terminal (--pty): WINSIZE taken */
    bool in_blocked;        /* its socket is not read: no room for input */
    struct event *in_gone;  /* the client closing while not read */
    uint64_t in_charge;     /* the window's, in the input budget */
} client_t;

static struct {
    phx_agentd_t *a;
    struct evconnlistener *lst;
    client_t *clients;
    uint64_t next_req;
    char path[1024];
    int in_blocked; /* clients not read for want of room */
    bool resuming, resume_again;
    struct event *resume_ev; /* another turn, from the loop */
} svc;

bool phx_step_svc_is_client(pid_t pid)
{
    for (const client_t *c = svc.clients; c; c = c->next)
        if (c->pid == pid && !c->freeing)
            return true;
    return false;
}

static void client_free(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_t *c = arg;
    for (client_t **pp = &svc.clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (c->in_gone) /* before its socket closes with bev */
        event_free(c->in_gone);
    if (c->step)
        phx_step_pty_forget(c->step);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->deadline)
        event_free(c->deadline);
    if (c->stall)
        event_free(c->stall);
    for (int i = 0; i < c->win.n; i++)
        free(c->win_agents[i]);
    free(c->win_agents);
    free(c->win.acked);
    free(c->win.limit);
    if (c->in_blocked)
        svc.in_blocked--;
    uint64_t had = c->in_charge;
    phx_step_budget_charge(phx_step_input_budget(), &c->in_charge, 0);
    phx_wire_decoder_destroy(c->dec);
    free(c);
    if (had > 0)
        phx_step_svc_input_resume_all();
}

/* Local ranks waiting for room in c read again. */
static void stop_waiting(client_t *c)
{
    if (!c->waiting)
        return;
    c->waiting = false;
    evtimer_del(c->stall);
    phx_lstep_output_resume(c->step);
}

static void client_close(client_t *c)
{
    if (c->freeing)
        return;
    c->freeing = true;
    stop_waiting(c);         /* no rank stays blocked: their output goes nowhere now */
    if (c->step && !c->done) /* `phx run` went away: the step goes too */
        phx_agentd_send(svc.a,
                        json_pack("{s:s, s:I, s:i, s:s, s:b}", "type", "STEP_ABORT",
                                  "step", (json_int_t)c->step, "status", 130, "message",
                                  "phx run went away", "cancel", 1),
                        NULL, 0);
    struct timeval zero = {0, 0};
    event_base_once(svc.a->base, -1, EV_TIMEOUT, client_free, c, &zero);
}

static size_t pending(const client_t *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* A frame to the client; a rank's OUTPUT frame (stream 1 or 2) only within
 * the bound, others (stream 0: the master's and the agent's own words, a
 * few hundred bytes each) always. */
static void client_send_stream(client_t *c, json_t *hdr, int stream, const void *data,
                               size_t len)
{
    uint8_t *buf;
    size_t n;
    phx_error_t err;
    if (c->freeing ||
        phx_wire_encode(hdr, data, len, PHX_WIRE_DEFAULT_MAX, &buf, &n, &err) < 0) {
        json_decref(hdr);
        return;
    }
    json_decref(hdr);
    if (stream == 0 || phx_step_bound_admit(&c->bound, pending(c), n, stream, len))
        bufferevent_write(c->bev, buf, n);
    free(buf);
}

static void client_send(client_t *c, json_t *hdr, const void *data, size_t len)
{
    client_send_stream(c, hdr, 0, data, len);
}

/* What was dropped, told on the client's stderr (rank -1: no rank's line)
 * once the output has drained to the low mark, or at the end. */
static void tell_lost(client_t *c, bool end)
{
    char msg[256];
    size_t n = phx_step_bound_notice(&c->bound, pending(c), end, msg, sizeof(msg));
    if (n > 0)
        client_send(
            c, json_pack("{s:s, s:i, s:i}", "type", "OUTPUT", "rank", -1, "stream", 2),
            msg, n);
}

/* Below the write watermark: output flows again, or the end was written. */
static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    client_t *c = arg;
    if (!c->done) {
        stop_waiting(c);
        c->waited = false;
        tell_lost(c, false);
    } else if (pending(c) == 0) {
        client_close(c);
    }
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_t *c = arg;
    c->waited = true;
    stop_waiting(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg);

static void client_finish(client_t *c, json_t *hdr)
{
    tell_lost(c, true);
    client_send(c, hdr, NULL, 0);
    c->done = true;
    bufferevent_setcb(c->bev, NULL, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
    if (pending(c) == 0)
        client_close(c);
}

static void client_error(client_t *c, const char *msg)
{
    client_finish(c, json_pack("{s:s, s:s}", "type", "ERROR", "message", msg));
}

static client_t *by_req(uint64_t req)
{
    for (client_t *c = svc.clients; c; c = c->next)
        if (c->req == req && !c->freeing)
            return c;
    return NULL;
}

static client_t *by_step(uint64_t step)
{
    for (client_t *c = svc.clients; c; c = c->next)
        if (c->step == step && !c->freeing)
            return c;
    return NULL;
}

static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    int ppid = 0;
    if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
        return 0;
    return (pid_t)ppid;
}

/* Is pid one of the task's processes? */
static bool pid_in_task(const phx_task_t *t, pid_t pid)
{
    phx_agentd_t *a = svc.a;
    if (t->has_cgroup) {
        char path[PHX_CG_PATH];
        a->cg->ops->procs_path(a->cg, t->key, path, sizeof(path));
        FILE *f = fopen(path, "re");
        int p;
        bool found = false;
        while (f && !found && fscanf(f, "%d", &p) == 1)
            found = p == (int)pid;
        if (f)
            fclose(f);
        return found;
    }
    for (pid_t p = pid; p > 1; p = parent_of(p))
        if (p == t->shim || p == t->child)
            return true;
    return false;
}

static void on_request(client_t *c, const phx_frame_t *f)
{
    const json_t *h = f->header;
    const char *fw_id, *task_id;
    phx_error_t err;
    if (strcmp(f->type, "STEP_REQUEST") != 0 || c->req) {
        client_error(c, "expected one STEP_REQUEST");
        return;
    }
    if (phx_json_str(h, "framework_id", true, &fw_id, &err) < 0 ||
        phx_json_str(h, "task_id", true, &task_id, &err) < 0) {
        client_error(c, err.text);
        return;
    }
    phx_task_t *t = phx_task_find(svc.a, fw_id, task_id);
    if (!t || t->phase > PHX_TASK_RUNNING) {
        client_error(c, "no such running job task on this node");
        return;
    }
    if (c->uid != t->uid || !pid_in_task(t, c->pid)) {
        phx_log_notice("step request from pid %d uid %d refused: not a process of task "
                       "%s",
                       (int)c->pid, (int)c->uid, t->label);
        client_error(c, "permission denied: the caller is not a process of that job");
        return;
    }
    if (!phx_agentd_link_ready(svc.a)) {
        client_error(c, "the agent is not connected to the master");
        return;
    }
    json_t *fwd = json_deep_copy(h);
    c->pty = json_object_get(h, "pty") && /* the master checks it */
             !json_is_null(json_object_get(h, "pty"));
    c->req = ++svc.next_req;
    evtimer_del(c->deadline); /* a step runs as long as it may */
    json_object_set_new(fwd, "type", json_string("STEP_REQUEST"));
    json_object_set_new(fwd, "req", json_integer((json_int_t)c->req));
    if (phx_agentd_send(svc.a, fwd, NULL, 0) < 0)
        client_error(c, "could not reach the master");
}

/* Room for one more INPUT frame: here, in the window and in the budget. */
static bool input_room(const client_t *c)
{
    return phx_lstep_input_held(c->step) + PHX_STEP_INPUT_CHUNK <=
               PHX_STEP_INPUT_LOCAL &&
           phx_step_window_room(&c->win, PHX_STEP_INPUT_CHUNK) &&
           phx_step_budget_room(phx_step_input_budget(),
                                phx_lstep_input_charge(c->step) + c->in_charge,
                                PHX_STEP_INPUT_CHUNK);
}

/* The window's bytes not yet acknowledged, in the budget. */
static void window_charge(client_t *c)
{
    uint64_t was = c->in_charge;
    phx_step_budget_charge(phx_step_input_budget(), &c->in_charge,
                           phx_step_window_unacked(&c->win));
    if (c->in_charge < was)
        phx_step_svc_input_resume_all();
}

static void on_input(client_t *c, const phx_frame_t *f)
{
    bool eof = json_is_true(json_object_get(f->header, "eof"));
    if (!c->step || c->in_eof || f->attach_len > PHX_STEP_INPUT_CHUNK ||
        (f->attach_len == 0 && !eof)) {
        client_error(c, !c->step             ? "INPUT before the step started"
                        : c->in_eof          ? "INPUT after its end"
                        : f->attach_len == 0 ? "INPUT frame with no bytes"
                                             : "INPUT frame too large");
        return;
    }
    c->in_eof = eof;
    if (c->win.n > 0) {
        phx_agentd_send(svc.a,
                        json_pack("{s:s, s:I, s:I, s:b}", "type", "STEP_INPUT", "step",
                                  (json_int_t)c->step, "offset",
                                  (json_int_t)c->win.sent, "eof", eof),
                        f->attach, f->attach_len);
        c->win.sent += f->attach_len;
        window_charge(c);
    }
    phx_lstep_input_local(c->step, f->attach, f->attach_len, eof);
}

/* WINSIZE {rows, cols}: the size of `phx run`'s terminal changed. */
static void on_winsize(client_t *c, const phx_frame_t *f)
{
    phx_winsize_t ws;
    phx_error_t err;
    if (!c->step)
        client_error(c, "WINSIZE before the step started");
    else if (phx_winsize_parse(f->header, &ws, &err) < 0)
        client_error(c, err.text);
    else if (c->pty) /* rank 0's agent: the one its input goes to */
        phx_step_pty_resize(c->step, c->win.n > 0, &ws);
}

static void on_gone(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_close(arg);
}

/* No room for input: the client's socket is not read (a client that goes
 * meanwhile is still noticed, where the loop can tell: EV_CLOSED). */
static void input_block(client_t *c)
{
    if (!c->in_blocked)
        svc.in_blocked++;
    c->in_blocked = true;
    bufferevent_disable(c->bev, EV_READ);
    phx_wire_decoder_shrink(c->dec); /* it held a whole frame just now */
    if (!c->in_gone)
        c->in_gone = event_new(svc.a->base, bufferevent_getfd(c->bev),
                               EV_CLOSED | EV_PERSIST, on_gone, c);
    if (c->in_gone)
        event_add(c->in_gone, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    client_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    phx_error_t err;
    for (;;) {
        if (c->done || c->freeing)
            return;
        if (c->step && !c->in_eof && !input_room(c)) {
            input_block(c); /* the rest waits in the decoder and the socket */
            return;
        }
        phx_frame_t f;
        int r = phx_wire_decoder_next(c->dec, &f, &err);
        if (r == 1) {
            if (strcmp(f.type, "INPUT") == 0)
                on_input(c, &f);
            else if (strcmp(f.type, "WINSIZE") == 0)
                on_winsize(c, &f);
            else
                on_request(c, &f);
            phx_frame_clear(&f);
            continue;
        }
        if (r < 0) {
            client_error(c, err.text);
            return;
        }
        struct evbuffer_iovec v;
        if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        if (phx_wire_decoder_feed(c->dec, v.iov_base, v.iov_len, &err) < 0) {
            client_error(c, err.text);
            return;
        }
        evbuffer_drain(in, v.iov_len);
    }
}

void phx_step_svc_input_resume(uint64_t step)
{
    client_t *c = by_step(step);
    if (!c || !c->in_blocked || c->done || !input_room(c))
        return;
    c->in_blocked = false;
    svc.in_blocked--;
    if (c->in_gone)
        event_del(c->in_gone);
    bufferevent_enable(c->bev, EV_READ);
    on_read(c->bev, c);
}

static void on_resume_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    phx_step_svc_input_resume_all();
}

/* Clients wait for the budget only while it has no room: each gets its
 * turn.  Budget freed meanwhile (a client's ranks took what it read) gives
 * another turn from the loop, which goes on serving the rest meanwhile. */
void phx_step_svc_input_resume_all(void)
{
    if (svc.in_blocked == 0 || !svc.resume_ev) /* none, or stopping */
        return;
    if (svc.resuming) {
        svc.resume_again = true;
        return;
    }
    svc.resuming = true;
    svc.resume_again = false;
    for (client_t *c = svc.clients; c && svc.in_blocked > 0; c = c->next)
        if (c->in_blocked && !c->freeing)
            phx_step_svc_input_resume(c->step);
    svc.resuming = false;
    if (svc.resume_again && svc.in_blocked > 0 && svc.resume_ev)
        event_active(svc.resume_ev, EV_TIMEOUT, 0);
}

void phx_step_svc_input_ack(uint64_t step, const char *agent, uint64_t offset,
                            uint64_t window)
{
    client_t *c = by_step(step);
    for (int i = 0; c && i < c->win.n; i++)
        if (strcmp(c->win_agents[i], agent) == 0) {
            if (phx_step_window_ack(&c->win, i, offset, window) < 0)
                phx_log_warnx("step %llu: agent \"%s\" acknowledged input it was "
                              "not sent (%llu of %llu)",
                              (unsigned long long)step, agent,
                              (unsigned long long)offset,
                              (unsigned long long)c->win.sent);
            window_charge(c);
            phx_step_svc_input_resume(step);
            return;
        }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    client_close(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_t *c = arg;
    if (c->req || c->freeing)
        return;
    phx_log_notice("step client pid %d uid %d: no whole request within %d s",
                   (int)c->pid, (int)c->uid, STEP_REQUEST_SECONDS);
    client_close(c);
}

/* Turn a client away before reading anything: an ERROR frame it can read
 * after we are gone, then close. */
static void refuse(evutil_socket_t fd, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "permission denied: %s", why);
    json_t *h = json_pack("{s:s, s:s}", "type", "ERROR", "message", msg);
    uint8_t *buf = NULL;
    size_t len = 0;
    phx_error_t err;
    if (h && phx_wire_encode(h, NULL, 0, PHX_WIRE_DEFAULT_MAX, &buf, &len, &err) == 0 &&
        send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        phx_log_debug("could not tell a refused step client: %s", strerror(errno));
    free(buf);
    json_decref(h);
    evutil_closesocket(fd);
}

/* NULL if uid may open one more connection, else why not. */
static const char *may_connect(uid_t uid)
{
    if (uid != 0) {
        bool runs = false;
        for (const phx_task_t *t = svc.a->tasks; t && !runs; t = t->next)
            runs = t->uid == uid && t->phase <= PHX_TASK_RUNNING;
        if (!runs)
            return "the user runs no task on this node";
    }
    int n = 0;
    for (const client_t *c = svc.clients; c; c = c->next)
        n += c->uid == uid && !c->req && !c->freeing;
    return uid != 0 && n >= STEP_CLIENTS_PER_UID
               ? "too many step clients of this user waiting for their request"
               : NULL;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        phx_log_err("could not accept a step client");
        evutil_closesocket(fd);
        return;
    }
    const char *why = may_connect(cred.uid);
    if (why) {
        phx_log_notice("step client pid %d uid %d refused: %s", (int)cred.pid,
                       (int)cred.uid, why);
        refuse(fd, why);
        return;
    }
    client_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->dec = phx_wire_decoder_create(STEP_REQUEST_MAX)) ||
        !(c->bev = bufferevent_socket_new(svc.a->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
        phx_log_err("could not accept a step client");
        if (c)
            phx_wire_decoder_destroy(c->dec);
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->next = svc.clients;
    svc.clients = c;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, PHX_STEP_CLIENT_OUTPUT_LOW, 0);
    struct timeval tv = {STEP_REQUEST_SECONDS, 0};
    if (!(c->deadline = evtimer_new(svc.a->base, on_deadline, c)) ||
        evtimer_add(c->deadline, &tv) < 0) {
        phx_log_err("could not time a step client");
        client_close(c);
        return;
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void phx_step_svc_fail_all(const char *why)
{
    for (client_t *c = svc.clients; c; c = c->next)
        if (c->req && !c->done && !c->freeing)
            client_error(c, why);
}

void phx_step_on_refused(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    client_t *c =
        by_req((uint64_t)json_integer_value(json_object_get(f->header, "req")));
    const char *msg = json_string_value(json_object_get(f->header, "message"));
    if (c)
        client_error(c, msg ? msg : "step refused");
}

/* The agents other than this one whose ranks get the input. */
static int set_window(client_t *c, const json_t *input_to)
{
    size_t n = json_array_size(input_to);
    if (n == 0)
        return 0;
    if (!(c->win_agents = calloc(n, sizeof(char *))) ||
        !(c->win.acked = calloc(n, sizeof(uint64_t))) ||
        !(c->win.limit = calloc(n, sizeof(uint64_t))))
        return -1;
    for (size_t i = 0; i < n; i++) /* until the agent says more */
        c->win.limit[i] = PHX_STEP_INPUT_CHUNK;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(input_to, i));
        if (!(c->win_agents[c->win.n] = strdup(name ? name : "")))
            return -1;
        c->win.n++;
    }
    return 0;
}

void phx_step_on_started(phx_agentd_t *a, uint64_t req, uint64_t step, int number,
                         int size, const json_t *input_to)
{
    (void)a;
    client_t *c = by_req(req);
    if (!c) { /* asked and gone already */
        phx_agentd_send(svc.a,
                        json_pack("{s:s, s:I, s:i, s:s, s:b}", "type", "STEP_ABORT",
                                  "step", (json_int_t)step, "status", 130, "message",
                                  "phx run went away", "cancel", 1),
                        NULL, 0);
        return;
    }
    c->step = step;
    if (set_window(c, input_to) < 0) {
        client_error(c, "out of memory for the step's input");
        return;
    }
    client_send(c,
                json_pack("{s:s, s:I, s:i, s:i}", "type", "STEP_STARTED", "step",
                          (json_int_t)step, "number", number, "size", size),
                NULL, 0);
}

void phx_step_svc_output(uint64_t step, int rank, int stream, const void *data,
                         size_t len)
{
    client_t *c = by_step(step);
    int bounded = stream == 2 ? 2 : 1; /* rank -1: the master's words, never */
    if (c)
        client_send_stream(c,
                           json_pack("{s:s, s:i, s:i}", "type", "OUTPUT", "rank", rank,
                                     "stream", stream),
                           rank < 0 ? 0 : bounded, data, len);
}

bool phx_step_svc_output_waits(uint64_t step)
{
    client_t *c = by_step(step);
    if (!c || c->done || c->waited || c->bound.dropping ||
        pending(c) + PHX_STEP_OUTPUT_READ + 1024 <= PHX_STEP_CLIENT_OUTPUT_MAX)
        return false;
    if (!c->waiting) {
        struct timeval tv = {PHX_STEP_CLIENT_WAIT_SECONDS, 0};
        if (!c->stall && !(c->stall = evtimer_new(svc.a->base, on_stall, c)))
            return false;
        if (evtimer_add(c->stall, &tv) < 0)
            return false;
        c->waiting = true;
    }
    return true;
}

void phx_step_on_output(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    const json_t *h = f->header;
    phx_step_svc_output((uint64_t)json_integer_value(json_object_get(h, "step")),
                        (int)json_integer_value(json_object_get(h, "rank")),
                        (int)json_integer_value(json_object_get(h, "stream")),
                        f->attach, f->attach_len);
}

void phx_step_on_done(phx_agentd_t *a, const phx_frame_t *f)
{
    (void)a;
    const json_t *h = f->header;
    const char *msg = json_string_value(json_object_get(h, "message"));
    client_t *c = by_step((uint64_t)json_integer_value(json_object_get(h, "step")));
    if (!c && msg) { /* failed before this agent learnt the step */
        c = by_req((uint64_t)json_integer_value(json_object_get(h, "req")));
        c = c && c->step == 0 ? c : NULL;
    }
    if (c && msg) {
        char why[PHX_ERROR_TEXT_MAX + 32];
        snprintf(why, sizeof(why), "step failed: %s", msg);
        client_error(c, why);
    } else if (c)
        client_finish(c, json_pack("{s:s, s:O, s:O?}", "type", "DONE", "exit_code",
                                   json_object_get(f->header, "exit_code"), "aborted",
                                   json_object_get(f->header, "aborted")));
}

int phx_step_svc_start(phx_agentd_t *a, const char *path, phx_error_t *err)
{
    svc.a = a;
    phx_step_input_budget()->limit =
        (uint64_t)phx_conf_int(a->conf, "agent.input_budget");
    if (!(svc.resume_ev = evtimer_new(a->base, on_resume_again, NULL)))
        return phx_error_set(err, "out of memory");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return phx_error_set(err, "step socket path \"%s\" is too long", path);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    snprintf(svc.path, sizeof(svc.path), "%s", path);
    unlink(path);
    svc.lst = evconnlistener_new_bind(a->base, on_accept, NULL,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                      (struct sockaddr *)&sun, sizeof(sun));
    if (!svc.lst)
        return phx_error_set(err, "could not listen on \"%s\": %s", path,
                             strerror(errno));
    chmod(path, 0777); /* callers are checked with SO_PEERCRED */
    return 0;
}

void phx_step_svc_stop(void)
{
    if (svc.resume_ev)
        event_free(svc.resume_ev);
    svc.resume_ev = NULL;
    while (svc.clients)
        client_free(-1, 0, svc.clients); /* takes it off the list */
    if (svc.lst) {
        evconnlistener_free(svc.lst);
        svc.lst = NULL;
        unlink(svc.path);
    }
}
