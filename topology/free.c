/* Free resources of one node and grants: exact allocate and release. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "topology/free_impl.h"

phx_topo_free_t *phx_topo_free_create(const phx_topo_t *t)
{
    phx_topo_free_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->t = t;
    f->cores = phx_topo_coreset_create(t->ncores);
    f->numa_ncores = calloc((size_t)t->nnumas, sizeof(int));
    f->numa_mem = calloc((size_t)t->nnumas, sizeof(uint64_t));
    f->gpu = calloc((size_t)t->ndevs + 1, 1);
    if (!f->cores || !f->numa_ncores || !f->numa_mem || !f->gpu) {
        phx_topo_free_destroy(f);
        errno = ENOMEM;
        return NULL;
    }
    for (int c = 0; c < t->ncores; c++)
        bit_set(f->cores->w, c);
    memcpy(f->numa_ncores, t->numa_ncores, (size_t)t->nnumas * sizeof(int));
    memcpy(f->numa_mem, t->numa_mem, (size_t)t->nnumas * sizeof(uint64_t));
    for (int d = 0; d < t->ndevs; d++)
        f->gpu[d] = phx_topo_is_gpu(t, d);
    return f;
}

void phx_topo_free_destroy(phx_topo_free_t *f)
{
    if (!f)
        return;
    int saved = errno;
    phx_topo_coreset_destroy(f->cores);
    free(f->numa_ncores);
    free(f->numa_mem);
    free(f->gpu);
    free(f);
    errno = saved;
}

const phx_topo_t *phx_topo_free_topo(const phx_topo_free_t *f)
{
    return f->t;
}

const phx_topo_coreset_t *phx_topo_free_cores(const phx_topo_free_t *f)
{
    return f->cores;
}

int phx_topo_free_ncores(const phx_topo_free_t *f)
{
    int n = 0;
    for (int i = 0; i < f->t->nnumas; i++)
        n += f->numa_ncores[i];
    return n;
}

int phx_topo_free_numa_ncores(const phx_topo_free_t *f, int numa)
{
    if (numa < 0 || numa >= f->t->nnumas) {
        errno = EINVAL;
        return -1;
    }
    return f->numa_ncores[numa];
}

int phx_topo_free_socket_ncores(const phx_topo_free_t *f, int socket)
{
    const phx_topo_t *t = f->t;
    if (socket < 0 || socket >= t->nsockets) {
        errno = EINVAL;
        return -1;
    }
    int n = 0;
    for (int i = t->socket_numa_off[socket]; i < t->socket_numa_off[socket + 1]; i++)
        n += f->numa_ncores[t->socket_numas[i]];
    return n;
}

uint64_t phx_topo_free_numa_memory(const phx_topo_free_t *f, int numa)
{
    if (numa < 0 || numa >= f->t->nnumas) {
        errno = EINVAL;
        return 0;
    }
    return f->numa_mem[numa];
}

uint64_t phx_topo_free_memory(const phx_topo_free_t *f)
{
    uint64_t sum = 0;
    for (int i = 0; i < f->t->nnumas; i++)
        sum += f->numa_mem[i];
    return sum;
}

int phx_topo_free_ngpus(const phx_topo_free_t *f)
{
    int n = 0;
    for (int d = 0; d < f->t->ndevs; d++)
        n += f->gpu[d];
    return n;
}

bool phx_topo_free_has_gpu(const phx_topo_free_t *f, int dev)
{
    return dev >= 0 && dev < f->t->ndevs && f->gpu[dev];
}

bool phx_topo_free_equal(const phx_topo_free_t *a, const phx_topo_free_t *b)
{
    return a->t == b->t && phx_topo_coreset_equal(a->cores, b->cores) &&
           memcmp(a->numa_ncores, b->numa_ncores, (size_t)a->t->nnumas * sizeof(int)) ==
               0 &&
           memcmp(a->numa_mem, b->numa_mem, (size_t)a->t->nnumas * sizeof(uint64_t)) ==
               0 &&
           memcmp(a->gpu, b->gpu, (size_t)a->t->ndevs) == 0;
}

static int check_grant(const phx_topo_free_t *f, const phx_topo_grant_t *g,
                       phx_error_t *err)
{
    if (g->t != f->t) {
        errno = EINVAL;
        return phx_error_set(err, "grant was made for another topology");
    }
    return 0;
}

/* First core of the grant whose free bit equals want_free, or -1. */
static int first_conflict(const phx_topo_free_t *f, const phx_topo_grant_t *g,
                          bool want_free)
{
    for (int w = 0; w < f->cores->nwords; w++) {
        uint64_t bad = g->cores->w[w] & (want_free ? ~f->cores->w[w] : f->cores->w[w]);
        if (bad)
            return w * WORD_BITS + __builtin_ctzll(bad);
    }
    return -1;
}

