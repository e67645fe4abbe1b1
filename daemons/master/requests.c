/* REQUEST: gang requests, our extension of the scheduler API.
 *
 *   {"id": "job-41", "bundles": 4, "kind": "numa"|"socket"|"any", "cpus": 8,
 *    "mem": 16384 (MB per bundle), "duration_seconds": 3600,
 *    "expires_in_seconds": 600}
 *
 * The allocator then holds resources for the request as they free up (see
 * doc/allocator.md) and offers them together once the gang fits. */
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/json.h"
#include "lib/log.h"

int phx_sched_request_add(phx_master_t *m, phx_fw_t *fw, const json_t *req,
                          phx_error_t *err)
{
    const char *id = NULL, *kind = "numa";
    long long bundles = 0, cpus = 0;
    double mem = 0, duration = 0, expires_in = 0;
    if (phx_json_str(req, "id", true, &id, err) < 0 ||
        phx_json_int(req, "bundles", true, 1, 1 << 20, &bundles, err) < 0 ||
        phx_json_str(req, "kind", false, &kind, err) < 0 ||
        phx_json_int(req, "cpus", true, 1, 1 << 20, &cpus, err) < 0 ||
        phx_json_num(req, "mem", false, 0, 1e12, &mem, err) < 0 ||
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
    double now = phx_master_clock();
    if (phx_alloc_request_add(m->alloc, fw->id, id, &shape, duration,
                              expires_in > 0 ? now + expires_in : 0, now, err) < 0)
        return -1;
    phx_log_info("framework %s: gang request %s for %d %s bundles of %d cores", fw->id,
                 id, shape.nbundles, kind, shape.cores);
    return 0;
}
