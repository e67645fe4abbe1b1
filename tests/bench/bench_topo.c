/* Allocate+release throughput of the topology free tracker on a
 * 2 × 4 × 32-core node: hwloc synthetic "pack:2 numa:4 core:32 pu:2", i.e. 2
 * sockets, 4 NUMA domains per socket, 32 cores per domain (256 cores).
 * Prints figures only; no pass/fail. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "topology/free.h"

#define DESC "pack:2 numa:4 core:32 pu:2"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const phx_error_t *err)
{
    fprintf(stderr, "bench_topo: %s: %s\n", what, err->text);
    exit(1);
}

/* Carve + alloc + release, with a background of half-used cores so that
 * the search has holes to skip. */
static void run(phx_topo_free_t *f, const phx_topo_t *t, const char *name,
                phx_topo_request_t req, long iters)
{
    phx_error_t err = {{0}};
    phx_topo_grant_t *g = phx_topo_grant_create(t);
    double t0 = now();
    for (long i = 0; i < iters; i++) {
        if (phx_topo_carve(f, &req, g, &err) < 0)
            die("carve", &err);
        if (phx_topo_free_alloc(f, g, &err) < 0)
            die("alloc", &err);
        if (phx_topo_free_release(f, g, &err) < 0)
            die("release", &err);
    }
    double dt = now() - t0;
    printf("  %-44s %12.0f carve+alloc+release/s  (%.2f us each)\n", name,
           (double)iters / dt, dt / (double)iters * 1e6);
    /* The same grant allocated and released without carving. */
    t0 = now();
    for (long i = 0; i < iters; i++) {
        if (phx_topo_free_alloc(f, g, &err) < 0)
            die("alloc", &err);
        if (phx_topo_free_release(f, g, &err) < 0)
            die("release", &err);
    }
    dt = now() - t0;
    printf("  %-44s %12.0f alloc+release/s        (%.2f us each)\n",
           "  same grant, no carving", (double)iters / dt, dt / (double)iters * 1e6);
    phx_topo_grant_destroy(g);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    phx_error_t err = {{0}};
    phx_topo_t *t = phx_topo_load_synthetic(DESC, &err);
    if (!t)
        die("load", &err);
    phx_topo_free_t *f = phx_topo_free_create(t);
    printf("bench_topo: node \"%s\" = %d sockets x %d NUMA/socket x %d cores/NUMA "
           "(%d cores, %d PUs), %ld iterations\n",
           DESC, phx_topo_nsockets(t), phx_topo_socket_nnumas(t, 0),
           phx_topo_numa_ncores(t, 0), phx_topo_ncores(t), phx_topo_npus(t), iters);

    printf("empty node:\n");
    run(f, t, "1 task x 1 core", phx_topo_request(1, 1), iters);
    run(f, t, "8 tasks x 4 cores, block", phx_topo_request(8, 4), iters);
    phx_topo_request_t cyc = phx_topo_request(16, 8);
    cyc.dist = PHX_TOPO_DIST_CYCLIC;
    cyc.mem_per_cpu = 1ULL << 30;
    run(f, t, "16 tasks x 8 cores, cyclic, 1 GiB/core", cyc, iters);
    run(f, t, "1 task x 64 cores (socket-local)", phx_topo_request(1, 64), iters);

    /* Fragment: take every other core. */
    phx_topo_grant_t *bg = phx_topo_grant_create(t);
    for (int c = 0; c < phx_topo_ncores(t); c += 2)
        phx_topo_grant_add_core(bg, c);
    if (phx_topo_free_alloc(f, bg, &err) < 0)
        die("alloc", &err);
    printf("half the cores taken (every other core):\n");
    run(f, t, "1 task x 1 core", phx_topo_request(1, 1), iters);
    run(f, t, "8 tasks x 4 cores, block", phx_topo_request(8, 4), iters);
    run(f, t, "4 tasks x 16 cores, cyclic", cyc = phx_topo_request(4, 16), iters);
    phx_topo_free_release(f, bg, &err);
    phx_topo_grant_destroy(bg);
    phx_topo_free_destroy(f);
    phx_topo_destroy(t);
    return 0;
}
