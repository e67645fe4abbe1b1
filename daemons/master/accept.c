/* ACCEPT: validate every task of a gang against its offer, commit the gang
 * and its tasks in one transaction, and only then launch.  Any invalid task
 * launches nothing: the error names the task and the reason, and every
 * offer's resources return to the pool. */
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/framework.h"
#include "lib/json.h"
#include "lib/log.h"

#define MAX_GANG_TASKS 100000
#define MIB            (1024.0 * 1024.0)

typedef struct used_offer {
    phx_offer_t *offer;
    phx_topo_free_t *view; /* the offer's resources; tasks allocate from it */
} used_offer_t;

typedef struct gang_build {
    phx_master_t *m;
    phx_fw_t *fw;
    used_offer_t *offers;
    size_t noffers;
    phx_task_t **tasks;
    size_t ntasks;
    size_t nalloc; /* tasks[0..nalloc) hold resources of the offers' views */
    json_t *rows;  /* for the database */
    /* The user last looked up in this ACCEPT (its tasks mostly run as one
     * user): one passwd lookup per call, not per task (a lookup read and
     * parsed /etc/passwd, 3 % of the master's CPU with phx-batchd). */
    char pw_asked[64]; /* "" : none */
    struct passwd pw;
    char pwbuf[4096];
} gang_build_t;

static bool valid_task_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("._:-", *s)))
            return false;
    return true;
}

static const char *id_of(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, key), "value"));
}

static used_offer_t *offer_of_agent(gang_build_t *g, const char *agent_id)
{
    for (size_t i = 0; i < g->noffers; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)g->offers[i].offer->agent->id);
        if (strcmp(id, agent_id) == 0)
            return &g->offers[i];
    }
    return NULL;
}

/* Who the task runs as (*out, borrowed from g); the framework must be
 * allowed to run as that user. */
static int task_user(gang_build_t *g, const char *user, const struct passwd **out,
                     phx_error_t *err)
{
    phx_master_t *m = g->m;
    phx_fw_t *fw = g->fw;
    if (!*g->pw_asked || strcmp(g->pw_asked, user) != 0) {
        struct passwd *found = NULL;
        g->pw_asked[0] = '\0';
        if (getpwnam_r(user, &g->pw, g->pwbuf, sizeof(g->pwbuf), &found) != 0 || !found)
            return phx_error_set(err, "unknown user \"%s\"", user);
        if (strlen(user) < sizeof(g->pw_asked))
            strcpy(g->pw_asked, user);
    }
    const struct passwd *pw = *out = &g->pw;
    if (fw->authenticated) {
        if (fw->uid != 0 && fw->uid != pw->pw_uid)
            return phx_error_set(err, "framework of uid %u may not run tasks as \"%s\"",
                                 (unsigned)fw->uid, user);
        return 0;
    }
    for (size_t i = 0; i < m->nopen_uids; i++)
        if (m->open_uids[i] == pw->pw_uid)
            return 0;
    return phx_error_set(err, "unauthenticated framework may not run tasks as \"%s\"",
                         user);
}

static int parse_resources(const json_t *ti, int *cpus, double *mem_mb, int *gpus,
                           phx_error_t *err)
{
    *gpus = -1; /* not asked */
    json_t *res = NULL;
    if (phx_json_arr(ti, "resources", true, &res, err) < 0)
        return -1;
    *cpus = 0;
    *mem_mb = 0;
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        const char *name = NULL;
        json_t *sc = NULL;
        double v = 0;
        if (phx_json_str(r, "name", true, &name, err) < 0 ||
            phx_json_obj(r, "scalar", true, &sc, err) < 0 ||
            phx_json_num(sc, "value", true, -1e18, 1e18, &v, err) < 0)
            return phx_error_prefix(err, "resources[%zu]", i);
        if (strcmp(name, "cpus") == 0) {
            if (v < 1 || v > 1 << 20 || v != floor(v))
                return phx_error_set(err,
                                     "resources[%zu]: cpus = %g must be a whole number "
                                     "of cores, at least 1",
                                     i, v);
            *cpus = (int)v;
        } else if (strcmp(name, "mem") == 0) {
            if (v < 0 || v > 1e12)
                return phx_error_set(err, "resources[%zu]: mem = %g MB is out of range",
                                     i, v);
            *mem_mb = v;
        } else if (strcmp(name, "gpus") == 0) {
            if (v < 0 || v > 1 << 16 || v != floor(v))
                return phx_error_set(err,
                                     "resources[%zu]: gpus = %g must be a whole number "
                                     "of GPUs",
                                     i, v);
            *gpus = (int)v;
        } else {
            return phx_error_set(
                err, "resources[%zu]: resource \"%s\" is not supported", i, name);
        }
    }
    if (*cpus == 0)
        return phx_error_set(err, "resources: cpus missing");
    return 0;
}

