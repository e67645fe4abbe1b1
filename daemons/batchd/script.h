/* Job script directives and the equivalent command-line options.
 *
 * A script must start with "#!".  Lines starting with "#PHX" or "#SBATCH"
 * (column 0, then white space) are read identically until the first line
 * that is neither blank nor a comment; later directives are ignored with a
 * warning, as in Slurm.  A directive line holds one or more options in the
 * sbatch forms: --opt=value, --opt value, -N2, -N 2; values may be quoted
 * ("..." or '...'); a backslash escapes the next character; a word starting
 * with an unquoted '#' starts a comment.  Any unknown or malformed option
 * refuses the whole script with "file:line: ..." (doc/jobs.md lists them). */
#ifndef PHX_BATCHD_SCRIPT_H
#define PHX_BATCHD_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobspec.h"
#include "lib/error.h"

#define PHX_SCRIPT_MAX_DEFAULT (4u * 1024 * 1024) /* Slurm's default too */

/* A non-fatal remark ("file:line: ...") for the submitter. */
typedef void phx_script_warn_f(void *arg, const char *msg);

/* An origin line of an option given on the command line. */
#define PHX_SCRIPT_CMDLINE (-1)

/* Where each field of a spec was set, by offsetof(phx_jobspec_t, field): the
 * script line of its directive, PHX_SCRIPT_CMDLINE, or 0 (not given: a
 * default or a value finalize derived). */
typedef struct phx_script_origin {
    int line[sizeof(phx_jobspec_t)];
} phx_script_origin_t;

typedef struct phx_script_opts {
    const char *filename;    /* in messages; NULL: "script" */
    int64_t now;             /* seconds since the epoch, for --begin */
    size_t max_bytes;        /* 0: PHX_SCRIPT_MAX_DEFAULT */
    phx_script_warn_f *warn; /* NULL: warnings dropped */
    void *warn_arg;
    phx_script_origin_t *origin; /* NULL, or filled by phx_script_build */
} phx_script_opts_t;

/* Read the directives of a script (len bytes, need not be NUL-terminated)
 * into an uninitialised spec, with nothing finalized.  0, or -1 with err (and
 * spec cleared) when the script is too large, holds a NUL byte or DOS line
 * ends, lacks "#!", or a directive is unknown or malformed. */
int phx_script_parse(const char *text, size_t len, const phx_script_opts_t *opts,
                     phx_jobspec_t *spec, phx_error_t *err);

/* Read options from argv[0..argc) into an uninitialised spec, stopping at
 * "--" or the first word that is not an option (the script), whose index goes
 * to *next (argc when none).  0 or -1 with err naming the option. */
int phx_script_parse_argv(int argc, char *const argv[], const phx_script_opts_t *opts,
                          phx_jobspec_t *spec, int *next, phx_error_t *err);

/* The whole submission: directives of the script, then argv options over
 * them (argc may be 0), then phx_jobspec_finalize.  Fills an uninitialised
 * spec; on failure it is cleared and err says why: "file:line: ..." naming
 * the directive (or "command line: ...") whose value is refused. */
int phx_script_build(const char *text, size_t len, int argc, char *const argv[],
                     const phx_script_opts_t *opts, const phx_jobspec_defaults_t *def,
                     const phx_jobspec_limits_t *limits, phx_jobspec_t *spec,
                     phx_error_t *err);

/* Say where the options that blame names were given: err's text gets the
 * prefix "file:line: " of the latest of them ("command line: " when given
 * there, "file: " when none was given) and a "(see also file:line)" for the
 * others.  Returns -1. */
int phx_script_blame(const phx_script_opts_t *opts, const phx_script_origin_t *origin,
                     const phx_jobspec_blame_t *blame, phx_error_t *err);

#endif
