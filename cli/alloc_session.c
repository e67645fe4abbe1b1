/* phx alloc's command (alloc.h): a private directory (mkdtemp, 0700) with a
 * unix socket that the command finds as PHX_AGENT_SOCKET; each connection
 * to it (phx run, srun, phx-rsh under mpirun) is tunnelled to the relay on
 * the job's first node, which splices it to the agent. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/alloc.h"
#include "cli/client.h"
#include "cli/job_submit.h"
#include "cli/sock.h"

int phx_alloc_job_poll(const char *prog, long long job, char *state, size_t cap,
                       int *code, time_t *since)
{
    phx_cli_set_quiet(true);
    int rc = phx_cli_job_poll(job, state, cap, code);
    phx_cli_set_quiet(false);
    time_t now = time(NULL);
    if (rc != -2) {
        if (*since)
            fprintf(stderr, "%s: batchd answers again (%s)\n", prog,
                    phx_cli_address(PHX_CLI_BATCHD));
        *since = 0;
        return rc;
    }
    if (!*since) {
        *since = now;
        fprintf(stderr,
                "%s: no batchd answers (a failover?): still waiting for job %lld, up "
                "to %d s\n",
                prog, job, PHX_ALLOC_BATCHD_WAIT);
    }
    if (now - *since < PHX_ALLOC_BATCHD_WAIT)
        return 0;
    fprintf(stderr, "%s: no batchd answered for %d s\n", prog, PHX_ALLOC_BATCHD_WAIT);
    *since = now; /* a caller that goes on hears it again a wait later */
    return -1;
}

bool phx_alloc_job_cancel(const char *prog, long long job)
{
    time_t until = time(NULL) + PHX_ALLOC_CANCEL_WAIT;
    bool told = false;
    for (;;) {
        phx_cli_set_quiet(true);
        int rc = phx_cli_job_cancel(job);
        phx_cli_set_quiet(false);
        if (rc != -2) /* done, or refused (ended already): said */
            return true;
        if (time(NULL) >= until) {
            fprintf(stderr,
                    "%s: no batchd answered: job %lld is not cancelled (phx cancel "
                    "%lld)\n",
                    prog, job, job);
            return false;
        }
        if (!told)
            fprintf(stderr, "%s: no batchd answers (a failover?): asking again\n",
                    prog);
        told = true;
        sleep(1);
    }
}

