/* phx queue: the queue like squeue (JOBID PARTITION NAME USER ST TIME NODES
 * NODELIST(REASON)); --me, -u USER, -j IDS, -n NAMES, -t STATE,
 * -p PARTITION, -a (Hidden partitions too), -o FORMAT (squeue's, default
 * $SQUEUE_FORMAT: cli/queue_format.h), --start (squeue's: pending jobs and
 * their expected start), --json, --noheader. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/queue_format.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: phx queue [--me] [-u USER] [-j ID[,ID...]] [-n NAME[,NAME...]] "
            "[-t STATE]\n"
            "                 [-p PARTITION] [-a] [-o FORMAT | --start] [--json] "
            "[--noheader]\n"
            "  --start  pending jobs with the start their reservation holds "
            "(START_TIME:\n"
            "           N/A but for each pool's top job waiting for Resources)\n");
}

/* Append "&key=value" to buf, the value percent-encoded.  false when it
 * does not fit (nothing is cut: a cut list would select other jobs). */
static bool param(char *buf, size_t len, const char *key, const char *v)
{
    size_t o = strlen(buf);
    o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s=", o ? "&" : "", key);
    if (o >= len)
        return false;
    for (; v && *v; v++) {
        if (o + 4 >= len)
            return false;
        unsigned char c = (unsigned char)*v;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("-_.,~", c))
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, len - o, "%%%02X", c);
    }
    buf[o] = '\0';
    return true;
}

int phx_cmd_queue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"me", no_argument, NULL, 'm'},
        {"user", required_argument, NULL, 'u'},
        {"jobs", required_argument, NULL, 'j'},
        {"name", required_argument, NULL, 'n'},
        {"state", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"all", no_argument, NULL, 'a'},
        {"format", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'J'},
        {"noheader", no_argument, NULL, 'H'},
        {"start", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL, *state = NULL, *part = NULL, *ids = NULL, *names = NULL;
    const char *fmt = getenv("SQUEUE_FORMAT"), *given = NULL;
    bool as_json = false, header = true, all = false, start = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:j:n:t:p:ao:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': {
            struct passwd *pw = getpwuid(getuid());
            user = pw ? pw->pw_name : "?";
            break;
        }
        case 'u': user = optarg; break;
        case 'j': ids = optarg; break;
        case 'n': names = optarg; break;
        case 't': state = optarg; break;
        case 'p': part = optarg; break;
        case 'a': all = true; break;
        case 'o': fmt = given = optarg; break;
        case 'J': as_json = true; break;
        case 'H': header = false; break;
        case 'S': start = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (start) { /* squeue --start: pending jobs, their expected start */
        fmt = given ? given : PHX_QUEUE_FORMAT_START;
        if (!state)
            state = "PENDING";
    }
    if (!fmt || !*fmt)
        fmt = PHX_QUEUE_FORMAT_DEFAULT;
    phx_error_t err;
    if (!as_json && phx_queue_format_check(fmt, &err) < 0) {
        fprintf(stderr, "phx queue: %s\n", err.text);
        return 2;
    }
    char path[4096] = "";
    if (!param(path, sizeof(path), "user", user) ||
        !param(path, sizeof(path), "state", state) ||
        !param(path, sizeof(path), "partition", part) ||
        (ids && !param(path, sizeof(path), "jobs", ids)) ||
        (names && !param(path, sizeof(path), "name", names)) ||
        (all && !param(path, sizeof(path), "all", "1"))) {
        fprintf(stderr, "phx queue: the options' lists are too long (at most about "
                        "4000 characters in all)\n");
        return 2;
    }
    char uri[4200];
    snprintf(uri, sizeof(uri), "/api/v1/jobs?%s", path);
    json_t *r = phx_cli_call(PHX_CLI_BATCHD, "GET", uri, NULL, true, NULL);
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
    char line[8192];
    if (header) {
        phx_queue_format_line(fmt, NULL, 0, line, sizeof(line));
        printf("%s\n", line);
    }
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        phx_queue_format_line(fmt, j, now, line, sizeof(line));
        printf("%s\n", line);
    }
    json_decref(r);
    return 0;
}
