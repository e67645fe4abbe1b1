/* The queue of a step's input, the origin's credit window and the agent's
 * input budget (daemons/agent/step_inq.c): bytes are kept from the slowest
 * open reader on, in order and without gaps; the window lets at most
 * PHX_STEP_INPUT_WINDOW bytes be sent past the slowest agent's
 * acknowledgement, and no more than each agent allows; the budget bounds
 * what all steps together hold, one chunk per step always allowed. */
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
    uint64_t limit[2] = {UINT64_MAX, UINT64_MAX}; /* as old agents: no limit */
    phx_step_window_t w = {.n = 2, .acked = acked, .limit = limit};
    assert_true(phx_step_window_room(&w, PHX_STEP_INPUT_WINDOW));
    assert_false(phx_step_window_room(&w, PHX_STEP_INPUT_WINDOW + 1));
    w.sent = PHX_STEP_INPUT_WINDOW - 100;
    assert_true(phx_step_window_room(&w, 100));
    assert_false(phx_step_window_room(&w, 101));
    /* the fast agent's ack is not enough: the slowest counts */
    assert_int_equal(phx_step_window_ack(&w, 0, w.sent, 0), 0);
    assert_false(phx_step_window_room(&w, 101));
    assert_int_equal(phx_step_window_ack(&w, 1, 1000, 0), 0);
    assert_int_equal(phx_step_window_unacked(&w), PHX_STEP_INPUT_WINDOW - 1100);
    assert_true(phx_step_window_room(&w, 1100));
    assert_false(phx_step_window_room(&w, 1101));
    /* an older ack changes nothing; one past what was sent, or of an agent
     * out of range, is refused */
    assert_int_equal(phx_step_window_ack(&w, 1, 10, 0), 0);
    assert_int_equal(acked[1], 1000);
    assert_int_equal(phx_step_window_ack(&w, 1, w.sent + 1, 0), -1);
    assert_int_equal(phx_step_window_ack(&w, 2, 0, 0), -1);
    assert_int_equal(phx_step_window_ack(&w, -1, 0, 0), -1);
    /* no other agent: always room */
    phx_step_window_t none = {0};
    none.sent = 1u << 30;
    assert_true(phx_step_window_room(&none, PHX_STEP_INPUT_CHUNK));
}

/* Each agent says how far it lets the origin send: a chunk until its first
 * acknowledgement, then what it said (never more than the window). */
static void test_window_limit(void **state)
{
    (void)state;
    uint64_t acked[2] = {0, 0};
    uint64_t limit[2] = {PHX_STEP_INPUT_CHUNK, PHX_STEP_INPUT_CHUNK};
    phx_step_window_t w = {.n = 2, .acked = acked, .limit = limit};
    assert_true(phx_step_window_room(&w, PHX_STEP_INPUT_CHUNK));
    w.sent = PHX_STEP_INPUT_CHUNK;
    assert_false(phx_step_window_room(&w, 1));
    /* agent 0 took it and lets 3 chunks more come; agent 1 only one */
    assert_int_equal(phx_step_window_ack(&w, 0, w.sent, 3 * PHX_STEP_INPUT_CHUNK), 0);
    assert_false(phx_step_window_room(&w, 1)); /* agent 1 said nothing yet */
    assert_int_equal(phx_step_window_ack(&w, 1, w.sent, PHX_STEP_INPUT_CHUNK), 0);
    assert_true(phx_step_window_room(&w, PHX_STEP_INPUT_CHUNK));
    assert_false(phx_step_window_room(&w, PHX_STEP_INPUT_CHUNK + 1));
    /* a lower limit than one said changes nothing (it cannot be taken back) */
    assert_int_equal(phx_step_window_ack(&w, 0, w.sent, PHX_STEP_INPUT_CHUNK / 2), 0);
    assert_int_equal(limit[0], 4 * PHX_STEP_INPUT_CHUNK);
    /* never more than the window; 0 (an agent that does not say) is the
     * whole window */
    assert_int_equal(phx_step_window_ack(&w, 0, w.sent, 1u << 30), 0);
    assert_int_equal(limit[0], w.sent + PHX_STEP_INPUT_WINDOW);
    assert_int_equal(phx_step_window_ack(&w, 1, w.sent, 0), 0);
    assert_int_equal(limit[1], w.sent + PHX_STEP_INPUT_WINDOW);
    assert_true(phx_step_window_room(&w, PHX_STEP_INPUT_WINDOW));
    assert_false(phx_step_window_room(&w, PHX_STEP_INPUT_WINDOW + 1));
}

/* The queue's buffer (what the budget charges) follows what it holds: gone
 * when empty, smaller when mostly read. */
