/* phx-agent: the summary of a step's local ranks that STEP_EXIT carries.
 *
 * The master needs the worst exit of the step (the highest exit code, or
 * 128 + the highest signal) and the highest code and signal apart (the
 * accounting's ExitCode is "code:signal"); it never needed each rank's.
 * A list of every local rank (about 38 bytes a rank: 39 KB for 1,024) did
 * not fit a small agent.max_frame, and the step then never ended.  The
 * summary is a few numbers whatever the ranks. */
#include <jansson.h>

#include "daemons/agent/step.h"

void phx_step_exits_add(phx_step_exits_t *e, int rank, int code, int sig)
{
    int worst = sig > 0 ? 128 + sig : code;
    if (e->nranks++ == 0 || worst > e->worst)
        e->worst = worst;
    if (code > e->max_code)
        e->max_code = code;
    if (sig > e->max_signal)
        e->max_signal = sig;
    if (code != 0 || sig != 0) {
        if (e->failed++ == 0 || rank < e->first_failed)
            e->first_failed = rank;
    }
}

json_t *phx_step_exits_json(const phx_step_exits_t *e, uint64_t step)
{
    json_t *h = json_pack("{s:s, s:I, s:i, s:i, s:i, s:i, s:i}", "type", "STEP_EXIT",
                          "step", (json_int_t)step, "nranks", e->nranks, "exit_code",
                          e->worst, "max_code", e->max_code, "max_signal",
                          e->max_signal, "failed", e->failed);
    if (h && e->failed > 0)
        json_object_set_new(h, "first_failed", json_integer(e->first_failed));
    return h;
}
