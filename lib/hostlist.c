#include "lib/hostlist.h"

#include "lib/hmap.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTLIST_DEFAULT_MAX 65536
#define RANGE_MAX            1000000000LL

/* A bracket number: digits only, at most RANGE_MAX; advances *p. */
static bool range_number(const char **p, long long *out)
{
    if (!isdigit((unsigned char)**p))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(*p, &end, 10);
    if (errno || v > RANGE_MAX)
        return false;
    *p = end;
    *out = v;
    return true;
}

typedef struct names {
    char **v;
    size_t n, cap, max;
} names_t;

static int names_push(names_t *ns, char *s, phx_error_t *err)
{
    if (ns->n >= ns->max) {
        free(s);
        return phx_error_set(err, "host list expands to more than %zu names", ns->max);
    }
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        char **v = realloc(ns->v, cap * sizeof(*v));
        if (!v) {
            free(s);
            return phx_error_set(err, "out of memory");
        }
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = s;
    return 0;
}

/* Expand one comma-free item ("a[1-3,5]b[01-02]c") with its prefix. */
static int expand_item(const char *prefix, const char *item, names_t *ns,
                       phx_error_t *err)
{
    const char *open = strchr(item, '[');
    if (!open) {
        char *s;
        if (asprintf(&s, "%s%s", prefix, item) < 0)
            return phx_error_set(err, "out of memory");
        return names_push(ns, s, err);
    }
    const char *close = strchr(open, ']');
    if (!close || memchr(open + 1, '[', (size_t)(close - open - 1)))
        return phx_error_set(err, "unbalanced brackets");
    char head[512];
    if (snprintf(head, sizeof(head), "%s%.*s", prefix, (int)(open - item), item) >=
        (int)sizeof(head))
        return phx_error_set(err, "host name too long");
    const char *p = open + 1;
    while (p < close) {
        const char *start = p;
        long long lo, hi;
        if (!range_number(&p, &lo))
            return phx_error_set(err, "expected a number in brackets");
        int width = (int)(p - start);
        hi = lo;
        if (*p == '-') {
            p++;
            if (!range_number(&p, &hi) || hi < lo)
                return phx_error_set(err, "invalid range in brackets");
        }
        if (p < close && *p != ',')
            return phx_error_set(err, "unexpected '%c' in brackets", *p);
        if (*p == ',')
            p++;
        if ((size_t)(hi - lo) >= ns->max)
            return phx_error_set(err, "host list expands to more than %zu names",
                                 ns->max);
        for (long long i = lo; i <= hi; i++) {
            char next[600];
            snprintf(next, sizeof(next), "%s%0*lld", head, width, i);
            if (expand_item(next, close + 1, ns, err) < 0)
                return -1;
        }
    }
    return 0;
}

int phx_hostlist_expand(const char *list, size_t max, char ***names, size_t *count,
                        phx_error_t *err)
{
    names_t ns = {.max = max ? max : HOSTLIST_DEFAULT_MAX};
    char *copy = strdup(list ? list : "");
    if (!copy)
        return phx_error_set(err, "out of memory");
    /* Split on commas outside brackets. */
    int depth = 0;
    char *item = copy;
    for (char *p = copy;; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']')
            depth--;
        if (depth < 0 || depth > 1)
            goto unbalanced;
        if ((*p == ',' && depth == 0) || *p == '\0') {
            bool end = *p == '\0';
            *p = '\0';
            if (!*item) {
                phx_error_set(err, "empty host name");
                goto fail;
            }
            for (char *c = item; *c; c++)
                if (isspace((unsigned char)*c)) {
                    phx_error_set(err, "white space in host name");
                    goto fail;
                }
            if (expand_item("", item, &ns, err) < 0)
                goto fail;
            if (end)
                break;
            item = p + 1;
        }
    }
    if (depth != 0)
        goto unbalanced;
    free(copy);
    *names = ns.v;
    *count = ns.n;
    return 0;
unbalanced:
    phx_error_set(err, "unbalanced brackets");
