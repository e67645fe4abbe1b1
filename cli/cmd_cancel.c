/* phx cancel ID... | --user USER: cancel jobs (an array job id cancels
 * every task of the array).  Users cancel their own jobs; operators any. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: phx cancel ID...\n       phx cancel --user USER\n");
}

int phx_cmd_cancel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((user != NULL) == (optind < argc)) {
        usage(stderr);
        return 2;
    }
    int rc = 0;
    if (user) {
        json_t *body = json_pack("{s:s}", "user", user);
        json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs/cancel", body,
                                 true, NULL);
        json_decref(body);
        if (!r)
            return 1;
        json_decref(r);
        return 0;
    }
    for (int i = optind; i < argc; i++) {
        char *end;
        unsigned long long id = strtoull(argv[i], &end, 10);
        if (!*argv[i] || *end) {
            fprintf(stderr, "phx cancel: invalid job id \"%s\"\n", argv[i]);
            rc = 1;
            continue;
        }
        char path[64];
        snprintf(path, sizeof(path), "/api/v1/jobs/%llu/cancel", id);
        json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", path, NULL, true, NULL);
        if (!r)
            rc = 1;
        json_decref(r);
    }
    return rc;
}
