/* The simulated cluster of allocsim.h. */
#include "tests/unit/support/allocsim.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static unsigned rng = 12345;

void phx_allocsim_seed(unsigned seed)
{
    rng = seed;
}

unsigned phx_allocsim_rnd(unsigned n)
{
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) % n;
}

static phx_topo_free_t *sim_free(phx_allocsim_t *s, int64_t agent)
{
    return s->free[agent];
}

/* Cores of agent `agent` owned by live offers and tasks of the simulation,
 * as a count per core; a core counted twice or owned while free fails. */
static void check_agent(phx_allocsim_t *s, int64_t agent)
{
    const phx_topo_t *t = s->topo;
    int owners[256] = {0};
    uint64_t mem = phx_topo_free_memory(sim_free(s, agent));
    const phx_topo_coreset_t *fc = phx_topo_free_cores(sim_free(s, agent));
    for (int c = phx_topo_coreset_next(fc, -1); c >= 0;
         c = phx_topo_coreset_next(fc, c))
        owners[c]++;
    for (size_t i = 0; i < s->noffers; i++) {
        phx_allocsim_offer_t *o = &s->offers[i];
        if (!o->live || o->agent != agent)
            continue;
        const phx_topo_coreset_t *gc = phx_topo_grant_cores(o->grant);
        for (int c = phx_topo_coreset_next(gc, -1); c >= 0;
             c = phx_topo_coreset_next(gc, c))
            owners[c]++;
        for (int n = 0; n < phx_topo_nnumas(t); n++)
            mem += phx_topo_grant_memory(o->grant, n);
    }
    for (size_t i = 0; i < s->ntasks; i++) {
        phx_allocsim_task_t *k = &s->tasks[i];
        if (!k->live || k->agent != agent)
            continue;
        const phx_topo_coreset_t *gc = phx_topo_grant_cores(k->grant);
        for (int c = phx_topo_coreset_next(gc, -1); c >= 0;
             c = phx_topo_coreset_next(gc, c))
            owners[c]++;
        for (int n = 0; n < phx_topo_nnumas(t); n++)
            mem += phx_topo_grant_memory(k->grant, n);
    }
    phx_alloc_agent_info_t info;
    assert_int_equal(phx_alloc_agent_info(s->a, agent, &info), 0);
    int owned = 0;
    for (int c = 0; c < phx_topo_ncores(t); c++) {
        if (owners[c] > 1)
            fail_msg("core %d of agent %lld has %d owners", c, (long long)agent,
                     owners[c]);
        owned += owners[c];
    }
    /* Held cores are invisible here but must make up the difference. */
    assert_int_equal(owned + info.held_cores, phx_topo_ncores(t));
    assert_true(mem + info.held_mem == phx_topo_memory(t));
}

void phx_allocsim_check(phx_allocsim_t *s)
{
    for (int i = 0; i < s->nagents; i++)
        check_agent(s, i);
}

int phx_allocsim_on_offer(const phx_alloc_offer_t *o, void *arg)
{
    phx_allocsim_t *s = arg;
    /* Nothing offered may be free in the tracker or owned by anyone else. */
    const phx_topo_coreset_t *gc = phx_topo_grant_cores(o->grant);
    const phx_topo_coreset_t *fc = phx_topo_free_cores(sim_free(s, o->agent_id));
    assert_false(phx_topo_coreset_intersects(gc, fc));
    assert_true(o->cores > 0);
    for (size_t i = 0; i < s->noffers; i++) {
        phx_allocsim_offer_t *x = &s->offers[i];
        if (x->live && x->agent == o->agent_id)
            assert_false(
                phx_topo_coreset_intersects(gc, phx_topo_grant_cores(x->grant)));
    }
    for (size_t i = 0; i < s->ntasks; i++) {
        phx_allocsim_task_t *k = &s->tasks[i];
        if (k->live && k->agent == o->agent_id)
            assert_false(
                phx_topo_coreset_intersects(gc, phx_topo_grant_cores(k->grant)));
    }
    if (s->noffers == s->cap_offers) {
        s->cap_offers = s->cap_offers ? 2 * s->cap_offers : 64;
        s->offers = realloc(s->offers, s->cap_offers * sizeof(*s->offers));
        assert_non_null(s->offers);
    }
    phx_allocsim_offer_t *x = &s->offers[s->noffers++];
    memset(x, 0, sizeof(*x));
    snprintf(x->fw, sizeof(x->fw), "%s", o->framework);
    snprintf(x->req, sizeof(x->req), "%s", o->request_id ? o->request_id : "");
    x->agent = o->agent_id;
    x->grant = o->grant;
    x->release_by = o->release_by;
    x->pass = s->pass;
    x->live = true;
    return 0;
}

