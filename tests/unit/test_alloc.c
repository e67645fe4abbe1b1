/* The master's allocator: DRF with weights, offers never doubled, filters,
 * suppress/revive, agents coming and going; gang requests are in
 * test_alloc_gang.c.  Frameworks are simulated (tests/unit/support/allocsim.h).
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

/* ---- DRF ---- */

/* Three frameworks with weights 1:1:2 and endless demand for 1-core tasks
 * of 10 to 30 s on 8 × 16 cores: every offered core becomes a task, so the
 * cluster stays full and each core that frees goes to the framework then
 * furthest below its weighted share.  Measured over the last 200 of 600
 * passes,
 * the weight-2 framework holds twice the share of each other one.  A task
 * ending frees one core for the framework that is then furthest below its
 * weighted share, so each share moves by about one core (1/128 = 0.8%) around
 * its target (25%, 25%, 50%): the averages sit within a few percent of the
 * ratios; 10% tolerance leaves room for the churn and still fails badly if
 * weights were ignored (ratio 1) or inverted. */
static void test_drf_weights_converge(void **state)
{
    (void)state;
    phx_allocsim_t *s =
        phx_allocsim_create(8, "pack:1 numa:1(memory=16GiB) core:16 pu:1");
    phx_error_t err;
    assert_int_equal(phx_alloc_role_set_weight(s->a, "big", 2.0, &err), 0);
    phx_allocsim_framework(s, "a", "small");
    phx_allocsim_framework(s, "b", "small");
    phx_allocsim_framework(s, "c", "big");
    double sum[3] = {0};
    const char *ids[3] = {"a", "b", "c"};
    for (int p = 0; p < 600; p++) {
        phx_allocsim_end_tasks(s);
        size_t first = phx_allocsim_cycle(s);
        for (size_t i = first; i < s->noffers; i++) {
            while (phx_allocsim_launch(s, &s->offers[i], 1, GiB / 2,
                                       s->now + 10 + phx_allocsim_rnd(21)))
                ;
            phx_allocsim_finish(s, &s->offers[i]);
        }
        if (p >= 400)
            for (int f = 0; f < 3; f++)
                sum[f] += phx_allocsim_share(s, ids[f]);
        s->now += 1;
    }
    double a = sum[0] / 200, b = sum[1] / 200, c = sum[2] / 200;
    print_message("shares: a %.3f b %.3f c %.3f (c/a %.2f, c/b %.2f)\n", a, b, c, c / a,
                  c / b);
    assert_true(a > 0.2 && b > 0.2); /* the cluster is busy */
    assert_true(fabs(a / b - 1.0) < 0.10);
    assert_true(fabs(c / a - 2.0) < 0.20);
    assert_true(fabs(c / b - 2.0) < 0.20);
    /* Weighted shares are equal: that is what DRF equalises. */
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, "c", &fi), 0);
    assert_true(fi.weight == 2.0);
    assert_true(fabs(fi.weighted_share - fi.share / 2) < 1e-12);
    phx_allocsim_destroy(s);
}

/* Lowest weighted share first; ties by framework id. */
static void test_drf_order_and_ties(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(3, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "zeta", NULL);
    phx_allocsim_framework(s, "alpha", NULL);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 3);
    /* Agent 0 goes to alpha (tie at 0, id order), agent 1 to zeta (lower
     * share now), agent 2 to alpha again (tie again). */
    assert_string_equal(s->offers[first].fw, "alpha");
    assert_string_equal(s->offers[first + 1].fw, "zeta");
    assert_string_equal(s->offers[first + 2].fw, "alpha");
    assert_int_equal(s->offers[first].agent, 0);
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, "alpha", &fi), 0);
    assert_int_equal(fi.offered_cores, 8);
    assert_true(fabs(fi.share - 8.0 / 12.0) < 1e-9);
    assert_true(fabs(fi.weighted_share - 8.0 / 12.0) < 1e-9);
    /* Nothing changed: nothing pending, a pass offers nothing. */
    assert_false(phx_alloc_pending(s->a, s->now));
    assert_int_equal(phx_alloc_cycle(s->a, s->now, phx_allocsim_on_offer, s), 0);
    phx_allocsim_destroy(s);
}

