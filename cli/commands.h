/* phx subcommands: each lives in cli/cmd_<name>.c and is listed in main.c.
 * A command gets argv starting at its own name and returns the exit code. */
#ifndef PHX_CLI_COMMANDS_H
#define PHX_CLI_COMMANDS_H

int phx_cmd_topo(int argc, char **argv);
int phx_cmd_alloc(int argc, char **argv);
int phx_cmd_relay(int argc, char **argv); /* phx _relay: phx alloc's, in the job */
int phx_cmd_nodes(int argc, char **argv);
int phx_cmd_submit(int argc, char **argv);
int phx_cmd_queue(int argc, char **argv);
int phx_cmd_partitions(int argc, char **argv);
int phx_cmd_cancel(int argc, char **argv);
int phx_cmd_hold(int argc, char **argv);
int phx_cmd_requeue(int argc, char **argv);
int phx_cmd_release(int argc, char **argv);
int phx_cmd_update(int argc, char **argv);
int phx_cmd_show(int argc, char **argv);
int phx_cmd_run(int argc, char **argv);
int phx_cmd_acct(int argc, char **argv);
int phx_cmd_ui(int argc, char **argv);
int phx_cmd_hostlist(int argc, char **argv);

#endif
