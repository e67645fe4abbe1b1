/* Node features, as slurm.conf's NodeName=... Features=...: the site names
 * what its nodes have ("skylake", "ib", "bigmem") in batchd.node_features,
 * and jobs ask for them with -C/--constraint (jobnodes.h).  A node's cores,
 * sockets and memory come from its agent, never from here. */
#ifndef PHX_BATCHD_FEATURES_H
#define PHX_BATCHD_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobnodes.h"
#include "lib/config.h"
#include "lib/error.h"

typedef struct bfeature_nodes {
    char **nodes; /* sorted */
    size_t nnodes;
    uint64_t mask; /* bit i: names[i] */
} bfeature_nodes_t;

typedef struct bfeatures {
    char *names[PHX_FEATURES_MAX]; /* in order of first mention */
    size_t n;
    bfeature_nodes_t *lines;
    size_t nlines;
} bfeatures_t;

/* batchd.node_features: lines "NodeName=LIST Features=a,b,..." (keys in
 * any case; AvailableFeatures is Features; a node of several lines has the
 * features of all).  0 or -1 with err naming the line and the fault. */
int batchd_features_make(const phx_conf_t *conf, bfeatures_t *out, phx_error_t *err);
void batchd_features_clear(bfeatures_t *f);
/* The features of the node of that name (0: none). */
uint64_t batchd_features_node(const bfeatures_t *f, const char *node);
/* Do a and b give every node the same features by the same names? */
bool batchd_features_same(const bfeatures_t *a, const bfeatures_t *b);
/* "a,b" for a mask, into buf (truncated to len). */
void batchd_features_format(const bfeatures_t *f, uint64_t mask, char *buf, size_t len);

#endif