static void on_request_end(const char *fw, const char *id, phx_alloc_request_end_t why,
                           void *arg)
{
    phx_allocsim_t *s = arg;
    (void)fw;
    s->nended++;
    s->why = why;
    snprintf(s->ended, sizeof(s->ended), "%s", id);
}

phx_allocsim_t *phx_allocsim_create(int nagents, const char *desc)
{
    phx_allocsim_t *s = calloc(1, sizeof(*s));
    phx_error_t err;
    assert_non_null(s);
    s->a = phx_alloc_create();
    assert_non_null(s->a);
    phx_alloc_set_request_cb(s->a, on_request_end, s);
    s->topo = phx_topo_load_synthetic(desc, &err);
    assert_non_null(s->topo);
    s->nagents = nagents;
    for (int i = 0; i < nagents; i++) {
        s->free[i] = phx_topo_free_create(s->topo);
        assert_non_null(s->free[i]);
        assert_int_equal(phx_alloc_agent_add(s->a, i, s->free[i], &err), 0);
    }
    s->now = 1000;
    return s;
}

void phx_allocsim_destroy(phx_allocsim_t *s)
{
    phx_alloc_destroy(s->a);
    for (size_t i = 0; i < s->noffers; i++)
        if (s->offers[i].live)
            phx_topo_grant_destroy(s->offers[i].grant);
    for (size_t i = 0; i < s->ntasks; i++)
        if (s->tasks[i].live)
            phx_topo_grant_destroy(s->tasks[i].grant);
    for (int i = 0; i < s->nagents; i++)
        phx_topo_free_destroy(s->free[i]);
    phx_topo_destroy(s->topo);
    free(s->offers);
    free(s->tasks);
    free(s);
}

void phx_allocsim_framework(phx_allocsim_t *s, const char *id, const char *role)
{
    phx_error_t err;
    assert_int_equal(phx_alloc_framework_add(s->a, id, role, &err), 0);
}

/* One pass; returns the index of the first offer it made. */
size_t phx_allocsim_cycle(phx_allocsim_t *s)
{
    size_t first = s->noffers;
    s->pass++;
    int n = phx_alloc_cycle(s->a, s->now, phx_allocsim_on_offer, s);
    assert_int_equal((size_t)n, s->noffers - first);
    phx_allocsim_check(s);
    return first;
}

/* A grant of the first ncores cores of src (mem_per_core from each core's
 * domain); NULL if src has fewer. */
phx_topo_grant_t *phx_allocsim_part(phx_allocsim_t *s, const phx_topo_grant_t *src,
                                    int ncores, uint64_t mem_per_core)
{
    phx_topo_grant_t *g = phx_topo_grant_create(s->topo);
    uint64_t mem[64] = {0};
    const phx_topo_coreset_t *sc = phx_topo_grant_cores(src);
    int n = 0;
    for (int c = phx_topo_coreset_next(sc, -1); c >= 0 && n < ncores;
         c = phx_topo_coreset_next(sc, c), n++) {
        phx_topo_grant_add_core(g, c);
        mem[phx_topo_core_numa(s->topo, c)] += mem_per_core;
    }
    for (int d = 0; d < phx_topo_nnumas(s->topo); d++) {
        if (mem[d] > phx_topo_grant_memory(src, d)) {
            phx_topo_grant_destroy(g);
            return NULL;
        }
        phx_topo_grant_set_memory(g, d, mem[d]);
    }
    if (n < ncores) {
        phx_topo_grant_destroy(g);
        return NULL;
    }
    return g;
}

