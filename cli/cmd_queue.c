/* phx queue: the queue like squeue (JOBID PARTITION NAME USER ST TIME NODES
 * NODELIST(REASON)); --me, -u USER, -t STATE, -p PARTITION, --json,
 * --noheader. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: phx queue [--me] [-u USER] [-t STATE] [-p PARTITION] [--json] "
                 "[--noheader]\n");
}

static void elapsed(long long s, char *buf, size_t len)
{
    if (s >= 86400)
        snprintf(buf, len, "%lld-%02lld:%02lld:%02lld", s / 86400, s % 86400 / 3600,
                 s % 3600 / 60, s % 60);
    else if (s >= 3600)
        snprintf(buf, len, "%lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
    else
        snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int phx_cmd_queue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"me", no_argument, NULL, 'm'},
        {"user", required_argument, NULL, 'u'},
        {"state", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"noheader", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL, *state = NULL, *part = NULL;
    bool as_json = false, header = true;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:t:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': {
            struct passwd *pw = getpwuid(getuid());
            user = pw ? pw->pw_name : "?";
            break;
        }
        case 'u': user = optarg; break;
        case 't': state = optarg; break;
        case 'p': part = optarg; break;
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
    char path[768];
    snprintf(path, sizeof(path), "/api/v1/jobs?user=%s&state=%s&partition=%s",
             user ? user : "", state ? state : "", part ? part : "");
    json_t *r = phx_cli_call(PHX_CLI_BATCHD, "GET", path, NULL, true, NULL);
    if (!r)
        return 1;
    json_t *jobs = json_object_get(r, "jobs");
    if (as_json) {
        char *s = json_dumps(jobs, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(r);
        return 0;
    }
    if (header)
        printf("%12s %9s %10s %8s %3s %10s %5s %s\n", "JOBID", "PARTITION", "NAME",
               "USER", "ST", "TIME", "NODES", "NODELIST(REASON)");
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        char id[48], t[32], where[256];
        long long jid = json_integer_value(json_object_get(j, "job_id"));
        json_t *at = json_object_get(j, "array_task_id");
        if (at)
            snprintf(id, sizeof(id), "%lld_%lld",
                     (long long)json_integer_value(json_object_get(j, "array_job_id")),
                     (long long)json_integer_value(at));
        else
            snprintf(id, sizeof(id), "%lld", jid);
        elapsed(json_integer_value(json_object_get(j, "elapsed")), t, sizeof(t));
        const char *st = str(j, "state");
        if (strcmp(st, "PENDING") == 0)
            snprintf(where, sizeof(where), "(%s)", str(j, "reason"));
        else
            snprintf(where, sizeof(where), "%s", str(j, "node_list"));
        printf("%12s %9.9s %10.10s %8.8s %3s %10s %5lld %s\n", id, str(j, "partition"),
               str(j, "name"), str(j, "user"), str(j, "state_code"), t,
               (long long)json_integer_value(json_object_get(j, "nodes")), where);
    }
    json_decref(r);
    return 0;
}
