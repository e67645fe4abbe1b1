/* batchd: multifactor priority and fair share.
 *
 * Unit tests cannot link daemon objects, so the source is included. */
#include "daemons/batchd/priority.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#define DAY 86400

static void test_fairshare_factor(void **state)
{
    (void)state;
    assert_float_equal(phx_fairshare_factor(0, 0.5), 1.0, 1e-12);
    assert_float_equal(phx_fairshare_factor(0.5, 0.5), 0.5, 1e-12);
    assert_float_equal(phx_fairshare_factor(1.0, 0.5), 0.25, 1e-12);
    assert_float_equal(phx_fairshare_factor(0.25, 0.5), 0.7071067811865476, 1e-12);
    assert_float_equal(phx_fairshare_factor(0.3, 0), 0.0, 1e-12);
}

static void test_usage_decay(void **state)
{
    (void)state;
    phx_usage_t u = {0};
    phx_usage_add(&u, 1000, 0, 7 * DAY);
    assert_float_equal(phx_usage_value(&u, 7 * DAY, 7 * DAY), 500, 1e-9);
    assert_float_equal(phx_usage_value(&u, 14 * DAY, 7 * DAY), 250, 1e-9);
    assert_float_equal(phx_usage_value(&u, 14 * DAY, 0), 1000, 1e-9); /* no decay */
    phx_usage_add(&u, 100, 7 * DAY, 7 * DAY);
    assert_float_equal(u.value, 600, 1e-9);
    assert_int_equal(u.at, 7 * DAY);
    /* A late report does not move time backwards. */
    phx_usage_add(&u, 10, DAY, 7 * DAY);
    assert_float_equal(u.value, 610, 1e-9);
    assert_int_equal(u.at, 7 * DAY);
}

static void test_fairshare_compute(void **state)
{
    (void)state;
    phx_fs_party_t p[3] = {
        {.shares = 1, .usage = {.value = 300, .at = 0}},
        {.shares = 1, .usage = {.value = 100, .at = 0}},
        {.shares = 2, .usage = {.value = 0, .at = 0}},
    };
    phx_fairshare_compute(p, 3, 0, 7 * DAY);
    /* U = 0.75, 0.25, 0; S = 0.25, 0.25, 0.5 */
    assert_float_equal(p[0].factor, exp2(-3.0), 1e-12);
    assert_float_equal(p[1].factor, 0.5, 1e-12);
    assert_float_equal(p[2].factor, 1.0, 1e-12);
    assert_true(p[0].factor < p[1].factor && p[1].factor < p[2].factor);
    /* Decay: the heavy user's old usage fades against the other's new. */
    phx_fs_party_t q[2] = {
        {.shares = 1, .usage = {.value = 1000, .at = 0}},
        {.shares = 1, .usage = {.value = 400, .at = 28 * DAY}},
    };
    phx_fairshare_compute(q, 2, 28 * DAY,
                          7 * DAY); /* 1000 -> 62.5 after 4 half-lives */
    assert_true(q[0].factor > q[1].factor);
    assert_float_equal(q[0].factor, exp2(-(62.5 / 462.5) / 0.5), 1e-12);
    /* Nobody used anything: everyone is at 1. */
    phx_fs_party_t r[2] = {{.shares = 1}, {.shares = 3}};
    phx_fairshare_compute(r, 2, 0, 7 * DAY);
    assert_float_equal(r[0].factor, 1.0, 1e-12);
    assert_float_equal(r[1].factor, 1.0, 1e-12);
}

