/* The master's allocator: gang requests (hold, lend with release_by,
 * satisfy, cancel, expiry, oversize), over the simulated cluster of
 * tests/unit/support/allocsim.h.
 *
 * The allocator's sources are compiled into this test directly: the
 * makefile links the master's sources into phx-master only, not into a
 * library, and the allocator depends on nothing but lib/ and topology/. */
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

#define GiB (1ULL << 30)

/* ---- gang requests ---- */

/* Framework b keeps the 8 agents of 8 cores busy with 1-core tasks of 3 to
 * 10 s; framework g (suppressed: it only wants its gang) asks for 4 whole
 * agents (4 NUMA bundles of 8 cores).  The request must be satisfied within
 * 12 passes (a pass per second; the longest task is 10 s), with 4 offers in
 * one pass flagged with the request id, while b keeps getting offers in
 * nearly every pass and backfills lent resources with tasks ending by
 * release_by.  Every lent offer's release_by is the request's expected
 * satisfiable time, in the future. */
static void test_gang_request_no_starvation(void **state)
{
    (void)state;
    phx_allocsim_t *s =
        phx_allocsim_create(8, "pack:1 numa:1(memory=16GiB) core:8 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    for (int p = 0; p < 20; p++) { /* fill the cluster */
        phx_allocsim_end_tasks(s);
        size_t first = phx_allocsim_cycle(s);
        for (size_t i = first; i < s->noffers; i++) {
            while (phx_allocsim_launch(s, &s->offers[i], 1, GiB,
                                       s->now + 3 + phx_allocsim_rnd(8)))
                ;
            phx_allocsim_finish(s, &s->offers[i]);
        }
        s->now += 1;
    }
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, "b", &fi), 0);
    assert_true(fi.used_cores >= 56); /* busy: a gang of whole agents must wait */

    phx_alloc_shape_t sh = {
        .nbundles = 4, .cores = 8, .mem = 4 * GiB, .kind = PHX_ALLOC_BUNDLE_NUMA};
    phx_error_t err;
    assert_int_equal(
        phx_alloc_request_add(s->a, "g", "gang1", &sh, 30, 0, s->now, &err), 0);
    double t0 = s->now;
    int satisfied_pass = -1, b_passes = 0, passes = 0, lent = 0;
    for (passes = 1; passes <= 14 && satisfied_pass < 0; passes++) {
        phx_allocsim_end_tasks(s);
        size_t first = phx_allocsim_cycle(s);
        phx_alloc_request_info_t ri;
        bool holding = phx_alloc_request_info(s->a, "g", "gang1", &ri) == 0;
        int gang = 0, to_b = 0;
        for (size_t i = first; i < s->noffers; i++) {
            phx_allocsim_offer_t *o = &s->offers[i];
            if (strcmp(o->req, "gang1") == 0) {
                assert_string_equal(o->fw, "g");
                assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(o->grant)),
                                 8);
                gang++;
                continue;
            }
            assert_string_equal(o->fw, "b");
            to_b++;
            if (o->release_by > 0) {
                /* Lent: only while the request waits, and until the time
                 * it expects to be satisfiable. */
                assert_true(holding);
                assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
                assert_true(o->release_by > s->now);
                assert_true(o->release_by == ri.satisfiable_at);
                lent++;
            }
            /* b backfills everything it gets, with tasks short enough. */
            for (;;) {
                double end = s->now + 3 + phx_allocsim_rnd(8);
                if (o->release_by > 0 && end > o->release_by)
                    end = o->release_by;
                if (!phx_allocsim_launch(s, o, 1, GiB, end))
                    break;
            }
            phx_allocsim_finish(s, o);
        }
        if (gang) {
            assert_int_equal(gang, 4);
            assert_false(holding); /* satisfied requests leave the queue */
            assert_int_equal(s->nended, 1);
            assert_int_equal(s->why, PHX_ALLOC_REQUEST_SATISFIED);
            satisfied_pass = passes;
            for (size_t i = first; i < s->noffers; i++)
                if (s->offers[i].live && strcmp(s->offers[i].fw, "g") == 0)
                    assert_true(
                        phx_allocsim_use(s, &s->offers[i], 8, GiB / 2, s->now + 30));
        } else {
            assert_true(holding);
            assert_int_equal(ri.hold_agents, 4);
            assert_true(ri.satisfiable_at > 0 && ri.satisfiable_at <= t0 + 11);
        }
        b_passes += to_b > 0;
        s->now += 1;
    }
    print_message(
        "gang satisfied after %d passes; b got offers in %d of them, %d lent\n",
        satisfied_pass, b_passes, lent);
    assert_true(satisfied_pass > 0 && satisfied_pass <= 12);
    assert_true(b_passes >= satisfied_pass - 1); /* b was never starved */
    assert_true(lent > 0);                       /* and it backfilled */
    assert_int_equal(phx_alloc_framework_info(s->a, "g", &fi), 0);
    assert_int_equal(fi.used_cores, 32);
    assert_int_equal(fi.nrequests, 0);
    phx_allocsim_destroy(s);
}

