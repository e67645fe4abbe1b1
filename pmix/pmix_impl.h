/* pmix/ internals shared by its files. */
#ifndef PHX_PMIX_IMPL_H
#define PHX_PMIX_IMPL_H

#include <pmix.h>
#include <pmix_server.h>
#include <pthread.h>
#include <sys/types.h>

#include "pmix/pmix.h"

typedef enum phx_pmix_ev_kind {
    PHX_PMIX_EV_FENCE,
    PHX_PMIX_EV_DMODEX,
    PHX_PMIX_EV_DMODEX_DATA,
    PHX_PMIX_EV_ABORT,
    PHX_PMIX_EV_LOG,
    PHX_PMIX_EV_CONNECTED,
    PHX_PMIX_EV_FINALIZED,
    PHX_PMIX_EV_LOST,
} phx_pmix_ev_kind_t;

/* One callback from PMIx's thread, copied; for fences and dmodex requests
 * also the pending operation until its _done call. */
typedef struct phx_pmix_ev {
    struct phx_pmix_ev *next;
    phx_pmix_ev_kind_t kind;
    char nspace[PMIX_MAX_NSLEN + 1];
    int rank; /* -1: wildcard */
    int status;
    uint64_t token;
    char *data;
    size_t len;
    char *msg;
    pmix_modex_cbfunc_t modex_cb;
    pmix_op_cbfunc_t op_cb;
    void *cbdata;
} phx_pmix_ev_t;

struct phx_pmix {
    phx_pmix_ops_t ops;
    void *arg;
    char node[256];
    char tmpdir[1024];
    char stepbase[1024]; /* stepdir.c: root's, 0711, "" when none */
    bool initialized;
    int wake[2];
    struct event *wake_ev;
    pthread_mutex_t lock; /* head, tail */
    phx_pmix_ev_t *head, *tail;
    phx_pmix_ev_t *pending; /* loop thread only */
    uint64_t next_token;
};

void phx_pmix_pending_fail(phx_pmix_t *p, const char *nspace);

/* stepdir.c: the steps' directories, under a base of this agent's own.
 * phx_pmix_step_dir: the path of nspace's (-1 if none or nspace is not a
 * plain name); _make: create it (or take the existing one) for uid:gid,
 * 0700; _remove: remove its tree without following any link in it. */
int phx_pmix_stepbase_create(phx_pmix_t *p, phx_error_t *err);
void phx_pmix_stepbase_remove(phx_pmix_t *p);
int phx_pmix_step_dir(const phx_pmix_t *p, const char *nspace, char *buf, size_t len);
int phx_pmix_step_dir_make(phx_pmix_t *p, const char *nspace, uid_t uid, gid_t gid,
                           phx_error_t *err);
void phx_pmix_step_dir_remove(phx_pmix_t *p, const char *nspace);

/* hello.c: a client's connect message (pointers into the message), and
 * whether a connection from uid may go on to PMIx, given the step named
 * in it (NULL: none); -1 with the reason in why if not. */
#define PHX_PMIX_HELLO_CLIENT 0     /* a plain client: a rank */
#define PHX_PMIX_HELLO_MAX    4096  /* ours are ~60 bytes; a native credential is 8 */
typedef struct phx_pmix_hello_hdr { /* PMIx's pmix_ptl_hdr_t, host order */
    int32_t index;
    uint32_t tag;
    size_t len; /* of the message that follows */
} phx_pmix_hello_hdr_t;

typedef struct phx_pmix_hello {
    const char *psec;
    uint32_t cred_len;
    const unsigned char *cred;
    uint8_t kind;
    const char *nspace; /* the rest: plain clients only */
    uint32_t rank;
    const char *version, *bfrops;
    uint8_t buffer_type;
    const char *gds;
} phx_pmix_hello_t;

typedef struct phx_pmix_gate_step {
    struct phx_pmix_gate_step *next;
    char nspace[PMIX_MAX_NSLEN + 1];
    uid_t uid;
    int nranks; /* the local ones */
    int *ranks;
} phx_pmix_gate_step_t;

int phx_pmix_hello_parse(const void *msg, size_t len, phx_pmix_hello_t *h);
int phx_pmix_hello_check(const phx_pmix_hello_t *h, uid_t uid,
                         const phx_pmix_gate_step_t *step, char *why, size_t n);

/* gate.c: the check of every connection to the server's TCP listener
 * before PMIx reads it.  _prepare: before PMIx_server_init (every IPv4
 * accept() refused); _arm: from the URI file PMIx wrote at init, starts the
 * gate's thread; _step_add/_remove: who may connect as which rank;
 * _peer_uid: the uid of the live local socket at the other end of a
 * loopback connection (-1 if none). */
struct sockaddr_in;
void phx_pmix_gate_prepare(void);
int phx_pmix_gate_arm(const char *uri_file, phx_error_t *err);
int phx_pmix_gate_peer_uid(const struct sockaddr_in *peer,
                           const struct sockaddr_in *self, uid_t *uid);
void phx_pmix_gate_disarm(void);
int phx_pmix_gate_step_add(const phx_pmix_map_t *map);
void phx_pmix_gate_step_remove(const char *nspace);

#endif
