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
 * So no connection reaches PMIx before it is checked.  The agent defines
 * accept(), which libpmix's listener thread calls (an executable's symbols
 * come before a library's).  On the PMIx listener's socket it accepts, asks
 * the kernel which uid owns the peer's socket (sock_diag; a socket its owner
 * already closed is refused: the kernel reports uid 0 for it), turns away at
 * once a uid that runs no step here, and hands the connection to the gate's
 * own thread.  That thread waits for the connect message of every pending
 * connection at once (at most 2 s each, MSG_PEEK: PMIx reads the bytes
 * afterwards) and has hello.c check it: a step of that very uid, one of its
 * ranks here, modules PMIx has.  A connection that passes is queued, and
 * the thread connects to the listener itself (a doorbell) so that PMIx calls
 * accept() again: that call takes the doorbell and returns the queued
 * connection.  Until then accept() answers ECONNABORTED, on which PMIx's
 * listener goes on.  So a silent or slow client holds nothing but its own
 * socket.  While PMIx starts, before the port is known, every accept() of an
 * IPv4 socket is refused (the agent's own listeners use accept4). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define HELLO_WAIT_MS       2000 /* for the whole connect message */
#define PENDING_MAX         1024 /* connections waiting for their message */
#define PENDING_PER_UID     64
#define READY_MAX           256
#define REFUSALS_LOGGED     20 /* per 10 s; the rest are counted */
#define SPURIOUS_BACKOFF_MS 10
#define BELL_MS             5000

enum { GATE_OFF, GATE_ARMING, GATE_ON };

typedef struct pending {
    struct pending *next;
    int fd;
    uid_t uid;
    in_port_t peer_port;
    size_t want, seen;
    struct timespec deadline, quiet_until;
    bool woken; /* poll saw something on it */
} pending_t;

static struct {
    atomic_int state;
    atomic_int port; /* of the PMIx listener, network order */
    pthread_mutex_t lock;
    phx_pmix_gate_step_t *steps;
    pending_t *pending;
    size_t npending;
    int ready[READY_MAX];
    size_t nready;
    struct bell {
        int fd;
        struct sockaddr_in at; /* its own end */
        struct timespec until; /* dropped after: its connect never came */
    } bells[READY_MAX];
    size_t nbells;
    pthread_t thread;
    bool running, stop;
    int wake[2];
    time_t window; /* refusal log limit */
    unsigned logged, quiet;
    /* refusals said once the lock is let go (a slow log must not hold up
     * PMIx's listener or the gate's thread) */
    char said[REFUSALS_LOGGED + 1][160];
    size_t nsaid;
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};

/* ---- time ---- */

static struct timespec after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static long ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

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

static void steps_free(phx_pmix_gate_step_t **list, const char *nspace)
{
    for (phx_pmix_gate_step_t **pp = list; *pp;) {
        phx_pmix_gate_step_t *s = *pp;
        if (nspace && strcmp(s->nspace, nspace) != 0) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        free(s->ranks);
        free(s);
        if (nspace)
            return;
    }
}

void phx_pmix_gate_step_remove(const char *nspace)
{
    pthread_mutex_lock(&gate.lock);
    steps_free(&gate.steps, nspace);
    pthread_mutex_unlock(&gate.lock);
}

/* Lock held. */
static const phx_pmix_gate_step_t *step_of(const char *nspace, uid_t uid)
{
    for (const phx_pmix_gate_step_t *s = gate.steps; s; s = s->next)
        if (nspace ? strcmp(s->nspace, nspace) == 0 : s->uid == uid)
            return s;
    return NULL;
}

/* Lock held: a line for say_refusals(). */
static char *to_say(void)
{
    return gate.nsaid < sizeof(gate.said) / sizeof(gate.said[0])
               ? gate.said[gate.nsaid++]
               : NULL;
}

/* Lock held: close fd, say why (within the log limit) once the lock goes. */
static void refuse(int fd, uid_t uid, in_port_t port, const char *why)
{
    close(fd);
    time_t now = time(NULL);
    char *line;
    if (now - gate.window >= 10) {
        if (gate.quiet && (line = to_say()))
            snprintf(line, sizeof(gate.said[0]), "%u more connections refused",
                     gate.quiet);
        gate.window = now;
        gate.logged = gate.quiet = 0;
    }
    if (gate.logged >= REFUSALS_LOGGED || !(line = to_say())) {
        gate.quiet++;
        return;
    }
    gate.logged++;
    if (uid == (uid_t)-1)
        snprintf(line, sizeof(gate.said[0]), "refused a connection (port %u: %s)",
                 ntohs(port), why);
    else
        snprintf(line, sizeof(gate.said[0]),
                 "refused a connection (uid %u, port %u: %s)", (unsigned)uid,
                 ntohs(port), why);
}

/* Lock not held: log the refusals refuse() noted. */
static void say_refusals(void)
{
    char said[sizeof(gate.said) / sizeof(gate.said[0])][sizeof(gate.said[0])];
    pthread_mutex_lock(&gate.lock);
    size_t n = gate.nsaid;
    memcpy(said, gate.said, n * sizeof(said[0]));
    gate.nsaid = 0;
    pthread_mutex_unlock(&gate.lock);
    for (size_t i = 0; i < n; i++)
        phx_log_notice("PMIx: %s", said[i]);
}

/* ---- the peer ---- */

/* The uid owning the local socket at the other end (sock_diag's exact
 * lookup of the peer's socket: its source is our destination).  -1 unless
 * a process still holds it, connected: once closed, the kernel keeps a stub
 * whose uid reads 0. */
int phx_pmix_gate_peer_uid(const struct sockaddr_in *peer,
                           const struct sockaddr_in *self, uid_t *uid)
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
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->idiag_inode != 0 && m->idiag_state == TCP_ESTABLISHED) {
                *uid = m->idiag_uid;
                rc = 0;
            }
        }
    }
    close(s);
    return rc;
}

