/* The master's allocator: several gang requests holding at once.  A request
 * that waits for resources claims the agents it may use (its listed agents,
 * else all); a later request on agents none of which is claimed (another
 * partition) is served too: it holds, lends with its own release_by, and
 * is satisfied on its own.  A later request on claimed agents waits.
 *
 * As test_alloc_gang.c, over the simulated cluster of
 * tests/unit/support/allocsim.h, with the allocator's sources compiled in. */
#include "daemons/master/alloc.c"
#include "daemons/master/alloc_drf.c"
#include "daemons/master/alloc_hold.c"
#include "daemons/master/alloc_offer.c"
#include "daemons/master/alloc_request.c"
#include "daemons/master/alloc_res.c"
#include "tests/unit/support/allocsim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

/* 4 agents of 4 cores.  Framework b runs 4 one-core tasks on each, those of
 * agent i ending at ends[i] (0: unknown); framework g (suppressed: it only
 * wants its gangs) asks for them. */
static phx_allocsim_t *busy_world(const double ends[4])
{
    phx_allocsim_t *s = phx_allocsim_create(4, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 4);
    for (size_t i = first; i < s->noffers; i++) {
        phx_allocsim_offer_t *o = &s->offers[i];
        while (phx_allocsim_launch(s, o, 1, 0, ends[o->agent]))
            ;
        phx_allocsim_finish(s, o);
    }
    return s;
}

/* g asks for nbundles whole agents (bundles of 4 cores) among the listed
 * agents (agents NULL: any). */
static void request(phx_allocsim_t *s, const char *id, int nbundles,
                    const int64_t *agents, size_t nagents)
{
    phx_alloc_shape_t sh = {.nbundles = nbundles,
                            .cores = 4,
                            .kind = PHX_ALLOC_BUNDLE_ANY,
                            .agents = agents,
                            .nagents = nagents};
    phx_error_t err = {{0}};
    if (phx_alloc_request_add(s->a, "g", id, &sh, 10, 0, s->now, &err) < 0)
        fail_msg("request %s: %s", id, err.text);
}

static phx_alloc_request_info_t info(phx_allocsim_t *s, const char *id)
{
    phx_alloc_request_info_t ri;
    if (phx_alloc_request_info(s->a, "g", id, &ri) < 0)
        fail_msg("no request %s", id);
    return ri;
}

static bool agent_holding(phx_allocsim_t *s, int64_t ag)
{
    phx_alloc_agent_info_t ai;
    assert_int_equal(phx_alloc_agent_info(s->a, ag, &ai), 0);
    return ai.holding;
}

/* End the live task of agent ag that holds core c. */
static void end_on_core(phx_allocsim_t *s, int64_t ag, int c)
{
    for (size_t i = 0; i < s->ntasks; i++) {
        phx_allocsim_task_t *k = &s->tasks[i];
        if (k->live && k->agent == ag &&
            phx_topo_coreset_has(phx_topo_grant_cores(k->grant), c)) {
            phx_allocsim_end_task(s, k);
            return;
        }
    }
    fail_msg("no live task on agent %lld core %d", (long long)ag, c);
}

static void decline_all(phx_allocsim_t *s, size_t first)
{
    for (size_t i = first; i < s->noffers; i++)
        if (s->offers[i].live)
            phx_allocsim_decline(s, &s->offers[i], 0);
}

/* The offers of the pass for request req (each of 4 cores, to g), as a
 * bit mask of their agents; every other offer is declined. */
static unsigned gang_agents(phx_allocsim_t *s, size_t first, const char *req)
{
    unsigned mask = 0;
    for (size_t i = first; i < s->noffers; i++) {
        phx_allocsim_offer_t *o = &s->offers[i];
        if (!o->live)
            continue;
        if (strcmp(o->req, req) != 0) {
            phx_allocsim_decline(s, o, 0);
            continue;
        }
        assert_string_equal(o->fw, "g");
        assert_true(o->release_by == 0);
        assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(o->grant)), 4);
        assert_false(mask & 1u << o->agent);
        mask |= 1u << o->agent;
    }
    return mask;
}

/* Partitions "debug" (agents 0, 1) and "compute" (2, 3, listed unsorted and
 * with a duplicate), b's tasks ending at 1020 on debug, at 1010 and 1012 on
 * compute.  Both requests hold, each its own agents, and each is satisfied
 * when its own agents are free: compute first although it comes second,
 * not before both of its agents are (the duplicate counts once), and debug
 * later, untouched by it. */
