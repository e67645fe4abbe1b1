/* phx-agent: which tasks get a v1 devices cgroup and which cgroup.procs a
 * step's rank joins (gpu_cg.c, doc/steps.md "GPUs").  gpu.c and gpu_cg.c
 * are compiled in directly, on a task and agent made by hand; the cgroup
 * writes are recorded by the stubs below, never made (t0371 and t0372 do
 * them for real).  Needs a v1 devices hierarchy in /proc/self/mounts (only
 * its path is used: nothing is made there); skipped without one. */
#include "daemons/agent/gpu.c"
#include "daemons/agent/gpu_cg.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

/* cgroup.c's, recorded: the deny lines written, the folders "made". */
static int nwrites, nmkdirs;
int phx_cg_write(const char *dir, const char *file, const char *value)
{
    (void)dir;
    (void)value;
    if (strcmp(file, "devices.deny") == 0)
        nwrites++;
    return 0;
}

int phx_cg_mkdirs(const char *base, const char *rel)
{
    (void)base;
    (void)rel;
    nmkdirs++;
    return 0;
}

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
static phx_cg_t cg;
static phx_task_t task;
static char root[] = "/tmp/phx-gpucg-root.XXXXXX";

static void put_file(const char *rel, const char *text)
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

static int setup(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    /* GPUs 0-2, one render node each in the fake tree */
    agent.topo = phx_topo_load_xml_file(fixture("gpu-2s2n8c-3gpu.xml"), &err);
    if (!agent.topo || !mkdtemp(root))
        return -1;
    agent.cg = &cg;
    cg.mode = PHX_CG_V1;
    snprintf(cg.root, sizeof(cg.root), "phx-unit-gpucg-%d", (int)getpid());
    snprintf(cg.agent, sizeof(cg.agent), "n1");
    task.a = &agent;
    snprintf(task.key, sizeof(task.key), "fw+t1");
    snprintf(task.label, sizeof(task.label), "fw/t1");
    setenv("PHX_GPU_SYSROOT", root, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        return -1;
    free(task.gpus);
    free(task.gpu_cg);
    json_decref(task.spec);
    phx_topo_destroy(agent.topo);
    return 0;
}

static void gpus(const char *spec)
{
    phx_error_t err = {{0}};
    json_decref(task.spec);
    task.spec = json_loads(spec, 0, NULL);
    assert_non_null(task.spec);
    assert_int_equal(phx_task_parse_gpus(&task, &err), 0);
    nwrites = nmkdirs = 0;
}

static void files(void)
{
    put_file("sys/bus/pci/devices/0000:01:00.0/drm/renderD128/dev", "1:5\n");
    put_file("sys/bus/pci/devices/0000:02:00.0/drm/renderD129/dev", "1:7\n");
    put_file("sys/bus/pci/devices/0000:82:00.0/drm/renderD130/dev", "1:8\n");
}

/* A task with some of the node's GPUs denies the others'; one with all of
 * them gets a devices cgroup too, denying nothing itself: the parent of its
 * ranks' (--gpus-per-task), each of which must see only its own GPUs. */
static void test_task_cgroup(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    if (!*devices_mount())
        skip();
    files();
    gpus("{\"gpus\": [{\"id\": 1}]}");
    assert_int_equal(phx_task_gpu_cgroup(&task, &err), 0);
    assert_non_null(task.gpu_cg);
    assert_int_equal(nwrites, 2);
    gpus("{\"gpus\": [{\"id\": 0}, {\"id\": 1}, {\"id\": 2}]}");
    assert_int_equal(phx_task_gpu_cgroup(&task, &err), 0);
    assert_non_null(task.gpu_cg); /* was NULL: its ranks ran unrestricted */
    assert_int_equal(nwrites, 0);
    char procs[PHX_CG_PATH];
    assert_int_equal(phx_task_gpu_cg_rank(&task, NULL, procs, sizeof(procs), &err), 0);
    assert_string_equal(procs, task.gpu_cg);
    /* No GPU of the node has a device file found: nothing to deny, none. */
    gpus("{\"gpus\": [{\"id\": 0}]}");
    setenv("PHX_GPU_SYSROOT", "/nonexistent", 1);
    assert_int_equal(phx_task_gpu_cgroup(&task, &err), 0);
    assert_null(task.gpu_cg);
    assert_int_equal(phx_task_gpu_cg_rank(&task, "0", procs, sizeof(procs), &err), 0);
    assert_string_equal(procs, "");
    setenv("PHX_GPU_SYSROOT", root, 1);
    /* Another flavour: none either (doc/agent.md, "GPUs"). */
    cg.mode = PHX_CG_V2;
    assert_int_equal(phx_task_gpu_cgroup(&task, &err), 0);
    assert_null(task.gpu_cg);
    cg.mode = PHX_CG_V1;
}

/* An adopted task whose devices cgroup is not there (gone while the agent
 * was away, or an agent before this one made none): its steps' ranks must
 * not run with every GPU of the node.  It is made again, its deny lines
 * written again (a folder found there is not trusted as it is). */
static void test_adopt(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    if (!*devices_mount())
        skip();
    files();
    gpus("{\"gpus\": [{\"id\": 1}]}");
    char dir[PHX_CG_PATH], procs[PHX_CG_PATH];
    struct stat st;
    assert_int_equal(gpu_cg_dir(&task, dir, sizeof(dir)), 0);
    assert_int_not_equal(stat(dir, &st), 0); /* never made: stubs */
    phx_task_gpu_cgroup_adopt(&task);
    assert_non_null(task.gpu_cg); /* was NULL: its ranks ran unrestricted */
    assert_int_equal(nmkdirs, 1);
    assert_int_equal(nwrites, 2);
    assert_int_equal(phx_task_gpu_cg_rank(&task, "1", procs, sizeof(procs), &err), 0);
    assert_string_not_equal(procs, "");
    /* without device files or a v1 hierarchy: none, as at its launch */
    gpus("{\"gpus\": [{\"id\": 1}]}");
    cg.mode = PHX_CG_V2;
    phx_task_gpu_cgroup_adopt(&task);
    assert_null(task.gpu_cg);
    cg.mode = PHX_CG_V1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_cgroup),
        cmocka_unit_test(test_adopt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
