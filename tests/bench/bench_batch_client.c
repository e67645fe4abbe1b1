/* bench_batch_client: the load client of tests/bench/bench_batch.sh.
 *
 *   bench_batch_client HOST:PORT JOBS CLIENTS SCRIPT_FILE
 *   bench_batch_client --wait-ended HOST:PORT N TIMEOUT_S
 *
 * CLIENTS threads submit JOBS jobs in all through batchd's HTTP API (POST
 * /api/v1/jobs, a fresh munge credential and a new Idempotency-Key per
 * request, one connection per request as the phx command does) and print
 * the durable submission rate: batchd answers only after the job's row (and
 * its key) is committed.
 *
 * --wait-ended polls GET /health (no credential) every 20 ms over one
 * kept-alive connection until its "ended" counter reaches N: exit 0 then, 1
 * with a message on timeout or error.  The script waited with a curl every
 * 0.1 s before, which cost ~2 % of the machine's CPU during the measurement.
 *
 * Run alone (no arguments, as scripts/run-bench does) it says so and exits
 * 0. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
        /* as phx submit does (cli/client.c): 128 random bits in hex */
        unsigned char rnd[16];
        char key[33];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            atomic_fetch_add(&failed, 1);
            continue;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(key + 2 * i, 3, "%02x", rnd[i]);
        const char *hdr[] = {"Idempotency-Key", key, NULL};
        if (phx_http_call_with(host, port, "POST", "/api/v1/jobs", body, hdr, m, 30, &r,
                               &err) < 0) {
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

/* --- --wait-ended --- */

#define POLL_INTERVAL_US 20000

typedef struct waiter {
    struct event_base *base;
    struct evhttp_connection *conn;
    struct event *tick;
    long long want;
    long long ended; /* last value seen, -1 before the first answer */
    int rc;          /* -1 while waiting */
} waiter_t;

static void waiter_stop(waiter_t *w, int rc)
{
    w->rc = rc;
    event_base_loopbreak(w->base);
}

static void health_done(struct evhttp_request *req, void *arg);

static void poll_health(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waiter_t *w = arg;
    struct evhttp_request *req = evhttp_request_new(health_done, w);
    if (!req) {
        fprintf(stderr, "bench_batch_client: out of memory\n");
        waiter_stop(w, 1);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
    if (evhttp_make_request(w->conn, req, EVHTTP_REQ_GET, "/health") < 0) {
        fprintf(stderr, "bench_batch_client: could not send GET /health to %s:%d\n",
                host, port);
        waiter_stop(w, 1);
    }
}

static void health_done(struct evhttp_request *req, void *arg)
{
    waiter_t *w = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code != 200) {
        if (code == 0)
            fprintf(stderr, "bench_batch_client: could not reach %s:%d\n", host, port);
        else
            fprintf(stderr, "bench_batch_client: GET /health: HTTP %d\n", code);
        waiter_stop(w, 1);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    const char *text = n ? (const char *)evbuffer_pullup(in, -1) : "";
    json_error_t jerr;
    json_t *h = json_loadb(text, n, 0, &jerr);
    json_t *ended = json_object_get(h, "ended");
    if (!json_is_integer(ended)) {
        fprintf(stderr,
                "bench_batch_client: GET /health: no \"ended\" counter in \"%.*s\"\n",
                (int)(n < 200 ? n : 200), text);
        json_decref(h);
        waiter_stop(w, 1);
        return;
    }
    w->ended = json_integer_value(ended);
    json_decref(h);
    if (w->ended >= w->want) {
        waiter_stop(w, 0);
        return;
    }
    const struct timeval interval = {0, POLL_INTERVAL_US};
    evtimer_add(w->tick, &interval);
}

static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waiter_t *w = arg;
    if (w->ended < 0)
        fprintf(stderr,
                "bench_batch_client: timed out waiting for an answer to GET "
                "/health from %s:%d\n",
                host, port);
    else
        fprintf(stderr, "bench_batch_client: timed out: %lld of %lld jobs ended\n",
                w->ended, w->want);
    waiter_stop(w, 1);
}

/* Until batchd's /health says at least want jobs ended: 0, or 1 on timeout or
 * error (said on stderr). */
static int wait_ended(long long want, int timeout_s)
{
    waiter_t w = {.want = want, .ended = -1, .rc = -1};
    struct event *deadline = NULL;
    w.base = event_base_new();
    w.conn = w.base
                 ? evhttp_connection_base_new(w.base, NULL, host, (unsigned short)port)
                 : NULL;
    w.tick = w.conn ? evtimer_new(w.base, poll_health, &w) : NULL;
    deadline = w.tick ? evtimer_new(w.base, deadline_passed, &w) : NULL;
    if (!deadline) {
        fprintf(stderr, "bench_batch_client: out of memory\n");
        w.rc = 1;
        goto out;
    }
    evhttp_connection_set_timeout(w.conn, timeout_s);
    const struct timeval limit = {timeout_s, 0};
    evtimer_add(deadline, &limit);
    poll_health(-1, 0, &w);
    while (w.rc < 0 && event_base_dispatch(w.base) == 0)
        ;
    if (w.rc < 0) {
        fprintf(stderr, "bench_batch_client: event loop ended early\n");
        w.rc = 1;
    }
out:
    if (deadline)
        event_free(deadline);
    if (w.tick)
        event_free(w.tick);
    if (w.conn)
        evhttp_connection_free(w.conn);
    if (w.base)
        event_base_free(w.base);
    return w.rc;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--wait-ended") == 0) {
        phx_error_t err;
        if (phx_http_parse_addr(argv[2], host, sizeof(host), &port, &err) < 0) {
            fprintf(stderr, "bench_batch_client: %s\n", err.text);
            return 2;
        }
        long long want = atoll(argv[3]);
        int timeout_s = atoi(argv[4]);
        if (want < 0 || timeout_s < 1) {
            fprintf(stderr, "bench_batch_client: bad arguments\n");
            return 2;
        }
        return wait_ended(want, timeout_s);
    }
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
