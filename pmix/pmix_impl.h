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

#endif
