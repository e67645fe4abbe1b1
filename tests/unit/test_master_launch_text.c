/* The LAUNCH text (daemons/master/tasks.c phx_task_canon and
 * phx_task_launch_text): the task is serialised once, in two halves around
 * gang_id, and the text put together for the gang's row (gang_id 0) and
 * for the frame must be exactly the canonical JSON (json_dumps with
 * JSON_COMPACT | JSON_SORT_KEYS) of the whole task with that gang_id: the
 * agent checks the launch's MAC over its own canonical dump. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemons/master/tasks.c"

/* What tasks.c calls elsewhere in the master: not reached here. */
void phx_master_fenced(const phx_error_t *err)
{
    (void)err;
}
phx_master_agent_t *phx_master_agent_find(phx_master_t *m, const char *name)
{
    (void)m;
    (void)name;
    return NULL;
}
int phx_master_conn_send(phx_master_conn_t *c, json_t *hdr, const void *attach,
                         size_t attach_len)
{
    (void)c;
    (void)attach;
    (void)attach_len;
    json_decref(hdr);
    return -1;
}
int phx_master_conn_send_text(phx_master_conn_t *c, const char *type, const char *text,
                              size_t len)
{
    (void)c;
    (void)type;
    (void)text;
    (void)len;
    return -1;
}
int phx_master_conn_sign_launch(phx_master_conn_t *c, const char *text, size_t len,
                                uint64_t *seq, char mac_hex[PHX_MAC_HEX_LEN + 1])
{
    (void)c;
    (void)text;
    (void)len;
    (void)seq;
    (void)mac_hex;
    return -1;
}
void phx_fw_send(phx_fw_t *fw, json_t *event)
{
    (void)fw;
    json_decref(event);
}
phx_fw_t *phx_fw_find(phx_master_t *m, const char *id)
{
    (void)m;
    (void)id;
    return NULL;
}
void phx_fw_forget(phx_master_t *m, phx_fw_t *fw)
{
    (void)m;
    (void)fw;
}
int phx_alloc_usage_sub(phx_alloc_t *a, int64_t agent, const char *fw, const char *task)
{
    (void)a;
    (void)agent;
    (void)fw;
    (void)task;
    return 0;
}
void phx_sched_dirty(phx_master_t *m)
{
    (void)m;
}
void phx_gang_task_ended(phx_master_t *m, phx_task_t *t, bool abnormal)
{
    (void)m;
    (void)t;
    (void)abnormal;
}
void phx_gang_release(phx_gang_t *g, phx_task_t *t)
{
    (void)g;
    (void)t;
}
void phx_task_unindex(phx_task_t *t)
{
    (void)t;
}
int64_t phx_master_wall(void)
{
    return 0;
}

/* A LAUNCH object as accept.c makes it (gang_id 0, keys unsorted), with an
 * environment, a script and what a key may hold. */
static json_t *launch(void)
{
    return json_pack(
        "{s:s, s:s, s:I, s:s, s:I, s:I, s:[s,s,s], s:{s:s, s:s, s:s}, s:s, s:s, "
        "s:s, s:I, s:s, s:I, s:I, s:s, s:b, s:{s:i, s:i, s:s}}",
        "task_id", "job-1-0", "framework_id", "fw\"1", "gang_id", (json_int_t)0, "user",
        "alice", "uid", (json_int_t)1000, "gid", (json_int_t)1000, "argv", "/bin/sh",
        "-c", "echo \"gang_id\":0, é", "env", "ZZ", "1", "gang_id", "0", "A", "x\ny",
        "cwd", "/home/alice", "stdout", "/tmp/o", "cores", "0-3", "memory",
        (json_int_t)1 << 30, "numas", "0", "time_limit", (json_int_t)300, "kill_grace",
        (json_int_t)30, "script", "#!/bin/sh\ntrue\n", "append", 1, "warn", "signal",
        10, "before", 60, "to", "steps");
}

static void check(phx_task_t *t, long long gang_id)
{
    json_object_set_new(t->launch, "gang_id", json_integer(gang_id));
    char *want = json_dumps(t->launch, JSON_COMPACT | JSON_SORT_KEYS);
    size_t len = 0;
    char *got = phx_task_launch_text(t, gang_id, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
    free(want);
}

static void test_canon_equals_dump(void **state)
{
    (void)state;
    phx_task_t t = {.launch = launch()};
    assert_int_equal(phx_task_canon(&t), 0);
    assert_non_null(t.canon);
    assert_null(strstr(t.canon, "\"gang_id\":0,\"gid\"")); /* left out */
    check(&t, 0);                                          /* the gang's row */
    check(&t, 1);
    check(&t, 9007199254740993LL);
    /* the halves stay those of the accepted task: a later gang_id in the
     * object changes nothing but the number */
    free(t.canon);
    t.canon = NULL;
    check(&t, 42); /* without canon: the whole object is dumped */
    json_decref(t.launch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_equals_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
