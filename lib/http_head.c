/* The request-head reader of lib/http_head.h. */
#include "lib/http_head.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

enum { NAME, VALUE, SKIP };

static const char *const fixed_names[] = {"Content-Length", "Transfer-Encoding",
                                          "Authorization"};

void phx_http_head_init(phx_http_head_t *h, size_t max, const char *extra_name)
{
    memset(h, 0, sizeof(*h));
    h->max = max;
    if (extra_name)
        snprintf(h->extra_name, sizeof(h->extra_name), "%s", extra_name);
    for (int i = 0; i < HEAD_NVALS; i++)
        h->vals[i].max = i == HEAD_AUTH ? PHX_HTTP_HEAD_AUTH_MAX : PHX_HTTP_HEAD_SMALL;
    phx_http_head_reset(h);
}

void phx_http_head_reset(phx_http_head_t *h)
{
    for (int i = 0; i < HEAD_NVALS; i++) {
        phx_http_head_val_t *v = &h->vals[i];
        if (v->text && v->len)
            memset(v->text, 0, v->len); /* a credential, say */
        v->len = 0;
        v->seen = v->cut = false;
    }
    h->method[0] = '\0';
    h->method_len = 0;
    h->method_done = false;
    h->text = h->bytes = h->line_len = 0;
    h->first_line = true;
    h->cr = h->nul = false;
    h->state = NAME;
    h->name_len = 0;
    h->cur = h->last = -1;
    h->lead = h->lead_tabs = false;
    h->seg = 0;
}

void phx_http_head_free(phx_http_head_t *h)
{
    if (!h)
        return;
    phx_http_head_reset(h);
    for (int i = 0; i < HEAD_NVALS; i++) {
        free(h->vals[i].text);
        h->vals[i].text = NULL;
        h->vals[i].cap = 0;
    }
}

/* Append c to v within its bound; -1 without memory. */
static int val_add(phx_http_head_val_t *v, char c)
{
    if (v->len >= v->max) {
        v->cut = true;
        return 0;
    }
    if (v->len + 1 >= v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        if (cap > v->max + 1)
            cap = v->max + 1;
        char *t = realloc(v->text, cap);
        if (!t)
            return -1;
        v->text = t;
        v->cap = cap;
    }
    v->text[v->len++] = c;
    v->text[v->len] = '\0';
    return 0;
}

/* A value starts (the first header of its name), or goes on (a line that
 * continues it: evhttp joins the two with one space). */
static int val_start(phx_http_head_val_t *v, bool more)
{
    if (!more) {
        v->seen = true;
        v->len = 0;
        v->cut = false;
        if (!v->text || v->cap == 0) {
            if (!(v->text = malloc(64)))
                return -1;
            v->cap = 64;
        }
        v->text[0] = '\0';
        return 0;
    }
    return val_add(v, ' ');
}

/* The end of a line that fed a value: evhttp trims the spaces and tabs at
 * the end of what that line brought (seg: where it starts). */
static void val_end_line(phx_http_head_val_t *v, size_t seg)
{
    if (v->cut)
        return;
    while (v->len > seg && (v->text[v->len - 1] == ' ' || v->text[v->len - 1] == '\t'))
        v->len--;
    if (v->text)
        v->text[v->len] = '\0';
}

static int match(const phx_http_head_t *h)
{
    if (h->name_len >= sizeof(h->name))
        return -1;
    for (int i = 0; i < HEAD_NVALS; i++) {
        const char *n = i == HEAD_EXTRA ? h->extra_name : fixed_names[i];
        if (*n && strlen(n) == h->name_len && strncasecmp(n, h->name, h->name_len) == 0)
            return i;
    }
    return -1;
}

/* One byte of a line's text. 0, or -1 without memory. */
static int content(phx_http_head_t *h, char c)
{
    h->line_len++;
    if (h->first_line) {
        if (!h->method_done) {
            if (c == ' ')
                h->method_done = true;
            else if (h->method_len + 1 < sizeof(h->method)) {
                h->method[h->method_len++] = c;
                h->method[h->method_len] = '\0';
            }
        }
        return 0;
    }
    if (h->line_len == 1 && c == '\0') { /* evhttp reads the line as empty */
        h->nul = true;
        h->state = SKIP;
        return 0;
    }
    if (h->line_len == 1 && (c == ' ' || c == '\t')) { /* continues a header */
        h->cur = h->last;
        if (h->cur < 0) {
            h->state = SKIP;
            return 0;
        }
        h->state = VALUE;
        h->lead = h->lead_tabs = true;
        if (val_start(&h->vals[h->cur], true) < 0)
            return -1;
        h->seg = h->vals[h->cur].len;
        return 0;
    }
    switch (h->state) {
    case NAME:
        if (c != ':') {
            if (h->name_len < sizeof(h->name))
                h->name[h->name_len] = c;
            if (h->name_len < sizeof(h->name))
                h->name_len++;
            return 0;
        }
        int i = match(h);
        if (i >= 0 && !h->vals[i].seen) {
            h->cur = h->last = i;
            h->state = VALUE;
            h->lead = true; /* evhttp skips spaces, not tabs, before a value */
            h->lead_tabs = false;
            h->seg = 0;
            return val_start(&h->vals[i], false);
        }
        h->cur = h->last = -1; /* a later header of a name: evhttp reads the first */
        h->state = SKIP;
        return 0;
    case VALUE:
        if (h->lead && (c == ' ' || (h->lead_tabs && c == '\t')))
            return 0;
        h->lead = false;
        return val_add(&h->vals[h->cur], c);
    default: return 0;
    }
}

