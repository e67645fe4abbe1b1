/* A node's free resources as NUMA and socket bundles. */
#include <errno.h>

#include "topology/free_impl.h"

static int bundle(const phx_topo_free_t *f, const uint64_t *mask,
                  phx_topo_coreset_t *cores)
{
    int n = 0;
    for (int w = 0; w < f->t->nwords; w++) {
        cores->w[w] = f->cores->w[w] & mask[w];
        n += __builtin_popcountll(cores->w[w]);
    }
    return n;
}

int phx_topo_free_numa_bundle(const phx_topo_free_t *f, int numa,
                              phx_topo_coreset_t *cores, uint64_t *memory)
{
    const phx_topo_t *t = f->t;
    if (numa < 0 || numa >= t->nnumas || cores->ncores != t->ncores) {
        errno = EINVAL;
        return -1;
    }
    *memory = f->numa_mem[numa];
    return bundle(f, t->numa_mask + (size_t)numa * t->nwords, cores);
}

int phx_topo_free_socket_bundle(const phx_topo_free_t *f, int socket,
                                phx_topo_coreset_t *cores, uint64_t *memory)
{
    const phx_topo_t *t = f->t;
    if (socket < 0 || socket >= t->nsockets || cores->ncores != t->ncores) {
        errno = EINVAL;
        return -1;
    }
    *memory = 0;
    for (int i = t->socket_numa_off[socket]; i < t->socket_numa_off[socket + 1]; i++)
        *memory += f->numa_mem[t->socket_numas[i]];
    return bundle(f, t->socket_mask + (size_t)socket * t->nwords, cores);
}

static json_t *core_list(const phx_topo_coreset_t *cores)
{
    json_t *a = json_array();
    for (int c = phx_topo_coreset_next(cores, -1); a && c >= 0;
         c = phx_topo_coreset_next(cores, c))
        if (json_array_append_new(a, json_integer(c)) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Free GPU ids whose NUMA domain (by_socket: socket) is id; id -1: all. */
static json_t *gpu_list(const phx_topo_free_t *f, bool by_socket, int id)
{
    json_t *a = json_array();
    for (int d = 0; a && d < f->t->ndevs; d++) {
        const struct topo_dev *dev = &f->t->devs[d];
        if (!f->gpu[d] || (id >= 0 && (by_socket ? dev->socket : dev->numa) != id))
            continue;
        if (json_array_append_new(a, json_integer(d)) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *numa_bundle_json(const phx_topo_free_t *f, int n,
                                phx_topo_coreset_t *tmp)
{
    uint64_t mem;
    if (phx_topo_free_numa_bundle(f, n, tmp, &mem) <= 0)
        return json_null();
    return json_pack("{s:i, s:i, s:o, s:I, s:o}", "socket", f->t->numa_socket[n],
                     "numa", n, "cores", core_list(tmp), "mem", (json_int_t)mem, "gpus",
                     gpu_list(f, false, n));
}

static json_t *socket_bundle_json(const phx_topo_free_t *f, int s,
                                  phx_topo_coreset_t *tmp)
{
    const phx_topo_t *t = f->t;
    uint64_t mem;
    if (phx_topo_free_socket_bundle(f, s, tmp, &mem) <= 0)
        return json_null();
    json_t *numas = json_array();
    for (int i = t->socket_numa_off[s]; numas && i < t->socket_numa_off[s + 1]; i++)
        if (json_array_append_new(numas, json_integer(t->socket_numas[i])) < 0) {
            json_decref(numas);
            numas = NULL;
        }
    return json_pack("{s:i, s:o, s:o, s:I, s:o}", "socket", s, "numas", numas, "cores",
                     core_list(tmp), "mem", (json_int_t)mem, "gpus",
                     gpu_list(f, true, s));
}

/* Append item unless it is null (an empty bundle); -1 on failure. */
static int append(json_t *arr, json_t *item)
{
    if (!item)
        return -1;
    if (json_is_null(item))
        return 0;
    return json_array_append_new(arr, item);
}

json_t *phx_topo_free_bundles_json(const phx_topo_free_t *f)
{
    const phx_topo_t *t = f->t;
    phx_topo_coreset_t *tmp = phx_topo_coreset_create(t->ncores);
    json_t *numas = json_array(), *sockets = json_array(), *o = NULL;
    if (!tmp || !numas || !sockets)
        goto error;
    for (int n = 0; n < t->nnumas; n++)
        if (append(numas, numa_bundle_json(f, n, tmp)) < 0)
            goto error;
    for (int s = 0; s < t->nsockets; s++)
        if (append(sockets, socket_bundle_json(f, s, tmp)) < 0)
            goto error;
    o = json_pack("{s:i, s:I, s:i, s:o, s:o, s:o}", "cpus", phx_topo_free_ncores(f),
                  "mem", (json_int_t)phx_topo_free_memory(f), "gpus",
                  phx_topo_free_ngpus(f), "gpu_ids", gpu_list(f, false, -1), "numa",
                  numas, "sockets", sockets);
    numas = sockets = NULL; /* json_pack's "o" steals them, even on failure */
error:
    json_decref(numas);
    json_decref(sockets);
    phx_topo_coreset_destroy(tmp);
    if (!o)
        errno = ENOMEM;
    return o;
}
