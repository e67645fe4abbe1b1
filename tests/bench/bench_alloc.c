/* Allocator benchmark: one allocation pass over 10,000 agents (2 sockets × 2
 * NUMA × 16 cores) for 1,000 and for 50 frameworks, and a steady-state pass
 * where 1% of the agents changed.  Prints figures, asserts nothing.
 *
 * The allocator's sources are compiled into this program directly: the
 * makefile links the master's sources into phx-master only, not into a library,
 * and the allocator depends on nothing but lib/ and topology/. */
#include "daemons/master/alloc.c"
#include "daemons/master/alloc_drf.c"
#include "daemons/master/alloc_hold.c"
#include "daemons/master/alloc_offer.c"
#include "daemons/master/alloc_request.c"
#include "daemons/master/alloc_res.c"

#include <stdio.h>
#include <time.h>

#define NAGENTS 10000
#define NPASSES 9

struct held_offer {
    int64_t agent;
    char fw[32];
    phx_topo_grant_t *grant;
};

struct bench {
    struct held_offer *offers;
    size_t n, cap;
};

static int take(const phx_alloc_offer_t *o, void *arg)
{
    struct bench *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        struct held_offer *p = realloc(b->offers, cap * sizeof(*p));
        if (!p)
            return -1;
        b->offers = p;
        b->cap = cap;
    }
    struct held_offer *h = &b->offers[b->n++];
    h->agent = o->agent_id;
    snprintf(h->fw, sizeof(h->fw), "%s", o->framework);
    h->grant = o->grant;
    return 0;
}

/* Return the offers of every agent (step 1) or of every 100th (step 100). */
static void give_back(phx_alloc_t *a, struct bench *b, size_t step, bool recycle)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct held_offer *h = &b->offers[i];
        if (step > 1 && h->agent % (int64_t)step != 0) {
            b->offers[kept++] = *h;
            continue;
        }
        phx_error_t err;
        if (phx_alloc_offer_return(a, h->agent, h->fw, h->grant, &err) < 0) {
            fprintf(stderr, "bench_alloc: %s\n", err.text);
            exit(1);
        }
        if (recycle)
            phx_alloc_grant_recycle(a, h->agent, h->grant);
        else
            phx_topo_grant_destroy(h->grant);
    }
    b->n = kept;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
    double dx = *(const double *)x, dy = *(const double *)y;
    return dx < dy ? -1 : dx > dy;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static void run(const phx_topo_t *t, phx_topo_free_t **trackers, int nfws, bool recycle)
{
    phx_alloc_t *a = phx_alloc_create();
    phx_error_t err;
    struct bench b = {0};
    if (!a)
        exit(1);
    for (int i = 0; i < NAGENTS; i++)
        if (phx_alloc_agent_add(a, i, trackers[i], &err) < 0) {
            fprintf(stderr, "bench_alloc: %s\n", err.text);
            exit(1);
        }
    for (int i = 0; i < nfws; i++) {
        char id[32];
        snprintf(id, sizeof(id), "fw-%04d", i);
        if (phx_alloc_framework_add(a, id, i % 3 ? "batch" : "service", &err) < 0)
            exit(1);
    }
    phx_alloc_role_set_weight(a, "service", 2.0, NULL);

    double full[NPASSES], steady[NPASSES], now = 1000;
    int offers = 0, steady_offers = 0;
    for (int p = 0; p < NPASSES; p++) {
        double t0 = now_ms();
        offers = phx_alloc_cycle(a, now++, take, &b);
        full[p] = now_ms() - t0;
        give_back(a, &b, 1, recycle);
    }
    /* Steady state: everything offered, then 1% of the agents come back. */
    phx_alloc_cycle(a, now++, take, &b);
    for (int p = 0; p < NPASSES; p++) {
        give_back(a, &b, 100, recycle);
        double t0 = now_ms();
        steady_offers = phx_alloc_cycle(a, now++, take, &b);
        steady[p] = now_ms() - t0;
    }
    printf("alloc: %d agents (%d cores) x %4d frameworks, grants %-8s: full pass "
           "%7.3f ms (%d offers), 1%% changed %6.3f ms (%d offers); median of %d\n",
           NAGENTS, phx_topo_ncores(t), nfws, recycle ? "recycled" : "new",
           median(full, NPASSES), offers, median(steady, NPASSES), steady_offers,
           NPASSES);
    if (nfws == 50 && recycle) {
        /* A queued gang request on a busy cluster: the planner looks at
         * every agent in every pass. */
        phx_alloc_shape_t sh = {
            .nbundles = 20000, .cores = 16, .kind = PHX_ALLOC_BUNDLE_NUMA};
        if (phx_alloc_request_add(a, "fw-0001", "gang", &sh, 3600, 0, now, &err) < 0) {
            fprintf(stderr, "bench_alloc: %s\n", err.text);
            exit(1);
        }
        double plan[NPASSES];
        for (int p = 0; p < NPASSES; p++) {
            give_back(a, &b, 100, recycle);
            double t0 = now_ms();
            phx_alloc_cycle(a, now++, take, &b);
            plan[p] = now_ms() - t0;
        }
        printf("alloc: same, with a queued gang request, 1%% changed: %.3f ms\n",
               median(plan, NPASSES));
        /* batchd's kind: tasks, per agent and per socket, over 5,000 to
         * 6,000 agents (max_agents walks a histogram at each point) */
        phx_alloc_request_cancel(a, "fw-0001", "gang");
        sh = (phx_alloc_shape_t){.nbundles = 40000,
                                 .cores = 2,
                                 .kind = PHX_ALLOC_BUNDLE_SOCKET,
                                 .per_agent = 8,
                                 .per_socket = 4,
                                 .min_agents = 5000,
                                 .max_agents = 6000};
        if (phx_alloc_request_add(a, "fw-0001", "tasks", &sh, 3600, 0, now, &err) < 0) {
            fprintf(stderr, "bench_alloc: %s\n", err.text);
            exit(1);
        }
        for (int p = 0; p < NPASSES; p++) {
            give_back(a, &b, 100, recycle);
            double t0 = now_ms();
            phx_alloc_cycle(a, now++, take, &b);
            plan[p] = now_ms() - t0;
        }
        printf("alloc: same, with a queued request of tasks (per agent, per socket, "
               "min and max agents), 1%% changed: %.3f ms\n",
               median(plan, NPASSES));
    }
    give_back(a, &b, 1, false);
    free(b.offers);
    phx_alloc_destroy(a);
}

int main(void)
{
    phx_error_t err;
    phx_topo_t *t = phx_topo_load_synthetic("pack:2 numa:2 core:16 pu:1", &err);
    if (!t) {
        fprintf(stderr, "bench_alloc: %s\n", err.text);
        return 1;
    }
    phx_topo_free_t **trackers = calloc(NAGENTS, sizeof(*trackers));
    for (int i = 0; trackers && i < NAGENTS; i++)
        if (!(trackers[i] = phx_topo_free_create(t)))
            return 1;
    if (!trackers)
        return 1;
    run(t, trackers, 1000, true);
    run(t, trackers, 50, true);
    run(t, trackers, 1000, false);
    run(t, trackers, 50, false);
    for (int i = 0; i < NAGENTS; i++)
        phx_topo_free_destroy(trackers[i]);
    free(trackers);
    phx_topo_destroy(t);
    return 0;
}
