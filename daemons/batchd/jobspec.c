#include "daemons/batchd/jobspec.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/array.h"
#include "daemons/batchd/depend.h"
#include "daemons/batchd/gpuspec.h"
#include "daemons/batchd/jobnodes.h"
#include "daemons/batchd/jobsig.h"
#include "daemons/batchd/outpath.h"
#include "lib/framework.h"
#include "lib/json.h"

/* ---- the field table: init, clear, copy, merge and JSON walk it ---- */

typedef enum ftype { F_STR, F_INT, F_TRI } ftype_t;

/* Fields of one group are replaced together by a merge. */
enum { G_NONE, G_NODES, G_MEM, G_EXCL, G_GPU };

static const struct field {
    const char *name;
    ftype_t type;
    size_t off;
    int group;
} fields[] = {
#define S(f)                                                                           \
    {                                                                                  \
#f, F_STR, offsetof(phx_jobspec_t, f), G_NONE                                  \
    }
#define I(f)                                                                           \
    {                                                                                  \
#f, F_INT, offsetof(phx_jobspec_t, f), G_NONE                                  \
    }
#define T(f)                                                                           \
    {                                                                                  \
#f, F_TRI, offsetof(phx_jobspec_t, f), G_NONE                                  \
    }
    S(job_name),
    S(account),
    S(partition),
    S(qos),
    S(comment),
    {"nodes_min", F_INT, offsetof(phx_jobspec_t, nodes_min), G_NODES},
    {"nodes_max", F_INT, offsetof(phx_jobspec_t, nodes_max), G_NODES},
    I(ntasks),
    I(ntasks_per_node),
    I(cpus_per_task),
    I(ntasks_per_socket),
    I(sockets_per_node),
    I(cores_per_socket),
    I(threads_per_core),
    {"gres", F_STR, offsetof(phx_jobspec_t, gres), G_GPU},
    {"gpus_per_node", F_STR, offsetof(phx_jobspec_t, gpus_per_node), G_GPU},
    {"gpus_per_task", F_STR, offsetof(phx_jobspec_t, gpus_per_task), G_GPU},
    {"gpus", F_STR, offsetof(phx_jobspec_t, gpus), G_GPU},
    {"mem_per_node", F_INT, offsetof(phx_jobspec_t, mem_per_node), G_MEM},
    {"mem_per_cpu", F_INT, offsetof(phx_jobspec_t, mem_per_cpu), G_MEM},
    I(time_limit),
    I(begin_time),
    I(nice),
    {"exclusive", F_TRI, offsetof(phx_jobspec_t, exclusive), G_EXCL},
    {"exclusive_mode", F_STR, offsetof(phx_jobspec_t, exclusive_mode), G_EXCL},
    T(requeue),
    T(wait),
    T(parsable),
    T(hold),
    S(hint),
    S(distribution),
    S(cpu_bind),
    S(nodelist),
    S(exclude),
    S(constraint),
    S(work_dir),
    S(output),
    S(error),
    S(input),
    S(open_mode),
    S(export_env),
    S(mail_type),
    S(mail_user),
    S(signal),
    S(array),
    S(dependency),
#undef S
#undef I
#undef T
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

#define STR(spec, f) ((char **)((char *)(spec) + (f)->off))
#define INT(spec, f) ((int64_t *)((char *)(spec) + (f)->off))
#define TRI(spec, f) ((int *)((char *)(spec) + (f)->off))

static bool field_set(const phx_jobspec_t *spec, const struct field *f)
{
    switch (f->type) {
    case F_STR: return *STR(spec, f) != NULL;
    case F_INT: return *INT(spec, f) != PHX_UNSET;
    case F_TRI: return *TRI(spec, f) != -1;
    }
    return false;
}

void phx_jobspec_init(phx_jobspec_t *spec)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        switch (f->type) {
        case F_STR: *STR(spec, f) = NULL; break;
        case F_INT: *INT(spec, f) = PHX_UNSET; break;
        case F_TRI: *TRI(spec, f) = -1; break;
        }
    }
}

void phx_jobspec_clear(phx_jobspec_t *spec)
{
    if (!spec)
        return;
    int saved = errno;
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].type == F_STR)
            free(*STR(spec, &fields[i]));
    phx_jobspec_init(spec);
    errno = saved;
}

