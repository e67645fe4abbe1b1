/* What a step request asks to run, checked before anything is made of it.
 *
 * The agent of `phx run` forwards the request as its caller wrote it, and
 * the caller is any user inside a job: the master once took argv, env and
 * cwd as they came and copied them into every STEP_LAUNCH, so an argv of
 * numbers, an env of arrays or a cwd object reached the agents, which read
 * them as NULL strings (an argv of NULLs ends at the first one; execvp of
 * NULL).  Pure: no sockets, no state. */
#include <string.h>

#include "daemons/master/step.h"
#include "lib/json.h"

/* A JSON string that is one C string (no NUL inside). */
static bool c_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int check_argv(const json_t *argv, phx_error_t *err)
{
    if (!json_is_array(argv))
        return phx_error_set(err, "argv: %s", argv ? "not an array" : "missing");
    if (json_array_size(argv) == 0)
        return phx_error_set(err, "argv: empty (no program to run)");
    size_t i;
    const json_t *v;
    json_array_foreach(argv, i, v)
    {
        if (!json_is_string(v))
            return phx_error_set(err, "argv[%zu]: not a string", i);
        if (!c_string(v))
            return phx_error_set(err, "argv[%zu]: contains a NUL byte", i);
    }
    if (!*json_string_value(json_array_get(argv, 0)))
        return phx_error_set(err, "argv[0]: empty program name");
    return 0;
}

/* env is {"NAME": "value", ...} (what `phx run` sends: its environment). */
static int check_env(const json_t *env, phx_error_t *err)
{
    if (!env || json_is_null(env))
        return 0;
    if (!json_is_object(env))
        return phx_error_set(err, "env: not an object of \"NAME\": \"value\"");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        if (!*k)
            return phx_error_set(err, "env: a variable with an empty name");
        if (strchr(k, '='))
            return phx_error_set(err, "env[\"%.64s\"]: \"=\" in a variable name", k);
        if (!json_is_string(v))
            return phx_error_set(err, "env[\"%.64s\"]: not a string", k);
        if (!c_string(v))
            return phx_error_set(err, "env[\"%.64s\"]: contains a NUL byte", k);
    }
    return 0;
}

int phx_step_check_command(const json_t *h, phx_error_t *err)
{
    const json_t *cwd = json_object_get(h, "cwd");
    if (check_argv(json_object_get(h, "argv"), err) < 0 ||
        check_env(json_object_get(h, "env"), err) < 0)
        return -1;
    if (cwd && !json_is_null(cwd) && !json_is_string(cwd))
        return phx_error_set(err, "cwd: not a string");
    if (cwd && json_is_string(cwd) && !c_string(cwd))
        return phx_error_set(err, "cwd: contains a NUL byte");
    return 0;
}

int phx_step_check_gpu_opts(const json_t *h, phx_step_req_t *r, phx_error_t *err)
{
    long long per_task = 0;
    const char *bind = NULL;
    if (phx_json_int(h, "gpus_per_task", false, 0, 1024, &per_task, err) < 0 ||
        phx_json_str(h, "gpu_bind", false, &bind, err) < 0)
        return -1;
    if (bind && strcmp(bind, "closest") != 0 && strcmp(bind, "none") != 0)
        return phx_error_set(err, "unknown gpu binding \"%s\" (closest or none)", bind);
    r->gpus_per_task = (int)per_task;
    r->gpu_bind_none = bind && strcmp(bind, "none") == 0;
    return 0;
}

int phx_step_gpus_on_node(const phx_step_req_t *r, int nranks, int ngpus)
{
    if (ngpus <= 0 || nranks <= 0)
        return 0;
    if (r->gpus_per_task <= 0 || r->gpu_bind_none)
        return ngpus;
    long long need = (long long)r->gpus_per_task * nranks;
    return need < ngpus ? (int)need : ngpus;
}

int phx_step_check_gpus(const phx_step_req_t *r, const char *agent, int ntasks,
                        int ngpus, phx_error_t *err)
{
    long long need = (long long)r->gpus_per_task * ntasks;
    if (need <= ngpus)
        return 0;
    if (r->gpus_per_task > ngpus)
        return phx_error_set(err,
                             "--gpus-per-task=%d: the job has %d GPU%s on \"%s\", "
                             "fewer than one task asks",
                             r->gpus_per_task, ngpus, ngpus == 1 ? "" : "s", agent);
    return phx_error_set(err,
                         "--gpus-per-task=%d: %d tasks on \"%s\" need %lld GPUs, the "
                         "job has %d there",
                         r->gpus_per_task, ntasks, agent, need, ngpus);
}
