/* A step's STEP_LAUNCH frames (daemons/master/step_launch.c) queued on real
 * agent connections (daemons/master/agent_conn.c, over socketpairs, the
 * loop not run: everything stays queued): the parts common to every agent
 * are held once however many agents there are, each agent's frame is a
 * well-formed sealed frame under its connection's key, and a frame above
 * max_frame is refused, naming the agent, with the parts before it
 * launched and the others not. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemons/master/agent_conn.c"
#include "daemons/master/step_launch.c"

/* What agent_conn.c calls elsewhere in the master: not reached here. */
void phx_sigwait_agent_gone(phx_master_t *m, phx_master_agent_t *a)
{
    (void)m;
    (void)a;
}

void phx_sigwait_done(phx_master_t *m, phx_master_agent_t *a, const json_t *hdr)
{
    (void)m;
    (void)a;
    (void)hdr;
}

void phx_master_agent_set_state(phx_master_t *m, phx_master_agent_t *a,
                                phx_agent_state_t s, const char *why)
{
    (void)m;
    (void)why;
    a->state = s;
}

void phx_master_register(phx_master_conn_t *c, phx_master_t *m, const json_t *hdr)
{
    (void)c;
    (void)m;
    (void)hdr;
}

void phx_step_on_frame(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    (void)m;
    (void)a;
    (void)f;
}

void phx_tasks_on_status(phx_master_t *m, phx_master_agent_t *a, const json_t *hdr)
{
    (void)m;
    (void)a;
    (void)hdr;
}

json_t *phx_master_standby_refusal(const phx_master_t *m, bool http)
{
    (void)m;
    (void)http;
    return json_object();
}

double phx_master_now(void)
{
    return 0;
}

bool phx_step_part_gets_input(const phx_step_t *s, const phx_step_part_t *p)
{
    (void)s;
    (void)p;
    return true;
}

#define NAGENTS  64
#define ENV_SIZE (1u << 20)

static phx_master_agent_t agents[NAGENTS];
static phx_mac_t *keys[NAGENTS];
static int peers[NAGENTS];

phx_master_agent_t *phx_master_agent_find(phx_master_t *m, const char *name)
{
    (void)m;
    for (int i = 0; i < NAGENTS; i++)
        if (agents[i].name && strcmp(agents[i].name, name) == 0)
            return &agents[i];
    return NULL;
}

static size_t heap_used(void)
{
    return mallinfo2().uordblks;
}

/* NAGENTS registered, sealing connections; the step's request and parts
 * (one rank each, origin the last). */
static void setup(phx_master_t *m, size_t max_frame, phx_step_t *s, json_t **req)
{
    memset(m, 0, sizeof(*m));
    m->base = event_base_new();
    assert_non_null(m->base);
    m->max_frame = max_frame;
    m->heartbeat_interval = 60;
    m->heartbeat_missed = 5;
    LIST_INIT(&m->conns);
    memset(s, 0, sizeof(*s));
    s->id = 9;
    snprintf(s->nspace, sizeof(s->nspace), "phx.1.9");
    s->fw_id = strdup("fw");
    s->req = json_integer(5);
    s->size = s->nparts = NAGENTS;
    s->input = PHX_STEP_IN_ALL;
    s->parts = calloc(NAGENTS, sizeof(*s->parts));
    assert_non_null(s->parts);
    for (int i = 0; i < NAGENTS; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct sockaddr_in sin = {.sin_family = AF_INET};
        on_accept(NULL, sv[0], (struct sockaddr *)&sin, sizeof(sin), m);
        peers[i] = sv[1];
        phx_master_conn_t *c = LIST_FIRST(&m->conns);
        assert_non_null(c);
        char hex[PHX_MAC_HEX_LEN + 1];
        unsigned char key[PHX_MAC_KEY_LEN];
        assert_int_equal(phx_master_conn_new_session(c, hex), 0);
        assert_int_equal(phx_mac_from_hex(hex, key, sizeof(key)), 0);
        assert_non_null(keys[i] = phx_mac_create(key, sizeof(key), NULL));
        phx_master_conn_start_sealing(c);
        memset(&agents[i], 0, sizeof(agents[i]));
        agents[i].name = calloc(1, 16);
        snprintf(agents[i].name, 16, "n%d", i);
        phx_master_conn_attach(c, &agents[i]);
        phx_step_part_t *p = &s->parts[i];
        p->agent = strdup(agents[i].name);
        p->task_id = strdup(agents[i].name);
        p->nranks = 1;
        p->ranks = calloc(1, sizeof(int));
        p->ranks[0] = i;
    }
    s->origin = strdup(agents[NAGENTS - 1].name);
    char *big = malloc(ENV_SIZE + 1);
    assert_non_null(big);
    memset(big, 'x', ENV_SIZE);
    big[ENV_SIZE] = '\0';
    *req = json_pack("{s:[s], s:{s:s%}, s:s}", "argv", "app", "env", "BIG", big,
                     (size_t)ENV_SIZE, "cwd", "/");
    free(big);
    assert_non_null(*req);
}

