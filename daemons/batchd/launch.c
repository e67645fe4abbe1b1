/* The tasks of a placed job, as one LAUNCH of the gang: node 0 runs the
 * batch script as the user with the PHX_* environment; the other nodes hold
 * their share (`exec sleep`) for later steps and are killed when the script
 * ends.
 *
 * The script travels in the task ("phx": {"script": …}); the agent runs it
 * from memory as the user, with the job's arguments, so that its exit status
 * and any signal that ended it are the task's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/gpuspec.h"
#include "daemons/batchd/jobsig.h"
#include "daemons/batchd/outpath.h"
#include "daemons/batchd/timefmt.h"
#include "lib/log.h"

static void var(json_t *vars, const char *name, const char *value)
{
    if (value)
        json_array_append_new(vars,
                              json_pack("{s:s, s:s}", "name", name, "value", value));
}

static void vari(json_t *vars, const char *name, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    var(vars, name, buf);
}

/* Slurm's SLURM_ARRAY_TASK_COUNT/MIN/MAX/STEP under PHX_ names, from the
 * stats the job got with its array (none when unknown). */
static void array_env(const bjob_t *j, json_t *vars)
{
    const phx_array_stats_t *a = &j->array_stats;
    if (a->count == 0)
        return;
    vari(vars, "PHX_ARRAY_TASK_COUNT", (long long)a->count);
    vari(vars, "PHX_ARRAY_TASK_MIN", (long long)a->min);
    vari(vars, "PHX_ARRAY_TASK_MAX", (long long)a->max);
    vari(vars, "PHX_ARRAY_TASK_STEP", (long long)a->step);
}

/* PHX_ variables of the submitter that are not a job's: where the daemons
 * are (a job's own PHX_JOB_ID etc. must not leak into the jobs it submits). */
static bool passed_through(const char *name)
{
    static const char *const keep[] = {"PHX_CONFIG",       "PHX_MASTER", "PHX_BATCHD",
                                       "PHX_MUNGE_SOCKET", "PHX_DSN",    NULL};
    for (const char *const *k = keep; *k; k++)
        if (strcmp(name, *k) == 0)
            return true;
    return false;
}

/* OpenMPI's settings of batchd.mpirun_env (mpirun_env below). */
static const char *const mpirun_vars[] = {"OMPI_MCA_plm_rsh_agent",
                                          "OMPI_MCA_orte_default_dash_host",
                                          "OMPI_MCA_plm_rsh_no_tree_spawn",
                                          "OMPI_MCA_orte_leave_session_attached",
                                          "OMPI_MCA_orte_keep_fqdn_hostnames",
                                          "OMPI_MCA_plm"};
#define NMPIRUN_VARS (sizeof(mpirun_vars) / sizeof(mpirun_vars[0]))

static bool from_a_job(const bjob_t *j)
{
    return j->env && json_object_get(j->env, "PHX_JOB_ID");
}

static bool is_mpirun_var(const char *name)
{
    for (size_t i = 0; i < NMPIRUN_VARS; i++)
        if (strcmp(name, mpirun_vars[i]) == 0)
            return true;
    return false;
}

/* The user's environment per --export, without SLURM_* and our own
 * (with our mpirun settings when submitted from a job). */
static void user_env(batchd_t *b, const bjob_t *j, json_t *vars)
{
    const char *exp = j->spec.export_env;
    bool all = !exp || strncmp(exp, "ALL", 3) == 0;
    const char *k;
    json_t *v;
    const char *path = NULL;
    if (all && j->env) {
        json_object_foreach(j->env, k, v)
        {
            if (strncmp(k, "SLURM_", 6) == 0 || strncmp(k, "__PHX_", 6) == 0 ||
                (strncmp(k, "PHX_", 4) == 0 && !passed_through(k)) ||
                (from_a_job(j) && is_mpirun_var(k)))
                continue;
            if (strcmp(k, "PATH") == 0) {
                path = json_string_value(v);
                continue;
            }
            var(vars, k, json_string_value(v));
        }
    }
    /* --export=[ALL,]NAME[=value],... */
    if (exp && strcmp(exp, "ALL") != 0 && strcmp(exp, "NONE") != 0) {
        char *copy = strdup(exp), *save = NULL;
        for (char *w = copy ? strtok_r(copy, ",", &save) : NULL; w;
             w = strtok_r(NULL, ",", &save)) {
            if (strcmp(w, "ALL") == 0)
                continue;
            char *eq = strchr(w, '=');
            if (eq) {
                *eq = 0;
                var(vars, w, eq + 1);
            } else if (!all && j->env) {
                var(vars, w, json_string_value(json_object_get(j->env, w)));
            }
        }
        free(copy);
    }
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *p = NULL;
    if (b->compat_dir && asprintf(&p, "%s:%s", b->compat_dir, path) > 0) {
        var(vars, "PATH", p);
        free(p);
    } else {
        var(vars, "PATH", path);
    }
}

