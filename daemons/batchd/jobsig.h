/* sbatch --signal=[B:]SIG[@SECONDS]: send SIG that many seconds (default
 * 60, at most 65535) before the job's time limit; to the batch shell alone
 * with B:, else to the processes of the job's steps (`phx run`, `srun`) on
 * every node and not to the batch shell, as Slurm does.  SIG is a number
 * or a name with or without SIG (USR1, SIGUSR1, RTMIN+2).  R: (Slurm's
 * reservation end) is refused.  The canonical text, kept in the job's spec:
 * "B:USR1@60". */
#ifndef PHX_BATCHD_JOBSIG_H
#define PHX_BATCHD_JOBSIG_H

#include <stdbool.h>

#include "lib/error.h"

#define PHX_JOBSIG_DEFAULT_TIME 60
#define PHX_JOBSIG_MAX_TIME     65535

typedef struct phx_jobsig {
    int signal;
    int before; /* seconds before the time limit */
    bool batch; /* B: the batch shell only */
} phx_jobsig_t;

int phx_jobsig_parse(const char *text, phx_jobsig_t *out, phx_error_t *err);
/* A signal alone (scancel -s): a number, NAME, SIGNAME, RTMIN+N, RTMAX-N
 * as above; the number, or -1 with err. */
int phx_jobsig_signal(const char *text, phx_error_t *err);
/* "B:USR1@60" (malloc'd), or NULL (ENOMEM). */
char *phx_jobsig_format(const phx_jobsig_t *s);

#endif
