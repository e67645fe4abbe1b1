/* simple-framework: a small framework on the C client (lib/framework.h).
 *
 * It waits for offers from N different agents, accepts them as ONE gang of
 * N tasks (one per agent, each on 1 core), prints every status update and,
 * when all tasks ended, where each ran; then it tears itself down.
 *
 *   simple-framework [--master HOST:PORT] [--agents N] [--cmd CMD]
 *                    [--kill-after SECONDS] [--munge-socket PATH] [--role ROLE]
 *                    [--mem MB]
 *
 * Each task asks for 1 core and --mem MB of memory (32 by default).
 * Its tasks run as the user running it (root: as root).
 *
 * Exit status: 0 if every task finished (or was killed by --kill-after),
 * 1 otherwise. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/framework.h"
#include "lib/http.h"

#define MAX_AGENTS 64

typedef struct task_rec {
    char id[16];
    char agent_id[32];
    char host[128];
    char state[32];
} task_rec_t;

typedef struct app {
    struct event_base *base;
    phx_fwc_t *fwc;
    int want;
    const char *cmd;
    double kill_after;
    int mem; /* MB per task */
    bool launched;
    task_rec_t tasks[MAX_AGENTS];
    int running, ended, ok;
    struct event *kill_ev;
    int rc;
} app_t;

static bool terminal(const char *s)
{
    return strcmp(s, "TASK_FINISHED") == 0 || strcmp(s, "TASK_FAILED") == 0 ||
           strcmp(s, "TASK_KILLED") == 0 || strcmp(s, "TASK_LOST") == 0 ||
           strcmp(s, "TASK_ERROR") == 0 || strcmp(s, "TASK_DROPPED") == 0;
}

static void on_subscribed(phx_fwc_t *c, const char *id, void *arg)
{
    (void)c;
    (void)arg;
    printf("subscribed as framework %s\n", id);
    fflush(stdout);
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static void on_offers(phx_fwc_t *c, const json_t *offers, void *arg)
{
    app_t *app = arg;
    json_t *use = json_array(), *skip = json_array(), *tis = json_array();
    size_t i;
    json_t *o;
    int n = 0;
    json_array_foreach(offers, i, o)
    {
        json_t *id = json_pack("{s:s}", "value", str_at(o, "id", "value"));
        if (app->launched || n == app->want) {
            json_array_append_new(skip, id);
            continue;
        }
        task_rec_t *t = &app->tasks[n];
        snprintf(t->id, sizeof(t->id), "t%d", n);
        snprintf(t->agent_id, sizeof(t->agent_id), "%s",
                 str_at(o, "agent_id", "value"));
        snprintf(t->host, sizeof(t->host), "%s", str_at(o, "hostname", NULL));
        snprintf(t->state, sizeof(t->state), "TASK_STAGING");
        json_array_append_new(use, id);
        json_array_append_new(
            tis,
            json_pack(
                "{s:s, s:{s:s}, s:{s:s}, s:[{s:s, s:s, s:{s:i}}, {s:s, s:s, s:{s:i}}],"
                " s:{s:b, s:s}}",
                "name", t->id, "task_id", "value", t->id, "agent_id", "value",
                t->agent_id, "resources", "name", "cpus", "type", "SCALAR", "scalar",
                "value", 1, "name", "mem", "type", "SCALAR", "scalar", "value",
                app->mem, "command", "shell", 1, "value", app->cmd));
        n++;
    }
    if (!app->launched && n == app->want) {
        json_t *ops = json_pack("[{s:s, s:{s:O}}]", "type", "LAUNCH", "launch",
                                "task_infos", tis);
        printf("accepting %d offers as one gang\n", n);
        phx_fwc_accept(c, use, ops, NULL, NULL);
        json_decref(ops);
        app->launched = true;
    } else if (!app->launched) {
        printf("%d of %d agents offered; waiting\n", n, app->want);
        json_array_extend(skip, use);
    }
    if (json_array_size(skip) > 0)
        phx_fwc_decline(c, skip, app->launched ? 3600 : 1);
    fflush(stdout);
    json_decref(use);
    json_decref(skip);
    json_decref(tis);
}

static void kill_all(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *app = arg;
    for (int i = 0; i < app->want; i++) {
        printf("killing %s\n", app->tasks[i].id);
        phx_fwc_kill(app->fwc, app->tasks[i].id, app->tasks[i].agent_id);
    }
    fflush(stdout);
}

static void finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *app = arg;
    phx_fwc_teardown(app->fwc);
    struct timeval tv = {0, 200000}; /* let the TEARDOWN go out */
    event_base_loopexit(app->base, &tv);
}

