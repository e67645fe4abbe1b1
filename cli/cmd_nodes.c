/* phx nodes: list the nodes like sinfo, draw one node's socket/NUMA/core
 * tree, drain and resume nodes (operators only). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "lib/json.h"
#include "topology/coreset.h"
#include "topology/topo.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: phx nodes [--json]\n"
                 "       phx nodes show NODE [--json]\n"
                 "       phx nodes drain NODE --reason TEXT\n"
                 "       phx nodes resume NODE\n");
}

/* "up", "drained", "draining" (drained with work left), "unreachable", "lost" */
static const char *display_state(const json_t *a)
{
    const char *state = "?";
    bool drained = false;
    phx_json_str(a, "state", false, &state, NULL);
    phx_json_bool(a, "drained", false, &drained, NULL);
    if (!drained || strcmp(state, "up") != 0)
        return drained && strcmp(state, "up") != 0 ? state : state;
    json_t *r = json_object_get(a, "resources");
    long long cores = 0, free_cores = 0;
    phx_json_int(r, "cores", false, 0, 1 << 30, &cores, NULL);
    phx_json_int(r, "cores_free", false, 0, 1 << 30, &free_cores, NULL);
    return free_cores < cores ? "draining" : "drained";
}

static int list(bool as_json)
{
    json_t *agents = phx_cli_agents();
    if (!agents)
        return 1;
    if (as_json) {
        char *s = json_dumps(agents, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(agents);
        return 0;
    }
    printf("%-16s %-12s %7s %5s %13s %15s  %s\n", "NODE", "STATE", "SOCKETS", "NUMA",
           "CORES(F/T)", "MEM(F/T)", "REASON");
    size_t i;
    json_t *a;
    json_array_foreach(agents, i, a)
    {
        const char *name = "?", *reason = NULL;
        phx_json_str(a, "name", false, &name, NULL);
        phx_json_str(a, "drain_reason", false, &reason, NULL);
        json_t *r = json_object_get(a, "resources");
        long long sockets = 0, numas = 0, cores = 0, fcores = 0, mem = 0, fmem = 0;
        phx_json_int(r, "sockets", false, 0, 1LL << 40, &sockets, NULL);
        phx_json_int(r, "numas", false, 0, 1LL << 40, &numas, NULL);
        phx_json_int(r, "cores", false, 0, 1LL << 40, &cores, NULL);
        phx_json_int(r, "cores_free", false, 0, 1LL << 40, &fcores, NULL);
        phx_json_int(r, "memory", false, 0, INT64_MAX, &mem, NULL);
        phx_json_int(r, "memory_free", false, 0, INT64_MAX, &fmem, NULL);
        char c[32], m1[16], m2[16], mm[40];
        snprintf(c, sizeof(c), "%lld/%lld", fcores, cores);
        phx_cli_format_bytes((unsigned long long)fmem, m1, sizeof(m1));
        phx_cli_format_bytes((unsigned long long)mem, m2, sizeof(m2));
        snprintf(mm, sizeof(mm), "%s/%s", m1, m2);
        printf("%-16s %-12s %7lld %5lld %13s %15s  %s\n", name, display_state(a),
               sockets, numas, c, mm, reason ? reason : "");
    }
    json_decref(agents);
    return 0;
}

static void draw_cores(const phx_topo_t *t, int numa,
                       const phx_topo_coreset_t *free_set)
{
    printf("      cores:");
    for (int core = 0; core < phx_topo_ncores(t); core++) {
        if (phx_topo_core_numa(t, core) != numa)
            continue;
        bool is_free = free_set && phx_topo_coreset_has(free_set, core);
        printf(" %d%s", core, is_free ? "" : "*");
    }
    printf("\n");
}

static int show(const char *node, bool as_json)
{
    json_t *agents = phx_cli_agents();
    if (!agents)
        return 1;
    json_t *a = NULL, *it;
    size_t i;
    json_array_foreach(agents, i, it)
    {
        const char *name = NULL;
        phx_json_str(it, "name", false, &name, NULL);
        if (name && strcmp(name, node) == 0)
            a = it;
    }
    if (!a) {
        fprintf(stderr, "phx: no node named \"%s\"\n", node);
        json_decref(agents);
        return 1;
    }
    if (as_json) {
        char *s = json_dumps(a, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(agents);
        return 0;
    }
    const char *reason = NULL, *addr = NULL, *free_list = "";
    phx_json_str(a, "drain_reason", false, &reason, NULL);
    phx_json_str(a, "address", false, &addr, NULL);
    phx_json_str(a, "free_cores", false, &free_list, NULL);
    printf("%s  state %s%s%s%s  address %s\n", node, display_state(a),
           reason ? " (" : "", reason ? reason : "", reason ? ")" : "",
           addr ? addr : "-");
    json_t *tj = json_object_get(a, "topology");
    phx_error_t err;
    phx_topo_t *t = tj ? phx_topo_from_json(tj, &err) : NULL;
    if (!t) {
        printf("  (topology not known yet)\n");
        json_decref(agents);
        return 0;
    }
    phx_topo_coreset_t *free_set = phx_topo_coreset_create(phx_topo_ncores(t));
    if (free_set && phx_topo_coreset_parse(free_set, free_list, &err) < 0) {
        phx_topo_coreset_destroy(free_set);
        free_set = NULL;
    }
    char mem[16];
    phx_cli_format_bytes(phx_topo_memory(t), mem, sizeof(mem));
    printf("  %d sockets, %d NUMA domains, %d cores, %d PUs, %s memory; * = in use\n",
           phx_topo_nsockets(t), phx_topo_nnumas(t), phx_topo_ncores(t),
           phx_topo_npus(t), mem);
    for (int s = 0; s < phx_topo_nsockets(t); s++) {
        printf("  socket %d\n", s);
        for (int k = 0; k < phx_topo_socket_nnumas(t, s); k++) {
            int numa = phx_topo_socket_numa(t, s, k);
            phx_cli_format_bytes(phx_topo_numa_memory(t, numa), mem, sizeof(mem));
            printf("    numa %d  %s\n", numa, mem);
            draw_cores(t, numa, free_set);
        }
    }
    for (int d = 0; d < phx_topo_ndevs(t); d++)
        printf("  %s %s (NUMA %d) %s\n",
               phx_topo_dev_kind_name(phx_topo_dev_kind(t, d)), phx_topo_dev_name(t, d),
               phx_topo_dev_numa(t, d), phx_topo_dev_model(t, d));
    phx_topo_coreset_destroy(free_set);
    phx_topo_destroy(t);
    json_decref(agents);
    return 0;
}

static int drain(const char *node, const char *reason, bool on)
{
    json_t *body =
        json_pack("{s:s, s:s, s:s?}", "type", on ? "DRAIN_AGENT" : "REACTIVATE_AGENT",
                  "name", node, "reason", reason);
    json_t *r =
        phx_cli_call(PHX_CLI_MASTER, "POST", "/api/v1/operator", body, true, NULL);
    json_decref(body);
    if (!r)
        return 1;
    printf("node %s %s\n", node, on ? "drained" : "resumed");
    json_decref(r);
    return 0;
}

int phx_cmd_nodes(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool as_json = false;
    const char *reason = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jr:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'r': reason = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int rest = argc - optind;
    char **args = argv + optind;
    if (rest == 0)
        return list(as_json);
    if (rest == 2 && strcmp(args[0], "show") == 0)
        return show(args[1], as_json);
    if (rest == 2 && strcmp(args[0], "drain") == 0) {
        if (!reason || !*reason) {
            fprintf(stderr, "phx: nodes drain needs --reason TEXT\n");
            return 2;
        }
        return drain(args[1], reason, true);
    }
    if (rest == 2 && strcmp(args[0], "resume") == 0)
        return drain(args[1], NULL, false);
    usage(stderr);
    return 2;
}
