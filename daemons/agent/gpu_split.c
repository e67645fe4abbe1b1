/* phx-agent: the GPUs of a step's ranks (doc/steps.md, "GPUs").
 *
 * A job's task holds its GPUs of this node (t->gpus, node-local indexes).
 * Without --gpus-per-task every local rank of a step sees all of them, as
 * Slurm's do.  With --gpus-per-task=K each rank gets K of them, its own:
 * under --gpu-bind=closest (the default) first those local to the NUMA
 * domains of the rank's cores (to their sockets, for a GPU local to a
 * socket but to no single domain of it), then the lowest left, in rank
 * order; under --gpu-bind=none every rank sees all of them.  An explicit
 * closest
 * without K gives each rank the job's GPUs near its cores (all of them
 * when none is).  The master has refused a step whose ranks need more GPUs
 * than the job has here (step_check.c); a launch that does anyway fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/agent/step.h"
#include "daemons/agent/task.h"

/* Where the GPU of node-local index idx is: its NUMA domain, else (local
 * to a socket but no single domain of it) -2 - its socket; -1: neither. */
static int gpu_place(const phx_topo_t *topo, int idx)
{
    for (int d = 0; d < phx_topo_ndevs(topo); d++)
        if (phx_topo_is_gpu(topo, d) && phx_topo_gpu_index(topo, d) == idx) {
            int numa = phx_topo_dev_numa(topo, d),
                socket = phx_topo_dev_socket(topo, d);
            return numa >= 0 ? numa : socket >= 0 ? -2 - socket : -1;
        }
    return -1;
}

/* Is a GPU at place (gpu_place) near the cores (a JSON array of core ids):
 * on the NUMA domain (else the socket) of one of them? */
static bool near(const phx_topo_t *topo, int place, const json_t *cores)
{
    size_t i;
    const json_t *c;
    if (place == -1)
        return false;
    json_array_foreach(cores, i, c)
    {
        int core = json_is_integer(c) ? (int)json_integer_value(c) : -1;
        if (core >= 0 && (place >= 0 ? phx_topo_core_numa(topo, core) == place
                                     : phx_topo_core_socket(topo, core) == -2 - place))
            return true;
    }
    return false;
}

/* "0,2": the GPUs gpu[k] with owner[k] == rank (any rank: -1), ascending. */
static char *list_of(const int *gpu, const int *owner, int n, int rank)
{
    char *s = malloc((size_t)n * 12 + 1);
    size_t len = 0;
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int k = 0; k < n; k++)
        if (rank < 0 || owner[k] == rank)
            len += (size_t)sprintf(s + len, "%s%d", len ? "," : "", gpu[k]);
    return s;
}

void phx_gpu_split_free(char **sets, int nlocal)
{
    for (int i = 0; sets && i < nlocal; i++)
        free(sets[i]);
    free(sets);
}

/* Give rank r up to per_task of the free GPUs, those near its cores only
 * when near_only. */
static void take(const phx_topo_t *topo, int *owner, const int *place, int n,
                 int per_task, int r, int *have, const json_t *cores, bool near_only)
{
    for (int k = 0; k < n && have[r] < per_task; k++)
        if (owner[k] < 0 && (!near_only || near(topo, place[k], cores))) {
            owner[k] = r;
            have[r]++;
        }
}

char **phx_gpu_split(const phx_topo_t *topo, const char *gpus, int per_task,
                     const char *bind, int nlocal, const json_t *cores,
                     phx_error_t *err)
{
    bool closest = !bind || strcmp(bind, "none") != 0;
    const char *list = gpus ? gpus : "";
    int n = 0, cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    int *gpu = malloc(sizeof(int) * (size_t)cap), *place = NULL, *owner = NULL,
        *have = calloc((size_t)nlocal + 1, sizeof(int));
    char **sets = calloc((size_t)nlocal + 1, sizeof(char *));
    for (const char *p = list; gpu && *p && n < cap;) {
        char *end;
        gpu[n++] = (int)strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end + strlen(end);
    }
    if (!gpu || !have || !sets || !(place = calloc((size_t)n + 1, sizeof(int))) ||
        !(owner = calloc((size_t)n + 1, sizeof(int)))) {
        phx_error_set(err, "out of memory");
        goto error;
    }
    if (per_task > 0 && closest && (long long)per_task * nlocal > n) {
        phx_error_set(err,
                      "%d local ranks with %d GPUs per task need %lld GPUs, the "
                      "job has %d here",
                      nlocal, per_task, (long long)per_task * nlocal, n);
        goto error;
    }
    for (int k = 0; k < n; k++) {
        place[k] = gpu_place(topo, gpu[k]);
        owner[k] = -1;
    }
    for (int r = 0; r < nlocal; r++) {
        const json_t *rc = json_array_get(cores, (size_t)r);
        if (per_task > 0 && closest) {
            take(topo, owner, place, n, per_task, r, have, rc, true);
        } else if (closest && bind) { /* explicit closest, no K: all near */
            for (int k = 0; k < n; k++)
                owner[k] = near(topo, place[k], rc) ? r : -1;
            int near_ones = 0;
            for (int k = 0; k < n; k++)
                near_ones += owner[k] == r;
            sets[r] = list_of(gpu, owner, n, near_ones ? r : -1);
        } else {
            sets[r] = list_of(gpu, owner, n, -1);
        }
    }
    if (per_task > 0 && closest) /* the rest in order, then each rank's list */
        for (int r = 0; r < nlocal; r++)
            take(topo, owner, place, n, per_task, r, have, NULL, false);
    for (int r = 0; per_task > 0 && closest && r < nlocal; r++)
        sets[r] = list_of(gpu, owner, n, r);
    for (int r = 0; r < nlocal; r++)
        if (!sets[r]) {
            phx_error_set(err, "out of memory");
            goto error;
        }
    free(gpu);
    free(place);
    free(owner);
    free(have);
    return sets;
error:
    phx_gpu_split_free(sets, nlocal);
    free(gpu);
    free(place);
    free(owner);
    free(have);
    return NULL;
}

int phx_lstep_gpus(phx_lstep_t *s, const phx_task_t *t, const json_t *h,
                   phx_error_t *err)
{
    if (!t->gpus)
        return 0;
    json_t *k = json_object_get(h, "gpus_per_task"),
           *b = json_object_get(h, "gpu_bind");
    json_int_t per_task = json_integer_value(k);
    if (per_task < 0 || per_task > 1024)
        return phx_error_set(err, "gpus_per_task %lld out of range",
                             (long long)per_task);
    char **sets =
        phx_gpu_split(t->a->topo, t->gpus, (int)per_task, json_string_value(b),
                      s->nlocal, json_object_get(h, "cores"), err);
    if (!sets)
        return -1;
    for (int r = 0; r < s->nlocal; r++) {
        s->local[r].gpus = sets[r];
        sets[r] = NULL;
    }
    free(sets);
    return 0;
}

int phx_gpu_env_put(char ***env, int *n, const char *gpus)
{
    for (size_t i = 0; gpus && i < PHX_GPU_ENV_VARS; i++)
        if (phx_pmix_env_set(env, n, phx_gpu_env_vars[i], gpus) < 0)
            return -1;
    if (gpus && phx_pmix_env_set(env, n, "CUDA_DEVICE_ORDER", "PCI_BUS_ID") < 0)
        return -1;
    return 0;
}
