/* phx cancel ID... | [--user USER] [--name NAME]: cancel jobs.  ID is a job
 * id (an array job id A: every task of the array), A_T (task T of array A
 * alone) or A_[1-3,5] (those tasks; Slurm's syntax).  Users cancel their own
 * jobs; operators any.
 *
 * phx cancel -s SIG [-b|-f] ID...: signal running jobs instead (scancel -s):
 * the ranks of their steps on every node; with -b the batch shell alone;
 * with -f the batch shell, its children and the steps.  -b or -f without
 * -s sends KILL.  SIG is a number or a name (USR1, SIGUSR1, 10); batchd
 * checks it.  A pending job is refused; -s KILL alone cancels (Slurm's).
 * Exit status 1 when a node of a job did not get the signal (named with
 * its reason), though others did. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: phx cancel ID|ARRAY_TASK|ARRAY_[LIST]...\n"
                 "       phx cancel [--user USER] [--name NAME]\n"
                 "       phx cancel -s|--signal SIG [-b|--batch | -f|--full] "
                 "ID|ARRAY_TASK...\n"
                 "  -s SIG   send SIG (USR1, SIGUSR1, 10...) to the job's steps\n"
                 "           instead of cancelling it\n"
                 "  -b       to the batch shell alone (KILL without -s)\n"
                 "  -f       to the batch shell, its children and the steps\n");
}

/* "/api/v1/jobs/<id>/<verb>" for N, A_T, A_[list] (brackets dropped); -1
 * for anything else. */
static int job_path(const char *arg, const char *verb, char *path, size_t len)
{
    char id[256];
    size_t n = strspn(arg, "0123456789");
    if (n == 0 || n > 20)
        return -1;
    if (arg[n] == '\0') {
        snprintf(path, len, "/api/v1/jobs/%s/%s", arg, verb);
        return 0;
    }
    if (arg[n] != '_')
        return -1;
    const char *t = arg + n + 1;
    size_t tl = strlen(t);
    if (tl >= 2 && t[0] == '[' && t[tl - 1] == ']') {
        t++;
        tl -= 2;
    }
    if (tl == 0 || strspn(t, "0123456789-,:") < tl ||
        (size_t)snprintf(id, sizeof(id), "%.*s_%.*s", (int)n, arg, (int)tl, t) >=
            sizeof(id))
        return -1;
    return (size_t)snprintf(path, len, "/api/v1/jobs/%s/%s", id, verb) < len ? 0 : -1;
}

int phx_cmd_cancel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"name", required_argument, NULL, 'n'},
        {"signal", required_argument, NULL, 's'},
        {"batch", no_argument, NULL, 'b'},
        {"full", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL, *name = NULL, *sig = NULL, *scope = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:n:s:bfh", opts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'n': name = optarg; break;
        case 's': sig = optarg; break;
        case 'b':
        case 'f':
            if (scope && strcmp(scope, c == 'b' ? "batch" : "full") != 0) {
                fprintf(stderr, "phx cancel: --batch and --full exclude each other\n");
                return 2;
            }
            scope = c == 'b' ? "batch" : "full";
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    bool filter = user || name;
    if (filter == (optind < argc)) {
        usage(stderr);
        return 2;
    }
    if (scope && !sig)
        sig = "KILL"; /* scancel -b: SIGKILL to the batch shell */
    if (sig && filter) {
        fprintf(stderr, "phx cancel: --signal needs job ids, not --user or --name\n");
        return 2;
    }
    int rc = 0;
    if (filter) {
        json_t *body = json_pack("{s:s?, s:s?}", "user", user, "name", name);
        json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs/cancel", body,
                                 true, NULL);
        json_decref(body);
        if (!r)
            return 1;
        json_decref(r);
        return 0;
    }
    for (int i = optind; i < argc; i++) {
        char path[320];
        if (sig && strpbrk(argv[i], "[-,:")) {
            fprintf(stderr,
                    "phx cancel: --signal takes a job id or one array task (A_T), "
                    "not \"%s\"\n",
                    argv[i]);
            rc = 1;
            continue;
        }
        if (job_path(argv[i], sig ? "signal" : "cancel", path, sizeof(path)) < 0) {
            fprintf(stderr, "phx cancel: invalid job id \"%s\"\n", argv[i]);
            rc = 1;
            continue;
        }
        json_t *body = sig ? json_pack("{s:s, s:s}", "signal", sig, "scope",
                                       scope ? scope : "steps")
                           : NULL;
        json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", path, body, true, NULL);
        json_decref(body);
        /* a signal some nodes did not get: which, and why (api_signal.c) */
        const char *partial = json_string_value(json_object_get(r, "message"));
        if (sig && partial)
            fprintf(stderr, "phx cancel: job %s: %s\n", argv[i], partial);
        if (!r || (sig && partial))
            rc = 1;
        json_decref(r);
    }
    return rc;
}
