/* What phx submit, phx run outside a job and phx alloc share: the options
 * of sbatch that take no value, the submitter's environment, a submission
 * and following a job's state. */
#ifndef PHX_CLI_JOB_SUBMIT_H
#define PHX_CLI_JOB_SUBMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Append ' ' and s as one single-quoted shell word to the string in buf
 * (cap bytes), cut short if it does not fit. */
void phx_cli_shell_quote(char *buf, size_t cap, const char *s);

/* Does the sbatch option a (an argv word starting with '-') carry its value
 * (--name=value, -N2) or take none?  Otherwise the next word is its value. */
bool phx_cli_opt_complete(const char *a);

/* The process's environment as a JSON object (names of 255 bytes at most,
 * values not valid UTF-8 left out; without PHX_SUBMIT_KEY, the key of this
 * submission only).  NULL on ENOMEM. */
json_t *phx_cli_environ(void);

/* Submit script with the options opts (an array of argv words, may be NULL;
 * stolen) as if from a file named filename; the job id, or -1 after batchd's
 * refusal was printed. */
long long phx_cli_submit_script(const char *script, json_t *opts, const char *filename,
                                const char *submit_line);

/* The job's state: 1 and *rc (its exit code, 1 for an ended job with none)
 * when it ended, 0 when pending or running (its state in state), -1 when
 * batchd refused (it said why), -2 when no batchd answered, or only
 * standbys did (a failover: the next leader may answer soon). */
int phx_cli_job_poll(long long id, char *state, size_t cap, int *rc);

/* Ask batchd to cancel the job: 0, or -1 and -2 as phx_cli_job_poll (a
 * refusal is printed). */
int phx_cli_job_cancel(long long id);

/* Copy what the file at path grew by since *off to fd. */
void phx_cli_copy_new(const char *path, off_t *off, int fd);

#endif
