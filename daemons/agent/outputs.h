/* phx-agent: retention of the tasks' default output folders
 * (<state_dir>/tasks/<key>, exec.c).  A folder whose task the agent no
 * longer knows (it ended and the master acknowledged its end) is removed
 * agent.task_output_keep seconds after anything in it last changed: the
 * newest ctime of the folder and of its entries (a task's user can set
 * mtimes, not ctimes).  Mesos garbage-collects its sandboxes the same way.
 *
 * The agent runs as root and each folder belongs to its task's user, who
 * may have planted symbolic links or may swap directories while they are
 * removed: removal never walks a path (lib/rmtree.h), and a folder is first
 * moved into the root-only .trash, out of its user's reach. */
#ifndef PHX_AGENT_OUTPUTS_H
#define PHX_AGENT_OUTPUTS_H

#include <stdbool.h>

#include "daemons/agent/agent.h"

#include "lib/rmtree.h"

/* Directories nested deeper than this below a task's folder are left
 * (and the folder with them; logged): each level holds a descriptor. */
#define PHX_OUTPUTS_MAX_DEPTH PHX_RMTREE_MAX_DEPTH

/* Whether key names a task the agent still knows (its folder stays). */
typedef bool (*phx_outputs_live_f)(const char *key, void *arg);

/* Remove entry name of the directory dirfd, and all below it when it is a
 * directory (never following a symbolic link): 0, or -1 with errno when
 * something could not be removed (ENOENT is success). */
int phx_outputs_remove_at(int dirfd, const char *name);

/* One sweep of the outputs folder dir_fd (an open directory; borrowed):
 * remove each folder not live whose newest ctime is at least keep seconds
 * before now (seconds since the epoch).  The number of folders removed, or
 * -1 with errno when dir_fd could not be read.  Pure: no clock inside. */
int phx_outputs_sweep(int dir_fd, double now, double keep, phx_outputs_live_f live,
                      void *arg);

/* The agent's periodic sweep (loop thread): start after recovery (the
 * tasks it knows are then in a->tasks); no-op when agent.task_output_keep
 * is 0.  Stop frees the timer. */
int phx_agentd_outputs_start(phx_agentd_t *a, phx_error_t *err);
void phx_agentd_outputs_stop(phx_agentd_t *a);

#endif