/* Pick the task's cores inside its offer. */
static int place(used_offer_t *uo, const json_t *ti, int cpus, uint64_t mem,
                 phx_topo_grant_t *grant, phx_error_t *err)
{
    const phx_topo_t *topo = uo->offer->agent->topo;
    json_t *cores = json_object_get(ti, "cores"), *pl = NULL;
    uint64_t per_cpu = (mem + (uint64_t)cpus - 1) / (uint64_t)cpus;
    if (json_is_array(cores)) { /* explicit cores */
        if (json_array_size(cores) != (size_t)cpus)
            return phx_error_set(err, "cores lists %zu cores but cpus = %d",
                                 json_array_size(cores), cpus);
        size_t i;
        json_t *c;
        json_array_foreach(cores, i, c)
        {
            json_int_t id = json_integer_value(c);
            if (!json_is_integer(c) || id < 0 || id >= phx_topo_ncores(topo))
                return phx_error_set(err, "cores[%zu] is not a core of agent \"%s\"", i,
                                     uo->offer->agent->name);
            if (phx_topo_grant_add_core(grant, (int)id) < 0)
                return phx_error_set(err, "cores[%zu] = %lld named twice", i,
                                     (long long)id);
            int numa = phx_topo_core_numa(topo, (int)id);
            phx_topo_grant_set_memory(grant, numa,
                                      phx_topo_grant_memory(grant, numa) + per_cpu);
        }
        return 0;
    }
    phx_topo_request_t req = phx_topo_request(1, cpus);
    req.mem_per_cpu = per_cpu;
    if (phx_json_obj(ti, "placement", false, &pl, err) < 0)
        return -1;
    if (pl) {
        const char *kind = NULL;
        long long id = 0;
        if (phx_json_str(pl, "kind", true, &kind, err) < 0 ||
            phx_json_int(pl, "id", true, 0, 1 << 20, &id, err) < 0)
            return phx_error_prefix(err, "placement");
        if (strcmp(kind, "numa") == 0 && id < phx_topo_nnumas(topo))
            req.numa = (int)id;
        else if (strcmp(kind, "socket") == 0 && id < phx_topo_nsockets(topo))
            req.socket = (int)id;
        else
            return phx_error_set(err, "placement: no %s %lld on agent \"%s\"", kind, id,
                                 uo->offer->agent->name);
    }
    phx_error_t cerr;
    if (phx_topo_carve(uo->view, &req, grant, &cerr) < 0)
        return phx_error_set(err, "%d cores and %.0f MB do not fit in the offer%s%s",
                             cpus, (double)mem / MIB,
                             pl ? " at the requested placement" : "",
                             errno == ENOSPC ? "" : cerr.text);
    return 0;
}

/* phx.warn {"signal", "before", "to": "main"|"steps"}: a signal that many
 * seconds before the task's time limit, to its program or to the ranks of
 * the steps in it (sbatch --signal; the agent sends it, limits.c).  *out a
 * new object of the checked values only, NULL if none. */
static int warn_check(const json_t *phx, json_t **out, phx_error_t *err)
{
    phx_task_warn_t w;
    int rc = phx_task_warn_parse(phx, &w, err);
    *out = NULL;
    if (rc <= 0)
        return rc;
    if (!(*out = json_pack("{s:i, s:i, s:s}", "signal", w.signal, "before", w.before,
                           "to", w.main ? "main" : "steps")))
        return phx_error_set(err, "out of memory");
    return 0;
}

