/* phx hostlist: Slurm host lists for scripts, as `scontrol show hostnames`
 * (expand "n[01-03]" into one name per line) and `scontrol show hostlist`
 * (compress names into "n[01-03]").  Without a list, expand the job's own
 * ($PHX_JOB_NODELIST, else $SLURM_JOB_NODELIST): the usual way of writing
 * a hostfile or picking a head node inside a job. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "lib/hostlist.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: phx hostlist [-e|--expand] [LIST...]\n"
                 "       phx hostlist -c|--compress NAMES...\n"
                 "Expand prints one node name per line (default: the job's\n"
                 "PHX_JOB_NODELIST); compress prints the names as one list.\n");
}

int phx_cmd_hostlist(int argc, char **argv)
{
    static const struct option opts[] = {
        {"expand", no_argument, NULL, 'e'},
        {"compress", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool compress = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ech", opts, NULL)) != -1) {
        switch (c) {
        case 'e': compress = false; break;
        case 'c': compress = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *env = getenv("PHX_JOB_NODELIST");
    if (!env || !*env)
        env = getenv("SLURM_JOB_NODELIST");
    if (optind == argc && (compress || !env || !*env)) {
        fprintf(stderr, compress ? "phx hostlist: no names given\n"
                                 : "phx hostlist: no host list given, and "
                                   "PHX_JOB_NODELIST is not set (outside a job?)\n");
        return 2;
    }
    /* the arguments as one list: "a b,c" is "a,b,c" */
    size_t len = optind == argc ? strlen(env) + 1 : 0;
    for (int i = optind; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *list = malloc(len);
    if (!list) {
        fprintf(stderr, "phx hostlist: out of memory\n");
        return 1;
    }
    list[0] = '\0';
    if (optind == argc)
        strcat(list, env);
    for (int i = optind; i < argc; i++) {
        if (i > optind)
            strcat(list, ",");
        strcat(list, argv[i]);
    }
    char **names = NULL;
    size_t n = 0;
    phx_error_t err;
    if (phx_hostlist_expand(list, 0, &names, &n, &err) < 0) {
        fprintf(stderr, "phx hostlist: %s\n", err.text);
        free(list);
        return 1;
    }
    free(list);
    int rc = 0;
    if (compress) {
        char *text = phx_hostlist_compress((const char *const *)names, n);
        if (text)
            printf("%s\n", text);
        else
            rc = 1, fprintf(stderr, "phx hostlist: out of memory\n");
        free(text);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", names[i]);
    }
    phx_hostlist_free(names, n);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = 1;
    return rc;
}
