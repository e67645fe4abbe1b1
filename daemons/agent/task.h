/* phx-agent: one task launched by the master, and the functions the task
 * files share.  Loop thread only.
 *
 * Life of a task (see doc/agent.md):
 *
 *   LAUNCH ─▶ STARTING ──exec ok──▶ RUNNING ──shim exits──▶ ENDING ──▶ DONE
 *                │                                            ▲        (terminal status
 *                └──────────── refused / could not start ─────┘         sent until
 * acked)
 *
 * A task runs under a supervisor, the shim (exec.c): a child of the agent in
 * its own session that forks and execs the user's program, waits for it and
 * writes its exit status into the task's records.  The agent may die and
 * come back: the records and the shim are enough to finish the story
 * (recover.c). */
#ifndef PHX_AGENT_TASK_H
#define PHX_AGENT_TASK_H

#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <sys/types.h>

#include "daemons/agent/agent.h"
#include "daemons/agent/cgroup.h"
#include "topology/coreset.h"

typedef enum phx_task_phase {
    PHX_TASK_STARTING, /* shim forked, user program not exec'd yet */
    PHX_TASK_RUNNING,
    PHX_TASK_ENDING, /* shim gone: killing leftovers, reading usage */
    PHX_TASK_DONE,   /* terminal status made; records kept until acked */
} phx_task_phase_t;

typedef enum phx_task_kill {
    PHX_KILL_NONE,
    PHX_KILL_MASTER,  /* KILL frame: TASK_KILLED */
    PHX_KILL_TIMEOUT, /* time limit: TASK_FAILED, max completion time */
} phx_task_kill_t;

typedef struct phx_task {
    phx_agentd_t *a;
    struct phx_task *prev, *next;
    char id[PHX_TASK_ID_MAX + 1]; /* the framework's task id */
    char framework_id[PHX_TASK_FW_MAX + 1];
    char key[PHX_TASK_KEY_MAX + 1]; /* local name: records, cgroup, outputs */
    char label[PHX_TASK_FW_MAX + PHX_TASK_ID_MAX + 2]; /* "<fw>/<id>", for logs */
    char dir[PATH_MAX]; /* records: <state_dir>/run/<key> */
    json_t *spec;       /* the task object as received (owned) */
    phx_task_phase_t phase;

    /* From the spec (valid once parsed). */
    uid_t uid;
    gid_t gid;
    long long time_limit, kill_grace, memory;
    phx_topo_coreset_t *cores;
    char *cpus;        /* real PUs, list format (cgroup cpuset.cpus) */
    char *mems;        /* real memory nodes (cgroup cpuset.mems) */
    char *gpus;        /* its GPUs' indexes, "0,1" (gpu.c); NULL: none */
    char *gpu_cg;      /* cgroup.procs of its devices cgroup (gpu.c), or NULL */
    double started_at; /* wall clock, seconds */
    bool has_cgroup;
    bool cg_reused;        /* its cgroups came from the pool (phx_cg_take) */
    phx_cg_base_t cg_base; /* what they had counted then (record "task") */
    phx_cg_set_t cg_was;   /* what they held then (cpus, mems, memory) */
    bool cg_wrote;         /* this agent wrote cpus, mems, memory to them */

    /* Processes. */
    pid_t shim;
    unsigned long long shim_start; /* /proc/<pid>/stat start time, ticks */
    pid_t child;                   /* the user's program, once exec'd */
    int pidfd;
    struct event *shim_ev; /* pidfd readable, or a /proc polling timer */
    int notify_fd;         /* shim → agent: "R <pid>" once exec'd */
    struct event *notify_ev;

    /* Limits and kills (limits.c). */
    phx_task_kill_t kill;
    double kill_deadline; /* wall clock of the SIGKILL phase */
    bool sweeping;        /* SIGKILL phase: kill everything, repeatedly */
    bool froze;           /* its cgroup was frozen (or may have been: adopted) */
    bool swept_empty;     /* the sweep's last read of its processes found none */
    int sweep_step;
    int sweep_ticks;
    struct event *limit_ev; /* time limit */
    struct event *kill_ev;  /* grace expiry, then sweep ticks */
    /* spec "warn": a signal warn_before seconds before the time limit, to
     * the program (warn_main) or to the steps' ranks; sent once (record
     * "warned") */
    int warn_signal, warn_before;
    bool warn_main, warned;
    struct event *warn_ev;

    /* Statuses (status.c). */
    json_t *pending;      /* array of unacknowledged STATUS objects, oldest first */
    json_t *last;         /* the latest STATUS made (a reference) */
    bool status_recorded; /* its "status" record exists (or may: adopted) */

    /* CPU times of MPI step ranks that ran in its cgroup (step.c): they are
     * the steps', taken out of the task's own usage. */
    double step_user_s, step_system_s;
} phx_task_t;

