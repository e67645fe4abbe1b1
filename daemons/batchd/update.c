/* scontrol update's fields and rules (update.h); pure: no clock, no daemon
 * state.  A value is read by the sbatch option of the field (TimeLimit as
 * --time, NumNodes as --nodes...), so it takes the same forms and is
 * refused with the same words; the new spec is finalized as a submission's
 * is, so what submission refuses an update refuses. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/script.h"
#include "daemons/batchd/timefmt.h"
#include "daemons/batchd/update.h"

#define UOF(f) offsetof(phx_jobspec_t, f)
#define NO_STR SIZE_MAX

static const struct upd_key {
    const char *name, *alias;
    const char *option; /* the sbatch option that reads the value */
    size_t str;         /* a string field that "KEY=" clears, or NO_STR */
    bool running;       /* may change while the job runs */
} keys[BATCHD_UPD_COUNT] = {
    [BATCHD_UPD_TIME_LIMIT] = {"TimeLimit", NULL, "time", NO_STR, true},
    [BATCHD_UPD_JOB_NAME] = {"JobName", "Name", "job-name", NO_STR, true},
    [BATCHD_UPD_PARTITION] = {"Partition", NULL, "partition", NO_STR, false},
    [BATCHD_UPD_NUM_NODES] = {"NumNodes", NULL, "nodes", NO_STR, false},
    [BATCHD_UPD_NUM_TASKS] = {"NumTasks", NULL, "ntasks", NO_STR, false},
    [BATCHD_UPD_MEM_NODE] = {"MinMemoryNode", NULL, "mem", NO_STR, false},
    [BATCHD_UPD_MEM_CPU] = {"MinMemoryCPU", NULL, "mem-per-cpu", NO_STR, false},
    [BATCHD_UPD_DEPENDENCY] = {"Dependency", NULL, "dependency", UOF(dependency),
                               false},
    [BATCHD_UPD_NICE] = {"Nice", NULL, "nice", NO_STR, false},
    [BATCHD_UPD_ACCOUNT] = {"Account", NULL, "account", NO_STR, false},
    [BATCHD_UPD_EXCLUDE] = {"ExcNodeList", NULL, "exclude", UOF(exclude), false},
    [BATCHD_UPD_NODELIST] = {"ReqNodeList", "NodeList", "nodelist", UOF(nodelist),
                             false},
    [BATCHD_UPD_FEATURES] = {"Features", NULL, "constraint", UOF(constraint), false},
    [BATCHD_UPD_QOS] = {"QOS", NULL, "qos", UOF(qos), false},
    [BATCHD_UPD_COMMENT] = {"Comment", NULL, "comment", UOF(comment), true},
};

const char *batchd_update_name(batchd_upd_field_t f)
{
    return f < BATCHD_UPD_COUNT ? keys[f].name : "?";
}

/* The names of every field, "TimeLimit, JobName, ...". */
static void key_names(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < BATCHD_UPD_COUNT && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", keys[i].name);
}

static int key_of(const char *k, size_t len)
{
    for (int i = 0; i < BATCHD_UPD_COUNT; i++)
        if ((strlen(keys[i].name) == len && strncasecmp(k, keys[i].name, len) == 0) ||
            (keys[i].alias && strlen(keys[i].alias) == len &&
             strncasecmp(k, keys[i].alias, len) == 0))
            return i;
    return -1;
}

void batchd_update_clear(batchd_update_t *u)
{
    if (!u)
        return;
    phx_jobspec_clear(&u->delta);
    u->given = u->cleared = 0;
}

/* One "KEY=VALUE" into u. */
static int parse_one(const char *text, batchd_update_t *u, phx_error_t *err)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text)
        return phx_error_set(err, "\"%.64s\" is not KEY=VALUE", text);
    size_t klen = (size_t)(eq - text);
    int k = key_of(text, klen);
    if (k < 0) {
        char names[320];
        key_names(names, sizeof(names));
        return phx_error_set(err, "field %.*s is not supported (the fields are: %s)",
                             (int)(klen < 64 ? klen : 64), text, names);
    }
    const struct upd_key *key = &keys[k];
    if (u->given & (1u << k))
        return phx_error_set(err, "field %s is given twice", key->name);
    u->given |= 1u << k;
    const char *val = eq + 1;
    if (!*val) {
        if (key->str == NO_STR)
            return phx_error_set(err, "%s needs a value", key->name);
        u->cleared |= 1u << k;
        return 0;
    }
    char opt[4160];
    if (snprintf(opt, sizeof(opt), "--%s=%s", key->option, val) >= (int)sizeof(opt))
        return phx_error_set(err, "%s: value too long", key->name);
    char *argv[] = {opt, NULL};
    phx_jobspec_t one;
    phx_script_opts_t o = {.filename = "update"};
    int next;
    phx_error_t why;
    if (phx_script_parse_argv(1, argv, &o, &one, &next, &why) < 0)
        return phx_error_set(err, "%s=%.200s: %s", key->name, val, why.text);
    int rc = phx_jobspec_merge(&u->delta, &one);
    phx_jobspec_clear(&one);
    return rc < 0 ? phx_error_set(err, "out of memory") : 0;
}

