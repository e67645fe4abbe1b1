/* Core sets (bitmaps of core ids) and cpusets in Linux list format. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

phx_topo_coreset_t *phx_topo_coreset_create(int ncores)
{
    if (ncores < 0 || ncores > PHX_TOPO_CORE_LIMIT) {
        errno = EINVAL;
        return NULL;
    }
    int nw = NWORDS(ncores);
    phx_topo_coreset_t *set = calloc(1, sizeof(*set) + (size_t)nw * sizeof(uint64_t));
    if (!set)
        return NULL;
    set->ncores = ncores;
    set->nwords = nw;
    return set;
}

void phx_topo_coreset_destroy(phx_topo_coreset_t *set)
{
    int saved = errno;
    free(set);
    errno = saved;
}

int phx_topo_coreset_size(const phx_topo_coreset_t *set)
{
    return set->ncores;
}

int phx_topo_coreset_add(phx_topo_coreset_t *set, int core)
{
    if (core < 0 || core >= set->ncores) {
        errno = EINVAL;
        return -1;
    }
    bit_set(set->w, core);
    return 0;
}

int phx_topo_coreset_remove(phx_topo_coreset_t *set, int core)
{
    if (core < 0 || core >= set->ncores) {
        errno = EINVAL;
        return -1;
    }
    bit_clear(set->w, core);
    return 0;
}

bool phx_topo_coreset_has(const phx_topo_coreset_t *set, int core)
{
    return core >= 0 && core < set->ncores && bit_test(set->w, core);
}

void phx_topo_coreset_clear(phx_topo_coreset_t *set)
{
    memset(set->w, 0, (size_t)set->nwords * sizeof(uint64_t));
}

int phx_topo_coreset_count(const phx_topo_coreset_t *set)
{
    int n = 0;
    for (int i = 0; i < set->nwords; i++)
        n += __builtin_popcountll(set->w[i]);
    return n;
}

int phx_topo_coreset_next(const phx_topo_coreset_t *set, int prev)
{
    int i = prev + 1;
    if (i < 0)
        i = 0;
    if (i >= set->ncores)
        return -1;
    int w = i / WORD_BITS;
    uint64_t bits = set->w[w] & (~(uint64_t)0 << (i % WORD_BITS));
    for (;;) {
        if (bits)
            return w * WORD_BITS + __builtin_ctzll(bits);
        if (++w >= set->nwords)
            return -1;
        bits = set->w[w];
    }
}

int phx_topo_coreset_copy(phx_topo_coreset_t *dst, const phx_topo_coreset_t *src)
{
    if (dst->ncores != src->ncores) {
        errno = EINVAL;
        return -1;
    }
    memcpy(dst->w, src->w, (size_t)src->nwords * sizeof(uint64_t));
    return 0;
}

bool phx_topo_coreset_equal(const phx_topo_coreset_t *a, const phx_topo_coreset_t *b)
{
    return a->ncores == b->ncores &&
           memcmp(a->w, b->w, (size_t)a->nwords * sizeof(uint64_t)) == 0;
}

bool phx_topo_coreset_intersects(const phx_topo_coreset_t *a,
                                 const phx_topo_coreset_t *b)
{
    int nw = a->nwords < b->nwords ? a->nwords : b->nwords;
    for (int i = 0; i < nw; i++)
        if (a->w[i] & b->w[i])
            return true;
    return false;
}

char *list_format(const int *v, int n)
{
    /* Each item needs at most 11 digits and a separator. */
    size_t cap = (size_t)n * 12 + 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        int w;
        if (j == i)
            w = snprintf(buf + len, cap - len, "%s%d", len ? "," : "", v[i]);
        else
            w = snprintf(buf + len, cap - len, "%s%d-%d", len ? "," : "", v[i], v[j]);
        len += (size_t)w;
        i = j + 1;
    }
    return buf;
}