/* The LAUNCH task object for the agent (see doc/scheduler-api.md). */
static json_t *launch_object(phx_fw_t *fw, phx_task_t *t, const json_t *ti,
                             const struct passwd *pw, phx_error_t *err)
{
    json_t *cmd = json_object_get(ti, "command"), *phx = json_object_get(ti, "phx");
    if (!json_is_object(cmd))
        return phx_error_set(err, "command missing (executors and containers are not "
                                  "supported)"),
               NULL;
    const char *value = NULL;
    bool shell = true;
    if (phx_json_str(cmd, "value", false, &value, err) < 0 ||
        phx_json_bool(cmd, "shell", false, &shell, err) < 0)
        return phx_error_prefix(err, "command"), NULL;
    json_t *argv = json_array();
    json_t *args = json_object_get(cmd, "arguments");
    if (shell) {
        if (!value)
            return json_decref(argv),
                   phx_error_set(err, "command: shell needs a value"), NULL;
        json_array_append_new(argv, json_string("/bin/sh"));
        json_array_append_new(argv, json_string("-c"));
        json_array_append_new(argv, json_string(value));
    } else if (json_is_array(args) && json_array_size(args) > 0) {
        size_t i;
        json_t *a;
        json_array_foreach(args, i, a)
        {
            if (!json_is_string(a))
                return json_decref(argv),
                       phx_error_set(err, "command.arguments[%zu] must be a string", i),
                       NULL;
            json_array_append(argv, a);
        }
    } else if (value) {
        json_array_append_new(argv, json_string(value));
    } else {
        return json_decref(argv), phx_error_set(err, "command: nothing to run"), NULL;
    }
    json_t *env = json_object();
    json_t *vars = json_object_get(json_object_get(cmd, "environment"), "variables");
    size_t i;
    json_t *v;
    json_array_foreach(vars, i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        json_t *val = json_object_get(v, "value");
        if (!n || !json_is_string(val) || !*n || strchr(n, '='))
            return json_decref(argv), json_decref(env),
                   phx_error_set(err, "command.environment.variables[%zu] is malformed",
                                 i),
                   NULL;
        json_object_set(env, n, val); /* the call's string, shared, not copied */
    }
    const char *cwd = pw->pw_dir, *out = NULL, *errp = NULL, *script = NULL;
    long long grace = 30;
    bool append = false;
    if (phx && (phx_json_str(phx, "cwd", false, &cwd, err) < 0 ||
                phx_json_bool(phx, "append", false, &append, err) < 0 ||
                phx_json_str(phx, "stdout", false, &out, err) < 0 ||
                phx_json_str(phx, "stderr", false, &errp, err) < 0 ||
                phx_json_str(phx, "script", false, &script, err) < 0 ||
                phx_json_int(phx, "kill_grace", false, 0, 86400, &grace, err) < 0))
        return json_decref(argv), json_decref(env), phx_error_prefix(err, "phx"), NULL;
    if (script &&
        (strncmp(script, "#!", 2) != 0 || strlen(script) > PHX_TASK_SCRIPT_MAX))
        return json_decref(argv), json_decref(env),
               phx_error_set(err,
                             "phx.script must start with #! and hold at most %d "
                             "bytes",
                             PHX_TASK_SCRIPT_MAX),
               NULL;
    json_t *warn = NULL; /* owned from here */
    if (phx && warn_check(phx, &warn, err) < 0)
        return json_decref(argv), json_decref(env), phx_error_prefix(err, "phx"), NULL;
    const phx_topo_t *topo = t->agent->topo;
    json_t *gpus =
        phx_topo_grant_ngpus(t->grant) ? phx_gpus_launch_json(topo, t->grant) : NULL;
    char *cores = phx_topo_coreset_str(phx_topo_grant_cores(t->grant));
    phx_topo_coreset_t *numas = phx_topo_coreset_create(phx_topo_nnumas(topo));
    for (int n = 0; numas && n < phx_topo_nnumas(topo); n++)
        if (phx_topo_grant_memory(t->grant, n) > 0)
            phx_topo_coreset_add(numas, n);
    const phx_topo_coreset_t *gc = phx_topo_grant_cores(t->grant);
    for (int c = phx_topo_coreset_next(gc, -1); numas && c >= 0;
         c = phx_topo_coreset_next(gc, c))
        phx_topo_coreset_add(numas, phx_topo_core_numa(topo, c));
    char *numa_list = numas ? phx_topo_coreset_str(numas) : NULL;
    phx_topo_coreset_destroy(numas);
    double limit = t->end_by > 0 ? ceil(t->end_by - (double)phx_master_wall()) : 0;
    if (limit > (double)PHX_TASK_TIME_LIMIT_MAX) /* rounding of end_by */
        limit = (double)PHX_TASK_TIME_LIMIT_MAX;
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:s, s:I, s:I, s:o, s:o, s:s, s:s?, s:s?, s:s, s:I, s:s, s:I, "
        "s:I}",
        "task_id", t->id, "framework_id", fw->id, "gang_id", (json_int_t)0, "user",
        pw->pw_name, "uid", (json_int_t)pw->pw_uid, "gid", (json_int_t)pw->pw_gid,
        "argv", argv, "env", env, "cwd", cwd, "stdout", out, "stderr", errp, "cores",
        cores ? cores : "", "memory", (json_int_t)t->memory, "numas",
        numa_list ? numa_list : "", "time_limit", (json_int_t)(limit > 0 ? limit : 0),
        "kill_grace", (json_int_t)grace);
    free(cores);
    free(numa_list);
    if (o && script && json_object_set(o, "script", json_object_get(phx, "script")) < 0)
        json_decref(o), o = NULL;
    if (o && append && json_object_set_new(o, "append", json_true()) < 0)
        json_decref(o), o = NULL;
    if (o && warn && json_object_set_new(o, "warn", warn) < 0)
        json_decref(o), o = NULL;
    else if (!o)
        json_decref(warn);
    if (o && gpus && json_object_set_new(o, "gpus", gpus) < 0)
        json_decref(o), o = NULL;
    else if (!o)
        json_decref(gpus);
    if (!o)
        phx_error_set(err, "out of memory");
    return o;
}

