/* phx-agent: a task's GPUs from its LAUNCH ("gpus": [{"id": device id}]),
 * checked against the node's topology and turned into the indexes its
 * environment names (CUDA_VISIBLE_DEVICES and the others: exec.c; the e2e
 * test t0800 runs a task that prints them), and the device files of the
 * node's other GPUs, which its devices cgroup denies (gpu_cg.c, t0800).  gpu.c is
 * compiled in directly, on a task and agent made by hand. */
#include "daemons/agent/gpu.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static char *fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("PHX_TOPO_FIXTURES");
    if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        snprintf(path, sizeof(path), "%.*s/fixtures/topo/%s",
                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, name);
    return path;
}

static phx_agentd_t agent;
static phx_task_t task;

static int setup(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    /* GPUs 0-2 (cuda0-2) and device 3, an OpenCL co-processor. */
    agent.topo = phx_topo_load_xml_file(fixture("gpu-2s2n8c-3gpu.xml"), &err);
    task.a = &agent;
    return agent.topo ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(task.gpus);
    json_decref(task.spec);
    phx_topo_destroy(agent.topo);
    return 0;
}

/* Parse a spec; the error text or the indexes ("" for none). */
static const char *parse(const char *spec)
{
    static char out[600];
    phx_error_t err = {{0}};
    json_decref(task.spec);
    task.spec = json_loads(spec, 0, NULL);
    assert_non_null(task.spec);
    if (phx_task_parse_gpus(&task, &err) < 0) {
        assert_null(task.gpus);
        snprintf(out, sizeof(out), "error: %s", err.text);
    } else {
        snprintf(out, sizeof(out), "%s", task.gpus ? task.gpus : "");
    }
    return out;
}

static void test_parse(void **state)
{
    (void)state;
    assert_string_equal(parse("{}"), "");
    assert_string_equal(parse("{\"gpus\": null}"), "");
    assert_string_equal(parse("{\"gpus\": []}"), "");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 2}, {\"id\": 0}]}"), "0,2");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 1, \"index\": 1, \"name\": "
                              "\"cuda1\", \"pci\": \"0000:02:00.0\"}]}"),
                        "1");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 0}, {\"id\": 1}, {\"id\": 2}]}"),
                        "0,1,2");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 3}]}"),
                        "error: gpus[0] is not a GPU of this node (3 GPUs)");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 0}, {\"id\": 9}]}"),
                        "error: gpus[1] is not a GPU of this node (3 GPUs)");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 1}, {\"id\": 1}]}"),
                        "error: gpus[1] names GPU 1 twice");
    assert_string_equal(parse("{\"gpus\": [{\"id\": \"0\"}]}"),
                        "error: gpus[0] is not a GPU of this node (3 GPUs)");
    assert_string_equal(parse("{\"gpus\": [0]}"),
                        "error: gpus[0] is not a GPU of this node (3 GPUs)");
    assert_string_equal(parse("{\"gpus\": {\"id\": 0}}"), "error: gpus must be a list");
}

/* Indexes count GPUs only: a co-processor before a GPU does not shift
 * them, and the index is the GPU's rank, not its device id. */
