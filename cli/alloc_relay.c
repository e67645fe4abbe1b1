/* phx _relay: the job side of phx alloc (doc/jobs.md, "Interactive
 * allocations").  The job's script execs it on the job's first node, as
 * the user, in the batch step's cgroup.  It listens on an ephemeral TCP
 * port of every address, announces its host, port and the job's variables
 * on its standard output (the job's output file, that phx alloc reads),
 * then serves connections: each starts with one munge credential line,
 * encoded by the job's own user (munged refuses a replay) over a payload
 * naming this job; "tunnel" connects it to the agent's step socket
 * (PHX_AGENT_SOCKET: the agent checks that this process is in the job's
 * cgroup) and splices the bytes both ways; "exit CODE" ends the relay, so
 * the job, with CODE.  Anything else is refused, logged on stderr (the
 * output file: phx alloc shows it), and the relay goes on. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/alloc.h"
#include "cli/client.h"
#include "cli/sock.h"

extern char **environ;

typedef struct rconn {
    int fd;
    phx_splice_t *sp; /* NULL until authenticated */
    time_t deadline;
    char peer[INET6_ADDRSTRLEN + 8];
    size_t n;
    char line[PHX_ALLOC_CRED_MAX];
} rconn_t;

typedef struct relay {
    long long job;
    const char *agent;
    phx_munge_t *munge;
    int lfd;
    rconn_t *conns[PHX_ALLOC_CONN_MAX];
    size_t nconns, npending;
    time_t log_since;       /* refusals logged since then (a minute)... */
    unsigned logged, quiet; /* ...and how many were not */
} relay_t;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "phx alloc: relay: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A refused connection, logged: at most PHX_ALLOC_REFUSALS_LOGGED a
 * minute, so that anyone who can connect cannot fill the output file nor
 * the user's terminal (then how many were not, once the minute is over). */
#define PHX_ALLOC_REFUSALS_LOGGED 20
static void refusal(relay_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void refusals_minute(relay_t *r, time_t now)
{
    if (now - r->log_since >= 60) {
        if (r->quiet)
            logmsg("%u more refused connections not logged", r->quiet);
        r->log_since = now;
        r->logged = r->quiet = 0;
    }
}

static void refusal(relay_t *r, const char *fmt, ...)
{
    refusals_minute(r, time(NULL));
    if (r->logged >= PHX_ALLOC_REFUSALS_LOGGED) {
        r->quiet++;
        return;
    }
    r->logged++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "phx alloc: relay: refused a connection from ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int off = 0, on = 1;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        sl = sizeof(*s6);
    } else {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        sl = sizeof(*s4);
    }
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
        phx_alloc_set_nonblock(fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* The job's variables for phx alloc's command, and where srun is (the
 * first directory of PATH: batchd's compat_dir) as PHX_COMPAT_DIR. */
static json_t *job_env(void)
{
    json_t *env = json_object();
    for (char **e = environ; env && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        size_t n = eq ? (size_t)(eq - *e) : 0;
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, *e, n);
        name[n] = '\0';
        json_t *v = phx_alloc_env_wanted(name) ? json_string(eq + 1) : NULL;
        if (v)
            json_object_set_new(env, name, v);
    }
    const char *path = getenv("PATH");
    if (env && path && *path) {
        char dir[4096], srun[4200];
        snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(path, ":"), path);
        snprintf(srun, sizeof(srun), "%s/srun", dir);
        if (dir[0] == '/' && access(srun, X_OK) == 0)
            json_object_set_new(env, "PHX_COMPAT_DIR", json_string(dir));
    }
    return env;
}

static void drop(relay_t *r, size_t i)
{
    rconn_t *c = r->conns[i];
    if (c->sp)
        phx_splice_close(c->sp);
    else {
        close(c->fd);
        r->npending--;
    }
    free(c);
    r->conns[i] = r->conns[--r->nconns];
}

static void accept_one(relay_t *r)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(r->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    char peer[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer,
                  sizeof(peer));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof(peer));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    /* all the unauthenticated slots taken: the oldest goes, not the new one
     * (whoever holds them idle would otherwise lock the user out; a client
     * sends its credential at once, before PHX_ALLOC_PENDING_MAX more
     * connections are accepted, one a turn) */
    if (r->npending >= PHX_ALLOC_PENDING_MAX) {
        size_t old = 0;
        for (size_t i = 0; i < r->nconns; i++)
            if (!r->conns[i]->sp &&
                (r->conns[old]->sp || r->conns[i]->deadline < r->conns[old]->deadline))
                old = i;
        refusal(r, "%s: too many connections waiting for their credential",
                r->conns[old]->peer);
        drop(r, old);
    }
    rconn_t *c = NULL;
    if (r->nconns >= PHX_ALLOC_CONN_MAX || !(c = calloc(1, sizeof(*c)))) {
        refusal(r, "%s: too many connections", peer);
        close(fd);
        return;
    }
    c->fd = fd;
    c->deadline = time(NULL) + PHX_ALLOC_AUTH_SECS;
    /* an IPv4 client of the dual-stack socket: its IPv4 address */
    const char *shown =
        strncmp(peer, "::ffff:", 7) == 0 && strchr(peer, '.') ? peer + 7 : peer;
    snprintf(c->peer, sizeof(c->peer), "%s:%d", shown, port);
    r->conns[r->nconns++] = c;
    r->npending++;
}