char *phx_topo_coreset_str(const phx_topo_coreset_t *set)
{
    int *v = malloc(((size_t)set->ncores + 1) * sizeof(int));
    if (!v)
        return NULL;
    int n = 0;
    for (int c = phx_topo_coreset_next(set, -1); c >= 0;
         c = phx_topo_coreset_next(set, c))
        v[n++] = c;
    char *s = list_format(v, n);
    free(v);
    return s;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

char *phx_topo_cpuset_str(const phx_topo_t *topo, const phx_topo_coreset_t *cores)
{
    if (cores->ncores != topo->ncores) {
        errno = EINVAL;
        return NULL;
    }
    int *v = malloc(((size_t)topo->npus + 1) * sizeof(int));
    if (!v)
        return NULL;
    int n = 0;
    for (int c = phx_topo_coreset_next(cores, -1); c >= 0;
         c = phx_topo_coreset_next(cores, c))
        for (int i = topo->core_pu_off[c]; i < topo->core_pu_off[c + 1]; i++)
            v[n++] = topo->pus[i];
    qsort(v, (size_t)n, sizeof(int), cmp_int);
    char *s = list_format(v, n);
    free(v);
    return s;
}

static int parse_uint(const char **p, int *out)
{
    if (!isdigit((unsigned char)**p))
        return -1;
    long x = 0;
    while (isdigit((unsigned char)**p)) {
        x = x * 10 + (**p - '0');
        if (x >= PHX_TOPO_PU_LIMIT)
            return -1;
        (*p)++;
    }
    *out = (int)x;
    return 0;
}

/* Walk a list such as "0-3,8": mark(v, ctx) for every value, -1 if mark
 * refuses one (it set err).  what names the list in messages. */
static int parse_list(const char *list, const char *what,
                      int (*mark)(int, void *, phx_error_t *), void *ctx,
                      phx_error_t *err)
{
    const char *p = list;
    while (*p) {
        int lo, hi;
        if (parse_uint(&p, &lo) < 0)
            goto malformed;
        hi = lo;
        if (*p == '-') {
            p++;
            if (parse_uint(&p, &hi) < 0 || hi < lo)
                goto malformed;
        }
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            goto malformed;
        for (int v = lo; v <= hi; v++)
            if (mark(v, ctx, err) < 0)
                return -1;
    }
    return 0;
malformed:
    errno = EINVAL;
    return phx_error_set(err, "malformed %s \"%s\" at offset %d", what, list,
                         (int)(p - list));
}

typedef struct pu_ctx {
    const phx_topo_t *topo;
    const char *list;
    unsigned char *seen;
} pu_ctx_t;

static int mark_pu(int pu, void *arg, phx_error_t *err)
{
    pu_ctx_t *c = arg;
    if (phx_topo_pu_core(c->topo, pu) < 0) {
        errno = EINVAL;
        return phx_error_set(err, "cpuset \"%s\": PU %d is not in the topology",
                             c->list, pu);
    }
    c->seen[pu] = 1;
    return 0;
}

/* Mark every PU of the list in seen[] (indexed by OS index < topo->pu_end). */
static int parse_pus(const phx_topo_t *topo, const char *list, unsigned char *seen,
                     phx_error_t *err)
{
    pu_ctx_t c = {topo, list, seen};
    return parse_list(list, "cpuset", mark_pu, &c, err);
}

static int mark_core(int core, void *arg, phx_error_t *err)
{
    phx_topo_coreset_t *set = arg;
    if (core >= set->ncores) {
        errno = EINVAL;
        return phx_error_set(err, "core %d is out of range (the node has %d)", core,
                             set->ncores);
    }
    bit_set(set->w, core);
    return 0;
}

int phx_topo_coreset_parse(phx_topo_coreset_t *set, const char *list, phx_error_t *err)
{
    phx_topo_coreset_t *tmp = phx_topo_coreset_create(set->ncores);
    if (!tmp)
        return phx_error_set(err, "out of memory");
    int rc = parse_list(list, "core list", mark_core, tmp, err);
    if (rc == 0)
        phx_topo_coreset_copy(set, tmp);
    phx_topo_coreset_destroy(tmp);
    return rc;
}

int phx_topo_cpuset_parse(const phx_topo_t *topo, const char *list,
                          phx_topo_coreset_t *out, phx_error_t *err)
{
    if (out->ncores != topo->ncores) {
        errno = EINVAL;
        return phx_error_set(err, "core set does not match the topology");
    }
    unsigned char *seen = calloc((size_t)topo->pu_end + 1, 1);
    if (!seen)
        return phx_error_set(err, "out of memory");
    if (parse_pus(topo, list, seen, err) < 0) {
        free(seen);
        return -1;
    }
    phx_topo_coreset_t *tmp = phx_topo_coreset_create(topo->ncores);
    if (!tmp) {
        free(seen);
        return phx_error_set(err, "out of memory");
    }
    for (int c = 0; c < topo->ncores; c++) {
        int lo = topo->core_pu_off[c], hi = topo->core_pu_off[c + 1], n = 0;
        for (int i = lo; i < hi; i++)
            n += seen[topo->pus[i]];
        if (n == 0)
            continue;
        if (n != hi - lo) {
            free(seen);
            phx_topo_coreset_destroy(tmp);
            errno = EINVAL;
            return phx_error_set(err,
                                 "cpuset \"%s\" covers only %d of the %d PUs of "
                                 "core %d",
                                 list, n, hi - lo, c);
        }
        bit_set(tmp->w, c);
    }
    phx_topo_coreset_copy(out, tmp);
    phx_topo_coreset_destroy(tmp);
    free(seen);
    return 0;
}
