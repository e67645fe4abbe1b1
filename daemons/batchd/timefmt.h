/* Slurm-compatible text formats: time limits and memory sizes; host lists
 * and tasks-per-node strings are in lib/hostlist.h.
 *
 * Pure functions: no clock (the current time is given), no I/O; --begin
 * reads the local time zone.  Errors fill an optional phx_error_t. */
#ifndef PHX_BATCHD_TIMEFMT_H
#define PHX_BATCHD_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/hostlist.h"

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

/* sbatch --begin: "now[+N[seconds|minutes|hours|days|weeks]]",
 * "YYYY-MM-DD[THH:MM[:SS]]", "HH:MM[:SS]" (next such time), "midnight",
 * "noon", "teatime", "today", "tomorrow"; local time.  0 or -1 with err. */
int phx_begin_parse(const char *text, int64_t now, int64_t *when, phx_error_t *err);

#endif
