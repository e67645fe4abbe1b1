/* The GPUs of an accepted task: named by device id in the TaskInfo or chosen
 * nearest the task's cores, checked against the offer; their list format
 * for the database and their LAUNCH form for the agent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/sched.h"

/* Free GPU of view, not yet in grant, nearest core: its NUMA domain (pass 0),
 * its socket (1), anywhere (2); lowest id first.  -1 if none. */
static int nearest(const phx_topo_free_t *view, const phx_topo_grant_t *grant, int core)
{
    const phx_topo_t *t = phx_topo_free_topo(view);
    int numa = core >= 0 ? phx_topo_core_numa(t, core) : -1;
    int socket = core >= 0 ? phx_topo_core_socket(t, core) : -1;
    for (int pass = 0; pass < 3; pass++)
        for (int d = 0; d < phx_topo_ndevs(t); d++) {
            if (!phx_topo_free_has_gpu(view, d) || phx_topo_grant_has_gpu(grant, d))
                continue;
            if (pass == 2 || (pass == 1 && phx_topo_dev_socket(t, d) == socket) ||
                (pass == 0 && phx_topo_dev_numa(t, d) == numa))
                return d;
        }
    return -1;
}

int phx_accept_gpus(const phx_topo_free_t *view, const json_t *ti, int ngpus,
                    const char *agent, phx_topo_grant_t *grant, phx_error_t *err)
{
    const phx_topo_t *t = phx_topo_free_topo(view);
    json_t *ids = json_object_get(ti, "gpus");
    if (ids && !json_is_null(ids)) {
        if (!json_is_array(ids))
            return phx_error_set(err, "gpus must be a list of GPU device ids");
        if (ngpus >= 0 && json_array_size(ids) != (size_t)ngpus)
            return phx_error_set(err, "gpus lists %zu GPUs but resources ask for %d",
                                 json_array_size(ids), ngpus);
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            json_int_t d = json_integer_value(v);
            if (!json_is_integer(v) || !phx_topo_is_gpu(t, (int)d) || d != (int)d)
                return phx_error_set(err, "gpus[%zu] is not a GPU of agent \"%s\"", i,
                                     agent);
            if (phx_topo_grant_has_gpu(grant, (int)d))
                return phx_error_set(err, "gpus[%zu] = %lld named twice", i,
                                     (long long)d);
            if (!phx_topo_free_has_gpu(view, (int)d))
                return phx_error_set(err,
                                     "gpus[%zu]: GPU %lld (%s) is not in the offer", i,
                                     (long long)d, phx_topo_dev_name(t, (int)d));
            phx_topo_grant_add_gpu(grant, (int)d);
        }
        return 0;
    }
    int core = phx_topo_coreset_next(phx_topo_grant_cores(grant), -1);
    for (int k = 0; k < ngpus; k++) {
        int d = nearest(view, grant, core);
        if (d < 0)
            return phx_error_set(err, "%d GPUs do not fit in the offer (%d free)",
                                 ngpus, phx_topo_free_ngpus(view));
        phx_topo_grant_add_gpu(grant, d);
    }
    return 0;
}

/* The grant's GPUs as a set of device ids (new; NULL on ENOMEM). */
static phx_topo_coreset_t *gpu_set(const phx_topo_t *t, const phx_topo_grant_t *grant)
{
    phx_topo_coreset_t *set = phx_topo_coreset_create(phx_topo_ndevs(t));
    for (int d = 0; set && d < phx_topo_ndevs(t); d++)
        if (phx_topo_grant_has_gpu(grant, d))
            phx_topo_coreset_add(set, d);
    return set;
}

char *phx_gpus_str(const phx_topo_t *t, const phx_topo_grant_t *grant)
{
    if (phx_topo_grant_ngpus(grant) == 0)
        return strdup("");
    phx_topo_coreset_t *set = gpu_set(t, grant);
    char *s = set ? phx_topo_coreset_str(set) : NULL;
    phx_topo_coreset_destroy(set);
    return s;
}

int phx_gpus_parse(phx_topo_grant_t *grant, const phx_topo_t *t, const char *list,
                   phx_error_t *err)
{
    if (!list || !*list)
        return 0;
    phx_topo_coreset_t *set = phx_topo_coreset_create(phx_topo_ndevs(t));
    if (!set)
        return phx_error_set(err, "out of memory");
    int rc = phx_topo_coreset_parse(set, list, err);
    for (int d = phx_topo_coreset_next(set, -1); rc == 0 && d >= 0;
         d = phx_topo_coreset_next(set, d))
        if (phx_topo_grant_add_gpu(grant, d) < 0 && errno != EEXIST)
            rc = phx_error_set(err, "device %d is not a GPU", d);
    phx_topo_coreset_destroy(set);
    return rc < 0 ? -1 : 0;
}

json_t *phx_gpus_launch_json(const phx_topo_t *t, const phx_topo_grant_t *grant)
{
    json_t *a = json_array();
    for (int d = 0; a && d < phx_topo_ndevs(t); d++) {
        if (!phx_topo_grant_has_gpu(grant, d))
            continue;
        if (json_array_append_new(a, json_pack("{s:i, s:i, s:s, s:s}", "id", d, "index",
                                               phx_topo_gpu_index(t, d), "name",
                                               phx_topo_dev_name(t, d), "pci",
                                               phx_topo_dev_pci(t, d))) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}