/* batchd.slurm_env: the batch script's PHX_X also as SLURM_X (PHX_ names
 * are Slurm's), and Slurm's older aliases, for scripts that read them
 * ($SLURM_ARRAY_TASK_ID, $SLURM_JOB_ID...).  Only the batch script (node
 * 0): the other nodes run no user process but steps, and phx run (srun)
 * gives no SLURM_* to a step's ranks, where OpenMPI would believe it runs
 * under Slurm. */
static void slurm_names(json_t *vars)
{
    static const char *const alias[][2] = {{"PHX_JOB_ID", "SLURM_JOBID"},
                                           {"PHX_JOB_NODELIST", "SLURM_NODELIST"},
                                           {"PHX_NTASKS", "SLURM_NPROCS"}};
    size_t n = json_array_size(vars);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(vars, i);
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *value = json_string_value(json_object_get(v, "value"));
        if (!name || !value || strncmp(name, "PHX_", 4) != 0 || passed_through(name))
            continue;
        char slurm[128];
        if (snprintf(slurm, sizeof(slurm), "SLURM_%s", name + 4) < (int)sizeof(slurm))
            var(vars, slurm, value);
        for (size_t k = 0; k < sizeof(alias) / sizeof(alias[0]); k++)
            if (strcmp(name, alias[k][0]) == 0)
                var(vars, alias[k][1], value);
    }
}

static bool has_var(const json_t *vars, const char *name)
{
    size_t n = json_array_size(vars);
    for (size_t i = 0; i < n; i++) {
        const char *v =
            json_string_value(json_object_get(json_array_get(vars, i), "name"));
        if (v && strcmp(v, name) == 0)
            return true;
    }
    return false;
}

/* The task's GPUs: the gpus scalar and their device ids
 * (doc/scheduler-api.md). */
static void add_gpus(json_t *ti, uint64_t gpus)
{
    json_t *ids = json_array();
    for (int i = 0; ids && i < 64; i++)
        if (gpus & (UINT64_C(1) << i))
            json_array_append_new(ids, json_integer(i));
    json_array_append_new(json_object_get(ti, "resources"),
                          json_pack("{s:s, s:s, s:{s:i}}", "name", "gpus", "type",
                                    "SCALAR", "scalar", "value",
                                    __builtin_popcountll(gpus)));
    json_object_set_new(ti, "gpus", ids);
}
/* batchd.mpirun_env: OpenMPI's mpirun in the batch script starts its
 * daemon on each node of the job as a step, through the phx-rsh wrapper
 * of compat_dir (its rsh launcher's "ssh"), with the job's nodes and
 * tasks per node as its hosts and slots, as under Slurm it takes
 * SLURM_JOB_NODELIST and SLURM_TASKS_PER_NODE and starts them with srun
 * (doc/jobs.md, "mpirun in a job").  A setting of the user's own is kept,
 * unless it was submitted from inside a job: then it is this one's, for
 * other nodes. */
static void mpirun_env(batchd_t *b, const bjob_t *j, json_t *vars)
{
    if (!b->mpirun_env || !b->compat_dir || has_var(vars, mpirun_vars[0]) ||
        has_var(vars, mpirun_vars[1]))
        return;
    size_t len = 1;
    for (size_t i = 0; i < j->ntasks; i++)
        len += strlen(j->tasks[i].host) + 12;
    char *hosts = malloc(len), *agent = NULL;
    if (!hosts)
        return;
    size_t off = 0;
    bool dotted = false;
    for (size_t i = 0; i < j->ntasks; i++) {
        off += (size_t)snprintf(hosts + off, len - off, "%s%s:%u", i ? "," : "",
                                j->tasks[i].host, (unsigned)j->tasks[i].tasks);
        dotted = dotted || strchr(j->tasks[i].host, '.');
    }
    if (asprintf(&agent, "%s/phx-rsh", b->compat_dir) > 0) {
        var(vars, mpirun_vars[0], agent);
        var(vars, mpirun_vars[1], hosts);
        /* every daemon from mpirun (its step), none from another daemon */
        if (!has_var(vars, mpirun_vars[2]))
            var(vars, mpirun_vars[2], "1");
        /* not daemonized: the step lasts as long as the daemon */
        if (!has_var(vars, mpirun_vars[3]))
            var(vars, mpirun_vars[3], "1");
        /* mpirun cuts a host name at its first dot (orte_keep_fqdn_hostnames
         * is false by default): phx-rsh would be given "n1" for the node
         * "n1.example", which is no node of the job */
        if (dotted && !has_var(vars, mpirun_vars[4]))
            var(vars, mpirun_vars[4], "1");
        /* with batchd.slurm_env mpirun sees SLURM_JOB_ID and would pick its
         * Slurm launcher, whose daemons need what only Slurm's srun gives a
         * task (SLURM_NODEID, SLURMD_NODENAME); it reads the allocation
         * from SLURM_* alike, but starts them through phx-rsh */
        if (b->slurm_env && !has_var(vars, mpirun_vars[5]))
            var(vars, mpirun_vars[5], "rsh");
        free(agent);
    }
    free(hosts);
}