/* Copy one field from src into dst (dst's old string freed).  0 or -1. */
static int copy_field(phx_jobspec_t *dst, const phx_jobspec_t *src,
                      const struct field *f)
{
    switch (f->type) {
    case F_STR: {
        char *s = NULL;
        if (*STR(src, f) && !(s = strdup(*STR(src, f))))
            return -1;
        free(*STR(dst, f));
        *STR(dst, f) = s;
        break;
    }
    case F_INT: *INT(dst, f) = *INT(src, f); break;
    case F_TRI: *TRI(dst, f) = *TRI(src, f); break;
    }
    return 0;
}

int phx_jobspec_copy(phx_jobspec_t *dst, const phx_jobspec_t *src)
{
    phx_jobspec_init(dst);
    for (size_t i = 0; i < NFIELDS; i++)
        if (copy_field(dst, src, &fields[i]) < 0) {
            phx_jobspec_clear(dst);
            errno = ENOMEM;
            return -1;
        }
    return 0;
}

int phx_jobspec_merge(phx_jobspec_t *base, const phx_jobspec_t *over)
{
    /* Stage into a copy so that a failure leaves base untouched. */
    phx_jobspec_t out;
    if (phx_jobspec_copy(&out, base) < 0)
        return -1;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        bool take = field_set(over, f);
        for (size_t j = 0; !take && f->group != G_NONE && j < NFIELDS; j++)
            take = fields[j].group == f->group && field_set(over, &fields[j]);
        if (take && copy_field(&out, over, f) < 0) {
            phx_jobspec_clear(&out);
            errno = ENOMEM;
            return -1;
        }
    }
    phx_jobspec_clear(base);
    *base = out;
    return 0;
}

/* ---- JSON ---- */

json_t *phx_jobspec_to_json(const phx_jobspec_t *spec)
{
    json_t *obj = json_object();
    if (!obj)
        goto nomem;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        json_t *v = NULL;
        if (!field_set(spec, f))
            continue;
        switch (f->type) {
        case F_STR: v = json_string(*STR(spec, f)); break;
        case F_INT: v = json_integer((json_int_t)*INT(spec, f)); break;
        case F_TRI: v = json_boolean(*TRI(spec, f)); break;
        }
        if (!v || json_object_set_new(obj, f->name, v) < 0)
            goto nomem;
    }
    return obj;
nomem:
    json_decref(obj);
    errno = ENOMEM;
    return NULL;
}

int phx_jobspec_from_json(const json_t *obj, phx_jobspec_t *spec, phx_error_t *err)
{
    phx_jobspec_init(spec);
    if (!json_is_object(obj))
        return phx_error_set(err, "job spec is not a JSON object");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        size_t i;
        for (i = 0; i < NFIELDS; i++)
            if (!strcmp(fields[i].name, key))
                break;
        if (i == NFIELDS) {
            phx_error_set(err, "unknown job spec field \"%s\"", key);
            goto fail;
        }
        const struct field *f = &fields[i];
        if (json_is_null(value))
            continue;
        switch (f->type) {
        case F_STR: {
            const char *s;
            if (phx_json_str(obj, key, true, &s, err) < 0)
                goto fail;
            if (!(*STR(spec, f) = strdup(s))) {
                phx_error_set(err, "out of memory");
                goto fail;
            }
            break;
        }
        case F_INT: {
            long long v;
            if (phx_json_int(obj, key, true, -(1LL << 53), 1LL << 53, &v, err) < 0)
                goto fail;
            *INT(spec, f) = v;
            break;
        }
        case F_TRI: {
            bool b;
            if (phx_json_bool(obj, key, true, &b, err) < 0)
                goto fail;
            *TRI(spec, f) = b;
            break;
        }
        }
    }
    return 0;
fail:
    phx_jobspec_clear(spec);
    return -1;
}

/* ---- finalize ---- */

#define OF(f) offsetof(phx_jobspec_t, f)
#define NONE  ((size_t)-1)

/* Refuse: err gets the text, blame the fields (offsets, NONE for fewer) whose
 * values are at fault.  Returns -1. */
