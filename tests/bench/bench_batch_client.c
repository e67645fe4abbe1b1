/* bench_batch_client: the load client of tests/bench/bench_batch.sh.
 *
 *   bench_batch_client HOST:PORT JOBS CLIENTS SCRIPT_FILE
 *
 * CLIENTS threads submit JOBS jobs in all through batchd's HTTP API (POST
 * /api/v1/jobs, a fresh munge credential per request, one connection per
 * request as the phx command does) and print the durable submission rate:
 * batchd answers only after the job's row is committed.  Run alone (no
 * arguments, as scripts/run-bench does) it says so and exits 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/http.h"
#include "lib/munge.h"

static char host[256];
static int port;
static char *body;
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
    phx_error_t err;
    phx_munge_t *m = phx_munge_create(getenv("PHX_MUNGE_SOCKET"), &err);
    if (!m) {
        fprintf(stderr, "bench_batch_client: %s\n", err.text);
        return NULL;
    }
    while (atomic_fetch_add(&next, 1) < total) {
        phx_http_response_t r;
        if (phx_http_call(host, port, "POST", "/api/v1/jobs", body, m, 30, &r, &err) <
            0) {
            atomic_fetch_add(&failed, 1);
            fprintf(stderr, "bench_batch_client: %s\n", err.text);
            continue;
        }
        if (r.status == 200)
            atomic_fetch_add(&ok, 1);
        else {
            if (atomic_fetch_add(&failed, 1) < 3)
                fprintf(stderr, "bench_batch_client: HTTP %d: %s\n", r.status, r.body);
        }
        phx_http_response_clear(&r);
    }
    phx_munge_destroy(m);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        printf("bench_batch_client: the load client of tests/bench/bench_batch.sh; "
               "nothing to measure alone\n");
        return 0;
    }
    phx_error_t err;
    if (phx_http_parse_addr(argv[1], host, sizeof(host), &port, &err) < 0) {
        fprintf(stderr, "bench_batch_client: %s\n", err.text);
        return 2;
    }
    total = atoi(argv[2]);
    int clients = atoi(argv[3]);
    FILE *f = fopen(argv[4], "r");
    char script[4096];
    size_t n = f ? fread(script, 1, sizeof(script) - 1, f) : 0;
    if (f)
        fclose(f);
    script[n] = 0;
    char cwd[1024];
    if (!getcwd(cwd, sizeof(cwd)) || clients < 1 || total < 1) {
        fprintf(stderr, "bench_batch_client: bad arguments\n");
        return 2;
    }
    json_t *b = json_pack("{s:s, s:s, s:[], s:[], s:s, s:{s:s}, s:s}", "script", script,
                          "filename", "true.sh", "argv", "args", "cwd", cwd, "env",
                          "PATH", "/usr/bin:/bin", "submit_line", "bench_batch_client");
    body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    pthread_t *th = calloc((size_t)clients, sizeof(*th));
    double t0 = now();
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    double dt = now() - t0;
    printf("submitted %d jobs (%d failed) with %d clients in %.2f s: %.0f jobs/s "
           "durable\n",
           atomic_load(&ok), atomic_load(&failed), clients, dt, atomic_load(&ok) / dt);
    free(th);
    free(body);
    return atomic_load(&failed) ? 1 : 0;
}
