/* The model: allocation, consistency checks, derived tables, accessors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

phx_topo_t *topo_alloc(int nsockets, int nnumas, int ncores, int npus, int ndevs)
{
    phx_topo_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->nsockets = nsockets;
    t->nnumas = nnumas;
    t->ncores = ncores;
    t->npus = npus;
    t->ndevs = ndevs;
    t->numa_socket = calloc((size_t)nnumas + 1, sizeof(int));
    t->numa_mem = calloc((size_t)nnumas + 1, sizeof(uint64_t));
    t->numa_os = calloc((size_t)nnumas + 1, sizeof(int));
    t->core_numa = calloc((size_t)ncores + 1, sizeof(int));
    t->core_pu_off = calloc((size_t)ncores + 1, sizeof(int));
    t->pus = calloc((size_t)npus + 1, sizeof(int));
    t->devs = calloc((size_t)ndevs + 1, sizeof(*t->devs));
    if (!t->numa_socket || !t->numa_mem || !t->numa_os || !t->core_numa ||
        !t->core_pu_off || !t->pus || !t->devs) {
        phx_topo_destroy(t);
        errno = ENOMEM;
        return NULL;
    }
    for (int i = 0; i < nnumas; i++)
        t->numa_os[i] = -1;
    for (int i = 0; i < ndevs; i++)
        t->devs[i].numa = t->devs[i].socket = -1;
    return t;
}

void phx_topo_destroy(phx_topo_t *t)
{
    if (!t)
        return;
    int saved = errno;
    for (int i = 0; i < t->ndevs && t->devs; i++) {
        free(t->devs[i].name);
        free(t->devs[i].pci);
        free(t->devs[i].model);
    }
    free(t->devs);
    free(t->numa_socket);
    free(t->numa_mem);
    free(t->numa_os);
    free(t->core_numa);
    free(t->core_pu_off);
    free(t->pus);
    free(t->core_socket);
    free(t->numa_ncores);
    free(t->numa_first);
    free(t->socket_ncores);
    free(t->socket_numa_off);
    free(t->socket_numas);
    free(t->numa_mask);
    free(t->socket_mask);
    free(t->numa_wlo);
    free(t->numa_whi);
    free(t->pu_core);
    free(t);
    errno = saved;
}

static int invalid(phx_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int invalid(phx_error_t *err, const char *fmt, ...)
{
    char text[PHX_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    errno = EINVAL;
    return phx_error_set(err, "%s", text);
}

static int check_counts(const phx_topo_t *t, phx_error_t *err)
{
    if (t->nsockets < 1 || t->nnumas < 1 || t->ncores < 1)
        return invalid(err, "topology needs at least one socket, NUMA domain and core");
    if (t->ncores > PHX_TOPO_CORE_LIMIT)
        return invalid(err, "topology has %d cores, more than the limit %d", t->ncores,
                       PHX_TOPO_CORE_LIMIT);
    return 0;
}

static int check_links(const phx_topo_t *t, phx_error_t *err)
{
    for (int n = 0; n < t->nnumas; n++)
        if (t->numa_socket[n] < 0 || t->numa_socket[n] >= t->nsockets)
            return invalid(err, "NUMA domain %d names socket %d, which does not exist",
                           n, t->numa_socket[n]);
    for (int c = 0; c < t->ncores; c++) {
        if (t->core_numa[c] < 0 || t->core_numa[c] >= t->nnumas)
            return invalid(err, "core %d names NUMA domain %d, which does not exist", c,
                           t->core_numa[c]);
        int lo = t->core_pu_off[c], hi = t->core_pu_off[c + 1];
        if (hi <= lo)
            return invalid(err, "core %d has no PU", c);
        for (int i = lo; i < hi; i++) {
            if (t->pus[i] < 0 || t->pus[i] >= PHX_TOPO_PU_LIMIT)
                return invalid(err, "core %d: PU %d is out of range [0, %d)", c,
                               t->pus[i], PHX_TOPO_PU_LIMIT);
            if (i > lo && t->pus[i] <= t->pus[i - 1])
                return invalid(err,
                               "core %d: PUs must be ascending and unique "
                               "(PU %d)",
                               c, t->pus[i]);
        }
    }
    if (t->core_pu_off[t->ncores] != t->npus)
        return invalid(err, "PU count mismatch (%d listed, %d expected)",
                       t->core_pu_off[t->ncores], t->npus);
    return 0;
}

static int derive_numas(phx_topo_t *t, phx_error_t *err)
{
    int nw = t->nwords;
    for (int c = 0; c < t->ncores; c++) {
        int n = t->core_numa[c];
        if (t->numa_ncores[n]++ == 0)
            t->numa_first[n] = c;
        bit_set(t->numa_mask + (size_t)n * nw, c);
        bit_set(t->socket_mask + (size_t)t->numa_socket[n] * nw, c);
        t->core_socket[c] = t->numa_socket[n];
        t->socket_ncores[t->numa_socket[n]]++;
    }
    for (int n = 0; n < t->nnumas; n++) {
        if (t->numa_ncores[n] == 0)
            return invalid(err, "NUMA domain %d has no cores", n);
        t->numa_wlo[n] = t->numa_first[n] / WORD_BITS;
        t->numa_whi[n] = t->numa_wlo[n] + 1;
        for (int w = 0; w < nw; w++)
            if (t->numa_mask[(size_t)n * nw + w])
                t->numa_whi[n] = w + 1;
        t->socket_numa_off[t->numa_socket[n] + 1]++;
    }
    for (int s = 0; s < t->nsockets; s++) {
        if (t->socket_numa_off[s + 1] == 0)
            return invalid(err, "socket %d has no NUMA domain", s);
        t->socket_numa_off[s + 1] += t->socket_numa_off[s];
    }
    int *fill = calloc((size_t)t->nsockets, sizeof(int));
    if (!fill)
        return -1;
    for (int n = 0; n < t->nnumas; n++) {
        int s = t->numa_socket[n];
        t->socket_numas[t->socket_numa_off[s] + fill[s]++] = n;
    }
    free(fill);
    return 0;
}

static int derive_pus(phx_topo_t *t, phx_error_t *err)
{
    t->pu_end = 0;
    for (int i = 0; i < t->npus; i++)
        if (t->pus[i] + 1 > t->pu_end)
            t->pu_end = t->pus[i] + 1;
    t->pu_core = malloc((size_t)t->pu_end * sizeof(int));
    if (!t->pu_core)
        return -1;
    for (int i = 0; i < t->pu_end; i++)
        t->pu_core[i] = -1;
    for (int c = 0; c < t->ncores; c++)
        for (int i = t->core_pu_off[c]; i < t->core_pu_off[c + 1]; i++) {
            int pu = t->pus[i];
            if (t->pu_core[pu] >= 0)
                return invalid(err, "PU %d is in two cores (%d and %d)", pu,
                               t->pu_core[pu], c);
            t->pu_core[pu] = c;
        }
    return 0;
}

static int check_devs(phx_topo_t *t, phx_error_t *err)
{
    for (int d = 0; d < t->ndevs; d++) {
        struct topo_dev *dev = &t->devs[d];
        if (dev->numa < -1 || dev->numa >= t->nnumas)
            return invalid(err, "device %d names NUMA domain %d, which does not exist",
                           d, dev->numa);
        if (dev->socket < -1 || dev->socket >= t->nsockets)
            return invalid(err, "device %d names socket %d, which does not exist", d,
                           dev->socket);
        if (dev->numa >= 0) {
            int s = t->numa_socket[dev->numa];
            if (dev->socket >= 0 && dev->socket != s)
                return invalid(err, "device %d: NUMA domain is not in socket %d", d,
                               dev->socket) /* see below */;
            dev->socket = s;
        }
    }
    return 0;
}

