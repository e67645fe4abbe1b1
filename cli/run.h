/* phx run: shared by cmd_run.c (the step) and run_alloc.c (an allocation
 * for it when called outside a job). */
#ifndef PHX_CLI_RUN_H
#define PHX_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#include "lib/winsize.h"

typedef struct phx_run_opts {
    long nodes, ntasks, ntasks_per_node, cpus_per_task;
    const char *nodelist, *exclude; /* -w, -x: host lists (NULL: none) */
    long gpus_per_task;             /* --gpus-per-task, 0: none */
} phx_run_opts_t;

/* Inside a job, the task count to ask for (0: the master's default, one
 * task on each node of the step, or --ntasks-per-node on each), as srun's
 * inside a Slurm job: -n if given; else, when neither -N, --ntasks-per-node,
 * -w nor -x shapes the step by its nodes, the job's tasks: the sum of its
 * layout job_tasks_per_node (PHX_TASKS_PER_NODE, "2(x3),1"), else
 * job_ntasks (PHX_NTASKS); 0 when neither is a count (NULL: not set).
 * With the layout, phx_run_job_layout: the job's tasks on each node;
 * otherwise (-n given, or PHX_NTASKS alone) the master lays them out over
 * the job's nodes as evenly as it can, the larger shares first. */
long phx_run_job_ntasks(const phx_run_opts_t *o, const char *job_ntasks,
                        const char *job_tasks_per_node);
/* Does the step take the job's own layout: no option shapes it (none of
 * -n, -N, --ntasks-per-node, -w, -x) and the job's node list
 * (PHX_JOB_NODELIST) and its tasks on each (job_tasks_per_node, in that
 * list's order) are set?  phx run then sends both ("job_layout"), and the
 * master gives each node the job's tasks there, as srun in a Slurm job
 * takes SLURM_TASKS_PER_NODE; the count is phx_run_job_ntasks's. */
bool phx_run_job_layout(const phx_run_opts_t *o, const char *job_nodelist,
                        const char *job_tasks_per_node);

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

/* -i/--input (run_input.c): every rank, none, or one rank (>= 0). */
#define PHX_RUN_INPUT_ALL   (-1)
#define PHX_RUN_INPUT_NONE  (-2)
#define PHX_RUN_INPUT_BAD   (-3)
#define PHX_RUN_INPUT_CHUNK 65536 /* bytes an INPUT frame carries, at most */
/* "all", "none" or a rank number; PHX_RUN_INPUT_BAD for anything else
 * (srun's file name patterns are not supported). */
int phx_run_input_parse(const char *v);
/* Is fd /dev/null (or closed)?  A regular file? */
bool phx_run_stdin_is_null(int fd);
bool phx_run_stdin_is_file(int fd);

/* Standard input on its way to the agent: one INPUT frame at a time. */
typedef struct phx_run_in {
    int fd;         /* stdin, -1: not forwarded */
    bool started;   /* the step started: read it */
    bool ended;     /* the frame with eof is made (or input gave up) */
    uint8_t *frame; /* the frame being written, len bytes, off of them sent */
    size_t len, off;
} phx_run_in_t;
bool phx_run_in_want_read(const phx_run_in_t *in);
bool phx_run_in_want_write(const phx_run_in_t *in);
/* Read once (the fd is ready) and make the next frame. */
void phx_run_in_read(phx_run_in_t *in);
/* Write what the socket takes without blocking; -1 when it is gone. */
int phx_run_in_write(phx_run_in_t *in, int sock);
void phx_run_in_clear(phx_run_in_t *in);

/* --pty (run_pty.c): rank 0 on a terminal of its node. */
/* The size: fd's terminal's (fd >= 0 and a terminal), else lines x columns
 * (LINES, COLUMNS; NULL or invalid: 24 x 80). */
void phx_run_pty_size(int fd, const char *lines, const char *columns,
                      phx_winsize_t *ws);
/* *ws the size to ask for; if stdin is a terminal, put it in raw mode until
 * exit (or a signal that ends phx run) and watch SIGWINCH: true then. */
bool phx_run_pty_start(phx_winsize_t *ws);
void phx_run_pty_restore(void);
/* The signal mask for ppoll while in raw mode (SIGWINCH let in), else NULL. */
const sigset_t *phx_run_pty_poll_mask(void);
/* Did the terminal's size change since the last call?  *ws the new one. */
bool phx_run_pty_resized(phx_winsize_t *ws);
/* A WINSIZE frame as in's frame to write; -1 while another is being
 * written (or ENOMEM). */
int phx_run_pty_frame(phx_run_in_t *in, const phx_winsize_t *ws);
/* Rank 0's bytes to stdout as they are. */
void phx_run_pty_write(const uint8_t *data, size_t len);

#endif