/* ---- safety: nothing offered twice ---- */

/* Random sequences of passes, declines (with and without filters), partial
 * accepts, task ends, suppress/revive and gang requests on agents with
 * several NUMA domains.  The offer callback checks that an offer's cores are
 * neither free nor owned by any live offer or task; after each pass every
 * core of every agent has exactly one owner (free, an offer, a task, or the
 * hold) and memory adds up. */
static void test_never_offered_twice(void **state)
{
    (void)state;
    phx_allocsim_t *s =
        phx_allocsim_create(6, "pack:2 numa:2(memory=8GiB) core:4 pu:1");
    const char *ids[4] = {"f0", "f1", "f2", "f3"};
    for (int i = 0; i < 4; i++)
        phx_allocsim_framework(s, ids[i], i == 3 ? "gold" : "*");
    phx_alloc_role_set_weight(s->a, "gold", 3, NULL);
    int nreq = 0;
    for (int step = 0; step < 3000; step++) {
        unsigned op = phx_allocsim_rnd(10);
        if (op < 4) {
            phx_allocsim_cycle(s);
        } else if (op < 7) {
            /* Resolve a random live offer. */
            size_t live = 0;
            for (size_t i = 0; i < s->noffers; i++)
                live += s->offers[i].live;
            if (!live)
                continue;
            size_t pick = phx_allocsim_rnd((unsigned)live);
            for (size_t i = 0; i < s->noffers; i++) {
                phx_allocsim_offer_t *o = &s->offers[i];
                if (!o->live || pick--)
                    continue;
                unsigned how = phx_allocsim_rnd(3);
                double end = phx_allocsim_rnd(4) ? s->now + 1 + phx_allocsim_rnd(5) : 0;
                if (o->release_by > 0)
                    end = o->release_by;
                if (how == 0)
                    phx_allocsim_decline(s, o, phx_allocsim_rnd(2) ? 2 : 0);
                else
                    phx_allocsim_use(s, o, 1 + (int)phx_allocsim_rnd(6),
                                     (uint64_t)phx_allocsim_rnd(3) * GiB / 4, end);
                break;
            }
        } else if (op < 8) {
            s->now += 1;
            phx_allocsim_end_tasks(s);
            /* Tasks of unknown end end now and then. */
            for (size_t i = 0; i < s->ntasks; i++)
                if (s->tasks[i].live && s->tasks[i].end == 0 &&
                    phx_allocsim_rnd(8) == 0)
                    phx_allocsim_end_task(s, &s->tasks[i]);
        } else if (op < 9) {
            const char *f = ids[phx_allocsim_rnd(4)];
            if (phx_allocsim_rnd(2))
                phx_alloc_suppress(s->a, f);
            else
                phx_alloc_revive(s->a, f);
        } else {
            char id[16];
            snprintf(id, sizeof(id), "r%d", nreq++);
            phx_alloc_shape_t sh = {
                .nbundles = 1 + (int)phx_allocsim_rnd(4),
                .cores = 1 + (int)phx_allocsim_rnd(4),
                .mem = GiB * phx_allocsim_rnd(2),
                .kind = (phx_alloc_bundle_kind_t)phx_allocsim_rnd(3),
                .per_agent = (int)phx_allocsim_rnd(3),
            };
            sh.min_agents = (int)phx_allocsim_rnd((unsigned)sh.nbundles + 1);
            if (phx_allocsim_rnd(2))
                sh.max_agents = sh.min_agents + (int)phx_allocsim_rnd(3);
            if (sh.kind != PHX_ALLOC_BUNDLE_ANY)
                sh.per_socket = (int)phx_allocsim_rnd(2);
            if (phx_allocsim_rnd(4) == 0)
                sh.agent_mem = GiB * (1 + phx_allocsim_rnd(8));
            sh.whole_mem = phx_allocsim_rnd(8) == 0;
            sh.whole_agent = phx_allocsim_rnd(8) == 0;
            phx_error_t err;
            phx_alloc_request_add(s->a, ids[phx_allocsim_rnd(4)], id, &sh, 10,
                                  phx_allocsim_rnd(2) ? s->now + 5 : 0, s->now, &err);
        }
        phx_allocsim_check(s);
    }
    phx_allocsim_destroy(s);
}