/* src minus part. */
static phx_topo_grant_t *rest_of(phx_allocsim_t *s, const phx_topo_grant_t *src,
                                 const phx_topo_grant_t *part)
{
    phx_topo_grant_t *g = phx_topo_grant_create(s->topo);
    const phx_topo_coreset_t *sc = phx_topo_grant_cores(src);
    const phx_topo_coreset_t *pc = phx_topo_grant_cores(part);
    for (int c = phx_topo_coreset_next(sc, -1); c >= 0;
         c = phx_topo_coreset_next(sc, c))
        if (!phx_topo_coreset_has(pc, c))
            phx_topo_grant_add_core(g, c);
    for (int d = 0; d < phx_topo_nnumas(s->topo); d++)
        phx_topo_grant_set_memory(
            g, d, phx_topo_grant_memory(src, d) - phx_topo_grant_memory(part, d));
    return g;
}

static void offer_done(phx_allocsim_t *s, phx_allocsim_offer_t *o)
{
    o->live = false;
    phx_alloc_grant_recycle(s->a, o->agent, o->grant);
    o->grant = NULL;
}

void phx_allocsim_decline(phx_allocsim_t *s, phx_allocsim_offer_t *o, double refuse)
{
    phx_error_t err;
    assert_int_equal(phx_alloc_offer_return(s->a, o->agent, o->fw, o->grant, &err), 0);
    if (refuse > 0)
        assert_int_equal(phx_alloc_filter(s->a, o->fw, o->agent, s->now + refuse), 0);
    offer_done(s, o);
}

/* Launch one task of ncores from the offer (end 0: unknown); the offer
 * keeps the rest.  false if it does not fit. */
bool phx_allocsim_launch(phx_allocsim_t *s, phx_allocsim_offer_t *o, int ncores,
                         uint64_t mem_per_core, double end)
{
    phx_error_t err;
    phx_topo_grant_t *part = phx_allocsim_part(s, o->grant, ncores, mem_per_core);
    if (!part)
        return false;
    if (s->ntasks == s->cap_tasks) {
        s->cap_tasks = s->cap_tasks ? 2 * s->cap_tasks : 64;
        s->tasks = realloc(s->tasks, s->cap_tasks * sizeof(*s->tasks));
        assert_non_null(s->tasks);
    }
    phx_allocsim_task_t *k = &s->tasks[s->ntasks];
    memset(k, 0, sizeof(*k));
    snprintf(k->fw, sizeof(k->fw), "%s", o->fw);
    snprintf(k->id, sizeof(k->id), "t%d", s->next_task++);
    k->agent = o->agent;
    k->end = end;
    k->grant = part;
    if (phx_alloc_offer_used(s->a, o->agent, o->fw, k->id, part, end, &err) < 0)
        fail_msg("offer_used: %s", err.text);
    k->live = true;
    s->ntasks++;
    phx_topo_grant_t *rest = rest_of(s, o->grant, part);
    phx_topo_grant_destroy(o->grant);
    o->grant = rest;
    return true;
}

/* Return what is left of the offer. */
void phx_allocsim_finish(phx_allocsim_t *s, phx_allocsim_offer_t *o)
{
    phx_error_t err;
    if (phx_alloc_offer_return(s->a, o->agent, o->fw, o->grant, &err) < 0)
        fail_msg("offer_return: %s", err.text);
    offer_done(s, o);
}

/* One task from the offer, the rest returned (declined if it does not
 * fit). */
bool phx_allocsim_use(phx_allocsim_t *s, phx_allocsim_offer_t *o, int ncores,
                      uint64_t mem_per_core, double end)
{
    bool ok = phx_allocsim_launch(s, o, ncores, mem_per_core, end);
    phx_allocsim_finish(s, o);
    return ok;
}

void phx_allocsim_end_task(phx_allocsim_t *s, phx_allocsim_task_t *k)
{
    assert_int_equal(phx_alloc_usage_sub(s->a, k->agent, k->fw, k->id), 0);
    phx_topo_grant_destroy(k->grant);
    k->live = false;
}

void phx_allocsim_end_tasks(phx_allocsim_t *s)
{
    for (size_t i = 0; i < s->ntasks; i++)
        if (s->tasks[i].live && s->tasks[i].end > 0 && s->tasks[i].end <= s->now)
            phx_allocsim_end_task(s, &s->tasks[i]);
}

double phx_allocsim_share(phx_allocsim_t *s, const char *fw)
{
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, fw, &fi), 0);
    return fi.share;
}