static void test_multihold_partitions(void **state)
{
    (void)state;
    const double ends[4] = {1020, 1020, 1010, 1012};
    phx_allocsim_t *s = busy_world(ends);
    const int64_t debug[] = {0, 1}, compute[] = {3, 2, 2};
    request(s, "debug", 2, debug, 2);
    request(s, "compute", 2, compute, 3);
    phx_allocsim_cycle(s);
    phx_alloc_request_info_t rd = info(s, "debug"), rc = info(s, "compute");
    assert_int_equal(rd.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(rd.position, 0);
    assert_int_equal(rd.hold_agents, 2);
    assert_true(rd.satisfiable_at == 1020);
    assert_int_equal(rc.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(rc.position, 1);
    assert_int_equal(rc.hold_agents, 2);
    assert_true(rc.satisfiable_at == 1012);
    for (int64_t ag = 0; ag < 4; ag++)
        assert_true(agent_holding(s, ag));

    /* 1010: agent 2 is free, agent 3 is not: nothing for compute yet. */
    s->now = 1010;
    phx_allocsim_end_tasks(s);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(gang_agents(s, first, "compute"), 0);
    assert_int_equal(info(s, "compute").state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(info(s, "compute").held_bundles, 1);
    assert_int_equal(info(s, "debug").state, PHX_ALLOC_REQUEST_HOLDING);

    /* 1012: compute's agents are free, and only they go to it. */
    s->now = 1012;
    phx_allocsim_end_tasks(s);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_agents(s, first, "compute"), 1u << 2 | 1u << 3);
    assert_int_equal(s->nended, 1);
    assert_string_equal(s->ended, "compute");
    assert_int_equal(s->why, PHX_ALLOC_REQUEST_SATISFIED);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(s->a, "g", "compute", &ri), -1);
    rd = info(s, "debug");
    assert_int_equal(rd.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(rd.hold_agents, 2);
    assert_true(rd.satisfiable_at == 1020);
    assert_true(agent_holding(s, 0) && agent_holding(s, 1));
    assert_false(agent_holding(s, 2) || agent_holding(s, 3));

    /* 1020: debug's turn. */
    s->now = 1020;
    phx_allocsim_end_tasks(s);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_agents(s, first, "debug"), 1u << 0 | 1u << 1);
    assert_int_equal(s->nended, 2);
    assert_string_equal(s->ended, "debug");
    for (int64_t ag = 0; ag < 4; ag++)
        assert_false(agent_holding(s, ag));
    phx_allocsim_destroy(s);
}

/* Each holding request lends what it holds with its own T* as release_by,
 * and a task in lent resources must end by the release_by of its agent's
 * request. */
static void test_multihold_lend(void **state)
{
    (void)state;
    const double ends[4] = {1020, 1020, 1010, 1012};
    phx_allocsim_t *s = busy_world(ends);
    const int64_t debug[] = {0, 1}, compute[] = {2, 3};
    request(s, "debug", 2, debug, 2);
    request(s, "compute", 2, compute, 2);
    phx_allocsim_cycle(s);
    end_on_core(s, 0, 0);
    end_on_core(s, 2, 0);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 2);
    for (size_t i = first; i < s->noffers; i++) {
        phx_allocsim_offer_t *o = &s->offers[i];
        assert_string_equal(o->fw, "b");
        assert_string_equal(o->req, "");
        assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(o->grant)), 1);
        phx_alloc_agent_info_t ai;
        assert_int_equal(phx_alloc_agent_info(s->a, o->agent, &ai), 0);
        assert_true(ai.holding);
        assert_int_equal(ai.lent_cores, 1);
        if (o->agent == 0) {
            assert_true(o->release_by == info(s, "debug").satisfiable_at);
            assert_true(o->release_by == 1020);
        } else {
            assert_int_equal(o->agent, 2);
            assert_true(o->release_by == info(s, "compute").satisfiable_at);
            assert_true(o->release_by == 1012);
        }
    }
    /* A task to 1015 fits debug's loan, not compute's. */
    for (size_t i = first; i < s->noffers; i++) {
        phx_allocsim_offer_t *o = &s->offers[i];
        if (o->agent == 0) {
            assert_true(phx_allocsim_use(s, o, 1, 0, 1015));
            continue;
        }
        phx_topo_grant_t *part = phx_allocsim_part(s, o->grant, 1, 0);
        phx_error_t err = {{0}};
        assert_int_equal(
            phx_alloc_offer_used(s->a, o->agent, "b", "late", part, 1015, &err), -1);
        phx_topo_grant_destroy(part);
        assert_non_null(strstr(err.text, "must end by 1012"));
        assert_true(phx_allocsim_use(s, o, 1, 0, 1012));
    }
    /* The loans end by each request's T*, which stays. */
    first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers, first);
    assert_true(info(s, "debug").satisfiable_at == 1020);
    assert_true(info(s, "compute").satisfiable_at == 1012);
    s->now = 1012;
    phx_allocsim_end_tasks(s);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_agents(s, first, "compute"), 1u << 2 | 1u << 3);
    phx_allocsim_destroy(s);
}

