/* Locating the daemons: PHX_MASTER / PHX_BATCHD (host:port) in the
 * environment, else client.master / client.batchd in the configuration file
 * (PHX_CONFIG, else /etc/phalanx/phalanx.conf if it exists), else the
 * defaults 127.0.0.1:6050 and 127.0.0.1:6060.  The munge socket likewise:
 * PHX_MUNGE_SOCKET, client.munge_socket, munge's default.  The accounting
 * database (phx acct): PHX_DSN, else client.dsn, else "dbname=phalanx".
 *
 * Several masters (PHX_MASTER=a:1,b:2 or a list in client.master), or
 * several batchd (PHX_BATCHD, client.batchd): tried in turn; a standby's
 * refusal (503) names the leader, asked next if it is in the list, and a
 * refused connection moves to the next one (doc/admin.md, "High
 * availability"). */
#include "cli/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/masters.h"

static const phx_conf_key_t client_schema[] = {
    {"client.master", PHX_CONF_STRLIST, "127.0.0.1:6050", 0, 0, false,
     "host:port of the masters' HTTP API (several: tried in turn)"},
    {"client.batchd", PHX_CONF_STRLIST, "127.0.0.1:6060", 0, 0, false,
     "host:port of batchd's HTTP API (several: tried in turn)"},
    {"client.munge_socket", PHX_CONF_STRING, NULL, 0, 0, false, "munged socket"},
    {"client.timeout", PHX_CONF_DOUBLE, "30", 1, 3600, false, "seconds per request"},
    {"client.dsn", PHX_CONF_STRING, "dbname=phalanx", 0, 0, false,
     "libpq connection string of the accounting database (phx acct)"},
    {"master", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"agent", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"batchd", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};

static phx_conf_t *client_conf(void)
{
    static phx_conf_t *conf;
    if (conf)
        return conf;
    const char *file = getenv("PHX_CONFIG");
    if (!file && access("/etc/phalanx/phalanx.conf", R_OK) == 0)
        file = "/etc/phalanx/phalanx.conf";
    phx_error_t err;
    conf = phx_conf_load(client_schema, file, &err);
    if (!conf) {
        fprintf(stderr, "phx: %s\n", err.text);
        exit(1);
    }
    return conf;
}

phx_munge_t *phx_cli_munge(phx_error_t *err)
{
    const char *sock = getenv("PHX_MUNGE_SOCKET");
    if (!sock)
        sock = phx_conf_str(client_conf(), "client.munge_socket");
    return phx_munge_create(sock, err);
}

/* The masters or the batchd, the one that answered last current. */
static phx_masters_t *daemons(phx_cli_target_t target)
{
    static phx_masters_t lists[2];
    static bool loaded[2];
    int t = target == PHX_CLI_MASTER ? 0 : 1;
    if (loaded[t])
        return &lists[t];
    const char *var = t ? "PHX_BATCHD" : "PHX_MASTER";
    const char *env = getenv(var);
    phx_error_t err;
    int rc = env ? phx_masters_add(&lists[t], env, &err)
                 : phx_masters_from_conf(&lists[t], client_conf(),
                                         t ? "client.batchd" : "client.master", &err);
    if (rc < 0) {
        fprintf(stderr, "phx: %s%s%s\n", env ? var : "", env ? ": " : "", err.text);
        exit(1);
    }
    loaded[t] = true;
    return &lists[t];
}

static bool quiet;

void phx_cli_set_quiet(bool q)
{
    quiet = q;
}

const char *phx_cli_address(phx_cli_target_t target)
{
    static char addr[PHX_MASTER_ADDR_MAX];
    return phx_masters_addr(daemons(target), addr, sizeof(addr));
}

/* After a failed attempt at the list's current one: the next to ask, or
 * false when every one was asked.  leader: a standby named it.  A lone
 * batchd is asked once, as before there were lists: a request that timed
 * out may have been done (a submission sent again would be a second job).
 * For the same reason a batchd that got a request other than a GET and
 * gave no answer (maybe_done: it closed the connection or timed out) is
 * not followed by the next one: only a refused connection or a standby's
 * refusal are.  Unless the request is idempotent (a submission with its
 * key): then it is sent again, PHX_CLI_SUBMIT_SENDS times at most in all. */
static bool next_daemon(phx_cli_target_t target, phx_masters_t *l, const char *leader,
                        bool maybe_done, bool idempotent, size_t *tried)
{
    size_t most = target == PHX_CLI_BATCHD && l->n == 1 ? 1 : l->n + 1;
    if (idempotent)
        most = most > PHX_CLI_SUBMIT_SENDS ? most : PHX_CLI_SUBMIT_SENDS;
    if (target == PHX_CLI_BATCHD && maybe_done && !idempotent)
        return false;
    if (++*tried >= most)
        return false;
    if (!(leader && *leader && phx_masters_follow(l, leader)))
        phx_masters_next(l);
    return true;
}

static json_t *call(phx_cli_target_t target, const char *method, const char *path,
                    const json_t *body, bool authenticated, const char *key,
                    int *status)
{
    const phx_conf_t *conf = client_conf();
    const char *who = target == PHX_CLI_MASTER ? "master" : "batchd";
    char host[PHX_MASTER_HOST_MAX];
    int port;
    phx_error_t err;
    if (status)
        *status = 0;
    phx_munge_t *munge = NULL;
    if (authenticated && !(munge = phx_cli_munge(&err))) {
        fprintf(stderr, "phx: %s\n", err.text);
        return NULL;
    }
    char *text = body ? phx_json_dump(body) : NULL;
    phx_http_response_t resp;
    int rc;
    size_t tried = 0;
    bool maybe_done = false; /* a request that changes something, unanswered */
    bool unsure = false;     /* keyed: a send that may have stored it, so far */
    bool refused = false;    /* the last answer: a standby's refusal */
    for (;;) {
        phx_masters_t *l = daemons(target);
        snprintf(host, sizeof(host), "%s", phx_masters_host(l));
        port = phx_masters_port(l);
        const char *hdr[] = {"Idempotency-Key", key, NULL};
        rc = phx_http_call_with(host, port, method, path, text, key ? hdr : NULL, munge,
                                phx_conf_double(conf, "client.timeout"), &resp, &err);
        maybe_done = rc < 0 && errno == ECONNRESET && strcmp(method, "GET") != 0;
        unsure = unsure || (key && maybe_done);
        /* a standby's refusal, or no answer: the leader it names, or the
         * next one of the list */
        char leader[PHX_MASTER_ADDR_MAX] = "";
        refused =
            rc == 0 && resp.status == 503 &&
            phx_masters_refusal_text(resp.body, resp.len, leader, sizeof(leader)) == 1;
        if (rc == 0 && !refused)
            break;
        if (!next_daemon(target, l, leader, maybe_done, key != NULL, &tried))
            break;
        if (rc == 0)
            phx_http_response_clear(&resp);
        if (key && tried >= l->n) /* round the list: a moment to restart or elect */
            usleep(500000);
    }
    free(text);
    phx_munge_destroy(munge);
    /* Any send of the submission may have stored it, not only the last
     * (the next ones found no batchd, or a standby): tell its key. */
    if (unsure && (rc < 0 || refused)) {
        if (rc == 0)
            phx_http_response_clear(&resp);
        fprintf(stderr,
                "phx: %s; the submission may have been stored: submit it again with "
                "PHX_SUBMIT_KEY=%s to get its job id without a second job\n",
                err.text, key);
        return NULL;
    }
    if (rc < 0 && maybe_done && target == PHX_CLI_BATCHD) {
        fprintf(stderr,
                "phx: %s; the request may have been carried out: check (phx queue) "
                "before asking again\n",
                err.text);
        return NULL;
    }
    if (rc < 0) {
        if (!quiet)
            fprintf(stderr, "phx: %s (is phx-%s running? set PHX_%s=host:port)\n",
                    err.text, who, target == PHX_CLI_MASTER ? "MASTER" : "BATCHD");
        return NULL;
    }
    if (status)
        *status = resp.status;
    json_error_t jerr;
    json_t *v = json_loadb(resp.body, resp.len, 0, &jerr);
    if (resp.status < 200 || resp.status >= 300) {
        const char *msg = NULL;
        if (v)
            phx_json_str(v, "error", false, &msg, NULL);
        if (!quiet || resp.status != 503)
            fprintf(stderr, "phx: %s: %s\n", who, msg ? msg : resp.body);
        if (unsure && resp.status >= 500) /* this send failed, not an earlier one */
            fprintf(
                stderr,
                "phx: an earlier send of the submission may have stored it: submit "
                "it again with PHX_SUBMIT_KEY=%s to get its job id without a second "
                "job\n",
                key);
        json_decref(v);
        phx_http_response_clear(&resp);
        return NULL;
    }
    if (!v)
        fprintf(stderr, "phx: %s sent invalid JSON: %s\n", who, jerr.text);
    phx_http_response_clear(&resp);
    return v;
}

json_t *phx_cli_call(phx_cli_target_t target, const char *method, const char *path,
                     const json_t *body, bool authenticated, int *status)
{
    return call(target, method, path, body, authenticated, NULL, status);
}

int phx_cli_submit_key(char key[33])
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0 && errno != EINTR)
            return -1;
        got += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(key + 2 * i, 3, "%02x", r[i]);
    return 0;
}

