/* phx-agent: the bound on output waiting for one `phx run` client
 * (step_bound.h). */
#include <stdio.h>

#include "daemons/agent/step_bound.h"

bool phx_step_bound_admit(phx_step_bound_t *b, size_t pending, size_t frame_len,
                          int stream, size_t len)
{
    if (!b->dropping && pending <= PHX_STEP_CLIENT_OUTPUT_MAX &&
        frame_len <= PHX_STEP_CLIENT_OUTPUT_MAX - pending)
        return true;
    b->dropping = true;
    b->lost[stream == 2 ? 1 : 0] += len;
    return false;
}

size_t phx_step_bound_notice(phx_step_bound_t *b, size_t pending, bool end, char *buf,
                             size_t size)
{
    if (!b->dropping || (!end && pending > PHX_STEP_CLIENT_OUTPUT_LOW))
        return 0;
    uint64_t out = b->lost[0], err = b->lost[1];
    b->lost[0] = b->lost[1] = 0;
    b->dropping = false;
    if (out + err == 0 || size == 0)
        return 0;
    int n = snprintf(buf, size,
                     "phx run: %llu bytes of the ranks' output were lost (%llu of "
                     "stdout, %llu of stderr): phx run was not reading them\n",
                     (unsigned long long)(out + err), (unsigned long long)out,
                     (unsigned long long)err);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}