/* ---- the gate's thread: pending connections → ready ones ---- */

/* Lock held: connect to the listener so that PMIx calls accept() again. */
static void ring(void)
{
    for (size_t i = 0; i < gate.nbells;)
        if (ms_until(&gate.bells[i].until) <= 0) {
            close(gate.bells[i].fd);
            gate.bells[i] = gate.bells[--gate.nbells];
        } else {
            i++;
        }
    if (gate.nbells >= READY_MAX)
        return; /* enough are on their way */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = (in_port_t)atomic_load(&gate.port),
                             .sin_addr = {htonl(INADDR_LOOPBACK)}};
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    if (s < 0)
        return;
    if ((connect(s, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) ||
        getsockname(s, (struct sockaddr *)&me, &len) < 0) {
        close(s);
        return;
    }
    gate.bells[gate.nbells++] = (struct bell){s, me, after_ms(BELL_MS)};
}

/* Lock held: p's message is all there (want bytes): admit or refuse. */
static void decide(pending_t *p, const unsigned char *buf)
{
    phx_pmix_hello_t h;
    char why[200];
    if (phx_pmix_hello_parse(buf + sizeof(phx_pmix_hello_hdr_t),
                             p->want - sizeof(phx_pmix_hello_hdr_t), &h) < 0) {
        refuse(p->fd, p->uid, p->peer_port, "a malformed connect message");
        return;
    }
    const phx_pmix_gate_step_t *s =
        h.kind == PHX_PMIX_HELLO_CLIENT ? step_of(h.nspace, 0) : NULL;
    if (phx_pmix_hello_check(&h, p->uid, s, why, sizeof(why)) < 0 ||
        gate.nready >= READY_MAX) {
        refuse(p->fd, p->uid, p->peer_port,
               gate.nready >= READY_MAX ? "too many connections ready" : why);
        return;
    }
    int low = 1;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
    gate.ready[gate.nready++] = p->fd;
    ring();
}