static json_t *job_env(batchd_t *b, const bjob_t *j, size_t node)
{
    json_t *vars = json_array();
    if (!vars)
        return NULL;
    user_env(b, j, vars);
    const phx_jobspec_t *s = &j->spec;
    vari(vars, "PHX_JOB_ID", (long long)j->id);
    var(vars, "PHX_JOB_NAME", s->job_name);
    var(vars, "PHX_JOB_USER", j->user);
    var(vars, "PHX_JOB_NODELIST", j->node_list);
    vari(vars, "PHX_JOB_NUM_NODES", (long long)j->ntasks);
    vari(vars, "PHX_NNODES", (long long)j->ntasks);
    vari(vars, "PHX_NTASKS", (long long)s->ntasks);
    if (s->ntasks_per_node != PHX_UNSET)
        vari(vars, "PHX_NTASKS_PER_NODE", (long long)s->ntasks_per_node);
    vari(vars, "PHX_CPUS_PER_TASK", (long long)s->cpus_per_task);
    vari(vars, "PHX_CPUS_ON_NODE", (long long)j->tasks[node].cpus);
    uint32_t *counts = calloc(j->ntasks, sizeof(*counts));
    for (size_t i = 0; counts && i < j->ntasks; i++)
        counts[i] = j->tasks[i].tasks;
    char *tpn = counts ? phx_tasks_per_node_format(counts, j->ntasks) : NULL;
    var(vars, "PHX_TASKS_PER_NODE", tpn);
    free(tpn);
    free(counts);
    vari(vars, "PHX_MEM_PER_NODE", (long long)j->tasks[node].mem);
    if (s->mem_per_cpu != PHX_UNSET && s->mem_per_cpu > 0)
        vari(vars, "PHX_MEM_PER_CPU", (long long)s->mem_per_cpu);
    /* sbatch's --cpu-bind and -m are srun's defaults in the job (phx run) */
    var(vars, "PHX_CPU_BIND", s->cpu_bind);
    var(vars, "PHX_DISTRIBUTION", s->distribution);
    /* and its --gpus-per-task that of phx run, which splits the GPUs */
    phx_gpureq_t g;
    phx_gpuspec_get(s, &g);
    if (g.per_task > 0)
        vari(vars, "PHX_GPUS_PER_TASK", (long long)g.per_task);
    var(vars, "PHX_SUBMIT_DIR", j->submit_dir);
    var(vars, "PHX_SUBMIT_HOST", j->submit_host);
    var(vars, "PHX_JOB_ACCOUNT", s->account);
    var(vars, "PHX_JOB_PARTITION", s->partition ? s->partition : b->partition);
    var(vars, "PHX_CLUSTER_NAME", "phalanx");
    vari(vars, "PHX_NODEID", (long long)node);
    var(vars, "PHX_TOPOLOGY_ADDR", j->tasks[node].host);
    if (j->array_job_id) {
        vari(vars, "PHX_ARRAY_JOB_ID", (long long)j->array_job_id);
        vari(vars, "PHX_ARRAY_TASK_ID", (long long)j->array_task_id);
        array_env(j, vars);
    }
    if (node == 0) {
        vari(vars, "PHX_PROCID", 0);
        vari(vars, "PHX_LOCALID", 0);
        mpirun_env(b, j, vars);
        if (b->slurm_env) {
            slurm_names(vars);
            /* cores of every node, compressed as PHX_TASKS_PER_NODE */
            uint32_t *cpus = calloc(j->ntasks, sizeof(*cpus));
            for (size_t i = 0; cpus && i < j->ntasks; i++)
                cpus[i] = j->tasks[i].cpus;
            char *list = cpus ? phx_tasks_per_node_format(cpus, j->ntasks) : NULL;
            var(vars, "SLURM_JOB_CPUS_PER_NODE", list);
            free(list);
            free(cpus);
        }
    }
    return vars;
}