static int build_task(gang_build_t *g, const json_t *ti, size_t index, phx_error_t *err)
{
    const char *task_id = id_of(ti, "task_id"), *agent_id = id_of(ti, "agent_id");
    if (!task_id || !valid_task_id(task_id))
        return phx_error_set(err,
                             "task_infos[%zu]: task_id.value must be 1-128 characters "
                             "of [A-Za-z0-9._:-]",
                             index);
    if (!agent_id)
        return phx_error_set(err, "task %s: agent_id.value missing", task_id);
    if (phx_task_find(g->fw, task_id))
        return phx_error_set(err, "task %s: task id already in use", task_id);
    for (size_t i = 0; i < g->ntasks; i++)
        if (strcmp(g->tasks[i]->id, task_id) == 0)
            return phx_error_set(err, "task %s: named twice in the gang", task_id);
    used_offer_t *uo = offer_of_agent(g, agent_id);
    if (!uo)
        return phx_error_set(err, "task %s: agent %s is not in the accepted offers",
                             task_id, agent_id);
    int cpus, gpus;
    double mem_mb;
    if (parse_resources(ti, &cpus, &mem_mb, &gpus, err) < 0)
        return phx_error_prefix(err, "task %s", task_id);
    json_t *cmd = json_object_get(ti, "command");
    const char *user = json_string_value(json_object_get(cmd, "user"));
    if (!user)
        user = g->fw->user;
    const struct passwd *pw = NULL;
    if (task_user(g, user, &pw, err) < 0)
        return phx_error_prefix(err, "task %s", task_id);
    long long max_ns = 0;
    if (phx_json_int(json_object_get(ti, "max_completion_time"), "nanoseconds", false,
                     0, INT64_MAX, &max_ns, err) < 0)
        return phx_error_prefix(err, "task %s: max_completion_time", task_id);
    /* The agents' bound: no gang is committed that an agent would refuse. */
    if (max_ns > PHX_TASK_TIME_LIMIT_MAX * 1000000000LL)
        return phx_error_set(err,
                             "task %s: max_completion_time.nanoseconds = %lld is above "
                             "the limit of %lld (100 years)",
                             task_id, max_ns, PHX_TASK_TIME_LIMIT_MAX * 1000000000LL);
    double now = (double)phx_master_wall();
    double end_by = max_ns > 0 ? now + (double)max_ns / 1e9 : 0;
    phx_offer_t *of = uo->offer;
    if (of->release_by > 0 && (end_by == 0 || end_by > of->release_by))
        return phx_error_set(err,
                             "task %s: offer %s must be released by %.0f; the task %s",
                             task_id, of->id, of->release_by,
                             end_by == 0 ? "has no max_completion_time" : "ends later");

    phx_task_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->id = strdup(task_id)) ||
        !(t->grant = phx_topo_grant_create(of->agent->topo))) {
        phx_task_free(t);
        return phx_error_set(err, "out of memory");
    }
    g->tasks[g->ntasks++] = t;
    t->fw = g->fw;
    t->agent = of->agent;
    t->cpus = cpus;
    t->memory = (uint64_t)(mem_mb * MIB);
    t->end_by = end_by;
    t->state = "TASK_STAGING";
    phx_error_t perr;
    if (place(uo, ti, cpus, t->memory, t->grant, &perr) < 0 ||
        phx_accept_gpus(uo->view, ti, gpus, of->agent->name, t->grant, &perr) < 0 ||
        phx_topo_free_alloc(uo->view, t->grant, &perr) < 0)
        return phx_error_set(err, "task %s on agent \"%s\": %s", task_id,
                             of->agent->name, perr.text);
    if (!(t->launch = launch_object(g->fw, t, ti, pw, err)) ||
        (phx_task_canon(t) < 0 && phx_error_set(err, "out of memory"))) {
        phx_topo_free_release(uo->view, t->grant, NULL);
        return phx_error_prefix(err, "task %s", task_id);
    }
    g->nalloc++;
    char *cores = phx_topo_coreset_str(phx_topo_grant_cores(t->grant));
    char *gpu_list = phx_gpus_str(of->agent->topo, t->grant);
    json_t *name = json_object_get(ti, "name");
    json_array_append_new(
        g->rows,
        json_pack("{s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:i, s:I}", "task_id", t->id,
                  "agent_id", (json_int_t)of->agent->id, "name",
                  json_is_string(name) ? json_string_value(name) : "", "user_name",
                  pw->pw_name, "uid", (json_int_t)pw->pw_uid, "cores",
                  cores ? cores : "", "gpus", gpu_list ? gpu_list : "", "cpus", cpus,
                  "memory_bytes",
                  (json_int_t)t->memory)); /* and its command: phx_gang_start */
    free(cores);
    free(gpu_list);
    return 0;
}

