/* phx run: shared by cmd_run.c (the step) and run_alloc.c (an allocation
 * for it when called outside a job). */
#ifndef PHX_CLI_RUN_H
#define PHX_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct phx_run_opts {
    long nodes, ntasks, ntasks_per_node, cpus_per_task;
    const char *nodelist, *exclude; /* -w, -x: host lists (NULL: none) */
} phx_run_opts_t;

/* Outside a job: run argv (phx run's own argv) as a batch job of batchd,
 * following its output; the job's exit code. */
int phx_run_alloc(const phx_run_opts_t *o, int argc, char **argv);

/* The ranks' output (run_output.c): whole lines, "rank: " before each under
 * label.  size is the number of ranks (0 when not known: then written as it
 * comes).  NULL on ENOMEM.  destroy writes what is left of partial lines. */
#define PHX_RUN_LINE_MAX 65536
typedef struct phx_run_out phx_run_out_t;
phx_run_out_t *phx_run_out_create(int size, bool label, int fd_out, int fd_err);
/* stream: 1 stdout, 2 stderr. */
void phx_run_out_data(phx_run_out_t *o, int rank, int stream, const uint8_t *data,
                      size_t len);
void phx_run_out_flush(phx_run_out_t *o);
void phx_run_out_destroy(phx_run_out_t *o);

#endif
