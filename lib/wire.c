#include "lib/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct phx_wire_decoder {
    size_t max_frame;
    uint8_t *buf;
    size_t len, cap, off; /* valid bytes are buf[off, len) */
    int failed;
};

void phx_frame_clear(phx_frame_t *frame)
{
    if (!frame)
        return;
    json_decref(frame->header);
    free(frame->attach);
    memset(frame, 0, sizeof(*frame));
}

phx_wire_decoder_t *phx_wire_decoder_create(size_t max_frame)
{
    if (max_frame < PHX_WIRE_PREFIX + 2) {
        errno = EINVAL;
        return NULL;
    }
    phx_wire_decoder_t *dec = calloc(1, sizeof(*dec));
    if (!dec)
        return NULL;
    dec->max_frame = max_frame;
    return dec;
}

void phx_wire_decoder_destroy(phx_wire_decoder_t *dec)
{
    int saved = errno;
    if (dec) {
        free(dec->buf);
        free(dec);
    }
    errno = saved;
}

size_t phx_wire_decoder_pending(const phx_wire_decoder_t *dec)
{
    return dec->len - dec->off;
}

size_t phx_wire_decoder_shrink(phx_wire_decoder_t *dec)
{
    size_t pending = dec->len - dec->off;
    if (pending == 0) {
        free(dec->buf);
        dec->buf = NULL;
        dec->len = dec->off = dec->cap = 0;
        return 0;
    }
    size_t cap = 4096;
    while (cap < pending)
        cap *= 2;
    if (cap >= dec->cap)
        return dec->cap;
    memmove(dec->buf, dec->buf + dec->off, pending);
    dec->len = pending;
    dec->off = 0;
    uint8_t *b = realloc(dec->buf, cap);
    if (b) { /* else the larger one stays */
        dec->buf = b;
        dec->cap = cap;
    }
    return dec->cap;
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static int fail(phx_wire_decoder_t *dec, phx_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(phx_wire_decoder_t *dec, phx_error_t *err, const char *fmt, ...)
{
    char text[PHX_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    dec->failed = 1;
    errno = EPROTO;
    return phx_error_set(err, "%s", text);
}

/* Check the lengths of the frame at the front as soon as they are known. */
static int check_prefix(phx_wire_decoder_t *dec, size_t *frame_len, phx_error_t *err)
{
    const uint8_t *p = dec->buf + dec->off;
    uint64_t hlen = get_u32(p), alen = get_u32(p + 4);
    uint64_t total = PHX_WIRE_PREFIX + hlen + alen;
    if (hlen == 0)
        return fail(dec, err, "frame with an empty header");
    if (total > dec->max_frame)
        return fail(dec, err, "frame of %llu bytes exceeds the maximum of %zu bytes",
                    (unsigned long long)total, dec->max_frame);
    *frame_len = (size_t)total;
    return 0;
}

int phx_wire_decoder_feed(phx_wire_decoder_t *dec, const void *data, size_t len,
                          phx_error_t *err)
{
    if (dec->failed) {
        errno = EPROTO;
        return phx_error_set(err, "connection already failed");
    }
    if (len == 0)
        return 0;
    if (dec->off > 0 && dec->off == dec->len)
        dec->off = dec->len = 0;
    /* Never hold more than one maximal frame plus what the caller gave us;
     * check_prefix refuses an oversized frame before its body arrives. */
    if (dec->len + len > dec->cap) {
        if (dec->off > 0) {
            memmove(dec->buf, dec->buf + dec->off, dec->len - dec->off);
            dec->len -= dec->off;
            dec->off = 0;
        }
        if (dec->len + len > dec->cap) {
            size_t cap = dec->cap ? dec->cap : 4096;
            while (cap < dec->len + len)
                cap *= 2;
            uint8_t *b = realloc(dec->buf, cap);
            if (!b)
                return phx_error_set(err, "out of memory buffering a frame");
            dec->buf = b;
            dec->cap = cap;
        }
    }
    memcpy(dec->buf + dec->len, data, len);
    dec->len += len;
    size_t frame_len;
    if (dec->len - dec->off >= PHX_WIRE_PREFIX &&
        check_prefix(dec, &frame_len, err) < 0)
        return -1;
    return 0;
}

/* The frame at p, whose lengths were checked and whose bytes are all there,
 * into *frame; -1 with errno and err (*oom set if memory ran out). */
static int parse_frame(const uint8_t *p, size_t hlen, size_t alen, phx_frame_t *frame,
                       int *oom, phx_error_t *err)
{
    json_error_t jerr;
    json_t *hdr = json_loadb((const char *)p + PHX_WIRE_PREFIX, hlen,
                             JSON_REJECT_DUPLICATES, &jerr);
    errno = EPROTO;
    if (!hdr)
        return phx_error_set(err, "frame header is not valid JSON: %s (at byte %d)",
                             jerr.text, jerr.position);
    if (!json_is_object(hdr)) {
        json_decref(hdr);
        return phx_error_set(err, "frame header is not a JSON object");
    }
    json_t *type = json_object_get(hdr, "type");
    if (!json_is_string(type) || json_string_length(type) == 0) {
        json_decref(hdr);
        return phx_error_set(err, "frame header has no string \"type\"");
    }
    uint8_t *attach = NULL;
    if (alen) {
        if (!(attach = malloc(alen))) {
            json_decref(hdr);
            *oom = 1;
            errno = ENOMEM;
            return phx_error_set(err, "out of memory");
        }
        memcpy(attach, p + PHX_WIRE_PREFIX + hlen, alen);
    }
    frame->header = hdr;
    frame->type = json_string_value(type);
    frame->attach = attach;
    frame->attach_len = alen;
    return 0;
}

int phx_wire_decoder_next(phx_wire_decoder_t *dec, phx_frame_t *frame, phx_error_t *err)
{
    memset(frame, 0, sizeof(*frame));
    if (dec->failed) {
        errno = EPROTO;
        return phx_error_set(err, "connection already failed");
    }
    size_t avail = dec->len - dec->off, frame_len;
    if (avail < PHX_WIRE_PREFIX)
        return 0;
    if (check_prefix(dec, &frame_len, err) < 0)
        return -1;
    if (avail < frame_len)
        return 0;

    const uint8_t *p = dec->buf + dec->off;
    int oom = 0;
    if (parse_frame(p, get_u32(p), get_u32(p + 4), frame, &oom, err) < 0) {
        dec->failed = !oom;
        return -1;
    }
    dec->off += frame_len;
    return 1;
}

int phx_wire_decode(const void *buf, size_t len, size_t max_frame, phx_frame_t *frame,
                    phx_error_t *err)
{
    memset(frame, 0, sizeof(*frame));
    const uint8_t *p = buf;
    errno = EPROTO;
    if (len < PHX_WIRE_PREFIX)
        return phx_error_set(err, "frame of %zu bytes is shorter than its prefix", len);
    uint64_t hlen = get_u32(p), alen = get_u32(p + 4);
    uint64_t total = PHX_WIRE_PREFIX + hlen + alen;
    if (hlen == 0)
        return phx_error_set(err, "frame with an empty header");
    if (total > max_frame)
        return phx_error_set(err,
                             "frame of %llu bytes exceeds the maximum of %zu bytes",
                             (unsigned long long)total, max_frame);
    if (total != len)
        return phx_error_set(err, "frame says %llu bytes but %zu were given",
                             (unsigned long long)total, len);
    int oom = 0;
    return parse_frame(p, (size_t)hlen, (size_t)alen, frame, &oom, err);
}

int phx_wire_encode_head(const json_t *header, size_t attach_len, size_t max_frame,
                         uint8_t **out, size_t *out_len, phx_error_t *err)
{
    json_t *type = json_object_get(header, "type");
    if (!json_is_object(header) || !json_is_string(type)) {
        errno = EINVAL;
        return phx_error_set(err,
                             "frame header must be an object with a string \"type\"");
    }
    char *text = json_dumps(header, JSON_COMPACT);
    if (!text)
        return phx_error_set(err, "could not serialise frame header");
    int rc = phx_wire_encode_head_text(json_string_value(type), text, strlen(text),
                                       attach_len, max_frame, out, out_len, err);
    free(text);
    return rc;
}

int phx_wire_encode_head_text(const char *type, const char *text, size_t hlen,
                              size_t attach_len, size_t max_frame, uint8_t **out,
                              size_t *out_len, phx_error_t *err)
{
    size_t total = PHX_WIRE_PREFIX + hlen + attach_len;
    if (hlen > UINT32_MAX || attach_len > UINT32_MAX || total > max_frame) {
        errno = EMSGSIZE;
        return phx_error_set(err,
                             "frame \"%s\" of %zu bytes exceeds the maximum of %zu",
                             type, total, max_frame);
    }
    uint8_t *buf = malloc(PHX_WIRE_PREFIX + hlen);
    if (!buf)
        return phx_error_set(err, "out of memory");
    uint32_t h = htonl((uint32_t)hlen), a = htonl((uint32_t)attach_len);
    memcpy(buf, &h, 4);
    memcpy(buf + 4, &a, 4);
    memcpy(buf + PHX_WIRE_PREFIX, text, hlen);
    *out = buf;
    *out_len = PHX_WIRE_PREFIX + hlen;
    return 0;
}

int phx_wire_encode(const json_t *header, const void *attach, size_t attach_len,
                    size_t max_frame, uint8_t **out, size_t *out_len, phx_error_t *err)
{
    uint8_t *head;
    size_t head_len;
    if (phx_wire_encode_head(header, attach_len, max_frame, &head, &head_len, err) < 0)
        return -1;
    if (attach_len == 0) {
        *out = head;
        *out_len = head_len;
        return 0;
    }
    uint8_t *buf = realloc(head, head_len + attach_len);
    if (!buf) {
        free(head);
        return phx_error_set(err, "out of memory");
    }
    memcpy(buf + head_len, attach, attach_len);
    *out = buf;
    *out_len = head_len + attach_len;
    return 0;
}
