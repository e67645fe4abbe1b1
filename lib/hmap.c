#include "lib/hmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL: empty; TOMBSTONE: deleted */
    void *value;
    uint64_t hash;
} slot_t;

struct phx_hmap {
    slot_t *slots;
    size_t cap;    /* power of two */
    size_t used;   /* live entries */
    size_t filled; /* live + tombstones */
};

static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

phx_hmap_t *phx_hmap_create(void)
{
    phx_hmap_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->cap = 16;
    if (!(m->slots = calloc(m->cap, sizeof(*m->slots)))) {
        free(m);
        return NULL;
    }
    return m;
}

void phx_hmap_destroy(phx_hmap_t *m)
{
    int saved = errno;
    if (m) {
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
                free(m->slots[i].key);
        free(m->slots);
        free(m);
    }
    errno = saved;
}

/* The slot holding key, or NULL. */
static slot_t *find(const phx_hmap_t *m, const char *key, uint64_t h)
{
    for (size_t i = h & (m->cap - 1), n = 0; n < m->cap;
         i = (i + 1) & (m->cap - 1), n++) {
        slot_t *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

static int grow(phx_hmap_t *m)
{
    size_t cap = m->used * 4 >= m->cap ? m->cap * 2 : m->cap; /* else just rehash */
    slot_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        slot_t *s = &m->slots[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->filled = m->used;
    return 0;
}

int phx_hmap_put(phx_hmap_t *m, const char *key, void *value)
{
    uint64_t h = hash_str(key);
    slot_t *s = find(m, key, h);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((m->filled + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    char *copy = strdup(key);
    if (!copy)
        return -1;
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->filled++;
    m->slots[i] = (slot_t){copy, value, h};
    m->used++;
    return 0;
}

void *phx_hmap_get(const phx_hmap_t *m, const char *key)
{
    slot_t *s = find(m, key, hash_str(key));
    return s ? s->value : NULL;
}

void *phx_hmap_del(phx_hmap_t *m, const char *key)
{
    slot_t *s = find(m, key, hash_str(key));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->used--;
    return v;
}

size_t phx_hmap_count(const phx_hmap_t *m)
{
    return m->used;
}

int phx_hmap_next(const phx_hmap_t *m, size_t *pos, const char **key, void **value)
{
    while (*pos < m->cap) {
        slot_t *s = &m->slots[(*pos)++];
        if (s->key && s->key != TOMBSTONE) {
            if (key)
                *key = s->key;
            if (value)
                *value = s->value;
            return 1;
        }
    }
    return 0;
}
