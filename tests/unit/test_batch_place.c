/* batchd's topology-aware packing (daemons/batchd/place.c) over offer JSON:
 * tasks stay in one NUMA domain when they fit, else one socket; domains fill
 * before new ones open; --ntasks-per-socket caps; cyclic alternates sockets;
 * exclusive takes every core; no room fails. */
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/bf_fit.c"
#include "daemons/batchd/bf_node.c"
#include "daemons/batchd/pools.c"
#include "daemons/batchd/place.c"
#include "daemons/batchd/gpus.c"
#include "daemons/batchd/gpuspec.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

/* 2 sockets x 2 NUMA x 2 cores: numa n holds cores 2n, 2n+1; socket s holds
 * numa 2s, 2s+1.  free: which cores are free (bit mask). */
static json_t *offer(unsigned free)
{
    json_t *numas = json_array();
    for (int n = 0; n < 4; n++) {
        json_t *cores = json_array();
        for (int c = 2 * n; c < 2 * n + 2; c++)
            if (free & (1u << c))
                json_array_append_new(cores, json_integer(c));
        json_array_append_new(numas, json_pack("{s:i, s:i, s:o, s:I}", "socket", n / 2,
                                               "numa", n, "cores", cores, "mem",
                                               (json_int_t)(1 << 30)));
    }
    return json_pack("{s:{s:s}, s:{s:s}, s:s, s:[{s:s, s:{s:i}}], s:{s:o}}", "id",
                     "value", "o1", "agent_id", "value", "1", "hostname", "n1",
                     "resources", "name", "mem", "scalar", "value", 4096, "topology",
                     "numa", numas);
}

static void check(unsigned free, uint32_t tasks, uint32_t cpt, uint32_t per_socket,
                  bool cyclic, bool whole, int rc, const int *want, uint32_t nwant)
{
    boffer_t o = {0};
    json_t *j = offer(free);
    assert_int_equal(batchd_offer_parse(&o, j), 0);
    int cores[16];
    uint32_t n = 0;
    assert_int_equal(batchd_place(&o, tasks, cpt, per_socket, cyclic, whole, cores, &n),
                     rc);
    if (rc == 0) {
        assert_int_equal(n, nwant);
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(cores[i], want[i]);
    }
    batchd_offer_clear(&o);
    json_decref(j);
}

static void numa_fill(void **state)
{
    (void)state;
    /* numa 0 has one free core (1), numa 1 two: a 1-core task fills numa 0 */
    check(0xFE, 1, 1, 0, false, false, 0, (int[]){1}, 1);
    /* 2-core tasks each in one domain, fullest-that-fits first */
    check(0xFE, 2, 2, 0, false, false, 0, (int[]){2, 3, 4, 5}, 4);
}

static void socket_when_no_domain_fits(void **state)
{
    (void)state;
    /* 3 cores: no domain has 3, socket 0 has 4 */
    check(0xFF, 1, 3, 0, false, false, 0, (int[]){0, 1, 2}, 3);
    /* 5 cores: larger than a socket, spread */
    check(0xFF, 1, 5, 0, false, false, 0, (int[]){0, 1, 2, 3, 4}, 5);
}

static void per_socket_and_cyclic(void **state)
{
    (void)state;
    /* at most one task per socket: the third does not fit */
    check(0xFF, 3, 1, 1, false, false, -1, NULL, 0);
    check(0xFF, 2, 1, 1, false, false, 0, (int[]){0, 4}, 2);
    /* cyclic alternates sockets */
    check(0xFF, 3, 1, 0, true, false, 0, (int[]){0, 4, 1}, 3);
}

static void whole_and_full(void **state)
{
    (void)state;
    check(0xFF, 1, 1, 0, false, true, 0, (int[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    check(0x03, 3, 1, 0, false, false, -1, NULL, 0);
}

/* The count sched.c chooses offers by (batchd_offer_tasks) is exactly what
 * batchd_place can put there: for every free-core set of the offer, task
 * size and per-socket cap, the count places and one more does not; within
 * sockets only, the count places with no task spanning two sockets. */
static void count_is_what_places(void **state)
{
    (void)state;
    for (unsigned free = 0; free < 256; free++)
        for (uint32_t cpt = 1; cpt <= 5; cpt++)
            for (uint32_t cap = 0; cap <= 2; cap++)
                for (int spread = 0; spread <= 1; spread++) {
                    boffer_t o = {0};
                    json_t *j = offer(free);
                    assert_int_equal(batchd_offer_parse(&o, j), 0);
                    uint32_t t = batchd_offer_tasks(&o, cpt, cap, spread);
                    int cores[16];
                    uint32_t n = 0;
                    assert_int_equal(
                        batchd_place(&o, t, cpt, cap, false, false, cores, &n), 0);
                    for (uint32_t k = 0; !spread && k < n; k += cpt)
                        for (uint32_t c = k; c < k + cpt; c++)
                            assert_int_equal(cores[c] / 4, cores[k] / 4);
                    batchd_offer_clear(&o);
                    assert_int_equal(batchd_offer_parse(&o, j), 0);
                    if (spread || cap)
                        assert_int_equal(
                            batchd_place(&o, t + 1, cpt, cap, false, false, cores, &n),
                            -1);
                    batchd_offer_clear(&o);
                    json_decref(j);
                }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numa_fill),
        cmocka_unit_test(socket_when_no_domain_fits),
        cmocka_unit_test(per_socket_and_cyclic),
        cmocka_unit_test(whole_and_full),
        cmocka_unit_test(count_is_what_places),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