/* Every offer of a pass becomes 1-core tasks ending at `end` (0: unknown). */
static void fill(phx_allocsim_t *s, double end)
{
    size_t first = phx_allocsim_cycle(s);
    for (size_t i = first; i < s->noffers; i++) {
        while (phx_allocsim_launch(s, &s->offers[i], 1, 0, end))
            ;
        phx_allocsim_finish(s, &s->offers[i]);
    }
}

/* With end times unknown nothing held is lent; held resources grow as tasks
 * end; a lent offer cannot carry a task past its release_by. */
static void test_release_by_unknown_and_enforced(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(4, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    fill(s, 0); /* unknown ends */
    phx_alloc_shape_t sh = {
        .nbundles = 2, .cores = 4, .mem = 0, .kind = PHX_ALLOC_BUNDLE_ANY};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r", &sh, 10, 0, s->now, NULL),
                     0);
    phx_allocsim_cycle(s);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r", &ri), 0);
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_true(ri.satisfiable_at == 0); /* unknown */
    assert_int_equal(ri.hold_agents, 2);
    /* End one task on every agent: held agents keep the core, the others
     * offer it to b; nothing is lent. */
    for (int ag = 0; ag < 4; ag++)
        for (size_t i = 0; i < s->ntasks; i++)
            if (s->tasks[i].live && s->tasks[i].agent == ag) {
                phx_allocsim_end_task(s, &s->tasks[i]);
                break;
            }
    size_t first = phx_allocsim_cycle(s);
    int held = 0;
    for (int ag = 0; ag < 4; ag++) {
        phx_alloc_agent_info_t ai;
        assert_int_equal(phx_alloc_agent_info(s->a, ag, &ai), 0);
        if (ai.holding) {
            assert_int_equal(ai.held_cores, 1);
            assert_int_equal(ai.lent_cores, 0);
            held++;
        }
    }
    assert_int_equal(held, 2);
    assert_int_equal(s->noffers - first, 2);
    for (size_t i = first; i < s->noffers; i++) {
        assert_true(s->offers[i].release_by == 0);
        phx_alloc_agent_info_t ai;
        phx_alloc_agent_info(s->a, s->offers[i].agent, &ai);
        assert_false(ai.holding);
        phx_allocsim_decline(s, &s->offers[i], 0);
    }
    phx_allocsim_destroy(s);

    /* Known ends: lent offers carry release_by; a task past it is refused. */
    s = phx_allocsim_create(2, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    fill(s, 1010);
    sh = (phx_alloc_shape_t){
        .nbundles = 1, .cores = 4, .mem = 0, .kind = PHX_ALLOC_BUNDLE_NUMA};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r", &sh, 10, 0, s->now, NULL),
                     0);
    phx_allocsim_end_task(s, &s->tasks[0]); /* agent 0: one core free early */
    first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 1);
    phx_allocsim_offer_t *o = &s->offers[first];
    assert_string_equal(o->fw, "b");
    assert_true(o->release_by == 1010);
    phx_topo_grant_t *part = phx_allocsim_part(s, o->grant, 1, 0);
    phx_error_t err;
    assert_int_equal(
        phx_alloc_offer_used(s->a, o->agent, "b", "long", part, 1011, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "must end by 1010"));
    assert_int_equal(
        phx_alloc_offer_used(s->a, o->agent, "b", "unknown", part, 0, &err), -1);
    phx_topo_grant_destroy(part);
    assert_true(phx_allocsim_use(s, o, 1, 0, 1009));
    phx_alloc_agent_info_t ai;
    assert_int_equal(phx_alloc_agent_info(s->a, 0, &ai), 0);
    assert_int_equal(ai.lent_cores, 1);
    /* At 1010 everything on agent 0 has ended: the gang gets it. */
    s->now = 1010;
    phx_allocsim_end_tasks(s);
    first = phx_allocsim_cycle(s);
    int gang = 0;
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, "r") == 0)
            gang++;
    assert_int_equal(gang, 1);
    phx_allocsim_destroy(s);
}

