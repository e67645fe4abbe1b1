/* The job request: what a user asked for, from script directives and
 * command-line options, before any placement.  A plain struct so that the
 * daemon, the planner and the tests share it; serialised as JSON for the HTTP
 * API and the jobs.spec column (doc/jobs.md lists every field).
 *
 * Unset values: NULL strings, PHX_UNSET numbers, -1 tri-states.  phx_jobspec_finalize
 * fills the defaults and checks consistency; a finalized spec has nodes,
 * ntasks, cpus_per_task, job_name, work_dir, output and time_limit set. */
#ifndef PHX_BATCHD_JOBSPEC_H
#define PHX_BATCHD_JOBSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* An integer field the user did not give. */
#define PHX_UNSET INT64_MIN

/* --nice bounds (Slurm's); below 0 only for operators (submit.c). */
#define PHX_NICE_MIN (-2147483645)
#define PHX_NICE_MAX 2147483645

typedef enum phx_job_state {
    PHX_JOB_PENDING,
    PHX_JOB_RUNNING,
    PHX_JOB_COMPLETED,
    PHX_JOB_FAILED,
    PHX_JOB_CANCELLED,
    PHX_JOB_TIMEOUT,
    PHX_JOB_NODE_FAIL,
    PHX_JOB_OUT_OF_MEMORY,
    PHX_JOB_STATE_COUNT
} phx_job_state_t;

/* "PENDING"..., and the squeue short codes "PD" "R" "CD" "F" "CA" "TO" "NF"
 * "OOM"; NULL when out of range. */
const char *phx_job_state_name(phx_job_state_t state);
/* --mail-user: one or more addresses (comma-separated) of letters, digits
 * and . _ % + - @, none starting with '-' (never an option of the mail
 * program, doc/jobs.md "Mail"). */
bool phx_jobspec_mail_user_valid(const char *mail_user);
const char *phx_job_state_code(phx_job_state_t state);
/* By full name or short code (case-insensitive); -1 when unknown. */
int phx_job_state_parse(const char *name);
/* COMPLETED and later: the job will not run again (unless requeued). */
bool phx_job_state_is_final(phx_job_state_t state);

/* Why a job is PENDING, or why it ended (Slurm's reason names). */
typedef enum phx_job_reason {
    PHX_REASON_NONE,
    PHX_REASON_PRIORITY,
    PHX_REASON_RESOURCES,
    PHX_REASON_DEPENDENCY,
    PHX_REASON_DEPENDENCY_NEVER, /* DependencyNeverSatisfied */
    PHX_REASON_BEGIN_TIME,
    PHX_REASON_JOB_ARRAY_TASK_LIMIT,
    PHX_REASON_HELD,               /* JobHeldUser: -H, phx hold (hold.c) */
    PHX_REASON_HELD_ADMIN,         /* JobHeldAdmin: held by an operator */
    PHX_REASON_NODE_FAIL_REQUEUED, /* requeued after NODE_FAIL */
    PHX_REASON_PARTITION_NODE_LIMIT,
    PHX_REASON_PARTITION_DOWN,        /* its partition is State=DOWN */
    PHX_REASON_PARTITION_INACTIVE,    /* State=INACTIVE */
    PHX_REASON_INVALID_ACCOUNT,       /* its user may no longer use its account */
    PHX_REASON_QOS_MAX_JOBS_PER_USER, /* batchd.max_running_jobs_per_user */
    PHX_REASON_COUNT
} phx_job_reason_t;

const char *phx_job_reason_name(phx_job_reason_t reason);

