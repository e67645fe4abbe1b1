/* phx run: an MPI step inside a job.
 *
 *   phx run [-N nodes] [-n ntasks] [--ntasks-per-node N] [-c cpus-per-task]
 *           [--cpu-bind=cores|sockets|none] [--distribution=block|cyclic]
 *           [--label] [-i|--input=all|none|RANK] [-K|--kill-on-bad-exit]
 *           [--gpus-per-task=N] [--gpu-bind=closest|none] [--pty] prog args...
 *
 * Inside a batch job, PHX_CPU_BIND and PHX_DISTRIBUTION (the job's --cpu-bind
 * and -m) are the defaults of the two options, as sbatch's are srun's, and
 * PHX_GPUS_PER_TASK (the job's --gpus-per-task) that of --gpus-per-task.
 * Without -n, -N, --ntasks-per-node, -w or -x it starts the job's tasks
 * laid out as the job's (PHX_TASKS_PER_NODE over PHX_JOB_NODELIST, sent
 * as "job_layout"; PHX_NTASKS: run_tasks.c), as srun does in a job; with
 * -N alone, one task per node.
 *
 * It asks the agent of its node (PHX_AGENT_SOCKET, set in every task's
 * environment) to launch the step over the job's nodes, streams the ranks'
 * output, forwards its standard input to the ranks (run_input.c) and exits
 * with the highest rank exit code, or 128+signal.  Outside a job it asks
 * phx-batchd for an allocation first (run_alloc.c).  --pty runs rank 0 on a
 * terminal of its node (run_pty.c). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/run.h"
#include "cli/sock.h"
#include "lib/wire.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f, "usage: phx run [-N nodes] [-n ntasks] [--ntasks-per-node N] "
               "[-c cpus-per-task]\n"
               "               [--cpu-bind=cores|sockets|none] "
               "[--distribution=block|cyclic] [--label]\n"
               "               [-w|--nodelist LIST] [-x|--exclude LIST] "
               "[-i|--input=all|none|RANK]\n"
               "               [--gpus-per-task=N] [--gpu-bind=closest|none]\n"
               "               [--pty] [-K|--kill-on-bad-exit] prog [args...]\n");
}

static json_t *request(int argc, char **argv, int first, const phx_run_opts_t *o,
                       const char *bind, const char *dist, bool label, int input)
{
    json_t *args = json_array(), *env = json_object();
    for (int i = first; i < argc; i++)
        json_array_append_new(args, json_string(argv[i]));
    for (char **e = environ; *e; e++) {
        char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char key[256];
        size_t klen = (size_t)(eq - *e);
        if (klen == 0 || klen >= sizeof(key))
            continue;
        memcpy(key, *e, klen);
        key[klen] = '\0';
        /* no SLURM_* for the ranks (batchd.slurm_env gives them to batch
         * scripts): OpenMPI would believe it runs under Slurm */
        if (strncmp(key, "SLURM_", 6) == 0)
            continue;
        json_object_set_new(env, key, json_string(eq + 1));
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), "/");
    json_t *r = json_pack(
        "{s:s, s:s?, s:s?, s:i, s:i, s:i, s:i, s:s, s:s, s:b, s:o, s:o, s:s}", "type",
        "STEP_REQUEST", "framework_id", getenv("PHX_FRAMEWORK_ID"), "task_id",
        getenv("PHX_TASK_ID"), "nodes", (int)o->nodes, "ntasks", (int)o->ntasks,
        "ntasks_per_node", (int)o->ntasks_per_node, "cpus_per_task",
        (int)o->cpus_per_task, "cpu_bind", bind, "distribution", dist, "label", label,
        "argv", args, "env", env, "cwd", cwd);
    if (r && o->nodelist)
        json_object_set_new(r, "nodelist", json_string(o->nodelist));
    if (r && o->exclude)
        json_object_set_new(r, "exclude", json_string(o->exclude));
    if (r)
        json_object_set_new(r, "input",
                            input == PHX_RUN_INPUT_ALL    ? json_string("all")
                            : input == PHX_RUN_INPUT_NONE ? json_string("none")
                                                          : json_integer(input));
    return r;
}

/* A host list's characters ("n[01-04],login1"): what a directive line and
 * the master's parser may take. */
static bool host_list_ok(const char *v)
{
    return *v && strlen(v) < 4096 &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                     "[]-,._") == strlen(v);
}

static bool parse_long(const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min)
        return false;
    *out = v;
    return true;
}

/* The job's --cpu-bind ([verbose|quiet,]none|cores|sockets) as phx run's
 * value; NULL with a warning for anything else (a job submitted before such
 * values were refused). */