/* First GPU of the grant whose free flag equals want_free, or -1. */
static int first_gpu_conflict(const phx_topo_free_t *f, const phx_topo_grant_t *g,
                              bool want_free)
{
    for (int d = 0; d < f->t->ndevs; d++)
        if (g->gpu[d] && f->gpu[d] != want_free)
            return d;
    return -1;
}

static void apply(phx_topo_free_t *f, const phx_topo_grant_t *g, bool take)
{
    const phx_topo_t *t = f->t;
    for (int w = 0; w < f->cores->nwords; w++) {
        uint64_t bits = g->cores->w[w];
        if (!bits)
            continue;
        if (take)
            f->cores->w[w] &= ~bits;
        else
            f->cores->w[w] |= bits;
        for (; bits; bits &= bits - 1)
            f->numa_ncores[t->core_numa[w * WORD_BITS + __builtin_ctzll(bits)]] +=
                take ? -1 : 1;
    }
    for (int d = 0; g->ngpus && d < t->ndevs; d++)
        if (g->gpu[d])
            f->gpu[d] = !take;
    for (int n = 0; n < t->nnumas; n++)
        f->numa_mem[n] = take ? f->numa_mem[n] - g->mem[n] : f->numa_mem[n] + g->mem[n];
}

int phx_topo_free_alloc(phx_topo_free_t *f, const phx_topo_grant_t *g, phx_error_t *err)
{
    if (check_grant(f, g, err) < 0)
        return -1;
    int c = first_conflict(f, g, true);
    if (c >= 0) {
        errno = EBUSY;
        return phx_error_set(err, "could not allocate core %d: already allocated", c);
    }
    int d = first_gpu_conflict(f, g, true);
    if (d >= 0) {
        errno = EBUSY;
        return phx_error_set(err, "could not allocate GPU %d (%s): already allocated",
                             d, f->t->devs[d].name);
    }
    for (int n = 0; n < f->t->nnumas; n++)
        if (g->mem[n] > f->numa_mem[n]) {
            errno = ENOSPC;
            return phx_error_set(err,
                                 "could not allocate %llu bytes on NUMA domain %d: "
                                 "only %llu free",
                                 (unsigned long long)g->mem[n], n,
                                 (unsigned long long)f->numa_mem[n]);
        }
    apply(f, g, true);
    return 0;
}

int phx_topo_free_release(phx_topo_free_t *f, const phx_topo_grant_t *g,
                          phx_error_t *err)
{
    if (check_grant(f, g, err) < 0)
        return -1;
    int c = first_conflict(f, g, false);
    if (c >= 0) {
        errno = EINVAL;
        return phx_error_set(err, "could not release core %d: not allocated", c);
    }
    int d = first_gpu_conflict(f, g, false);
    if (d >= 0) {
        errno = EINVAL;
        return phx_error_set(err, "could not release GPU %d (%s): not allocated", d,
                             f->t->devs[d].name);
    }
    for (int n = 0; n < f->t->nnumas; n++)
        if (g->mem[n] > f->t->numa_mem[n] - f->numa_mem[n]) {
            errno = EINVAL;
            return phx_error_set(
                err,
                "could not release %llu bytes on NUMA domain %d: "
                "only %llu allocated",
                (unsigned long long)g->mem[n], n,
                (unsigned long long)(f->t->numa_mem[n] - f->numa_mem[n]));
        }
    apply(f, g, false);
    return 0;
}

