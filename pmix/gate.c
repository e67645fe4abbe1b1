/* The gate in front of the PMIx server's TCP listener.
 *
 * Ranks reach the PMIx server over loopback TCP, which carries no peer
 * credentials, and PMIx 4.2 believes what a client says: its "native"
 * security module takes the uid in the connect message as the truth, so any
 * local user could join another user's step as one of its ranks (abort it,
 * join its fences, read its data).  Its server also reads the connect
 * message with blocking reads on its progress thread, so a connection that
 * stays silent stalls every step of the node, and it deadlocks when a client
 * names a module it did not load.
 *
 * So every connection is checked before PMIx reads a byte of it.  The agent
 * defines accept(), which libpmix's listener thread calls (an executable's
 * symbols come before a library's); on the PMIx listener's socket it
 * accepts, asks the kernel which uid owns the peer's socket (sock_diag),
 * waits a bounded time for the whole connect message without taking it
 * off the socket (MSG_PEEK: PMIx reads it afterwards, at once) and lets the
 * connection through only if hello.c finds it names a step of that very
 * uid, one of its ranks here, and modules PMIx has.  Any other is closed;
 * PMIx sees ECONNABORTED, on which its listener goes on.  A uid with no
 * step here is turned away before anything is read. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "pmix/pmix_impl.h"

#define HELLO_WAIT_MS   2000 /* for the whole connect message */
#define REFUSALS_LOGGED 20   /* per 10 s; the rest are counted */

static struct {
    atomic_int port; /* of the PMIx listener, network order; 0: disarmed */
    pthread_mutex_t lock;
    phx_pmix_gate_step_t *steps;
    time_t window; /* refusal log limit */
    unsigned logged, quiet;
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- who may connect ---- */

int phx_pmix_gate_step_add(const phx_pmix_map_t *map)
{
    phx_pmix_gate_step_t *s = calloc(1, sizeof(*s));
    int n = map->nranks[map->node];
    if (!s || !(s->ranks = calloc((size_t)n + 1, sizeof(int)))) {
        free(s);
        return -1;
    }
    snprintf(s->nspace, sizeof(s->nspace), "%s", map->nspace);
    s->uid = map->uid;
    s->nranks = n;
    memcpy(s->ranks, map->ranks[map->node], (size_t)n * sizeof(int));
    pthread_mutex_lock(&gate.lock);
    s->next = gate.steps;
    gate.steps = s;
    pthread_mutex_unlock(&gate.lock);
    return 0;
}

void phx_pmix_gate_step_remove(const char *nspace)
{
    pthread_mutex_lock(&gate.lock);
    for (phx_pmix_gate_step_t **pp = &gate.steps; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->nspace, nspace) == 0) {
            phx_pmix_gate_step_t *s = *pp;
            *pp = s->next;
            free(s->ranks);
            free(s);
            break;
        }
    pthread_mutex_unlock(&gate.lock);
}

static bool uid_has_step(uid_t uid)
{
    bool found = false;
    pthread_mutex_lock(&gate.lock);
    for (phx_pmix_gate_step_t *s = gate.steps; s && !found; s = s->next)
        found = s->uid == uid;
    pthread_mutex_unlock(&gate.lock);
    return found;
}

static int check(const phx_pmix_hello_t *h, uid_t uid, char *why, size_t n)
{
    pthread_mutex_lock(&gate.lock);
    const phx_pmix_gate_step_t *s = gate.steps;
    if (h->kind == PHX_PMIX_HELLO_CLIENT)
        while (s && strcmp(s->nspace, h->nspace) != 0)
            s = s->next;
    int rc = phx_pmix_hello_check(h, uid, s, why, n);
    pthread_mutex_unlock(&gate.lock);
    return rc;
}

/* ---- arming ---- */

int phx_pmix_gate_arm(const char *uri_file, phx_error_t *err)
{
    char uri[512] = "";
    FILE *f = fopen(uri_file, "re");
    if (!f)
        return phx_error_set(err, "could not read the PMIx server's URI from %s: %s",
                             uri_file, strerror(errno));
    char *got = fgets(uri, sizeof(uri), f);
    fclose(f);
    const char *at = got ? strstr(uri, ";tcp4://127.0.0.1:") : NULL;
    unsigned long port = at ? strtoul(at + strlen(";tcp4://127.0.0.1:"), NULL, 10) : 0;
    if (port == 0 || port > 65535) {
        errno = EINVAL;
        return phx_error_set(err, "the PMIx server's URI in %s is not on 127.0.0.1: %s",
                             uri_file, uri);
    }
    atomic_store(&gate.port, (int)htons((uint16_t)port));
    return 0;
}

void phx_pmix_gate_disarm(void)
{
    atomic_store(&gate.port, 0);
    pthread_mutex_lock(&gate.lock);
    while (gate.steps) {
        phx_pmix_gate_step_t *s = gate.steps;
        gate.steps = s->next;
        free(s->ranks);
        free(s);
    }
    pthread_mutex_unlock(&gate.lock);
}

/* ---- the peer ---- */

/* The uid owning the local socket at the other end of conn (sock_diag's
 * exact lookup of the peer's socket: its source is our destination). */
