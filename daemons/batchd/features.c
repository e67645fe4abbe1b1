#include "daemons/batchd/features.h"

#include "daemons/batchd/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/hostlist.h"

static int feat_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The bit of feature name (added when new).  -1 with err when there are
 * PHX_FEATURES_MAX already. */
static int name_bit(bfeatures_t *f, const char *name, size_t len, phx_error_t *err)
{
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->names[i]) == len && !strncmp(f->names[i], name, len))
            return (int)i;
    if (f->n == PHX_FEATURES_MAX)
        return phx_error_set(err, "more than %d feature names", PHX_FEATURES_MAX);
    if (!(f->names[f->n] = strndup(name, len)))
        return phx_error_set(err, "out of memory");
    return (int)f->n++;
}

static int set_features(bfeatures_t *f, bfeature_nodes_t *l, const char *v,
                        phx_error_t *err)
{
    for (const char *at = v;;) {
        size_t len = strcspn(at, ",");
        if (!phx_feature_name_ok(at, len))
            return phx_error_set(err,
                                 "Features=%s: \"%.*s\" is not a feature name (1 to 64 "
                                 "letters, digits, '_', '-' or '.')",
                                 v, (int)(len < 80 ? len : 80), at);
        int bit = name_bit(f, at, len, err);
        if (bit < 0)
            return -1;
        l->mask |= UINT64_C(1) << bit;
        if (!at[len])
            return 0;
        at += len + 1;
    }
}

/* One line into l (its names, sorted) and f's names. */
static int parse_line(bfeatures_t *f, bfeature_nodes_t *l, const char *line,
                      phx_error_t *err)
{
    char *copy = strdup(line), *save = NULL;
    if (!copy)
        return phx_error_set(err, "out of memory");
    int rc = 0;
    bool features = false;
    for (char *tok = strtok_r(copy, " \t", &save); tok && rc == 0;
         tok = strtok_r(NULL, " \t", &save)) {
        const char *v, *k = batchd_conf_word(tok, &v, err);
        if (!k) {
            rc = -1;
            break;
        }
        if (strcasecmp(k, "NodeName") == 0) {
            if (l->nodes)
                rc = phx_error_set(err, "NodeName given twice");
            else if (phx_hostlist_expand(v, 0, &l->nodes, &l->nnodes, err) < 0)
                rc = phx_error_prefix(err, "NodeName");
            else
                qsort(l->nodes, l->nnodes, sizeof(*l->nodes), feat_cmp);
        } else if (!strcasecmp(k, "Features") || !strcasecmp(k, "AvailableFeatures")) {
            if (features)
                rc = phx_error_set(err, "Features given twice");
            features = true;
            if (rc == 0)
                rc = set_features(f, l, v, err);
        } else {
            rc = phx_error_set(err,
                               "unknown key \"%s\" (NodeName and Features are read; a "
                               "node's cores, sockets and memory come from its agent)",
                               k);
        }
    }
    free(copy);
    if (rc == 0 && !l->nodes)
        rc = phx_error_set(err, "no NodeName= (a host list)");
    else if (rc == 0 && !features)
        rc = phx_error_set(err, "no Features= (names, separated by ',')");
    return rc;
}

int batchd_features_make(const phx_conf_t *conf, bfeatures_t *out, phx_error_t *err)
{
    memset(out, 0, sizeof(*out));
    size_t n = phx_conf_list_len(conf, "batchd.node_features");
    if (n == 0)
        return 0;
    if (!(out->lines = calloc(n, sizeof(*out->lines))))
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *line = phx_conf_list_get(conf, "batchd.node_features", i);
        out->nlines = i + 1;
        if (parse_line(out, &out->lines[i], line ? line : "", err) < 0) {
            phx_error_prefix(err, "batchd.node_features[%zu] \"%s\"", i,
                             line ? line : "");
            batchd_features_clear(out);
            return -1;
        }
    }
    return 0;
}

void batchd_features_clear(bfeatures_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    for (size_t i = 0; i < f->nlines; i++)
        phx_hostlist_free(f->lines[i].nodes, f->lines[i].nnodes);
    free(f->lines);
    memset(f, 0, sizeof(*f));
}

uint64_t batchd_features_node(const bfeatures_t *f, const char *node)
{
    uint64_t m = 0;
    for (size_t i = 0; i < f->nlines; i++) {
        const bfeature_nodes_t *l = &f->lines[i];
        if (bsearch(&node, l->nodes, l->nnodes, sizeof(*l->nodes), feat_cmp))
            m |= l->mask;
    }
    return m;
}

bool batchd_features_same(const bfeatures_t *a, const bfeatures_t *b)
{
    if (a->n != b->n || a->nlines != b->nlines)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i]))
            return false;
    for (size_t i = 0; i < a->nlines; i++) {
        const bfeature_nodes_t *x = &a->lines[i], *y = &b->lines[i];
        if (x->mask != y->mask || x->nnodes != y->nnodes)
            return false;
        for (size_t k = 0; k < x->nnodes; k++)
            if (strcmp(x->nodes[k], y->nodes[k]))
                return false;
    }
    return true;
}

void batchd_features_format(const bfeatures_t *f, uint64_t mask, char *buf, size_t len)
{
    size_t o = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < f->n && o < len; i++)
        if (mask & (UINT64_C(1) << i))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "", f->names[i]);
}