static int fault(phx_jobspec_blame_t *bl, size_t a, size_t b, size_t c,
                 phx_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int fault(phx_jobspec_blame_t *bl, size_t a, size_t b, size_t c,
                 phx_error_t *err, const char *fmt, ...)
{
    if (bl) {
        size_t f[3] = {a, b, c};
        bl->count = 0;
        for (int i = 0; i < 3; i++)
            if (f[i] != NONE)
                bl->field[bl->count++] = f[i];
    }
    va_list ap;
    va_start(ap, fmt);
    phx_error_vset(err, fmt, ap);
    va_end(ap);
    return -1;
}

static bool in_list(const char *word, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && !strncasecmp(word, *list, len))
            return true;
    return false;
}

/* Each comma-separated word of text is in list. */
static bool words_in(const char *text, const char *const *list)
{
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (!in_list(p, n, list))
            return false;
        if (!p[n])
            return true;
        p += n + 1;
    }
}

/* -m: nodes[:sockets]; nodes block|cyclic|*, sockets block|cyclic|*.  What
 * Slurm has beyond that is refused by name (placement would ignore it). */
static int check_distribution(const char *d, phx_jobspec_blame_t *bl, phx_error_t *err)
{
    static const char *const known_nodes[] = {"block", "cyclic", "*", NULL};
    static const char *const known_sockets[] = {"block", "cyclic", "*", NULL};
    static const char *const use =
        "use block, cyclic or * for nodes, then :block, :cyclic or :* for sockets";
    size_t comma = strcspn(d, ",");
    if (d[comma]) {
        const char *tail = d + comma + 1;
        if (in_list(tail, strlen(tail), (const char *const[]){"pack", "nopack", NULL}))
            return fault(bl, OF(distribution), NONE, NONE, err,
                         "distribution \"%s\": \",%s\" is not supported (%s)", d, tail,
                         use);
        goto invalid;
    }
    size_t n = strcspn(d, ":");
    if (n == 0)
        goto invalid;
    if (!in_list(d, n, known_nodes)) {
        if (in_list(d, n, (const char *const[]){"arbitrary", NULL}) ||
            !strncasecmp(d, "plane=", 6))
            return fault(bl, OF(distribution), NONE, NONE, err,
                         "distribution \"%s\": \"%.*s\" is not supported (%s)", d,
                         (int)n, d, use);
        goto invalid;
    }
    if (!d[n])
        return 0;
    const char *s = d + n + 1;
    size_t m = strcspn(s, ":");
    if (m == 0)
        goto invalid;
    if (!in_list(s, m, known_sockets)) {
        if (in_list(s, m, (const char *const[]){"fcyclic", NULL}))
            return fault(bl, OF(distribution), NONE, NONE, err,
                         "distribution \"%s\": \"fcyclic\" is not supported (%s)", d,
                         use);
        goto invalid;
    }
    if (s[m])
        return fault(bl, OF(distribution), NONE, NONE, err,
                     "distribution \"%s\": a core-level distribution (\"%s\") is not "
                     "supported (%s)",
                     d, s + m + 1, use);
    return 0;
invalid:
    return fault(bl, OF(distribution), NONE, NONE, err,
                 "invalid distribution \"%s\" (block|cyclic|*, then :block|cyclic|* "
                 "for sockets)",
                 d);
}

/* --cpu-bind: [verbose|quiet,]none|cores|sockets; Slurm's other policies
 * are refused by name (the launch binds tasks to their cores or nothing). */
static int check_cpu_bind(const char *b, phx_jobspec_blame_t *bl, phx_error_t *err)
{
    static const char *const policies[] = {"none", "no", "sockets", "cores", NULL};
    static const char *const quiet[] = {"verbose", "v", "quiet", "q", NULL};
    static const char *const other[] = {"threads",   "ldoms",     "rank",
                                        "rank_ldom", "map_cpu",   "mask_cpu",
                                        "map_ldom",  "mask_ldom", NULL};
    const char *p = b;
    int n_policies = 0;
    for (;;) {
        size_t n = strcspn(p, ",:");
        if (in_list(p, n, other))
            return fault(bl, OF(cpu_bind), NONE, NONE, err,
                         "cpu-bind \"%s\": \"%.*s\" is not supported (use none, cores "
                         "or sockets, optionally after \"verbose,\" or \"quiet,\")",
                         b, (int)n, p);
        if (p[n] == ':' || (!in_list(p, n, policies) && !in_list(p, n, quiet)))
            break;
        if (in_list(p, n, policies))
            n_policies++;
        if (!p[n]) {
            if (n_policies <= 1)
                return 0;
            break;
        }
        p += n + 1;
    }
    return fault(bl, OF(cpu_bind), NONE, NONE, err,
                 "invalid cpu-bind \"%s\" ([verbose|quiet,]none|cores|sockets)", b);
}