int topo_finish(phx_topo_t *t, phx_error_t *err)
{
    if (check_counts(t, err) < 0 || check_links(t, err) < 0)
        return -1;
    t->nwords = NWORDS(t->ncores);
    size_t nw = (size_t)t->nwords;
    t->core_socket = calloc((size_t)t->ncores, sizeof(int));
    t->numa_ncores = calloc((size_t)t->nnumas, sizeof(int));
    t->numa_first = calloc((size_t)t->nnumas, sizeof(int));
    t->socket_ncores = calloc((size_t)t->nsockets, sizeof(int));
    t->socket_numa_off = calloc((size_t)t->nsockets + 1, sizeof(int));
    t->socket_numas = calloc((size_t)t->nnumas, sizeof(int));
    t->numa_mask = calloc((size_t)t->nnumas * nw, sizeof(uint64_t));
    t->socket_mask = calloc((size_t)t->nsockets * nw, sizeof(uint64_t));
    t->numa_wlo = calloc((size_t)t->nnumas, sizeof(int));
    t->numa_whi = calloc((size_t)t->nnumas, sizeof(int));
    if (!t->core_socket || !t->numa_ncores || !t->numa_first || !t->socket_ncores ||
        !t->socket_numa_off || !t->socket_numas || !t->numa_mask || !t->socket_mask ||
        !t->numa_wlo || !t->numa_whi) {
        errno = ENOMEM;
        return phx_error_set(err, "out of memory");
    }
    if (derive_numas(t, err) < 0 || derive_pus(t, err) < 0 || check_devs(t, err) < 0)
        return -1;
    return 0;
}

const char *phx_topo_source(const phx_topo_t *t)
{
    return t->source;
}

bool phx_topo_emulated(const phx_topo_t *t)
{
    return t->emulated;
}

int phx_topo_nsockets(const phx_topo_t *t)
{
    return t->nsockets;
}

int phx_topo_nnumas(const phx_topo_t *t)
{
    return t->nnumas;
}

int phx_topo_ncores(const phx_topo_t *t)
{
    return t->ncores;
}