static void test_request_cancel_and_expiry(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(2, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    fill(s, 0);
    phx_alloc_shape_t sh = {
        .nbundles = 1, .cores = 4, .mem = 0, .kind = PHX_ALLOC_BUNDLE_NUMA};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r1", &sh, 10, 0, s->now, NULL),
                     0);
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r1", &sh, 10, 0, s->now, NULL),
                     -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(
        phx_alloc_request_add(s->a, "g", "r2", &sh, 10, s->now + 3, s->now + 1, NULL),
        0);
    phx_allocsim_cycle(s);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r2", &ri), 0);
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_WAITING);
    assert_int_equal(ri.position, 1);
    phx_allocsim_end_task(s, &s->tasks[0]); /* a core frees on agent 0 */
    phx_allocsim_cycle(s);
    phx_alloc_agent_info_t ai;
    int holder = -1;
    for (int ag = 0; ag < 2; ag++) {
        phx_alloc_agent_info(s->a, ag, &ai);
        if (ai.holding)
            holder = ag;
    }
    assert_int_equal(holder, 0); /* the agent closest to holding a bundle */
    phx_alloc_agent_info(s->a, 0, &ai);
    assert_int_equal(ai.held_cores, 1);

    /* Cancel r1: r2 becomes the head and holds the same core. */
    assert_int_equal(phx_alloc_request_cancel(s->a, "g", "r1"), 0);
    assert_true(phx_alloc_pending(s->a, s->now));
    phx_allocsim_cycle(s);
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r1", &ri), -1);
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r2", &ri), 0);
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(ri.held_bundles, 0);
    /* r2 expires at 1003: the hold is released and b gets the core. */
    assert_true(phx_alloc_next_expiry(s->a) == 1003);
    s->now = 1003;
    assert_true(phx_alloc_pending(s->a, s->now));
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->nended, 1);
    assert_string_equal(s->ended, "r2");
    assert_int_equal(s->why, PHX_ALLOC_REQUEST_EXPIRED);
    assert_int_equal(s->noffers - first, 1);
    assert_string_equal(s->offers[first].fw, "b");
    assert_int_equal(s->offers[first].agent, 0);
    phx_alloc_agent_info(s->a, 0, &ai);
    assert_false(ai.holding);
    assert_int_equal(ai.held_cores, 0);
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, "g", &fi), 0);
    assert_int_equal(fi.nrequests, 0);
    phx_allocsim_destroy(s);
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

static int gang_offers(phx_allocsim_t *s, size_t first, const char *req)
{
    int n = 0;
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, req) == 0)
            n++;
        else
            phx_allocsim_decline(s, &s->offers[i], 0);
    return n;
}

/* A request that describes its tasks is held what they can use: 4 tasks of
 * one core, 2 per agent, one per socket, on agents of 2 sockets of 2
 * cores.  Two free cores of one socket on each agent would satisfy a
 * request for 2 cores per agent, not this one; a free core on the other
 * socket does.  A request limited to listed agents holds nothing elsewhere,
 * and one the listed agents cannot hold is refused. */