static void teardown(phx_master_t *m, phx_step_t *s, json_t *req)
{
    phx_master_conns_destroy(m);
    event_base_free(m->base);
    for (int i = 0; i < NAGENTS; i++) {
        close(peers[i]);
        phx_mac_destroy(keys[i]);
        free(agents[i].name);
        agents[i].name = NULL;
        free(s->parts[i].agent);
        free(s->parts[i].task_id);
        free(s->parts[i].ranks);
    }
    free(s->parts);
    free(s->origin);
    free(s->fw_id);
    json_decref(s->req);
    json_decref(req);
}

static size_t queued(const phx_master_agent_t *a)
{
    return evbuffer_get_length(bufferevent_get_output(a->conn->bev));
}

/* Agent i's frame, unsealed and checked. */
static void check_frame(int i, size_t max_frame)
{
    struct evbuffer *out = bufferevent_get_output(agents[i].conn->bev);
    size_t len = evbuffer_get_length(out);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    /* the start of a bufferevent's output is frozen: peek, not copy out */
    int n = evbuffer_peek(out, -1, NULL, NULL, 0);
    struct evbuffer_iovec *v = calloc((size_t)n, sizeof(*v));
    assert_non_null(v);
    assert_int_equal(evbuffer_peek(out, -1, NULL, v, n), n);
    for (int k = 0, off = 0; k < n; off += (int)v[k].iov_len, k++)
        memcpy(buf + off, v[k].iov_base, v[k].iov_len);
    free(v);
    phx_frame_t outer, inner;
    phx_error_t err;
    assert_int_equal(phx_wire_decode(buf, len, max_frame, &outer, &err), 0);
    free(buf);
    uint64_t last = 0;
    assert_int_equal(
        phx_wire_unseal(keys[i], PHX_SEAL_M2A, &last, &outer, max_frame, &inner, &err),
        0);
    assert_int_equal(last, 1);
    assert_string_equal(inner.type, "STEP_LAUNCH");
    json_t *h = inner.header;
    assert_int_equal(json_integer_value(json_object_get(h, "node")), i);
    assert_string_equal(json_string_value(json_object_get(h, "task_id")),
                        agents[i].name);
    /* the request's id and input_to: the origin's only */
    assert_int_equal(json_object_get(h, "req") != NULL && i == NAGENTS - 1,
                     i == NAGENTS - 1);
    assert_null(json_object_get(h, "env"));
    json_t *common = json_loadb((const char *)inner.attach, inner.attach_len, 0, NULL);
    assert_non_null(common);
    assert_int_equal(
        json_string_length(json_object_get(json_object_get(common, "env"), "BIG")),
        ENV_SIZE);
    assert_int_equal(json_array_size(json_object_get(common, "nodes")), NAGENTS);
    assert_int_equal(
        json_integer_value(json_array_get(
            json_array_get(json_object_get(common, "ranks"), (size_t)i), 0)),
        i);
    assert_string_equal(json_string_value(json_object_get(common, "origin")),
                        agents[NAGENTS - 1].name);
    json_decref(common);
    phx_frame_clear(&inner);
    phx_frame_clear(&outer);
}

