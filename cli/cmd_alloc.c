/* phx alloc [sbatch options] [command [args...]]: an interactive
 * allocation, like salloc (doc/jobs.md, "Interactive allocations").
 *
 * The options are sbatch's (batchd reads them as phx submit's); the job's
 * script execs the relay (`phx _relay`, alloc_relay.c) on its first node.
 * phx alloc reads the job's output file (a hidden file in the current
 * directory, as phx run's allocations use) until the relay announces where
 * it listens, then runs the command here with the job's variables and a
 * PHX_AGENT_SOCKET of its own, tunnelled to the relay (alloc_session.c).
 * When the command exits, the relay is told to exit with its code: the job
 * ends COMPLETED or FAILED with it.  SIGINT, SIGTERM or SIGHUP before the
 * command starts, SIGTERM or SIGHUP after, and errors cancel the job. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/alloc.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/job_submit.h"

/* Each flag written once by its handler and never cleared (alloc.h). */
static volatile sig_atomic_t terminated, interrupted;

static void on_signal(int sig)
{
    if (sig == SIGINT)
        interrupted = 1;
    else if (!terminated)
        terminated = sig;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: phx alloc [sbatch options] [command [args...]]\n"
               "  runs command ($SHELL by default) here once the job's nodes are\n"
               "  granted; phx run and srun in it start steps on them; the job ends\n"
               "  with the command, with its exit code\n");
}

/* Options that make no sense for an allocation, refused by name. */
static const char *refused(const char *a)
{
    static const char *const no[] = {
        "-o",      "--output", "-e", "--error", "-i",         "--input",     "-a",
        "--array", "--wrap",   "-W", "--wait",  "--parsable", "--open-mode", NULL};
    size_t n = strcspn(a, "=");
    for (const char *const *r = no; *r; r++) {
        size_t l = strlen(*r);
        if ((n == l && strncmp(a, *r, l) == 0) ||
            (l == 2 && a[1] != '-' && strncmp(a, *r, 2) == 0))
            return *r;
    }
    return NULL;
}

static char *relay_script(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    size_t cap = PATH_MAX * 5 + 64;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    snprintf(s, cap, "#!/bin/sh\nexec");
    phx_cli_shell_quote(s, cap, self);
    size_t l = strlen(s);
    snprintf(s + l, cap - l, " _relay\n");
    return s;
}

/* Is the job's output file, out, still the file that fd (phx alloc's own,
 * made with O_EXCL) is?  Whoever may write in its directory could put a
 * file of theirs there, with an announcement of their own: variables and a
 * PATH for the user's command. */