phx_topo_grant_t *phx_topo_grant_create(const phx_topo_t *t)
{
    phx_topo_grant_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    size_t nc = (size_t)t->ncores, nn = (size_t)t->nnumas, ns = (size_t)t->nsockets;
    g->t = t;
    g->cores = phx_topo_coreset_create(t->ncores);
    g->mem = calloc(nn, sizeof(uint64_t));
    g->task_off = calloc(nc + 1, sizeof(int));
    g->task_core = calloc(nc, sizeof(int));
    g->numa_avail = calloc(nn, sizeof(int));
    g->numa_taken = calloc(nn, sizeof(int));
    g->socket_avail = calloc(ns, sizeof(int));
    g->socket_tasks = calloc(ns, sizeof(int));
    g->gpu = calloc((size_t)t->ndevs + 1, 1);
    g->task_gpu_off = calloc(nc + 1, sizeof(int));
    g->task_gpu = calloc((size_t)t->ndevs + 1, sizeof(int));
    if (!g->cores || !g->mem || !g->task_off || !g->task_core || !g->numa_avail ||
        !g->numa_taken || !g->socket_avail || !g->socket_tasks || !g->gpu ||
        !g->task_gpu_off || !g->task_gpu) {
        phx_topo_grant_destroy(g);
        errno = ENOMEM;
        return NULL;
    }
    return g;
}

void phx_topo_grant_destroy(phx_topo_grant_t *g)
{
    if (!g)
        return;
    int saved = errno;
    phx_topo_coreset_destroy(g->cores);
    free(g->mem);
    free(g->task_off);
    free(g->task_core);
    free(g->numa_avail);
    free(g->numa_taken);
    free(g->socket_avail);
    free(g->socket_tasks);
    free(g->gpu);
    free(g->task_gpu_off);
    free(g->task_gpu);
    free(g);
    errno = saved;
}

void phx_topo_grant_clear(phx_topo_grant_t *g)
{
    phx_topo_coreset_clear(g->cores);
    memset(g->mem, 0, (size_t)g->t->nnumas * sizeof(uint64_t));
    g->ntasks = 0;
    g->task_off[0] = 0;
    if (g->ngpus)
        memset(g->gpu, 0, (size_t)g->t->ndevs);
    g->ngpus = 0;
    g->task_gpu_off[0] = 0;
}

int phx_topo_grant_add_core(phx_topo_grant_t *g, int core)
{
    return phx_topo_coreset_add(g->cores, core);
}

int phx_topo_grant_set_memory(phx_topo_grant_t *g, int numa, uint64_t bytes)
{
    if (numa < 0 || numa >= g->t->nnumas) {
        errno = EINVAL;
        return -1;
    }
    g->mem[numa] = bytes;
    return 0;
}

const phx_topo_coreset_t *phx_topo_grant_cores(const phx_topo_grant_t *g)
{
    return g->cores;
}

uint64_t phx_topo_grant_memory(const phx_topo_grant_t *g, int numa)
{
    if (numa < 0 || numa >= g->t->nnumas) {
        errno = EINVAL;
        return 0;
    }
    return g->mem[numa];
}

int phx_topo_grant_ntasks(const phx_topo_grant_t *g)
{
    return g->ntasks;
}

const int *phx_topo_grant_task_cores(const phx_topo_grant_t *g, int task, int *ncores)
{
    if (task < 0 || task >= g->ntasks) {
        errno = EINVAL;
        *ncores = 0;
        return NULL;
    }
    *ncores = g->task_off[task + 1] - g->task_off[task];
    return g->task_core + g->task_off[task];
}

int phx_topo_grant_add_gpu(phx_topo_grant_t *g, int dev)
{
    if (!phx_topo_is_gpu(g->t, dev)) {
        errno = EINVAL;
        return -1;
    }
    if (g->gpu[dev]) {
        errno = EEXIST;
        return -1;
    }
    g->gpu[dev] = 1;
    g->ngpus++;
    return 0;
}

bool phx_topo_grant_has_gpu(const phx_topo_grant_t *g, int dev)
{
    return dev >= 0 && dev < g->t->ndevs && g->gpu[dev];
}

int phx_topo_grant_ngpus(const phx_topo_grant_t *g)
{
    return g->ngpus;
}

const int *phx_topo_grant_task_gpus(const phx_topo_grant_t *g, int task, int *ngpus)
{
    if (task < 0 || task >= g->ntasks) {
        errno = EINVAL;
        *ngpus = 0;
        return NULL;
    }
    *ngpus = g->task_gpu_off[task + 1] - g->task_gpu_off[task];
    return g->task_gpu + g->task_gpu_off[task];
}