static bool check_export(const char *e)
{
    if (!strcasecmp(e, "ALL") || !strcasecmp(e, "NONE") || !strcasecmp(e, "NIL"))
        return true;
    const char *p = e;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t name = strcspn(p, "=,");
        if (name == 0 || (!isalpha((unsigned char)*p) && *p != '_'))
            return false;
        for (size_t i = 0; i < name; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '_')
                return false;
        if (!p[n])
            return true;
        p += n + 1;
    }
}

static int check_strings(const phx_jobspec_t *spec, phx_jobspec_blame_t *bl,
                         phx_error_t *err)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        const char *s = f->type == F_STR ? *STR(spec, f) : NULL;
        if (!s)
            continue;
        if (!*s)
            return fault(bl, f->off, NONE, NONE, err, "%s is empty", f->name);
        if (strlen(s) > 4096)
            return fault(bl, f->off, NONE, NONE, err, "%s is longer than 4096 bytes",
                         f->name);
        for (const char *p = s; *p; p++)
            if (iscntrl((unsigned char)*p))
                return fault(bl, f->off, NONE, NONE, err,
                             "%s contains a control character", f->name);
    }
    return 0;
}

/* Bounds on the numbers a user gave. */
static int check_ranges(const phx_jobspec_t *s, phx_jobspec_blame_t *bl,
                        phx_error_t *err)
{
    static const struct {
        const char *name;
        size_t off;
        int64_t min, max;
    } r[] = {
        {"nodes", OF(nodes_min), 1, 1000000},
        {"nodes", OF(nodes_max), 1, 1000000},
        {"ntasks", OF(ntasks), 1, 100000000},
        {"ntasks-per-node", OF(ntasks_per_node), 1, 100000},
        {"cpus-per-task", OF(cpus_per_task), 1, 100000},
        {"ntasks-per-socket", OF(ntasks_per_socket), 1, 100000},
        {"sockets-per-node", OF(sockets_per_node), 1, 1024},
        {"cores-per-socket", OF(cores_per_socket), 1, 100000},
        {"threads-per-core", OF(threads_per_core), 1, 1024},
        {"mem", OF(mem_per_node), 0, INT64_C(1) << 40},
        {"mem-per-cpu", OF(mem_per_cpu), 1, INT64_C(1) << 40},
        {"time", OF(time_limit), 0, PHX_TASK_TIME_LIMIT_MAX}, /* the agents' */
        {"begin", OF(begin_time), 0, INT64_C(1) << 40},
        {"nice", OF(nice), PHX_NICE_MIN, PHX_NICE_MAX},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        int64_t v = *(const int64_t *)((const char *)s + r[i].off);
        if (v == PHX_UNSET)
            continue;
        if (v < r[i].min || v > r[i].max)
            return fault(bl, r[i].off, NONE, NONE, err,
                         "%s %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")",
                         r[i].name, v, r[i].min, r[i].max);
    }
    return 0;
}

