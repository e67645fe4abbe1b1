/* Topology model: loading (synthetic, XML, local), accessors, JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topology/topo.h"

#define GiB (1ULL << 30)

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

static phx_topo_t *synth(const char *desc)
{
    phx_error_t err = {{0}};
    phx_topo_t *t = phx_topo_load_synthetic(desc, &err);
    if (!t)
        fail_msg("load \"%s\": %s", desc, err.text);
    return t;
}

static void assert_pus(const phx_topo_t *t, int core, const int *want, int n)
{
    int npus;
    const int *pus = phx_topo_core_pus(t, core, &npus);
    assert_int_equal(npus, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(pus[i], want[i]);
}

static void test_1x1x2(void **state)
{
    (void)state;
    phx_topo_t *t = synth("pack:1 numa:1 core:2 pu:1");
    assert_int_equal(phx_topo_nsockets(t), 1);
    assert_int_equal(phx_topo_nnumas(t), 1);
    assert_int_equal(phx_topo_ncores(t), 2);
    assert_int_equal(phx_topo_npus(t), 2);
    assert_int_equal(phx_topo_core_numa(t, 1), 0);
    assert_int_equal(phx_topo_core_socket(t, 1), 0);
    assert_pus(t, 0, (int[]){0}, 1);
    assert_pus(t, 1, (int[]){1}, 1);
    /* No memory in the description: the documented default. */
    assert_int_equal(phx_topo_numa_memory(t, 0), PHX_TOPO_SYNTHETIC_NUMA_MEM);
    assert_true(phx_topo_emulated(t));
    assert_string_equal(phx_topo_source(t), "synthetic");
    assert_int_equal(phx_topo_ndevs(t), 0);
    /* Out-of-range ids are refused, not read. */
    errno = 0;
    assert_int_equal(phx_topo_core_numa(t, 2), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(phx_topo_numa_socket(t, -1), -1);
    phx_topo_destroy(t);
}

static void test_2x2x8_smt(void **state)
{
    (void)state;
    phx_topo_t *t = synth("pack:2 numa:2 core:8 pu:2");
    assert_int_equal(phx_topo_nsockets(t), 2);
    assert_int_equal(phx_topo_nnumas(t), 4);
    assert_int_equal(phx_topo_ncores(t), 32);
    assert_int_equal(phx_topo_npus(t), 64);
    assert_int_equal(phx_topo_core_numa(t, 7), 0);
    assert_int_equal(phx_topo_core_numa(t, 9), 1);
    assert_int_equal(phx_topo_core_socket(t, 9), 0);
    assert_int_equal(phx_topo_core_numa(t, 16), 2);
    assert_int_equal(phx_topo_core_socket(t, 16), 1);
    assert_pus(t, 5, (int[]){10, 11}, 2);
    assert_pus(t, 31, (int[]){62, 63}, 2);
    assert_int_equal(phx_topo_pu_core(t, 11), 5);
    assert_int_equal(phx_topo_pu_core(t, 64), -1);
    assert_int_equal(phx_topo_numa_socket(t, 3), 1);
    assert_int_equal(phx_topo_socket_nnumas(t, 1), 2);
    assert_int_equal(phx_topo_socket_numa(t, 1, 0), 2);
    assert_int_equal(phx_topo_socket_numa(t, 1, 1), 3);
    assert_int_equal(phx_topo_numa_ncores(t, 2), 8);
    assert_int_equal(phx_topo_numa_first_core(t, 2), 16);
    assert_int_equal(phx_topo_socket_ncores(t, 1), 16);
    assert_int_equal(phx_topo_memory(t), 4 * PHX_TOPO_SYNTHETIC_NUMA_MEM);
    phx_topo_destroy(t);
}

static void test_4x2x16(void **state)
{
    (void)state;
    phx_topo_t *t = synth("pack:4 numa:2(memory=32GiB) core:16 pu:1");
    assert_int_equal(phx_topo_nsockets(t), 4);
    assert_int_equal(phx_topo_nnumas(t), 8);
    assert_int_equal(phx_topo_ncores(t), 128);
    assert_int_equal(phx_topo_core_numa(t, 127), 7);
    assert_int_equal(phx_topo_core_socket(t, 127), 3);
    assert_int_equal(phx_topo_core_numa(t, 48), 3);
    assert_int_equal(phx_topo_core_socket(t, 48), 1);
    /* Memory named in the description wins over the default. */
    for (int n = 0; n < 8; n++)
        assert_int_equal(phx_topo_numa_memory(t, n), 32 * GiB);
    assert_int_equal(phx_topo_numa_socket(t, 5), 2);
    phx_topo_destroy(t);
}

