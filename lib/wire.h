/* The agent wire: framed messages over TCP.
 *
 *   u32 header length (network order) | u32 attachment length | header | attachment
 *
 * The header is a JSON object with a string "type"; the optional attachment is
 * raw bytes (PMIx blobs), never base64.  A frame larger than the configured
 * maximum is refused before it is buffered.  A decoder that reported an error
 * stays failed: the caller closes the connection. */
#ifndef PHX_WIRE_H
#define PHX_WIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define PHX_WIRE_PREFIX      8u
#define PHX_WIRE_DEFAULT_MAX (16u << 20)

typedef struct phx_frame {
    json_t *header;   /* owned: json_decref it (phx_frame_clear does) */
    const char *type; /* borrowed from header */
    uint8_t *attach;  /* owned, NULL if the frame has none */
    size_t attach_len;
} phx_frame_t;

void phx_frame_clear(phx_frame_t *frame);

typedef struct phx_wire_decoder phx_wire_decoder_t;

/* max_frame bounds prefix + header + attachment. */
phx_wire_decoder_t *phx_wire_decoder_create(size_t max_frame);
void phx_wire_decoder_destroy(phx_wire_decoder_t *dec);

/* Append received bytes.  -1 (with err) if the decoder already failed or the
 * bytes cannot be part of a valid frame sequence within the maximum. */
int phx_wire_decoder_feed(phx_wire_decoder_t *dec, const void *data, size_t len,
                          phx_error_t *err);

/* Take the next complete frame: 1 and *frame filled (caller owns it), 0 if more
 * bytes are needed, -1 with err on a malformed or oversized frame. */
int phx_wire_decoder_next(phx_wire_decoder_t *dec, phx_frame_t *frame,
                          phx_error_t *err);

/* Bytes buffered and not yet returned as frames. */
size_t phx_wire_decoder_pending(const phx_wire_decoder_t *dec);
/* Give back the buffer beyond what is pending (a connection that is not
 * read for a while then holds its pending bytes only, not the largest frame
 * it ever got); the buffer's size is returned. */
size_t phx_wire_decoder_shrink(phx_wire_decoder_t *dec);

/* Decode exactly one frame from buf (len bytes: prefix, header and
 * attachment, nothing more), within max_frame: 0 and *frame filled (caller
 * owns it), or -1 with errno (EPROTO, ENOMEM) and err. */
int phx_wire_decode(const void *buf, size_t len, size_t max_frame, phx_frame_t *frame,
                    phx_error_t *err);

/* Encode one frame into a malloc'd buffer (*out, *out_len: caller frees).
 * header must be an object with a string "type". */
int phx_wire_encode(const json_t *header, const void *attach, size_t attach_len,
                    size_t max_frame, uint8_t **out, size_t *out_len, phx_error_t *err);

/* The frame's bytes up to its attachment (prefix and header), the prefix
 * counting attach_len bytes of attachment that the caller sends right after
 * them: one attachment may then be shared by many frames.  The whole frame
 * must fit in max_frame (EMSGSIZE).  *out malloc'd (caller frees). */
int phx_wire_encode_head(const json_t *header, size_t attach_len, size_t max_frame,
                         uint8_t **out, size_t *out_len, phx_error_t *err);

/* phx_wire_encode_head of a header the caller serialised already (hlen
 * bytes of text, not parsed here: it must be a JSON object with a string
 * "type", named type in errors), for a large header that would otherwise
 * be serialised twice. */
int phx_wire_encode_head_text(const char *type, const char *text, size_t hlen,
                              size_t attach_len, size_t max_frame, uint8_t **out,
                              size_t *out_len, phx_error_t *err);

#endif
