#include "lib/munge.h"

#include <errno.h>
#include <munge.h>
#include <stdlib.h>
#include <string.h>

struct phx_munge {
    munge_ctx_t ctx;
    char *socket;
};

phx_munge_t *phx_munge_create(const char *socket, phx_error_t *err)
{
    phx_munge_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto oom;
    if (!(m->ctx = munge_ctx_create()))
        goto oom;
    if (socket) {
        if (!(m->socket = strdup(socket)))
            goto oom;
        if (munge_ctx_set(m->ctx, MUNGE_OPT_SOCKET, m->socket) != EMUNGE_SUCCESS) {
            phx_error_set(err, "could not set munge socket \"%s\": %s", socket,
                          munge_ctx_strerror(m->ctx));
            phx_munge_destroy(m);
            errno = EINVAL;
            return NULL;
        }
    }
    return m;
oom:
    phx_munge_destroy(m);
    errno = ENOMEM;
    phx_error_set(err, "out of memory");
    return NULL;
}

void phx_munge_destroy(phx_munge_t *m)
{
    int saved = errno;
    if (m) {
        if (m->ctx)
            munge_ctx_destroy(m->ctx);
        free(m->socket);
        free(m);
    }
    errno = saved;
}

/* Every option an encode reads: munge_decode leaves those of the credential
 * it decoded in the context (a uid restriction too), so set them all. */
static int encode(phx_munge_t *m, const void *payload, size_t len, int ttl, uid_t uid,
                  int cipher, char **cred, phx_error_t *err)
{
    if (len > PHX_MUNGE_CRED_MAX / 2) {
        errno = EMSGSIZE;
        return phx_error_set(err, "munge payload of %zu bytes is too large", len);
    }
    if (munge_ctx_set(m->ctx, MUNGE_OPT_TTL, ttl) != EMUNGE_SUCCESS ||
        munge_ctx_set(m->ctx, MUNGE_OPT_UID_RESTRICTION, uid) != EMUNGE_SUCCESS ||
        munge_ctx_set(m->ctx, MUNGE_OPT_GID_RESTRICTION, MUNGE_GID_ANY) !=
            EMUNGE_SUCCESS ||
        munge_ctx_set(m->ctx, MUNGE_OPT_CIPHER_TYPE, cipher) != EMUNGE_SUCCESS ||
        munge_ctx_set(m->ctx, MUNGE_OPT_MAC_TYPE, MUNGE_MAC_DEFAULT) !=
            EMUNGE_SUCCESS ||
        munge_ctx_set(m->ctx, MUNGE_OPT_ZIP_TYPE, MUNGE_ZIP_DEFAULT) !=
            EMUNGE_SUCCESS) {
        errno = EINVAL;
        return phx_error_set(err, "could not set munge options (ttl %d): %s", ttl,
                             munge_ctx_strerror(m->ctx));
    }
    char *c = NULL;
    munge_err_t e = munge_encode(&c, m->ctx, payload, (int)len);
    if (e != EMUNGE_SUCCESS) {
        free(c);
        errno = EIO;
        return phx_error_set(err, "could not encode munge credential: %s",
                             munge_ctx_strerror(m->ctx));
    }
    *cred = c;
    return 0;
}

int phx_munge_encode(phx_munge_t *m, const void *payload, size_t len, int ttl,
                     char **cred, phx_error_t *err)
{
    return encode(m, payload, len, ttl, MUNGE_UID_ANY, MUNGE_CIPHER_DEFAULT, cred, err);
}

int phx_munge_encode_for(phx_munge_t *m, const void *payload, size_t len, int ttl,
                         uid_t uid, char **cred, phx_error_t *err)
{
    if (uid == (uid_t)MUNGE_UID_ANY) {
        errno = EINVAL;
        return phx_error_set(err, "a secret munge payload needs a uid to restrict to");
    }
    return encode(m, payload, len, ttl, uid, MUNGE_CIPHER_AES128, cred, err);
}

static bool uid_allowed(const phx_munge_policy_t *p, uid_t uid)
{
    if (!p || !p->uids) /* an empty list allows nobody, not everybody */
        return true;
    for (size_t i = 0; i < p->nuids; i++)
        if (p->uids[i] == uid)
            return true;
    return false;
}

