/* Choosing cores for a request: NUMA-local, then socket-local, compact,
 * deterministic, and without allocation (scratch lives in the grant); then
 * each task's GPUs, nearest to its cores first. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "topology/free_impl.h"

phx_topo_request_t phx_topo_request(int ntasks, int cpus_per_task)
{
    return (phx_topo_request_t){
        .ntasks = ntasks,
        .cpus_per_task = cpus_per_task,
        .tasks_per_socket = 0,
        .dist = PHX_TOPO_DIST_BLOCK,
        .mem_per_cpu = 0,
        .numa = -1,
        .socket = -1,
        .gpus_per_task = 0,
    };
}

struct carve {
    const phx_topo_free_t *f;
    const phx_topo_t *t;
    const phx_topo_request_t *req;
    phx_topo_grant_t *g;
    int ncore; /* cores placed so far */
    int ngpu;  /* GPUs placed so far */
};

static int check_request(const phx_topo_t *t, const phx_topo_request_t *req,
                         phx_error_t *err)
{
    errno = EINVAL;
    if (req->ntasks < 1 || req->cpus_per_task < 1)
        return phx_error_set(err,
                             "request needs at least one task of one core "
                             "(%d tasks of %d cores)",
                             req->ntasks, req->cpus_per_task);
    if (req->gpus_per_task < 0 || req->gpus_per_task > t->ndevs)
        return phx_error_set(err, "%d GPUs per task is out of range",
                             req->gpus_per_task);
    if (req->tasks_per_socket < 0)
        return phx_error_set(err, "tasks per socket must not be negative");
    if (req->dist != PHX_TOPO_DIST_BLOCK && req->dist != PHX_TOPO_DIST_CYCLIC)
        return phx_error_set(err, "unknown distribution %d", (int)req->dist);
    if (req->numa < -1 || req->numa >= t->nnumas)
        return phx_error_set(err, "NUMA domain %d does not exist", req->numa);
    if (req->socket < -1 || req->socket >= t->nsockets)
        return phx_error_set(err, "socket %d does not exist", req->socket);
    if (req->numa >= 0 && req->socket >= 0 && t->numa_socket[req->numa] != req->socket)
        return phx_error_set(err, "NUMA domain %d is not in socket %d", req->numa,
                             req->socket);
    errno = 0;
    return 0;
}

/* Cores of a domain usable for this request: free, and with memory. */
static int usable(const struct carve *cv, int n)
{
    const phx_topo_request_t *req = cv->req;
    if ((req->numa >= 0 && n != req->numa) ||
        (req->socket >= 0 && cv->t->numa_socket[n] != req->socket))
        return 0;
    int k = cv->f->numa_ncores[n];
    if (req->mem_per_cpu) {
        uint64_t by_mem = cv->f->numa_mem[n] / req->mem_per_cpu;
        if (by_mem < (uint64_t)k)
            k = (int)by_mem;
    }
    return k;
}

/* Take the k lowest usable cores of domain n. */
static void take(struct carve *cv, int n, int k)
{
    const phx_topo_t *t = cv->t;
    const uint64_t *mask = t->numa_mask + (size_t)n * t->nwords;
    const uint64_t *free_w = cv->f->cores->w;
    uint64_t *taken = cv->g->cores->w;
    int got = 0;
    for (int w = t->numa_wlo[n]; w < t->numa_whi[n] && got < k; w++) {
        uint64_t bits = free_w[w] & mask[w] & ~taken[w];
        for (; bits && got < k; bits &= bits - 1, got++) {
            int c = w * WORD_BITS + __builtin_ctzll(bits);
            taken[w] |= (uint64_t)1 << (c % WORD_BITS);
            cv->g->task_core[cv->ncore++] = c;
        }
    }
    cv->g->numa_avail[n] -= got;
    cv->g->numa_taken[n] += got;
    cv->g->socket_avail[t->numa_socket[n]] -= got;
}

static bool socket_open(const struct carve *cv, int s)
{
    int tps = cv->req->tasks_per_socket;
    return tps == 0 || cv->g->socket_tasks[s] < tps;
}