static int out_paths(bjob_t *j)
{
    phx_outpath_ctx_t ctx = {.job_id = j->id,
                             .array_job_id = j->array_job_id,
                             .array_task_id = j->array_task_id,
                             .job_name = j->spec.job_name,
                             .user = j->user,
                             .first_node = j->tasks[0].host,
                             .work_dir = j->spec.work_dir};
    char buf[PHX_OUTPATH_MAX];
    phx_error_t err;
    const char *out = j->spec.output;
    if (!out)
        out = j->array_job_id ? "phx-%A_%a.out" : "phx-%j.out";
    free(j->stdout_path);
    free(j->stderr_path);
    j->stdout_path = j->stderr_path = NULL;
    if (phx_outpath_expand(out, &ctx, buf, sizeof(buf), &err) < 0)
        return -1;
    j->stdout_path = strdup(buf);
    if (j->spec.error) {
        if (phx_outpath_expand(j->spec.error, &ctx, buf, sizeof(buf), &err) < 0)
            return -1;
        j->stderr_path = strdup(buf);
    }
    return j->stdout_path ? 0 : -1;
}

json_t *batchd_launch_ops(batchd_t *b, bjob_t *j, int *const *cores,
                          const uint32_t *ncores)
{
    if (out_paths(j) < 0)
        return NULL;
    json_t *tis = json_array();
    int64_t tl = j->spec.time_limit;
    phx_jobsig_t warn = {0};
    if (tl > 0 && j->spec.signal && phx_jobsig_parse(j->spec.signal, &warn, NULL) < 0)
        warn.signal = 0; /* checked at submission */
    for (size_t i = 0; tis && i < j->ntasks; i++) {
        const bj_task_t *t = &j->tasks[i];
        json_t *cl = json_array();
        for (uint32_t k = 0; k < ncores[i]; k++)
            json_array_append_new(cl, json_integer(cores[i][k]));
        json_t *env = job_env(b, j, i);
        json_t *cmd;
        if (i == 0) {
            json_t *args = json_pack("[s]", "phx-batch");
            size_t k;
            json_t *a;
            json_array_foreach(j->args, k, a) json_array_append(args, a);
            cmd = json_pack("{s:b, s:s, s:o, s:s, s:{s:o}}", "shell", 0, "value",
                            "phx-batch", "arguments", args, "user", j->user,
                            "environment", "variables", env);
        } else {
            cmd = json_pack("{s:b, s:s, s:s, s:{s:o}}", "shell", 1, "value",
                            "exec sleep 2147483647", "user", j->user, "environment",
                            "variables", env);
        }
        json_t *phx =
            i == 0 ? json_pack("{s:s, s:s, s:s, s:i, s:s}", "cwd", j->spec.work_dir,
                               "stdout", j->stdout_path, "stderr",
                               j->stderr_path ? j->stderr_path : j->stdout_path,
                               "kill_grace", b->kill_grace, "script", j->script)
                   : json_pack("{s:s, s:s, s:s, s:i}", "cwd", "/", "stdout",
                               "/dev/null", "stderr", "/dev/null", "kill_grace", 1);
        /* --signal: B: to the batch shell (the first task's program), else
         * to the steps' ranks on every node */
        if (phx && i == 0 && j->spec.open_mode &&
            strcasecmp(j->spec.open_mode, "append") == 0)
            json_object_set_new(phx, "append", json_true()); /* --open-mode */
        if (phx && warn.signal && (!warn.batch || i == 0))
            json_object_set_new(phx, "warn",
                                json_pack("{s:i, s:i, s:s}", "signal", warn.signal,
                                          "before", warn.before, "to",
                                          warn.batch ? "main" : "steps"));
        char name[64];
        snprintf(name, sizeof(name), "job %" PRIu64 "%s", j->id,
                 i == 0 ? " batch" : "");
        json_t *ti = json_pack(
            "{s:s, s:{s:s}, s:{s:s}, s:[{s:s, s:s, s:{s:i}}, {s:s, s:s, s:{s:I}}], "
            "s:o, s:o, s:o}",
            "name", name, "task_id", "value", t->id, "agent_id", "value", t->agent_id,
            "resources", "name", "cpus", "type", "SCALAR", "scalar", "value",
            (int)t->cpus, "name", "mem", "type", "SCALAR", "scalar", "value",
            (json_int_t)t->mem, "cores", cl, "command", cmd, "phx", phx);
        if (ti && t->gpus)
            add_gpus(ti, t->gpus);
        if (ti && tl > 0)
            json_object_set_new(
                ti, "max_completion_time",
                json_pack("{s:I}", "nanoseconds", (json_int_t)tl * 1000000000LL));
        if (!ti || json_array_append_new(tis, ti) < 0) {
            json_decref(tis);
            return NULL;
        }
    }
    return json_pack("[{s:s, s:{s:o}}]", "type", "LAUNCH", "launch", "task_infos", tis);
}