/* task.c */
/* The local key of a task: "<framework_id>+<task_id>" when that is a safe
 * name of at most PHX_TASK_KEY_MAX characters ('+' is in no id, so the key
 * is unambiguous), else "h-" and 32 hex digits of a hash of both ids.  The
 * ids themselves are kept in the task's records. */
void phx_task_key(const char *framework_id, const char *id,
                  char key[PHX_TASK_KEY_MAX + 1]);
phx_task_t *phx_task_new(phx_agentd_t *a, const char *framework_id, const char *id);
void phx_task_free(phx_task_t *t); /* unlinks; processes untouched */
phx_task_t *phx_task_find(phx_agentd_t *a, const char *framework_id, const char *id);
phx_task_t *phx_task_find_key(phx_agentd_t *a, const char *key);
bool phx_task_id_valid(const char *id);
/* Parse the spec's execution fields into t; -1 with err (a REASON_TASK_INVALID). */
int phx_task_parse(phx_task_t *t, phx_error_t *err);
/* gpu.c: the spec's "gpus" ([{"id": device id, ...}], doc/agent.md), checked
 * against this node's topology, into t->gpus; -1 with err. */
int phx_task_parse_gpus(phx_task_t *t, phx_error_t *err);
/* The variables that name a task's GPUs (t->gpus) to it and to the ranks
 * of its steps, besides CUDA_DEVICE_ORDER=PCI_BUS_ID. */
#define PHX_GPU_ENV_VARS 4
extern const char *const phx_gpu_env_vars[PHX_GPU_ENV_VARS];
/* The task's v1 devices cgroup, denying the device files of the node's
 * GPUs that are not the task's (t->gpu_cg, joined by the shim; also made,
 * denying nothing, for a task with all of them: its ranks' are below it);
 * 0 without one (no GPU, no device file of any GPU of the node, no v1
 * devices hierarchy), -1 with err. */
#define PHX_GPU_DEV_MAX 256
int phx_task_gpu_cgroup(phx_task_t *t, phx_error_t *err);
/* Remove it and its steps' (below; also an adopted task's), once nothing
 * runs in them. */
void phx_task_gpu_cgroup_remove(phx_task_t *t);
/* An adopted task: its devices cgroup made (or its deny lines written)
 * again, t->gpu_cg as at its launch (its steps' ranks must join it); when
 * that fails t->gpu_cg still names it, so that they fail closed. */
void phx_task_gpu_cgroup_adopt(phx_task_t *t);
/* The cgroup.procs a step's rank that sees the GPUs gpus ("0,2", node-local
 * indexes; NULL: the task's) joins, into procs: "" when the task has no
 * devices cgroup (the rank is restricted as the task is: not at all); the
 * task's when gpus are all of its GPUs; else a child of it,
 * "gpus-<i>_<j>..." (made here, kept for the task's later steps), that also
 * denies the task's GPUs that are not the rank's.  -1 with err: the rank
 * must not start (it would see GPUs that are not its own). */
int phx_task_gpu_cg_rank(const phx_task_t *t, const char *gpus, char *procs, size_t len,
                         phx_error_t *err);
/* Device numbers "MAJ:MIN" of the files of the GPU at PCI bus id pci, under
 * root ("" for /): NVIDIA's /dev/nvidia<minor>, DRM's card and renderD
 * nodes.  Their number (at most max). */
int phx_gpu_dev_numbers(const char *root, const char *pci, char (*out)[24], int max);
/* Those of every GPU of the node whose index is not in keep ("0,2"; NULL:
 * none is kept). */
int phx_gpu_deny_list(const phx_topo_t *topo, const char *keep, const char *root,
                      char (*out)[24], int max);
