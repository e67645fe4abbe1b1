/* phx-agent: MPI steps (doc/steps.md).  Loop thread only.
 *
 *   phx run ──unix socket (step.sock, SO_PEERCRED)──▶ agent ──STEP_REQUEST──▶ master
 *   master ──STEP_LAUNCH──▶ every agent of the step: register the PMIx
 *   namespace, fork the local ranks as the job's user inside the job task's
 *   cgroup, bound to their cores; serve PMIx; report exits.
 *
 * The step state is file-local to the step files (one agent per process). */
#ifndef PHX_AGENT_STEP_H
#define PHX_AGENT_STEP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemons/agent/agent.h"
#include "daemons/agent/step_inq.h"
#include "lib/winsize.h"
#include "lib/wire.h"
#include "pmix/pmix.h"
#include "topology/coreset.h"

/* One local rank of a step. */
typedef struct phx_step_rank {
    struct phx_lstep *step;
    int rank, local;
    pid_t pid;
    int pidfd;
    struct event *exit_ev;
    int fds[2]; /* stdout, stderr read ends, -1 once closed */
    struct event *out_ev[2];
    int in_fd;           /* stdin's write end, -1: none or closed */
    struct event *in_ev; /* in_fd writable (while behind) */
    uint64_t in_off;     /* bytes of the step's input written into it */
    bool tty;            /* on a terminal (--pty): fds[0] and in_fd its master */
    bool in_partial;     /* tty: the last byte written did not end a line */
    bool exited, connected, finalized;
    int status; /* wait status */
    char *gpus; /* the GPUs it sees, "0,1" (gpu_split.c); NULL: none */
} phx_step_rank_t;

/* A step with ranks on this agent. */
typedef struct phx_lstep {
    struct phx_lstep *next;
    uint64_t id;
    int number; /* the step's number in its job (PHX_STEP_ID), -1 if unknown */
    char nspace[64];
    char origin[256];                       /* the agent of `phx run` */
    char framework_id[PHX_TASK_FW_MAX + 1]; /* the job's task here */
    char task_id[PHX_TASK_ID_MAX + 1];
    struct event *watch_ev; /* the ranks go when the task goes */
    phx_pmix_map_t map;
    char **nodes; /* map storage */
    int *nranks;
    int **ranks;
    int nlocal;
    phx_step_rank_t *local;
    int live;               /* local ranks not yet exited */
    int spawned;            /* local ranks started (or given up) so far */
    json_t *launch;         /* the STEP_LAUNCH, while ranks are left to start */
    struct event *spawn_ev; /* starts the next ones on a later loop pass */
    uint64_t fence_seq;     /* next fence sent */
    uint64_t fence_token;   /* PMIx's pending fence */
    double fence_t0;        /* when the pending fence went to the master */
    int dmodex;             /* direct-modex requests sent */
    int fences;             /* completed cross-agent fences, and their */
    double fence_sum, fence_min, fence_max; /* round trips, seconds */
    double user_s, system_s;                /* CPU times of the exited local ranks */
    int64_t max_rss;    /* the highest max RSS of one of them, bytes */
    int input;          /* who gets the input: PHX_STEP_INPUT_* or a rank */
    phx_winsize_t pty;  /* rank 0's terminal's size (--pty); rows 0: none */
    phx_step_inq_t inq; /* input not yet written into every local rank */
    uint64_t in_acked;  /* told the origin (another agent) */
    uint64_t in_limit;  /* and what it may send (0: PHX_STEP_INPUT_CHUNK) */
    uint64_t in_charge; /* in the agent's input budget */
    bool registered;    /* namespace registered */
    bool killed, abort_sent;
    bool kill_on_bad_exit; /* -K: a rank ending badly ends the step everywhere */
} phx_lstep_t;

/* step.c */
phx_agentd_t *phx_step_agent(void);
phx_pmix_t *phx_step_pmix(void);
phx_lstep_t *phx_lstep_by_id(uint64_t id);
phx_lstep_t *phx_lstep_by_nspace(const char *nspace);
/* Ask the master to kill the step everywhere (once); cancel: not the step's
 * own failure (its `phx run` or its job went away). */
/* What a step's local ranks ended with, for STEP_EXIT (step_exit.c):
 * zeroed, then phx_step_exits_add per rank. */
