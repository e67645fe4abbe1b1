/* scontrol update for jobs (doc/jobs.md, "Changing a job"): the fields a
 * job's owner or an operator may change, by Slurm's names, and the rules of
 * who may change what, and when.
 *
 * update.c is pure (no clock, no daemon state): it reads "KEY=VALUE" texts
 * into the values given (through the sbatch option parser, so a value reads
 * as the equal option of sbatch does) and makes the job's new spec,
 * finalized as at submission.  update_api.c checks the rest against the
 * daemon (partitions, accounts, nodes, dependencies), commits the change
 * and enforces a running job's lowered time limit. */
#ifndef PHX_BATCHD_UPDATE_H
#define PHX_BATCHD_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobspec.h"
#include "lib/error.h"

typedef enum batchd_upd_field {
    BATCHD_UPD_TIME_LIMIT,
    BATCHD_UPD_JOB_NAME,
    BATCHD_UPD_PARTITION,
    BATCHD_UPD_NUM_NODES,
    BATCHD_UPD_NUM_TASKS,
    BATCHD_UPD_MEM_NODE,
    BATCHD_UPD_MEM_CPU,
    BATCHD_UPD_DEPENDENCY,
    BATCHD_UPD_NICE,
    BATCHD_UPD_ACCOUNT,
    BATCHD_UPD_EXCLUDE,
    BATCHD_UPD_NODELIST,
    BATCHD_UPD_FEATURES,
    BATCHD_UPD_QOS,
    BATCHD_UPD_COMMENT,
    BATCHD_UPD_COUNT
} batchd_upd_field_t;

/* The most KEY=VALUE texts one update takes. */
#define BATCHD_UPDATE_MAX 32

/* One update's values: delta holds each field given (unset otherwise);
 * given and cleared are bit sets of batchd_upd_field_t (cleared: given
 * empty, as "Dependency=", which removes the value). */
typedef struct batchd_update {
    phx_jobspec_t delta;
    uint32_t given, cleared;
} batchd_update_t;

/* Slurm's name of a field ("TimeLimit"). */
const char *batchd_update_name(batchd_upd_field_t f);

/* Read n texts "KEY=VALUE" (KEY case-insensitive, Slurm's names and
 * aliases: Name for JobName, NodeList for ReqNodeList) into an
 * uninitialised u.  now is for nothing but the option parser.  0, or -1
 * with err naming the field: an unknown key ("field X is not supported"), a
 * field given twice, a malformed value (the sbatch option parser's words),
 * an empty value where it cannot clear.  u is cleared on failure. */
int batchd_update_parse(const char *const *texts, size_t n, batchd_update_t *u,
                        phx_error_t *err);
void batchd_update_clear(batchd_update_t *u);

/* The spec of a job (old, finalized; in state) with u applied, finalized as
 * at submission, into an uninitialised out; oper: the caller is an
 * operator.  The rules: a job that is neither pending nor running is
 * refused; a running job takes TimeLimit (lowered only: its node agents
 * enforce the limit it started with), JobName and Comment, nothing else;
 * Nice only up (a lower priority) unless by an operator; NumNodes without
 * NumTasks moves the task count along when it was one task per node.  0, or
 * -1 with err (out cleared). */
int batchd_update_spec(const phx_jobspec_t *old, phx_job_state_t state, bool oper,
                       const batchd_update_t *u, const phx_jobspec_limits_t *lim,
                       phx_jobspec_t *out, phx_error_t *err);

/* The fields u changes in old → new, "TimeLimit=00:05:00 JobName=x" (the
 * new values as scontrol show prints them), into buf.  Empty when nothing
 * changes. */
void batchd_update_describe(const phx_jobspec_t *old, const phx_jobspec_t *new_spec,
                            const batchd_update_t *u, char *buf, size_t len);

#endif
