/* Sealed frames: lib/wire_seal.h. */
#include "lib/wire_seal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 32

/* "phx-frame <dir>", or "phx-framed <dir>" when the MAC covers the
 * attachment's digest: the label of phx_mac_*_seq, which adds " <seq>\n". */
static int label(const char *dir, bool digest, char buf[LABEL_MAX], phx_error_t *err)
{
    if (!dir || (strcmp(dir, PHX_SEAL_M2A) != 0 && strcmp(dir, PHX_SEAL_A2M) != 0)) {
        errno = EINVAL;
        return phx_error_set(err, "unknown sealing direction");
    }
    snprintf(buf, LABEL_MAX, "%s %s", digest ? "phx-framed" : "phx-frame", dir);
    return 0;
}

static int seal_inner(phx_mac_t *key, const char *lab, uint64_t seq, uint8_t *inner,
                      size_t inner_len, phx_mac_part_t tail, bool digest,
                      size_t attach_len, size_t max_frame, uint8_t **out,
                      size_t *out_len, phx_error_t *err);

/* The bytes of a sealed frame up to the inner frame's attachment, the MAC
 * covering the inner head followed by tail: the attachment itself, or its
 * digest (then marked in the outer header). */
static int seal_head(phx_mac_t *key, const char *dir, uint64_t seq,
                     const json_t *header, phx_mac_part_t tail, bool digest,
                     size_t attach_len, size_t max_frame, uint8_t **out,
                     size_t *out_len, phx_error_t *err)
{
    char lab[LABEL_MAX];
    if (label(dir, digest, lab, err) < 0)
        return -1;
    if (!key || seq < 1 || seq > INT64_MAX || max_frame <= PHX_WIRE_SEAL_OVERHEAD) {
        errno = EINVAL;
        return phx_error_set(err, "cannot seal: no key, or a bad number or maximum");
    }
    const char *type = json_string_value(json_object_get(header, "type"));
    if (type && strcmp(type, "SEALED") == 0) {
        errno = EINVAL;
        return phx_error_set(err, "cannot seal a sealed frame");
    }
    uint8_t *inner;
    size_t inner_len;
    if (phx_wire_encode_head(header, attach_len, max_frame - PHX_WIRE_SEAL_OVERHEAD,
                             &inner, &inner_len, err) < 0)
        return -1;
    return seal_inner(key, lab, seq, inner, inner_len, tail, digest, attach_len,
                      max_frame, out, out_len, err);
}

/* seal_head once the inner frame's head is made (inner: consumed). */
static int seal_inner(phx_mac_t *key, const char *lab, uint64_t seq, uint8_t *inner,
                      size_t inner_len, phx_mac_part_t tail, bool digest,
                      size_t attach_len, size_t max_frame, uint8_t **out,
                      size_t *out_len, phx_error_t *err)
{
    uint8_t *outer_head = NULL;
    size_t outer_len;
    unsigned char mac[PHX_MAC_LEN];
    char hex[PHX_MAC_HEX_LEN + 1];
    json_t *outer = NULL;
    int rc = -1;
    phx_mac_part_t text[] = {{inner, inner_len}, tail};
    if (phx_mac_compute_seq_parts(key, lab, seq, text, 2, mac) < 0) {
        phx_error_set(err, "could not compute a frame MAC");
        goto out;
    }
    phx_mac_to_hex(mac, sizeof(mac), hex);
    if (!(outer = json_pack("{s:s, s:I, s:s}", "type", "SEALED", "seq", (json_int_t)seq,
                            "mac", hex)) ||
        (digest && json_object_set_new(outer, "digest", json_string("sha256")) < 0)) {
        errno = ENOMEM;
        phx_error_set(err, "out of memory");
        goto out;
    }
    if (phx_wire_encode_head(outer, inner_len + attach_len, max_frame, &outer_head,
                             &outer_len, err) < 0)
        goto out;
    uint8_t *buf = realloc(outer_head, outer_len + inner_len);
    if (!buf) {
        errno = ENOMEM;
        phx_error_set(err, "out of memory");
        goto out;
    }
    memcpy(buf + outer_len, inner, inner_len);
    outer_head = NULL;
    *out = buf;
    *out_len = outer_len + inner_len;
    rc = 0;
out:
    json_decref(outer);
    free(outer_head);
    free(inner);
    return rc;
}

int phx_wire_seal_head(phx_mac_t *key, const char *dir, uint64_t seq,
                       const json_t *header, const unsigned char digest[PHX_MAC_LEN],
                       size_t attach_len, size_t max_frame, uint8_t **out,
                       size_t *out_len, phx_error_t *err)
{
    phx_mac_part_t tail = {digest, PHX_MAC_LEN};
    return seal_head(key, dir, seq, header, tail, true, attach_len, max_frame, out,
                     out_len, err);
}

int phx_wire_seal(phx_mac_t *key, const char *dir, uint64_t seq, const json_t *header,
                  const void *attach, size_t attach_len, size_t max_frame,
                  uint8_t **out, size_t *out_len, phx_error_t *err)
{
    uint8_t *head;
    size_t head_len;
    phx_mac_part_t tail = {attach, attach_len};
    if (seal_head(key, dir, seq, header, tail, false, attach_len, max_frame, &head,
                  &head_len, err) < 0)
        return -1;
    if (attach_len == 0) {
        *out = head;
        *out_len = head_len;
        return 0;
    }
    uint8_t *buf = realloc(head, head_len + attach_len);
    if (!buf) {
        free(head);
        errno = ENOMEM;
        return phx_error_set(err, "out of memory");
    }
    memcpy(buf + head_len, attach, attach_len);
    *out = buf;
    *out_len = head_len + attach_len;
    return 0;
}