static void on_update(phx_fwc_t *c, const json_t *st, void *arg)
{
    (void)c;
    app_t *app = arg;
    const char *id = str_at(st, "task_id", "value"), *state = str_at(st, "state", NULL);
    const char *msg = str_at(st, "message", NULL);
    for (int i = 0; id && state && i < app->want; i++) {
        task_rec_t *t = &app->tasks[i];
        if (strcmp(t->id, id) != 0 || terminal(t->state))
            continue;
        printf("%s on %s: %s%s%s\n", id, t->host, state, msg ? " - " : "",
               msg ? msg : "");
        snprintf(t->state, sizeof(t->state), "%s", state);
        if (strcmp(state, "TASK_RUNNING") == 0 && ++app->running == app->want &&
            app->kill_after > 0) {
            struct timeval tv = {(time_t)app->kill_after, 0};
            app->kill_ev = evtimer_new(app->base, kill_all, app);
            evtimer_add(app->kill_ev, &tv);
        }
        if (terminal(state)) {
            app->ended++;
            bool fine = strcmp(state, "TASK_FINISHED") == 0 ||
                        (app->kill_after > 0 && strcmp(state, "TASK_KILLED") == 0);
            app->ok += fine;
        }
    }
    fflush(stdout);
    if (app->ended == app->want) {
        for (int i = 0; i < app->want; i++)
            printf("%s ran on %s (agent %s): %s\n", app->tasks[i].id,
                   app->tasks[i].host, app->tasks[i].agent_id, app->tasks[i].state);
        app->rc = app->ok == app->want ? 0 : 1;
        /* After this callback the client acknowledges the update; tear
         * down only then. */
        struct timeval now = {0, 0};
        event_base_once(app->base, -1, EV_TIMEOUT, finish, app, &now);
    }
}

static void on_error(phx_fwc_t *c, const char *msg, void *arg)
{
    (void)c;
    (void)arg;
    fprintf(stderr, "simple-framework: %s\n", msg);
}

/* A refused SUBSCRIBE (4xx) will not pass by retrying: give up. */
static void on_disconnected(phx_fwc_t *c, const char *why, void *arg)
{
    (void)c;
    app_t *app = arg;
    if (app->ended == app->want)
        return; /* torn down: the stream ends, as it should */
    fprintf(stderr, "simple-framework: %s\n", why);
    if (strncmp(why, "SUBSCRIBE answered 4", 20) == 0) {
        app->rc = 1;
        event_base_loopbreak(app->base);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"master", required_argument, NULL, 'm'},
        {"agents", required_argument, NULL, 'n'},
        {"cmd", required_argument, NULL, 'c'},
        {"kill-after", required_argument, NULL, 'k'},
        {"munge-socket", required_argument, NULL, 'M'},
        {"role", required_argument, NULL, 'r'},
        {"mem", required_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    const char *master = getenv("PHX_MASTER") ? getenv("PHX_MASTER") : "127.0.0.1:6050";
    const char *munge = getenv("PHX_MUNGE_SOCKET");
    const char *role = "*";
    app_t app = {.want = 2, .cmd = "hostname", .mem = 32, .rc = 1};
    int c;
    while ((c = getopt_long(argc, argv, "m:n:c:k:M:r:e:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': master = optarg; break;
        case 'n': app.want = atoi(optarg); break;
        case 'c': app.cmd = optarg; break;
        case 'k': app.kill_after = atof(optarg); break;
        case 'M': munge = optarg; break;
        case 'r': role = optarg; break;
        case 'e': app.mem = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: simple-framework [--master HOST:PORT] [--agents N] "
                            "[--cmd CMD] [--kill-after S] [--munge-socket PATH] "
                            "[--role ROLE] [--mem MB]\n");
            return 2;
        }
    }
    if (app.mem < 1) {
        fprintf(stderr, "simple-framework: --mem must be a positive number of MB\n");
        return 2;
    }
    if (app.want < 1 || app.want > MAX_AGENTS) {
        fprintf(stderr, "simple-framework: --agents must be 1-%d\n", MAX_AGENTS);
        return 2;
    }
    char host[256];
    int port;
    phx_error_t err;
    if (phx_http_parse_addr(master, host, sizeof(host), &port, &err) < 0) {
        fprintf(stderr, "simple-framework: %s\n", err.text);
        return 2;
    }
    struct passwd *pw = getpwuid(geteuid());
    if (!pw) {
        fprintf(stderr, "simple-framework: who is uid %u?\n", (unsigned)geteuid());
        return 2;
    }
    app.base = event_base_new();
    phx_fwc_opts_t o = {.host = host,
                        .port = port,
                        .name = "simple-framework",
                        .user = pw->pw_name,
                        .role = role,
                        .failover_timeout = 10,
                        .munge_socket = munge,
                        .authenticate = true,
                        .auto_ack = true};
    phx_fwc_callbacks_t cbs = {.subscribed = on_subscribed,
                               .offers = on_offers,
                               .update = on_update,
                               .error = on_error,
                               .disconnected = on_disconnected};
    if (!(app.fwc = phx_fwc_create(app.base, &o, &cbs, &app, &err)) ||
        phx_fwc_start(app.fwc, &err) < 0) {
        fprintf(stderr, "simple-framework: %s\n", err.text);
        return 1;
    }
    event_base_dispatch(app.base);
    phx_fwc_destroy(app.fwc);
    if (app.kill_ev)
        event_free(app.kill_ev);
    event_base_free(app.base);
    return app.rc;
}
