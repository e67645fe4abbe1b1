/* phx hold [--user] ID... | phx release ID... | phx requeue [--hold] ID...:
 * hold pending jobs (they stay pending, reason JobHeldUser, or JobHeldAdmin
 * for an operator's hold unless --user) and release them, like scontrol
 * hold, uhold and release; put running or ended jobs back in the queue,
 * like scontrol requeue and requeuehold (N, A_T or A; no A_[list]).
 * ID: N (an array job id A: every pending task of the array), A_T, A_[1-3,5]
 * (Slurm's syntax), or several of them separated by commas ("12,13_2");
 * "jobid=" before an ID is accepted, as scontrol does; "--" ends the
 * options (scontrol's wrapper passes its ids after it).  Jobs refused when
 * others were not are printed on stderr, one a line, and the exit status
 * is then 1, as when all were refused. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/job_ids.h"

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "requeue") == 0)
        fprintf(out, "usage: phx requeue [--hold] ID[,ID...]...\n"
                     "  --hold  held once back in the queue (scontrol requeuehold)\n");
    else if (strcmp(cmd, "release") == 0)
        fprintf(out, "usage: phx release ID[,ID...]...\n");
    else
        fprintf(out, "usage: phx hold [--user] ID[,ID...]...\n"
                     "  --user  a user hold (an operator's hold is an admin hold,\n"
                     "          which only an operator may release)\n");
}

/* Each ID of arg: one call.  0, or 1 when one failed or refused a job (said
 * why). */
static int act(const char *cmd, const char *op, const char *arg)
{
    int rc = 0;
    const char *at = arg, *id;
    size_t len;
    if (strncasecmp(at, "jobid=", 6) == 0)
        at += 6;
    if (!*at) {
        fprintf(stderr, "phx %s: invalid job id \"%s\"\n", cmd, arg);
        return 1;
    }
    while ((id = phx_cli_next_id(&at, &len))) {
        char path[320];
        if (phx_cli_job_path(id, len, op, strncmp(op, "requeue", 7) != 0, path,
                             sizeof(path)) < 0) {
            fprintf(stderr, "phx %s: invalid job id \"%.*s\"\n", cmd, (int)len, id);
            rc = 1;
            continue;
        }
        json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", path, NULL, true, NULL);
        if (!r) {
            rc = 1;
            continue;
        }
        const char *e = json_string_value(json_object_get(r, "error"));
        if (e) { /* requeue of an array: some tasks refused */
            fprintf(stderr, "phx %s: %s\n", cmd, e);
            rc = 1;
        }
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(r, "warnings"), i, w)
        {
            fprintf(stderr, "phx %s: %s\n", cmd, json_string_value(w));
            rc = 1;
        }
        json_decref(r);
    }
    return rc;
}

typedef enum cmd_kind {
    CMD_HOLD,
    CMD_RELEASE,
    CMD_REQUEUE,
} cmd_kind_t;

static int run(int argc, char **argv, cmd_kind_t kind)
{
    static const struct option opts[] = {
        {"user", no_argument, NULL, 'u'},
        {"hold", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const names[] = {"hold", "release", "requeue"};
    const char *cmd = names[kind];
    bool user = false, hold = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "uHh", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (kind != CMD_HOLD) {
                usage(stderr, cmd);
                return 2;
            }
            user = true;
            break;
        case 'H':
            if (kind != CMD_REQUEUE) {
                usage(stderr, cmd);
                return 2;
            }
            hold = true;
            break;
        case 'h': usage(stdout, cmd); return 0;
        default: usage(stderr, cmd); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr, cmd);
        return 2;
    }
    const char *op = kind == CMD_REQUEUE   ? (hold ? "requeuehold" : "requeue")
                     : kind == CMD_RELEASE ? "release"
                     : user                ? "uhold"
                                           : "hold";
    int rc = 0;
    for (int i = optind; i < argc; i++)
        rc |= act(cmd, op, argv[i]);
    return rc;
}

int phx_cmd_hold(int argc, char **argv)
{
    return run(argc, argv, CMD_HOLD);
}

int phx_cmd_release(int argc, char **argv)
{
    return run(argc, argv, CMD_RELEASE);
}

int phx_cmd_requeue(int argc, char **argv)
{
    return run(argc, argv, CMD_REQUEUE);
}
