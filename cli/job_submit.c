/* Submissions and their follow-up, shared by cmd_submit.c, run_alloc.c and
 * cmd_alloc.c (job_submit.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/job_submit.h"

extern char **environ;

/* Options that take no value (all others do, unless given with '='). */
static const char *const flags[] = {
    "--exclusive",
    "--requeue",
    "--no-requeue",
    "-W",
    "--wait",
    "--parsable",
    "-Q",
    "--quiet",
    "-v",
    "--verbose",
    "-H",
    "--hold",
    "-s",
    "--oversubscribe",
    "-O",
    "--overcommit",
    "--contiguous",
    "--spread-job",
    "--use-min-nodes",
    "--nice",
    "--test-only",
    "--ignore-pbs",
    "--get-user-env",
    "-k",
    "--no-kill",
    NULL,
};

/* Append s to buf as one single-quoted shell word. */
void phx_cli_shell_quote(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    if (n + 2 < cap)
        buf[n++] = ' ', buf[n++] = '\'';
    for (; *s && n + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(buf + n, "'\\''", 4);
            n += 4;
        } else {
            buf[n++] = *s;
        }
    }
    if (n + 1 < cap)
        buf[n++] = '\'';
    buf[n] = '\0';
}

bool phx_cli_opt_complete(const char *a)
{
    if (strchr(a, '='))
        return true;
    for (const char *const *f = flags; *f; f++)
        if (strcmp(a, *f) == 0)
            return true;
    /* -N2: a short option with its value attached */
    return a[1] != '-' && a[2] != 0;
}

json_t *phx_cli_environ(void)
{
    json_t *env = json_object();
    for (char **e = environ; env && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        size_t n = eq ? (size_t)(eq - *e) : 0;
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, *e, n);
        name[n] = '\0';
        /* the key of this submission, not of the job's own ones (nor part of
         * the body: the first send may have had none, doc/batchd.md) */
        if (strcmp(name, "PHX_SUBMIT_KEY") == 0)
            continue;
        json_t *v = json_string(eq + 1);
        if (v)
            json_object_set_new(env, name, v);
    }
    return env;
}

long long phx_cli_submit_script(const char *script, json_t *opts, const char *filename,
                                const char *submit_line)
{
    char cwd[4096], host[256] = "";
    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), "/");
    gethostname(host, sizeof(host) - 1);
    json_t *body = json_pack(
        "{s:s, s:s, s:o, s:[], s:s, s:o, s:s, s:s}", "script", script, "filename",
        filename, "argv", opts ? opts : json_array(), "args", "cwd", cwd, "env",
        phx_cli_environ(), "submit_line", submit_line, "submit_host", host);
    json_t *r = phx_cli_submit(body, NULL);
    json_decref(body);
    long long id = r ? json_integer_value(json_object_get(r, "job_id")) : -1;
    json_decref(r);
    return id > 0 ? id : -1;
}

int phx_cli_job_poll(long long id, char *state, size_t cap, int *rc)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/jobs/%lld", id);
    int status = 0;
    json_t *j = phx_cli_call(PHX_CLI_BATCHD, "GET", path, NULL, true, &status);
    if (!j)
        return status == 0 || status == 503 ? -2 : -1;
    const char *st = json_string_value(json_object_get(j, "state"));
    json_t *ec = json_object_get(j, "exit_code");
    snprintf(state, cap, "%s", st ? st : "?");
    int ended = st && strcmp(st, "PENDING") != 0 && strcmp(st, "RUNNING") != 0;
    if (ended) {
        *rc = json_is_integer(ec)  ? (int)json_integer_value(ec)
              : json_is_string(ec) ? atoi(json_string_value(ec))
                                   : 1;
        if (strcmp(st, "COMPLETED") != 0 && *rc == 0)
            *rc = 1;
    }
    json_decref(j);
    return ended;
}

int phx_cli_job_cancel(long long id)
{
    char path[80];
    int status = 0;
    snprintf(path, sizeof(path), "/api/v1/jobs/%lld/cancel", id);
    json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", path, NULL, true, &status);
    json_decref(r);
    return r ? 0 : status == 0 || status == 503 ? -2 : -1;
}

void phx_cli_copy_new(const char *path, off_t *off, int fd)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return;
    char buf[65536];
    ssize_t n;
    while ((n = pread(in, buf, sizeof(buf), *off)) > 0) {
        if (write(fd, buf, (size_t)n) < 0)
            break;
        *off += n;
    }
    close(in);
}
