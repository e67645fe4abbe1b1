/* munge helpers: encode a credential over a payload, decode one under a
 * policy (allowed uids, maximum age, replay refused by munged), every failure
 * as clear text.  A phx_munge_t is not thread-safe: one per thread. */
#ifndef PHX_MUNGE_H
#define PHX_MUNGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "lib/error.h"

#define PHX_MUNGE_CRED_MAX 65536

typedef struct phx_munge phx_munge_t;

typedef struct phx_munge_policy {
    const uid_t *uids; /* allowed uids (nuids of them: 0 allows none); NULL: any */
    size_t nuids;
    int max_age;        /* seconds since encoding; 0: munge's own TTL only */
    const void *expect; /* if set, the payload must equal these bytes */
    size_t expect_len;
} phx_munge_policy_t;

typedef struct phx_munge_cred {
    uid_t uid;
    gid_t gid;
    time_t encoded;
    uid_t restricted_to; /* the only uid allowed to decode it; (uid_t)-1: any */
    bool encrypted;      /* its payload was encrypted (cipher other than none) */
    void *payload; /* owned: phx_munge_cred_clear wipes and frees it; NUL-terminated */
    size_t len;
} phx_munge_cred_t;

/* socket: munged's socket path, NULL for the default. */
phx_munge_t *phx_munge_create(const char *socket, phx_error_t *err);
void phx_munge_destroy(phx_munge_t *m);

/* Encode payload into *cred (caller frees); ttl 0 = munged's default.  Any
 * uid of the realm may decode it. */
int phx_munge_encode(phx_munge_t *m, const void *payload, size_t len, int ttl,
                     char **cred, phx_error_t *err);
/* The same for a secret payload: encrypted (AES-128, whatever munged's
 * default cipher), and only uid may decode it (MUNGE_OPT_UID_RESTRICTION:
 * munged refuses any other client, root included unless munged was built to
 * let root decode everything).  That is uid on any host of the realm. */
int phx_munge_encode_for(phx_munge_t *m, const void *payload, size_t len, int ttl,
                         uid_t uid, char **cred, phx_error_t *err);

/* Decode cred; 0 and *out filled only if every check of policy passed. */
int phx_munge_decode(phx_munge_t *m, const char *cred, const phx_munge_policy_t *policy,
                     time_t now, phx_munge_cred_t *out, phx_error_t *err);
/* The checks of policy that phx_munge_decode makes once munged decoded c
 * (for a credential decoded earlier, with policy NULL): 0, or -1 with err
 * and c cleared. */
int phx_munge_check(phx_munge_cred_t *c, const phx_munge_policy_t *policy, time_t now,
                    phx_error_t *err);
void phx_munge_cred_clear(phx_munge_cred_t *c);

#endif
