/* phx-batchd: each user's decaying usage, the fair-share factor's input
 * (lib's phx_usage; doc/batchd.md, "Priority"). */
#include <stdlib.h>

#include "daemons/batchd/batchd.h"

void batchd_usage_add(batchd_t *b, const char *user, double cpu_s, int64_t now)
{
    if (!user)
        return;
    phx_usage_t *u = phx_hmap_get(b->usage, user);
    if (!u) {
        if (!(u = calloc(1, sizeof(*u))) || phx_hmap_put(b->usage, user, u) < 0) {
            free(u);
            return;
        }
        u->at = now;
    }
    phx_usage_add(u, cpu_s, now, b->weights.half_life);
}

double batchd_usage_get(batchd_t *b, const char *user, int64_t now)
{
    phx_usage_t *u = user ? phx_hmap_get(b->usage, user) : NULL;
    return u ? phx_usage_value(u, now, b->weights.half_life) : 0;
}
