/* squeue's -o/--format for phx queue: "%.18i %.9P %.8j %.8u %.2t %.10M
 * %.6D %R" and the like, over the jobs batchd lists (GET /api/v1/jobs).
 * A field is %[.][width]X: width pads (and truncates) it, "." puts it on
 * the right; text between fields is copied, "%%" is a percent sign. */
#ifndef PHX_CLI_QUEUE_FORMAT_H
#define PHX_CLI_QUEUE_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* squeue's default, and phx queue's. */
#define PHX_QUEUE_FORMAT_DEFAULT "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
/* squeue --start's (less SCHEDNODES: EASY names no nodes ahead) */
#define PHX_QUEUE_FORMAT_START "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %R"

/* Is fmt well formed, every letter one phx queue knows?  0 or -1 with err
 * naming the field. */
int phx_queue_format_check(const char *fmt, phx_error_t *err);
/* One line (no newline) into out: the header when job is NULL, else the
 * job's fields at time now (for %L).  fmt must have passed the check. */
void phx_queue_format_line(const char *fmt, const json_t *job, int64_t now, char *out,
                           size_t len);

#endif
