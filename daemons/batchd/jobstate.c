/* Job states and pending reasons: their names, squeue codes and parsing. */
#include <stdbool.h>
#include <strings.h>

#include "daemons/batchd/jobspec.h"

static const char *const state_names[PHX_JOB_STATE_COUNT] = {
    "PENDING",   "RUNNING", "COMPLETED", "FAILED",
    "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
};
static const char *const state_codes[PHX_JOB_STATE_COUNT] = {
    "PD", "R", "CD", "F", "CA", "TO", "NF", "OOM",
};
static const char *const reason_names[PHX_REASON_COUNT] = {
    "None",
    "Priority",
    "Resources",
    "Dependency",
    "DependencyNeverSatisfied",
    "BeginTime",
    "JobArrayTaskLimit",
    "JobHeldUser",
    "JobHeldAdmin",
    "NodeFailRequeued",
    "PartitionNodeLimit",
    "PartitionDown",
    "PartitionInactive",
    "InvalidAccount",
    "QOSMaxJobsPerUserLimit",
};

const char *phx_job_state_name(phx_job_state_t state)
{
    return (unsigned)state < PHX_JOB_STATE_COUNT ? state_names[state] : NULL;
}

const char *phx_job_state_code(phx_job_state_t state)
{
    return (unsigned)state < PHX_JOB_STATE_COUNT ? state_codes[state] : NULL;
}

int phx_job_state_parse(const char *name)
{
    for (int i = 0; i < PHX_JOB_STATE_COUNT; i++)
        if (name &&
            (!strcasecmp(name, state_names[i]) || !strcasecmp(name, state_codes[i])))
            return i;
    return -1;
}

bool phx_job_state_is_final(phx_job_state_t state)
{
    return state >= PHX_JOB_COMPLETED && state < PHX_JOB_STATE_COUNT;
}

const char *phx_job_reason_name(phx_job_reason_t reason)
{
    return (unsigned)reason < PHX_REASON_COUNT ? reason_names[reason] : NULL;
}