/* One job request; every field documented in doc/jobs.md. */
typedef struct phx_jobspec {
    /* identity and placement in the site */
    char *job_name;
    char *account;
    char *partition;
    char *qos;
    char *comment;
    /* shape: -N min[-max], -n, --ntasks-per-node, -c ... */
    int64_t nodes_min;
    int64_t nodes_max;
    int64_t ntasks;
    int64_t ntasks_per_node;
    int64_t cpus_per_task;
    int64_t ntasks_per_socket;
    int64_t sockets_per_node; /* also -B sockets */
    int64_t cores_per_socket; /* also -B :cores */
    int64_t threads_per_core; /* -B ::threads */
    /* GPUs, canonical text, at most one of the four (gpuspec.h) */
    char *gres;          /* --gres: "gpu:N" or "gpu:TYPE:N" on each node */
    char *gpus_per_node; /* --gpus-per-node: "N" or "TYPE:N" */
    char *gpus_per_task; /* --gpus-per-task */
    char *gpus;          /* -G/--gpus: for the whole job */
    /* memory in MiB: per node (0 = all of the node's) xor per cpu */
    int64_t mem_per_node;
    int64_t mem_per_cpu;
    /* seconds; 0 = no limit (PHX_TIME_UNLIMITED); unset = partition default */
    int64_t time_limit;
    int64_t begin_time; /* absolute, seconds since the epoch */
    int64_t nice;
    int exclusive;        /* tri-state: -1 unset, 0, 1 */
    int requeue;          /* tri-state */
    int wait;             /* sbatch -W: tri-state (stored; the CLI waits) */
    int parsable;         /* sbatch --parsable: tri-state (the CLI prints the id) */
    int hold;             /* -H/--hold: tri-state (submitted held, hold.c) */
    char *exclusive_mode; /* "user", "mcs", "topo" when --exclusive=MODE */
    char *hint;           /* compute_bound | nomultithread */
    char *distribution;   /* block|cyclic|*[:block|cyclic|*] */
    char *cpu_bind;       /* [verbose|quiet,]none|cores|sockets */
    /* nodes by name and feature (jobnodes.h): host lists, compressed */
    char *nodelist;   /* -w: exactly these nodes (sets -N) */
    char *exclude;    /* -x: never these */
    char *constraint; /* -C: "a&b|c" over the site's features */
    /* files and environment */
    char *work_dir; /* -D/--chdir; default: the submit directory */
    char *output;   /* patterns, see outpath.c */
    char *error;
    char *input;      /* no option sets it (-i is refused); old rows may */
    char *open_mode;  /* append | truncate (the default) */
    char *export_env; /* ALL | NONE | [ALL,]NAME[=value],... */
    char *mail_type;
    char *mail_user;
    char *signal; /* --signal, canonical "B:USR1@60" (jobsig.h) */
    /* arrays and dependencies, canonical text (see array.c, depend.c) */
    char *array;
    char *dependency;
} phx_jobspec_t;

/* Bounds the daemon takes from its configuration. */
typedef struct phx_jobspec_limits {
    uint32_t max_array_index; /* highest array index accepted (e.g. 100000) */
    uint32_t max_array_tasks; /* most tasks in one array; 0: no extra bound */
    int64_t max_nodes;        /* 0: no bound here (the daemon checks the cluster) */
    int64_t max_tasks;
} phx_jobspec_limits_t;

/* Values for a missing job name, work dir and output. */
typedef struct phx_jobspec_defaults {
    const char *job_name; /* the script's base name, or "phx" */
    const char *work_dir; /* the submit directory (absolute) */
    int64_t time_limit;   /* partition default; 0 = none */
} phx_jobspec_defaults_t;

/* All unset. */
void phx_jobspec_init(phx_jobspec_t *spec);
/* Free the strings and re-init.  NULL is a no-op. */
void phx_jobspec_clear(phx_jobspec_t *spec);
/* Deep copy into an uninitialised dst.  0 or -1 (ENOMEM, dst cleared). */
int phx_jobspec_copy(phx_jobspec_t *dst, const phx_jobspec_t *src);
/* Every field set in over replaces the one in base (command-line options over
 * directives).  Memory is one choice: a --mem in over clears base's
 * --mem-per-cpu and vice versa.  0 or -1 (ENOMEM). */
int phx_jobspec_merge(phx_jobspec_t *base, const phx_jobspec_t *over);
/* Fill defaults and check consistency: nodes min <= max, ntasks >= nodes and
 * consistent with ntasks-per-node, ntasks-per-socket with sockets, mem xor
 * mem-per-cpu, --hint with -B/--cpu-bind, array indices within limits, the
 * dependency and output patterns well formed.  Canonicalises array and
 * dependency.  0 or -1 with err (spec may then be partly filled). */
int phx_jobspec_finalize(phx_jobspec_t *spec, const phx_jobspec_defaults_t *defaults,
                         const phx_jobspec_limits_t *limits, phx_error_t *err);

/* Which options a failed finalize refused: offsetof(phx_jobspec_t, field) of
 * the fields whose values are at fault (count 0: none in particular, e.g.
 * out of memory), so that the caller can say where they were given. */
typedef struct phx_jobspec_blame {
    size_t field[3];
    int count;
} phx_jobspec_blame_t;

/* phx_jobspec_finalize that also fills blame (may be NULL) on failure. */
int phx_jobspec_finalize_blame(phx_jobspec_t *spec,
                               const phx_jobspec_defaults_t *defaults,
                               const phx_jobspec_limits_t *limits,
                               phx_jobspec_blame_t *blame, phx_error_t *err);
/* Total cpus requested: ntasks * cpus_per_task (of a finalized spec). */
int64_t phx_jobspec_cpus(const phx_jobspec_t *spec);

/* JSON object with every set field (unset ones are omitted).  New reference,
 * or NULL (ENOMEM). */
json_t *phx_jobspec_to_json(const phx_jobspec_t *spec);
/* Read an object made by phx_jobspec_to_json into an uninitialised spec.
 * Unknown keys and wrong types are refused (err names the key).  0 or -1. */
int phx_jobspec_from_json(const json_t *obj, phx_jobspec_t *spec, phx_error_t *err);

#endif