/* The end of a line; 1 if it was the head's last (empty) one. */
static int line_end(phx_http_head_t *h)
{
    if (h->first_line) {
        h->first_line = false;
    } else if (h->line_len == 0 || h->nul) { /* evhttp: `*line == '\0'` */
        return 1;
    } else {
        if (h->state == VALUE && h->cur >= 0)
            val_end_line(&h->vals[h->cur], h->seg);
        if (h->state == NAME) /* no ':': evhttp refuses the head */
            h->last = -1;
    }
    h->text += h->line_len;
    h->line_len = 0;
    h->nul = false;
    h->state = NAME;
    h->name_len = 0;
    h->cur = -1;
    h->lead = h->lead_tabs = false;
    return 0;
}

/* Append a run of n bytes (no line end among them) to v within its bound;
 * -1 without memory. */
static int val_add_run(phx_http_head_val_t *v, const char *p, size_t n)
{
    size_t room = v->max - v->len;
    if (n > room) {
        v->cut = true;
        n = room;
    }
    if (v->len + n + 1 > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->len + n + 1)
            cap *= 2;
        if (cap > v->max + 1)
            cap = v->max + 1;
        char *t = realloc(v->text, cap);
        if (!t)
            return -1;
        v->text = t;
        v->cap = cap;
    }
    memcpy(v->text + v->len, p, n);
    v->len += n;
    v->text[v->len] = '\0';
    return 0;
}

/* The bytes of a header line skipped or kept whole up to its end (most of
 * a head): how many were taken, 0 to go byte by byte; -1 without memory. */
static ssize_t run(phx_http_head_t *h, const char *p, size_t n)
{
    if (h->cr || h->first_line || h->line_len == 0 ||
        !(h->state == SKIP || (h->state == VALUE && !h->lead)))
        return 0;
    size_t r = 0;
    while (r < n && p[r] != '\r' && p[r] != '\n')
        r++;
    if (r == 0 || h->bytes + r > 2 * h->max || h->text + h->line_len + r > h->max)
        return 0; /* the bounds, byte by byte */
    if (h->state == VALUE && val_add_run(&h->vals[h->cur], p, r) < 0)
        return -1;
    h->bytes += r;
    h->line_len += r;
    return (ssize_t)r;
}

phx_http_head_status_t phx_http_head_feed(phx_http_head_t *h, const char *p, size_t n,
                                          size_t *used)
{
    for (size_t i = 0; i < n; i++) {
        ssize_t r = run(h, p + i, n - i);
        if (r < 0)
            goto nomem;
        i += (size_t)r;
        if (i == n)
            break;
        char c = p[i];
        if (++h->bytes > 2 * h->max) {
            *used = i + 1;
            return PHX_HTTP_HEAD_TOO_LONG;
        }
        if (h->cr) { /* a CR ends a line only before a LF */
            h->cr = false;
            if (c != '\n' && content(h, '\r') < 0)
                goto nomem;
        }
        if (c == '\r') {
            h->cr = true;
        } else if (c == '\n') {
            if (line_end(h)) {
                *used = i + 1;
                return PHX_HTTP_HEAD_DONE;
            }
        } else if (content(h, c) < 0) {
            goto nomem;
        }
        if (h->text + h->line_len > h->max) {
            *used = i + 1;
            return PHX_HTTP_HEAD_TOO_LONG;
        }
    }
    *used = n;
    return PHX_HTTP_HEAD_MORE;
nomem:
    /* without memory to judge the head, call it too long: refused */
    *used = n;
    errno = ENOMEM;
    return PHX_HTTP_HEAD_TOO_LONG;
}

const char *phx_http_head_value(const phx_http_head_t *h, int which, bool *cut)
{
    const phx_http_head_val_t *v = &h->vals[which];
    if (cut)
        *cut = v->seen && v->cut;
    return v->seen ? (v->text ? v->text : "") : NULL;
}

bool phx_http_head_body_large(const phx_http_head_t *h, size_t open_max)
{
    if (strcmp(h->method, "POST") != 0 && strcmp(h->method, "PUT") != 0 &&
        strcmp(h->method, "PATCH") != 0)
        return false;
    if (h->vals[HEAD_TE].seen)
        return true;
    bool cut;
    const char *cl = phx_http_head_value(h, HEAD_CLEN, &cut);
    if (!cl)
        return false;
    if (cut)
        return true;
    if (!*cl)
        return false; /* evhttp refuses it */
    char *end;
    errno = 0;
    long long v = strtoll(cl, &end, 10);
    if (*end != '\0' || v < 0)
        return false; /* refused likewise */
    return (unsigned long long)v > open_max;
}
