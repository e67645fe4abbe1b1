#include "daemons/batchd/jobnodes.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hostlist.h"

#define JN_OF(f)   offsetof(phx_jobspec_t, f)
#define CDEPTH_MAX 32 /* parentheses inside parentheses */
#define CSEEN_MAX  PHX_FEATURES_MAX

/* ---- -w and -x ---- */

/* The list *text expanded, compressed back into *text; its names (sorted,
 * each once) into *names, *count. */
static int jn_canon_list(char **text, const char *opt, char ***names, size_t *count,
                         phx_error_t *err)
{
    *names = NULL;
    *count = 0;
    if (strchr(*text, '/'))
        return phx_error_set(err,
                             "%s \"%s\": a file of node names is not supported (list "
                             "the nodes, e.g. n[1-4],n7)",
                             opt, *text);
    char **all;
    size_t n;
    if (phx_hostlist_expand(*text, PHX_JOBNODES_MAX, &all, &n, err) < 0)
        return phx_error_prefix(err, "%s", opt);
    if (n == 0) {
        phx_hostlist_free(all, n);
        return phx_error_set(err, "%s: no node named", opt);
    }
    char *canon = phx_hostlist_compress((const char *const *)all, n);
    phx_hostlist_free(all, n);
    if (!canon)
        return phx_error_set(err, "out of memory");
    if (phx_hostlist_expand(canon, PHX_JOBNODES_MAX, names, count, err) < 0) {
        free(canon);
        return phx_error_prefix(err, "%s", opt);
    }
    free(*text);
    *text = canon;
    return 0;
}

static bool jn_listed(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* -w's node count: -N raised to the list, never above it. */
static int nodelist_count(phx_jobspec_t *s, size_t n, size_t *field, phx_error_t *err)
{
    int64_t want = (int64_t)n;
    if (s->nodes_min != PHX_UNSET && s->nodes_min > want) {
        *field = JN_OF(nodes_min);
        return phx_error_set(err,
                             "-N %" PRId64 " asks for more nodes than --nodelist %s "
                             "names (%zu): other nodes are never added to a -w list",
                             s->nodes_min, s->nodelist, n);
    }
    s->nodes_min = want;
    s->nodes_max = want;
    return 0;
}

int phx_jobnodes_finalize(phx_jobspec_t *s, size_t *field, phx_error_t *err)
{
    char **in = NULL, **out = NULL;
    size_t nin = 0, nout = 0;
    int rc = 0;
    *field = JN_OF(nodelist);
    if (s->nodelist && jn_canon_list(&s->nodelist, "--nodelist", &in, &nin, err) < 0)
        return -1;
    *field = JN_OF(exclude);
    if (s->exclude && jn_canon_list(&s->exclude, "--exclude", &out, &nout, err) < 0)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < nout; i++)
        if (jn_listed(in, nin, out[i]))
            rc = phx_error_set(err, "node %s is both in --nodelist and in --exclude",
                               out[i]);
    if (rc == 0 && s->nodelist)
        rc = nodelist_count(s, nin, field, err);
    phx_hostlist_free(in, nin);
    phx_hostlist_free(out, nout);
    if (rc < 0 || !s->constraint)
        return rc;
    *field = JN_OF(constraint);
    uint64_t terms[PHX_CONSTRAINT_TERMS];
    size_t nterms;
    return phx_constraint_compile(s->constraint, NULL, 0, terms, &nterms, err);
}

/* ---- -C ---- */

bool phx_feature_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_-.", s[i]))
            return false;
    return true;
}

/* An OR of AND terms. */
typedef struct dnf {
    uint64_t t[PHX_CONSTRAINT_TERMS];
    size_t n;
} cdnf_t;

typedef struct parser {
    const char *text, *at;
    const char *const *names; /* NULL: names seen get bits in turn */
    size_t nnames;
    char seen[CSEEN_MAX][65];
    size_t nseen;
    int depth;
    phx_error_t *err;
} cparser_t;

static int cparse_or(cparser_t *p, cdnf_t *out);

static int cfail(cparser_t *p, const char *what)
{
    if (*p->at)
        return phx_error_set(p->err, "--constraint \"%s\": %s at character %zu ('%c')",
                             p->text, what, (size_t)(p->at - p->text) + 1, *p->at);
    return phx_error_set(p->err, "--constraint \"%s\": %s at its end", p->text, what);
}