/* ---- filters, suppress, revive ---- */

static void test_decline_filter_expires(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(1, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "a", NULL);
    phx_allocsim_framework(s, "b", NULL);
    size_t i = phx_allocsim_cycle(s);
    assert_string_equal(s->offers[i].fw, "a");
    phx_allocsim_decline(s, &s->offers[i], PHX_ALLOC_REFUSE_DEFAULT);
    assert_true(phx_alloc_pending(s->a, s->now));
    i = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - i, 1);
    assert_string_equal(s->offers[i].fw, "b"); /* a is filtered */
    phx_allocsim_decline(s, &s->offers[i], 10);
    i = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers, i); /* both filtered: nothing */
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, "a", &fi), 0);
    assert_int_equal(fi.nfilters, 1);
    /* The master sets its timer from the next expiry. */
    assert_true(phx_alloc_next_expiry(s->a) == 1000 + PHX_ALLOC_REFUSE_DEFAULT);
    s->now = 1004.9;
    assert_false(phx_alloc_pending(s->a, s->now));
    assert_int_equal(phx_alloc_cycle(s->a, s->now, phx_allocsim_on_offer, s), 0);
    s->now = 1005;
    assert_true(phx_alloc_pending(s->a, s->now));
    i = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - i, 1);
    assert_string_equal(s->offers[i].fw, "a");
    assert_int_equal(phx_alloc_framework_info(s->a, "a", &fi), 0);
    assert_int_equal(fi.nfilters, 0);
    assert_true(phx_alloc_next_expiry(s->a) == 1010);
    phx_allocsim_destroy(s);
}

static void test_suppress_revive(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(1, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "a", NULL);
    phx_allocsim_framework(s, "b", NULL);
    assert_int_equal(phx_alloc_suppress(s->a, "a"), 0);
    size_t i = phx_allocsim_cycle(s);
    assert_string_equal(s->offers[i].fw, "b");
    phx_allocsim_decline(s, &s->offers[i], 0);
    i = phx_allocsim_cycle(s);
    assert_string_equal(s->offers[i].fw, "b"); /* a still suppressed */
    phx_allocsim_decline(s, &s->offers[i], 60);
    i = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers, i); /* b filtered, a suppressed */
    /* Revive: a gets offers again and b's filter is gone after b revives. */
    assert_int_equal(phx_alloc_revive(s->a, "a"), 0);
    assert_true(phx_alloc_pending(s->a, s->now));
    i = phx_allocsim_cycle(s);
    assert_string_equal(s->offers[i].fw, "a");
    phx_allocsim_decline(s, &s->offers[i], 60);
    phx_alloc_framework_info_t fi;
    assert_int_equal(phx_alloc_framework_info(s->a, "b", &fi), 0);
    assert_int_equal(fi.nfilters, 1);
    assert_int_equal(phx_alloc_revive(s->a, "b"), 0);
    assert_int_equal(phx_alloc_framework_info(s->a, "b", &fi), 0);
    assert_int_equal(fi.nfilters, 0);
    i = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - i, 1);
    assert_string_equal(s->offers[i].fw, "b");
    /* Deactivated frameworks get nothing; activation revives. */
    phx_allocsim_decline(s, &s->offers[i], 0);
    assert_int_equal(phx_alloc_framework_deactivate(s->a, "b"), 0);
    i = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers, i); /* a filtered, b inactive */
    assert_int_equal(phx_alloc_framework_activate(s->a, "b"), 0);
    i = phx_allocsim_cycle(s);
    assert_string_equal(s->offers[i].fw, "b");
    assert_int_equal(phx_alloc_suppress(s->a, "nobody"), -1);
    assert_int_equal(errno, ENOENT);
    phx_allocsim_destroy(s);
}

