/* Master address lists and standby refusals (lib/masters.c): the single
 * string form and lists, in files and from -s; the order they are tried
 * in; a refusal followed only to an address of the list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/masters.h"

static const phx_conf_key_t schema[] = {
    {"agent.master", PHX_CONF_STRLIST, "127.0.0.1:6051", 0, 0, false, "masters"},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

static void load(const char *text, phx_masters_t *l)
{
    phx_error_t err = {{0}};
    phx_conf_t *c = phx_conf_load_string(schema, text, "test.conf", &err);
    if (!c)
        fail_msg("config refused: %s", err.text);
    if (phx_masters_from_conf(l, c, "agent.master", &err) < 0)
        fail_msg("masters refused: %s", err.text);
    phx_conf_destroy(c);
}

static void test_forms(void **state)
{
    (void)state;
    phx_masters_t l;
    char buf[256];
    load("", &l); /* the default */
    assert_int_equal(l.n, 1);
    assert_string_equal(phx_masters_addr(&l, buf, sizeof(buf)), "127.0.0.1:6051");
    load("agent: { master = \"m1:6051\"; };", &l); /* one string, as before */
    assert_int_equal(l.n, 1);
    assert_string_equal(phx_masters_host(&l), "m1");
    assert_int_equal(phx_masters_port(&l), 6051);
    load("agent: { master = [\"m1:6051\", \"m2:7051\"]; };", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(phx_masters_all(&l, buf, sizeof(buf)), "m1:6051,m2:7051");
    load("agent: { master = \"m1:6051, m2:7051 ,m3:1\"; };", &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(phx_masters_all(&l, buf, sizeof(buf)), "m1:6051,m2:7051,m3:1");

    phx_error_t err = {{0}};
    phx_conf_t *c = phx_conf_load_string(schema, "", "test.conf", &err);
    assert_non_null(c);
    assert_int_equal(phx_conf_set(c, "agent.master=a:1,b:2", &err), 0);
    assert_int_equal(phx_masters_from_conf(&l, c, "agent.master", &err), 0);
    assert_string_equal(phx_masters_all(&l, buf, sizeof(buf)), "a:1,b:2");
    phx_conf_destroy(c);
}

static void test_errors(void **state)
{
    (void)state;
    phx_masters_t l = {0};
    phx_error_t err = {{0}};
    assert_int_equal(phx_masters_add(&l, "m1:6051,m2", &err), -1);
    assert_non_null(strstr(err.text, "\"m2\" must be host:port"));
    memset(&l, 0, sizeof(l));
    assert_int_equal(phx_masters_add(&l, "m1:6051,,m2:1", &err), -1);
    assert_non_null(strstr(err.text, "empty master address"));
    memset(&l, 0, sizeof(l));
    assert_int_equal(phx_masters_add(&l, "m1:0", &err), -1);
    assert_non_null(strstr(err.text, "port"));
    memset(&l, 0, sizeof(l));
    char many[2048] = "";
    for (int i = 0; i <= PHX_MASTERS_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sh%d:1",
                 i ? "," : "", i);
    assert_int_equal(phx_masters_add(&l, many, &err), -1);
    assert_non_null(strstr(err.text, "more than 16 master addresses"));

    phx_conf_t *c =
        phx_conf_load_string(schema, "agent: { master = []; };", "test.conf", &err);
    assert_non_null(c);
    assert_int_equal(phx_masters_from_conf(&l, c, "agent.master", &err), -1);
    assert_string_equal(err.text, "agent.master: no master address");
    phx_conf_destroy(c);
}

static void test_order_and_follow(void **state)
{
    (void)state;
    phx_masters_t l = {0};
    char buf[64];
    assert_int_equal(phx_masters_add(&l, "a:1,b:2,c:3", NULL), 0);
    assert_string_equal(phx_masters_addr(&l, buf, sizeof(buf)), "a:1");
    phx_masters_next(&l);
    assert_string_equal(phx_masters_addr(&l, buf, sizeof(buf)), "b:2");
    phx_masters_next(&l);
    phx_masters_next(&l); /* wraps */
    assert_string_equal(phx_masters_addr(&l, buf, sizeof(buf)), "a:1");
    assert_true(phx_masters_follow(&l, "c:3"));
    assert_string_equal(phx_masters_addr(&l, buf, sizeof(buf)), "c:3");
    /* not ours (another host, another port, nonsense): not followed */
    assert_false(phx_masters_follow(&l, "evil:1"));
    assert_false(phx_masters_follow(&l, "a:2"));
    assert_false(phx_masters_follow(&l, "a"));
    assert_false(phx_masters_follow(&l, NULL));
    assert_string_equal(phx_masters_addr(&l, buf, sizeof(buf)), "c:3");
}

static void test_refusal(void **state)
{
    (void)state;
    char leader[64];
    const char *body =
        "{\"error\": \"standby: this master is not the leader; the "
        "leader is at m2:6050\", \"standby\": true, \"leader\": \"m2:6050\"}";
    assert_int_equal(
        phx_masters_refusal_text(body, strlen(body), leader, sizeof(leader)), 1);
    assert_string_equal(leader, "m2:6050");
    body = "{\"standby\": true, \"leader\": \"\"}"; /* no leader known yet */
    assert_int_equal(
        phx_masters_refusal_text(body, strlen(body), leader, sizeof(leader)), 1);
    assert_string_equal(leader, "");
    /* other errors are no refusal */
    body = "{\"error\": \"no such endpoint\"}";
    assert_int_equal(
        phx_masters_refusal_text(body, strlen(body), leader, sizeof(leader)), 0);
    body = "{\"standby\": false, \"leader\": \"m2:6050\"}";
    assert_int_equal(
        phx_masters_refusal_text(body, strlen(body), leader, sizeof(leader)), 0);
    body = "not json";
    assert_int_equal(
        phx_masters_refusal_text(body, strlen(body), leader, sizeof(leader)), 0);
    assert_int_equal(phx_masters_refusal_text(NULL, 0, leader, sizeof(leader)), 0);
    /* an agent's ERROR frame header */
    json_t *hdr = json_pack("{s:s, s:s, s:b, s:s}", "type", "ERROR", "message",
                            "standby", "standby", 1, "leader", "m1:6051");
    assert_int_equal(phx_masters_refusal(hdr, leader, sizeof(leader)), 1);
    assert_string_equal(leader, "m1:6051");
    json_decref(hdr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_order_and_follow),
        cmocka_unit_test(test_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