static int connect_agent(const char *path)
{
    int fd = phx_cli_connect_unix(path);
    if (fd >= 0 && phx_alloc_set_nonblock(fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The credential line of connection i arrived: -1 dropped, 0 spliced, or
 * 1 and *code: the relay's exit. */
static int authenticate(relay_t *r, size_t i, char *nl, int *code)
{
    rconn_t *c = r->conns[i];
    *nl = '\0';
    uid_t me = getuid();
    phx_munge_policy_t pol = {.uids = &me, .nuids = 1, .max_age = PHX_ALLOC_CRED_AGE};
    phx_munge_cred_t cred;
    phx_error_t err;
    if (phx_munge_decode(r->munge, c->line, &pol, time(NULL), &cred, &err) < 0) {
        refusal(r, "%s: %s", c->peer, err.text);
        drop(r, i);
        return -1;
    }
    int what = phx_alloc_payload_parse(cred.payload, cred.len, r->job, code);
    phx_munge_cred_clear(&cred);
    if (what < 0) {
        refusal(r, "%s: its credential is not for job %lld", c->peer, r->job);
        drop(r, i);
        return -1;
    }
    if (what == 1) {
        (void)!write(c->fd, "ok\n", 3);
        return 1;
    }
    int afd = connect_agent(r->agent);
    size_t rest = c->n - (size_t)(nl + 1 - c->line);
    phx_splice_t *sp = afd < 0 ? NULL : phx_splice_create(c->fd, afd, nl + 1, rest);
    if (!sp) {
        logmsg("could not connect to the agent at \"%s\": %s", r->agent,
               strerror(errno));
        if (afd >= 0)
            close(afd);
        drop(r, i);
        return -1;
    }
    c->sp = sp;
    r->npending--;
    return 0;
}

/* Read what connection i sent of its credential line. */
static int read_cred(relay_t *r, size_t i, int *code)
{
    rconn_t *c = r->conns[i];
    ssize_t n = recv(c->fd, c->line + c->n, sizeof(c->line) - 1 - c->n, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        refusal(r, "%s: closed before its credential", c->peer);
        drop(r, i);
        return -1;
    }
    c->n += (size_t)n;
    c->line[c->n] = '\0';
    char *nl = memchr(c->line, '\n', c->n);
    if (nl)
        return authenticate(r, i, nl, code);
    if (c->n >= sizeof(c->line) - 1) {
        refusal(r, "%s: no credential in its first %d bytes", c->peer,
                PHX_ALLOC_CRED_MAX);
        drop(r, i);
        return -1;
    }
    return 0;
}

/* Serve until an "exit": its code. */
static int serve(relay_t *r)
{
    struct pollfd p[1 + 2 * PHX_ALLOC_CONN_MAX];
    for (;;) {
        p[0] = (struct pollfd){r->lfd, POLLIN, 0};
        for (size_t i = 0; i < r->nconns; i++) {
            if (r->conns[i]->sp)
                phx_splice_events(r->conns[i]->sp, &p[1 + 2 * i]);
            else {
                p[1 + 2 * i] = (struct pollfd){r->conns[i]->fd, POLLIN, 0};
                p[2 + 2 * i] = (struct pollfd){-1, 0, 0};
            }
        }
        size_t n = r->nconns;
        if (poll(p, 1 + 2 * n, 1000) < 0 && errno != EINTR) {
            logmsg("poll: %s", strerror(errno));
            return 1;
        }
        time_t now = time(NULL);
        /* from the last: drop() moves the last connection into slot i */
        for (size_t i = n; i-- > 0;) {
            rconn_t *c = r->conns[i];
            int code = 0;
            if (c->sp) {
                if (!phx_splice_step(c->sp, &p[1 + 2 * i]))
                    drop(r, i);
            } else if (p[1 + 2 * i].revents && read_cred(r, i, &code) == 1) {
                return code;
            } else if (i < r->nconns && r->conns[i] == c && !c->sp &&
                       now > c->deadline) {
                refusal(r, "%s: no credential within %d s", c->peer,
                        PHX_ALLOC_AUTH_SECS);
                drop(r, i);
            }
        }
        if (p[0].revents & POLLIN)
            accept_one(r);
        refusals_minute(r, now);
    }
}

int phx_alloc_relay(int argc, char **argv)
{
    (void)argc, (void)argv;
    relay_t r = {.lfd = -1};
    const char *job = getenv("PHX_JOB_ID");
    r.agent = getenv("PHX_AGENT_SOCKET");
    if (!job || !r.agent || (r.job = atoll(job)) <= 0) {
        logmsg("not in a job (PHX_JOB_ID and PHX_AGENT_SOCKET unset)");
        return 1;
    }
    phx_error_t err;
    if (!(r.munge = phx_cli_munge(&err))) {
        logmsg("%s", err.text);
        return 1;
    }
    int port = 0, rc = 1;
    char host[256] = "";
    json_t *env = job_env();
    char *line = NULL;
    if ((r.lfd = listen_any(&port)) < 0)
        logmsg("could not listen on a TCP port: %s", strerror(errno));
    else if (gethostname(host, sizeof(host) - 1) < 0 || !env ||
             !(line = phx_alloc_announce_format(host, port, env)))
        logmsg("could not make the announcement: %s", strerror(errno));
    else if (fputs(line, stdout) < 0 || fflush(stdout) != 0)
        logmsg("could not write the announcement: %s", strerror(errno));
    else
        rc = serve(&r);
    free(line);
    json_decref(env);
    while (r.nconns > 0)
        drop(&r, r.nconns - 1);
    if (r.lfd >= 0)
        close(r.lfd);
    phx_munge_destroy(r.munge);
    return rc;
}
