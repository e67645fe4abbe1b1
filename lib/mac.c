#include "lib/mac.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct phx_mac {
    EVP_MAC *mac;
    EVP_MAC_CTX *keyed; /* initialised with the key: duplicated per message */
};

phx_mac_t *phx_mac_create(const void *key, size_t len, phx_error_t *err)
{
    if (!key || len == 0) {
        errno = EINVAL;
        phx_error_set(err, "empty MAC key");
        return NULL;
    }
    phx_mac_t *m = calloc(1, sizeof(*m));
    if (!m) {
        phx_error_set(err, "out of memory");
        return NULL;
    }
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!(m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) ||
        !(m->keyed = EVP_MAC_CTX_new(m->mac)) ||
        !EVP_MAC_init(m->keyed, key, len, params)) {
        phx_mac_destroy(m);
        errno = ENOSYS;
        phx_error_set(err, "could not set up HMAC-SHA256 (libcrypto)");
        return NULL;
    }
    return m;
}

void phx_mac_destroy(phx_mac_t *m)
{
    int saved = errno;
    if (m) {
        EVP_MAC_CTX_free(m->keyed); /* clears the key it holds */
        EVP_MAC_free(m->mac);
        free(m);
    }
    errno = saved;
}

int phx_mac_compute(phx_mac_t *m, const phx_mac_part_t *parts, size_t nparts,
                    unsigned char out[PHX_MAC_LEN])
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(m->keyed);
    size_t outlen = 0;
    int ok = c != NULL;
    for (size_t i = 0; ok && i < nparts; i++)
        ok = parts[i].len == 0 || EVP_MAC_update(c, parts[i].data, parts[i].len);
    ok = ok && EVP_MAC_final(c, out, &outlen, PHX_MAC_LEN) && outlen == PHX_MAC_LEN;
    EVP_MAC_CTX_free(c);
    if (!ok) {
        phx_mac_wipe(out, PHX_MAC_LEN);
        errno = EIO;
        return -1;
    }
    return 0;
}

bool phx_mac_verify(phx_mac_t *m, const phx_mac_part_t *parts, size_t nparts,
                    const unsigned char mac[PHX_MAC_LEN])
{
    unsigned char want[PHX_MAC_LEN];
    bool ok = phx_mac_compute(m, parts, nparts, want) == 0 &&
              phx_mac_equal(want, mac, PHX_MAC_LEN);
    phx_mac_wipe(want, sizeof(want));
    return ok;
}

static int seq_head(const char *label, uint64_t seq, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s %" PRIu64 "\n", label, seq);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return n;
}

int phx_mac_compute_seq(phx_mac_t *m, const char *label, uint64_t seq, const void *text,
                        size_t len, unsigned char out[PHX_MAC_LEN])
{
    phx_mac_part_t part = {text, len};
    return phx_mac_compute_seq_parts(m, label, seq, &part, 1, out);
}

int phx_mac_compute_seq_parts(phx_mac_t *m, const char *label, uint64_t seq,
                              const phx_mac_part_t *text, size_t ntext,
                              unsigned char out[PHX_MAC_LEN])
{
    char head[128];
    int n = seq_head(label, seq, head, sizeof(head));
    phx_mac_part_t parts[4];
    if (n < 0)
        return -1;
    if (ntext > 3) {
        errno = EINVAL;
        return -1;
    }
    parts[0] = (phx_mac_part_t){head, (size_t)n};
    for (size_t i = 0; i < ntext; i++)
        parts[i + 1] = text[i];
    return phx_mac_compute(m, parts, ntext + 1, out);
}

bool phx_mac_verify_seq(phx_mac_t *m, const char *label, uint64_t seq, const void *text,
                        size_t len, const unsigned char mac[PHX_MAC_LEN])
{
    char head[128];
    int n = seq_head(label, seq, head, sizeof(head));
    if (n < 0)
        return false;
    phx_mac_part_t parts[] = {{head, (size_t)n}, {text, len}};
    return phx_mac_verify(m, parts, 2, mac);
}

int phx_mac_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

bool phx_mac_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void phx_mac_wipe(void *buf, size_t len)
{
    OPENSSL_cleanse(buf, len);
}

void phx_mac_to_hex(const unsigned char *bin, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[bin[i] >> 4];
        hex[2 * i + 1] = digits[bin[i] & 15];
    }
    hex[2 * len] = '\0';
}

/* The value of a hex digit, or -1; no branch on the digit (keys go through
 * here). */
static int nibble(unsigned char c)
{
    int d = (int)c - '0', l = (int)(c | 0x20) - 'a' + 10;
    int is_d = (d >= 0) & (d <= 9), is_l = (l >= 10) & (l <= 15);
    return (d & -is_d) | (l & -is_l) | ((is_d | is_l) - 1);
}

int phx_mac_from_hex(const char *hex, unsigned char *bin, size_t len)
{
    if (!hex || strnlen(hex, 2 * len + 1) != 2 * len) {
        errno = EINVAL;
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = nibble((unsigned char)hex[2 * i]),
            lo = nibble((unsigned char)hex[2 * i + 1]);
        bad |= (hi | lo) < 0;
        bin[i] = (unsigned char)(((unsigned)hi << 4) | ((unsigned)lo & 15));
    }
    if (bad) {
        phx_mac_wipe(bin, len);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int phx_sha256(const void *data, size_t len, unsigned char out[PHX_MAC_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data ? data : "", len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != PHX_MAC_LEN) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int phx_sha256_hex(const void *data, size_t len, char hex[PHX_MAC_HEX_LEN + 1])
{
    unsigned char md[PHX_MAC_LEN];
    if (phx_sha256(data, len, md) < 0)
        return -1;
    phx_mac_to_hex(md, sizeof(md), hex);
    return 0;
}