fail:
    phx_error_prefix(err, "invalid host list \"%s\"", list ? list : "");
    phx_hostlist_free(ns.v, ns.n);
    free(copy);
    return -1;
}

void phx_hostlist_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* A name split as prefix + digits + tail, where digits is the last run of
 * digits in the name. */
typedef struct split {
    size_t plen; /* prefix length */
    int width;   /* digits; 0 when the name has none */
    int eff;     /* width printed in brackets, see assign_widths */
    long long num;
    const char *tail;
    const char *name;
} split_t;

static void split_name(const char *name, split_t *s)
{
    size_t len = strlen(name);
    size_t end = len;
    while (end > 0 && !isdigit((unsigned char)name[end - 1]))
        end--;
    size_t start = end;
    while (start > 0 && isdigit((unsigned char)name[start - 1]))
        start--;
    s->name = name;
    s->tail = name + end;
    s->eff = 0;
    if (end == start || end - start > 18) {
        s->plen = len;
        s->width = 0;
        s->num = 0;
        s->tail = name + len;
        return;
    }
    s->plen = start;
    s->width = (int)(end - start);
    s->num = strtoll(name + start, NULL, 10);
}

static bool same_stem(const split_t *a, const split_t *b)
{
    return a->width && b->width && a->plen == b->plen &&
           !strncmp(a->name, b->name, a->plen) && !strcmp(a->tail, b->tail);
}

static bool padded(const split_t *s)
{
    return s->width > 1 && s->name[s->plen] == '0';
}

/* The width a name is printed at inside brackets: its own when zero-padded;
 * for an unpadded number, the widest padding among its stem's padded names
 * that it still fills (n10 joins n[01-09]), else 0 (natural width). */
static void assign_widths(split_t *sp, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (!sp[i].width || padded(&sp[i]))
            continue;
        int eff = 0;
        for (size_t j = 0; j < count; j++)
            if (padded(&sp[j]) && same_stem(&sp[i], &sp[j]) &&
                sp[j].width <= sp[i].width && sp[j].width > eff)
                eff = sp[j].width;
        sp[i].eff = eff;
    }
    for (size_t i = 0; i < count; i++)
        if (padded(&sp[i]))
            sp[i].eff = sp[i].width;
}

