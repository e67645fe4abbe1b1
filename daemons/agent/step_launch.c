/* phx-agent: a STEP_LAUNCH made whole (doc/steps.md, "Launch frames"): the
 * master sends what every agent of a step gets alike (argv, env, the node
 * and rank map, ...) once, as a JSON object in the frame's attachment, the
 * same bytes on every agent's frame, and this agent's own part (node, task,
 * cores) in the header.  A frame without an attachment carries everything
 * in its header (test masters, older masters). */
#include <errno.h>

#include "daemons/agent/step.h"

json_t *phx_lstep_launch_join(const phx_frame_t *f, phx_error_t *err)
{
    if (f->attach_len == 0)
        return json_incref(f->header);
    json_error_t jerr;
    json_t *all = json_loadb((const char *)f->attach, f->attach_len,
                             JSON_REJECT_DUPLICATES, &jerr);
    if (!all) {
        errno = EPROTO;
        phx_error_set(err, "attachment is not valid JSON: %s (at byte %d)", jerr.text,
                      jerr.position);
        return NULL;
    }
    if (!json_is_object(all) || json_object_update(all, f->header) < 0) {
        json_decref(all);
        errno = EPROTO;
        phx_error_set(err, "attachment is not a JSON object");
        return NULL;
    }
    return all;
}