static void test_queue_cap_follows_held(void **state)
{
    (void)state;
    phx_step_inq_t q = {0};
    static uint8_t chunk[PHX_STEP_INPUT_CHUNK];
    uint64_t off = 0;
    for (int i = 0; i < 16; i++, off += sizeof(chunk))
        assert_int_equal(phx_step_inq_push(&q, off, chunk, sizeof(chunk), false), 0);
    assert_int_equal(q.cap, PHX_STEP_INPUT_LOCAL);
    phx_step_inq_trim(&q, off - 100); /* 100 bytes left of 1 MiB */
    assert_int_equal(q.len, 100);
    assert_int_equal(q.cap, PHX_STEP_INPUT_CHUNK);
    size_t n;
    assert_non_null(phx_step_inq_at(&q, off - 100, &n));
    assert_int_equal(n, 100);
    phx_step_inq_trim(&q, off);
    assert_int_equal(q.cap, 0);
    assert_null(q.buf);
    phx_step_inq_clear(&q);
}

/* The agent's budget: the sum of every holder's charge; past the limit
 * only a step holding nothing may take a chunk; a receiving agent lets a
 * step's origin send what is left, between a chunk and the window. */
static void test_budget(void **state)
{
    (void)state;
    phx_step_budget_t b = {.limit = 16u << 20};
    uint64_t charge[40] = {0};
    /* 20 steps whose ranks read nothing take chunks while there is room,
     * each up to its own bound (PHX_STEP_INPUT_LOCAL) */
    for (int i = 0; i < 20; i++)
        while (charge[i] + PHX_STEP_INPUT_CHUNK <= PHX_STEP_INPUT_LOCAL &&
               phx_step_budget_room(&b, charge[i], PHX_STEP_INPUT_CHUNK))
            phx_step_budget_charge(&b, &charge[i], charge[i] + PHX_STEP_INPUT_CHUNK);
    /* the first 16 hold 1 MiB each; the others got their one chunk: the
     * agent holds at most the budget and a chunk per step */
    for (int i = 0; i < 16; i++)
        assert_int_equal(charge[i], PHX_STEP_INPUT_LOCAL);
    for (int i = 16; i < 20; i++)
        assert_int_equal(charge[i], PHX_STEP_INPUT_CHUNK);
    assert_int_equal(b.used, (16u << 20) + 4 * PHX_STEP_INPUT_CHUNK);
    /* full: a step holding something waits; one holding nothing may take
     * a chunk (and then waits) */
    assert_false(phx_step_budget_room(&b, charge[0], 1));
    assert_false(phx_step_budget_room(&b, charge[16], 1));
    assert_true(phx_step_budget_room(&b, charge[20], PHX_STEP_INPUT_CHUNK));
    /* a step whose ranks read everything holds nothing: it may take its
     * next chunk, and charges going down free room for the others */
    phx_step_budget_charge(&b, &charge[16], 0);
    assert_true(phx_step_budget_room(&b, charge[16], PHX_STEP_INPUT_CHUNK));
    for (int i = 17; i < 20; i++)
        phx_step_budget_charge(&b, &charge[i], 0);
    phx_step_budget_charge(&b, &charge[0], 0);
    assert_int_equal(b.used, 15u << 20);
    assert_true(phx_step_budget_room(&b, charge[1], PHX_STEP_INPUT_CHUNK));
    /* grants: what is left besides the others, at most the window, at least
     * a chunk */
    assert_int_equal(phx_step_budget_grant(&b, charge[17]), PHX_STEP_INPUT_WINDOW);
    phx_step_budget_charge(&b, &charge[17], (1u << 20) - 4096);
    assert_int_equal(phx_step_budget_grant(&b, charge[17]), PHX_STEP_INPUT_WINDOW);
    assert_int_equal(phx_step_budget_grant(&b, charge[18]),
                     4096 < PHX_STEP_INPUT_CHUNK ? PHX_STEP_INPUT_CHUNK : 4096);
    phx_step_budget_charge(&b, &charge[17], 0);
    phx_step_budget_charge(&b, &charge[18], (1u << 20) - 200000);
    assert_int_equal(phx_step_budget_grant(&b, 0), 200000);
    assert_int_equal(phx_step_budget_grant(&b, charge[18]), PHX_STEP_INPUT_WINDOW);
    /* over the limit (chunks of steps that held nothing): still a chunk */
    phx_step_budget_charge(&b, &charge[19], 3u << 20);
    assert_int_equal(phx_step_budget_grant(&b, 0), PHX_STEP_INPUT_CHUNK);
    /* every charge back to 0: nothing used */
    for (int i = 0; i < 40; i++)
        phx_step_budget_charge(&b, &charge[i], 0);
    assert_int_equal(b.used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_in_order),
        cmocka_unit_test(test_queue_bounded_by_unread),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_window_limit),
        cmocka_unit_test(test_queue_cap_follows_held),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
