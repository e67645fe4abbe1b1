/* An incremental reader of an HTTP/1.1 request's head (request line and
 * headers), fed the bytes of a connection as they arrive, in pieces of any
 * size: what lib/http_guard.c needs to judge a request before its body is
 * read.  It keeps only the few values that matter (the method, the first
 * Content-Length, Transfer-Encoding and Authorization, and one header the
 * caller names), not the head itself, and reads them as libevent 2.1's
 * evhttp does: lines end at LF with an optional CR before it, a header's
 * name is what comes before its first ':' (matched without case), a line
 * that starts with a space or tab continues the header before it, one that
 * starts with a NUL ends the head as an empty one does (evhttp tests the
 * line's first char), and the first of several headers of a name is the
 * one that counts.
 *
 * Bounded: the head's text (its lines without their ends, as evhttp
 * counts) may not pass max, nor its bytes 2 * max; a value kept is cut at
 * its own bound (the Authorization header at PHX_HTTP_HEAD_AUTH_MAX, which
 * is then marked too long). */
#ifndef PHX_HTTP_HEAD_H
#define PHX_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/munge.h"

/* "Munge " and the largest credential, with room to spare */
#define PHX_HTTP_HEAD_AUTH_MAX (PHX_MUNGE_CRED_MAX + 64)
#define PHX_HTTP_HEAD_SMALL    128 /* the other values kept */

typedef enum {
    PHX_HTTP_HEAD_MORE,     /* the head goes on */
    PHX_HTTP_HEAD_DONE,     /* its empty line was read */
    PHX_HTTP_HEAD_TOO_LONG, /* past the bound */
} phx_http_head_status_t;

typedef struct phx_http_head_val {
    char *text; /* NUL-terminated, kept from one head to the next */
    size_t len, cap, max;
    bool seen; /* the header was there */
    bool cut;  /* longer than max: text holds the start */
} phx_http_head_val_t;

enum { HEAD_CLEN, HEAD_TE, HEAD_AUTH, HEAD_EXTRA, HEAD_NVALS };

typedef struct phx_http_head {
    size_t max;
    char extra_name[64]; /* the caller's header ("" for none) */
    /* what was read */
    char method[16]; /* the request line's first word, cut at 15 bytes */
    size_t method_len;
    bool method_done;
    phx_http_head_val_t vals[HEAD_NVALS];
    /* where the reader is */
    size_t text, bytes;   /* the head's text and bytes so far */
    size_t line_len;      /* bytes of the current line, its end excluded */
    bool first_line;      /* reading the request line */
    bool cr;              /* the last byte was a CR not yet known to end the line */
    bool nul;             /* the current header line starts with a NUL: evhttp's end */
    int state;            /* NAME, VALUE, SKIP (lib/http_head.c) */
    char name[64];        /* the current header's name so far */
    size_t name_len;      /* (past sizeof(name): a name of no interest) */
    int cur;              /* value the current line feeds (-1: none) */
    int last;             /* value a continuation line would feed (-1: none) */
    bool lead, lead_tabs; /* skipping the spaces (and tabs) before a value */
    size_t seg;           /* where the current line's part of the value starts */
} phx_http_head_t;

/* extra_name: a header to keep besides the fixed ones (NULL: none). */
void phx_http_head_init(phx_http_head_t *h, size_t max, const char *extra_name);
/* Ready for the next request's head (buffers kept). */
void phx_http_head_reset(phx_http_head_t *h);
void phx_http_head_free(phx_http_head_t *h);

/* Read up to n bytes of p; *used: how many belong to the head (all of them
 * unless it is DONE, or TOO_LONG). */
phx_http_head_status_t phx_http_head_feed(phx_http_head_t *h, const char *p, size_t n,
                                          size_t *used);

/* After DONE: a header's value (NULL if absent), and whether it was cut. */
const char *phx_http_head_value(const phx_http_head_t *h, int which, bool *cut);

/* After DONE: whether evhttp 2.1 will read a body of more than open_max
 * bytes for this request: a POST, PUT or PATCH with a Transfer-Encoding
 * header (chunked or anything else: counted as large) or whose first
 * Content-Length is above open_max.  (evhttp reads no body for the other
 * methods, and refuses a malformed Content-Length without reading on.) */
bool phx_http_head_body_large(const phx_http_head_t *h, size_t open_max);

#endif