static const char *job_cpu_bind(void)
{
    const char *v = getenv("PHX_CPU_BIND");
    if (!v || !*v)
        return NULL;
    const char *t = v;
    if (strncmp(t, "verbose,", 8) == 0)
        t += 8;
    else if (strncmp(t, "quiet,", 6) == 0)
        t += 6;
    if (strcmp(t, "none") == 0 || strcmp(t, "no") == 0)
        return "none";
    if (strcmp(t, "cores") == 0 || strcmp(t, "sockets") == 0)
        return t;
    fprintf(stderr,
            "phx run: warning: ignoring the job's --cpu-bind=%s (phx run binds "
            "to cores, sockets or none)\n",
            v);
    return NULL;
}

/* The node-level part of the job's -m (block|cyclic[:block|cyclic], "*" for
 * the default); NULL with a warning for anything else. */
static const char *job_distribution(void)
{
    const char *v = getenv("PHX_DISTRIBUTION");
    if (!v || !*v)
        return NULL;
    size_t n = strcspn(v, ":");
    if (n == 1 && v[0] == '*')
        return NULL;
    if (n == 5 && strncmp(v, "block", 5) == 0)
        return "block";
    if (n == 6 && strncmp(v, "cyclic", 6) == 0)
        return "cyclic";
    fprintf(stderr,
            "phx run: warning: ignoring the job's --distribution=%s (phx run "
            "distributes block or cyclic)\n",
            v);
    return NULL;
}

/* The job's --gpus-per-task (its count), 0 without one. */
static long job_gpus_per_task(void)
{
    const char *v = getenv("PHX_GPUS_PER_TASK");
    long n;
    if (!v || !*v)
        return 0;
    if (parse_long(v, 1, &n) && n <= 1024)
        return n;
    fprintf(stderr, "phx run: warning: ignoring PHX_GPUS_PER_TASK=%s\n", v);
    return 0;
}

/* The job's task count, node list and tasks per node (in that list's
 * order): PHX_NTASKS, PHX_JOB_NODELIST, PHX_TASKS_PER_NODE, else Slurm's
 * names (a script that kept only those); NULL when not set.  The three of
 * one family, never mixed. */
static void job_vars(const char **ntasks, const char **list, const char **tpn)
{
    *ntasks = getenv("PHX_NTASKS");
    *list = getenv("PHX_JOB_NODELIST");
    *tpn = getenv("PHX_TASKS_PER_NODE");
    if (*ntasks || *list || *tpn)
        return;
    *ntasks = getenv("SLURM_NTASKS");
    *list = getenv("SLURM_JOB_NODELIST");
    *tpn = getenv("SLURM_TASKS_PER_NODE");
}

/* Read frames until DONE or ERROR, writing the input (in->fd >= 0) as the
 * agent takes it; the exit code. */
static int serve(int fd, bool label, phx_run_in_t *in, phx_winsize_t *pty)
{
    /* new sizes: the latest, at most PHX_WINSIZE_RATE a second, once the
     * step started (a terminal resized without end sent a frame for each
     * SIGWINCH) */
    phx_winsize_gate_t resize = {0};
    phx_wire_decoder_t *dec = phx_wire_decoder_create(PHX_WIRE_DEFAULT_MAX);
    phx_run_out_t *out = phx_run_out_create(0, label, 1, 2);
    phx_error_t err;
    int rc = -1;
    uint8_t buf[65536];
    if (!dec || !out)
        fprintf(stderr, "phx run: out of memory\n");
    while (dec && out && rc < 0) {
        /* between frames, and before stdin is read (not meanwhile) */
        struct timespec wait, *timeout = NULL;
        int64_t wait_ms = 0;
        phx_winsize_t ws;
        int due =
            in->started && !phx_run_in_want_write(in)
                ? phx_winsize_gate_take(&resize, phx_winsize_now_ms(), &ws, &wait_ms)
                : -1;
        if (due == 1 && phx_run_pty_frame(in, &ws) < 0)
            phx_winsize_gate_put(&resize, &ws); /* no memory: later */
        if (due == 0) {
            wait = (struct timespec){wait_ms / 1000, wait_ms % 1000 * 1000000};
            timeout = &wait;
        }
        struct pollfd p[2] = {
            {fd, POLLIN | (phx_run_in_want_write(in) ? POLLOUT : 0), 0},
            {phx_run_in_want_read(in) ? in->fd : -1, POLLIN, 0},
        };
        if (ppoll(p, 2, timeout, phx_run_pty_poll_mask()) < 0) {
            int e = errno;
            if (pty && phx_run_pty_resized(pty)) /* SIGWINCH */
                phx_winsize_gate_put(&resize, pty);
            if (e == EINTR)
                continue;
            fprintf(stderr, "phx run: poll: %s\n", strerror(e));
            rc = 1;
            break;
        }
        if (p[1].revents)
            phx_run_in_read(in);
        if ((p[0].revents & POLLOUT) || phx_run_in_want_write(in))
            phx_run_in_write(in, fd);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "phx run: lost the connection to the agent\n");
            rc = 1;
            break;
        }
        if (phx_wire_decoder_feed(dec, buf, (size_t)n, &err) < 0) {
            fprintf(stderr, "phx run: %s\n", err.text);
            rc = 1;
            break;
        }
        phx_frame_t f;
        while (rc < 0 && phx_wire_decoder_next(dec, &f, &err) == 1) {
            json_t *h = f.header;
            int rank = (int)json_integer_value(json_object_get(h, "rank"));
            if (strcmp(f.type, "OUTPUT") == 0 && pty && rank == 0) {
                phx_run_pty_write(f.attach, f.attach_len); /* the terminal's */
            } else if (strcmp(f.type, "OUTPUT") == 0) {
                phx_run_out_data(out, rank,
                                 (int)json_integer_value(json_object_get(h, "stream")),
                                 f.attach, f.attach_len);
            } else if (strcmp(f.type, "STEP_STARTED") == 0) {
                json_int_t size = json_integer_value(json_object_get(h, "size"));
                phx_run_out_t *sized = phx_run_out_create(
                    size > 0 && size <= 1 << 20 ? (int)size : 0, label, 1, 2);
                if (sized) {
                    phx_run_out_destroy(out);
                    out = sized;
                }
                in->started = true; /* its ranks are there to read */
            } else if (strcmp(f.type, "DONE") == 0) {
                rc = (int)json_integer_value(json_object_get(h, "exit_code"));
                rc = rc < 0 ? 1 : rc > 255 ? 255 : rc;
            } else if (strcmp(f.type, "ERROR") == 0) {
                const char *msg = json_string_value(json_object_get(h, "message"));
                fprintf(stderr, "phx run: %s\n", msg ? msg : "step failed");
                rc = 1;
            }
            phx_frame_clear(&f);
        }
    }
    phx_run_out_destroy(out); /* what is left of partial lines */
    phx_wire_decoder_destroy(dec);
    return rc < 0 ? 1 : rc;
}

