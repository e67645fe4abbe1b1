/* Pools of partitions (backfill.h): partitions linked by shared nodes, or by
 * a request that may use any node, are one pool, which the EASY planner
 * plans as a whole (one reservation, one budget of jobs examined).  A
 * union-find over the 64 partition bits, the lowest bit naming its pool. */
#include "daemons/batchd/backfill.h"

static uint32_t pool_find(phx_bf_pools_t *pl, uint32_t bit)
{
    while (pl->root[bit] != bit) {
        pl->root[bit] = pl->root[pl->root[bit]];
        bit = pl->root[bit];
    }
    return bit;
}

void phx_bf_pools_join(phx_bf_pools_t *pl, uint64_t parts)
{
    if (!parts) {
        pl->one = true;
        return;
    }
    uint32_t r0 = pool_find(pl, (uint32_t)__builtin_ctzll(parts));
    for (uint64_t m = parts & (parts - 1); m; m &= m - 1) {
        uint32_t r = pool_find(pl, (uint32_t)__builtin_ctzll(m));
        if (r < r0) { /* the lowest bit is the root: ids do not depend on order */
            pl->root[r0] = (uint8_t)r;
            r0 = r;
        } else if (r > r0) {
            pl->root[r] = (uint8_t)r0;
        }
    }
}

void phx_bf_pools_init(phx_bf_pools_t *pl, const phx_bf_node_t *nodes, size_t nnodes)
{
    pl->one = false;
    for (uint32_t i = 0; i < 64; i++)
        pl->root[i] = (uint8_t)i;
    for (size_t i = 0; i < nnodes; i++)
        if (nodes[i].parts) /* a node in no partition joins nothing */
            phx_bf_pools_join(pl, nodes[i].parts);
}

uint32_t phx_bf_pool_of(phx_bf_pools_t *pl, uint64_t parts)
{
    if (pl->one || !parts)
        return PHX_BF_POOL_ALL;
    return pool_find(pl, (uint32_t)__builtin_ctzll(parts));
}

size_t phx_bf_pools_list(phx_bf_pools_t *pl, uint64_t parts, uint32_t out[64])
{
    size_t n = 0;
    if (pl->one || !parts) {
        out[0] = PHX_BF_POOL_ALL;
        return 1;
    }
    uint64_t seen = 0;
    for (uint64_t m = parts; m; m &= m - 1) {
        uint32_t pool = phx_bf_pool_of(pl, m & (~m + 1));
        if (!(seen & (UINT64_C(1) << pool))) {
            seen |= UINT64_C(1) << pool;
            out[n++] = pool;
        }
    }
    return n;
}

size_t phx_bf_pools_count(phx_bf_pools_t *pl, const phx_bf_node_t *nodes, size_t nnodes)
{
    if (pl->one)
        return 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < nnodes; i++)
        if (nodes[i].parts)
            seen |= UINT64_C(1) << phx_bf_pool_of(pl, nodes[i].parts);
    return seen ? (size_t)__builtin_popcountll(seen) : 1;
}
