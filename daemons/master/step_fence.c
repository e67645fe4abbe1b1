/* The data of a step's fence: every agent's contribution concatenated into
 * the one attachment of FENCE_DONE, which must fit in a wire frame.  Pure:
 * no sockets, no clock. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step.h"

int phx_step_fence_gather(const phx_step_part_t *parts, int nparts, size_t max_frame,
                          uint8_t **out, size_t *out_len, phx_error_t *err)
{
    if (phx_step_fence_fits(parts, nparts, 0, max_frame, err) < 0)
        return -1;
    size_t total = 0;
    for (int i = 0; i < nparts; i++)
        total += parts[i].fence_len;
    uint8_t *all = malloc(total ? total : 1);
    if (!all) {
        errno = ENOMEM;
        return phx_error_set(err, "out of memory for the fence's data (%zu bytes)",
                             total);
    }
    size_t off = 0;
    for (int i = 0; i < nparts; i++) {
        if (parts[i].fence_len)
            memcpy(all + off, parts[i].fence, parts[i].fence_len);
        off += parts[i].fence_len;
    }
    *out = all;
    *out_len = total;
    return 0;
}

int phx_step_fence_fits(const phx_step_part_t *parts, int nparts, size_t adding,
                        size_t max_frame, phx_error_t *err)
{
    size_t total = adding;
    int fenced = adding > 0;
    for (int i = 0; i < nparts; i++) {
        if (!parts[i].fence_len)
            continue;
        fenced++;
        total = parts[i].fence_len > SIZE_MAX - total ? SIZE_MAX
                                                      : total + parts[i].fence_len;
    }
    size_t room =
        max_frame > PHX_STEP_FENCE_HEADROOM ? max_frame - PHX_STEP_FENCE_HEADROOM : 0;
    if (total <= room)
        return 0;
    errno = EMSGSIZE;
    return phx_error_set(err,
                         "the fence's data of %d agents (%zu bytes so far) exceeds the "
                         "%zu bytes a frame may carry (master.max_frame %zu)",
                         fenced, total, room, max_frame);
}
