/* batchd partitions: the configuration's slurm.conf-style lines, which nodes
 * each partition has, and the planner keeping a job on its partition's
 * nodes (a reservation too). */
#include "daemons/batchd/backfill.c"
#include "daemons/batchd/bf_fit.c"
#include "daemons/batchd/bf_node.c"
#include "daemons/batchd/pools.c"
#include "daemons/batchd/partition.c"
#include "daemons/batchd/timefmt.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static const phx_conf_key_t schema[] = {
    {"batchd.partition", PHX_CONF_STRING, "batch", 0, 0, false, NULL},
    {"batchd.partitions", PHX_CONF_STRLIST, "", 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

static int make(const char *text, bparts_t *ps, phx_error_t *err);

static void parse_fails(const char *spec, const char *want)
{
    bpart_t p;
    bool d;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_partition_parse(spec, 3600, 0, &p, &d, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("\"%s\": error \"%s\" does not say \"%s\"", spec, err.text, want);
    assert_null(p.name);
}

static void test_parse(void **state)
{
    (void)state;
    bpart_t p;
    bool d;
    phx_error_t err = {{0}};
    assert_int_equal(batchd_partition_parse("PartitionName=debug Nodes=n[3-4],n1 "
                                            "Default=YES MaxTime=30:00 DefaultTime=10",
                                            3600, 0, &p, &d, &err),
                     0);
    assert_string_equal(p.name, "debug");
    assert_true(d);
    assert_false(p.all);
    assert_int_equal(p.nnodes, 3);
    assert_string_equal(p.nodes[0], "n1"); /* sorted */
    assert_string_equal(p.nodes[2], "n4");
    assert_int_equal(p.max_time, 1800);
    assert_int_equal(p.default_time, 600);
    batchd_partition_clear(&p);
    /* keys in any case; ALL; the global times; a MaxTime below the global
     * default brings the default down to it */
    assert_int_equal(
        batchd_partition_parse("partitionname=all nodes=all", 3600, 7200, &p, &d, &err),
        0);
    assert_true(p.all);
    assert_false(d);
    assert_int_equal(p.default_time, 3600);
    assert_int_equal(p.max_time, 7200);
    batchd_partition_clear(&p);
    assert_int_equal(batchd_partition_parse("PartitionName=s Nodes=n1 MaxTime=5", 3600,
                                            0, &p, &d, &err),
                     0);
    assert_int_equal(p.default_time, 300);
    batchd_partition_clear(&p);
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_fails("Nodes=n1", "no PartitionName=");
    parse_fails("PartitionName=a", "no Nodes=");
    parse_fails("PartitionName=a Nodes=n1 Foo=1", "unknown key \"Foo\"");
    parse_fails("PartitionName=a Nodes=n1 Default", "\"Default\" is not KEY=VALUE");
    parse_fails("PartitionName=a/b Nodes=n1", "PartitionName=a/b: a name is");
    parse_fails("PartitionName=a Nodes=n1 Default=maybe", "Default=maybe: YES or NO");
    parse_fails("PartitionName=a Nodes=n1 MaxTime=soon", "MaxTime");
    parse_fails("PartitionName=a Nodes=n1 MaxTime=10 DefaultTime=20",
                "DefaultTime is beyond MaxTime");
    parse_fails("PartitionName=a Nodes=n1 Nodes=n2", "Nodes given twice");
    parse_fails("PartitionName=a Nodes=n[1-", "Nodes=n[1-");
    parse_fails("PartitionName=a Nodes=n1 PriorityJobFactor=x",
                "PriorityJobFactor=x: a whole");
    parse_fails("PartitionName=a Nodes=n1 PriorityJobFactor=65534", "0-65533");
    parse_fails("PartitionName=a Nodes=n1 AllowGroups=phx-no-such-group",
                "AllowGroups: no group \"phx-no-such-group\" on this host");
    parse_fails("PartitionName=a Nodes=n1 AllowGroups=,", "names no group");
    parse_fails("PartitionName=a PartitionName=b Nodes=n1",
                "PartitionName given twice");
    parse_fails("PartitionName=a Nodes=n1 State=OFF",
                "State=OFF: UP, DOWN, DRAIN or INACTIVE");
}

/* PriorityJobFactor over the largest; AllowGroups by the user's groups. */
static void test_priority_and_groups(void **state)
{
    (void)state;
    bparts_t ps;
    phx_error_t err = {{0}};
    assert_int_equal(make("batchd: { partitions = [\"PartitionName=a Nodes=ALL\", "
                          "\"PartitionName=b Nodes=ALL PriorityJobFactor=4 "
                          "AllowGroups=nogroup,root\"]; };",
                          &ps, &err),
                     0);
    assert_true(batchd_parts_prio(&ps, "a") == 0.25);
    assert_int_equal(batchd_parts_find(&ps, "a", NULL)->state, BPART_UP);
    ps.v[0].state = BPART_DOWN; /* as State=down would: runs nothing */
    assert_int_equal(batchd_parts_run_mask(&ps, "a"), BATCHD_PART_GONE);
    assert_int_equal(batchd_parts_job_mask(&ps, "a"), 1);
    ps.v[0].state = BPART_DRAIN; /* runs what it has */
    assert_int_equal(batchd_parts_run_mask(&ps, "a"), 1);
    assert_true(batchd_parts_prio(&ps, "b") == 1.0);
    assert_true(batchd_parts_prio(&ps, "gone") == 0.0);
    const bpart_t *a = batchd_parts_find(&ps, "a", NULL),
                  *b = batchd_parts_find(&ps, "b", NULL);
    assert_null(a->allow);
    assert_int_equal(b->nallow, 2);
    assert_string_equal(b->allow_text, "nogroup,root");
    /* nobody's group is nogroup (Debian); daemon's (1) is in neither */
    assert_true(batchd_partition_allows(a, 1, 1, "daemon"));
    assert_true(batchd_partition_allows(b, 65534, 65534, "nobody"));
    assert_false(batchd_partition_allows(b, 1, 1, "daemon"));
    assert_true(batchd_partition_allows(b, 0, 0, "root"));
    /* a list (-p a,b): each one's bit, and the largest factor; a is DRAIN
     * (runs), then DOWN (left out of what runs) */
    assert_int_equal(batchd_parts_job_mask(&ps, "a,b"), 3);
    assert_int_equal(batchd_parts_job_mask(&ps, "b,gone,a"), 3);
    assert_int_equal(batchd_parts_job_mask(&ps, "gone,x"), BATCHD_PART_GONE);
    assert_int_equal(batchd_parts_run_mask(&ps, "a,b"), 3);
    ps.v[0].state = BPART_DOWN;
    assert_int_equal(batchd_parts_run_mask(&ps, "a,b"), 2);
    assert_int_equal(batchd_parts_run_mask(&ps, "a"), BATCHD_PART_GONE);
    assert_true(batchd_parts_prio(&ps, "a,b") == 1.0);
    assert_true(batchd_parts_prio(&ps, "gone,a") == 0.25);
    assert_string_equal(batchd_parts_find(&ps, "gone,b,a", NULL)->name, "b");
    assert_null(batchd_parts_find(&ps, "gone,", NULL));
    bparts_t again;
    assert_int_equal(make("batchd: { partitions = [\"PartitionName=a Nodes=ALL\", "
                          "\"PartitionName=b Nodes=ALL PriorityJobFactor=4 "
                          "AllowGroups=nogroup,root\"]; };",
                          &again, &err),
                     0);
    assert_false(batchd_parts_same(&ps, &again)); /* a is DOWN in ps */
    again.v[0].state = BPART_DOWN;
    assert_true(batchd_parts_same(&ps, &again)); /* reloaded unchanged */
    batchd_parts_clear(&again);
    assert_true(batchd_parts_list_has("a,bb,c", "bb"));
    assert_false(batchd_parts_list_has("a,bb,c", "b"));
    assert_false(batchd_parts_list_has("", "a"));
    batchd_parts_clear(&ps);
}

static int make(const char *text, bparts_t *ps, phx_error_t *err)
{
    phx_conf_t *c = phx_conf_load_string(schema, text, "test.conf", err);
    if (!c)
        fail_msg("config: %s", err->text);
    int rc = batchd_parts_make(c, 3600, 0, ps, err);
    phx_conf_destroy(c);
    return rc;
}

static void make_fails(const char *text, const char *want)
{
    bparts_t ps;
    phx_error_t err = {{0}};
    assert_int_equal(make(text, &ps, &err), -1);
    if (!strstr(err.text, want))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, want);
}

static void test_sets(void **state)
{
    (void)state;
    bparts_t ps;
    phx_error_t err = {{0}};
    /* none given: one partition, batchd.partition, of every node */
    assert_int_equal(make("batchd: { partition = \"work\"; };", &ps, &err), 0);
    assert_int_equal(ps.n, 1);
    assert_string_equal(batchd_parts_find(&ps, NULL, NULL)->name, "work");
    assert_int_equal(batchd_parts_node_mask(&ps, "anything"), 1);
    assert_int_equal(batchd_parts_job_mask(&ps, NULL), 1);
    assert_int_equal(batchd_parts_job_mask(&ps, "batch"), BATCHD_PART_GONE);
    batchd_parts_clear(&ps);
    /* two overlapping; the default is the one marked */
    assert_int_equal(
        make("batchd: { partitions = [\"PartitionName=compute Nodes=n[1-3]\","
             " \"PartitionName=debug Nodes=n3,n9 Default=YES MaxTime=10\"]; };",
             &ps, &err),
        0);
    size_t i;
    assert_string_equal(batchd_parts_find(&ps, NULL, &i)->name, "debug");
    assert_int_equal(i, 1);
    assert_int_equal(batchd_parts_node_mask(&ps, "n1"), 1);
    assert_int_equal(batchd_parts_node_mask(&ps, "n3"), 3);
    assert_int_equal(batchd_parts_node_mask(&ps, "n9"), 2);
    assert_int_equal(batchd_parts_node_mask(&ps, "n4"), 0);
    assert_int_equal(batchd_parts_job_mask(&ps, "compute"), 1);
    assert_int_equal(batchd_parts_job_mask(&ps, NULL), 2);
    char names[64];
    batchd_parts_names(&ps, names, sizeof(names));
    assert_string_equal(names, "compute, debug");
    batchd_parts_clear(&ps);
    /* none marked: the first, or the one batchd.partition names */
    assert_int_equal(make("batchd: { partitions = [\"PartitionName=a Nodes=ALL\", "
                          "\"PartitionName=b Nodes=ALL\"]; };",
                          &ps, &err),
                     0);
    assert_string_equal(batchd_parts_find(&ps, NULL, NULL)->name, "a");
    batchd_parts_clear(&ps);
    assert_int_equal(
        make("batchd: { partition = \"b\"; partitions = [\"PartitionName=a "
             "Nodes=ALL\", \"PartitionName=b Nodes=ALL\"]; };",
             &ps, &err),
        0);
    assert_string_equal(batchd_parts_find(&ps, NULL, NULL)->name, "b");
    batchd_parts_clear(&ps);
}

static void test_set_errors(void **state)
{
    (void)state;
    make_fails(
        "batchd: { partitions = [\"PartitionName=a Nodes=ALL\", \"PartitionName=a "
        "Nodes=n1\"]; };",
        "batchd.partitions[1]: partition \"a\" given twice");
    make_fails("batchd: { partitions = [\"PartitionName=a Nodes=ALL Default=YES\", "
               "\"PartitionName=b Nodes=n1 Default=yes\"]; };",
               "batchd.partitions[1]: Default=YES again (\"a\" is)");
    make_fails(
        "batchd: { partitions = [\"PartitionName=a Nodes=ALL\", \"Nodes=n1\"]; };",
        "batchd.partitions[1]: no PartitionName=");
    make_fails("batchd: { partition = \"x MaxTime=1\"; };",
               "batchd.partition: \"x MaxTime=1\" is not a partition name");
    make_fails(
        "batchd: { partition = \"c\"; partitions = [\"PartitionName=a Nodes=ALL\"]; };",
        "batchd.partition: \"c\" is none of batchd.partitions");
    make_fails(
        "batchd: { partition = \"a\"; partitions = [\"PartitionName=a Nodes=ALL\", "
        "\"PartitionName=b Nodes=ALL Default=YES\"]; };",
        "batchd.partitions makes \"b\" the default");
    char text[8192] = "batchd: { partitions = [";
    for (int k = 0; k < 64; k++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "%s\"PartitionName=p%d Nodes=ALL\"", k ? "," : "", k);
    strcat(text, "]; };");
    make_fails(text, "64 partitions, at most 63");
}

/* The planner: a job of partition 0 waits for its own node while the other
 * partition's is free, and its reservation is on its own node. */
static void test_planner_keeps_to_partition(void **state)
{
    (void)state;
    phx_bf_node_t nodes[2] = {
        {.cores_total = 4,
         .cores_free = 0,
         .mem_total = 100,
         .mem_free = 100,
         .usable = true,
         .parts = 1},
        {.cores_total = 4,
         .cores_free = 4,
         .mem_total = 100,
         .mem_free = 100,
         .usable = true,
         .parts = 2},
    };
    phx_bf_share_t busy = {.node = 0, .tasks = 4, .cores = 4, .mem = 0};
    phx_bf_running_t run = {
        .job_id = 9, .end_time = 500, .shares = &busy, .nshares = 1};
    phx_bf_request_t pend[3] = {
        {.job_id = 1,
         .nodes_min = 1,
         .nodes_max = 1,
         .ntasks = 2,
         .cpus_per_task = 1,
         .time_limit = 60,
         .parts = 1},
        {.job_id = 2,
         .nodes_min = 1,
         .nodes_max = 1,
         .ntasks = 2,
         .cpus_per_task = 1,
         .time_limit = 60,
         .parts = 2},
        {.job_id = 3,
         .nodes_min = 2,
         .nodes_max = 2,
         .ntasks = 2,
         .cpus_per_task = 1,
         .time_limit = 60,
         .parts = 1},
    };
    phx_bf_input_t in = {.now = 100,
                         .nodes = nodes,
                         .nnodes = 2,
                         .running = &run,
                         .nrunning = 1,
                         .pending = pend,
                         .npending = 3};
    phx_bf_plan_t plan;
    phx_error_t err = {{0}};
    assert_int_equal(phx_backfill_plan(&in, NULL, &plan, &err), 0);
    assert_int_equal(plan.decisions[0].verdict, PHX_BF_RESERVED);
    assert_int_equal(plan.decisions[0].start_time, 500);
    assert_int_equal(plan.decisions[0].nshares, 1);
    assert_int_equal(plan.decisions[0].shares[0].node, 0);
    /* the other partition's job starts on its node meanwhile: a pool of
     * its own, where nothing is reserved (test_batch_pools) */
    assert_int_equal(plan.decisions[1].verdict, PHX_BF_START);
    assert_int_not_equal(plan.decisions[1].pool, plan.decisions[0].pool);
    assert_int_equal(plan.decisions[1].shares[0].node, 1);
    /* two nodes in a one-node partition: never */
    assert_int_equal(plan.decisions[2].verdict, PHX_BF_NEVER);
    phx_backfill_plan_clear(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_priority_and_groups),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_planner_keeps_to_partition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
