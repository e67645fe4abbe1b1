/* Job specs built from the script fixtures (tests/unit/fixtures/scripts)
 * the way phx-batchd builds them, for the tests of batchd's script parser
 * and job spec.
 *
 * batchd's sources are in no library: a test using this file includes
 * daemons/batchd/script.c (and what it needs) itself, and this file calls
 * phx_script_build there.  phx_scripttest_setup is the cmocka group setup;
 * the helpers fail the running test (cmocka) on an error. */
#ifndef PHX_TEST_SCRIPTTEST_H
#define PHX_TEST_SCRIPTTEST_H

#include <stdint.h>

#include "daemons/batchd/jobspec.h"
#include "daemons/batchd/script.h"
#include "lib/error.h"

#define PHX_SCRIPTTEST_NOW INT64_C(1700000000) /* 2023-11-14T22:13:20Z */

/* The warnings a build reported: how many, and the last one. */
typedef struct phx_scripttest_warnings {
    int count;
    char last[512];
} phx_scripttest_warnings_t;

/* The limits of every build: array index 100000, 50000 array tasks. */
extern const phx_jobspec_limits_t phx_scripttest_limits;

/* Group setup: finds the fixtures and sets TZ to UTC.  0, or -1. */
int phx_scripttest_setup(void **state);

/* Build fixture name's spec as the daemon will: directives, argv over them,
 * finalize (job name name, work dir /home/alice/sub, time limit 3600 s by
 * default; now PHX_SCRIPTTEST_NOW).  0, or -1 with err. */
int phx_scripttest_build(const char *name, int argc, char *const argv[],
                         phx_jobspec_t *spec, phx_scripttest_warnings_t *w,
                         phx_error_t *err);
/* The same without a command line; fails the test on an error. */
void phx_scripttest_build_ok(const char *name, phx_jobspec_t *spec,
                             phx_scripttest_warnings_t *w);

#endif
