/* MPI steps in the master: a step runs ranks across the agents of one gang.
 * The master lays the ranks out, orders the launches and routes what the
 * agents of a step exchange: fences (a star today: every agent sends its
 * contribution here and gets the concatenation back; FENCE carries a seq so
 * that a tree can replace the star), direct-modex requests, rank output to
 * the agent that asked for the step, exits and kills.  Loop thread only.
 *
 * Agent → master frames: STEP_REQUEST, FENCE, DMODEX, DMODEX_DATA,
 * STEP_OUTPUT, STEP_INPUT (origin only), STEP_INPUT_ACK, STEP_EXIT,
 * STEP_ABORT.  Master → agent: STEP_LAUNCH, STEP_STARTED, STEP_REFUSED,
 * FENCE_DONE, DMODEX_REQ, DMODEX_DONE, STEP_OUTPUT, STEP_INPUT,
 * STEP_INPUT_ACK, STEP_DONE, STEP_KILL.  See doc/steps.md. */
#ifndef PHX_MASTER_STEP_H
#define PHX_MASTER_STEP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/master/master.h"
#include "daemons/master/step_record.h"
#include "lib/error.h"
#include "lib/winsize.h"
#include "lib/wire.h"
#include "lib/wire_seal.h"

typedef struct phx_step phx_step_t;

/* A step's input goes to every rank, to none, or to one rank (>= 0). */
#define PHX_STEP_IN_ALL  (-1)
#define PHX_STEP_IN_NONE (-2)

/* The ranks of a step on one agent. */
typedef struct phx_step_part {
    char *agent;   /* agent name */
    char *task_id; /* the gang's task on that agent */
    int nranks;    /* ranks it hosts */
    int *ranks;    /* ascending */
    int **cores;   /* per local rank: its core ids, or NULL (the task's) */
    int *ncores;   /* per local rank: how many */
    bool oversubscribed;
    bool fenced;    /* contributed to the current fence */
    uint8_t *fence; /* its contribution */
    size_t fence_len;
    bool launched; /* its STEP_LAUNCH was queued */
    bool exited;   /* STEP_EXIT received, or never launched */
} phx_step_part_t;

struct phx_step {
    uint64_t id;
    char nspace[64];
    char *origin;         /* agent that asked (name) */
    uint64_t origin_link; /* its connection then (phx_master_agent_t links) */
    json_t *req;          /* the origin's request id */
    char *fw_id;
    int64_t gang_id;
    int size;
    int cpus_per_task;
    int nparts;
    phx_step_part_t *parts;
    uint64_t fence_seq;
    int fenced;
    int exited;
    int exit_code;  /* highest rank code or 128+signal */
    int max_code;   /* highest rank exit code */
    int max_signal; /* highest signal that killed a rank */
    bool aborted;
    int abort_code;
    phx_step_cause_t cause;    /* why the master killed it, if it did */
    char *failed;              /* why it could not launch everywhere (STEP_DONE's
                                  message), or NULL */
    int input;                 /* who gets `phx run`'s stdin: PHX_STEP_IN_* or a rank */
    phx_step_rec_t rec;        /* its accounting record (job_steps) */
    phx_winsize_gate_t resize; /* --pty: the origin's latest size, not sent */
    struct event *resize_ev;   /* when it may go (step_route.c) */
    phx_master_t *m;           /* resize_ev's */
};

/* The ranks of one step, at most. */
#define PHX_STEP_TASKS_MAX (1 << 20)

/* The step request of a job's task, as the agent forwarded it. */
typedef struct phx_step_req {
    int nodes, ntasks, ntasks_per_node, cpus_per_task;
    int max_per_node;      /* ranks one node may get (master.max_step_tasks_per_node);
                              0: no bound */
    const int *job_counts; /* the job's layout (phx_step_job_layout): the ranks
                              of node i, for every node; NULL: none */
    bool cyclic;
    bool bind_cores;    /* --cpu-bind=cores (or sockets); none: the task's cores */
    bool bind_sockets;  /* --cpu-bind=sockets: the task's cores on the sockets
                           of the rank's cores */
    int gpus_per_task;  /* --gpus-per-task (0: the ranks share the node's GPUs) */
    bool gpu_bind_none; /* --gpu-bind=none: every rank sees the node's GPUs */
} phx_step_req_t;