int phx_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'N'},
        {"ntasks", required_argument, NULL, 'n'},
        {"ntasks-per-node", required_argument, NULL, 'T'},
        {"cpus-per-task", required_argument, NULL, 'c'},
        {"cpu-bind", required_argument, NULL, 'B'},
        {"distribution", required_argument, NULL, 'm'},
        {"label", no_argument, NULL, 'l'},
        {"nodelist", required_argument, NULL, 'w'},
        {"exclude", required_argument, NULL, 'x'},
        {"input", required_argument, NULL, 'i'},
        {"gpus-per-task", required_argument, NULL, 'G'},
        {"gpu-bind", required_argument, NULL, 'g'},
        {"pty", no_argument, NULL, 'P'},
        {"kill-on-bad-exit", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long nodes = 0, ntasks = 0, ntpn = 0, cpt = 1, gpt = 0;
    const char *gpu_bind = NULL;
    const char *want = NULL, *skip = NULL;
    const char *bind = NULL, *dist = NULL;
    bool label = false, pty = false, kill_bad = false;
    int c, input = PHX_RUN_INPUT_ALL; /* srun's default */
    const char *input_opt = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+N:n:c:m:lw:x:i:Kh", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'N': ok = parse_long(optarg, 1, &nodes); break;
        case 'n': ok = parse_long(optarg, 1, &ntasks); break;
        case 'T': ok = parse_long(optarg, 1, &ntpn); break;
        case 'c': ok = parse_long(optarg, 1, &cpt); break;
        case 'B': bind = optarg; break;
        case 'm': dist = optarg; break;
        case 'l': label = true; break;
        case 'w': want = optarg; break;
        case 'x': skip = optarg; break;
        case 'G': ok = parse_long(optarg, 1, &gpt) && gpt <= 1024; break;
        case 'g': gpu_bind = optarg; break;
        case 'i':
            input_opt = optarg;
            if ((input = phx_run_input_parse(optarg)) == PHX_RUN_INPUT_BAD) {
                fprintf(stderr,
                        "phx run: invalid --input \"%s\" (all, none or a rank "
                        "number; file name patterns are not supported)\n",
                        optarg);
                return 2;
            }
            break;
        case 'P': pty = true; break;
        case 'K': kill_bad = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "phx run: invalid number \"%s\"\n", optarg);
            return 2;
        }
    }
    if (!bind && !(bind = job_cpu_bind()))
        bind = "cores";
    if (!dist && !(dist = job_distribution()))
        dist = "block";
    if (strcmp(bind, "cores") && strcmp(bind, "sockets") && strcmp(bind, "none")) {
        fprintf(stderr, "phx run: --cpu-bind must be cores, sockets or none\n");
        return 2;
    }
    if (strcmp(dist, "block") && strcmp(dist, "cyclic")) {
        fprintf(stderr, "phx run: --distribution must be block or cyclic\n");
        return 2;
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (!gpt)
        gpt = job_gpus_per_task();
    if (gpu_bind && strcmp(gpu_bind, "closest") && strcmp(gpu_bind, "none")) {
        fprintf(stderr, "phx run: --gpu-bind=%s is not supported (closest or none)\n",
                gpu_bind);
        return 2;
    }
    if ((want && !host_list_ok(want)) || (skip && !host_list_ok(skip))) {
        fprintf(stderr,
                "phx run: invalid node list \"%s\" (a host list like "
                "n[1-4],n7)\n",
                want && !host_list_ok(want) ? want : skip);
        return 2;
    }
    if (pty && (input_opt || label)) {
        /* rank 0 reads the terminal and the others /dev/null; the
         * terminal's output is not lines to label */
        fprintf(stderr, "phx run: %s is incompatible with --pty\n",
                input_opt ? "--input" : "--label");
        return 2;
    }
    phx_run_opts_t o = {nodes, ntasks, ntpn, cpt, want, skip, gpt};
    const char *path = getenv("PHX_AGENT_SOCKET");
    if (!path || !*path || !getenv("PHX_TASK_ID") || !getenv("PHX_FRAMEWORK_ID")) {
        /* Not inside a job: an allocation from batchd for this step, which
         * runs as a batch job with /dev/null as its stdin.  A file given
         * as stdin (or -i) would be silently lost: refused, and so is a
         * terminal nothing would be typed into. */
        if (pty) {
            fprintf(stderr, "phx run: --pty needs a job: run it inside one\n");
            return 2;
        }
        if (input != PHX_RUN_INPUT_NONE && (input_opt || phx_run_stdin_is_file(0))) {
            fprintf(stderr,
                    "phx run: standard input is not forwarded outside a job (the "
                    "step runs as a batch job of its own): run phx run inside a "
                    "job, or give --input=none\n");
            return 2;
        }
        return phx_run_alloc(&o, argc, argv);
    }
    /* without -n, the job's tasks, as srun's (run_tasks.c), and with no
     * option that shapes the step, the job's layout itself */
    const char *job_n, *job_list, *job_tpn;
    job_vars(&job_n, &job_list, &job_tpn);
    bool layout = phx_run_job_layout(&o, job_list, job_tpn);
    o.ntasks = phx_run_job_ntasks(&o, job_n, job_tpn);
    /* stdin /dev/null (a batch script's, a command in its background):
     * the ranks get /dev/null themselves, nothing is read */
    if (phx_run_stdin_is_null(0) && !pty)
        input = PHX_RUN_INPUT_NONE;
    if (pty) /* rank 0's terminal gets stdin; its end is ^D there */
        input = 0;
    phx_run_in_t in = {.fd = input == PHX_RUN_INPUT_NONE ? -1 : 0};
    int fd = phx_cli_connect_unix(path);
    if (fd < 0) {
        fprintf(stderr, "phx run: could not connect to the agent at \"%s\": %s\n", path,
                strerror(errno));
        return 1;
    }
    json_t *req = request(argc, argv, optind, &o, bind, dist, label, input);
    if (req && layout)
        json_object_set_new(
            req, "job_layout",
            json_pack("{s:s, s:s}", "nodelist", job_list, "tasks_per_node", job_tpn));
    if (req && gpt)
        json_object_set_new(req, "gpus_per_task", json_integer(gpt));
    if (req && gpu_bind)
        json_object_set_new(req, "gpu_bind", json_string(gpu_bind));
    if (req && kill_bad) /* a rank failing ends the step everywhere */
        json_object_set_new(req, "kill_on_bad_exit", json_true());
    phx_winsize_t ws;
    if (req && pty) {
        phx_run_pty_start(&ws); /* raw mode from here on, if a terminal */
        json_object_set_new(req, "pty", phx_winsize_json(&ws));
    }
    uint8_t *buf = NULL;
    size_t len;
    phx_error_t err;
    int rc = 1;
    if (!req ||
        phx_wire_encode(req, NULL, 0, PHX_WIRE_DEFAULT_MAX, &buf, &len, &err) < 0)
        fprintf(stderr, "phx run: %s\n", req ? err.text : "out of memory");
    else if (phx_cli_send_all(fd, buf, len) < 0 && errno != EPIPE &&
             errno != ECONNRESET)
        fprintf(stderr, "phx run: could not write to the agent: %s\n", strerror(errno));
    else /* an agent that turned us away left an ERROR to read */
        rc = serve(fd, label, &in, pty ? &ws : NULL);
    phx_run_pty_restore();
    phx_run_in_clear(&in);
    json_decref(req);
    free(buf);
    close(fd);
    return rc;
}