/* Lock held: look at p again.  true: p is done (admitted or refused). */
static bool advance(pending_t *p)
{
    unsigned char buf[sizeof(phx_pmix_hello_hdr_t) + PHX_PMIX_HELLO_MAX];
    for (;;) {
        ssize_t n = recv(p->fd, buf, p->want, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            refuse(p->fd, p->uid, p->peer_port, "closed before its connect message");
            return true;
        }
        if (n < (ssize_t)p->want) {
            if (ms_until(&p->deadline) <= 0) {
                char why[64];
                snprintf(why, sizeof(why), "no connect message within %d ms",
                         HELLO_WAIT_MS);
                refuse(p->fd, p->uid, p->peer_port, why);
                return true;
            }
            if (n >= 0 && (size_t)n == p->seen) /* woken for nothing new */
                p->quiet_until = after_ms(SPURIOUS_BACKOFF_MS);
            p->seen = n > 0 ? (size_t)n : p->seen;
            return false;
        }
        if (p->want > sizeof(phx_pmix_hello_hdr_t)) {
            decide(p, buf);
            return true;
        }
        phx_pmix_hello_hdr_t hdr;
        memcpy(&hdr, buf, sizeof(hdr));
        if (hdr.len > PHX_PMIX_HELLO_MAX) {
            char why[64];
            snprintf(why, sizeof(why), "a connect message of %zu bytes", hdr.len);
            refuse(p->fd, p->uid, p->peer_port, why);
            return true;
        }
        p->want = sizeof(hdr) + hdr.len;
        int low = (int)p->want;
        setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
    }
}

static void *gate_main(void *arg)
{
    (void)arg;
    struct pollfd fds[PENDING_MAX + 1];
    pending_t *who[PENDING_MAX + 1];
    for (;;) {
        pthread_mutex_lock(&gate.lock);
        if (gate.stop) {
            pthread_mutex_unlock(&gate.lock);
            return NULL;
        }
        size_t n = 1;
        long wait = -1;
        fds[0] = (struct pollfd){.fd = gate.wake[0], .events = POLLIN};
        for (pending_t *p = gate.pending; p && n <= PENDING_MAX; p = p->next) {
            long d = ms_until(&p->deadline), q = ms_until(&p->quiet_until);
            if (wait < 0 || d < wait)
                wait = d < 0 ? 0 : d;
            if (q > 0) { /* after a wake-up for nothing: not polled for a while */
                if (q < wait)
                    wait = q;
                continue;
            }
            who[n] = p;
            fds[n++] = (struct pollfd){.fd = p->fd, .events = POLLIN | POLLRDHUP};
        }
        pthread_mutex_unlock(&gate.lock);
        poll(fds, n, wait < 0 ? -1 : (int)wait + 1);
        char drain[64];
        if (fds[0].revents)
            while (read(gate.wake[0], drain, sizeof(drain)) > 0)
                ;
        pthread_mutex_lock(&gate.lock);
        for (size_t k = 1; k < n; k++) /* what poll saw; the list may have grown */
            who[k]->woken = fds[k].revents != 0;
        for (pending_t **pp = &gate.pending; *pp;) {
            pending_t *p = *pp;
            bool look = p->woken || ms_until(&p->deadline) <= 0;
            p->woken = false;
            if (!look || !advance(p)) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            gate.npending--;
            free(p);
        }
        bool say = gate.nsaid > 0;
        pthread_mutex_unlock(&gate.lock);
        if (say)
            say_refusals();
    }
}

/* ---- the listener's side ---- */

static void wake_thread(void)
{
    char c = 0;
    ssize_t w = write(gate.wake[1], &c, 1); /* full: a wake-up is pending */
    (void)w;
}

