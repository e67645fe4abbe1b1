/* phx run: shared by cmd_run.c (the step) and run_alloc.c (an allocation
 * for it when called outside a job). */
#ifndef PHX_CLI_RUN_H
#define PHX_CLI_RUN_H

typedef struct phx_run_opts {
    long nodes, ntasks, ntasks_per_node, cpus_per_task;
} phx_run_opts_t;

/* Outside a job: run argv (phx run's own argv) as a batch job of batchd,
 * following its output; the job's exit code. */
int phx_run_alloc(const phx_run_opts_t *o, int argc, char **argv);

#endif