int phx_alloc_dial(const phx_alloc_session_t *s, const char *payload)
{
    phx_error_t err;
    phx_munge_t *m = phx_cli_munge(&err);
    char *cred = NULL;
    if (!m || phx_munge_encode(m, payload, strlen(payload), 0, &cred, &err) < 0) {
        fprintf(stderr, "%s: %s\n", s->prog, err.text);
        phx_munge_destroy(m);
        return -1;
    }
    phx_munge_destroy(m);
    char port[16];
    snprintf(port, sizeof(port), "%d", s->relay->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(s->relay->host, port, &hints, &ai), fd = -1;
    if (rc != 0) {
        fprintf(stderr, "%s: could not resolve the relay's host \"%s\": %s\n", s->prog,
                s->relay->host, gai_strerror(rc));
        free(cred);
        return -1;
    }
    struct timeval tv = {.tv_sec = PHX_ALLOC_AUTH_SECS};
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* connect too */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            rc = errno;
            close(fd);
            fd = -1;
            errno = rc;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0 && (phx_cli_send_all(fd, cred, strlen(cred)) < 0 ||
                    phx_cli_send_all(fd, "\n", 1) < 0)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        fprintf(stderr, "%s: could not reach the relay of job %lld at %s:%d: %s\n",
                s->prog, s->job, s->relay->host, s->relay->port, strerror(errno));
    free(cred);
    return fd;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 &&
        (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 16) < 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static pid_t start(const phx_alloc_session_t *s, char **argv, const char *sock)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    const char *k;
    json_t *v;
    json_object_foreach(s->relay->env, k, v)
    {
        if (strcmp(k, "PHX_COMPAT_DIR") != 0)
            setenv(k, json_string_value(v), 1);
    }
    /* srun, phx-rsh: where the job has them, first on PATH as in the job */
    const char *compat =
        json_string_value(json_object_get(s->relay->env, "PHX_COMPAT_DIR"));
    const char *path = getenv("PATH");
    char *np = NULL;
    if (compat && access(compat, X_OK) == 0 &&
        asprintf(&np, "%s:%s", compat, path ? path : "/usr/bin:/bin") > 0)
        setenv("PATH", np, 1);
    setenv("PHX_AGENT_SOCKET", sock, 1);
    char *shell[] = {getenv("SHELL"), NULL};
    if (!shell[0] || !*shell[0])
        shell[0] = "/bin/sh";
    char **run = argv && argv[0] ? argv : shell;
    execvp(run[0], run);
    fprintf(stderr, "%s: could not run \"%s\": %s\n", s->prog, run[0], strerror(errno));
    _exit(127);
}

/* A connection of the command: tunnelled to the relay, or closed. */
static phx_splice_t *tunnel(const phx_alloc_session_t *s, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct ucred uc;
    socklen_t ul = sizeof(uc);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0 || uc.uid != getuid()) {
        close(fd);
        return NULL;
    }
    char payload[64];
    snprintf(payload, sizeof(payload), "tunnel %lld", s->job);
    int tfd = phx_alloc_dial(s, payload);
    phx_splice_t *sp = NULL;
    if (tfd >= 0 && phx_alloc_set_nonblock(tfd) == 0)
        sp = phx_splice_create(fd, tfd, NULL, 0);
    if (!sp) {
        close(fd);
        if (tfd >= 0)
            close(tfd);
    }
    return sp;
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Serve the command's connections until it exits (its code) or a signal
 * ends the allocation (-1).  Steps that the command left running (the
 * phx-rsh of an mpirun that exited) get PHX_ALLOC_GRACE seconds more to
 * end before the relay is told to exit. */
#define PHX_ALLOC_GRACE 3
static int serve(const phx_alloc_session_t *s, int lfd, pid_t child)
{
    phx_splice_t *sp[PHX_ALLOC_CONN_MAX];
    size_t n = 0;
    struct pollfd p[1 + 2 * PHX_ALLOC_CONN_MAX];
    time_t checked = time(NULL), silent = 0;
    bool ended = false;
    int rc = -1, status;
    time_t grace = 0;
    while (rc == -1 || (n > 0 && time(NULL) < grace)) {
        p[0] =
            (struct pollfd){rc == -1 && n < PHX_ALLOC_CONN_MAX ? lfd : -1, POLLIN, 0};
        for (size_t i = 0; i < n; i++)
            phx_splice_events(sp[i], &p[1 + 2 * i]);
        if (poll(p, 1 + 2 * n, 250) < 0 && errno != EINTR)
            break;
        for (size_t i = n; i-- > 0;)
            if (!phx_splice_step(sp[i], &p[1 + 2 * i])) {
                phx_splice_close(sp[i]);
                sp[i] = sp[--n];
            }
        if ((p[0].revents & POLLIN) && (sp[n] = tunnel(s, lfd)))
            n++;
        /* SIGINT: the command's (the terminal's), as salloc: not ours */
        if (*s->terminated) {
            if (rc == -1)
                kill(child, SIGHUP);
            rc = -1;
            break;
        }
        if (rc == -1 && waitpid(child, &status, WNOHANG) == child) {
            rc = exit_code(status);
            grace = time(NULL) + PHX_ALLOC_GRACE;
        }
        phx_cli_copy_new(s->out, s->out_off, 2); /* the relay's complaints */
        time_t now = time(NULL);
        if (!ended && now - checked >= 5) {
            char st[32];
            int code;
            checked = now;
            if (phx_alloc_job_poll(s->prog, s->job, st, sizeof(st), &code, &silent) ==
                1) {
                fprintf(stderr, "%s: job %lld ended %s: the allocation is gone\n",
                        s->prog, s->job, st);
                ended = true;
            }
        }
    }
    while (n > 0)
        phx_splice_close(sp[--n]);
    return rc;
}

int phx_alloc_session_run(const phx_alloc_session_t *s, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], sock[300];
    snprintf(dir, sizeof(dir), "%s/phx-alloc.XXXXXX",
             tmp && *tmp && strlen(tmp) < 64 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "%s: could not make a directory \"%s\": %s\n", s->prog, dir,
                strerror(errno));
        return 1;
    }
    snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
    int lfd = listen_unix(sock), rc = 1;
    if (lfd < 0) {
        fprintf(stderr, "%s: could not listen on \"%s\": %s\n", s->prog, sock,
                strerror(errno));
    } else if (*s->terminated) { /* while the relay was being reached */
        rc = -1;
    } else {
        pid_t child = start(s, argv, sock);
        if (child < 0)
            fprintf(stderr, "%s: fork: %s\n", s->prog, strerror(errno));
        else
            rc = serve(s, lfd, child);
        close(lfd);
    }
    unlink(sock);
    rmdir(dir);
    return rc;
}
