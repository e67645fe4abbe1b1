#include "daemons/batchd/depend.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    phx_dep_type_t type;
} dep_types[] = {
    {"after", PHX_DEP_AFTER},         {"afterany", PHX_DEP_AFTERANY},
    {"afterok", PHX_DEP_AFTEROK},     {"afternotok", PHX_DEP_AFTERNOTOK},
    {"singleton", PHX_DEP_SINGLETON},
};

/* Recognised by Slurm, refused here with a reason rather than "unknown". */
static const char *const unsupported[] = {"aftercorr", "afterburstbuffer", "expand"};

#define NUM_MAX 1000000000000000ULL

static int read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > NUM_MAX)
            return -1;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

static int push(phx_depend_t *d, size_t *cap, const phx_dep_term_t *t)
{
    if (d->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        phx_dep_term_t *v = realloc(d->terms, ncap * sizeof(*v));
        if (!v)
            return -1;
        d->terms = v;
        *cap = ncap;
    }
    d->terms[d->count++] = *t;
    return 0;
}

/* One "type[:id[_task][+min]...]" element, up to the next ',' or '?'. */
static int parse_element(const char **pp, phx_depend_t *d, size_t *cap,
                         phx_error_t *err)
{
    const char *p = *pp;
    size_t nlen = strspn(p, "abcdefghijklmnopqrstuvwxyz");
    int type = -1;
    for (size_t i = 0; i < sizeof(dep_types) / sizeof(dep_types[0]); i++)
        if (strlen(dep_types[i].name) == nlen && !strncmp(p, dep_types[i].name, nlen))
            type = (int)dep_types[i].type;
    if (type < 0) {
        for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
            if (strlen(unsupported[i]) == nlen && !strncmp(p, unsupported[i], nlen))
                return phx_error_set(err, "dependency type \"%s\" is not supported",
                                     unsupported[i]);
        return phx_error_set(err,
                             "unknown dependency type \"%.*s\" (after, afterany, "
                             "afterok, afternotok, singleton)",
                             (int)(nlen ? nlen : strcspn(p, ":,?")), p);
    }
    p += nlen;
    phx_dep_term_t t = {.type = (phx_dep_type_t)type, .array_task = -1};
    if (type == PHX_DEP_SINGLETON) {
        if (*p == ':')
            return phx_error_set(err, "singleton takes no job ids");
        if (push(d, cap, &t) < 0)
            return phx_error_set(err, "out of memory");
        *pp = p;
        return 0;
    }
    if (*p != ':')
        return phx_error_set(err, "dependency \"%.*s\" needs at least one job id",
                             (int)nlen, *pp);
    while (*p == ':') {
        p++;
        uint64_t id, task;
        if (read_u64(&p, &id) < 0 || id == 0)
            return phx_error_set(err, "invalid job id in dependency");
        t.job_id = id;
        t.array_task = -1;
        t.delay = 0;
        if (*p == '_') {
            p++;
            if (read_u64(&p, &task) < 0 || task > UINT32_MAX)
                return phx_error_set(err, "invalid array task in dependency");
            t.array_task = (int64_t)task;
        }
        if (*p == '+') {
            uint64_t min;
            p++;
            if (type != PHX_DEP_AFTER)
                return phx_error_set(err, "only \"after\" takes a +minutes delay");
            if (read_u64(&p, &min) < 0 || min > 525600)
                return phx_error_set(err, "invalid delay in dependency");
            t.delay = (int64_t)min * 60;
        }
        if (push(d, cap, &t) < 0)
            return phx_error_set(err, "out of memory");
    }
    *pp = p;
    return 0;
}

int phx_depend_parse(const char *text, phx_depend_t *out, phx_error_t *err)
{
    phx_depend_t d = {0};
    size_t cap = 0;
    const char *p = text ? text : "";
    char sep = 0;
    if (!*p) {
        phx_error_set(err, "empty dependency");
        goto fail;
    }
    for (;;) {
        if (parse_element(&p, &d, &cap, err) < 0)
            goto fail;
        if (*p == '\0')
            break;
        if (*p != ',' && *p != '?') {
            phx_error_set(err, "unexpected \"%c\"", *p);
            goto fail;
        }
        if (sep && *p != sep) {
            phx_error_set(err, "',' (all of) and '?' (any of) cannot be mixed");
            goto fail;
        }
        sep = *p++;
    }
    d.any = sep == '?';
    *out = d;
    return 0;
fail:
    free(d.terms);
    return phx_error_prefix(err, "invalid dependency \"%s\"", text ? text : "");
}