int phx_munge_decode(phx_munge_t *m, const char *cred, const phx_munge_policy_t *policy,
                     time_t now, phx_munge_cred_t *out, phx_error_t *err)
{
    memset(out, 0, sizeof(*out));
    errno = EACCES;
    if (!cred || !*cred)
        return phx_error_set(err, "missing munge credential");
    if (strnlen(cred, PHX_MUNGE_CRED_MAX + 1) > PHX_MUNGE_CRED_MAX)
        return phx_error_set(err, "munge credential too long");

    void *buf = NULL;
    int len = 0;
    uid_t uid;
    gid_t gid;
    munge_err_t e = munge_decode(cred, m->ctx, &buf, &len, &uid, &gid);
    if (e != EMUNGE_SUCCESS) {
        free(buf);
        errno = EACCES;
        switch (e) {
        case EMUNGE_CRED_EXPIRED: return phx_error_set(err, "munge credential expired");
        case EMUNGE_CRED_REPLAYED:
            return phx_error_set(err, "munge credential replayed");
        case EMUNGE_CRED_REWOUND:
            return phx_error_set(err, "munge credential from the future (clock skew)");
        case EMUNGE_CRED_INVALID:
            return phx_error_set(err,
                                 "munge credential invalid (another key, or forged)");
        case EMUNGE_BAD_CRED: return phx_error_set(err, "munge credential malformed");
        case EMUNGE_CRED_UNAUTHORIZED:
            return phx_error_set(err, "munge credential is restricted to another user");
        default:
            errno = e == EMUNGE_SOCKET ? ECONNREFUSED : EACCES;
            return phx_error_set(err, "could not decode munge credential: %s",
                                 munge_ctx_strerror(m->ctx));
        }
    }
    time_t encoded = 0;
    munge_ctx_get(m->ctx, MUNGE_OPT_ENCODE_TIME, &encoded);
    uid_t restricted_to = (uid_t)MUNGE_UID_ANY;
    int cipher = MUNGE_CIPHER_NONE;
    munge_ctx_get(m->ctx, MUNGE_OPT_UID_RESTRICTION, &restricted_to);
    munge_ctx_get(m->ctx, MUNGE_OPT_CIPHER_TYPE, &cipher);

    /* munge_decode NUL-terminates a non-empty payload; make it so for an
     * empty one too so callers may treat it as text. */
    if (!buf && !(buf = calloc(1, 1))) {
        errno = ENOMEM;
        return phx_error_set(err, "out of memory");
    }
    out->uid = uid;
    out->gid = gid;
    out->encoded = encoded;
    out->restricted_to = restricted_to;
    out->encrypted = cipher != MUNGE_CIPHER_NONE;
    out->payload = buf;
    out->len = (size_t)len;
    return phx_munge_check(out, policy, now, err);
}

int phx_munge_check(phx_munge_cred_t *c, const phx_munge_policy_t *policy, time_t now,
                    phx_error_t *err)
{
    errno = EACCES;
    if (!uid_allowed(policy, c->uid)) {
        uid_t uid = c->uid;
        phx_munge_cred_clear(c);
        errno = EACCES;
        return phx_error_set(err, "munge credential from uid %u, which is not allowed",
                             (unsigned)uid);
    }
    if (policy && policy->max_age > 0 && now - c->encoded > policy->max_age) {
        time_t encoded = c->encoded;
        phx_munge_cred_clear(c);
        errno = EACCES;
        return phx_error_set(err, "munge credential is %lld s old, more than %d s",
                             (long long)(now - encoded), policy->max_age);
    }
    if (policy && policy->expect &&
        (c->len != policy->expect_len || memcmp(c->payload, policy->expect, c->len))) {
        phx_munge_cred_clear(c);
        errno = EACCES;
        return phx_error_set(err,
                             "munge credential payload does not match the request");
    }
    errno = 0;
    return 0;
}

void phx_munge_cred_clear(phx_munge_cred_t *c)
{
    if (c) {
        if (c->payload)
            explicit_bzero(c->payload, c->len); /* it may carry a key */
        free(c->payload);
        memset(c, 0, sizeof(*c));
    }
}