/* Nodes and tasks: fill the defaults the way sbatch does, then check. */
static int fill_shape(phx_jobspec_t *s, const phx_jobspec_limits_t *lim,
                      phx_jobspec_blame_t *bl, phx_error_t *err)
{
    if (s->nodes_min == PHX_UNSET) {
        if (s->ntasks_per_node != PHX_UNSET && s->ntasks != PHX_UNSET) {
            s->nodes_min = (s->ntasks + s->ntasks_per_node - 1) / s->ntasks_per_node;
        } else {
            /* -n alone: as few nodes as hold the tasks, at most one per task */
            s->nodes_min = 1;
            if (s->ntasks != PHX_UNSET)
                s->nodes_max = s->ntasks;
        }
    }
    if (s->nodes_max == PHX_UNSET || s->nodes_max < s->nodes_min) {
        if (s->nodes_max != PHX_UNSET)
            return fault(bl, OF(nodes_max), OF(nodes_min), NONE, err,
                         "nodes: maximum %" PRId64 " below minimum %" PRId64,
                         s->nodes_max, s->nodes_min);
        s->nodes_max = s->nodes_min;
    }
    if (s->ntasks == PHX_UNSET)
        s->ntasks =
            s->nodes_min * (s->ntasks_per_node != PHX_UNSET ? s->ntasks_per_node : 1);
    if (s->cpus_per_task == PHX_UNSET)
        s->cpus_per_task = 1;
    if (s->ntasks < s->nodes_min)
        return fault(bl, OF(ntasks), OF(nodes_min), NONE, err,
                     "ntasks %" PRId64 " is less than the minimum node count %" PRId64,
                     s->ntasks, s->nodes_min);
    if (s->ntasks_per_node != PHX_UNSET &&
        s->ntasks > s->ntasks_per_node * s->nodes_max)
        return fault(bl, OF(ntasks), OF(ntasks_per_node), OF(nodes_max), err,
                     "ntasks %" PRId64 " exceeds ntasks-per-node %" PRId64
                     " x nodes %" PRId64,
                     s->ntasks, s->ntasks_per_node, s->nodes_max);
    if (s->ntasks_per_socket != PHX_UNSET && s->ntasks_per_node != PHX_UNSET &&
        s->ntasks_per_socket > s->ntasks_per_node)
        return fault(bl, OF(ntasks_per_socket), OF(ntasks_per_node), NONE, err,
                     "ntasks-per-socket %" PRId64 " exceeds ntasks-per-node %" PRId64,
                     s->ntasks_per_socket, s->ntasks_per_node);
    if (s->ntasks_per_socket != PHX_UNSET && s->sockets_per_node != PHX_UNSET &&
        s->ntasks_per_node != PHX_UNSET &&
        s->ntasks_per_node > s->ntasks_per_socket * s->sockets_per_node)
        return fault(bl, OF(ntasks_per_node), OF(ntasks_per_socket),
                     OF(sockets_per_node), err,
                     "ntasks-per-node %" PRId64 " exceeds ntasks-per-socket %" PRId64
                     " x sockets-per-node %" PRId64,
                     s->ntasks_per_node, s->ntasks_per_socket, s->sockets_per_node);
    if (lim && lim->max_nodes > 0 && s->nodes_min > lim->max_nodes)
        return fault(bl, OF(nodes_min), NONE, NONE, err,
                     "%" PRId64 " nodes requested, at most %" PRId64 " allowed",
                     s->nodes_min, lim->max_nodes);
    if (lim && lim->max_tasks > 0 && s->ntasks > lim->max_tasks)
        return fault(bl, OF(ntasks), NONE, NONE, err,
                     "%" PRId64 " tasks requested, at most %" PRId64 " allowed",
                     s->ntasks, lim->max_tasks);
    return 0;
}

static int check_hint(const phx_jobspec_t *s, phx_jobspec_blame_t *bl, phx_error_t *err)
{
    static const char *const hints[] = {"compute_bound", "nomultithread",
                                        "memory_bound", NULL};
    static const char *const refused[] = {"multithread", NULL};
    if (!s->hint)
        return 0;
    if (in_list(s->hint, strlen(s->hint), refused))
        return fault(bl, OF(hint), NONE, NONE, err,
                     "--hint=%s is not supported (use --hint=compute_bound, "
                     "--hint=nomultithread or --hint=memory_bound, or give the shape "
                     "with -B)",
                     s->hint);
    if (!in_list(s->hint, strlen(s->hint), hints))
        return fault(bl, OF(hint), NONE, NONE, err,
                     "invalid hint \"%s\" (compute_bound, nomultithread, memory_bound)",
                     s->hint);
    size_t shape[] = {OF(sockets_per_node), OF(cores_per_socket), OF(threads_per_core)};
    for (int i = 0; i < 3; i++)
        if (*(const int64_t *)((const char *)s + shape[i]) != PHX_UNSET)
            return fault(bl, OF(hint), shape[i], NONE, err,
                         "--hint cannot be combined with -B or "
                         "--sockets-per-node/--cores-per-socket");
    if (s->cpu_bind && strcasecmp(s->cpu_bind, "verbose") &&
        strcasecmp(s->cpu_bind, "v"))
        return fault(bl, OF(hint), OF(cpu_bind), NONE, err,
                     "--hint cannot be combined with --cpu-bind");
    return 0;
}