static void test_no_numa_or_package(void **state)
{
    (void)state;
    phx_topo_t *t = synth("core:4 pu:1");
    assert_int_equal(phx_topo_nsockets(t), 1);
    assert_int_equal(phx_topo_nnumas(t), 1);
    assert_int_equal(phx_topo_ncores(t), 4);
    phx_topo_destroy(t);
    /* One NUMA node above two packages: one domain per package, memory
     * shared evenly (10 GB = 10^10 bytes in hwloc's units). */
    t = synth("numa:1(memory=10GB) pack:2 core:2 pu:1");
    assert_int_equal(phx_topo_nsockets(t), 2);
    assert_int_equal(phx_topo_nnumas(t), 2);
    assert_int_equal(phx_topo_numa_memory(t, 0), 5000000000ULL);
    assert_int_equal(phx_topo_numa_memory(t, 1), 5000000000ULL);
    assert_int_equal(phx_topo_numa_os_index(t, 1), 0);
    assert_int_equal(phx_topo_core_socket(t, 3), 1);
    phx_topo_destroy(t);
}

static void test_gpu_xml(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    phx_topo_t *t = phx_topo_load_xml_file(fixture("gpu-2s2n8c-3gpu.xml"), &err);
    if (!t)
        fail_msg("%s", err.text);
    assert_int_equal(phx_topo_nsockets(t), 2);
    assert_int_equal(phx_topo_nnumas(t), 2);
    assert_int_equal(phx_topo_ncores(t), 8);
    assert_int_equal(phx_topo_npus(t), 16);
    assert_int_equal(phx_topo_numa_memory(t, 1), 64 * GiB);
    /* 3 GPUs (card, renderD, nvml and cuda OS devices merged per PCI
     * function), 1 OpenCL co-processor; the InfiniBand HCA is not one. */
    assert_int_equal(phx_topo_ndevs(t), 4);
    static const char *const names[] = {"cuda0", "cuda1", "cuda2", "opencl1d0"};
    static const char *const pci[] = {"0000:01:00.0", "0000:02:00.0", "0000:82:00.0",
                                      "0000:c5:00.0"};
    static const int numa[] = {0, 0, 1, 1};
    for (int d = 0; d < 4; d++) {
        assert_string_equal(phx_topo_dev_name(t, d), names[d]);
        assert_string_equal(phx_topo_dev_pci(t, d), pci[d]);
        assert_int_equal(phx_topo_dev_numa(t, d), numa[d]);
        assert_int_equal(phx_topo_dev_socket(t, d), numa[d]);
        assert_int_equal(phx_topo_dev_kind(t, d),
                         d < 3 ? PHX_TOPO_DEV_GPU : PHX_TOPO_DEV_COPROC);
    }
    assert_string_equal(phx_topo_dev_model(t, 2), "NVIDIA A100-SXM4-40GB");
    assert_true(phx_topo_emulated(t));
    phx_topo_destroy(t);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static void test_real_xml(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    /* Exported on the development machine: 1 package, 1 NUMA, 2 cores. */
    phx_topo_t *t = phx_topo_load_xml_file(fixture("real-1s1n2c.xml"), &err);
    if (!t)
        fail_msg("%s", err.text);
    assert_int_equal(phx_topo_nsockets(t), 1);
    assert_int_equal(phx_topo_nnumas(t), 1);
    assert_int_equal(phx_topo_ncores(t), 2);
    assert_pus(t, 0, (int[]){0}, 1);
    assert_pus(t, 1, (int[]){1}, 1);
    assert_int_equal(phx_topo_numa_memory(t, 0), 4791762944ULL);
    assert_int_equal(phx_topo_ndevs(t), 0); /* a disk and a NIC only */
    /* The same XML from a buffer, not NUL-terminated. */
    size_t len;
    char *buf = slurp(fixture("real-1s1n2c.xml"), &len);
    phx_topo_t *b = phx_topo_load_xml_buffer(buf, len, &err);
    if (!b)
        fail_msg("%s", err.text);
    json_t *ja = phx_topo_to_json(t), *jb = phx_topo_to_json(b);
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
    free(buf);
    phx_topo_destroy(b);
    phx_topo_destroy(t);
}

static void test_local(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    phx_topo_t *t = phx_topo_load_local(&err);
    if (!t)
        fail_msg("%s", err.text);
    assert_true(phx_topo_ncores(t) >= 1);
    assert_true(phx_topo_npus(t) >= phx_topo_ncores(t));
    assert_false(phx_topo_emulated(t));
    assert_string_equal(phx_topo_source(t), "local");
    phx_topo_destroy(t);
}

static void roundtrip(phx_topo_t *t)
{
    phx_error_t err = {{0}};
    json_t *j = phx_topo_to_json(t);
    assert_non_null(j);
    char *text = json_dumps(j, 0);
    json_t *parsed = json_loads(text, 0, NULL);
    phx_topo_t *back = phx_topo_from_json(parsed, &err);
    if (!back)
        fail_msg("%s", err.text);
    json_t *j2 = phx_topo_to_json(back);
    assert_true(json_equal(j, j2));
    assert_int_equal(phx_topo_ncores(back), phx_topo_ncores(t));
    for (int c = 0; c < phx_topo_ncores(t); c++) {
        assert_int_equal(phx_topo_core_numa(back, c), phx_topo_core_numa(t, c));
        assert_int_equal(phx_topo_core_socket(back, c), phx_topo_core_socket(t, c));
        int n1, n2;
        const int *p1 = phx_topo_core_pus(t, c, &n1),
                  *p2 = phx_topo_core_pus(back, c, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, (size_t)n1 * sizeof(int));
    }
    for (int n = 0; n < phx_topo_nnumas(t); n++)
        assert_int_equal(phx_topo_numa_memory(back, n), phx_topo_numa_memory(t, n));
    for (int d = 0; d < phx_topo_ndevs(t); d++) {
        assert_string_equal(phx_topo_dev_name(back, d), phx_topo_dev_name(t, d));
        assert_int_equal(phx_topo_dev_numa(back, d), phx_topo_dev_numa(t, d));
    }
    assert_int_equal(phx_topo_emulated(back), phx_topo_emulated(t));
    json_decref(j);
    json_decref(j2);
    json_decref(parsed);
    free(text);
    phx_topo_destroy(back);
}

static void test_json_roundtrip(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    phx_topo_t *t = synth("pack:2 numa:2 core:8 pu:2");
    roundtrip(t);
    phx_topo_destroy(t);
    t = phx_topo_load_xml_file(fixture("gpu-2s2n8c-3gpu.xml"), &err);
    assert_non_null(t);
    roundtrip(t);
    phx_topo_destroy(t);
}

/* Ids need not be in document order: they are kept as written. */
static void test_json_ids_kept(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    json_t *j = json_loads(
        "{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":[{\"id\":1,\"memory\":5,"
        "\"cores\":[{\"id\":1,\"pus\":[3,2]}]},{\"id\":0,\"memory\":7,"
        "\"cores\":[{\"id\":0,\"pus\":[0]}]}]}]}",
        0, NULL);
    phx_topo_t *t = phx_topo_from_json(j, &err);
    if (!t)
        fail_msg("%s", err.text);
    assert_int_equal(phx_topo_core_numa(t, 1), 1);
    assert_int_equal(phx_topo_numa_memory(t, 0), 7);
    assert_pus(t, 1, (int[]){2, 3}, 2);
    assert_string_equal(phx_topo_source(t), "json");
    json_decref(j);
    phx_topo_destroy(t);
}

static void expect_json_error(const char *text, const char *want)
{
    phx_error_t err = {{0}};
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s", jerr.text);
    errno = 0;
    phx_topo_t *t = phx_topo_from_json(j, &err);
    json_decref(j);
    if (t) {
        phx_topo_destroy(t);
        fail_msg("accepted %s", text);
    }
    assert_int_equal(errno, EINVAL);
    if (!strstr(err.text, want))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, want);
}

#define CORE(id, pus) "{\"id\":" #id ",\"pus\":" pus "}"
#define NUMA(id, mem, cores)                                                           \
    "{\"id\":" #id ",\"memory\":" #mem ",\"cores\":[" cores "]}"
#define NODE(numas) "{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":[" numas "]}]}"

static void test_json_bad(void **state)
{
    (void)state;
    expect_json_error("[]", "must be a JSON object");
    expect_json_error("{\"version\":1}", "missing field \"sockets\"");
    expect_json_error("{\"sockets\":[]}", "missing field \"version\"");
    expect_json_error("{\"version\":2,\"sockets\":[{}]}", "version 2 is not supported");
    expect_json_error("{\"version\":1,\"sockets\":[]}", "no sockets");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[0]")) "," NUMA(1, 1, CORE(0, "[1]"))),
                      "core 0 is in two NUMA domains (0 and 1)");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[0]") "," CORE(0, "[1]"))),
                      "duplicate core id 0");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[70000]"))), "PU 70000 is out of range");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[-1]"))), "PU -1 is out of range");
    expect_json_error(NODE(NUMA(0, -1, CORE(0, "[0]"))),
                      "NUMA domain 0: field "
                      "\"memory\" = -1 is out of range");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[0]")) "," NUMA(0, 1, CORE(1, "[1]"))),
                      "duplicate NUMA domain id 0");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[0]") "," CORE(5, "[1]"))),
                      "core id 5 is out of range");
    expect_json_error(NODE(NUMA(0, 1, "{\"id\":0}")), "missing field \"pus\"");
    expect_json_error(NODE(NUMA(0, 1, "{\"pus\":[0]}")), "missing field \"id\"");
    expect_json_error(NODE("{\"id\":0,\"cores\":[" CORE(0, "[0]") "]}"),
                      "missing field \"memory\"");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[0]") "," CORE(1, "[0]"))),
                      "PU 0 is in two cores (0 and 1)");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[]"))), "core 0 has no PU");
    expect_json_error(NODE(NUMA(0, 1, CORE(0, "[0]")) "," NUMA(1, 1, "")),
                      "NUMA domain 1 has no cores");
    expect_json_error(NODE(NUMA(0, 1, "")), "topology has no cores");
    expect_json_error("{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":[" NUMA(
                          0, 1, CORE(0, "[0]")) "]},{\"id\":0,\"numa\":[]}]}",
                      "duplicate socket id 0");
    expect_json_error("{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":[" NUMA(
                          0, 1, CORE(0, "[0]")) "]}],\"devices\":[{\"id\":0,\"kind\":"
                                                "\"gpu\",\"name\":\"g\",\"numa\":9}]}",
                      "device 0 names NUMA domain 9");
    expect_json_error("{\"version\":1,\"sockets\":[{\"id\":0,\"numa\":[" NUMA(
                          0, 1, CORE(0, "[0]")) "]}],\"devices\":[{\"id\":0,\"kind\":"
                                                "\"fpga\",\"name\":\"g\"}]}",
                      "unknown kind \"fpga\"");
}