int phx_topo_npus(const phx_topo_t *t)
{
    return t->npus;
}

int phx_topo_ndevs(const phx_topo_t *t)
{
    return t->ndevs;
}

uint64_t phx_topo_memory(const phx_topo_t *t)
{
    uint64_t sum = 0;
    for (int n = 0; n < t->nnumas; n++)
        sum += t->numa_mem[n];
    return sum;
}

static bool in_range(int id, int n)
{
    if (id >= 0 && id < n)
        return true;
    errno = EINVAL;
    return false;
}

int phx_topo_core_numa(const phx_topo_t *t, int core)
{
    return in_range(core, t->ncores) ? t->core_numa[core] : -1;
}

int phx_topo_core_socket(const phx_topo_t *t, int core)
{
    return in_range(core, t->ncores) ? t->core_socket[core] : -1;
}

const int *phx_topo_core_pus(const phx_topo_t *t, int core, int *npus)
{
    if (!in_range(core, t->ncores)) {
        *npus = 0;
        return NULL;
    }
    *npus = t->core_pu_off[core + 1] - t->core_pu_off[core];
    return t->pus + t->core_pu_off[core];
}

int phx_topo_numa_socket(const phx_topo_t *t, int numa)
{
    return in_range(numa, t->nnumas) ? t->numa_socket[numa] : -1;
}

uint64_t phx_topo_numa_memory(const phx_topo_t *t, int numa)
{
    return in_range(numa, t->nnumas) ? t->numa_mem[numa] : 0;
}

int phx_topo_numa_os_index(const phx_topo_t *t, int numa)
{
    return in_range(numa, t->nnumas) ? t->numa_os[numa] : -1;
}

int phx_topo_numa_ncores(const phx_topo_t *t, int numa)
{
    return in_range(numa, t->nnumas) ? t->numa_ncores[numa] : -1;
}

int phx_topo_numa_first_core(const phx_topo_t *t, int numa)
{
    return in_range(numa, t->nnumas) ? t->numa_first[numa] : -1;
}

int phx_topo_socket_ncores(const phx_topo_t *t, int socket)
{
    return in_range(socket, t->nsockets) ? t->socket_ncores[socket] : -1;
}

int phx_topo_socket_nnumas(const phx_topo_t *t, int socket)
{
    if (!in_range(socket, t->nsockets))
        return -1;
    return t->socket_numa_off[socket + 1] - t->socket_numa_off[socket];
}

int phx_topo_socket_numa(const phx_topo_t *t, int socket, int i)
{
    if (!in_range(socket, t->nsockets) ||
        !in_range(i, t->socket_numa_off[socket + 1] - t->socket_numa_off[socket]))
        return -1;
    return t->socket_numas[t->socket_numa_off[socket] + i];
}

int phx_topo_pu_core(const phx_topo_t *t, int pu)
{
    return pu >= 0 && pu < t->pu_end ? t->pu_core[pu] : -1;
}

phx_topo_dev_kind_t phx_topo_dev_kind(const phx_topo_t *t, int dev)
{
    return in_range(dev, t->ndevs) ? t->devs[dev].kind : PHX_TOPO_DEV_GPU;
}

const char *phx_topo_dev_name(const phx_topo_t *t, int dev)
{
    return in_range(dev, t->ndevs) ? t->devs[dev].name : NULL;
}

const char *phx_topo_dev_pci(const phx_topo_t *t, int dev)
{
    return in_range(dev, t->ndevs) ? t->devs[dev].pci : NULL;
}

const char *phx_topo_dev_model(const phx_topo_t *t, int dev)
{
    return in_range(dev, t->ndevs) ? t->devs[dev].model : NULL;
}

int phx_topo_dev_numa(const phx_topo_t *t, int dev)
{
    return in_range(dev, t->ndevs) ? t->devs[dev].numa : -1;
}

int phx_topo_dev_socket(const phx_topo_t *t, int dev)
{
    return in_range(dev, t->ndevs) ? t->devs[dev].socket : -1;
}

const char *phx_topo_dev_kind_name(phx_topo_dev_kind_t kind)
{
    return kind == PHX_TOPO_DEV_COPROC ? "coproc" : "gpu";
}

bool phx_topo_is_gpu(const phx_topo_t *t, int dev)
{
    return dev >= 0 && dev < t->ndevs && t->devs[dev].kind == PHX_TOPO_DEV_GPU;
}

int phx_topo_ngpus(const phx_topo_t *t)
{
    int n = 0;
    for (int d = 0; d < t->ndevs; d++)
        n += t->devs[d].kind == PHX_TOPO_DEV_GPU;
    return n;
}

int phx_topo_gpu_index(const phx_topo_t *t, int dev)
{
    if (!phx_topo_is_gpu(t, dev)) {
        errno = EINVAL;
        return -1;
    }
    int n = 0;
    for (int d = 0; d < dev; d++)
        n += t->devs[d].kind == PHX_TOPO_DEV_GPU;
    return n;
}