static void test_request_per_socket_and_agents(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(3, "pack:2 numa:1 core:2 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    fill(s, 0);
    int64_t listed[] = {2, 1}; /* unsorted on purpose */
    phx_alloc_shape_t sh = {.nbundles = 4,
                            .cores = 1,
                            .kind = PHX_ALLOC_BUNDLE_SOCKET,
                            .per_agent = 2,
                            .per_socket = 1,
                            .agents = listed,
                            .nagents = 2};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r", &sh, 10, 0, s->now, NULL),
                     0);
    phx_allocsim_cycle(s);
    for (int64_t ag = 0; ag < 3; ag++) /* socket 0: cores 0 and 1 */
        end_on_core(s, ag, 0), end_on_core(s, ag, 1);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0);
    phx_alloc_agent_info_t ai;
    assert_int_equal(phx_alloc_agent_info(s->a, 0, &ai), 0);
    assert_false(ai.holding); /* not listed */
    assert_int_equal(ai.held_cores, 0);
    for (int64_t ag = 1; ag < 3; ag++) {
        assert_int_equal(phx_alloc_agent_info(s->a, ag, &ai), 0);
        assert_true(ai.holding);
        assert_int_equal(ai.held_cores, 2);
    }
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r", &ri), 0);
    assert_int_equal(ri.held_bundles, 2); /* one per agent: one socket free */
    end_on_core(s, 1, 2);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0); /* agent 2: one socket */
    end_on_core(s, 2, 3);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 2);
    for (size_t i = first; i < s->noffers; i++) {
        if (strcmp(s->offers[i].req, "r") != 0)
            continue;
        assert_true(s->offers[i].agent == 1 || s->offers[i].agent == 2);
        assert_int_equal(
            phx_topo_coreset_count(phx_topo_grant_cores(s->offers[i].grant)), 3);
    }
    assert_int_equal(s->nended, 1);
    assert_string_equal(s->ended, "r");

    /* per_agent 1 of 2-core socket bundles: 3 agents hold 3, not 6 */
    phx_error_t err = {{0}};
    sh = (phx_alloc_shape_t){
        .nbundles = 4, .cores = 2, .kind = PHX_ALLOC_BUNDLE_SOCKET, .per_agent = 1};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "wide", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "at most 3"));
    sh.nbundles = 3;
    sh.agents = listed;
    sh.nagents = 2;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "few", &sh, 1, 0, s->now, &err),
                     -1);
    assert_non_null(strstr(err.text, "on the listed agents"));
    assert_non_null(strstr(err.text, "at most 2"));
    sh = (phx_alloc_shape_t){
        .nbundles = 1, .cores = 1, .kind = PHX_ALLOC_BUNDLE_ANY, .per_socket = 1};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "bad", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "kind numa or socket"));
    phx_allocsim_destroy(s);
}

/* min_agents: 4 one-core bundles, at most 2 per agent, over at least 3
 * agents.  Two agents with 2 free cores each hold 4 bundles but are only 2
 * agents: not satisfied; a free core on a third agent satisfies it, one
 * offer per agent. */
static void test_request_min_agents(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(4, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    fill(s, 0);
    phx_alloc_shape_t sh = {.nbundles = 4,
                            .cores = 1,
                            .kind = PHX_ALLOC_BUNDLE_ANY,
                            .per_agent = 2,
                            .min_agents = 3};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r", &sh, 10, 0, s->now, NULL),
                     0);
    phx_allocsim_cycle(s);
    end_on_core(s, 0, 0);
    end_on_core(s, 0, 1);
    end_on_core(s, 1, 0);
    end_on_core(s, 1, 1);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r", &ri), 0);
    assert_int_equal(ri.held_bundles, 4);
    end_on_core(s, 3, 2);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 3);
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, "r") == 0)
            assert_true(s->offers[i].agent != 2);

    phx_error_t err = {{0}};
    sh.min_agents = 5;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "five", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "wants 5 agents for 4 bundles"));
    int64_t two[] = {0, 1};
    sh.min_agents = 3;
    sh.agents = two;
    sh.nagents = 2;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "two", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(
        strstr(err.text, "needs 3 agents but only 2 of the available listed"));
    phx_allocsim_destroy(s);
}

/* max_agents: batchd's request for -N 2 -n 4 --ntasks-per-socket=1 (4
 * socket bundles, 2 per agent, 1 per socket, on 2 agents) on 4 agents of 2
 * sockets.  One free core on socket 0 of every agent makes 4 bundles, but
 * on 4 agents: not satisfied (it was, and the job could not use them); the
 * other socket free on two agents satisfies it with those two. */
static void test_request_max_agents(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(4, "pack:2 numa:1 core:2 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    fill(s, 0);
    phx_alloc_shape_t sh = {.nbundles = 4,
                            .cores = 1,
                            .kind = PHX_ALLOC_BUNDLE_SOCKET,
                            .per_agent = 2,
                            .per_socket = 1,
                            .min_agents = 2,
                            .max_agents = 2};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r", &sh, 10, 0, s->now, NULL),
                     0);
    phx_allocsim_cycle(s);
    for (int64_t ag = 0; ag < 4; ag++)
        end_on_core(s, ag, 0);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0);
    end_on_core(s, 2, 2);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0); /* 2 + 1 + 1 + 1 on 2: 3 */
    end_on_core(s, 3, 3);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 2);
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, "r") == 0)
            assert_true(s->offers[i].agent == 2 || s->offers[i].agent == 3);

    phx_error_t err = {{0}};
    sh.min_agents = 0;
    sh.max_agents = 1; /* 2 bundles on 1 agent at most */
    assert_int_equal(phx_alloc_request_add(s->a, "g", "one", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "on at most 1 agents"));
    assert_non_null(strstr(err.text, "can hold at most 2"));
    sh.min_agents = 3;
    sh.max_agents = 2;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "bad", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err.text, "at most 2 agents but at least 3"));
    phx_allocsim_destroy(s);
}

