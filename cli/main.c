/* phx: the user command.  Dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"acct", phx_cmd_acct, "accounting records of jobs and steps, like sacct"},
    {"alloc", phx_cmd_alloc,
     "get an allocation and run a command (a shell) with it here, like salloc"},
    {"cancel", phx_cmd_cancel, "cancel jobs, like scancel"},
    {"hold", phx_cmd_hold, "hold pending jobs, like scontrol hold (--user: uhold)"},
    {"hostlist", phx_cmd_hostlist,
     "expand or compress node lists, like scontrol show "
     "hostnames"},
    {"nodes", phx_cmd_nodes, "list nodes, show one, drain or resume (operators)"},
    {"queue", phx_cmd_queue, "list the job queue, like squeue"},
    {"partitions", phx_cmd_partitions,
     "list the partitions and their nodes, like sinfo"},
    {"release", phx_cmd_release, "release held jobs, like scontrol release"},
    {"requeue", phx_cmd_requeue,
     "put running or ended jobs back in the queue, like scontrol requeue (--hold)"},
    {"run", phx_cmd_run, "run an MPI step inside a job, like srun"},
    {"show", phx_cmd_show, "show one job, like scontrol show job"},
    {"submit", phx_cmd_submit, "submit a job script, like sbatch"},
    {"topo", phx_cmd_topo, "print a node topology (local, synthetic or XML)"},
    {"ui", phx_cmd_ui, "print the address of the master's web UI with a session"},
    {"update", phx_cmd_update, "change fields of jobs, like scontrol update"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: phx COMMAND [ARGS...]\n\ncommands:\n");
    for (const command_t *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n'phx COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("phx %s\n", PHX_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "_relay") == 0) /* hidden: the job side of phx alloc */
        return phx_cmd_relay(argc - 1, argv + 1);
    for (const command_t *c = commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "phx: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
