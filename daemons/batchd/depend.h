/* Job dependencies (sbatch -d): "afterok:20:21,afterany:23" (',' = all of),
 * "afterok:20?afternotok:20" ('?' = any of), "after:20+10" (minutes after
 * 20 started), "afterok:20_3" (one array task), "singleton".  Mixing ',' and
 * '?' is refused, as Slurm does. */
#ifndef PHX_BATCHD_DEPEND_H
#define PHX_BATCHD_DEPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobspec.h"
#include "lib/error.h"

typedef enum phx_dep_type {
    PHX_DEP_AFTER,      /* the other job started (or ended without starting) */
    PHX_DEP_AFTERANY,   /* the other job ended, however */
    PHX_DEP_AFTEROK,    /* the other job COMPLETED */
    PHX_DEP_AFTERNOTOK, /* the other job ended in any other final state */
    PHX_DEP_SINGLETON,  /* no earlier job of the same user and name is active */
} phx_dep_type_t;

typedef struct phx_dep_term {
    phx_dep_type_t type;
    uint64_t job_id;    /* 0 for singleton */
    int64_t array_task; /* -1: the whole job (every task of an array) */
    int64_t delay;      /* after:+N, seconds */
} phx_dep_term_t;

typedef struct phx_depend {
    phx_dep_term_t *terms; /* malloc'd */
    size_t count;
    bool any; /* '?': satisfied when any term is */
} phx_depend_t;

typedef enum phx_dep_result {
    PHX_DEP_SATISFIED,
    PHX_DEP_WAITING,
    PHX_DEP_NEVER, /* the job ends with reason DependencyNeverSatisfied */
} phx_dep_result_t;

/* What evaluation needs to know about another job (for an array as a whole:
 * the worst state of its tasks, final only when every task is final). */
typedef struct phx_dep_job {
    phx_job_state_t state;
    int64_t start_time; /* -1: never started */
} phx_dep_job_t;

/* The daemon answers: 0 and *out filled, or -1 when no such job exists. */
typedef int phx_dep_lookup_f(void *arg, uint64_t job_id, int64_t array_task,
                             phx_dep_job_t *out);
/* true when no earlier active job shares this job's user and name. */
typedef bool phx_dep_singleton_f(void *arg);

typedef struct phx_dep_env {
    phx_dep_lookup_f *lookup;
    phx_dep_singleton_f *singleton_clear; /* NULL: singleton always clear */
    void *arg;
} phx_dep_env_t;

/* Parse text into out (phx_depend_clear frees).  0 or -1 with err. */
int phx_depend_parse(const char *text, phx_depend_t *out, phx_error_t *err);
void phx_depend_clear(phx_depend_t *dep);
/* Canonical text, "afterok:20:21,afterany:23".  Malloc'd or NULL (ENOMEM). */
char *phx_depend_format(const phx_depend_t *dep);
/* At submission: every job named must exist.  0 or -1 with err naming it. */
int phx_depend_check(const phx_depend_t *dep, const phx_dep_env_t *env,
                     phx_error_t *err);
/* Where the dependency stands at now.  A job that no longer exists counts as
 * NEVER for that term.  An empty dependency is satisfied. */
phx_dep_result_t phx_depend_eval(const phx_depend_t *dep, const phx_dep_env_t *env,
                                 int64_t now);

#endif
