/* The string hash map against a simple reference over random operations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hmap.h"

#define KEYS 500

static void test_random_against_reference(void **state)
{
    (void)state;
    static int values[KEYS];
    void *ref[KEYS] = {0};
    phx_hmap_t *m = phx_hmap_create();
    assert_non_null(m);
    srand(7);
    size_t live = 0;
    for (int step = 0; step < 20000; step++) {
        int k = rand() % KEYS;
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        switch (rand() % 3) {
        case 0:
            assert_int_equal(phx_hmap_put(m, key, &values[k]), 0);
            live += ref[k] == NULL;
            ref[k] = &values[k];
            break;
        case 1:
            assert_ptr_equal(phx_hmap_del(m, key), ref[k]);
            live -= ref[k] != NULL;
            ref[k] = NULL;
            break;
        default: assert_ptr_equal(phx_hmap_get(m, key), ref[k]);
        }
        assert_int_equal(phx_hmap_count(m), live);
    }
    size_t pos = 0, seen = 0;
    const char *key;
    void *value;
    while (phx_hmap_next(m, &pos, &key, &value)) {
        int k = atoi(key + 1);
        assert_ptr_equal(ref[k], value);
        seen++;
    }
    assert_int_equal(seen, live);
    phx_hmap_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