static bool same_group(const split_t *a, const split_t *b)
{
    return same_stem(a, b) && a->eff == b->eff;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf_t;

static void sbuf_add(sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sbuf_add(sbuf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 64);
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static char *sbuf_finish(sbuf_t *b)
{
    if (!b->failed && !b->s)
        sbuf_add(b, "%s", "");
    if (b->failed) {
        free(b->s);
        errno = ENOMEM;
        return NULL;
    }
    return b->s;
}

char *phx_hostlist_compress(const char *const *names, size_t count)
{
    split_t *sp = calloc(count ? count : 1, sizeof(*sp));
    bool *done = calloc(count ? count : 1, sizeof(*done));
    long long *nums = calloc(count ? count : 1, sizeof(*nums));
    sbuf_t b = {0};
    if (!sp || !done || !nums) {
        b.failed = true;
        goto out;
    }
    for (size_t i = 0; i < count; i++)
        split_name(names[i], &sp[i]);
    assign_widths(sp, count);
    bool first = true;
    for (size_t i = 0; i < count; i++) {
        if (done[i])
            continue;
        size_t n = 0;
        for (size_t j = i; j < count; j++)
            if (!done[j] && (j == i || same_group(&sp[i], &sp[j]))) {
                nums[n++] = sp[j].num;
                done[j] = true;
                if (!sp[i].width)
                    break; /* a name without digits groups with nothing */
            }
        if (!first)
            sbuf_add(&b, ",");
        first = false;
        if (!sp[i].width) {
            sbuf_add(&b, "%s", names[i]);
            /* drop exact duplicates of a digit-less name */
            for (size_t j = i + 1; j < count; j++)
                if (!strcmp(names[j], names[i]))
                    done[j] = true;
            continue;
        }
        qsort(nums, n, sizeof(*nums), cmp_ll);
        size_t u = 0;
        for (size_t j = 0; j < n; j++)
            if (u == 0 || nums[j] != nums[u - 1])
                nums[u++] = nums[j];
        int w = sp[i].eff;
        if (u == 1) {
            sbuf_add(&b, "%.*s%0*lld%s", (int)sp[i].plen, names[i], w, nums[0],
                     sp[i].tail);
            continue;
        }
        sbuf_add(&b, "%.*s[", (int)sp[i].plen, names[i]);
        for (size_t j = 0; j < u;) {
            size_t k = j;
            while (k + 1 < u && nums[k + 1] == nums[k] + 1)
                k++;
            sbuf_add(&b, "%s%0*lld", j ? "," : "", w, nums[j]);
            if (k > j)
                sbuf_add(&b, "-%0*lld", w, nums[k]);
            j = k + 1;
        }
        sbuf_add(&b, "]%s", sp[i].tail);
    }
out:
    free(sp);
    free(done);
    free(nums);
    return sbuf_finish(&b);
}

char *phx_tasks_per_node_format(const uint32_t *counts, size_t count)
{
    sbuf_t b = {0};
    for (size_t i = 0; i < count;) {
        size_t j = i;
        while (j + 1 < count && counts[j + 1] == counts[i])
            j++;
        if (j > i)
            sbuf_add(&b, "%s%" PRIu32 "(x%zu)", i ? "," : "", counts[i], j - i + 1);
        else
            sbuf_add(&b, "%s%" PRIu32, i ? "," : "", counts[i]);
        i = j + 1;
    }
    return sbuf_finish(&b);
}

int phx_tasks_per_node_parse(const char *text, uint32_t **counts, size_t *count,
                             phx_error_t *err)
{
    uint32_t *v = NULL;
    size_t n = 0, cap = 0;
    const char *p = text ? text : "";
    for (;;) {
        long long c, rep = 1;
        if (!range_number(&p, &c) || c > UINT32_MAX)
            goto bad;
        if (*p == '(') {
            p++;
            if (*p++ != 'x' || !range_number(&p, &rep) || rep < 1 || *p++ != ')')
                goto bad;
        }
        if (n + (size_t)rep > HOSTLIST_DEFAULT_MAX)
            goto bad;
        if (n + (size_t)rep > cap) {
            cap = (n + (size_t)rep) * 2;
            uint32_t *nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                free(v);
                return phx_error_set(err, "out of memory");
            }
            v = nv;
        }
        for (long long i = 0; i < rep; i++)
            v[n++] = (uint32_t)c;
        if (*p == '\0')
            break;
        if (*p++ != ',')
            goto bad;
    }
    *counts = v;
    *count = n;
    return 0;
bad:
    free(v);
    return phx_error_set(err, "invalid tasks per node \"%s\"", text ? text : "");
}

int phx_hostlist_order(const char *const *names, size_t count, size_t *order)
{
    if (count == 0)
        return 0;
    char *list = phx_hostlist_compress(names, count);
    phx_hmap_t *index = phx_hmap_create();
    size_t *got = calloc(count, sizeof(*got));
    char **sorted = NULL;
    size_t n = 0;
    phx_error_t err;
    int rc = -1, e = ENOMEM;
    if (!list || !index || !got ||
        phx_hostlist_expand(list, count, &sorted, &n, &err) < 0)
        goto out;
    for (size_t i = 0; i < count; i++)
        if (phx_hmap_put(index, names[i], (void *)(uintptr_t)(i + 1)) < 0)
            goto out;
    e = EINVAL;
    if (n != count || phx_hmap_count(index) != count) /* duplicates */
        goto out;
    for (size_t k = 0; k < n; k++) {
        uintptr_t at = (uintptr_t)phx_hmap_get(index, sorted[k]);
        if (!at)
            goto out;
        got[k] = at - 1;
    }
    memcpy(order, got, count * sizeof(*order));
    rc = 0;
out:
    phx_hostlist_free(sorted, n);
    phx_hmap_destroy(index);
    free(got);
    free(list);
    if (rc < 0)
        errno = e;
    return rc;
}
