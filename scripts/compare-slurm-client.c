/* compare-slurm-client: scripts/compare-slurm's submitter with
 * SLURM_SUBMIT=api, Slurm's side of bench_batch_client.
 *
 *   compare-slurm-client submit JOBS CLIENTS SCRIPT_FILE
 *   compare-slurm-client wait-completed N TIMEOUT_S
 *
 * submit: CLIENTS threads submit JOBS batch jobs in all through libslurm's
 * slurm_submit_batch_job (what sbatch calls, without sbatch's own process
 * start per job) and print the submission rate.  slurmctld answers once the
 * job is in its memory; it writes its state files later, so "accepted" here
 * is not "durable" as phx-batchd's answer is.
 *
 * wait-completed polls slurmctld's statistics (sdiag's call) every 20 ms
 * until its "jobs completed" counter reaches N: exit 0 then, 1 on timeout.
 *
 * Not built by make: libslurm-dev is not a dependency of Phalanx;
 * compare-slurm compiles it when asked to use it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

/* Exported by libslurm (sdiag frees its answer with it), not declared in
 * slurm.h. */
extern void slurm_free_stats_response_msg(stats_info_response_msg_t *msg);

static char *script;
static char cwd[4096];
static atomic_int next, ok, failed;
static int total;

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void *worker(void *arg)
{
    (void)arg;
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    while (atomic_fetch_add(&next, 1) < total) {
        job_desc_msg_t d;
        slurm_init_job_desc_msg(&d);
        d.name = "true.sh";
        d.script = script;
        d.environment = env;
        d.env_size = 1;
        d.work_dir = cwd;
        d.std_out = "/dev/null";
        d.std_err = "/dev/null";
        d.time_limit = 5;
        d.min_nodes = 1;
        d.num_tasks = 1;
        d.user_id = getuid();
        d.group_id = getgid();
        submit_response_msg_t *r = NULL;
        if (slurm_submit_batch_job(&d, &r) == SLURM_SUCCESS) {
            atomic_fetch_add(&ok, 1);
        } else {
            atomic_fetch_add(&failed, 1);
            fprintf(stderr, "compare-slurm-client: %s\n",
                    slurm_strerror(slurm_get_errno()));
        }
        if (r)
            slurm_free_submit_response_response_msg(r);
    }
    return NULL;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int submit(int jobs, int clients, const char *file)
{
    script = read_file(file);
    if (!script || !getcwd(cwd, sizeof(cwd))) {
        fprintf(stderr, "compare-slurm-client: cannot read %s\n", file);
        return 1;
    }
    total = jobs;
    pthread_t t[256];
    if (clients > 256)
        clients = 256;
    double t0 = now();
    for (int i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    double dt = now() - t0;
    printf("submitted %d jobs (%d failed) with %d clients in %.2f s: %.0f jobs/s "
           "accepted\n",
           (int)ok, (int)failed, clients, dt, (double)ok / dt);
    return failed ? 1 : 0;
}

static int wait_completed(unsigned n, double timeout)
{
    double end = now() + timeout;
    stats_info_request_msg_t req = {.command_id = STAT_COMMAND_GET};
    while (now() < end) {
        stats_info_response_msg_t *s = NULL;
        if (slurm_get_statistics(&s, &req) == SLURM_SUCCESS && s) {
            unsigned done = s->jobs_completed + s->jobs_failed + s->jobs_canceled;
            slurm_free_stats_response_msg(s);
            if (done >= n)
                return 0;
        }
        usleep(20000);
    }
    fprintf(stderr, "compare-slurm-client: fewer than %u jobs ended in %.0f s\n", n,
            timeout);
    return 1;
}

int main(int argc, char **argv)
{
    slurm_init(NULL);
    if (argc == 5 && strcmp(argv[1], "submit") == 0)
        return submit(atoi(argv[2]), atoi(argv[3]), argv[4]);
    if (argc == 4 && strcmp(argv[1], "wait-completed") == 0)
        return wait_completed((unsigned)atoi(argv[2]), atof(argv[3]));
    fprintf(stderr, "usage: compare-slurm-client submit JOBS CLIENTS SCRIPT | "
                    "wait-completed N TIMEOUT\n");
    return 2;
}
