/* Job ids as phx hold, release, requeue and update take them: N (a job,
 * or an array job id), A_T, A_[1-3,5] (brackets optional), several
 * separated by commas (cli/job_ids.c). */
#ifndef PHX_CLI_JOB_IDS_H
#define PHX_CLI_JOB_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* "/api/v1/jobs/<id>/<op>" for the one id of len bytes at arg: N, A_T,
 * or with lists A_[list] (brackets dropped); 0, or -1 for anything else
 * (or a path longer than size). */
int phx_cli_job_path(const char *arg, size_t len, const char *op, bool lists,
                     char *path, size_t size);

/* The next id of a comma-separated list at *at (commas inside brackets
 * belong to an A_[list]): its start, its length in *len, *at past it; NULL
 * at the end. */
const char *phx_cli_next_id(const char **at, size_t *len);

#endif