int batchd_update_parse(const char *const *texts, size_t n, batchd_update_t *u,
                        phx_error_t *err)
{
    phx_jobspec_init(&u->delta);
    u->given = u->cleared = 0;
    if (n == 0)
        return phx_error_set(err, "no field to change (KEY=VALUE)");
    if (n > BATCHD_UPDATE_MAX)
        return phx_error_set(err, "too many fields (at most %d)", BATCHD_UPDATE_MAX);
    for (size_t i = 0; i < n; i++)
        if (parse_one(texts[i], u, err) < 0) {
            batchd_update_clear(u);
            return -1;
        }
    return 0;
}

static bool given(const batchd_update_t *u, batchd_upd_field_t f)
{
    return u->given & (1u << f);
}

/* Who may change what, when (before the values are looked at). */
static int check_state(phx_job_state_t state, const batchd_update_t *u,
                       phx_error_t *err)
{
    if (state != PHX_JOB_PENDING && state != PHX_JOB_RUNNING) {
        errno = EBUSY;
        return phx_error_set(err, "the job has ended (%s): it cannot be changed",
                             phx_job_state_name(state));
    }
    for (int i = 0; state == PHX_JOB_RUNNING && i < BATCHD_UPD_COUNT; i++)
        if (given(u, i) && !keys[i].running) {
            errno = EBUSY;
            return phx_error_set(
                err,
                "field %s can only be changed while the job is pending "
                "(it is RUNNING)",
                keys[i].name);
        }
    return 0;
}

static int check_rules(const phx_jobspec_t *old, const phx_jobspec_t *s,
                       phx_job_state_t state, bool oper, const batchd_update_t *u,
                       phx_error_t *err)
{
    char was[32], now[32];
    if (given(u, BATCHD_UPD_TIME_LIMIT) && state == PHX_JOB_RUNNING &&
        s->time_limit != old->time_limit &&
        (s->time_limit == 0 ||
         (old->time_limit > 0 && s->time_limit > old->time_limit))) {
        phx_time_format(old->time_limit, was, sizeof(was));
        phx_time_format(s->time_limit, now, sizeof(now));
        errno = EPERM;
        return phx_error_set(err,
                             "TimeLimit=%s: a running job's time limit can only be "
                             "lowered (it is %s; its nodes enforce the limit it "
                             "started with)",
                             now, was);
    }
    /* as Slurm: only an operator raises a limit (else an operator's cut
     * would be undone by the owner) */
    if (given(u, BATCHD_UPD_TIME_LIMIT) && !oper && s->time_limit != old->time_limit &&
        old->time_limit != 0 &&
        (s->time_limit == 0 ||
         (old->time_limit > 0 && s->time_limit > old->time_limit))) {
        phx_time_format(old->time_limit, was, sizeof(was));
        phx_time_format(s->time_limit, now, sizeof(now));
        errno = EPERM;
        return phx_error_set(err,
                             "TimeLimit=%s: only an operator may raise a time limit "
                             "(it is %s)",
                             now, was);
    }
    int64_t old_nice = old->nice == PHX_UNSET ? 0 : old->nice;
    if (given(u, BATCHD_UPD_NICE) && !oper && s->nice < old_nice) {
        errno = EPERM;
        return phx_error_set(err,
                             "Nice=%" PRId64
                             ": only an operator may lower a job's nice "
                             "value (raise its priority); it is %" PRId64,
                             s->nice, old_nice);
    }
    return 0;
}

