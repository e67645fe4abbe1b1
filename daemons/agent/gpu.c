/* phx-agent: a task's GPUs.  The LAUNCH names them by device id of this
 * node's topology (the one the agent registered with); the task's
 * environment names them by index, their rank among the node's GPUs in
 * device order (PCI order, topology/topo.h), comma-separated; and the
 * device files of the node's GPUs, which the task's devices cgroup
 * (gpu_cg.c) denies but for its own. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/agent/task.h"

const char *const phx_gpu_env_vars[PHX_GPU_ENV_VARS] = {
    "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "PHX_GPUS"};

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

/* ---- device files of GPUs ---- */

/* Append "MAJ:MIN" read from file (a sysfs "dev") to out; n updated. */
static void add_dev_file(const char *file, char (*out)[24], int max, int *n)
{
    char buf[32] = "";
    FILE *f = fopen(file, "re");
    if (!f)
        return;
    unsigned maj, min;
    if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &maj, &min) == 2 && *n < max)
        snprintf(out[(*n)++], sizeof(out[0]), "%u:%u", maj, min);
    fclose(f);
}

int phx_gpu_dev_numbers(const char *root, const char *pci, char (*out)[24], int max)
{
    int n = 0;
    char path[PATH_MAX];
    if (!pci || !*pci)
        return 0;
    /* NVIDIA: /dev/nvidia<minor>, character major 195. */
    snprintf(path, sizeof(path), "%s/proc/driver/nvidia/gpus/%s/information", root,
             pci);
    FILE *f = fopen(path, "re");
    char line[256];
    unsigned minor;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Device Minor: %u", &minor) == 1 && n < max)
            snprintf(out[n++], sizeof(out[0]), "195:%u", minor);
    if (f)
        fclose(f);
    /* DRM (AMD and others): /dev/dri/card<N> and renderD<N>. */
    snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/%s/drm", root, pci);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "card", 4) != 0 && strncmp(e->d_name, "renderD", 7) != 0)
            continue;
        char file[PATH_MAX + 300];
        snprintf(file, sizeof(file), "%s/%s/dev", path, e->d_name);
        add_dev_file(file, out, max, &n);
    }
    if (d)
        closedir(d);
    return n;
}

/* Is index idx in the list "0,2"? */
static bool in_list(const char *list, int idx)
{
    for (const char *p = list; p && *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            return false;
        if (v == idx)
            return true;
        p = *end == ',' ? end + 1 : end;
    }
    return false;
}

int phx_gpu_deny_list(const phx_topo_t *topo, const char *keep, const char *root,
                      char (*out)[24], int max)
{
    int n = 0;
    for (int d = 0; d < phx_topo_ndevs(topo); d++)
        if (phx_topo_is_gpu(topo, d) && !in_list(keep, phx_topo_gpu_index(topo, d)))
            n += phx_gpu_dev_numbers(root, phx_topo_dev_pci(topo, d), out + n, max - n);
    return n;
}