/* Memory a job needs on each node, not per task (batchd: --mem, --mem=0,
 * --exclusive).  Two agents of 4 cores and 8 GiB run four 1-core tasks of
 * 1.5 GiB each.  A request for one 1-core bundle on each agent with 4 GiB
 * per agent (agent_mem) is not satisfied by a free core and 3.5 GiB on
 * each (as a share per task of 4 GiB over 2 tasks was), nor by 5 GiB on one
 * agent only; it is once both have 5 GiB, each offer carrying at least 4.
 * agent_mem comes before the bundles' own memory; whole_mem counts an agent
 * only with no memory allocated, whole_agent only with nothing allocated. */
static uint64_t offer_mem(const phx_allocsim_t *s, const phx_allocsim_offer_t *o)
{
    uint64_t m = 0;
    for (int n = 0; n < phx_topo_nnumas(s->topo); n++)
        m += phx_topo_grant_memory(o->grant, n);
    return m;
}

static void test_request_agent_memory(void **state)
{
    (void)state;
    phx_allocsim_t *s =
        phx_allocsim_create(2, "pack:1 numa:1(memory=8GiB) core:4 pu:1");
    phx_allocsim_framework(s, "b", NULL);
    phx_allocsim_framework(s, "g", NULL);
    phx_alloc_suppress(s->a, "g");
    size_t first = phx_allocsim_cycle(s);
    for (size_t i = first; i < s->noffers; i++) {
        while (phx_allocsim_launch(s, &s->offers[i], 1, 3 * GiB / 2, 0))
            ;
        phx_allocsim_finish(s, &s->offers[i]);
    }
    phx_alloc_shape_t sh = {.nbundles = 2,
                            .cores = 1,
                            .kind = PHX_ALLOC_BUNDLE_ANY,
                            .per_agent = 1,
                            .min_agents = 2,
                            .agent_mem = 4 * GiB};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "r", &sh, 10, 0, s->now, NULL),
                     0);
    end_on_core(s, 0, 0);
    end_on_core(s, 1, 0);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0);
    end_on_core(s, 0, 1);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 0);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(s->a, "g", "r", &ri), 0);
    assert_int_equal(ri.held_bundles, 1);
    end_on_core(s, 1, 1);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "r"), 2);
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, "r") == 0) {
            assert_true(offer_mem(s, &s->offers[i]) >= 4 * GiB);
            phx_allocsim_decline(s, &s->offers[i], 0);
        }

    /* on an empty agent of 8 GiB: 4 bundles of 1 GiB besides 4 GiB, 2
     * besides 6, none besides 9 */
    phx_error_t err = {{0}};
    int64_t one[] = {0};
    sh = (phx_alloc_shape_t){.nbundles = 3,
                             .cores = 1,
                             .mem = GiB,
                             .kind = PHX_ALLOC_BUNDLE_ANY,
                             .agents = one,
                             .nagents = 1,
                             .agent_mem = 4 * GiB};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "4", &sh, 1, 0, s->now, &err), 0);
    sh.agent_mem = 6 * GiB;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "6", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "can hold at most 2"));
    sh.agent_mem = 9 * GiB;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "9", &sh, 1, 0, s->now, &err),
                     -1);
    assert_non_null(strstr(err.text, "can hold at most 0"));
    assert_int_equal(phx_alloc_request_cancel(s->a, "g", "4"), 0);

    /* agent 0 runs a task of no memory, agent 1 one of 1 GiB */
    for (size_t i = 0; i < s->ntasks; i++)
        if (s->tasks[i].live)
            phx_allocsim_end_task(s, &s->tasks[i]);
    first = phx_allocsim_cycle(s);
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].fw, "b") == 0 && s->offers[i].live) {
            assert_true(phx_allocsim_use(s, &s->offers[i], 1,
                                         s->offers[i].agent == 0 ? 0 : GiB, 0));
        }
    sh = (phx_alloc_shape_t){
        .nbundles = 1, .cores = 1, .kind = PHX_ALLOC_BUNDLE_ANY, .whole_mem = true};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "m", &sh, 10, 0, s->now, NULL),
                     0);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "m"), 1);
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, "m") == 0) {
            assert_int_equal(s->offers[i].agent, 0);
            assert_int_equal(offer_mem(s, &s->offers[i]), 8 * GiB);
            phx_allocsim_decline(s, &s->offers[i], 0);
        }
    sh.whole_mem = false;
    sh.whole_agent = true;
    assert_int_equal(phx_alloc_request_add(s->a, "g", "w", &sh, 10, 0, s->now, NULL),
                     0);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "w"), 0);
    for (size_t i = 0; i < s->ntasks; i++)
        if (s->tasks[i].live && s->tasks[i].agent == 1)
            phx_allocsim_end_task(s, &s->tasks[i]);
    first = phx_allocsim_cycle(s);
    assert_int_equal(gang_offers(s, first, "w"), 1);
    for (size_t i = first; i < s->noffers; i++)
        if (strcmp(s->offers[i].req, "w") == 0) {
            assert_int_equal(s->offers[i].agent, 1);
            assert_int_equal(
                phx_topo_coreset_count(phx_topo_grant_cores(s->offers[i].grant)), 4);
        }
    phx_allocsim_destroy(s);
}