/* step_layout.c: pure: lay ranks out over nnodes nodes of ncores[i] cores.
 * Returns the number of ranks n; counts[i] gets the ranks of node i and
 * *rank_node (malloc'd, n entries, caller frees) the node of each rank.
 * With req->job_counts, node i gets job_counts[i] (the job's layout; not
 * with nodes or ntasks_per_node, and ntasks 0 or their sum), else the
 * ranks spread evenly, the larger shares first.  -1 with err when the
 * request cannot fit its shape or would put more than req->max_per_node
 * ranks on a node. */
int phx_step_layout(const phx_step_req_t *req, int nnodes, const int *ncores,
                    int *counts, int **rank_node, phx_error_t *err);

/* step_layout.c: pure: a step's -w (want) and -x (skip) over the job's
 * nodes names[0 .. *n): every name of either must be one of them; the
 * nodes are reordered in place, -w's first, then the others (-N above
 * -w's count takes them in order), -x's dropped, the order otherwise
 * kept; *n becomes the nodes left, and req->nodes -w's count when unset.
 * 0 or -1 with err (a name not of the job, -N below -w's count, no node
 * left). */
int phx_step_pick_nodes(void **nodes, const char *const *names, int *n,
                        char *const *want, size_t nwant, char *const *skip,
                        size_t nskip, phx_step_req_t *req, phx_error_t *err);

/* step_layout.c: pure: the request's "job_layout" {"nodelist": the job's
 * host list (PHX_JOB_NODELIST), "tasks_per_node": its tasks on each in
 * that list's order ("2(x3),1", PHX_TASKS_PER_NODE)}: what `phx run` sends
 * when no option shapes the step, for the ranks to take the job's layout.
 * The list must name each of the gang's nodes names[0 .. n) once, and no
 * other, each with 1 to PHX_STEP_TASKS_MAX tasks; it comes with no
 * "nodelist" or "exclude" (-w, -x).  nodes (names[i] is that of nodes[i])
 * are reordered into the list's order and counts[i] gets node i's tasks
 * there (n entries).  1 when applied, 0 when the request has none, -1
 * with err. */
int phx_step_job_layout(const json_t *h, void **nodes, const char *const *names, int n,
                        int *counts, phx_error_t *err);

/* step_check.c: pure: the request's command: argv a non-empty array of
 * strings, env (optional) an object of "NAME": "value" strings, cwd
 * (optional) a string; none with a NUL inside.  -1 with err naming the
 * field ("argv[2]: not a string", "env[\"HOME\"]: not a string"). */
int phx_step_check_command(const json_t *h, phx_error_t *err);

/* step_check.c: pure: the request's "gpus_per_task" (0 to 1024, absent 0)
 * into r and its "gpu_bind" (absent, "closest" or "none"); -1 with err. */
int phx_step_check_gpu_opts(const json_t *h, phx_step_req_t *r, phx_error_t *err);
/* step_check.c: pure: the GPUs the step's nranks ranks on a node where the
 * job has ngpus are given, for its accounting (job_steps.alloc_gpus): K
 * each under --gpus-per-task=K (the agent's split, gpu_split.c), else all
 * of them (every rank sees the job's GPUs there; an explicit
 * --gpu-bind=closest without K, which gives each rank those near its cores,
 * is counted so too). */
int phx_step_gpus_on_node(const phx_step_req_t *r, int nranks, int ngpus);
/* step_check.c: pure: ntasks ranks on agent, where the job has ngpus GPUs,
 * with r's GPUs per task: -1 with err when they need more than ngpus. */
int phx_step_check_gpus(const phx_step_req_t *r, const char *agent, int ntasks,
                        int ngpus, phx_error_t *err);

