/* REQUEST: gang requests, our extension of the scheduler API.
 *
 *   {"id": "job-41", "bundles": 4, "kind": "numa"|"socket"|"any", "cpus": 8,
 *    "mem": 16384 (MB per bundle), "per_agent": 2, "per_socket": 1,
 *    "min_agents": 2, "max_agents": 2, "agents": ["3", "7"],
 *    "agent_mem": 4096 (MB per agent used), "whole_mem": false, "whole_agent": false,
 *    "gpus": 1 (per bundle), "agent_gpus": 2 (per agent used),
 *    "duration_seconds": 3600, "expires_in_seconds": 600}
 *
 * The allocator then holds resources for the request as they free up (see
 * doc/allocator.md) and offers them together once the gang fits. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/json.h"
#include "lib/log.h"

#define PHX_REQUEST_AGENTS_MAX 65536

/* "agents": decimal agent ids as in offers' agent_id; *out NULL if absent. */
static int agent_list(const json_t *req, int64_t **out, size_t *n, phx_error_t *err)
{
    json_t *list = NULL;
    *out = NULL;
    *n = 0;
    if (phx_json_arr(req, "agents", false, &list, err) < 0)
        return -1;
    if (!list)
        return 0;
    size_t len = json_array_size(list);
    if (len == 0)
        return phx_error_set(err, "field \"agents\" is empty (leave it out for any "
                                  "agent)");
    if (len > PHX_REQUEST_AGENTS_MAX)
        return phx_error_set(err, "field \"agents\" lists %zu agents, more than %d",
                             len, PHX_REQUEST_AGENTS_MAX);
    if (!(*out = malloc((len + 1) * sizeof(**out))))
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const char *v = json_string_value(json_array_get(list, i));
        char *end = NULL;
        errno = 0;
        long long id = v && *v >= '0' && *v <= '9' ? strtoll(v, &end, 10) : 0;
        if (!end || *end || errno || id <= 0) {
            free(*out);
            *out = NULL;
            return phx_error_set(err, "field \"agents\"[%zu] is not an agent id", i);
        }
        (*out)[i] = id;
    }
    *n = len;
    return 0;
}

int phx_sched_request_add(phx_master_t *m, phx_fw_t *fw, const json_t *req,
                          phx_error_t *err)
{
    const char *id = NULL, *kind = "numa";
    long long bundles = 0, cpus = 0, per_agent = 0, per_socket = 0, min_agents = 0,
              max_agents = 0, gpus = 0, agent_gpus = 0;
    double mem = 0, agent_mem = 0, duration = 0, expires_in = 0;
    bool whole_mem = false, whole_agent = false;
    if (phx_json_str(req, "id", true, &id, err) < 0 ||
        phx_json_int(req, "bundles", true, 1, 1 << 20, &bundles, err) < 0 ||
        phx_json_str(req, "kind", false, &kind, err) < 0 ||
        phx_json_int(req, "cpus", true, 1, 1 << 20, &cpus, err) < 0 ||
        phx_json_num(req, "mem", false, 0, 1e12, &mem, err) < 0 ||
        phx_json_num(req, "agent_mem", false, 0, 1e12, &agent_mem, err) < 0 ||
        phx_json_bool(req, "whole_mem", false, &whole_mem, err) < 0 ||
        phx_json_bool(req, "whole_agent", false, &whole_agent, err) < 0 ||
        phx_json_int(req, "gpus", false, 0, 1 << 20, &gpus, err) < 0 ||
        phx_json_int(req, "agent_gpus", false, 0, 1 << 20, &agent_gpus, err) < 0 ||
        phx_json_int(req, "per_agent", false, 0, 1 << 20, &per_agent, err) < 0 ||
        phx_json_int(req, "per_socket", false, 0, 1 << 20, &per_socket, err) < 0 ||
        phx_json_int(req, "min_agents", false, 0, 1 << 20, &min_agents, err) < 0 ||
        phx_json_int(req, "max_agents", false, 0, 1 << 20, &max_agents, err) < 0 ||
        phx_json_num(req, "duration_seconds", false, 0, 365 * 86400.0, &duration, err) <
            0 ||
        phx_json_num(req, "expires_in_seconds", false, 0, 365 * 86400.0, &expires_in,
                     err) < 0)
        return -1;
    if (!*id || strlen(id) > 128)
        return phx_error_set(err, "field \"id\" must be 1-128 characters");
    phx_alloc_shape_t shape = {
        .nbundles = (int)bundles,
        .cores = (int)cpus,
        .mem = (uint64_t)(mem * 1024 * 1024),
        .per_agent = (int)per_agent,
        .per_socket = (int)per_socket,
        .min_agents = (int)min_agents,
        .max_agents = (int)max_agents,
        .agent_mem = (uint64_t)(agent_mem * 1024 * 1024),
        .whole_mem = whole_mem,
        .whole_agent = whole_agent,
        .gpus = (int)gpus,
        .agent_gpus = (int)agent_gpus,
    };
    if (strcmp(kind, "numa") == 0)
        shape.kind = PHX_ALLOC_BUNDLE_NUMA;
    else if (strcmp(kind, "socket") == 0)
        shape.kind = PHX_ALLOC_BUNDLE_SOCKET;
    else if (strcmp(kind, "any") == 0)
        shape.kind = PHX_ALLOC_BUNDLE_ANY;
    else
        return phx_error_set(
            err, "field \"kind\" must be numa, socket or any, not \"%s\"", kind);
    int64_t *agents = NULL;
    if (agent_list(req, &agents, &shape.nagents, err) < 0)
        return -1;
    shape.agents = agents;
    double now = phx_master_clock();
    int rc = phx_alloc_request_add(m->alloc, fw->id, id, &shape, duration,
                                   expires_in > 0 ? now + expires_in : 0, now, err);
    bool listed = agents != NULL;
    free(agents);
    if (rc < 0)
        return -1;
    char where[48] = "any agents";
    if (listed)
        snprintf(where, sizeof(where), "%zu listed agents", shape.nagents);
    phx_log_info("framework %s: gang request %s for %d %s bundles of %d cores, "
                 "%.0f MB and %d GPUs (per agent %d bundles, %.0f MB and %d GPUs "
                 "more%s, per socket %d, agents %d to %d of %s)",
                 fw->id, id, shape.nbundles, kind, shape.cores, mem, shape.gpus,
                 shape.per_agent, agent_mem, shape.agent_gpus,
                 whole_agent ? ", whole"
                 : whole_mem ? ", all its memory"
                             : "",
                 shape.per_socket, shape.min_agents, shape.max_agents, where);
    return 0;
}