/* What is still free in an offer's view, as a grant. */
static phx_topo_grant_t *rest_of(const phx_topo_t *topo, const phx_topo_free_t *view)
{
    phx_topo_grant_t *rest = phx_topo_grant_create(topo);
    if (!rest)
        return NULL;
    const phx_topo_coreset_t *fc = phx_topo_free_cores(view);
    for (int c = phx_topo_coreset_next(fc, -1); c >= 0;
         c = phx_topo_coreset_next(fc, c))
        phx_topo_grant_add_core(rest, c);
    for (int n = 0; n < phx_topo_nnumas(topo); n++)
        phx_topo_grant_set_memory(rest, n, phx_topo_free_numa_memory(view, n));
    for (int d = 0; d < phx_topo_ndevs(topo); d++)
        if (phx_topo_free_has_gpu(view, d))
            phx_topo_grant_add_gpu(rest, d);
    return rest;
}

static void gang_build_free(gang_build_t *g, bool free_tasks)
{
    for (size_t i = 0; i < g->noffers; i++)
        phx_topo_free_destroy(g->offers[i].view);
    free(g->offers);
    if (free_tasks)
        for (size_t i = 0; i < g->ntasks; i++)
            phx_task_free(g->tasks[i]);
    free(g->tasks);
    json_decref(g->rows);
}

static int collect_offers(gang_build_t *g, const json_t *accept, phx_error_t *err)
{
    json_t *ids = NULL;
    if (phx_json_arr(accept, "offer_ids", true, &ids, err) < 0)
        return -1;
    if (json_array_size(ids) == 0)
        return phx_error_set(err, "offer_ids is empty");
    g->offers = calloc(json_array_size(ids), sizeof(*g->offers));
    if (!g->offers)
        return phx_error_set(err, "out of memory");
    size_t i;
    json_t *o;
    json_array_foreach(ids, i, o)
    {
        const char *id = json_string_value(json_object_get(o, "value"));
        if (!id)
            return phx_error_set(err, "offer_ids[%zu] has no string \"value\"", i);
        phx_offer_t *of = phx_offer_find(g->m, id);
        if (!of || of->fw != g->fw)
            return phx_error_set(err,
                                 "offer %s is not (or no longer) offered to this "
                                 "framework",
                                 id);
        for (size_t k = 0; k < g->noffers; k++)
            if (g->offers[k].offer == of || g->offers[k].offer->agent == of->agent)
                return phx_error_set(err, "offer %s: its agent is named twice", id);
        g->offers[g->noffers].offer = of;
        if (!(g->offers[g->noffers].view = phx_offer_view(of->agent->topo, of->grant)))
            return phx_error_set(err, "out of memory");
        g->noffers++;
    }
    return 0;
}