bool phx_jobspec_mail_user_valid(const char *u)
{
    if (!u || !*u || strlen(u) > 1024)
        return false;
    for (const char *p = u; *p;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789._%+-@");
        if (n == 0 || *p == '-' || (p[n] && p[n] != ',') || (p[n] == ',' && !p[n + 1]))
            return false;
        p += n + (p[n] == ',');
    }
    return true;
}

static int check_words(const phx_jobspec_t *s, phx_jobspec_blame_t *bl,
                       phx_error_t *err)
{
    static const char *const excl[] = {"user", "mcs", "topo", NULL};
    static const char *const mail[] = {
        "NONE",          "BEGIN",          "END",         "FAIL",       "REQUEUE",
        "ALL",           "INVALID_DEPEND", "STAGE_OUT",   "TIME_LIMIT", "TIME_LIMIT_90",
        "TIME_LIMIT_80", "TIME_LIMIT_50",  "ARRAY_TASKS", NULL};
    if (check_hint(s, bl, err) < 0)
        return -1;
    if (s->distribution && check_distribution(s->distribution, bl, err) < 0)
        return -1;
    if (s->cpu_bind && check_cpu_bind(s->cpu_bind, bl, err) < 0)
        return -1;
    if (s->open_mode && strcasecmp(s->open_mode, "truncate") &&
        strcasecmp(s->open_mode, "append"))
        return fault(bl, OF(open_mode), NONE, NONE, err,
                     "invalid open-mode \"%s\" (append or truncate)", s->open_mode);
    if (s->exclusive_mode &&
        !in_list(s->exclusive_mode, strlen(s->exclusive_mode), excl))
        return fault(bl, OF(exclusive_mode), NONE, NONE, err,
                     "invalid exclusive mode \"%s\" (user, mcs, topo)",
                     s->exclusive_mode);
    if (s->mail_type && !words_in(s->mail_type, mail))
        return fault(bl, OF(mail_type), NONE, NONE, err, "invalid mail-type \"%s\"",
                     s->mail_type);
    if (s->mail_user && !phx_jobspec_mail_user_valid(s->mail_user))
        return fault(bl, OF(mail_user), NONE, NONE, err,
                     "invalid mail-user \"%s\" (addresses of letters, digits and "
                     "._%%+-@, comma-separated, none starting with -)",
                     s->mail_user);
    if (s->export_env && !check_export(s->export_env))
        return fault(bl, OF(export_env), NONE, NONE, err,
                     "invalid export \"%s\" (ALL, NONE or NAME[=value],...)",
                     s->export_env);
    const char *pats[] = {s->output, s->error, s->input};
    const char *names[] = {"output", "error", "input"};
    size_t offs[] = {OF(output), OF(error), OF(input)};
    for (int i = 0; i < 3; i++)
        if (pats[i] && phx_outpath_check(pats[i], err) < 0) {
            fault(bl, offs[i], NONE, NONE, NULL, "-");
            return phx_error_prefix(err, "%s", names[i]);
        }
    return 0;
}

static int set_str(char **field, const char *value, phx_error_t *err)
{
    char *s = strdup(value);
    if (!s)
        return phx_error_set(err, "out of memory");
    free(*field);
    *field = s;
    return 0;
}

