/* Allocator: the pass.  Frameworks sit in a binary heap ordered by weighted
 * dominant share (ties by id); each changed agent's free resources go, as
 * one grant, to the first framework of the heap that may have them, whose
 * share is then updated and pushed back.  O(changed agents × log
 * frameworks) in the common case. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc_impl.h"

static bool before(const struct alloc_fw *x, const struct alloc_fw *y)
{
    if (x->share != y->share)
        return x->share < y->share;
    return x->rank < y->rank;
}

static void heap_up(struct alloc_fw **h, size_t i)
{
    struct alloc_fw *x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(x, h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static void heap_down(struct alloc_fw **h, size_t n, size_t i)
{
    struct alloc_fw *x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(h[c + 1], h[c]))
            c++;
        if (!before(h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static struct alloc_fw *heap_pop(phx_alloc_t *a)
{
    if (a->nheap == 0)
        return NULL;
    struct alloc_fw *top = a->heap[0];
    a->heap[0] = a->heap[--a->nheap];
    if (a->nheap)
        heap_down(a->heap, a->nheap, 0);
    top->in_heap = false;
    return top;
}

void alloc_drf_push(phx_alloc_t *a, struct alloc_fw *fw)
{
    if (fw->in_heap || fw->refused)
        return;
    fw->share = alloc_share(a, fw);
    a->heap[a->nheap] = fw; /* sized for every framework */
    heap_up(a->heap, a->nheap++);
    fw->in_heap = true;
}

static int cmp_fw_id(const void *x, const void *y)
{
    return strcmp((*(struct alloc_fw *const *)x)->id,
                  (*(struct alloc_fw *const *)y)->id);
}

static int build_heap(phx_alloc_t *a)
{
    if (a->cap_heap < a->nfws) {
        struct alloc_fw **h = realloc(a->heap, a->nfws * sizeof(*h));
        if (!h) {
            errno = ENOMEM;
            return -1;
        }
        a->heap = h;
        a->cap_heap = a->nfws;
    }
    if (a->ranks_stale) {
        memcpy(a->heap, a->fws, a->nfws * sizeof(*a->heap));
        if (a->nfws > 1)
            qsort(a->heap, a->nfws, sizeof(*a->heap), cmp_fw_id);
        for (size_t i = 0; i < a->nfws; i++)
            a->heap[i]->rank = (int)i;
        a->ranks_stale = false;
    }
    a->nheap = 0;
    for (size_t i = 0; i < a->nfws; i++) {
        struct alloc_fw *fw = a->fws[i];
        fw->refused = false;
        fw->in_heap = false;
        fw->stamp = 0;
        if (fw->active && !fw->suppressed) {
            fw->share = alloc_share(a, fw);
            a->heap[a->nheap++] = fw;
            fw->in_heap = true;
        }
    }
    for (size_t i = a->nheap / 2; i-- > 0;)
        heap_down(a->heap, a->nheap, i);
    return 0;
}

struct alloc_fw *alloc_drf_pick(phx_alloc_t *a, struct alloc_agent *ag, double now)
{
    a->stamp++;
    for (int i = 0; i < ag->nslots; i++) {
        struct alloc_slot *s = &ag->slots[i];
        if (s->fw && (!alloc_res_empty(&s->offered) || s->filter_until > now))
            s->fw->stamp = a->stamp;
    }
    /* Pop past the frameworks that may not have this agent, then put them
     * back: their shares did not change. */
    struct alloc_fw *fw;
    size_t nskipped = 0, first_skip = a->nheap;
    while ((fw = heap_pop(a)) && fw->stamp == a->stamp) {
        /* Park the skipped ones past the heap's end (each pop frees a slot). */
        a->heap[--first_skip] = fw;
        nskipped++;
    }
    for (size_t i = 0; i < nskipped; i++) {
        struct alloc_fw *s = a->heap[first_skip + i];
        a->heap[a->nheap] = s;
        heap_up(a->heap, a->nheap++);
        s->in_heap = true;
    }
    return fw;
}

/* Drop expired filters (their agents become worth a look) and requests;
 * recompute the next expiry. */
static void expire(phx_alloc_t *a, double now)
{
    if (a->next_expiry == 0 || now < a->next_expiry)
        return;
    a->next_expiry = 0;
    for (size_t i = 0; i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        for (int j = 0; j < ag->nslots; j++) {
            struct alloc_slot *s = &ag->slots[j];
            if (!s->fw || s->filter_until == 0)
                continue;
            if (s->filter_until <= now) {
                s->filter_until = 0;
                s->fw->nfilters--;
                if (alloc_res_empty(&s->offered)) {
                    alloc_res_clear(&s->offered, ag->topo);
                    s->fw = NULL;
                }
                alloc_mark(a, ag);
            } else {
                alloc_note_expiry(a, s->filter_until);
            }
        }
    }
    alloc_requests_expire(a, now);
}

static int offer_agent(phx_alloc_t *a, struct alloc_agent *ag, double now,
                       phx_alloc_offer_f cb, void *arg)
{
    ag->dirty = false;
    if (!ag->available || ag->holding || phx_topo_free_ncores(ag->free) == 0)
        return 0;
    struct alloc_fw *fw = alloc_drf_pick(a, ag, now);
    if (!fw)
        return 0;
    int rc = alloc_offer(ag, fw, false, 0, NULL, cb, arg);
    alloc_drf_push(a, fw);
    return rc > 0 ? 1 : 0;
}

int phx_alloc_cycle(phx_alloc_t *a, double now, phx_alloc_offer_f cb, void *arg)
{
    expire(a, now);
    if (build_heap(a) < 0)
        return -1;
    int n = alloc_hold_pass(a, now, cb, arg);
    if (a->all_dirty) {
        for (size_t i = 0; i < a->nagents; i++)
            n += offer_agent(a, a->agents[i], now, cb, arg);
        a->all_dirty = false;
    } else {
        /* Offers never mark agents, so the list does not grow under us. */
        for (size_t i = 0; i < a->ndirty; i++)
            n += offer_agent(a, a->dirty[i], now, cb, arg);
    }
    for (size_t i = 0; i < a->ndirty; i++)
        a->dirty[i]->dirty = false;
    a->ndirty = 0;
    return n;
}

bool phx_alloc_pending(const phx_alloc_t *a, double now)
{
    return a->ndirty > 0 || a->all_dirty || a->plan_dirty ||
           (a->next_expiry > 0 && now >= a->next_expiry);
}

double phx_alloc_next_expiry(const phx_alloc_t *a)
{
    return a->next_expiry;
}