void phx_depend_clear(phx_depend_t *dep)
{
    if (!dep)
        return;
    free(dep->terms);
    dep->terms = NULL;
    dep->count = 0;
    dep->any = false;
}

static const char *type_name(phx_dep_type_t type)
{
    for (size_t i = 0; i < sizeof(dep_types) / sizeof(dep_types[0]); i++)
        if (dep_types[i].type == type)
            return dep_types[i].name;
    return "?";
}

char *phx_depend_format(const phx_depend_t *dep)
{
    size_t cap = dep->count * 64 + 16, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < dep->count; i++) {
        const phx_dep_term_t *t = &dep->terms[i];
        /* Consecutive terms of one type share a "type:" prefix. */
        if (i == 0 || dep->any || dep->terms[i - 1].type != t->type ||
            t->type == PHX_DEP_SINGLETON)
            len +=
                (size_t)snprintf(s + len, cap - len, "%s%s",
                                 i ? (dep->any ? "?" : ",") : "", type_name(t->type));
        if (t->type == PHX_DEP_SINGLETON)
            continue;
        len += (size_t)snprintf(s + len, cap - len, ":%" PRIu64, t->job_id);
        if (t->array_task >= 0)
            len += (size_t)snprintf(s + len, cap - len, "_%" PRId64, t->array_task);
        if (t->delay)
            len += (size_t)snprintf(s + len, cap - len, "+%" PRId64, t->delay / 60);
    }
    return s;
}

int phx_depend_check(const phx_depend_t *dep, const phx_dep_env_t *env,
                     phx_error_t *err)
{
    for (size_t i = 0; i < dep->count; i++) {
        const phx_dep_term_t *t = &dep->terms[i];
        phx_dep_job_t job;
        if (t->type == PHX_DEP_SINGLETON)
            continue;
        if (env->lookup(env->arg, t->job_id, t->array_task, &job) < 0) {
            if (t->array_task >= 0)
                return phx_error_set(err,
                                     "dependency on job %" PRIu64 "_%" PRId64
                                     " which does not exist",
                                     t->job_id, t->array_task);
            return phx_error_set(
                err, "dependency on job %" PRIu64 " which does not exist", t->job_id);
        }
    }
    return 0;
}

static phx_dep_result_t eval_term(const phx_dep_term_t *t, const phx_dep_env_t *env,
                                  int64_t now)
{
    if (t->type == PHX_DEP_SINGLETON)
        return !env->singleton_clear || env->singleton_clear(env->arg)
                   ? PHX_DEP_SATISFIED
                   : PHX_DEP_WAITING;
    phx_dep_job_t job;
    if (env->lookup(env->arg, t->job_id, t->array_task, &job) < 0)
        return PHX_DEP_NEVER;
    bool final = phx_job_state_is_final(job.state);
    bool ok = job.state == PHX_JOB_COMPLETED;
    switch (t->type) {
    case PHX_DEP_AFTER:
        if (job.state == PHX_JOB_PENDING)
            return PHX_DEP_WAITING;
        if (job.start_time >= 0 && now < job.start_time + t->delay)
            return PHX_DEP_WAITING;
        return PHX_DEP_SATISFIED;
    case PHX_DEP_AFTERANY: return final ? PHX_DEP_SATISFIED : PHX_DEP_WAITING;
    case PHX_DEP_AFTEROK:
        return !final ? PHX_DEP_WAITING : ok ? PHX_DEP_SATISFIED : PHX_DEP_NEVER;
    case PHX_DEP_AFTERNOTOK:
        return !final ? PHX_DEP_WAITING : ok ? PHX_DEP_NEVER : PHX_DEP_SATISFIED;
    case PHX_DEP_SINGLETON: break;
    }
    return PHX_DEP_NEVER;
}

phx_dep_result_t phx_depend_eval(const phx_depend_t *dep, const phx_dep_env_t *env,
                                 int64_t now)
{
    size_t satisfied = 0, never = 0;
    if (dep->count == 0)
        return PHX_DEP_SATISFIED;
    for (size_t i = 0; i < dep->count; i++) {
        switch (eval_term(&dep->terms[i], env, now)) {
        case PHX_DEP_SATISFIED: satisfied++; break;
        case PHX_DEP_NEVER: never++; break;
        case PHX_DEP_WAITING: break;
        }
    }
    if (dep->any) {
        if (satisfied)
            return PHX_DEP_SATISFIED;
        return never == dep->count && dep->count ? PHX_DEP_NEVER : PHX_DEP_WAITING;
    }
    if (never)
        return PHX_DEP_NEVER;
    return satisfied == dep->count ? PHX_DEP_SATISFIED : PHX_DEP_WAITING;
}