/* Place one task; returns the socket it (first) landed on, or -1. */
static int place(struct carve *cv, int start)
{
    const phx_topo_t *t = cv->t;
    phx_topo_grant_t *g = cv->g;
    int need = cv->req->cpus_per_task;
    /* One NUMA domain that holds the whole task. */
    for (int k = 0; k < t->nsockets; k++) {
        int s = (start + k) % t->nsockets;
        if (!socket_open(cv, s) || g->socket_avail[s] < need)
            continue;
        for (int i = t->socket_numa_off[s]; i < t->socket_numa_off[s + 1]; i++) {
            int n = t->socket_numas[i];
            if (g->numa_avail[n] >= need) {
                take(cv, n, need);
                return s;
            }
        }
    }
    /* One socket, filling its domains in order. */
    for (int k = 0; k < t->nsockets; k++) {
        int s = (start + k) % t->nsockets;
        if (!socket_open(cv, s) || g->socket_avail[s] < need)
            continue;
        for (int i = t->socket_numa_off[s]; i < t->socket_numa_off[s + 1] && need;
             i++) {
            int n = t->socket_numas[i];
            int k2 = g->numa_avail[n] < need ? g->numa_avail[n] : need;
            take(cv, n, k2);
            need -= k2;
        }
        return s;
    }
    if (cv->req->tasks_per_socket)
        return -1;
    /* Anywhere: the task is larger than any socket's free cores. */
    int total = 0;
    for (int s = 0; s < t->nsockets; s++)
        total += g->socket_avail[s];
    if (total < need)
        return -1;
    int first = -1;
    for (int k = 0; k < t->nsockets && need; k++) {
        int s = (start + k) % t->nsockets;
        for (int i = t->socket_numa_off[s]; i < t->socket_numa_off[s + 1] && need;
             i++) {
            int n = t->socket_numas[i];
            int k2 = g->numa_avail[n] < need ? g->numa_avail[n] : need;
            if (k2 > 0 && first < 0)
                first = s;
            take(cv, n, k2);
            need -= k2;
        }
    }
    return first;
}

/* Whether free GPU d, not yet granted, is in pass's reach of the task: 0 its
 * NUMA domain, 1 its socket, 2 anywhere. */
static bool gpu_fits(const struct carve *cv, int d, int pass, int numa, int socket)
{
    if (!cv->f->gpu[d] || cv->g->gpu[d])
        return false;
    return pass == 2 || (pass == 1 && cv->t->devs[d].socket == socket) ||
           (pass == 0 && cv->t->devs[d].numa == numa);
}

/* The GPUs of the task whose first core is core (enough are free: checked). */
static void place_gpus(struct carve *cv, int core)
{
    const phx_topo_t *t = cv->t;
    int need = cv->req->gpus_per_task, numa = t->core_numa[core],
        socket = t->core_socket[core];
    for (int pass = 0; pass < 3 && need; pass++)
        for (int d = 0; d < t->ndevs && need; d++)
            if (gpu_fits(cv, d, pass, numa, socket)) {
                cv->g->gpu[d] = 1;
                cv->g->ngpus++;
                cv->g->task_gpu[cv->ngpu++] = d;
                need--;
            }
}

static void init_scratch(struct carve *cv)
{
    const phx_topo_t *t = cv->t;
    phx_topo_grant_t *g = cv->g;
    phx_topo_grant_clear(g);
    memset(g->socket_avail, 0, (size_t)t->nsockets * sizeof(int));
    memset(g->socket_tasks, 0, (size_t)t->nsockets * sizeof(int));
    memset(g->numa_taken, 0, (size_t)t->nnumas * sizeof(int));
    for (int n = 0; n < t->nnumas; n++) {
        g->numa_avail[n] = usable(cv, n);
        g->socket_avail[t->numa_socket[n]] += g->numa_avail[n];
    }
}

int phx_topo_carve(const phx_topo_free_t *f, const phx_topo_request_t *req,
                   phx_topo_grant_t *g, phx_error_t *err)
{
    const phx_topo_t *t = f->t;
    if (g->t != t) {
        errno = EINVAL;
        return phx_error_set(err, "grant was made for another topology");
    }
    if (check_request(t, req, err) < 0)
        return -1;
    struct carve cv = {.f = f, .t = t, .req = req, .g = g};
    init_scratch(&cv);
    long need = (long)req->ntasks * req->cpus_per_task;
    long have = 0;
    for (int s = 0; s < t->nsockets; s++)
        have += g->socket_avail[s];
    if (need > have) {
        errno = ENOSPC;
        return phx_error_set(err, "request needs %ld cores, %ld usable", need, have);
    }
    long gneed = (long)req->ntasks * req->gpus_per_task;
    if (gneed > phx_topo_free_ngpus(f)) {
        errno = ENOSPC;
        return phx_error_set(err, "request needs %ld GPUs, %d free", gneed,
                             phx_topo_free_ngpus(f));
    }
    int start = 0;
    for (int task = 0; task < req->ntasks; task++) {
        int s = place(&cv, start);
        if (s < 0) {
            phx_topo_grant_clear(g);
            errno = ENOSPC;
            return phx_error_set(err,
                                 "could not place task %d of %d (%d cores) within "
                                 "the free cores%s",
                                 task, req->ntasks, req->cpus_per_task,
                                 req->tasks_per_socket ? " and tasks per socket" : "");
        }
        g->socket_tasks[s]++;
        if (req->gpus_per_task)
            place_gpus(&cv, g->task_core[g->task_off[task]]);
        g->task_off[task + 1] = cv.ncore;
        g->task_gpu_off[task + 1] = cv.ngpu;
        if (req->dist == PHX_TOPO_DIST_CYCLIC)
            start = (s + 1) % t->nsockets;
    }
    g->ntasks = req->ntasks;
    for (int n = 0; n < t->nnumas; n++)
        g->mem[n] = (uint64_t)g->numa_taken[n] * req->mem_per_cpu;
    return 0;
}
