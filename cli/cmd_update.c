/* phx update ID... KEY=VALUE...: change fields of jobs, like scontrol
 * update JobId=ID KEY=VALUE (doc/jobs.md, "Changing a job").  ID: N (an
 * array job id A: every pending task of the array), A_T, A_[1-3,5], or
 * several separated by commas; "jobid=ID" (any case) is an ID too.  Every
 * other argument with a '=' is a field, sent as given: batchd knows the
 * fields (an unknown one is refused by name) and checks the values.  Each
 * job changed prints "job ID: KEY=VALUE..." (what changed); each refused is
 * named on stderr, and the exit status is then 1. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/job_ids.h"

#define MAX_FIELDS 32

static void usage(FILE *out)
{
    fprintf(out, "usage: phx update ID[,ID...]... KEY=VALUE...\n"
                 "  ID: N, A_T, A_[1-3,5] or jobid=ID\n"
                 "  KEY: TimeLimit, JobName (Name), Partition, NumNodes, NumTasks,\n"
                 "       MinMemoryNode, MinMemoryCPU, Dependency, Nice, Account,\n"
                 "       ExcNodeList, ReqNodeList (NodeList), Features, QOS, Comment\n"
                 "  (a running job: TimeLimit lowered, JobName, Comment)\n");
}

/* One call per id of arg.  0, or 1 when one failed or refused a job. */
static int update_ids(const char *arg, const json_t *body)
{
    int rc = 0;
    const char *at = arg, *id;
    size_t len;
    if (strncasecmp(at, "jobid=", 6) == 0)
        at += 6;
    if (!*at) {
        fprintf(stderr, "phx update: invalid job id \"%s\"\n", arg);
        return 1;
    }
    while ((id = phx_cli_next_id(&at, &len))) {
        char path[320];
        if (phx_cli_job_path(id, len, "update", true, path, sizeof(path)) < 0) {
            fprintf(stderr, "phx update: invalid job id \"%.*s\"\n", (int)len, id);
            rc = 1;
            continue;
        }
        json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", path, body, true, NULL);
        if (!r) {
            rc = 1;
            continue;
        }
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(r, "changes"), i, v)
            printf("%s\n", json_string_value(v));
        json_array_foreach(json_object_get(r, "warnings"), i, v)
        {
            fprintf(stderr, "phx update: %s\n", json_string_value(v));
        }
        if (json_integer_value(json_object_get(r, "refused")) > 0)
            rc = 1;
        json_decref(r);
    }
    return rc;
}

int phx_cmd_update(int argc, char **argv)
{
    const char *ids[256];
    int nids = 0, start = 1;
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--"))
        start = 2;
    json_t *fields = json_array();
    for (int i = start; fields && i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-') {
            fprintf(stderr, "phx update: unknown option \"%s\"\n", a);
            usage(stderr);
            json_decref(fields);
            return 2;
        }
        if (!strchr(a, '=') || strncasecmp(a, "jobid=", 6) == 0) {
            if (nids == (int)(sizeof(ids) / sizeof(ids[0]))) {
                fprintf(stderr, "phx update: too many job ids\n");
                json_decref(fields);
                return 2;
            }
            ids[nids++] = a;
        } else if (json_array_size(fields) >= MAX_FIELDS) {
            fprintf(stderr, "phx update: too many fields (at most %d)\n", MAX_FIELDS);
            json_decref(fields);
            return 2;
        } else {
            json_array_append_new(fields, json_string(a));
        }
    }
    if (!fields || nids == 0 || json_array_size(fields) == 0) {
        fprintf(stderr, "phx update: %s\n",
                !fields ? "out of memory"
                : nids  ? "no field to change (KEY=VALUE)"
                        : "no job id");
        usage(stderr);
        json_decref(fields);
        return 2;
    }
    json_t *body = json_pack("{s:o}", "fields", fields);
    if (!body) {
        fprintf(stderr, "phx update: out of memory\n");
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < nids; i++)
        rc |= update_ids(ids[i], body);
    json_decref(body);
    return rc;
}