static void expect_synthetic_error(const char *desc, const char *want)
{
    phx_error_t err = {{0}};
    errno = 0;
    phx_topo_t *t = phx_topo_load_synthetic(desc, &err);
    if (t) {
        phx_topo_destroy(t);
        fail_msg("accepted \"%s\"", desc);
    }
    assert_int_not_equal(errno, 0);
    if (!strstr(err.text, want))
        fail_msg("error \"%s\" does not say \"%s\"", err.text, want);
}

static void test_synthetic_bad(void **state)
{
    (void)state;
    expect_synthetic_error("", "empty synthetic description");
    expect_synthetic_error("pack:2 foo:2 core:2 pu:1", "unknown object type \"foo\"");
    expect_synthetic_error("pack:0 core:2 pu:1", "bad count \"0\"");
    expect_synthetic_error("pack:two core:2 pu:1", "bad count \"two\"");
    expect_synthetic_error("pack:2 foo pu:1", "level \"foo\" is not TYPE:COUNT");
    expect_synthetic_error("pack:2 core:2", "must end with a pu level");
    expect_synthetic_error("pack:1000 core:1000 pu:1000", "more than the limit");
    /* Well-formed levels in an order hwloc refuses. */
    expect_synthetic_error("pu:2 core:2 pu:1", "could not read synthetic description");
}

static void test_xml_bad(void **state)
{
    (void)state;
    phx_error_t err = {{0}};
    assert_null(phx_topo_load_xml_file("/nonexistent/topo.xml", &err));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err.text, "could not open file \"/nonexistent/topo.xml\""));
    const char junk[] = "<topology><object type=\"Machine\">";
    assert_null(phx_topo_load_xml_buffer(junk, sizeof(junk) - 1, &err));
    assert_non_null(strstr(err.text, "XML buffer"));
}

int main(void)
{
    /* hwloc's PCI plugin leaks inside libpciaccess (about 1 KB per local
     * discovery), which LeakSanitizer reports; local tests need no PCI. */
    setenv("HWLOC_COMPONENTS", "-pci", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1x1x2),         cmocka_unit_test(test_2x2x8_smt),
        cmocka_unit_test(test_4x2x16),        cmocka_unit_test(test_no_numa_or_package),
        cmocka_unit_test(test_gpu_xml),       cmocka_unit_test(test_real_xml),
        cmocka_unit_test(test_local),         cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_json_ids_kept), cmocka_unit_test(test_json_bad),
        cmocka_unit_test(test_synthetic_bad), cmocka_unit_test(test_xml_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