static void test_index_skips_coprocs(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    json_t *j = json_loads(
        "{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":[{\"id\":0,\"memory\":1,"
        "\"cores\":[{\"id\":0,\"pus\":[0]}]}]}],\"devices\":["
        "{\"id\":0,\"kind\":\"coproc\",\"name\":\"opencl0d0\"},"
        "{\"id\":1,\"kind\":\"gpu\",\"name\":\"cuda0\"},"
        "{\"id\":2,\"kind\":\"gpu\",\"name\":\"cuda1\"}]}",
        0, NULL);
    phx_topo_t *t = phx_topo_from_json(j, &err), *saved = agent.topo;
    json_decref(j);
    if (!t)
        fail_msg("%s", err.text);
    agent.topo = t;
    assert_string_equal(parse("{\"gpus\": [{\"id\": 2}]}"), "1");
    assert_string_equal(parse("{\"gpus\": [{\"id\": 0}]}"),
                        "error: gpus[0] is not a GPU of this node (2 GPUs)");
    agent.topo = saved;
    phx_topo_destroy(t);
}

static void put_file(const char *root, const char *rel, const char *text)
{
    char path[4096], cmd[8192];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Device files by PCI bus id: NVIDIA's minor from the driver's information
 * file, DRM's card and render nodes from sysfs; the deny list names those of
 * the node's GPUs that are not the task's. */
static void test_device_files(void **state)
{
    (void)state;
    char root[] = "/tmp/phx-gpu-root.XXXXXX";
    assert_non_null(mkdtemp(root));
    put_file(root, "proc/driver/nvidia/gpus/0000:01:00.0/information",
             "Model: \t\t A100\nIRQ: 1\nDevice Minor: \t 0\nBus Type: PCIe\n");
    put_file(root, "proc/driver/nvidia/gpus/0000:02:00.0/information",
             "Device Minor: 1\n");
    put_file(root, "sys/bus/pci/devices/0000:82:00.0/drm/card2/dev", "226:2\n");
    put_file(root, "sys/bus/pci/devices/0000:82:00.0/drm/renderD130/dev", "226:130\n");
    put_file(root, "sys/bus/pci/devices/0000:82:00.0/drm/controlD66/dev", "226:66\n");
    char out[8][24];
    assert_int_equal(phx_gpu_dev_numbers(root, "0000:01:00.0", out, 8), 1);
    assert_string_equal(out[0], "195:0");
    int n = phx_gpu_dev_numbers(root, "0000:82:00.0", out, 8);
    assert_int_equal(n, 2); /* not the control node */
    qsort(out, (size_t)n, sizeof(out[0]), cmp_str);
    assert_string_equal(out[0], "226:130");
    assert_string_equal(out[1], "226:2");
    assert_int_equal(phx_gpu_dev_numbers(root, "0000:c5:00.0", out, 8), 0);
    assert_int_equal(phx_gpu_dev_numbers(root, "0000:82:00.0", out, 1), 1); /* max */

    /* A task with GPUs 0 and 2 denies GPU 1's file; with GPU 1, the others'. */
    parse("{\"gpus\": [{\"id\": 0}, {\"id\": 2}]}");
    assert_int_equal(phx_gpu_deny_list(agent.topo, task.gpus, root, out, 8), 1);
    assert_string_equal(out[0], "195:1");
    parse("{\"gpus\": [{\"id\": 1}]}");
    n = phx_gpu_deny_list(agent.topo, task.gpus, root, out, 8);
    assert_int_equal(n, 3);
    qsort(out, (size_t)n, sizeof(out[0]), cmp_str);
    assert_string_equal(out[0], "195:0");
    assert_string_equal(out[1], "226:130");
    assert_string_equal(out[2], "226:2");
    /* A step's rank that sees GPU 0 only (--gpus-per-task) of a task's 0,2:
     * GPU 2's files too; keeping none denies them all. */
    n = phx_gpu_deny_list(agent.topo, "0", root, out, 8);
    assert_int_equal(n, 3);
    qsort(out, (size_t)n, sizeof(out[0]), cmp_str);
    assert_string_equal(out[0], "195:1");
    assert_string_equal(out[1], "226:130");
    assert_string_equal(out[2], "226:2");
    assert_int_equal(phx_gpu_deny_list(agent.topo, "2,0", root, out, 8), 1);
    assert_int_equal(phx_gpu_deny_list(agent.topo, NULL, root, out, 8), 4);
    assert_int_equal(phx_gpu_deny_list(agent.topo, "", root, out, 8), 4);
    /* Nothing on a machine without the files. */
    assert_int_equal(phx_gpu_deny_list(agent.topo, task.gpus, "/nonexistent", out, 8),
                     0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_index_skips_coprocs),
        cmocka_unit_test(test_device_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
