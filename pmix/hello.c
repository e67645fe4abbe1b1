/* The connect message a PMIx client sends first, and whether the gate lets
 * it through (gate.c does the I/O).
 *
 * The layout is PMIx 4's (src/mca/ptl/base/ptl_base_connection_hdlr.c),
 * after a 16-byte header whose last field is the message's length: the
 * security module's name, the credential's length (32 bits, network order)
 * and bytes, the kind of client, for a plain client its namespace and rank
 * (32 bits, network order), the PMIx version, the buffer-operations module,
 * the buffer type, the data-store modules, and more we do not read. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pmix/pmix_impl.h"

typedef struct cursor {
    const unsigned char *p;
    size_t left;
} cursor_t;

static const char *take_str(cursor_t *c)
{
    const unsigned char *nul = memchr(c->p, '\0', c->left);
    if (!nul)
        return NULL;
    const char *s = (const char *)c->p;
    c->left -= (size_t)(nul - c->p) + 1;
    c->p = nul + 1;
    return s;
}

static int take(cursor_t *c, void *out, size_t n)
{
    if (c->left < n)
        return -1;
    memcpy(out, c->p, n);
    c->p += n;
    c->left -= n;
    return 0;
}

int phx_pmix_hello_parse(const void *msg, size_t len, phx_pmix_hello_t *h)
{
    cursor_t c = {msg, len};
    uint32_t u32;
    memset(h, 0, sizeof(*h));
    if (!(h->psec = take_str(&c)) || take(&c, &u32, 4) < 0)
        return -1;
    h->cred_len = ntohl(u32);
    if (h->cred_len > c.left)
        return -1;
    h->cred = c.p;
    c.p += h->cred_len;
    c.left -= h->cred_len;
    if (take(&c, &h->kind, 1) < 0)
        return -1;
    if (h->kind != PHX_PMIX_HELLO_CLIENT)
        return 0; /* the rest differs; only plain clients are let through */
    if (!(h->nspace = take_str(&c)) || take(&c, &u32, 4) < 0)
        return -1;
    h->rank = ntohl(u32);
    if (!(h->version = take_str(&c)) || !(h->bfrops = take_str(&c)) ||
        take(&c, &h->buffer_type, 1) < 0 || !(h->gds = take_str(&c)))
        return -1;
    return 0;
}

static bool in_list(const char *name, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(name, *list, len) == 0)
            return true;
    return false;
}

/* Names this PMIx knows: a name it does not know takes its server down a
 * path that deadlocks (PMIx 4.2.2). */
static const char *const bfrops_known[] = {"v12", "v20", "v21", "v3",
                                           "v4",  "v41", NULL};
static const char *const gds_known[] = {"ds12", "ds21", "hash", NULL};

static bool gds_ok(const char *list)
{
    if (!*list)
        return false;
    for (const char *s = list;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (!in_list(s, n, gds_known))
            return false;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

int phx_pmix_hello_check(const phx_pmix_hello_t *h, uid_t uid,
                         const phx_pmix_gate_step_t *step, char *why, size_t n)
{
    if (strcmp(h->psec, "native") != 0) {
        snprintf(why, n, "security module \"%.32s\", not \"native\"", h->psec);
        return -1;
    }
    if (h->kind != PHX_PMIX_HELLO_CLIENT) {
        snprintf(why, n, "a tool or launcher (kind %u), not a rank", h->kind);
        return -1;
    }
    uid_t claimed;
    if (h->cred_len != sizeof(uid_t) + sizeof(gid_t)) {
        snprintf(why, n, "a credential of %u bytes", h->cred_len);
        return -1;
    }
    memcpy(&claimed, h->cred, sizeof(claimed));
    if (claimed != uid) {
        snprintf(why, n, "claims uid %u", (unsigned)claimed);
        return -1;
    }
    if (!step) {
        snprintf(why, n, "namespace \"%.64s\" is no step here", h->nspace);
        return -1;
    }
    if (step->uid != uid) {
        snprintf(why, n, "step %s is uid %u's", step->nspace, (unsigned)step->uid);
        return -1;
    }
    bool local = false;
    for (int i = 0; i < step->nranks && !local; i++)
        local = (uint32_t)step->ranks[i] == h->rank;
    if (!local) {
        snprintf(why, n, "rank %u is not a rank of %s here", h->rank, step->nspace);
        return -1;
    }
    if (!in_list(h->bfrops, strlen(h->bfrops), bfrops_known) || !gds_ok(h->gds) ||
        (h->buffer_type != 1 && h->buffer_type != 2)) {
        snprintf(why, n, "modules \"%.16s\", \"%.32s\" or buffer type %u unknown",
                 h->bfrops, h->gds, h->buffer_type);
        return -1;
    }
    return 0;
}
