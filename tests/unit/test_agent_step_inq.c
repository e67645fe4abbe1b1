/* The queue of a step's input and the origin's credit window
 * (daemons/agent/step_inq.c): bytes are kept from the slowest open reader
 * on, in order and without gaps; the window lets at most
 * PHX_STEP_INPUT_WINDOW bytes be sent past the slowest agent's
 * acknowledgement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "daemons/agent/step_inq.c"

static void test_queue_in_order(void **state)
{
    (void)state;
    phx_step_inq_t q = {0};
    size_t n;
    assert_int_equal(phx_step_inq_push(&q, 0, "hello ", 6, false), 0);
    assert_int_equal(phx_step_inq_push(&q, 6, "world", 5, false), 0);
    assert_int_equal(phx_step_inq_end(&q), 11);
    /* a gap or an overlap is refused, nothing kept */
    assert_int_equal(phx_step_inq_push(&q, 12, "x", 1, false), -1);
    assert_int_equal(phx_step_inq_push(&q, 10, "x", 1, false), -1);
    assert_int_equal(phx_step_inq_end(&q), 11);
    const uint8_t *p = phx_step_inq_at(&q, 6, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "world", 5);
    /* readers at 3 and 8: what is below 3 goes */
    phx_step_inq_trim(&q, 3);
    assert_int_equal(q.base, 3);
    assert_int_equal(q.len, 8);
    p = phx_step_inq_at(&q, 3, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "lo world", 8);
    assert_null(phx_step_inq_at(&q, 2, &n)); /* freed */
    assert_int_equal(n, 0);
    assert_null(phx_step_inq_at(&q, 11, &n)); /* nothing past the end yet */
    /* more after a trim: still in order */
    assert_int_equal(phx_step_inq_push(&q, 11, "!", 1, true), 0);
    p = phx_step_inq_at(&q, 9, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "ld!", 3);
    /* after EOF nothing more */
    assert_int_equal(phx_step_inq_push(&q, 12, "x", 1, false), -1);
    assert_true(q.eof);
    phx_step_inq_trim(&q, 100); /* clamped: all of it */
    assert_int_equal(q.len, 0);
    assert_int_equal(q.base, 12);
    phx_step_inq_clear(&q);
}

/* Many chunks through a reader that keeps up: memory stays at about what
 * is unread, not what passed. */
static void test_queue_bounded_by_unread(void **state)
{
    (void)state;
    phx_step_inq_t q = {0};
    static uint8_t chunk[PHX_STEP_INPUT_CHUNK];
    uint64_t off = 0;
    for (int i = 0; i < 1000; i++) {
        memset(chunk, i & 0xff, sizeof(chunk));
        assert_int_equal(phx_step_inq_push(&q, off, chunk, sizeof(chunk), false), 0);
        off += sizeof(chunk);
        size_t n;
        const uint8_t *p = phx_step_inq_at(&q, off - sizeof(chunk) / 2, &n);
        assert_int_equal(n, sizeof(chunk) / 2);
        assert_int_equal(p[0], i & 0xff);
        phx_step_inq_trim(&q, off - sizeof(chunk) / 2); /* half a chunk behind */
        assert_true(q.cap <= 4 * PHX_STEP_INPUT_CHUNK);
    }
    phx_step_inq_clear(&q);
}

static void test_window(void **state)
{
    (void)state;
    uint64_t acked[2] = {0, 0};
    phx_step_window_t w = {.n = 2, .acked = acked};
    assert_true(phx_step_window_room(&w, PHX_STEP_INPUT_WINDOW));
    assert_false(phx_step_window_room(&w, PHX_STEP_INPUT_WINDOW + 1));
    w.sent = PHX_STEP_INPUT_WINDOW - 100;
    assert_true(phx_step_window_room(&w, 100));
    assert_false(phx_step_window_room(&w, 101));
    /* the fast agent's ack is not enough: the slowest counts */
    assert_int_equal(phx_step_window_ack(&w, 0, w.sent), 0);
    assert_false(phx_step_window_room(&w, 101));
    assert_int_equal(phx_step_window_ack(&w, 1, 1000), 0);
    assert_int_equal(phx_step_window_unacked(&w), PHX_STEP_INPUT_WINDOW - 1100);
    assert_true(phx_step_window_room(&w, 1100));
    assert_false(phx_step_window_room(&w, 1101));
    /* an older ack changes nothing; one past what was sent, or of an agent
     * out of range, is refused */
    assert_int_equal(phx_step_window_ack(&w, 1, 10), 0);
    assert_int_equal(acked[1], 1000);
    assert_int_equal(phx_step_window_ack(&w, 1, w.sent + 1), -1);
    assert_int_equal(phx_step_window_ack(&w, 2, 0), -1);
    assert_int_equal(phx_step_window_ack(&w, -1, 0), -1);
    /* no other agent: always room */
    phx_step_window_t none = {0};
    none.sent = 1u << 30;
    assert_true(phx_step_window_room(&none, PHX_STEP_INPUT_CHUNK));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_in_order),
        cmocka_unit_test(test_queue_bounded_by_unread),
        cmocka_unit_test(test_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