/* A request on agents a holding request claimed waits, and nothing is held
 * for it; one with no list waits behind any holding request; a waiting
 * request claims nothing, so a later request on other agents holds; an
 * unlisted request served first claims everything (one head, as before);
 * a request that cannot be held on the available agents claims nothing. */
static void test_multihold_overlap_waits(void **state)
{
    (void)state;
    const double ends[4] = {1020, 1020, 1010, 1012};
    phx_allocsim_t *s = busy_world(ends);
    const int64_t debug[] = {0, 1}, over[] = {1, 2}, last[] = {3};
    request(s, "debug", 2, debug, 2);
    request(s, "over", 2, over, 2);
    request(s, "any", 2, NULL, 0);
    request(s, "last", 1, last, 1);
    phx_allocsim_cycle(s);
    assert_int_equal(info(s, "debug").state, PHX_ALLOC_REQUEST_HOLDING);
    phx_alloc_request_info_t ri = info(s, "over");
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_WAITING);
    assert_int_equal(ri.position, 1);
    assert_int_equal(ri.hold_agents, 0);
    assert_int_equal(ri.held_bundles, 0);
    assert_true(ri.satisfiable_at == 0);
    ri = info(s, "any");
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_WAITING);
    assert_int_equal(ri.position, 2);
    ri = info(s, "last");
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(ri.position, 3);
    assert_int_equal(ri.hold_agents, 1);
    assert_true(ri.satisfiable_at == 1012);
    assert_true(agent_holding(s, 0) && agent_holding(s, 1) && agent_holding(s, 3));
    assert_false(agent_holding(s, 2));
    /* A core freed on agent 2 is nobody's: offered to b, not lent. */
    end_on_core(s, 2, 0);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 1);
    assert_int_equal(s->offers[first].agent, 2);
    assert_true(s->offers[first].release_by == 0);
    phx_alloc_agent_info_t ai;
    assert_int_equal(phx_alloc_agent_info(s->a, 2, &ai), 0);
    assert_false(ai.holding);
    assert_int_equal(ai.held_cores, 0);
    phx_allocsim_decline(s, &s->offers[first], 0);
    /* debug gone: "over" holds agents 1 and 2, "any" still waits (claimed),
     * and agent 0 is released. */
    assert_int_equal(phx_alloc_request_cancel(s->a, "g", "debug"), 0);
    first = phx_allocsim_cycle(s);
    assert_int_equal(info(s, "over").state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(info(s, "over").position, 0);
    assert_int_equal(info(s, "any").state, PHX_ALLOC_REQUEST_WAITING);
    assert_int_equal(info(s, "last").state, PHX_ALLOC_REQUEST_HOLDING);
    assert_false(agent_holding(s, 0));
    assert_true(agent_holding(s, 1) && agent_holding(s, 2) && agent_holding(s, 3));
    decline_all(s, first);
    phx_allocsim_destroy(s);

    /* An unlisted request first: it alone holds. */
    s = busy_world(ends);
    request(s, "any", 2, NULL, 0);
    request(s, "last", 1, last, 1);
    phx_allocsim_cycle(s);
    assert_int_equal(info(s, "any").state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(info(s, "last").state, PHX_ALLOC_REQUEST_WAITING);
    assert_int_equal(info(s, "last").position, 1);
    /* Agent 3 unavailable: "last" cannot be held and claims nothing; after
     * "any" is cancelled it does not stop "debug". */
    assert_int_equal(phx_alloc_request_cancel(s->a, "g", "any"), 0);
    request(s, "debug", 2, debug, 2);
    assert_int_equal(phx_alloc_agent_set_available(s->a, 3, false), 0);
    phx_allocsim_cycle(s);
    assert_int_equal(info(s, "last").state, PHX_ALLOC_REQUEST_WAITING);
    assert_int_equal(info(s, "last").position, 0);
    assert_int_equal(info(s, "debug").state, PHX_ALLOC_REQUEST_HOLDING);
    assert_true(agent_holding(s, 0) && agent_holding(s, 1));
    assert_false(agent_holding(s, 2) || agent_holding(s, 3));
    phx_allocsim_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multihold_partitions),
        cmocka_unit_test(test_multihold_lend),
        cmocka_unit_test(test_multihold_overlap_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