/* step.c: the agent frames, dispatched by type. */
void phx_step_on_frame(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
void phx_step_on_request(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
void phx_step_on_exit(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
void phx_step_on_abort(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
phx_step_t *phx_step_find(const json_t *hdr);
/* Send a frame to a part's agent (steals hdr). */
int phx_step_send(phx_master_t *m, const char *agent, json_t *hdr, const void *attach,
                  size_t len);
/* Kill the step everywhere (once). */
void phx_step_kill(phx_master_t *m, phx_step_t *s, int code, const char *why);

/* step_launch.c: the STEP_LAUNCH frames (doc/steps.md, "Launch frames"):
 * the fields every agent gets alike (the frames' shared attachment, from
 * the request h) and part i's header. */
json_t *phx_step_launch_common(const phx_step_t *s, const json_t *h);
json_t *phx_step_launch_header(const phx_step_t *s, int i);
/* Queue every part's launch in order, the common fields serialised once
 * and shared; each part queued is marked launched.  0, or -1 with err
 * (naming the agent and why) at the first part that could not be: the
 * parts after it are not sent. */
int phx_step_launch_send(phx_master_t *m, phx_step_t *s, const json_t *h,
                         phx_error_t *err);
/* The agents other than the origin whose ranks get the step's input. */
json_t *phx_step_input_to(const phx_step_t *s);

/* step_acct.c: record the step in job_steps (rec is copied), retried until
 * its job is visible; clear frees what is still pending (at exit). */
void phx_step_acct_write(phx_master_t *m, const phx_step_rec_t *rec);
void phx_step_acct_clear(void);

/* step_fence.c: the concatenation of parts' contributions (*out malloc'd,
 * caller frees; the parts are left as they are), or -1 with errno and err
 * when it would not fit in a frame of max_frame bytes less
 * PHX_STEP_FENCE_HEADROOM (prefix, FENCE_DONE's header, seal), or on no
 * memory. */
#define PHX_STEP_FENCE_HEADROOM (PHX_WIRE_PREFIX + PHX_WIRE_SEAL_OVERHEAD + 512u)
/* Whether the data held for a fence plus adding bytes still fit in one
 * FENCE_DONE: checked as each agent's part comes, so that a step fails at
 * once rather than holding the data until its last part fences (a part
 * that never fences pinned the others'). */
int phx_step_fence_fits(const phx_step_part_t *parts, int nparts, size_t adding,
                        size_t max_frame, phx_error_t *err);
int phx_step_fence_gather(const phx_step_part_t *parts, int nparts, size_t max_frame,
                          uint8_t **out, size_t *out_len, phx_error_t *err);

/* step_route.c */
void phx_step_on_fence(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
void phx_step_on_dmodex(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
void phx_step_on_dmodex_data(phx_master_t *m, phx_master_agent_t *a,
                             const phx_frame_t *f);
void phx_step_on_output(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
/* STEP_INPUT {step, offset, eof} + bytes, from the step's origin (on the
 * link it asked on) only: to every other agent whose ranks get input.
 * STEP_INPUT_ACK {step, offset} from such an agent: to the origin, with
 * "agent" (its name).  The origin's window bounds what is in flight
 * (doc/steps.md); the master holds nothing of it. */
void phx_step_on_input(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
void phx_step_on_input_ack(phx_master_t *m, phx_master_agent_t *a,
                           const phx_frame_t *f);
/* STEP_WINSIZE {step, rows, cols} from the origin (--pty: its terminal's
 * new size): to the other agents whose ranks get input (rank 0's).  The
 * step holds the latest size only and sends at most PHX_WINSIZE_RATE a
 * second, none while an agent it goes to has more than
 * PHX_STEP_WINSIZE_BACKLOG bytes to read: nothing else queues. */
#define PHX_STEP_WINSIZE_BACKLOG (256u << 10)
void phx_step_on_winsize(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f);
/* Do the part's ranks get the step's input? */
bool phx_step_part_gets_input(const phx_step_t *s, const phx_step_part_t *p);

#endif
