/* A C client for the master's scheduler API (Mesos v1 shaped, JSON), on the
 * caller's libevent loop: subscribe (with a munge credential), receive
 * events through callbacks, make calls, resubscribe with backoff when the
 * stream breaks (keeping the framework id, so running tasks survive within
 * the failover timeout).  Loop thread only. */
#ifndef PHX_FRAMEWORK_H
#define PHX_FRAMEWORK_H

#include <event2/event.h>
#include <jansson.h>

#include "lib/masters.h"
#include <stdbool.h>

#include "lib/error.h"

/* TaskInfo "phx": {"script": …}: the most bytes of a script the agent runs
 * from memory (see doc/scheduler-api.md); Slurm's default limit too. */
#define PHX_TASK_SCRIPT_MAX (4 << 20)

/* TaskInfo "phx": {"warn": {"signal": 1-64 (not 32, 33), "before": 0-65535
 * seconds, "to": "main"|"steps"}}: a signal before the time limit to the
 * task's program or its steps' ranks (sbatch --signal).  Checked alike by
 * the master and the agent. */
typedef struct phx_task_warn {
    int signal, before;
    bool main;
} phx_task_warn_t;
/* obj's "warn": 1 with *out, 0 when it has none, -1 with err. */
int phx_task_warn_parse(const json_t *obj, phx_task_warn_t *out, phx_error_t *err);

/* SIGNAL (scancel -s; doc/scheduler-api.md): {"signal": 1-64 (not 32, 33),
 * "to": "steps"|"main"|"all"}: a signal now to a running task's steps'
 * ranks (steps), its program alone (main), or its program's process group
 * (the program and its children, but not the `phx run` step clients among
 * them) and the steps' ranks (all).  Checked
 * alike by the master (the SIGNAL call) and the agent (the SIGNAL frame). */
typedef enum phx_task_sig_to {
    PHX_SIG_TO_STEPS,
    PHX_SIG_TO_MAIN,
    PHX_SIG_TO_ALL,
} phx_task_sig_to_t;
typedef struct phx_task_signal {
    int signal;
    phx_task_sig_to_t to;
} phx_task_signal_t;
/* The reason an agent gives (SIGNAL_DONE "error", passed on in the master's
 * 409) when a "steps" signal found no step of the job on its node: nothing
 * to signal there, which a framework need not count as a failure (scancel
 * -s of a job whose steps run on some of its nodes). */
#define PHX_SIGNAL_NO_STEP "no step of the job runs on its node"
/* obj's "signal" and "to": 0 with *out, or -1 with err. */
int phx_task_signal_parse(const json_t *obj, phx_task_signal_t *out, phx_error_t *err);
const char *phx_task_sig_to_name(phx_task_sig_to_t to);

/* The longest time limit of a task, in seconds (100 years): the agent
 * refuses a launch beyond it, so the master refuses such an ACCEPT (a
 * TaskInfo's max_completion_time) before it commits the gang. */
#define PHX_TASK_TIME_LIMIT_MAX (100LL * 365 * 86400)

typedef struct phx_fwc phx_fwc_t;

/* Borrowed arguments live for the callback's duration only. */
typedef struct phx_fwc_callbacks {
    void (*subscribed)(phx_fwc_t *c, const char *framework_id, void *arg);
    /* offers: the "offers" array of an OFFERS event */
    void (*offers)(phx_fwc_t *c, const json_t *offers, void *arg);
    void (*rescind)(phx_fwc_t *c, const char *offer_id, void *arg);
    /* status: a TaskStatus; acknowledged after the callback returns when
     * it carries a uuid and auto_ack is set */
    void (*update)(phx_fwc_t *c, const json_t *status, void *arg);
    void (*error)(phx_fwc_t *c, const char *message, void *arg);
    /* The stream broke; the client resubscribes by itself. */
    void (*disconnected)(phx_fwc_t *c, const char *why, void *arg);
} phx_fwc_callbacks_t;

typedef struct phx_fwc_opts {
    const char *host; /* the master's HTTP address */
    int port;
    /* Several masters (doc/admin.md, "High availability"): tried in turn
     * until one leads, following a standby's refusal to the leader it
     * names if the list has it.  NULL: host and port only. */
    const phx_masters_t *masters;
    const char *name, *user, *role;
    double failover_timeout;  /* seconds */
    const char *framework_id; /* resume this framework (NULL: a new one) */
    const char *munge_socket; /* NULL: munge's default */
    bool authenticate;        /* send a munge credential with SUBSCRIBE */
    bool auto_ack;
} phx_fwc_opts_t;

/* Strings of opts are copied.  NULL with err on failure. */
phx_fwc_t *phx_fwc_create(struct event_base *base, const phx_fwc_opts_t *opts,
                          const phx_fwc_callbacks_t *cbs, void *arg, phx_error_t *err);
/* Subscribe now (and again after every break, with backoff). */
int phx_fwc_start(phx_fwc_t *c, phx_error_t *err);
/* NULL is a no-op.  No callback fires afterwards. */
void phx_fwc_destroy(phx_fwc_t *c);
/* The framework id once subscribed, else NULL. */
const char *phx_fwc_id(const phx_fwc_t *c);

/* Completion of a call: status is the HTTP status (202 on success, 0 if no
 * answer came), body the answer's text. */
typedef void (*phx_fwc_done_f)(phx_fwc_t *c, int status, const char *body, void *arg);

/* Calls go out in order on one connection, each after the previous one's
 * answer; acknowledgements travel on connections of their own (in any order
 * with respect to other calls), so that they never hold up an ACCEPT.
 *
 * Send a call: `call` (stolen) gets "framework_id" filled in.  done may be
 * NULL; then failures are reported through the error callback.  -1 if not
 * subscribed. */
int phx_fwc_call(phx_fwc_t *c, json_t *call, phx_fwc_done_f done, void *arg);

/* Convenience calls.  offer_ids and operations are borrowed. */
int phx_fwc_accept(phx_fwc_t *c, const json_t *offer_ids, const json_t *operations,
                   phx_fwc_done_f done, void *arg);
int phx_fwc_decline(phx_fwc_t *c, const json_t *offer_ids, double refuse_seconds);
int phx_fwc_kill(phx_fwc_t *c, const char *task_id, const char *agent_id);
/* SIGNAL one of our tasks (phx_task_signal_t); done as for phx_fwc_call. */
int phx_fwc_signal(phx_fwc_t *c, const char *task_id, const phx_task_signal_t *s,
                   phx_fwc_done_f done, void *arg);
int phx_fwc_acknowledge(phx_fwc_t *c, const json_t *status);
/* tasks: array of task id strings, or NULL for implicit reconciliation. */
int phx_fwc_reconcile(phx_fwc_t *c, const json_t *task_ids);
int phx_fwc_revive(phx_fwc_t *c);
int phx_fwc_suppress(phx_fwc_t *c);
int phx_fwc_teardown(phx_fwc_t *c);

#endif
