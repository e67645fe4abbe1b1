/* Slurm-compatible text formats: time limits, memory sizes, compressed host
 * lists ("n[01-04,07]") and tasks-per-node strings ("2(x3),1").
 *
 * Pure functions: no clock, no I/O.  Errors fill an optional phx_error_t. */
#ifndef PHX_BATCHD_TIMEFMT_H
#define PHX_BATCHD_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* A time limit of 0 seconds means "no limit" (Slurm's 0, UNLIMITED). */
#define PHX_TIME_UNLIMITED 0

/* Parse a Slurm time limit into seconds: "min", "min:sec", "h:m:s", "d-h",
 * "d-h:m", "d-h:m:s", or "0"/"UNLIMITED"/"INFINITE" (-> PHX_TIME_UNLIMITED).
 * Fields after the first are bounded (0-59 for m and s, 0-23 for h after d).
 * 0 or -1 with err. */
int phx_time_parse(const char *text, int64_t *secs, phx_error_t *err);
/* Format seconds as Slurm prints them: "UNLIMITED" for 0, "MM:SS" under an
 * hour, "HH:MM:SS" under a day, else "D-HH:MM:SS".  Returns the length
 * snprintf would return (output truncated when len is too small). */
int phx_time_format(int64_t secs, char *buf, size_t len);

/* Parse a memory size: a number with an optional K, M, G or T suffix (binary
 * units, case-insensitive, an optional trailing B), MiB when bare.  Result in
 * MiB, kibibytes rounded up.  "0" is valid (the caller decides its meaning).
 * 0 or -1 with err. */
int phx_mem_parse(const char *text, uint64_t *mib, phx_error_t *err);
/* Format MiB with the largest exact unit: 4096 -> "4G", 1500 -> "1500M". */
int phx_mem_format(uint64_t mib, char *buf, size_t len);

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

/* Format per-node task counts: {2,2,2,1} -> "2(x3),1".  Malloc'd or NULL. */
char *phx_tasks_per_node_format(const uint32_t *counts, size_t count);
/* Parse "2(x3),1" back into a malloc'd array.  0 or -1 with err. */
int phx_tasks_per_node_parse(const char *text, uint32_t **counts, size_t *count,
                             phx_error_t *err);

#endif