int batchd_update_spec(const phx_jobspec_t *old, phx_job_state_t state, bool oper,
                       const batchd_update_t *u, const phx_jobspec_limits_t *lim,
                       phx_jobspec_t *out, phx_error_t *err)
{
    phx_jobspec_init(out);
    if (check_state(state, u, err) < 0)
        return -1;
    if (phx_jobspec_copy(out, old) < 0)
        return phx_error_set(err, "out of memory");
    /* -N alone gave one task per node: NumNodes takes the tasks along */
    int64_t per = old->ntasks_per_node != PHX_UNSET ? old->ntasks_per_node : 1;
    if (given(u, BATCHD_UPD_NUM_NODES) && !given(u, BATCHD_UPD_NUM_TASKS) &&
        old->ntasks == old->nodes_min * per)
        out->ntasks = PHX_UNSET;
    if (phx_jobspec_merge(out, &u->delta) < 0) {
        phx_jobspec_clear(out);
        return phx_error_set(err, "out of memory");
    }
    for (int i = 0; i < BATCHD_UPD_COUNT; i++)
        if (u->cleared & (1u << i)) {
            char **f = (char **)((char *)out + keys[i].str);
            free(*f);
            *f = NULL;
        }
    phx_jobspec_defaults_t def = {.job_name = old->job_name,
                                  .work_dir = old->work_dir,
                                  .time_limit = old->time_limit};
    errno = EINVAL;
    if (phx_jobspec_finalize(out, &def, lim, err) < 0 ||
        check_rules(old, out, state, oper, u, err) < 0) {
        int e = errno;
        phx_jobspec_clear(out);
        errno = e;
        return -1;
    }
    return 0;
}

/* ---- what changed ---- */

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void put(char *buf, size_t len, const char *name, const char *val)
{
    size_t at = strlen(buf);
    if (at < len)
        snprintf(buf + at, len - at, "%s%s=%s", at ? " " : "", name, val);
}

static void put_int(char *buf, size_t len, const char *name, int64_t v)
{
    char t[32];
    snprintf(t, sizeof(t), "%" PRId64, v == PHX_UNSET ? 0 : v);
    put(buf, len, name, t);
}

void batchd_update_describe(const phx_jobspec_t *old, const phx_jobspec_t *s,
                            const batchd_update_t *u, char *buf, size_t len)
{
    char t[64];
    buf[0] = '\0';
    for (int i = 0; i < BATCHD_UPD_COUNT; i++) {
        if (!given(u, i))
            continue;
        const char *name = keys[i].name;
        switch ((batchd_upd_field_t)i) {
        case BATCHD_UPD_TIME_LIMIT:
            if (s->time_limit != old->time_limit) {
                phx_time_format(s->time_limit, t, sizeof(t));
                put(buf, len, name, t);
            }
            break;
        case BATCHD_UPD_NUM_NODES:
            if (s->nodes_min != old->nodes_min || s->nodes_max != old->nodes_max) {
                if (s->nodes_max != s->nodes_min)
                    snprintf(t, sizeof(t), "%" PRId64 "-%" PRId64, s->nodes_min,
                             s->nodes_max);
                else
                    snprintf(t, sizeof(t), "%" PRId64, s->nodes_min);
                put(buf, len, name, t);
            }
            break;
        case BATCHD_UPD_NUM_TASKS:
            if (s->ntasks != old->ntasks)
                put_int(buf, len, name, s->ntasks);
            break;
        case BATCHD_UPD_MEM_NODE:
        case BATCHD_UPD_MEM_CPU: {
            int64_t v = i == BATCHD_UPD_MEM_NODE ? s->mem_per_node : s->mem_per_cpu;
            int64_t w = i == BATCHD_UPD_MEM_NODE ? old->mem_per_node : old->mem_per_cpu;
            if (v != w) {
                phx_mem_format((uint64_t)v, t, sizeof(t));
                put(buf, len, name, t);
            }
            break;
        }
        case BATCHD_UPD_NICE:
            if (s->nice != old->nice)
                put_int(buf, len, name, s->nice);
            break;
        default: {
            static const size_t strs[BATCHD_UPD_COUNT] = {
                [BATCHD_UPD_JOB_NAME] = UOF(job_name),
                [BATCHD_UPD_PARTITION] = UOF(partition),
                [BATCHD_UPD_DEPENDENCY] = UOF(dependency),
                [BATCHD_UPD_ACCOUNT] = UOF(account),
                [BATCHD_UPD_EXCLUDE] = UOF(exclude),
                [BATCHD_UPD_NODELIST] = UOF(nodelist),
                [BATCHD_UPD_FEATURES] = UOF(constraint),
                [BATCHD_UPD_QOS] = UOF(qos),
                [BATCHD_UPD_COMMENT] = UOF(comment),
            };
            const char *v = *(char *const *)((const char *)s + strs[i]);
            const char *w = *(char *const *)((const char *)old + strs[i]);
            if (!same_str(v, w))
                put(buf, len, name, v ? v : "(null)");
        }
        }
    }
}
