/* Output and error file name patterns (sbatch -o/-e):
 *   %j job id   %x job name   %u user   %A array master id   %a array index
 *   %N first node's short name   %% a percent sign
 * A digit between % and the letter zero-pads numbers: %4j -> 0042.
 * A relative result is taken from the job's work dir. */
#ifndef PHX_BATCHD_OUTPATH_H
#define PHX_BATCHD_OUTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* Slurm prints this for %a in a job that is not an array task. */
#define PHX_OUTPATH_NO_ARRAY_TASK 4294967294u

typedef struct phx_outpath_ctx {
    uint64_t job_id;
    uint64_t array_job_id; /* 0: not an array job (%A gives job_id) */
    int64_t array_task_id; /* -1: not an array task */
    const char *job_name;
    const char *user;
    const char *first_node; /* NULL before placement: %N gives "" */
    const char *work_dir;   /* NULL: leave relative results relative */
} phx_outpath_ctx_t;

/* The longest file name a job's pattern may expand to (with its work dir). */
#define PHX_OUTPATH_MAX 4096

/* Check a pattern at submission: unknown % escapes are refused.  0 or -1. */
int phx_outpath_check(const char *pattern, phx_error_t *err);
/* Also at submission, once the job's name and work dir are known: -1 with
 * err if pattern could expand past PHX_OUTPATH_MAX once the job has its
 * id, array index, user and first node (the longest of each), which would
 * leave an accepted job unable to start. */
int phx_outpath_check_fits(const char *pattern, const char *job_name,
                           const char *work_dir, phx_error_t *err);
/* Expand pattern into buf.  -1 with err when the pattern is malformed or the
 * result does not fit. */
int phx_outpath_expand(const char *pattern, const phx_outpath_ctx_t *ctx, char *buf,
                       size_t len, phx_error_t *err);

#endif