static void test_priority_factors(void **state)
{
    (void)state;
    phx_prio_weights_t w;
    phx_prio_weights_default(&w);
    assert_int_equal(w.max_age, 7 * DAY);
    assert_int_equal(w.half_life, 7 * DAY);
    w = (phx_prio_weights_t){.age = 1000,
                             .fairshare = 10000,
                             .job_size = 500,
                             .partition = 2000,
                             .qos = 4000,
                             .max_age = 10 * DAY};
    phx_prio_job_t j = {.id = 1,
                        .eligible_time = 0,
                        .cpus = 64,
                        .fairshare = 0.5,
                        .partition = 0.5,
                        .qos = 0.25};
    /* age 1/2, fs 1/2, size 64/256 */
    assert_int_equal(phx_priority_compute(&w, &j, 256, 5 * DAY),
                     500 + 5000 + 125 + 1000 + 1000);
    /* Age stops at max_age. */
    assert_int_equal(phx_priority_compute(&w, &j, 256, 10 * DAY),
                     phx_priority_compute(&w, &j, 256, 400 * DAY));
    assert_true(phx_priority_compute(&w, &j, 256, 9 * DAY) <
                phx_priority_compute(&w, &j, 256, 10 * DAY));
    /* Not yet eligible: no age. */
    assert_int_equal(phx_priority_compute(&w, &j, 256, -5), 7625 - 500);
    /* favor_small inverts the size factor. */
    w.favor_small = true;
    assert_int_equal(phx_priority_compute(&w, &j, 256, 5 * DAY), 7625 - 125 + 375);
    w.favor_small = false;
    /* nice lowers, and the result stays >= 1. */
    j.nice = 600;
    assert_int_equal(phx_priority_compute(&w, &j, 256, 5 * DAY), 7625 - 600);
    j.nice = 1000000;
    assert_int_equal(phx_priority_compute(&w, &j, 256, 5 * DAY), 1);
    j.nice = 0;
    /* Factors are clamped to 0..1. */
    j.fairshare = 3;
    j.cpus = 100000;
    assert_int_equal(phx_priority_compute(&w, &j, 256, 5 * DAY),
                     500 + 10000 + 500 + 1000 + 1000);
    /* Huge weights saturate instead of wrapping. */
    w.fairshare = UINT32_MAX;
    w.qos = UINT32_MAX;
    j.fairshare = 1;
    j.qos = 1;
    assert_int_equal(phx_priority_compute(&w, &j, 256, 5 * DAY), UINT32_MAX);
}

/* Fair share orders the queue: the light user's job goes first even when
 * submitted later, until that user's usage overtakes the other's. */
static void test_fairshare_ordering(void **state)
{
    (void)state;
    phx_prio_weights_t w = {
        .age = 1000, .fairshare = 1000, .max_age = 7 * DAY, .half_life = 7 * DAY};
    phx_fs_party_t users[2] = {
        {.shares = 1, .usage = {.value = 9000, .at = 0}}, /* heavy */
        {.shares = 1, .usage = {.value = 1000, .at = 0}}, /* light */
    };
    phx_fairshare_compute(users, 2, 0, w.half_life);
    phx_prio_job_t jobs[2] = {
        {.id = 1,
         .submit_time = 0,
         .eligible_time = 0,
         .cpus = 1,
         .fairshare = users[0].factor},
        {.id = 2,
         .submit_time = 3600,
         .eligible_time = 3600,
         .cpus = 1,
         .fairshare = users[1].factor},
    };
    phx_priority_sort(&w, jobs, 2, 64, 7200);
    assert_int_equal(jobs[0].id, 2);
    assert_int_equal(jobs[1].id, 1);
    /* The light user then runs a lot: fair share turns the order round. */
    phx_usage_add(&users[1].usage, 30000, DAY, w.half_life);
    phx_fairshare_compute(users, 2, DAY, w.half_life);
    assert_true(users[1].factor < users[0].factor);
    for (int i = 0; i < 2; i++)
        jobs[i].fairshare = users[jobs[i].id == 1 ? 0 : 1].factor;
    phx_priority_sort(&w, jobs, 2, 64, DAY);
    assert_int_equal(jobs[0].id, 1);
    assert_int_equal(jobs[1].id, 2);
}

static void test_tie_break_is_total(void **state)
{
    (void)state;
    phx_prio_weights_t w = {.age = 100, .max_age = DAY};
    /* Same priority for all: order by submit time, then id. */
    phx_prio_job_t jobs[6] = {
        {.id = 9, .submit_time = 50, .eligible_time = 0},
        {.id = 3, .submit_time = 50, .eligible_time = 0},
        {.id = 7, .submit_time = 10, .eligible_time = 0},
        {.id = 1, .submit_time = 90, .eligible_time = 0},
        {.id = 5, .submit_time = 10, .eligible_time = 0},
        {.id = 4, .submit_time = 70, .eligible_time = -DAY}, /* older: higher */
    };
    uint64_t want[6] = {4, 5, 7, 3, 9, 1};
    for (int round = 0; round < 20; round++) {
        /* Any input order gives the same queue. */
        for (int i = 5; i > 0; i--) {
            int k = (round * 7 + i * 13) % (i + 1);
            phx_prio_job_t t = jobs[i];
            jobs[i] = jobs[k];
            jobs[k] = t;
        }
        phx_priority_sort(&w, jobs, 6, 0, 0);
        for (int i = 0; i < 6; i++)
            assert_int_equal(jobs[i].id, want[i]);
    }
    assert_int_equal(jobs[0].priority, 100);
    assert_int_equal(jobs[1].priority, 1); /* zero sums clamp to 1, never 0 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fairshare_factor),
        cmocka_unit_test(test_usage_decay),
        cmocka_unit_test(test_fairshare_compute),
        cmocka_unit_test(test_priority_factors),
        cmocka_unit_test(test_fairshare_ordering),
        cmocka_unit_test(test_tie_break_is_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