int phx_wire_seal_text(phx_mac_t *key, const char *dir, uint64_t seq, const char *type,
                       const char *text, size_t len, size_t max_frame, uint8_t **out,
                       size_t *out_len, phx_error_t *err)
{
    char lab[LABEL_MAX];
    if (label(dir, false, lab, err) < 0)
        return -1;
    if (!key || seq < 1 || seq > INT64_MAX || max_frame <= PHX_WIRE_SEAL_OVERHEAD) {
        errno = EINVAL;
        return phx_error_set(err, "cannot seal: no key, or a bad number or maximum");
    }
    if (!type || strcmp(type, "SEALED") == 0) {
        errno = EINVAL;
        return phx_error_set(err, "cannot seal a sealed frame");
    }
    uint8_t *inner;
    size_t inner_len;
    if (phx_wire_encode_head_text(type, text, len, 0,
                                  max_frame - PHX_WIRE_SEAL_OVERHEAD, &inner,
                                  &inner_len, err) < 0)
        return -1;
    phx_mac_part_t none = {NULL, 0};
    return seal_inner(key, lab, seq, inner, inner_len, none, false, 0, max_frame, out,
                      out_len, err);
}

static int refuse(int e, phx_error_t *err, const char *what)
{
    errno = e;
    return phx_error_set(err, "%s", what);
}

/* Whether mac is that of the inner frame (sealed's attachment), or with
 * digest of its head and its attachment's SHA-256. */
static bool mac_matches(phx_mac_t *key, const char *lab, uint64_t seq, bool digest,
                        const phx_frame_t *sealed, const unsigned char mac[PHX_MAC_LEN])
{
    if (!digest)
        return phx_mac_verify_seq(key, lab, seq, sealed->attach, sealed->attach_len,
                                  mac);
    const uint8_t *p = sealed->attach;
    size_t len = sealed->attach_len, hlen, alen;
    uint32_t n[2];
    if (len < sizeof(n))
        return false;
    memcpy(n, p, sizeof(n));
    hlen = ntohl(n[0]);
    alen = ntohl(n[1]);
    if (hlen > len - sizeof(n) || alen != len - sizeof(n) - hlen)
        return false;
    unsigned char md[PHX_MAC_LEN], want[PHX_MAC_LEN];
    phx_mac_part_t text[] = {{p, sizeof(n) + hlen}, {md, sizeof(md)}};
    bool ok = phx_sha256(p + sizeof(n) + hlen, alen, md) == 0 &&
              phx_mac_compute_seq_parts(key, lab, seq, text, 2, want) == 0 &&
              phx_mac_equal(want, mac, PHX_MAC_LEN);
    phx_mac_wipe(want, sizeof(want));
    return ok;
}

int phx_wire_unseal(phx_mac_t *key, const char *dir, uint64_t *last_seq,
                    const phx_frame_t *sealed, size_t max_frame, phx_frame_t *inner,
                    phx_error_t *err)
{
    memset(inner, 0, sizeof(*inner));
    if (!key)
        return refuse(EINVAL, err, "no session key to check a sealed frame");
    if (!sealed->type || strcmp(sealed->type, "SEALED") != 0) {
        errno = EPROTO;
        return phx_error_set(err, "frame \"%.40s\" is not sealed",
                             sealed->type ? sealed->type : "?");
    }
    json_t *jseq = json_object_get(sealed->header, "seq");
    const char *hex = json_string_value(json_object_get(sealed->header, "mac"));
    if (!json_is_integer(jseq) || json_integer_value(jseq) < 1)
        return refuse(EPROTO, err,
                      "sealed frame without a sequence number (\"seq\" >= 1)");
    if (!hex)
        return refuse(EPROTO, err, "sealed frame without a MAC (\"mac\")");
    unsigned char mac[PHX_MAC_LEN];
    if (phx_mac_from_hex(hex, mac, sizeof(mac)) < 0)
        return refuse(EPROTO, err, "sealed frame's MAC is not 64 hex digits");
    if (sealed->attach_len == 0)
        return refuse(EPROTO, err, "sealed frame without an inner frame");
    json_t *jdigest = json_object_get(sealed->header, "digest");
    const char *digest = json_string_value(jdigest);
    if (jdigest && (!digest || strcmp(digest, "sha256") != 0))
        return refuse(EPROTO, err,
                      "sealed frame with an unknown digest (not \"sha256\")");
    char lab[LABEL_MAX];
    if (label(dir, jdigest != NULL, lab, err) < 0)
        return -1;
    uint64_t seq = (uint64_t)json_integer_value(jseq);
    if (!mac_matches(key, lab, seq, jdigest != NULL, sealed, mac))
        return refuse(EBADMSG, err,
                      "sealed frame's MAC refused (another key or direction, or the "
                      "frame or its number changed)");
    if (seq != *last_seq + 1) {
        errno = EBADMSG;
        return phx_error_set(
            err, "sealed frame number %llu refused: expected %llu (%s)",
            (unsigned long long)seq, (unsigned long long)(*last_seq + 1),
            seq <= *last_seq ? "a replay" : "frames missing");
    }
    if (phx_wire_decode(sealed->attach, sealed->attach_len, max_frame, inner, err) < 0)
        return phx_error_prefix(err, "sealed frame's inner frame");
    if (strcmp(inner->type, "SEALED") == 0) {
        phx_frame_clear(inner);
        return refuse(EPROTO, err, "sealed frame inside a sealed frame");
    }
    *last_seq = seq;
    return 0;
}
