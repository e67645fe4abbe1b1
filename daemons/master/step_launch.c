/* A step's STEP_LAUNCH frames (doc/steps.md, "Launch frames").
 *
 * What every agent of a step needs alike (argv, env, cwd, the node and rank
 * map, ...) is serialised once, into a JSON object that every agent's frame
 * carries as its attachment, queued by reference (phx_master_blob_t): the
 * master holds one copy of it however many agents the step has.  An
 * agent's header holds only its own part: node, task, cores.  Each frame
 * used to carry all of it in its header: a 1000-node step with a 4 MiB
 * environment made the master queue 4 GB, and every frame listed every
 * node and rank (O(nodes^2) bytes in all). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step.h"

static json_t *int_array(const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

json_t *phx_step_input_to(const phx_step_t *s)
{
    json_t *a = json_array();
    for (int i = 0; a && i < s->nparts; i++)
        if (strcmp(s->parts[i].agent, s->origin) != 0 &&
            phx_step_part_gets_input(s, &s->parts[i]))
            json_array_append_new(a, json_string(s->parts[i].agent));
    return a;
}

json_t *phx_step_launch_common(const phx_step_t *s, const json_t *h)
{
    json_t *nodes = json_array(), *ranks = json_array();
    for (int k = 0; nodes && ranks && k < s->nparts; k++) {
        json_array_append_new(nodes, json_string(s->parts[k].agent));
        json_array_append_new(ranks, int_array(s->parts[k].ranks, s->parts[k].nranks));
    }
    /* the ranks' GPUs: checked by parse_req (step.c), split by each agent */
    return json_pack(
        "{s:i, s:s, s:s, s:s, s:O, s:O?, s:O?, s:b, s:b, s:i, s:o, s:o, s:i, "
        "s:O?, s:O?, s:O*}",
        "number", s->rec.number, "nspace", s->nspace, "origin", s->origin,
        "framework_id", s->fw_id, "argv", json_object_get(h, "argv"), "env",
        json_object_get(h, "env"), "cwd", json_object_get(h, "cwd"), "label",
        json_is_true(json_object_get(h, "label")), "kill_on_bad_exit",
        json_is_true(json_object_get(h, "kill_on_bad_exit")), "size", s->size, "nodes",
        nodes, "ranks", ranks, "input", s->input, "gpus_per_task",
        json_object_get(h, "gpus_per_task"), "gpu_bind", json_object_get(h, "gpu_bind"),
        "pty",
        json_is_null(json_object_get(h, "pty")) ? NULL : json_object_get(h, "pty"));
}

json_t *phx_step_launch_header(const phx_step_t *s, int i)
{
    const phx_step_part_t *p = &s->parts[i];
    json_t *cores = json_null();
    if (p->cores) {
        cores = json_array();
        for (int k = 0; cores && k < p->nranks; k++)
            json_array_append_new(cores, int_array(p->cores[k], p->ncores[k]));
    }
    bool origin = strcmp(p->agent, s->origin) == 0;
    return json_pack("{s:s, s:I, s:i, s:s, s:o?, s:b, s:O?, s:o?}", "type",
                     "STEP_LAUNCH", "step", (json_int_t)s->id, "node", i, "task_id",
                     p->task_id, "cores", cores, "oversubscribed", p->oversubscribed,
                     "req", origin ? s->req : NULL, "input_to",
                     origin ? phx_step_input_to(s) : NULL);
}

int phx_step_launch_send(phx_master_t *m, phx_step_t *s, const json_t *h,
                         phx_error_t *err)
{
    json_t *common = phx_step_launch_common(s, h);
    char *text = common ? json_dumps(common, JSON_COMPACT) : NULL;
    json_decref(common);
    phx_master_blob_t *blob = text ? phx_master_blob_create(text, strlen(text)) : NULL;
    if (!blob) {
        free(text);
        errno = ENOMEM;
        return phx_error_set(err, "out of memory");
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < s->nparts; i++) {
        phx_step_part_t *p = &s->parts[i];
        phx_master_agent_t *a = phx_master_agent_find(m, p->agent);
        json_t *hdr = phx_step_launch_header(s, i);
        phx_error_t why;
        if (!a || !a->conn) {
            json_decref(hdr);
            rc = phx_error_set(err, "agent \"%s\" of the job is not connected",
                               p->agent);
        } else if (!hdr) {
            rc = phx_error_set(err, "out of memory");
        } else if (phx_master_conn_send_shared(a->conn, hdr, blob, &why) < 0) {
            rc = phx_error_set(err, "could not launch on agent \"%s\": %s", p->agent,
                               why.text);
        } else {
            p->launched = true;
        }
    }
    phx_master_blob_release(blob);
    return rc;
}
