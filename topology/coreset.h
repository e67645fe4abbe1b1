/* Sets of core logical ids (a bitmap), and their cpusets in Linux list
 * format ("0-3,8-11") of PU OS indexes. */
#ifndef PHX_TOPO_CORESET_H
#define PHX_TOPO_CORESET_H

#include <stdbool.h>

#include "lib/error.h"
#include "topology/topo.h"

typedef struct phx_topo_coreset phx_topo_coreset_t;

/* An empty set able to hold cores 0..ncores-1 (NULL + errno on failure). */
phx_topo_coreset_t *phx_topo_coreset_create(int ncores);
/* Preserves errno; NULL is a no-op. */
void phx_topo_coreset_destroy(phx_topo_coreset_t *set);

int phx_topo_coreset_size(const phx_topo_coreset_t *set);
/* 0, or -1 with EINVAL when core is out of range. */
int phx_topo_coreset_add(phx_topo_coreset_t *set, int core);
int phx_topo_coreset_remove(phx_topo_coreset_t *set, int core);
bool phx_topo_coreset_has(const phx_topo_coreset_t *set, int core);
void phx_topo_coreset_clear(phx_topo_coreset_t *set);
int phx_topo_coreset_count(const phx_topo_coreset_t *set);
/* Smallest member greater than prev (pass -1 to start), -1 when none. */
int phx_topo_coreset_next(const phx_topo_coreset_t *set, int prev);
/* Sets of different sizes: copy fails with EINVAL, equal is false. */
int phx_topo_coreset_copy(phx_topo_coreset_t *dst, const phx_topo_coreset_t *src);
bool phx_topo_coreset_equal(const phx_topo_coreset_t *a, const phx_topo_coreset_t *b);
bool phx_topo_coreset_intersects(const phx_topo_coreset_t *a,
                                 const phx_topo_coreset_t *b);

/* Cores as a list of core ids, e.g. "0-3,8" (caller frees). */
char *phx_topo_coreset_str(const phx_topo_coreset_t *set);
/* Replace set with the core ids of a list such as "0-3,8" (the format of
 * phx_topo_coreset_str); -1 with err, set unchanged, on a malformed list or a
 * core out of range. */
int phx_topo_coreset_parse(phx_topo_coreset_t *set, const char *list, phx_error_t *err);

/* The cpuset of a core set: the PU OS indexes of its cores in list format,
 * "" for an empty set.  Caller frees; NULL with errno on failure. */
char *phx_topo_cpuset_str(const phx_topo_t *topo, const phx_topo_coreset_t *cores);
/* Parse a cpuset list back into the cores it covers.  Every PU must belong to
 * a core of topo and every core must be covered whole (all its PUs); a
 * malformed list, an unknown PU or a partial core is refused.  out must be
 * sized for topo; it is left untouched on failure. */
int phx_topo_cpuset_parse(const phx_topo_t *topo, const char *list,
                          phx_topo_coreset_t *out, phx_error_t *err);

#endif
