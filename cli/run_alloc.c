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
#include <time.h>
#include <unistd.h>

#include "cli/alloc.h"
#include "cli/client.h"
#include "cli/job_submit.h"
#include "cli/run.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
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
    phx_cli_shell_quote(s, cap, self);
    for (int i = 0; i < argc; i++) /* "run" and the same arguments, in the job */
        phx_cli_shell_quote(s, cap, argv[i]);
    size_t l = strlen(s);
    if (l + 2 < cap)
        s[l] = '\n', s[l + 1] = '\0';
    (void)o;
    return s;
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
    long long id =
        script ? phx_cli_submit_script(script, NULL, "phx run", "phx run") : -1;
    free(script);
    if (id < 0) {
        unlink(out);
        return 1;
    }
    fprintf(stderr, "phx run: job %lld holds the allocation of this step\n", id);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    off_t off = 0;
    int rc = 1;
    bool cancelled = false;
    time_t silent = 0; /* since when no batchd answers (a failover) */
    for (;;) {
        if (interrupted && !cancelled) {
            phx_alloc_job_cancel("phx run", id);
            cancelled = true;
        }
        char st[32] = "";
        int ended = phx_alloc_job_poll("phx run", id, st, sizeof(st), &rc, &silent);
        phx_cli_copy_new(out, &off, 1);
        if (ended < 0) {
            rc = 1;
            break;
        }
        if (ended) {
            if (strcmp(st, "COMPLETED") != 0 && strcmp(st, "FAILED") != 0)
                fprintf(stderr, "phx run: job %lld ended %s\n", id, st);
            break;
        }
        usleep(100000);
    }
    usleep(100000);
    phx_cli_copy_new(out, &off, 1);
    unlink(out);
    return rc > 255 ? 255 : rc;
}