typedef struct phx_step_exits {
    int nranks;
    int worst;        /* highest of exit code, or 128 + signal */
    int max_code;     /* highest exit code */
    int max_signal;   /* highest signal */
    int failed;       /* ranks with a code or a signal */
    int first_failed; /* the lowest of them (when failed > 0) */
} phx_step_exits_t;
void phx_step_exits_add(phx_step_exits_t *e, int rank, int code, int sig);
/* The STEP_EXIT header of step; NULL if out of memory. */
json_t *phx_step_exits_json(const phx_step_exits_t *e, uint64_t step);

void phx_lstep_abort(phx_lstep_t *s, int status, bool cancel, const char *why);
void phx_lstep_launch(phx_agentd_t *a, const phx_frame_t *f);
/* step_launch.c: pure: a STEP_LAUNCH whole: its header's fields and, when
 * it has an attachment, the fields common to every agent of the step that
 * the attachment holds (a JSON object; the header's win).  A new reference
 * (caller decrefs), or NULL with err. */
json_t *phx_lstep_launch_join(const phx_frame_t *f, phx_error_t *err);
void phx_lstep_kill(phx_agentd_t *a, const phx_frame_t *f);
/* Send sig to the ranks (their process groups) of the steps running in the
 * job task framework_id/task_id on this agent; how many were signalled, or
 * -1 when ranks run there but none could be signalled. */
int phx_lstep_signal_task(const char *framework_id, const char *task_id, int sig);
/* signal.c: send sig to the process groups (else the processes) groups[0..n)
 * as uid/gid would, from a child that takes them (the agent is root): the
 * kernel then spares what the user may not signal.  How many got it; 0,
 * logged, when the child could not be made or become the user. */
int phx_signal_groups_as(uid_t uid, gid_t gid, const pid_t *groups, int n, int sig);
/* signal.c: the same for the process pid alone; 1 if it got it. */
int phx_signal_pid_as(uid_t uid, gid_t gid, pid_t pid, int sig);
/* Read the local ranks' output again (its client has room, or waited too
 * long for it: see step_bound.h). */
void phx_lstep_output_resume(uint64_t step);

/* step_exec.c: the rank's process, from fork to exec; never returns.
 * devices: the cgroup.procs of the devices cgroup it joins after the job's
 * other cgroups (phx_task_gpu_cg_rank), "" for none; failing to join it
 * ends the rank before the exec. */
void phx_lstep_exec_rank(phx_lstep_t *s, phx_step_rank_t *r, const struct phx_task *t,
                         const char *devices, phx_topo_coreset_t *cores, char **argv,
                         char **env, const char *cwd, const gid_t *groups, int ngroups,
                         int out[2], int err[2], int inp[2]);

/* step_pty.c: rank 0 on a terminal (--pty). */
/* Before fork: fds[0] the master, fds[1] the slave, given to uid (0620),
 * sized s->pty; -1 with err. */
int phx_lstep_pty_open(const phx_lstep_t *s, uid_t uid, int fds[2], phx_error_t *err);
/* In the child: its own session, the slave its controlling terminal and
 * 0, 1, 2; the master closed.  -1 on failure. */
int phx_lstep_pty_child(int fds[2]);
/* The input ended: end-of-file on the terminal. */
void phx_lstep_pty_eof(phx_step_rank_t *r);
/* A new size of the terminal of step's `phx run`: applied to rank 0's
 * here, and elsewhere: held (the latest) for rank 0's agent, sent at most
 * PHX_WINSIZE_RATE a second.  forget: the step's client is gone. */
void phx_step_pty_resize(uint64_t step, bool elsewhere, const phx_winsize_t *ws);
void phx_step_pty_forget(uint64_t step);
void phx_step_on_winsize(phx_agentd_t *a, const phx_frame_t *f);

/* step_pmix.c: PMIx callbacks and the fence/dmodex frames. */
extern const phx_pmix_ops_t phx_step_pmix_ops;
void phx_step_on_fence_done(phx_agentd_t *a, const phx_frame_t *f);
void phx_step_on_dmodex_req(phx_agentd_t *a, const phx_frame_t *f);
void phx_step_on_dmodex_done(phx_agentd_t *a, const phx_frame_t *f);
void phx_step_pmix_clear(void);