/* ---- agents ---- */

/* Agents come and go; unavailable agents are not offered nor counted. */
static void test_agents_lifecycle(void **state)
{
    (void)state;
    phx_allocsim_t *s = phx_allocsim_create(4, "pack:1 numa:1 core:4 pu:1");
    phx_allocsim_framework(s, "a", NULL);
    int64_t cores;
    phx_alloc_totals(s->a, &cores, NULL);
    assert_int_equal(cores, 16);
    assert_int_equal(phx_alloc_agent_set_available(s->a, 2, false), 0);
    phx_alloc_totals(s->a, &cores, NULL);
    assert_int_equal(cores, 12);
    size_t first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 3);
    for (size_t i = first; i < s->noffers; i++)
        assert_int_not_equal(s->offers[i].agent, 2);
    /* Offers on a removed agent stop counting in the share. */
    phx_allocsim_offer_t *o = &s->offers[first];
    assert_int_equal(o->agent, 0);
    assert_int_equal(phx_alloc_agent_remove(s->a, 0), 0);
    phx_alloc_framework_info_t fi;
    phx_alloc_framework_info(s->a, "a", &fi);
    assert_int_equal(fi.offered_cores, 8);
    phx_topo_free_release(s->free[0], o->grant, NULL);
    phx_topo_grant_destroy(o->grant);
    o->live = false;
    assert_int_equal(phx_alloc_agent_remove(s->a, 0), -1);
    phx_error_t err;
    assert_int_equal(phx_alloc_agent_add(s->a, 0, s->free[0], &err), 0);
    assert_int_equal(phx_alloc_agent_add(s->a, 0, s->free[0], &err), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(phx_alloc_agent_set_available(s->a, 2, true), 0);
    first = phx_allocsim_cycle(s);
    assert_int_equal(s->noffers - first, 2); /* agents 0 and 2 */
    /* Many agents added and removed: the id map stays right. */
    phx_topo_free_t *extra[64];
    for (int i = 0; i < 64; i++) {
        extra[i] = phx_topo_free_create(s->topo);
        assert_int_equal(phx_alloc_agent_add(s->a, 100 + i * 7, extra[i], &err), 0);
    }
    for (int i = 0; i < 64; i += 2)
        assert_int_equal(phx_alloc_agent_remove(s->a, 100 + i * 7), 0);
    for (int i = 0; i < 64; i++) {
        phx_alloc_agent_info_t ai;
        assert_int_equal(phx_alloc_agent_info(s->a, 100 + i * 7, &ai), i % 2 ? 0 : -1);
    }
    for (int i = 1; i < 64; i += 2)
        assert_int_equal(phx_alloc_agent_remove(s->a, 100 + i * 7), 0);
    for (int i = 0; i < 64; i++)
        phx_topo_free_destroy(extra[i]);
    /* A framework's removal drops its requests and bad input is refused. */
    assert_int_equal(phx_alloc_framework_add(s->a, "a", NULL, &err), -1);
    assert_int_equal(phx_alloc_role_set_weight(s->a, "x", 0, &err), -1);
    assert_int_equal(phx_alloc_role_set_weight(s->a, "x", -1, &err), -1);
    phx_allocsim_destroy(s);
}

int main(void)
{
    /* Deterministic by default; PHX_TEST_SEED explores other sequences. */
    if (getenv("PHX_TEST_SEED"))
        phx_allocsim_seed((unsigned)strtoul(getenv("PHX_TEST_SEED"), NULL, 10));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drf_weights_converge),
        cmocka_unit_test(test_drf_order_and_ties),
        cmocka_unit_test(test_never_offered_twice),
        cmocka_unit_test(test_decline_filter_expires),
        cmocka_unit_test(test_suppress_revive),
        cmocka_unit_test(test_agents_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
