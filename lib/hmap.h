/* A string-keyed hash map of borrowed values (open addressing, linear
 * probing, tombstones).  Keys are copied; values are the caller's. */
#ifndef PHX_HMAP_H
#define PHX_HMAP_H

#include <stddef.h>

typedef struct phx_hmap phx_hmap_t;

phx_hmap_t *phx_hmap_create(void);
/* Frees the map and its key copies, not the values.  NULL is a no-op. */
void phx_hmap_destroy(phx_hmap_t *map);

/* Insert or replace.  0, or -1 with ENOMEM. */
int phx_hmap_put(phx_hmap_t *map, const char *key, void *value);
/* The value, or NULL. */
void *phx_hmap_get(const phx_hmap_t *map, const char *key);
/* Remove and return the value (NULL if absent). */
void *phx_hmap_del(phx_hmap_t *map, const char *key);
size_t phx_hmap_count(const phx_hmap_t *map);

/* Iterate: start with *pos = 0; returns 1 and fills key/value, 0 at the end.
 * The map must not change during an iteration, except phx_hmap_del of the
 * entry just returned. */
int phx_hmap_next(const phx_hmap_t *map, size_t *pos, const char **key, void **value);

#endif
