/* phx partitions: the partitions like sinfo (PARTITION AVAIL TIMELIMIT
 * NODES STATE NODELIST), one line per partition and node state; the
 * default partition is marked "*".  The partitions come from batchd, the
 * nodes' states from the master.  States: mix, alloc, idle (by free cores),
 * drng and drain (drained with work left, or without), down (unreachable
 * or lost), unk (in the partition's list but never registered).  Hidden
 * partitions are listed only to those who may use them (batchd decides),
 * unless -p names one. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "lib/hostlist.h"
#include "lib/json.h"

/* the order of states[] */
enum { ST_MIX, ST_ALLOC, ST_IDLE, ST_DRNG, ST_DRAIN, ST_DOWN, ST_UNK };
static const char *const states[] = {"mix",   "alloc", "idle", "drng",
                                     "drain", "down",  "unk"};
#define NSTATES (sizeof(states) / sizeof(states[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: phx partitions [-p PARTITION] [-a] [--json] [--noheader]\n");
}

static size_t state_of(const json_t *a)
{
    const char *state = "?";
    bool drained = false;
    long long cores = 0, free_cores = 0;
    json_t *r = json_object_get(a, "resources");
    phx_json_str(a, "state", false, &state, NULL);
    phx_json_bool(a, "drained", false, &drained, NULL);
    phx_json_int(r, "cores", false, 0, 1 << 30, &cores, NULL);
    phx_json_int(r, "cores_free", false, 0, 1 << 30, &free_cores, NULL);
    if (strcmp(state, "up") != 0)
        return ST_DOWN;
    if (drained)
        return free_cores < cores ? ST_DRNG : ST_DRAIN;
    return free_cores == cores ? ST_IDLE : free_cores == 0 ? ST_ALLOC : ST_MIX;
}

/* One partition: the names of its nodes by state, printed or appended to
 * rows as JSON. */
static int show(const json_t *p, const json_t *agents, json_t *rows)
{
    const char *name = "?", *nodes = "", *tl = "UNLIMITED", *avail = "up";
    bool deflt = false;
    phx_json_str(p, "name", false, &name, NULL);
    phx_json_str(p, "nodes", false, &nodes, NULL);
    phx_json_str(p, "max_time_text", false, &tl, NULL);
    phx_json_str(p, "state", false, &avail, NULL);
    if (strcmp(avail, "inactive") == 0)
        avail = "inact"; /* sinfo's word */
    phx_json_bool(p, "default", false, &deflt, NULL);
    bool all = strcmp(nodes, "ALL") == 0;
    char **listed = NULL;
    size_t nlisted = 0;
    phx_error_t err;
    if (!all && phx_hostlist_expand(nodes, 0, &listed, &nlisted, &err) < 0) {
        fprintf(stderr, "phx: partition %s: %s\n", name, err.text);
        return -1;
    }
    size_t nagents = json_array_size(agents);
    const char **by[NSTATES];
    size_t count[NSTATES] = {0};
    for (size_t s = 0; s < NSTATES; s++)
        by[s] = calloc(nagents + nlisted + 1, sizeof(char *));
    bool *known = calloc(nlisted + 1, sizeof(bool));
    size_t i;
    json_t *a;
    json_array_foreach(agents, i, a)
    {
        const char *an = NULL;
        phx_json_str(a, "name", false, &an, NULL);
        if (!an)
            continue;
        bool in = all;
        for (size_t k = 0; k < nlisted && !in; k++)
            if (strcmp(listed[k], an) == 0)
                in = known[k] = true;
        if (in) {
            size_t s = state_of(a);
            by[s][count[s]++] = an;
        }
    }
    for (size_t k = 0; k < nlisted; k++)
        if (!known[k])
            by[ST_UNK][count[ST_UNK]++] = listed[k];
    char pname[80];
    snprintf(pname, sizeof(pname), "%s%s", name, deflt ? "*" : "");
    const char *limit = strcmp(tl, "UNLIMITED") == 0 ? "infinite" : tl;
    int rc = 0;
    for (size_t s = 0; s < NSTATES; s++) {
        if (count[s] == 0)
            continue;
        char *list = phx_hostlist_compress(by[s], count[s]);
        if (!list) {
            rc = -1;
            break;
        }
        if (rows)
            json_array_append_new(rows, json_pack("{s:s, s:b, s:s, s:s, s:i, s:s, s:s}",
                                                  "partition", name, "default", deflt,
                                                  "avail", avail, "timelimit", limit,
                                                  "nodes", (int)count[s], "state",
                                                  states[s], "nodelist", list));
        else
            printf("%-10s %5s %10s %6zu %6s %s\n", pname, avail, limit, count[s],
                   states[s], list);
        free(list);
    }
    for (size_t s = 0; s < NSTATES; s++)
        free(by[s]);
    free(known);
    phx_hostlist_free(listed, nlisted);
    return rc;
}

int phx_cmd_partitions(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partition", required_argument, NULL, 'p'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"noheader", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *only = NULL;
    bool as_json = false, header = true, all = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:ah", opts, NULL)) != -1) {
        switch (c) {
        case 'p': only = optarg; break;
        case 'a': all = true; break;
        case 'j': as_json = true; break;
        case 'H': header = false; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    /* naming a partition shows it even when it is Hidden (from this user) */
    char path[160] = "/api/v1/partitions";
    if (only && strlen(only) <= 64 &&
        strspn(only,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
            strlen(only))
        snprintf(path, sizeof(path), "/api/v1/partitions?partition=%s", only);
    else if (all) /* sinfo -a: Hidden partitions too */
        snprintf(path, sizeof(path), "/api/v1/partitions?all=1");
    json_t *r = phx_cli_call(PHX_CLI_BATCHD, "GET", path, NULL, true, NULL);
    if (!r)
        return 1;
    json_t *agents = phx_cli_agents();
    if (!agents) {
        json_decref(r);
        return 1;
    }
    json_t *rows = as_json ? json_array() : NULL;
    if (header && !as_json)
        printf("%-10s %5s %10s %6s %6s %s\n", "PARTITION", "AVAIL", "TIMELIMIT",
               "NODES", "STATE", "NODELIST");
    int rc = 0, shown = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "partitions"), i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (only && (!name || strcmp(name, only) != 0))
            continue;
        shown++;
        if (show(p, agents, rows) < 0)
            rc = 1;
    }
    if (only && shown == 0) {
        fprintf(stderr, "phx: no partition \"%s\"\n", only);
        rc = 1;
    }
    if (rows) {
        char *s = json_dumps(rows, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(rows);
    }
    json_decref(agents);
    json_decref(r);
    return rc;
}