static void test_shared(void **state)
{
    (void)state;
    phx_master_t m;
    phx_step_t s;
    json_t *req;
    size_t max_frame = 4u << 20;
    setup(&m, max_frame, &s, &req);
    size_t before = heap_used();
    phx_error_t err = {{0}};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(phx_step_launch_send(&m, &s, req, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    size_t held = heap_used() - before, wire = 0;
    for (int i = 0; i < NAGENTS; i++) {
        assert_true(s.parts[i].launched);
        wire += queued(&agents[i]);
    }
    /* every agent gets the whole environment; the master holds it once
     * (it held NAGENTS copies: 64 MiB) */
    assert_true(wire > (size_t)NAGENTS * ENV_SIZE);
    print_message("%d agents, %u bytes of env: %zu bytes queued, %zu bytes held, "
                  "%.3f s\n",
                  NAGENTS, ENV_SIZE, wire, held,
                  (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    assert_true(held < ENV_SIZE + NAGENTS * 4096u);
    for (int i = 0; i < NAGENTS; i++)
        check_frame(i, max_frame);
    teardown(&m, &s, req);
    /* the last connection gone releases the shared text */
    assert_true(heap_used() < before + 4096u);
}

/* A frame above max_frame: refused, naming its agent, nothing queued for
 * it or after it. */
static void test_too_big(void **state)
{
    (void)state;
    phx_master_t m;
    phx_step_t s;
    json_t *req;
    setup(&m, 1u << 20, &s, &req);
    phx_error_t err = {{0}};
    assert_int_equal(phx_step_launch_send(&m, &s, req, &err), -1);
    assert_non_null(strstr(err.text, "could not launch on agent \"n0\": frame "
                                     "\"STEP_LAUNCH\" of "));
    assert_non_null(strstr(err.text, "exceeds the maximum of"));
    for (int i = 0; i < NAGENTS; i++) {
        assert_false(s.parts[i].launched);
        assert_int_equal(queued(&agents[i]), 0);
        assert_false(agents[i].conn->closed);
    }
    teardown(&m, &s, req);
}

/* Only the origin's frame (the longest header: req, input_to) is too big:
 * the others are queued and marked launched, the origin's is not. */
static void test_partial(void **state)
{
    (void)state;
    phx_master_t m;
    phx_step_t s;
    json_t *req;
    setup(&m, 4u << 20, &s, &req);
    json_t *common = phx_step_launch_common(&s, req),
           *h0 = phx_step_launch_header(&s, 0);
    char *c = json_dumps(common, JSON_COMPACT), *t = json_dumps(h0, JSON_COMPACT);
    m.max_frame = PHX_WIRE_SEAL_OVERHEAD + PHX_WIRE_PREFIX + strlen(c) + strlen(t) + 32;
    free(c);
    free(t);
    json_decref(common);
    json_decref(h0);
    phx_error_t err = {{0}};
    assert_int_equal(phx_step_launch_send(&m, &s, req, &err), -1);
    char want[64];
    snprintf(want, sizeof(want), "could not launch on agent \"n%d\"", NAGENTS - 1);
    assert_non_null(strstr(err.text, want));
    for (int i = 0; i < NAGENTS - 1; i++) {
        assert_true(s.parts[i].launched);
        check_frame(i, m.max_frame);
    }
    assert_false(s.parts[NAGENTS - 1].launched);
    assert_int_equal(queued(&agents[NAGENTS - 1]), 0);
    teardown(&m, &s, req);
}

/* --pty: the request's terminal size goes to every agent in the common
 * part (rank 0's agent applies it); none without it. */
static void test_pty(void **state)
{
    (void)state;
    phx_master_t m;
    phx_step_t s;
    json_t *req;
    setup(&m, 1u << 20, &s, &req);
    json_t *common = phx_step_launch_common(&s, req);
    assert_null(json_object_get(common, "pty"));
    json_decref(common);
    json_object_set_new(req, "pty", json_pack("{s:i, s:i}", "rows", 40, "cols", 100));
    common = phx_step_launch_common(&s, req);
    phx_winsize_t ws;
    phx_error_t err;
    assert_int_equal(phx_winsize_parse(json_object_get(common, "pty"), &ws, &err), 0);
    assert_int_equal(ws.rows, 40);
    assert_int_equal(ws.cols, 100);
    json_decref(common);
    teardown(&m, &s, req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_pty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
