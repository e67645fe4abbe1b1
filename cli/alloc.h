/* phx alloc: an interactive allocation (doc/jobs.md, "Interactive
 * allocations").  cmd_alloc.c is the command on the login node,
 * alloc_relay.c the relay that the job runs on its first node
 * (`phx _relay`), alloc_tunnel.c what they share: the relay's announcement,
 * the credential line that opens each TCP connection, and the splice of
 * one connection's bytes both ways. */
#ifndef PHX_CLI_ALLOC_H
#define PHX_CLI_ALLOC_H

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lib/error.h"

/* The relay's first line on its standard output (the job's output file):
 * PHX_ALLOC_ANNOUNCE HOST PORT ENV, ENV being a JSON object of the job's
 * variables, on one line. */
#define PHX_ALLOC_ANNOUNCE    "phx-alloc-relay"
#define PHX_ALLOC_LINE_MAX    (256 * 1024) /* that line, at most */
#define PHX_ALLOC_CRED_MAX    4096         /* a credential line, newline included */
#define PHX_ALLOC_AUTH_SECS   10           /* to send it after connecting */
#define PHX_ALLOC_CRED_AGE    60 /* seconds a credential is taken after encoding */
#define PHX_ALLOC_CONN_MAX    64 /* connections the relay serves at once */
#define PHX_ALLOC_PENDING_MAX 16 /* of them, not authenticated yet */
#define PHX_ALLOC_SPLICE_BUF  65536

typedef struct phx_alloc_announce {
    char host[256];
    int port;
    json_t *env; /* owned: NAME -> string value */
} phx_alloc_announce_t;

/* Read one announcement line (without its newline).  0 and *a filled, or
 * -1 with err (a: untouched). */
int phx_alloc_announce_parse(const char *line, size_t len, phx_alloc_announce_t *a,
                             phx_error_t *err);
void phx_alloc_announce_clear(phx_alloc_announce_t *a);
/* The announcement line for host, port and env (one JSON line, '\n'
 * ended); NULL on ENOMEM.  The caller frees it. */
char *phx_alloc_announce_format(const char *host, int port, const json_t *env);

/* Is name a variable of the job that phx alloc's command gets?  PHX_*,
 * SLURM_* and OpenMPI's mpirun settings, without the ones that say where
 * the daemons are (the command's own are right for its node) and the agent
 * socket (phx alloc's). */
bool phx_alloc_env_wanted(const char *name);

/* The payloads the credentials carry: "tunnel JOB" opens a tunnel to the
 * agent, "exit JOB CODE" ends the relay with CODE.  Parse one: 0 (tunnel),
 * 1 (exit, *code set), -1 not one of these for job. */
int phx_alloc_payload_parse(const char *p, size_t len, long long job, int *code);

/* One connection spliced to another: bytes read from fd[i] are written to
 * fd[1 - i].  Both fds non-blocking, owned (closed by phx_splice_close). */
typedef struct phx_splice {
    int fd[2];
    uint8_t *buf[2];
    size_t len[2], off[2];
    bool eof[2];
} phx_splice_t;
/* NULL on ENOMEM (a and b then left open). pre: bytes already read from a
 * to write to b first (at most PHX_ALLOC_SPLICE_BUF). */
phx_splice_t *phx_splice_create(int a, int b, const void *pre, size_t pre_len);
void phx_splice_events(const phx_splice_t *s, struct pollfd p[2]);
/* Move what p's revents allow; false when the splice is over: a side
 * closed (what it had sent delivered) or failed. */
bool phx_splice_step(phx_splice_t *s, const struct pollfd p[2]);
void phx_splice_close(phx_splice_t *s);

int phx_alloc_set_nonblock(int fd);

/* The command's side (alloc_session.c). */
typedef struct phx_alloc_session {
    long long job;
    const phx_alloc_announce_t *relay;
    const char *prog; /* "phx alloc" or "salloc": messages' prefix */
    const char *out;  /* the job's output file, copied to stderr as it grows */
    off_t *out_off;
    /* SIGTERM or SIGHUP, the first that came (0: none): set by the handler
     * and never cleared.  SIGINT has a flag of its own (the command's,
     * once it runs): one slot for "the last signal" was overwritten by a
     * SIGINT after a SIGTERM, or cleared as a SIGINT just after a SIGTERM
     * came, and the job went on holding its nodes (tests/e2e/t0383). */
    volatile sig_atomic_t *terminated;
} phx_alloc_session_t;
/* batchd through a failover (a standby answers 503 naming the leader;
 * the next one leads within seconds): the job's state as
 * phx_cli_job_poll, no answer taken as still waiting (0) until
 * PHX_ALLOC_BATCHD_WAIT seconds without one (then -1).  *since: when the
 * silence began (0: batchd answered last); told once each way. */
#define PHX_ALLOC_BATCHD_WAIT 600
#define PHX_ALLOC_CANCEL_WAIT 60 /* to cancel the job, likewise */
int phx_alloc_job_poll(const char *prog, long long job, char *state, size_t cap,
                       int *code, time_t *since);
/* Cancel the job, asking again while no batchd answers (up to
 * PHX_ALLOC_CANCEL_WAIT seconds): false when none did (said). */
bool phx_alloc_job_cancel(const char *prog, long long job);

/* Connect to the relay and send a credential over payload; the socket
 * (blocking), or -1 after a message. */
int phx_alloc_dial(const phx_alloc_session_t *s, const char *payload);
/* Run argv (NULL: $SHELL, else /bin/sh) with the job's variables and
 * PHX_AGENT_SOCKET on a private socket whose connections are tunnelled to
 * the relay, until it exits: its exit code (128+N for a signal N), or -1
 * when SIGTERM or SIGHUP arrived first (the command was sent SIGHUP). */
int phx_alloc_session_run(const phx_alloc_session_t *s, char **argv);

/* The relay: `phx _relay` (alloc_relay.c), run by the job's script. */
int phx_alloc_relay(int argc, char **argv);

#endif
