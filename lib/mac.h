/* Message authentication with a secret key: HMAC-SHA256, and what handling a
 * key needs (random bytes from getrandom, hex, constant-time comparison,
 * wiping).  OpenSSL's libcrypto does the hashing; none of its types show.
 *
 * A phx_mac_t holds a copy of its key, wiped by phx_mac_destroy.  It is not
 * thread-safe: one per thread.  Nothing here logs. */
#ifndef PHX_MAC_H
#define PHX_MAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define PHX_MAC_KEY_LEN 32 /* bytes of a session key (256 bits) */
#define PHX_MAC_LEN     32 /* bytes of an HMAC-SHA256 */
#define PHX_MAC_HEX_LEN (2 * PHX_MAC_LEN)

typedef struct phx_mac phx_mac_t;

/* One piece of the message; the pieces are authenticated as if joined. */
typedef struct phx_mac_part {
    const void *data;
    size_t len;
} phx_mac_part_t;

/* A MAC under key (len >= 1 bytes, copied); NULL with errno and err. */
phx_mac_t *phx_mac_create(const void *key, size_t len, phx_error_t *err);
/* Wipes the key; NULL is a no-op; errno preserved. */
void phx_mac_destroy(phx_mac_t *m);

/* SHA-256 of data (len bytes; NULL with 0: nothing); 0, or -1 with errno. */
int phx_sha256(const void *data, size_t len, unsigned char out[PHX_MAC_LEN]);
/* The same in lowercase hex. */
int phx_sha256_hex(const void *data, size_t len, char hex[PHX_MAC_HEX_LEN + 1]);

/* HMAC-SHA256(key, parts joined) into out; 0, or -1 with errno. */
int phx_mac_compute(phx_mac_t *m, const phx_mac_part_t *parts, size_t nparts,
                    unsigned char out[PHX_MAC_LEN]);
/* Whether mac is that of the parts, compared in constant time. */
bool phx_mac_verify(phx_mac_t *m, const phx_mac_part_t *parts, size_t nparts,
                    const unsigned char mac[PHX_MAC_LEN]);

/* The MAC of a numbered message: HMAC-SHA256(key, "<label> <seq>\n" text),
 * seq in decimal.  The label keeps apart messages of different kinds under
 * one key (doc/agent.md: "phx-launch"). */
int phx_mac_compute_seq(phx_mac_t *m, const char *label, uint64_t seq, const void *text,
                        size_t len, unsigned char out[PHX_MAC_LEN]);
/* The same over text given in pieces (at most 3), as if joined. */
int phx_mac_compute_seq_parts(phx_mac_t *m, const char *label, uint64_t seq,
                              const phx_mac_part_t *text, size_t ntext,
                              unsigned char out[PHX_MAC_LEN]);
bool phx_mac_verify_seq(phx_mac_t *m, const char *label, uint64_t seq, const void *text,
                        size_t len, const unsigned char mac[PHX_MAC_LEN]);

/* len bytes from the kernel's random pool (getrandom); 0 or -1 with errno. */
int phx_mac_random(void *buf, size_t len);
/* Constant-time equality of a and b (len bytes each). */
bool phx_mac_equal(const void *a, const void *b, size_t len);
/* Zero len bytes in a way the compiler may not drop. */
void phx_mac_wipe(void *buf, size_t len);

/* Lower-case hex of len bytes into hex (2 * len + 1 bytes, NUL-terminated). */
void phx_mac_to_hex(const unsigned char *bin, size_t len, char *hex);
/* Exactly 2 * len hex digits (either case) into bin; 0, or -1 (EINVAL). */
int phx_mac_from_hex(const char *hex, unsigned char *bin, size_t len);

#endif
