/* What phx alloc and its relay share (alloc.h): the announcement, the
 * credentials' payloads, the variables passed on, the splice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/alloc.h"

int phx_alloc_announce_parse(const char *line, size_t len, phx_alloc_announce_t *a,
                             phx_error_t *err)
{
    size_t plen = strlen(PHX_ALLOC_ANNOUNCE);
    if (len > PHX_ALLOC_LINE_MAX || len < plen + 1 ||
        memcmp(line, PHX_ALLOC_ANNOUNCE " ", plen + 1) != 0)
        return phx_error_set(err, "not the relay's announcement");
    const char *p = line + plen + 1, *end = line + len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || (size_t)(sp - p) >= sizeof(a->host))
        return phx_error_set(err, "the relay's announcement has no host");
    char host[sizeof(a->host)];
    memcpy(host, p, (size_t)(sp - p));
    host[sp - p] = '\0';
    if (strspn(host,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
        strlen(host))
        return phx_error_set(err, "the relay's host \"%s\" is not a host name", host);
    p = sp + 1;
    int port = 0;
    while (p < end && *p >= '0' && *p <= '9' && port <= 65535)
        port = port * 10 + (*p++ - '0');
    if (port < 1 || port > 65535 || p == end || *p != ' ')
        return phx_error_set(err, "the relay's announcement has no valid port");
    p++;
    json_error_t je;
    json_t *env = json_loadb(p, (size_t)(end - p), JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(env)) {
        json_decref(env);
        return phx_error_set(err, "the relay's variables are not a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (!json_is_string(v) || !phx_alloc_env_wanted(k)) {
            phx_error_set(err, "the relay's variable \"%s\" is not one of a job's", k);
            json_decref(env);
            return -1;
        }
    }
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->port = port;
    a->env = env;
    return 0;
}

void phx_alloc_announce_clear(phx_alloc_announce_t *a)
{
    json_decref(a->env);
    a->env = NULL;
}

char *phx_alloc_announce_format(const char *host, int port, const json_t *env)
{
    char *text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS), *line = NULL;
    if (text &&
        asprintf(&line, "%s %s %d %s\n", PHX_ALLOC_ANNOUNCE, host, port, text) < 0)
        line = NULL;
    free(text);
    return line;
}

bool phx_alloc_env_wanted(const char *name)
{
    static const char *const local[] = {
        "PHX_AGENT_SOCKET", "PHX_CONFIG",       "PHX_MASTER", "PHX_BATCHD",
        "PHX_DSN",          "PHX_MUNGE_SOCKET", NULL};
    /* the first node's own, PHX_ or SLURM_: not the allocation's (salloc
     * gives no SLURM_NODEID nor SLURM_PROCID) */
    static const char *const node[] = {
        "NODE",   "NODEID", "PROCID",       "LOCALID",       "CORES",
        "CPUSET", "NUMAS",  "CPUS_ON_NODE", "TOPOLOGY_ADDR", NULL};
    for (const char *const *l = local; *l; l++)
        if (strcmp(name, *l) == 0)
            return false;
    const char *rest = strncmp(name, "PHX_", 4) == 0     ? name + 4
                       : strncmp(name, "SLURM_", 6) == 0 ? name + 6
                                                         : NULL;
    if (!rest)
        return strncmp(name, "OMPI_MCA_plm_rsh_", 17) == 0 ||
               strncmp(name, "OMPI_MCA_orte_", 14) == 0;
    for (const char *const *l = node; *l; l++)
        if (strcmp(rest, *l) == 0)
            return false;
    return true;
}

int phx_alloc_payload_parse(const char *p, size_t len, long long job, int *code)
{
    char want[64];
    int n = snprintf(want, sizeof(want), "tunnel %lld", job);
    if (len == (size_t)n && memcmp(p, want, len) == 0)
        return 0;
    n = snprintf(want, sizeof(want), "exit %lld ", job);
    if (len <= (size_t)n || len > (size_t)n + 3 || memcmp(p, want, (size_t)n) != 0)
        return -1;
    int c = 0;
    for (size_t i = (size_t)n; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        c = c * 10 + (p[i] - '0');
    }
    if (c > 255)
        return -1;
    *code = c;
    return 1;
}

phx_splice_t *phx_splice_create(int a, int b, const void *pre, size_t pre_len)
{
    phx_splice_t *s = calloc(1, sizeof(*s));
    if (!s || pre_len > PHX_ALLOC_SPLICE_BUF ||
        !(s->buf[0] = malloc(PHX_ALLOC_SPLICE_BUF)) ||
        !(s->buf[1] = malloc(PHX_ALLOC_SPLICE_BUF))) {
        if (s)
            free(s->buf[0]);
        free(s);
        return NULL;
    }
    s->fd[0] = a;
    s->fd[1] = b;
    if (pre_len)
        memcpy(s->buf[0], pre, pre_len);
    s->len[0] = pre_len;
    return s;
}

void phx_splice_events(const phx_splice_t *s, struct pollfd p[2])
{
    for (int i = 0; i < 2; i++) {
        p[i].fd = s->fd[i];
        p[i].revents = 0;
        /* read side i when its bytes were all written; write what side
         * 1 - i sent */
        p[i].events = (!s->eof[i] && s->off[i] == s->len[i] ? POLLIN : 0) |
                      (s->off[1 - i] < s->len[1 - i] ? POLLOUT : 0);
        /* nothing wanted of it: not polled, or its hang-up (always
         * reported) would wake the loop at once until the other side
         * takes what it sent */
        if (!p[i].events)
            p[i].fd = -1;
    }
}

bool phx_splice_step(phx_splice_t *s, const struct pollfd p[2])
{
    for (int i = 0; i < 2; i++) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) && !s->eof[i] &&
            s->off[i] == s->len[i]) {
            ssize_t n = recv(s->fd[i], s->buf[i], PHX_ALLOC_SPLICE_BUF, 0);
            if (n > 0) {
                s->len[i] = (size_t)n;
                s->off[i] = 0;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                s->eof[i] = true;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        int to = s->fd[1 - i];
        while (s->off[i] < s->len[i]) {
            ssize_t n = send(to, s->buf[i] + s->off[i], s->len[i] - s->off[i],
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                break;
            if (n <= 0)
                return false; /* side 1 - i is gone */
            s->off[i] += (size_t)n;
        }
    }
    for (int i = 0; i < 2; i++)
        if (s->eof[i] && s->off[i] == s->len[i])
            return false;
    return true;
}

void phx_splice_close(phx_splice_t *s)
{
    if (!s)
        return;
    close(s->fd[0]);
    close(s->fd[1]);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
}

int phx_alloc_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}