/* The bit of a feature name: the site's, or (syntax only) the next free. */
static int cfeature_bit(cparser_t *p, const char *name, size_t len)
{
    if (p->names) {
        for (size_t i = 0; i < p->nnames; i++)
            if (strlen(p->names[i]) == len && !strncmp(p->names[i], name, len))
                return (int)i;
        char known[512] = "";
        for (size_t i = 0, o = 0; i < p->nnames && o < sizeof(known); i++)
            o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
                                  p->names[i]);
        return phx_error_set(p->err,
                             "--constraint \"%s\": no node has feature \"%.*s\" (the "
                             "features are: %s)",
                             p->text, (int)len, name,
                             p->nnames ? known : "none: batchd.node_features is empty");
    }
    for (size_t i = 0; i < p->nseen; i++)
        if (strlen(p->seen[i]) == len && !strncmp(p->seen[i], name, len))
            return (int)i;
    if (p->nseen == CSEEN_MAX)
        return phx_error_set(p->err, "--constraint \"%s\": more than %d feature names",
                             p->text, CSEEN_MAX);
    memcpy(p->seen[p->nseen], name, len);
    p->seen[p->nseen][len] = '\0';
    return (int)p->nseen++;
}

static int cparse_factor(cparser_t *p, cdnf_t *out)
{
    if (*p->at == '(') {
        if (++p->depth > CDEPTH_MAX)
            return cfail(p, "parentheses nested too deep");
        p->at++;
        if (cparse_or(p, out) < 0)
            return -1;
        if (*p->at != ')')
            return cfail(p, "')' expected");
        p->at++;
        p->depth--;
        return 0;
    }
    if (*p->at == '[' || *p->at == '*')
        return cfail(p, "matching OR ([a|b]) and node counts (a*2) are not supported");
    size_t len = 0;
    while (p->at[len] &&
           (isalnum((unsigned char)p->at[len]) || strchr("_-.", p->at[len])))
        len++;
    if (len == 0)
        return cfail(p, *p->at == ',' ? "',' is not an operator (use '&' for AND)"
                                      : "a feature name expected");
    if (!phx_feature_name_ok(p->at, len))
        return cfail(p, "a feature name is at most 64 characters");
    int bit = cfeature_bit(p, p->at, len);
    if (bit < 0)
        return -1;
    p->at += len;
    if (*p->at == '*')
        return cfail(p, "matching OR ([a|b]) and node counts (a*2) are not supported");
    out->t[0] = UINT64_C(1) << bit;
    out->n = 1;
    return 0;
}

static void dnf_add(cdnf_t *d, uint64_t t)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->t[i] == t)
            return;
    d->t[d->n++] = t;
}

static int cparse_and(cparser_t *p, cdnf_t *out)
{
    if (cparse_factor(p, out) < 0)
        return -1;
    while (*p->at == '&') {
        p->at++;
        cdnf_t rhs, prod = {.n = 0};
        if (cparse_factor(p, &rhs) < 0)
            return -1;
        if (out->n * rhs.n > PHX_CONSTRAINT_TERMS)
            return cfail(p, "too many alternatives");
        for (size_t i = 0; i < out->n; i++)
            for (size_t k = 0; k < rhs.n; k++)
                dnf_add(&prod, out->t[i] | rhs.t[k]);
        *out = prod;
    }
    return 0;
}

static int cparse_or(cparser_t *p, cdnf_t *out)
{
    if (cparse_and(p, out) < 0)
        return -1;
    while (*p->at == '|') {
        p->at++;
        cdnf_t rhs;
        if (cparse_and(p, &rhs) < 0)
            return -1;
        for (size_t k = 0; k < rhs.n; k++) {
            if (out->n == PHX_CONSTRAINT_TERMS)
                return cfail(p, "too many alternatives");
            dnf_add(out, rhs.t[k]);
        }
    }
    return 0;
}

int phx_constraint_compile(const char *text, const char *const *names, size_t nnames,
                           uint64_t terms[PHX_CONSTRAINT_TERMS], size_t *nterms,
                           phx_error_t *err)
{
    *nterms = 0;
    if (!*text)
        return phx_error_set(err, "--constraint: empty");
    if (strlen(text) > PHX_CONSTRAINT_TEXT)
        return phx_error_set(err, "--constraint: longer than %d characters",
                             PHX_CONSTRAINT_TEXT);
    cparser_t *p = calloc(1, sizeof(*p));
    if (!p)
        return phx_error_set(err, "out of memory");
    *p = (cparser_t){
        .text = text, .at = text, .names = names, .nnames = nnames, .err = err};
    cdnf_t d;
    int rc = cparse_or(p, &d);
    if (rc == 0 && *p->at)
        rc = cfail(p, *p->at == ')'   ? "unbalanced ')'"
                      : *p->at == ',' ? "',' is not an operator (use '&' for AND)"
                                      : "'&', '|' or the end expected");
    free(p);
    if (rc < 0)
        return -1;
    memcpy(terms, d.t, d.n * sizeof(*terms));
    *nterms = d.n;
    return 0;
}

bool phx_constraint_match(const uint64_t *terms, size_t nterms, uint64_t features)
{
    for (size_t i = 0; i < nterms; i++)
        if ((features & terms[i]) == terms[i])
            return true;
    return false;
}
