/* The accounting record of a numbered step (job_steps "0", "1", ...): what
 * step.c knows of a step, its outcome and the statement that records it.
 * Pure: no clock, no I/O.  step_acct.c queues the statement and retries it.
 *
 * The job is found from the step's gang, never from anything its user
 * controls: the gang's tasks (written by the master) → the job whose batch
 * task, of phx-batchd's framework, is one of them (written by phx-batchd at
 * the job's start; db/migrations/005_numbered_steps.sql). */
#ifndef PHX_MASTER_STEP_RECORD_H
#define PHX_MASTER_STEP_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why the master killed a step, if it did. */
typedef enum phx_step_cause {
    PHX_STEP_CAUSE_NONE,      /* its ranks ended, or one aborted them */
    PHX_STEP_CAUSE_CANCEL,    /* `phx run` went away, or the job's task ended */
    PHX_STEP_CAUSE_NODE_FAIL, /* an agent of the step was lost */
} phx_step_cause_t;

typedef struct phx_step_rec {
    int64_t gang_id;
    int number; /* 0, 1, ... in order of start within the gang (job run) */
    char name[64];
    double start, end; /* wall clock seconds; end < 0 while running */
    int ntasks, nnodes, alloc_cpus;
    int alloc_gpus;       /* the GPUs its ranks were given (phx_step_gpus_on_node) */
    char node_list[1024]; /* the step's nodes, in rank order; "+" ends a cut list */
    const char *state;    /* static: RUNNING, COMPLETED, FAILED, ... */
    int exit_code, exit_signal;
    bool have_usage; /* CPU times and max RSS reported by the agents */
    double user_s, system_s;
    int64_t max_rss; /* bytes */
} phx_step_rec_t;

/* The final state and exit:signal of a step from its ranks: the highest exit
 * code, the highest signal that killed a rank, whether a rank aborted the
 * step (MPI_Abort, or an exit without MPI_Finalize) and its status, and why
 * the master killed it.  Returns a static state name. */
const char *phx_step_rec_outcome(int max_code, int max_signal, bool aborted,
                                 int abort_code, phx_step_cause_t cause, int *exit_code,
                                 int *exit_signal);

/* The step's name: the program's base name, as sacct shows on step lines.
 * Program names are bytes: each byte that is not part of well-formed UTF-8
 * becomes '?', and a long name is cut between characters (PostgreSQL
 * refuses text that is not UTF-8). */
void phx_step_rec_set_name(phx_step_rec_t *r, const char *argv0);
/* Append a node to the list (bounded; a list too long ends in "+").  The
 * record's list is compressed as Slurm writes it ("n[01-04]") by
 * phx_step_rec_params. */
void phx_step_rec_add_node(phx_step_rec_t *r, const char *node);

/* phx-batchd's framework name (daemons/batchd/batchd.h). */
#define PHX_STEP_REC_BATCHD "phx-batchd"

/* The upsert: $1 gang, $2 step number, $3 name, $4 state, $5 start, $6 end,
 * $7 ntasks, $8 nnodes, $9 node list, $10 alloc cpus, $11 exit code, $12
 * exit signal, $13 user CPU s, $14 system CPU s, $15 max RSS bytes, $16
 * alloc GPUs.  Returns
 * one row: the job's id, NULL when no job of the gang is visible yet; and
 * whether a job may still be linked to the gang: "f" when the gang's
 * framework has never run a batch job (no jobs row names it) and is not
 * named phx-batchd (its first job's link may still be on its way), "t"
 * otherwise (also when the gang is not visible).  A record that ended is
 * not overwritten by a late RUNNING one of the same run; a later run
 * (requeue) replaces the earlier run's step of that number. */
extern const char phx_step_rec_sql[];

/* Closes the numbered steps left running by a master that stopped: $1 the
 * state (CANCELLED), end = now, never before the start.  Batch and extern
 * steps are not touched.  The master runs it when it recovers at start:
 * steps live in its memory only, and the agents kill the ranks of the steps
 * when they lose the master. */
extern const char phx_step_rec_close_sql[];

/* Whether a write that failed with sqlstate fails again whatever the retry:
 * classes 22 (data exception) and 23 (integrity constraint violation). */
bool phx_step_rec_permanent(const char *sqlstate);

#define PHX_STEP_REC_NPARAMS 16

typedef struct phx_step_rec_params {
    char buf[PHX_STEP_REC_NPARAMS][32];
    char nodes[1024];                    /* the node list, compressed */
    const char *p[PHX_STEP_REC_NPARAMS]; /* may point into the record */
} phx_step_rec_params_t;

/* The statement's parameters; out borrows r's strings (keep r alive). */
void phx_step_rec_params(const phx_step_rec_t *r, phx_step_rec_params_t *out);

#endif