static void test_request_oversize_refused(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(2, "pack:2 numa:2 core:4 pu:1");
    phx_allocsim_framework(s, "g", NULL);
    phx_error_t err = {{0}};
    /* 2 agents × 4 domains × 4 cores: 8 NUMA bundles of 4, 4 socket bundles
     * of 8, no bundle of 9 cores anywhere. */
    phx_alloc_shape_t sh = {
        .nbundles = 9, .cores = 4, .mem = 0, .kind = PHX_ALLOC_BUNDLE_NUMA};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "big", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "at most 8"));
    sh = (phx_alloc_shape_t){
        .nbundles = 1, .cores = 5, .mem = 0, .kind = PHX_ALLOC_BUNDLE_NUMA};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "wide", &sh, 1, 0, s->now, &err),
                     -1);
    sh = (phx_alloc_shape_t){
        .nbundles = 4, .cores = 8, .mem = 0, .kind = PHX_ALLOC_BUNDLE_SOCKET};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "ok", &sh, 1, 0, s->now, &err),
                     0);
    sh = (phx_alloc_shape_t){
        .nbundles = 1, .cores = 17, .mem = 0, .kind = PHX_ALLOC_BUNDLE_ANY};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "any", &sh, 1, 0, s->now, &err),
                     -1);
    sh = (phx_alloc_shape_t){
        .nbundles = 1, .cores = 1, .mem = 17 * GiB * 4, .kind = PHX_ALLOC_BUNDLE_ANY};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "mem", &sh, 1, 0, s->now, &err),
                     -1);
    sh = (phx_alloc_shape_t){
        .nbundles = 0, .cores = 1, .mem = 0, .kind = PHX_ALLOC_BUNDLE_ANY};
    assert_int_equal(phx_alloc_request_add(s->a, "g", "zero", &sh, 1, 0, s->now, &err),
                     -1);
    assert_int_equal(errno, EINVAL);
    /* The empty cluster satisfies "ok" in the first pass: 4 socket bundles
     * on 2 agents, one offer per agent. */
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 2);
    assert_string_equal(s->offers[first].req, "ok");
    assert_string_equal(s->offers[first + 1].req, "ok");
    phx_allocsim_destroy(s);
}

int main(void)
{
    /* Deterministic by default; PHX_TEST_SEED explores other sequences. */
    if (getenv("PHX_TEST_SEED"))
        phx_allocsim_seed((unsigned)strtoul(getenv("PHX_TEST_SEED"), NULL, 10));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gang_request_no_starvation),
        cmocka_unit_test(test_release_by_unknown_and_enforced),
        cmocka_unit_test(test_request_cancel_and_expiry),
        cmocka_unit_test(test_request_oversize_refused),
        cmocka_unit_test(test_request_per_socket_and_agents),
        cmocka_unit_test(test_request_min_agents),
        cmocka_unit_test(test_request_max_agents),
        cmocka_unit_test(test_request_agent_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