/* Lock held: a new connection to the PMIx port. */
static void take_conn(int conn)
{
    struct sockaddr_in peer, self;
    socklen_t lp = sizeof(peer), ls = sizeof(self);
    uid_t uid;
    if (getpeername(conn, (struct sockaddr *)&peer, &lp) < 0 ||
        getsockname(conn, (struct sockaddr *)&self, &ls) < 0 ||
        peer.sin_family != AF_INET) {
        refuse(conn, (uid_t)-1, 0, "not an IPv4 peer");
        return;
    }
    for (size_t i = 0; i < gate.nbells; i++)
        if (gate.bells[i].at.sin_port == peer.sin_port &&
            gate.bells[i].at.sin_addr.s_addr ==
                peer.sin_addr.s_addr) { /* our doorbell */
            close(gate.bells[i].fd);
            gate.bells[i] = gate.bells[--gate.nbells];
            close(conn);
            return;
        }
    if (phx_pmix_gate_peer_uid(&peer, &self, &uid) < 0) {
        refuse(conn, (uid_t)-1, peer.sin_port,
               "no live local socket at the other end (closed already?)");
        return;
    }
    if (!step_of(NULL, uid)) {
        refuse(conn, uid, peer.sin_port, "runs no step here");
        return;
    }
    size_t mine = 0;
    for (pending_t *p = gate.pending; p; p = p->next)
        mine += p->uid == uid;
    pending_t *p = NULL;
    if (gate.npending >= PENDING_MAX || mine >= PENDING_PER_UID ||
        !(p = calloc(1, sizeof(*p)))) {
        refuse(conn, uid, peer.sin_port, "too many connections waiting");
        return;
    }
    *p = (pending_t){.next = gate.pending,
                     .fd = conn,
                     .uid = uid,
                     .peer_port = peer.sin_port,
                     .want = sizeof(phx_pmix_hello_hdr_t),
                     .deadline = after_ms(HELLO_WAIT_MS)};
    int low = (int)p->want;
    setsockopt(conn, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
    gate.pending = p;
    gate.npending++;
    wake_thread();
}

/* libpmix's listener calls this; anyone else gets the plain accept. */
int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    int state = atomic_load(&gate.state);
    struct sockaddr_in self;
    socklen_t ls = sizeof(self);
    if (state == GATE_OFF || getsockname(fd, (struct sockaddr *)&self, &ls) < 0 ||
        self.sin_family != AF_INET ||
        (state == GATE_ON && self.sin_port != (in_port_t)atomic_load(&gate.port)))
        return accept4(fd, addr, addrlen, 0);
    int conn = accept4(fd, NULL, NULL, 0), failed = conn < 0 ? errno : 0;
    if (state == GATE_ARMING) { /* PMIx is starting: nobody yet */
        if (conn >= 0)
            close(conn);
        errno = ECONNABORTED;
        return -1;
    }
    pthread_mutex_lock(&gate.lock);
    if (conn >= 0)
        take_conn(conn);
    int ready = -1;
    if (gate.nready > 0) {
        ready = gate.ready[0];
        memmove(gate.ready, gate.ready + 1, --gate.nready * sizeof(int));
    }
    bool say = gate.nsaid > 0;
    pthread_mutex_unlock(&gate.lock);
    if (say)
        say_refusals();
    if (ready < 0) {
        /* PMIx's own failure (out of descriptors, say) stays its own */
        errno = failed && failed != EAGAIN && failed != EWOULDBLOCK && failed != EINTR
                    ? failed
                    : ECONNABORTED;
        return -1;
    }
    if (addr && addrlen)
        getpeername(ready, addr, addrlen);
    return ready;
}

/* ---- arming ---- */

void phx_pmix_gate_prepare(void)
{
    atomic_store(&gate.state, GATE_ARMING);
}

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
    if (pipe2(gate.wake, O_CLOEXEC | O_NONBLOCK) < 0)
        return phx_error_set(err, "could not make the PMIx gate's pipe: %s",
                             strerror(errno));
    gate.stop = false;
    int e = pthread_create(&gate.thread, NULL, gate_main, NULL);
    if (e != 0) {
        close(gate.wake[0]);
        close(gate.wake[1]);
        gate.wake[0] = gate.wake[1] = -1;
        return phx_error_set(err, "could not start the PMIx gate's thread: %s",
                             strerror(e));
    }
    gate.running = true;
    atomic_store(&gate.port, (int)htons((uint16_t)port));
    atomic_store(&gate.state, GATE_ON);
    return 0;
}

void phx_pmix_gate_disarm(void)
{
    atomic_store(&gate.state, GATE_OFF);
    atomic_store(&gate.port, 0);
    if (gate.running) {
        pthread_mutex_lock(&gate.lock);
        gate.stop = true;
        pthread_mutex_unlock(&gate.lock);
        wake_thread();
        pthread_join(gate.thread, NULL);
        gate.running = false;
    }
    pthread_mutex_lock(&gate.lock);
    while (gate.pending) {
        pending_t *p = gate.pending;
        gate.pending = p->next;
        close(p->fd);
        free(p);
    }
    gate.npending = 0;
    for (size_t i = 0; i < gate.nready; i++)
        close(gate.ready[i]);
    for (size_t i = 0; i < gate.nbells; i++)
        close(gate.bells[i].fd);
    gate.nready = gate.nbells = 0;
    steps_free(&gate.steps, NULL);
    pthread_mutex_unlock(&gate.lock);
    if (gate.wake[0] >= 0) {
        close(gate.wake[0]);
        close(gate.wake[1]);
        gate.wake[0] = gate.wake[1] = -1;
    }
}
