/* phx topo: print the local, a synthetic or an XML topology, as a tree or
 * JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "lib/error.h"
#include "lib/json.h"
#include "topology/coreset.h"
#include "topology/topo.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: phx topo [--synthetic DESC | --xml FILE] [--json] [--verbose]\n"
            "\n"
            "Print a node topology: sockets, NUMA domains with memory, cores,\n"
            "GPUs.  Without --synthetic or --xml, discover this machine.\n"
            "\n"
            "  -s, --synthetic DESC  hwloc synthetic description, e.g.\n"
            "                        \"pack:2 numa:2 core:8 pu:2\"\n"
            "  -x, --xml FILE        hwloc XML (lstopo --of xml)\n"
            "  -j, --json            print the model as JSON\n"
            "  -v, --verbose         list the PUs of every core\n");
}

static void print_bytes(unsigned long long b)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    printf(u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/* Print the ids in [0, n) for which pick(topo, id) == want, as a list. */
static char *id_list(const phx_topo_t *topo, int want,
                     int (*pick)(const phx_topo_t *, int))
{
    phx_topo_coreset_t *set = phx_topo_coreset_create(phx_topo_ncores(topo));
    if (!set)
        return NULL;
    for (int c = 0; c < phx_topo_ncores(topo); c++)
        if (pick(topo, c) == want)
            phx_topo_coreset_add(set, c);
    char *s = phx_topo_coreset_str(set);
    phx_topo_coreset_destroy(set);
    return s;
}

static void print_devs(const phx_topo_t *topo, int socket, int numa, const char *indent)
{
    for (int d = 0; d < phx_topo_ndevs(topo); d++) {
        if (phx_topo_dev_socket(topo, d) != socket ||
            phx_topo_dev_numa(topo, d) != numa)
            continue;
        const char *pci = phx_topo_dev_pci(topo, d),
                   *model = phx_topo_dev_model(topo, d);
        printf("%s%s %d: %s", indent,
               phx_topo_dev_kind_name(phx_topo_dev_kind(topo, d)), d,
               phx_topo_dev_name(topo, d));
        if (pci[0])
            printf(" [%s]", pci);
        if (model[0])
            printf(" %s", model);
        printf("\n");
    }
}

static void print_cores(const phx_topo_t *topo, int numa)
{
    for (int c = 0; c < phx_topo_ncores(topo); c++) {
        if (phx_topo_core_numa(topo, c) != numa)
            continue;
        int npus;
        const int *pus = phx_topo_core_pus(topo, c, &npus);
        printf("      core %d: PU", c);
        for (int i = 0; i < npus; i++)
            printf("%s%d", i ? "," : " ", pus[i]);
        printf("\n");
    }
}

static int print_tree(const phx_topo_t *topo, bool verbose)
{
    int ns = phx_topo_nsockets(topo), nn = phx_topo_nnumas(topo);
    printf("node (%s%s): %d socket%s, %d NUMA domain%s, %d cores, %d PUs, ",
           phx_topo_source(topo), phx_topo_emulated(topo) ? ", emulated" : "", ns,
           ns == 1 ? "" : "s", nn, nn == 1 ? "" : "s", phx_topo_ncores(topo),
           phx_topo_npus(topo));
    print_bytes(phx_topo_memory(topo));
    printf(", %d GPU/co-processor%s\n", phx_topo_ndevs(topo),
           phx_topo_ndevs(topo) == 1 ? "" : "s");
    print_devs(topo, -1, -1, "  ");
    for (int s = 0; s < phx_topo_nsockets(topo); s++) {
        printf("  socket %d: %d cores\n", s, phx_topo_socket_ncores(topo, s));
        print_devs(topo, s, -1, "    ");
        for (int i = 0; i < phx_topo_socket_nnumas(topo, s); i++) {
            int n = phx_topo_socket_numa(topo, s, i);
            char *cores = id_list(topo, n, phx_topo_core_numa);
            phx_topo_coreset_t *set = phx_topo_coreset_create(phx_topo_ncores(topo));
            char *pus = NULL;
            if (set) {
                for (int c = 0; c < phx_topo_ncores(topo); c++)
                    if (phx_topo_core_numa(topo, c) == n)
                        phx_topo_coreset_add(set, c);
                pus = phx_topo_cpuset_str(topo, set);
            }
            if (!cores || !pus) {
                free(cores);
                free(pus);
                phx_topo_coreset_destroy(set);
                fprintf(stderr, "phx topo: out of memory\n");
                return 1;
            }
            printf("    numa %d: ", n);
            print_bytes(phx_topo_numa_memory(topo, n));
            printf(", cores %s, PUs %s\n", cores, pus);
            free(cores);
            free(pus);
            phx_topo_coreset_destroy(set);
            print_devs(topo, s, n, "      ");
            if (verbose)
                print_cores(topo, n);
        }
    }
    return 0;
}

static int print_json(const phx_topo_t *topo)
{
    json_t *j = phx_topo_to_json(topo);
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!s) {
        fprintf(stderr, "phx topo: out of memory\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

int phx_cmd_topo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"synthetic", required_argument, NULL, 's'},
        {"xml", required_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *synthetic = NULL, *xml = NULL;
    bool json = false, verbose = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "s:x:jvh", opts, NULL)) != -1) {
        switch (opt) {
        case 's': synthetic = optarg; break;
        case 'x': xml = optarg; break;
        case 'j': json = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (synthetic && xml)) {
        fprintf(stderr,
                optind < argc ? "phx topo: unexpected argument \"%s\"\n"
                              : "phx topo: --synthetic and --xml exclude "
                                "each other%s\n",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return 2;
    }
    phx_error_t err = {{0}};
    phx_topo_t *topo = synthetic ? phx_topo_load_synthetic(synthetic, &err)
                       : xml     ? phx_topo_load_xml_file(xml, &err)
                                 : phx_topo_load_local(&err);
    if (!topo) {
        fprintf(stderr, "phx topo: %s\n", err.text);
        return 1;
    }
    int rc = json ? print_json(topo) : print_tree(topo, verbose);
    phx_topo_destroy(topo);
    return rc;
}
