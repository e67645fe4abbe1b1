/* Sealed frames: the agent wire authenticated after registration
 * (doc/agent.md, "Channel authentication").
 *
 * A sealed frame is an ordinary frame whose header is
 *
 *   {"type": "SEALED", "seq": N, "mac": "<64 hex digits>"}
 *
 * and whose attachment is the inner frame exactly as phx_wire_encode made
 * it (prefix, header, attachment).  mac is HMAC-SHA256 under the
 * connection's session key of "phx-frame <dir> <seq>\n" followed by those
 * bytes; dir is PHX_SEAL_M2A or PHX_SEAL_A2M, so a frame cannot be sent
 * back to its sender, and seq is 1, 2, 3, ... per direction and
 * connection, each exactly one above the last, so that a frame cannot be
 * replayed, reordered or dropped unnoticed.  MACing the bytes sent needs
 * no JSON canonical form.  Nothing here logs. */
#ifndef PHX_WIRE_SEAL_H
#define PHX_WIRE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/mac.h"
#include "lib/wire.h"

#define PHX_SEAL_M2A "m2a" /* master to agent */
#define PHX_SEAL_A2M "a2m" /* agent to master */

/* Bytes a sealed frame adds to its inner frame, at most: an inner frame
 * must fit in max_frame - PHX_WIRE_SEAL_OVERHEAD. */
#define PHX_WIRE_SEAL_OVERHEAD 256u

/* Encode the frame {header, attach} and seal it as number seq (>= 1,
 * <= INT64_MAX) in direction dir, the whole within max_frame: *out, *out_len
 * malloc'd (caller frees).  0, or -1 with errno and err. */
int phx_wire_seal(phx_mac_t *key, const char *dir, uint64_t seq, const json_t *header,
                  const void *attach, size_t attach_len, size_t max_frame,
                  uint8_t **out, size_t *out_len, phx_error_t *err);

/* phx_wire_seal of a frame without attachment whose header the caller
 * serialised already: text (len bytes, not parsed here) must be a JSON
 * object whose "type" is the string type (not "SEALED").  For a large
 * header that would otherwise be serialised twice (the master's LAUNCH). */
int phx_wire_seal_text(phx_mac_t *key, const char *dir, uint64_t seq, const char *type,
                       const char *text, size_t len, size_t max_frame, uint8_t **out,
                       size_t *out_len, phx_error_t *err);

/* phx_wire_seal without the inner frame's attachment, for an attachment
 * shared by the frames of many connections (STEP_LAUNCH, doc/steps.md):
 * *out holds every byte of the sealed frame before the attachment (outer
 * prefix and header, inner prefix and header), and the caller sends the
 * attachment's attach_len bytes right after them.  The MAC then covers
 * digest, the attachment's SHA-256 (phx_sha256, computed once by the
 * caller), instead of its bytes: the outer header says so with
 * "digest": "sha256", the label is "phx-framed <dir>", and the receiver
 * hashes the attachment it got.  Hashing a large attachment once instead
 * of once per connection (each has its own key) is the point. */
int phx_wire_seal_head(phx_mac_t *key, const char *dir, uint64_t seq,
                       const json_t *header, const unsigned char digest[PHX_MAC_LEN],
                       size_t attach_len, size_t max_frame, uint8_t **out,
                       size_t *out_len, phx_error_t *err);

/* Check a received frame: it must be SEALED, in direction dir, with a MAC
 * under key and the number *last_seq + 1, and hold one well-formed frame
 * (within max_frame) that is not itself SEALED.  0: *inner filled (caller
 * owns it: phx_frame_clear) and *last_seq advanced.  -1 with errno
 * (EPROTO, EBADMSG for a MAC or number refused, ENOMEM) and err: *inner
 * empty, *last_seq unchanged; the caller closes the connection. */
int phx_wire_unseal(phx_mac_t *key, const char *dir, uint64_t *last_seq,
                    const phx_frame_t *sealed, size_t max_frame, phx_frame_t *inner,
                    phx_error_t *err);

#endif