static int peer_uid(const struct sockaddr_in *peer, const struct sockaddr_in *self,
                    uid_t *uid)
{
    int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = {
        .nlh = {.nlmsg_len = sizeof(req),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST},
        .r = {.sdiag_family = AF_INET,
              .sdiag_protocol = IPPROTO_TCP,
              .idiag_states = ~0U,
              .id = {.idiag_sport = peer->sin_port,
                     .idiag_dport = self->sin_port,
                     .idiag_src = {peer->sin_addr.s_addr},
                     .idiag_dst = {self->sin_addr.s_addr},
                     .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
    };
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    long buf[1024];
    int rc = -1;
    if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) ==
        (ssize_t)sizeof(req)) {
        ssize_t n = recv(s, buf, sizeof(buf), 0);
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        if (n > 0 && NLMSG_OK(h, (size_t)n) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
            h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
            *uid = ((struct inet_diag_msg *)NLMSG_DATA(h))->idiag_uid;
            rc = 0;
        }
    }
    close(s);
    return rc;
}

static long ms_left(const struct timespec *end)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait until want bytes can be peeked at (SO_RCVLOWAT makes poll wait for
 * them), or the deadline, or the peer's end; returns the bytes peeked. */
static ssize_t peek(int fd, void *buf, size_t want, const struct timespec *end)
{
    int low = (int)want;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
    for (;;) {
        ssize_t n = recv(fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
        if (n >= (ssize_t)want || n == 0 ||
            (n < 0 && errno != EAGAIN && errno != EINTR))
            return n;
        long ms = ms_left(end);
        if (ms <= 0)
            return n < 0 ? 0 : n;
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, (int)ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            n = recv(fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
            return n < 0 ? 0 : n;
        }
    }
}

/* 0 if conn may go on to PMIx; else the reason in why. */
static int admit(int conn, char *why, size_t n)
{
    struct sockaddr_in peer, self;
    socklen_t lp = sizeof(peer), ls = sizeof(self);
    uid_t uid;
    if (getpeername(conn, (struct sockaddr *)&peer, &lp) < 0 ||
        getsockname(conn, (struct sockaddr *)&self, &ls) < 0 ||
        peer.sin_family != AF_INET || peer_uid(&peer, &self, &uid) < 0) {
        snprintf(why, n, "no local process owns the peer");
        return -1;
    }
    int len =
        snprintf(why, n, "uid %u, port %u: ", (unsigned)uid, ntohs(peer.sin_port));
    char *rest = why + len;
    size_t left = n - (size_t)len;
    if (!uid_has_step(uid)) {
        snprintf(rest, left, "runs no step here");
        return -1;
    }
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += HELLO_WAIT_MS / 1000;
    unsigned char buf[sizeof(phx_pmix_hello_hdr_t) + PHX_PMIX_HELLO_MAX];
    phx_pmix_hello_hdr_t hdr;
    phx_pmix_hello_t h;
    ssize_t got = peek(conn, buf, sizeof(hdr), &end);
    if (got < (ssize_t)sizeof(hdr)) {
        snprintf(rest, left, "no connect message within %d ms", HELLO_WAIT_MS);
        return -1;
    }
    memcpy(&hdr, buf, sizeof(hdr));
    if (hdr.len > PHX_PMIX_HELLO_MAX) {
        snprintf(rest, left, "a connect message of %zu bytes", hdr.len);
        return -1;
    }
    size_t want = sizeof(hdr) + hdr.len;
    if ((got = peek(conn, buf, want, &end)) < (ssize_t)want) {
        snprintf(rest, left, "no whole connect message within %d ms", HELLO_WAIT_MS);
        return -1;
    }
    int low = 1;
    setsockopt(conn, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
    if (phx_pmix_hello_parse(buf + sizeof(hdr), hdr.len, &h) < 0) {
        snprintf(rest, left, "a malformed connect message");
        return -1;
    }
    return check(&h, uid, rest, left);
}

static void refused(const char *why)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&gate.lock);
    if (now - gate.window >= 10) {
        if (gate.quiet)
            phx_log_notice("PMIx: %u more connections refused", gate.quiet);
        gate.window = now;
        gate.logged = gate.quiet = 0;
    }
    bool say = gate.logged < REFUSALS_LOGGED;
    if (say)
        gate.logged++;
    else
        gate.quiet++;
    pthread_mutex_unlock(&gate.lock);
    if (say)
        phx_log_notice("PMIx: refused a connection (%s)", why);
}

/* libpmix's listener calls this; anyone else gets the plain accept. */
int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    int conn = accept4(fd, addr, addrlen, 0);
    int port = atomic_load(&gate.port);
    struct sockaddr_in self;
    socklen_t ls = sizeof(self);
    if (conn < 0 || port == 0 || getsockname(fd, (struct sockaddr *)&self, &ls) < 0 ||
        self.sin_family != AF_INET || self.sin_port != (in_port_t)port)
        return conn;
    char why[256];
    if (admit(conn, why, sizeof(why)) == 0)
        return conn;
    refused(why);
    close(conn);
    errno = ECONNABORTED;
    return -1;
}
