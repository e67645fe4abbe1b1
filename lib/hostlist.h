/* Slurm-style node formats: host lists ("n[01-04,07],login1") expanded
 * into names and names compressed back; tasks per node ("2(x3),1").  Pure
 * functions: no I/O. */
#ifndef PHX_HOSTLIST_H
#define PHX_HOSTLIST_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* Expand a host list ("n[01-04,07],login1", "r[1-2]n[1-3]") into names.
 * On success *names is a malloc'd array of *count malloc'd strings; free with
 * phx_hostlist_free.  Refuses more than max names (0: 65536).  0 or -1. */
int phx_hostlist_expand(const char *list, size_t max, char ***names, size_t *count,
                        phx_error_t *err);
void phx_hostlist_free(char **names, size_t count);
/* Compress names into the shortest Slurm form: names sharing a prefix, a
 * numeric suffix width and a tail are merged into one bracket, numbers sorted
 * and duplicates dropped, groups in order of first appearance.  Returns a
 * malloc'd string the caller frees, or NULL (errno ENOMEM). */
char *phx_hostlist_compress(const char *const *names, size_t count);
/* The order of names in their compressed list (phx_hostlist_compress, then
 * expanded): order[k] is the index in names of the k-th name of the list.
 * -1 with errno EINVAL when two names are equal (the list drops one), or
 * ENOMEM; order is then untouched. */
int phx_hostlist_order(const char *const *names, size_t count, size_t *order);

/* Format per-node task counts: {2,2,2,1} -> "2(x3),1".  Malloc'd or NULL. */
char *phx_tasks_per_node_format(const uint32_t *counts, size_t count);
/* Parse "2(x3),1" back into a malloc'd array.  0 or -1 with err. */
int phx_tasks_per_node_parse(const char *text, uint32_t **counts, size_t *count,
                             phx_error_t *err);

#endif
