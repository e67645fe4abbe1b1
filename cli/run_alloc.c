/* phx run outside a job: an allocation from phx-batchd for the step alone.
 *
 * The step becomes a one-line batch job (`exec phx run <same arguments>`)
 * with the step's shape as directives; `phx run` follows the job, copies its
 * output file to the terminal as it grows, cancels the job on SIGINT/SIGTERM
 * and exits with the job's exit code.  The output file is a hidden file in
 * the current directory (it must be reachable from the job's first node, as
 * sbatch's default output is), removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/run.h"

extern char **environ;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* Append s to buf as one single-quoted shell word. */
static void quote(char *buf, size_t cap, const char *s)
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

static char *make_script(const phx_run_opts_t *o, int argc, char **argv,
                         const char *out)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    size_t cap = 65536;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int len = snprintf(s, cap, "#!/bin/sh\n#PHX -J phx-run\n#PHX -o %s\n", out);
    if (o->nodes > 0)
        len += snprintf(s + len, cap - (size_t)len, "#PHX -N %ld\n", o->nodes);
    if (o->ntasks > 0)
        len += snprintf(s + len, cap - (size_t)len, "#PHX -n %ld\n", o->ntasks);
    if (o->ntasks_per_node > 0)
        len += snprintf(s + len, cap - (size_t)len, "#PHX --ntasks-per-node=%ld\n",
                        o->ntasks_per_node);
    if (o->cpus_per_task > 1)
        len += snprintf(s + len, cap - (size_t)len, "#PHX -c %ld\n", o->cpus_per_task);
    /* host lists: checked by phx run (no space, no line break) */
    if (o->nodelist)
        len += snprintf(s + len, cap - (size_t)len, "#PHX -w %s\n", o->nodelist);
    if (o->exclude)
        len += snprintf(s + len, cap - (size_t)len, "#PHX -x %s\n", o->exclude);
    if (o->gpus_per_task > 0)
        len += snprintf(s + len, cap - (size_t)len, "#PHX --gpus-per-task=%ld\n",
                        o->gpus_per_task);
    snprintf(s + len, cap - (size_t)len, "exec");
    quote(s, cap, self);
    for (int i = 0; i < argc; i++) /* "run" and the same arguments, in the job */
        quote(s, cap, argv[i]);
    size_t l = strlen(s);
    if (l + 2 < cap)
        s[l] = '\n', s[l + 1] = '\0';
    (void)o;
    return s;
}

static long long submit(const char *script)
{
    json_t *env = json_object();
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        size_t n = eq ? (size_t)(eq - *e) : 0;
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, *e, n);
        name[n] = '\0';
        json_object_set_new(env, name, json_string(eq + 1));
    }
    char cwd[4096], host[256] = "";
    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), "/");
    gethostname(host, sizeof(host) - 1);
    json_t *body = json_pack("{s:s, s:s, s:[], s:[], s:s, s:o, s:s, s:s}", "script",
                             script, "filename", "phx run", "argv", "args", "cwd", cwd,
                             "env", env, "submit_line", "phx run", "submit_host", host);
    json_t *r = phx_cli_call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, true, NULL);
    json_decref(body);
    long long id = r ? json_integer_value(json_object_get(r, "job_id")) : -1;
    json_decref(r);
    return id > 0 ? id : -1;
}

/* Copy what the output file grew by since *off. */
static void copy_new(const char *path, off_t *off)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[65536];
    ssize_t n;
    while ((n = pread(fd, buf, sizeof(buf), *off)) > 0) {
        if (write(1, buf, (size_t)n) < 0)
            break;
        *off += n;
    }
    close(fd);
}

int phx_run_alloc(const phx_run_opts_t *o, int argc, char **argv)
{
    char out[PATH_MAX];
    char cwd[PATH_MAX - 64];
    if (!getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "phx run: could not read the current directory: %s\n",
                strerror(errno));
        return 1;
    }
    snprintf(out, sizeof(out), "%s/.phx-run-%d.out", cwd, (int)getpid());
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "phx run: could not create \"%s\": %s\n", out, strerror(errno));
        return 1;
    }
    close(fd);
    char *script = make_script(o, argc, argv, out);
    long long id = script ? submit(script) : -1;
    free(script);
    if (id < 0) {
        unlink(out);
        return 1;
    }
    fprintf(stderr, "phx run: job %lld holds the allocation of this step\n", id);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/jobs/%lld", id);
    off_t off = 0;
    int rc = 1;
    bool cancelled = false;
    for (;;) {
        if (interrupted && !cancelled) {
            char cpath[80];
            snprintf(cpath, sizeof(cpath), "/api/v1/jobs/%lld/cancel", id);
            json_decref(phx_cli_call(PHX_CLI_BATCHD, "POST", cpath, NULL, true, NULL));
            cancelled = true;
        }
        json_t *j = phx_cli_call(PHX_CLI_BATCHD, "GET", path, NULL, true, NULL);
        copy_new(out, &off);
        if (!j)
            break;
        const char *st = json_string_value(json_object_get(j, "state"));
        json_t *ec = json_object_get(j, "exit_code");
        if (st && strcmp(st, "PENDING") != 0 && strcmp(st, "RUNNING") != 0) {
            rc = json_is_integer(ec)  ? (int)json_integer_value(ec)
                 : json_is_string(ec) ? atoi(json_string_value(ec))
                                      : 1;
            if (strcmp(st, "COMPLETED") != 0 && rc == 0)
                rc = 1;
            if (strcmp(st, "COMPLETED") != 0 && strcmp(st, "FAILED") != 0)
                fprintf(stderr, "phx run: job %lld ended %s\n", id, st);
            json_decref(j);
            break;
        }
        json_decref(j);
        usleep(100000);
    }
    usleep(100000);
    copy_new(out, &off);
    unlink(out);
    return rc > 255 ? 255 : rc;
}