/* gpu_split.c: the GPUs each of nlocal local ranks sees, out of the job
 * task's here (gpus: node-local indexes, "0,1,3"): per_task > 0 gives each
 * its own per_task of them, under bind "closest" (or NULL) those near its
 * cores (cores[r]: the JSON array of its core ids; NULL or none: in order)
 * first; bind "none", or per_task 0, all of them; an explicit "closest"
 * without per_task those near its cores (all when none is).  An array of
 * nlocal strings ("0,1", "" for none; phx_gpu_split_free), or NULL with err
 * (too few GPUs for per_task each). */
char **phx_gpu_split(const phx_topo_t *topo, const char *gpus, int per_task,
                     const char *bind, int nlocal, const json_t *cores,
                     phx_error_t *err);
void phx_gpu_split_free(char **sets, int nlocal);
/* The step's ranks here (s->local[].gpus) from the STEP_LAUNCH h
 * ("gpus_per_task", "gpu_bind", "cores") and the task's GPUs; -1 with err. */
int phx_lstep_gpus(phx_lstep_t *s, const struct phx_task *t, const json_t *h,
                   phx_error_t *err);
/* Name the GPUs (NULL: none, nothing set) to a rank: its environment's
 * CUDA_VISIBLE_DEVICES and the others (phx_gpu_env_vars); -1 on ENOMEM. */
int phx_gpu_env_put(char ***env, int *n, const char *gpus);

/* step_input.c: the ranks' stdin (step_inq.h). */
/* Before fork: a pipe for r's stdin in p (-1s when r gets /dev/null);
 * -1 with err. After fork: the parent keeps p[1] (started). */
int phx_lstep_input_pipe(phx_lstep_t *s, phx_step_rank_t *r, int p[2],
                         phx_error_t *err);
void phx_lstep_input_started(phx_step_rank_t *r, int p[2]);
/* The rank exited: its stdin closes, the others go on. */
void phx_lstep_input_close(phx_step_rank_t *r);
/* The step leaves this agent: what it received counts as written. */
void phx_lstep_input_end(phx_lstep_t *s);
/* The origin's own ranks: input of its `phx run`, and the bytes of it not
 * yet written into all of them. */
void phx_lstep_input_local(uint64_t step, const void *data, size_t len, bool eof);
size_t phx_lstep_input_held(uint64_t step);
/* What the step's queue here is charged in the agent's input budget. */
uint64_t phx_lstep_input_charge(uint64_t step);
/* The agent's input budget (agent.input_budget), shared by every step. */
phx_step_budget_t *phx_step_input_budget(void);
void phx_step_on_input(phx_agentd_t *a, const phx_frame_t *f);
void phx_step_on_input_ack(phx_agentd_t *a, const phx_frame_t *f);

/* step_svc.c: the local service of `phx run`. */
int phx_step_svc_start(phx_agentd_t *a, const char *path, phx_error_t *err);
void phx_step_svc_stop(void);
/* Output of a rank for the step's `phx run` (origin side). */
void phx_step_svc_output(uint64_t step, int rank, int stream, const void *data,
                         size_t len);
/* Should the step's local ranks' output wait before it is read?  true: stop
 * reading it; phx_lstep_output_resume says when to read again. */
bool phx_step_svc_output_waits(uint64_t step);
/* Is pid a connected `phx run` (SO_PEERCRED's pid)? */
bool phx_step_svc_is_client(pid_t pid);
/* ERROR to every client that asked for a step. */
void phx_step_svc_fail_all(const char *why);
void phx_step_on_refused(phx_agentd_t *a, const phx_frame_t *f);
/* input_to: the other agents whose ranks get the input (names). */
void phx_step_on_started(phx_agentd_t *a, uint64_t req, uint64_t step, int number,
                         int size, const json_t *input_to);
/* Room for more of `phx run`'s input: read its socket again. */
void phx_step_svc_input_resume(uint64_t step);
/* The input budget has room again: every client waiting may read. */
void phx_step_svc_input_resume_all(void);
/* Agent acknowledged the step's input below offset, and lets window more
 * bytes be sent (0: not said). */
void phx_step_svc_input_ack(uint64_t step, const char *agent, uint64_t offset,
                            uint64_t window);
void phx_step_on_done(phx_agentd_t *a, const phx_frame_t *f);
void phx_step_on_output(phx_agentd_t *a, const phx_frame_t *f);

/* The entry points the daemon calls are in agent.h. */

#endif