static bool same_file(int fd, const char *out)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(out, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* Follow the job's output file (fd) until the relay's announcement: 0 (a
 * filled), -2 the job ended first (*code: its exit code), or -1: a signal,
 * no announcement, the file replaced, or batchd refused or stayed silent
 * (a failover is waited through: phx_alloc_job_poll). */
static int wait_relay(const char *prog, long long id, int fd, const char *out,
                      off_t *off, phx_alloc_announce_t *a, int *code)
{
    char *buf = malloc(PHX_ALLOC_LINE_MAX + 1);
    size_t len = 0;
    int rc = -1;
    time_t silent = 0; /* batchd has not answered since then */
    for (int tick = 0; buf && !terminated && !interrupted; tick++) {
        if (!same_file(fd, out)) {
            fprintf(stderr,
                    "%s: the job's output file \"%s\" was replaced or removed\n", prog,
                    out);
            break;
        }
        ssize_t n = pread(fd, buf + len, PHX_ALLOC_LINE_MAX - len, *off);
        if (n > 0) {
            len += (size_t)n;
            *off += n;
        }
        char *nl;
        while ((nl = memchr(buf, '\n', len))) {
            phx_error_t err;
            size_t ll = (size_t)(nl - buf);
            if (phx_alloc_announce_parse(buf, ll, a, &err) == 0) {
                /* what follows it: the relay's messages, shown later */
                *off -= (off_t)(len - ll - 1);
                free(buf);
                return 0;
            }
            if (strncmp(buf, PHX_ALLOC_ANNOUNCE, strlen(PHX_ALLOC_ANNOUNCE)) == 0)
                fprintf(stderr, "%s: %s\n", prog, err.text);
            else
                fprintf(stderr, "%.*s\n", (int)ll, buf);
            memmove(buf, nl + 1, len - ll - 1);
            len -= ll + 1;
        }
        if (len == PHX_ALLOC_LINE_MAX) {
            fprintf(stderr, "%s: the job's output has no announcement of its relay\n",
                    prog);
            break;
        }
        char st[32];
        int ended = tick % 5 == 0
                        ? phx_alloc_job_poll(prog, id, st, sizeof(st), code, &silent)
                        : 0;
        if (ended < 0)
            break;
        if (ended) {
            fprintf(stderr, "%.*s", (int)len, buf);
            fprintf(stderr, "%s: job %lld ended %s before its relay started\n", prog,
                    id, st);
            rc = -2;
            break;
        }
        usleep(100000);
    }
    free(buf);
    return rc;
}

/* Tell the relay to end the job with code: true when it said ok. */
static bool relay_exit(const phx_alloc_session_t *s, int code)
{
    char payload[64], ok[4] = "";
    snprintf(payload, sizeof(payload), "exit %lld %d", s->job, code);
    int fd = phx_alloc_dial(s, payload);
    if (fd < 0)
        return false;
    ssize_t n = recv(fd, ok, 3, MSG_WAITALL);
    close(fd);
    return n == 3 && memcmp(ok, "ok\n", 3) == 0;
}

/* The job's end, waited for (bounded) so that its record is final. */
static void wait_end(const char *prog, long long id)
{
    char st[32];
    int code;
    time_t silent = 0;
    for (int i = 0; i < 300; i++) {
        if (phx_alloc_job_poll(prog, id, st, sizeof(st), &code, &silent) != 0)
            return;
        usleep(100000);
    }
}

static int allocate(const char *prog, json_t *opts, char **cmd, const char *out, int fd)
{
    char *script = relay_script();
    if (!script) {
        fprintf(stderr, "%s: could not find the phx program: %s\n", prog,
                strerror(errno));
        json_decref(opts);
        return 1;
    }
    const char *base = cmd && cmd[0] ? cmd[0] : getenv("SHELL");
    base = base && *base ? base : "sh";
    base = strrchr(base, '/') ? strrchr(base, '/') + 1 : base;
    char line[4096];
    snprintf(line, sizeof(line), "%s", prog);
    for (size_t k = 0; k < json_array_size(opts); k++)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), " %s",
                 json_string_value(json_array_get(opts, k)));
    json_array_append_new(opts, json_string("-o"));
    json_array_append_new(opts, json_string(out));
    long long id = phx_cli_submit_script(script, opts, base, line);
    free(script);
    if (id < 0)
        return 1;
    fprintf(stderr, "%s: Pending job allocation %lld\n", prog, id);
    off_t off = 0;
    char own[64]; /* the relay's messages: from the file made here */
    snprintf(own, sizeof(own), "/proc/self/fd/%d", fd);
    phx_alloc_announce_t relay = {0};
    phx_alloc_session_t s = {.job = id,
                             .relay = &relay,
                             .prog = prog,
                             .out = own,
                             .out_off = &off,
                             .terminated = &terminated};
    int rc = 1, code = 1, waited = wait_relay(prog, id, fd, out, &off, &relay, &code);
    if (waited == 0) {
        fprintf(stderr, "%s: Granted job allocation %lld\n", prog, id);
        rc = phx_alloc_session_run(&s, cmd);
    }
    if (waited == -2) {
        rc = code ? code : 1;
    } else if (rc >= 0 && relay.env && relay_exit(&s, rc > 255 ? 255 : rc)) {
        fprintf(stderr, "%s: Relinquishing job allocation %lld\n", prog, id);
    } else {
        if (phx_alloc_job_cancel(prog, id))
            fprintf(stderr, "%s: Job allocation %lld has been revoked.\n", prog, id);
        if (rc < 0)
            rc = 1;
    }
    wait_end(prog, id);
    phx_alloc_announce_clear(&relay);
    return rc > 255 ? 255 : rc;
}

int phx_cmd_alloc(int argc, char **argv)
{
    const char *prog = "phx alloc";
    int i = 1;
    json_t *opts = json_array();
    for (; i < argc; i++) {
        const char *a = argv[i], *bad;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            json_decref(opts);
            return 0;
        }
        if (strncmp(a, "--prog=", 7) == 0) { /* the salloc wrapper's name */
            prog = a + 7;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0)
            break;
        if ((bad = refused(a))) {
            fprintf(stderr, "%s: option %s is not supported for an allocation\n", prog,
                    bad);
            json_decref(opts);
            return 2;
        }
        json_array_append_new(opts, json_string(a));
        if (!phx_cli_opt_complete(a) && i + 1 < argc)
            json_array_append_new(opts, json_string(argv[++i]));
    }
    char cwd[PATH_MAX - 64], out[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "%s: could not read the current directory: %s\n", prog,
                strerror(errno));
        json_decref(opts);
        return 1;
    }
    snprintf(out, sizeof(out), "%s/.phx-alloc-%d.out", cwd, (int)getpid());
    int fd = open(out, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: could not create \"%s\": %s\n", prog, out,
                strerror(errno));
        json_decref(opts);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* a closed stderr (phx alloc ... 2>&1 | head) must not end phx alloc
     * before it ends the job: it would hold its nodes until its time
     * limit (the command gets SIGPIPE back: alloc_session.c) */
    signal(SIGPIPE, SIG_IGN);
    int rc = allocate(prog, opts, i < argc ? argv + i : NULL, out, fd);
    if (same_file(fd, out)) /* else not ours to remove */
        unlink(out);
    close(fd);
    return rc;
}

int phx_cmd_relay(int argc, char **argv)
{
    return phx_alloc_relay(argc, argv);
}
