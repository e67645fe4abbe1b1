/* phx-agent: a task's GPUs.  The LAUNCH names them by device id of this
 * node's topology (the one the agent registered with); the task's
 * environment names them by index, their rank among the node's GPUs in
 * device order (PCI order, topology/topo.h), comma-separated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/agent/task.h"

int phx_task_parse_gpus(phx_task_t *t, phx_error_t *err)
{
    const phx_topo_t *topo = t->a->topo;
    json_t *gpus = json_object_get(t->spec, "gpus");
    free(t->gpus);
    t->gpus = NULL;
    if (!gpus || json_is_null(gpus))
        return 0;
    if (!json_is_array(gpus))
        return phx_error_set(err, "gpus must be a list");
    if (json_array_size(gpus) == 0)
        return 0;
    int n = phx_topo_ngpus(topo);
    char *seen = calloc((size_t)n + 1, 1);
    if (!seen)
        return phx_error_set(err, "out of memory");
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g)
    {
        json_t *id = json_object_get(g, "id");
        json_int_t d = json_integer_value(id);
        int index =
            json_is_integer(id) && d == (int)d ? phx_topo_gpu_index(topo, (int)d) : -1;
        if (index < 0 || seen[index]) {
            free(seen);
            if (index >= 0)
                return phx_error_set(err, "gpus[%zu] names GPU %lld twice", i,
                                     (long long)d);
            return phx_error_set(err, "gpus[%zu] is not a GPU of this node (%d GPUs)",
                                 i, n);
        }
        seen[index] = 1;
    }
    /* Ascending indexes, "0,1,3": at most 11 bytes each. */
    char *s = malloc((size_t)n * 12 + 1);
    if (!s) {
        free(seen);
        return phx_error_set(err, "out of memory");
    }
    size_t len = 0;
    s[0] = '\0';
    for (int k = 0; k < n; k++)
        if (seen[k])
            len += (size_t)sprintf(s + len, "%s%d", len ? "," : "", k);
    free(seen);
    t->gpus = s;
    return 0;
}