json_t *phx_cli_submit(const json_t *body, int *status)
{
    char key[33];
    const char *k = getenv("PHX_SUBMIT_KEY");
    if (!k || !*k) {
        if (phx_cli_submit_key(key) < 0) {
            fprintf(stderr, "phx: could not make a submission key: %s\n",
                    strerror(errno));
            return NULL;
        }
        k = key;
    }
    return call(PHX_CLI_BATCHD, "POST", "/api/v1/jobs", body, true, k, status);
}

const char *phx_cli_dsn(void)
{
    const char *env = getenv("PHX_DSN");
    return env && *env ? env : phx_conf_str(client_conf(), "client.dsn");
}

void phx_cli_format_bytes(unsigned long long bytes, char *buf, size_t len)
{
    static const char units[] = "KMGTP";
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (v >= 100 || v == (double)(long long)v)
        snprintf(buf, len, "%.0f%c", v, units[u]);
    else
        snprintf(buf, len, "%.1f%c", v, units[u]);
}

json_t *phx_cli_agents(void)
{
    json_t *st = phx_cli_call(PHX_CLI_MASTER, "GET", "/state", NULL, true, NULL);
    if (!st)
        return NULL;
    json_t *agents = json_object_get(st, "agents");
    if (!json_is_array(agents)) {
        fprintf(stderr, "phx: master state has no agent list\n");
        json_decref(st);
        return NULL;
    }
    json_incref(agents);
    json_decref(st);
    return agents;
}