static int canon_array_dep(phx_jobspec_t *s, const phx_jobspec_limits_t *lim,
                           phx_jobspec_blame_t *bl, phx_error_t *err)
{
    if (s->array) {
        phx_array_t a;
        fault(bl, OF(array), NONE, NONE, NULL, "-");
        if (phx_array_parse(s->array, lim ? lim->max_array_index : 1000, &a, err) < 0)
            return -1;
        if (lim && lim->max_array_tasks && a.count > lim->max_array_tasks) {
            size_t n = a.count;
            phx_array_clear(&a);
            return phx_error_set(err, "array of %zu tasks, at most %" PRIu32 " allowed",
                                 n, lim->max_array_tasks);
        }
        char *text = phx_array_format(&a);
        phx_array_clear(&a);
        if (!text)
            return phx_error_set(err, "out of memory");
        free(s->array);
        s->array = text;
    }
    if (s->signal) {
        phx_jobsig_t js;
        fault(bl, OF(signal), NONE, NONE, NULL, "-");
        if (phx_jobsig_parse(s->signal, &js, err) < 0)
            return -1;
        char *text = phx_jobsig_format(&js);
        if (!text)
            return phx_error_set(err, "out of memory");
        free(s->signal);
        s->signal = text;
    }
    if (s->dependency) {
        phx_depend_t d;
        fault(bl, OF(dependency), NONE, NONE, NULL, "-");
        if (phx_depend_parse(s->dependency, &d, err) < 0)
            return -1;
        char *text = phx_depend_format(&d);
        phx_depend_clear(&d);
        if (!text)
            return phx_error_set(err, "out of memory");
        free(s->dependency);
        s->dependency = text;
    }
    if (bl)
        bl->count = 0;
    return 0;
}

int phx_jobspec_finalize_blame(phx_jobspec_t *s, const phx_jobspec_defaults_t *def,
                               const phx_jobspec_limits_t *lim, phx_jobspec_blame_t *bl,
                               phx_error_t *err)
{
    if (bl)
        bl->count = 0;
    if (check_strings(s, bl, err) < 0 || check_ranges(s, bl, err) < 0)
        return -1;
    if (s->mem_per_node != PHX_UNSET && s->mem_per_cpu != PHX_UNSET)
        return fault(bl, OF(mem_per_node), OF(mem_per_cpu), NONE, err,
                     "--mem and --mem-per-cpu are mutually exclusive");
    if (s->exclusive_mode && s->exclusive != 1)
        return fault(bl, OF(exclusive_mode), NONE, NONE, err,
                     "exclusive mode \"%s\" without --exclusive", s->exclusive_mode);
    size_t at;
    if (phx_jobnodes_finalize(s, &at, err) < 0)
        return fault(bl, at, NONE, NONE, NULL, "-");
    if (fill_shape(s, lim, bl, err) < 0 || check_words(s, bl, err) < 0 ||
        canon_array_dep(s, lim, bl, err) < 0)
        return -1;
    if (phx_gpuspec_finalize(s, &at, err) < 0)
        return fault(bl, at, NONE, NONE, NULL, "-");
    if (!s->job_name &&
        set_str(&s->job_name, def && def->job_name ? def->job_name : "phx", err) < 0)
        return -1;
    if (def && def->work_dir) {
        if (!s->work_dir) {
            if (set_str(&s->work_dir, def->work_dir, err) < 0)
                return -1;
        } else if (s->work_dir[0] != '/') {
            char *joined;
            if (asprintf(&joined, "%s/%s", def->work_dir, s->work_dir) < 0)
                return phx_error_set(err, "out of memory");
            free(s->work_dir);
            s->work_dir = joined;
        }
    }
    if (!s->output &&
        set_str(&s->output, s->array ? "phx-%A_%a.out" : "phx-%j.out", err) < 0)
        return -1;
    if (phx_outpath_check_fits(s->output, s->job_name, s->work_dir, err) < 0)
        return fault(bl, OF(output), OF(work_dir), NONE, NULL, "-");
    if (s->error && phx_outpath_check_fits(s->error, s->job_name, s->work_dir, err) < 0)
        return fault(bl, OF(error), OF(work_dir), NONE, NULL, "-");
    if (s->time_limit == PHX_UNSET && def)
        s->time_limit = def->time_limit;
    if (s->exclusive == -1)
        s->exclusive = 0;
    return 0;
}

int phx_jobspec_finalize(phx_jobspec_t *s, const phx_jobspec_defaults_t *def,
                         const phx_jobspec_limits_t *lim, phx_error_t *err)
{
    return phx_jobspec_finalize_blame(s, def, lim, NULL, err);
}

int64_t phx_jobspec_cpus(const phx_jobspec_t *spec)
{
    return spec->ntasks * spec->cpus_per_task;
}