/* The shim ended (or was found dead): sweep the cgroup, then finish. */
void phx_task_shim_gone(phx_task_t *t);
/* Called by the sweep once the cgroup is empty in phase ENDING. */
void phx_task_finish(phx_task_t *t);
/* Watch an existing shim (ours or adopted); 0 or -1. */
int phx_task_watch_shim(phx_task_t *t);
void phx_task_remember_done(phx_task_t *t);
bool phx_task_recently_done(const phx_agentd_t *a, const char *framework_id,
                            const char *id);

/* exec.c: fork the shim.  0 with t->shim, t->notify_fd set, or -1 with err. */
struct phx_user;
int phx_exec_spawn(phx_task_t *t, const struct phx_user *pw, phx_error_t *err);
/* Start time of a process (field 22 of /proc/<pid>/stat), 0 if it is gone. */
unsigned long long phx_exec_proc_start(pid_t pid);

/* limits.c */
/* the time limit's timers (and the warning's), from started_at */
int phx_limits_arm(phx_task_t *t);
void phx_limits_kill(phx_task_t *t, phx_task_kill_t why, double grace);
/* Start (or continue) killing everything of the task, repeatedly. */
void phx_limits_sweep(phx_task_t *t);
void phx_limits_clear(phx_task_t *t);
/* Persisted kill intent (records/kill), for recovery. */
int phx_limits_load_kill(phx_task_t *t);

/* status.c: make a status, write it to the records (fsync), then send it.
 * exit_code/sig < 0 mean null; usage may be NULL (stolen otherwise). */
int phx_status_emit(phx_task_t *t, const char *state, const char *reason,
                    const char *message, int exit_code, int sig, json_t *usage);
/* A status for a launch that cannot even be recorded (invalid task id). */
void phx_status_send_unrecorded(phx_agentd_t *a, const char *framework_id,
                                const char *id, const char *state, const char *reason,
                                const char *message);
bool phx_status_is_terminal(const char *state);
/* The latest state of a task ("TASK_STARTING" if none made yet). */
const char *phx_status_state(const phx_task_t *t);
void phx_status_send_task(phx_task_t *t);

/* records.c: small durable files. */
/* Keep dir (the records' or the outputs' folder) open: paths below it are
 * then opened relative to it (one or two components to walk, not the whole
 * path); 0 or -1.  Two such folders at most; clear closes them. */
int phx_rec_set_base(const char *dir);
void phx_rec_clear_bases(void);
int phx_rec_mkdir(const char *path, mode_t mode, phx_error_t *err);
/* mkdir -p: the missing parents get 0755, path itself mode. */
int phx_rec_mkdirs(const char *path, mode_t mode, phx_error_t *err);
/* Write JSON to dir/name atomically (tmp, fsync, rename, fsync dir). */
/* fsync records and their directories (agent.sync_records). */
void phx_rec_set_sync(bool on);
bool phx_rec_get_sync(void);
int phx_rec_write(const char *dir, const char *name, const json_t *v, phx_error_t *err);
/* The first version of a record: written in place (no temporary file, no
 * rename); a crash leaves no file or one that does not parse, which
 * phx_rec_read takes for none.  Atomic replace if name exists. */
int phx_rec_create(const char *dir, const char *name, const json_t *v,
                   phx_error_t *err);
json_t *phx_rec_read(const char *dir, const char *name); /* NULL if absent/bad */
bool phx_rec_exists(const char *dir, const char *name);
int phx_rec_unlink(const char *dir, const char *name);
int phx_rec_remove_dir(const char *dir); /* the files in it, then it */
double phx_rec_now(void);                /* wall clock, seconds */
/* Parse a Linux list ("0-3,8") of ids below max into a sorted array
 * (caller frees); -1 on a malformed list or an id out of range. */
int phx_rec_parse_list(const char *list, int max, int **ids, int *n);
/* Format ascending ids as a list; caller frees. */
char *phx_rec_format_list(const int *ids, int n);

/* launch_auth.c */
int phx_launch_auth_init(phx_agentd_t *a, phx_error_t *err);
/* 0 if the LAUNCH frame hdr is signed with this connection's session key
 * over task, with a sequence number above the last accepted, else -1 with
 * err. */
int phx_launch_auth_check(phx_agentd_t *a, const json_t *task, const json_t *hdr,
                          phx_error_t *err);

/* recover.c: adopt the tasks of the records directory. */
int phx_recover_tasks(phx_agentd_t *a, phx_error_t *err);

#endif