static int collect_tasks(gang_build_t *g, const json_t *ops, phx_error_t *err)
{
    size_t total = 0, i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        const char *type = json_string_value(json_object_get(op, "type"));
        json_t *tis = NULL;
        if (type && strcmp(type, "LAUNCH") == 0)
            tis = json_object_get(json_object_get(op, "launch"), "task_infos");
        else if (type && strcmp(type, "LAUNCH_GROUP") == 0)
            tis = json_object_get(
                json_object_get(json_object_get(op, "launch_group"), "task_group"),
                "tasks");
        else
            return phx_error_set(err, "operations[%zu]: type \"%s\" is not supported",
                                 i, type ? type : "(none)");
        if (!json_is_array(tis))
            return phx_error_set(err, "operations[%zu]: no task list", i);
        total += json_array_size(tis);
    }
    if (total == 0)
        return phx_error_set(err, "no task to launch");
    if (total > MAX_GANG_TASKS)
        return phx_error_set(err, "%zu tasks in one gang; at most %d", total,
                             MAX_GANG_TASKS);
    if (!(g->tasks = calloc(total, sizeof(*g->tasks))) || !(g->rows = json_array()))
        return phx_error_set(err, "out of memory");
    size_t index = 0;
    json_array_foreach(ops, i, op)
    {
        json_t *tis = json_object_get(json_object_get(op, "launch"), "task_infos");
        if (!tis)
            tis = json_object_get(
                json_object_get(json_object_get(op, "launch_group"), "task_group"),
                "tasks");
        size_t k;
        json_t *ti;
        json_array_foreach(tis, k, ti)
        {
            if (build_task(g, ti, index++, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* The offers' resources move to the launched tasks; the rest of every offer
 * goes back to the pool. */
static void settle_offers(gang_build_t *g, phx_task_t **tasks, size_t n)
{
    phx_master_t *m = g->m;
    for (size_t i = 0; i < g->noffers; i++) {
        phx_offer_t *of = g->offers[i].offer;
        phx_error_t aerr;
        for (size_t k = 0; k < n; k++) {
            phx_task_t *t = tasks[k];
            if (t->agent != of->agent)
                continue;
            if (phx_alloc_offer_used(m->alloc, of->agent->id, g->fw->id, t->id,
                                     t->grant, t->end_by, &aerr) < 0)
                phx_log_errx("task %s: %s", t->id, aerr.text);
            else
                t->in_alloc = true;
        }
        phx_topo_grant_t *rest = rest_of(of->agent->topo, g->offers[i].view);
        phx_alloc_grant_recycle(m->alloc, of->agent->id, of->grant);
        of->grant = rest; /* NULL (out of memory) leaks the rest until restart */
        phx_offer_drop(m, of, false);
    }
}

static void drop_offers(gang_build_t *g)
{
    for (size_t i = 0; i < g->noffers; i++)
        phx_offer_drop(g->m, g->offers[i].offer, false);
}

/* One gang: its tasks, then its commit; on failure nothing of it stays. */
static int one_gang(gang_build_t *g, const json_t *ops, phx_error_t *err)
{
    int rc = -1;
    if (collect_tasks(g, ops, err) == 0) {
        if (phx_gang_start(g->m, g->fw, g->tasks, g->ntasks, g->rows, err) == 0)
            return 0;
        rc = -2; /* could not be recorded */
    }
    for (size_t i = 0; i < g->nalloc; i++) {
        used_offer_t *uo = NULL;
        for (size_t k = 0; k < g->noffers && !uo; k++)
            if (g->offers[k].offer->agent == g->tasks[i]->agent)
                uo = &g->offers[k];
        if (uo)
            phx_topo_free_release(uo->view, g->tasks[i]->grant, NULL);
    }
    return rc;
}

static void gang_reset(gang_build_t *g, bool free_tasks)
{
    for (size_t i = 0; free_tasks && i < g->ntasks; i++)
        phx_task_free(g->tasks[i]);
    free(g->tasks);
    json_decref(g->rows);
    g->tasks = NULL;
    g->rows = NULL;
    g->ntasks = g->nalloc = 0;
}

static const json_t *op_tasks(const json_t *op)
{
    json_t *tis = json_object_get(json_object_get(op, "launch"), "task_infos");
    if (!tis)
        tis = json_object_get(
            json_object_get(json_object_get(op, "launch_group"), "task_group"),
            "tasks");
    return tis;
}

/* A gang of one operation failed: the framework hears of it through an ERROR
 * event and a TASK_ERROR update for each of its tasks (ids not in use). */
static void report_failed(gang_build_t *g, const json_t *op, const char *why)
{
    phx_fw_send(g->fw,
                json_pack("{s:s, s:{s:s}}", "type", "ERROR", "error", "message", why));
    size_t i;
    json_t *ti;
    json_array_foreach(op_tasks(op), i, ti)
    {
        const char *id = id_of(ti, "task_id");
        if (!id || !valid_task_id(id) || phx_task_find(g->fw, id))
            continue;
        json_t *st = json_pack("{s:{s:s}, s:s, s:s, s:s, s:s, s:f}", "task_id", "value",
                               id, "state", "TASK_ERROR", "source", "SOURCE_MASTER",
                               "reason", "REASON_TASK_INVALID", "message", why,
                               "timestamp", (double)phx_master_wall());
        const char *agent = id_of(ti, "agent_id");
        if (st && agent)
            json_object_set_new(st, "agent_id", json_pack("{s:s}", "value", agent));
        phx_fw_send(g->fw, json_pack("{s:s, s:{s:o}}", "type", "UPDATE", "update",
                                     "status", st));
    }
}

/* "phx": {"gang_per_operation": true}: every operation is a gang of its own
 * (doc/scheduler-api.md). */
static int per_operation(const json_t *accept, bool *out, phx_error_t *err)
{
    json_t *phx = NULL;
    *out = false;
    if (phx_json_obj(accept, "phx", false, &phx, err) < 0 ||
        phx_json_bool(phx, "gang_per_operation", false, out, err) < 0)
        return -1;
    return 0;
}

/* Each operation its own gang: validated and committed on its own, so one
 * invalid job does not hold back the others of the ACCEPT.  -1 only when no
 * gang could start. */
static int accept_gangs(gang_build_t *g, const json_t *ops, phx_error_t *err)
{
    size_t cap = 0, nlaunched = 0, nfailed = 0, i;
    json_t *op;
    json_array_foreach(ops, i, op) cap += json_array_size(op_tasks(op));
    if (cap == 0)
        return phx_error_set(err, "ACCEPT: no task to launch");
    phx_task_t **launched = calloc(cap, sizeof(*launched));
    if (!launched)
        return phx_error_set(err, "out of memory");
    json_array_foreach(ops, i, op)
    {
        json_t *one = json_pack("[O]", op);
        phx_error_t gerr;
        int rc = one ? one_gang(g, one, &gerr) : phx_error_set(&gerr, "out of memory");
        json_decref(one);
        if (rc < 0) {
            phx_error_prefix(&gerr, "ACCEPT: operations[%zu]", i);
            if (nfailed++ == 0)
                *err = gerr;
            report_failed(g, op, gerr.text);
            gang_reset(g, true);
            continue;
        }
        memcpy(launched + nlaunched, g->tasks, g->ntasks * sizeof(*g->tasks));
        nlaunched += g->ntasks;
        gang_reset(g, false);
    }
    if (nlaunched == 0)
        drop_offers(g);
    else
        settle_offers(g, launched, nlaunched);
    free(launched);
    return nlaunched > 0 ? 0 : -1;
}

int phx_accept(phx_master_t *m, phx_fw_t *fw, const json_t *accept, phx_error_t *err)
{
    gang_build_t g = {.m = m, .fw = fw};
    json_t *ops = NULL;
    bool per_op = false;
    int rc;
    if (collect_offers(&g, accept, err) < 0 ||
        phx_json_arr(accept, "operations", true, &ops, err) < 0 ||
        per_operation(accept, &per_op, err) < 0) {
        phx_error_prefix(err, "ACCEPT");
        drop_offers(&g);
        gang_build_free(&g, true);
        return -1;
    }
    if (per_op) {
        rc = accept_gangs(&g, ops, err);
        gang_build_free(&g, true);
        return rc;
    }
    rc = one_gang(&g, ops, err);
    if (rc < 0) {
        if (rc == -1)
            phx_error_prefix(err, "ACCEPT");
        drop_offers(&g);
        gang_build_free(&g, true);
        return -1;
    }
    settle_offers(&g, g.tasks, g.ntasks);
    gang_build_free(&g, false);
    return 0;
}
