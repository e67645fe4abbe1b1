#include "daemons/batchd/script.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/timefmt.h"

#define TOKENS_MAX     128
#define LINE_MAX_BYTES 8192

typedef struct parse_ctx {
    const phx_script_opts_t *opts;
    phx_jobspec_t *spec;
    phx_script_origin_t *origin; /* NULL: not recorded */
    int line;                    /* of the directive, or PHX_SCRIPT_CMDLINE */
} parse_ctx_t;

typedef int handler_f(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err);

typedef enum argkind { A_NONE, A_REQ, A_OPT } argkind_t;

#define FIELD(spec, off, type) ((type *)((char *)(spec) + (off)))

/* The field at offset off was set by the option being applied. */
static void mark(parse_ctx_t *c, size_t off)
{
    if (c->origin && off < sizeof(c->origin->line) / sizeof(c->origin->line[0]))
        c->origin->line[off] = c->line;
}

static int h_str(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    char *s = strdup(val);
    if (!s)
        return phx_error_set(err, "out of memory");
    free(*FIELD(c->spec, off, char *));
    *FIELD(c->spec, off, char *) = s;
    mark(c, off);
    return 0;
}

static int read_count(const char *val, int64_t *out, phx_error_t *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!isdigit((unsigned char)*val) || *end || errno || v < 1 || v > 100000000)
        return phx_error_set(err, "expected a positive integer, not \"%s\"", val);
    *out = v;
    return 0;
}

static int h_count(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    if (read_count(val, FIELD(c->spec, off, int64_t), err) < 0)
        return -1;
    mark(c, off);
    return 0;
}

static int h_nodes(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    (void)off;
    char lo[32];
    const char *dash = strchr(val, '-');
    int64_t min, max;
    snprintf(lo, sizeof(lo), "%.*s", dash ? (int)(dash - val) : (int)strlen(val), val);
    if (read_count(lo, &min, err) < 0 || (dash && read_count(dash + 1, &max, err) < 0))
        return phx_error_set(err, "expected nodes as min[-max], not \"%s\"", val);
    if (!dash)
        max = min;
    if (max < min)
        return phx_error_set(err, "node range \"%s\" is decreasing", val);
    c->spec->nodes_min = min;
    c->spec->nodes_max = max;
    mark(c, offsetof(phx_jobspec_t, nodes_min));
    mark(c, offsetof(phx_jobspec_t, nodes_max));
    return 0;
}

/* -B sockets[:cores[:threads]], each may be '*' (any). */
static int h_extra(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    (void)off;
    int64_t *dst[3] = {&c->spec->sockets_per_node, &c->spec->cores_per_socket,
                       &c->spec->threads_per_core};
    size_t offs[3] = {offsetof(phx_jobspec_t, sockets_per_node),
                      offsetof(phx_jobspec_t, cores_per_socket),
                      offsetof(phx_jobspec_t, threads_per_core)};
    const char *p = val;
    for (int i = 0; i < 3; i++) {
        size_t n = strcspn(p, ":");
        char word[32];
        if (n == 0 || n >= sizeof(word))
            return phx_error_set(err, "expected sockets[:cores[:threads]], not \"%s\"",
                                 val);
        snprintf(word, sizeof(word), "%.*s", (int)n, p);
        if (strcmp(word, "*") && read_count(word, dst[i], err) < 0)
            return phx_error_set(err, "expected sockets[:cores[:threads]], not \"%s\"",
                                 val);
        if (strcmp(word, "*"))
            mark(c, offs[i]);
        if (!p[n])
            return 0;
        p += n + 1;
    }
    return phx_error_set(err, "expected sockets[:cores[:threads]], not \"%s\"", val);
}

static int h_mem(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    uint64_t mib;
    bool per_cpu = off == offsetof(phx_jobspec_t, mem_per_cpu);
    int64_t other = per_cpu ? c->spec->mem_per_node : c->spec->mem_per_cpu;
    if (other != PHX_UNSET)
        return phx_error_set(err, "--mem and --mem-per-cpu are mutually exclusive");
    if (phx_mem_parse(val, &mib, err) < 0)
        return -1;
    if (per_cpu && mib == 0)
        return phx_error_set(err, "--mem-per-cpu must be above 0");
    if (mib > (UINT64_C(1) << 40))
        return phx_error_set(err, "memory size \"%s\" is too large", val);
    *FIELD(c->spec, off, int64_t) = (int64_t)mib;
    mark(c, off);
    return 0;
}

static int h_time(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    if (phx_time_parse(val, FIELD(c->spec, off, int64_t), err) < 0)
        return -1;
    mark(c, off);
    return 0;
}

static int h_begin(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    int64_t now = c->opts ? c->opts->now : 0;
    if (phx_begin_parse(val, now, FIELD(c->spec, off, int64_t), err) < 0)
        return -1;
    mark(c, off);
    return 0;
}

static int h_nice(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    char *end;
    mark(c, off);
    if (!val) {
        *FIELD(c->spec, off, int64_t) = 100; /* sbatch --nice without a value */
        return 0;
    }
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno || v < PHX_NICE_MIN || v > PHX_NICE_MAX)
        return phx_error_set(err,
                             "expected an integer adjustment from %d to %d, not \"%s\"",
                             PHX_NICE_MIN, PHX_NICE_MAX, val);
    *FIELD(c->spec, off, int64_t) = v;
    return 0;
}

static int h_exclusive(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    (void)off;
    c->spec->exclusive = 1;
    free(c->spec->exclusive_mode);
    c->spec->exclusive_mode = NULL;
    mark(c, offsetof(phx_jobspec_t, exclusive));
    mark(c, offsetof(phx_jobspec_t, exclusive_mode));
    return val ? h_str(c, offsetof(phx_jobspec_t, exclusive_mode), val, err) : 0;
}

static int h_true(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    (void)val, (void)err;
    *FIELD(c->spec, off, int) = 1;
    mark(c, off);
    return 0;
}

static int h_false(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    (void)val, (void)err;
    *FIELD(c->spec, off, int) = 0;
    mark(c, off);
    return 0;
}

static int h_ignore(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    (void)c, (void)off, (void)val, (void)err;
    return 0;
}

/* --ntasks-per-core=1: what Phalanx always does (a task has whole cores). */
static int h_per_core(parse_ctx_t *c, size_t off, const char *val, phx_error_t *err)
{
    int64_t n;
    (void)c, (void)off;
    if (read_count(val, &n, err) == 0 && n == 1)
        return 0;
    return phx_error_set(err, "only 1 is accepted (a task never shares a core)");
}

#define OFF(f) offsetof(phx_jobspec_t, f)

static const struct option_def {
    const char *name;
    char short_name;
    argkind_t arg;
    handler_f *fn;
    size_t off;
} options[] = {
    {"nodes", 'N', A_REQ, h_nodes, 0},
    {"ntasks", 'n', A_REQ, h_count, OFF(ntasks)},
    {"ntasks-per-node", 0, A_REQ, h_count, OFF(ntasks_per_node)},
    {"tasks-per-node", 0, A_REQ, h_count, OFF(ntasks_per_node)},
    {"cpus-per-task", 'c', A_REQ, h_count, OFF(cpus_per_task)},
    {"ntasks-per-socket", 0, A_REQ, h_count, OFF(ntasks_per_socket)},
    {"sockets-per-node", 0, A_REQ, h_count, OFF(sockets_per_node)},
    {"cores-per-socket", 0, A_REQ, h_count, OFF(cores_per_socket)},
    {"threads-per-core", 0, A_REQ, h_count, OFF(threads_per_core)},
    {"ntasks-per-core", 0, A_REQ, h_per_core, 0},
    {"extra-node-info", 'B', A_REQ, h_extra, 0},
    {"gres", 0, A_REQ, h_str, OFF(gres)},
    {"gpus", 'G', A_REQ, h_str, OFF(gpus)},
    {"gpus-per-node", 0, A_REQ, h_str, OFF(gpus_per_node)},
    {"gpus-per-task", 0, A_REQ, h_str, OFF(gpus_per_task)},
    {"mem", 0, A_REQ, h_mem, OFF(mem_per_node)},
    {"mem-per-cpu", 0, A_REQ, h_mem, OFF(mem_per_cpu)},
    {"time", 't', A_REQ, h_time, OFF(time_limit)},
    {"job-name", 'J', A_REQ, h_str, OFF(job_name)},
    {"output", 'o', A_REQ, h_str, OFF(output)},
    {"error", 'e', A_REQ, h_str, OFF(error)},
    {"account", 'A', A_REQ, h_str, OFF(account)},
    {"partition", 'p', A_REQ, h_str, OFF(partition)},
    {"qos", 'q', A_REQ, h_str, OFF(qos)},
    {"comment", 0, A_REQ, h_str, OFF(comment)},
    {"array", 'a', A_REQ, h_str, OFF(array)},
    {"dependency", 'd', A_REQ, h_str, OFF(dependency)},
    {"exclusive", 0, A_OPT, h_exclusive, 0},
    {"hint", 0, A_REQ, h_str, OFF(hint)},
    {"distribution", 'm', A_REQ, h_str, OFF(distribution)},
    {"cpu-bind", 0, A_REQ, h_str, OFF(cpu_bind)},
    {"cpu_bind", 0, A_REQ, h_str, OFF(cpu_bind)},
    {"nodelist", 'w', A_REQ, h_str, OFF(nodelist)},
    {"exclude", 'x', A_REQ, h_str, OFF(exclude)},
    {"constraint", 'C', A_REQ, h_str, OFF(constraint)},
    {"chdir", 'D', A_REQ, h_str, OFF(work_dir)},
    {"workdir", 0, A_REQ, h_str, OFF(work_dir)},
    {"export", 0, A_REQ, h_str, OFF(export_env)},
    {"mail-type", 0, A_REQ, h_str, OFF(mail_type)},
    {"mail-user", 0, A_REQ, h_str, OFF(mail_user)},
    {"signal", 0, A_REQ, h_str, OFF(signal)},
    {"begin", 'b', A_REQ, h_begin, OFF(begin_time)},
    {"nice", 0, A_OPT, h_nice, OFF(nice)},
    {"requeue", 0, A_NONE, h_true, OFF(requeue)},
    {"no-requeue", 0, A_NONE, h_false, OFF(requeue)},
    {"open-mode", 0, A_REQ, h_str, OFF(open_mode)},
    {"wait", 'W', A_NONE, h_true, OFF(wait)},
    {"parsable", 0, A_NONE, h_true, OFF(parsable)},
    {"hold", 'H', A_NONE, h_true, OFF(hold)},
    /* Only change what sbatch prints: accepted, nothing to store. */
    {"quiet", 'Q', A_NONE, h_ignore, 0},
    {"verbose", 'v', A_NONE, h_ignore, 0},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* sbatch options that change where or how a job runs and that Phalanx does
 * not implement: refused by name, never silently dropped. */
static const struct refused {
    const char *name;
    char short_name;
    const char *why;
} refused[] = {
    {"gpus-per-socket", 0, "use --gpus-per-node or --gpus-per-task"},
    {"cpus-per-gpu", 0, "use -c with --gpus-per-task"},
    {"mem-per-gpu", 0, "use --mem or --mem-per-cpu"},
    {"reservation", 0, "reservations are not supported"},
    {"licenses", 'L', "licenses are not supported"},
    {"oversubscribe", 's', "oversubscription is not supported"},
    {"overcommit", 'O', "overcommit is not supported"},
    {"mincpus", 0, "use --cpus-per-task"},
    {"core-spec", 'S', "core specialisation is not supported"},
    {"clusters", 'M', "there is one cluster"},
    {"wrap", 0, "it belongs on the phx submit (or sbatch) command line"},
    {"uid", 0, "the job owner comes from the munge credential"},
    {"gid", 0, "the job owner comes from the munge credential"},
    {"time-min", 0, "--time-min is not supported"},
    {"deadline", 0, "--deadline is not supported"},
    {"priority", 0, "use --nice"},
    {"switches", 0, "--switches is not supported"},
    {"tmp", 0, "--tmp is not supported"},
    {"contiguous", 0, "--contiguous is not supported"},
    {"input", 'i',
     "a batch job's standard input is /dev/null; redirect inside "
     "the script (cmd < file)"},
};
#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

static const struct option_def *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len && !strncmp(options[i].name, name, len))
            return &options[i];
    return NULL;
}

static const struct option_def *find_short(char ch)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].short_name == ch)
            return &options[i];
    return NULL;
}

static const struct refused *find_refused(const char *name, size_t len, char ch)
{
    for (size_t i = 0; i < NREFUSED; i++)
        if ((name && strlen(refused[i].name) == len &&
             !strncmp(refused[i].name, name, len)) ||
            (!name && ch && refused[i].short_name == ch))
            return &refused[i];
    return NULL;
}

/* Apply the option at words[*i] (and maybe its value in words[*i + 1]).
 * Returns 1 when words[*i] is not an option, 0 when applied, -1 on error.
 * err gets "OPTION: reason" without a location. */
static int apply_option(parse_ctx_t *c, int nwords, char *const words[], int *i,
                        phx_error_t *err)
{
    const char *w = words[*i];
    const struct option_def *o;
    const char *val = NULL;
    bool has_val = false;
    if (w[0] != '-' || w[1] == '\0')
        return 1;
    if (w[1] == '-') {
        const char *name = w + 2;
        size_t len = strcspn(name, "=");
        if (len == 0)
            return phx_error_set(err, "\"%s\": empty option name", w);
        if (name[len] == '=') {
            val = name + len + 1;
            has_val = true;
        }
        if (!(o = find_long(name, len))) {
            const struct refused *r = find_refused(name, len, 0);
            if (r)
                return phx_error_set(err, "\"--%s\" is not supported: %s", r->name,
                                     r->why);
            return phx_error_set(err, "unknown option \"--%.*s\"", (int)len, name);
        }
    } else {
        if (!(o = find_short(w[1]))) {
            const struct refused *r = find_refused(NULL, 0, w[1]);
            if (r)
                return phx_error_set(err, "\"-%c\" (--%s) is not supported: %s", w[1],
                                     r->name, r->why);
            return phx_error_set(err, "unknown option \"-%c\"", w[1]);
        }
        if (w[2]) {
            val = w + 2;
            has_val = true;
        }
    }
    switch (o->arg) {
    case A_NONE:
        if (has_val)
            return phx_error_set(err, "\"%s\": --%s takes no value", w, o->name);
        break;
    case A_OPT: break;
    case A_REQ:
        if (!has_val) {
            if (*i + 1 >= nwords)
                return phx_error_set(err, "\"%s\": --%s needs a value", w, o->name);
            val = words[++*i];
        }
        if (!*val)
            return phx_error_set(err, "\"%s\": --%s needs a value", w, o->name);
        break;
    }
    phx_error_t why = {{0}};
    if (o->fn(c, o->off, val, &why) < 0) {
        if (val && !has_val)
            return phx_error_set(err, "\"%s %s\": %s", w, val, why.text);
        return phx_error_set(err, "\"%s\": %s", w, why.text);
    }
    return 0;
}

/* Split a directive line's remainder into words (in place into buf). */
static int split_words(const char *line, size_t len, char *buf, char **words,
                       int *nwords, phx_error_t *err)
{
    size_t i = 0, o = 0;
    int n = 0;
    while (i < len) {
        while (i < len && isspace((unsigned char)line[i]))
            i++;
        if (i >= len || line[i] == '#')
            break;
        if (n == TOKENS_MAX)
            return phx_error_set(err, "too many words on one line");
        words[n++] = buf + o;
        char quote = 0;
        while (i < len && (quote || !isspace((unsigned char)line[i]))) {
            char ch = line[i++];
            if (quote && ch == quote) {
                quote = 0;
            } else if (!quote && (ch == '"' || ch == '\'')) {
                quote = ch;
            } else if (ch == '\\' && quote != '\'') {
                if (i >= len)
                    return phx_error_set(err, "backslash at the end of the line");
                buf[o++] = line[i++];
            } else {
                buf[o++] = ch;
            }
        }
        if (quote)
            return phx_error_set(err, "unterminated %c quote", quote);
        buf[o++] = '\0';
    }
    *nwords = n;
    return 0;
}

static const char *fname(const phx_script_opts_t *opts)
{
    return opts && opts->filename ? opts->filename : "script";
}

static void warn(const phx_script_opts_t *opts, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(const phx_script_opts_t *opts, int line, const char *fmt, ...)
{
    char msg[512], full[700];
    if (!opts || !opts->warn)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s:%d: %s", fname(opts), line, msg);
    opts->warn(opts->warn_arg, full);
}

/* Is this line a directive?  Returns the prefix length or 0. */
static size_t directive_prefix(const char *line, size_t len)
{
    static const char *const prefixes[] = {"#PHX", "#SBATCH"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(prefixes[i]);
        if (len >= n && !strncmp(line, prefixes[i], n) &&
            (len == n || isspace((unsigned char)line[n])))
            return n;
    }
    return 0;
}

static int parse_directive(parse_ctx_t *c, const char *line, size_t len, int lineno,
                           phx_error_t *err)
{
    char buf[LINE_MAX_BYTES + 1];
    char *words[TOKENS_MAX];
    int n = 0;
    phx_error_t why = {{0}};
    if (len > LINE_MAX_BYTES)
        return phx_error_set(err, "%s:%d: directive line longer than %d bytes",
                             fname(c->opts), lineno, LINE_MAX_BYTES);
    if (split_words(line, len, buf, words, &n, &why) < 0)
        return phx_error_set(err, "%s:%d: malformed directive \"%.*s\": %s",
                             fname(c->opts), lineno, (int)len, line, why.text);
    c->line = lineno;
    for (int i = 0; i < n; i++) {
        int rc = apply_option(c, n, words, &i, &why);
        if (rc == 1)
            return phx_error_set(err, "%s:%d: \"%s\" is not an option", fname(c->opts),
                                 lineno, words[i]);
        if (rc < 0)
            return phx_error_set(err, "%s:%d: invalid directive %s", fname(c->opts),
                                 lineno, why.text);
    }
    return 0;
}

static int parse_script(const char *text, size_t len, const phx_script_opts_t *opts,
                        phx_script_origin_t *origin, phx_jobspec_t *spec,
                        phx_error_t *err)
{
    size_t max = opts && opts->max_bytes ? opts->max_bytes : PHX_SCRIPT_MAX_DEFAULT;
    parse_ctx_t c = {.opts = opts, .spec = spec, .origin = origin};
    phx_jobspec_init(spec);
    if (len > max)
        return phx_error_set(err, "%s: script is larger than %zu bytes", fname(opts),
                             max);
    if (memchr(text, '\0', len))
        return phx_error_set(err, "%s: script contains a NUL byte (a binary file?)",
                             fname(opts));
    if (len < 2 || text[0] != '#' || text[1] != '!')
        return phx_error_set(
            err, "%s:1: the first line must start with #! and an interpreter",
            fname(opts));
    if (memchr(text, '\r', len))
        return phx_error_set(err,
                             "%s: script has DOS line breaks (\\r\\n); convert it with "
                             "dos2unix",
                             fname(opts));
    bool body = false;
    int lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        lineno++;
        size_t pre = directive_prefix(line, n);
        if (pre) {
            if (body) {
                warn(opts, lineno, "directive after the first command is ignored");
                continue;
            }
            if (parse_directive(&c, line + pre, n - pre, lineno, err) < 0) {
                phx_jobspec_clear(spec);
                return -1;
            }
            continue;
        }
        size_t sp = 0;
        while (sp < n && isspace((unsigned char)line[sp]))
            sp++;
        if (sp == n)
            continue; /* blank */
        if (line[sp] == '#') {
            if (!body && sp > 0 && directive_prefix(line + sp, n - sp))
                warn(opts, lineno,
                     "indented directive is ignored (start it in column 1)");
            continue;
        }
        body = true;
    }
    return 0;
}

int phx_script_parse(const char *text, size_t len, const phx_script_opts_t *opts,
                     phx_jobspec_t *spec, phx_error_t *err)
{
    return parse_script(text, len, opts, NULL, spec, err);
}

static int parse_argv(int argc, char *const argv[], const phx_script_opts_t *opts,
                      phx_script_origin_t *origin, phx_jobspec_t *spec, int *next,
                      phx_error_t *err)
{
    parse_ctx_t c = {
        .opts = opts, .spec = spec, .origin = origin, .line = PHX_SCRIPT_CMDLINE};
    phx_error_t why = {{0}};
    phx_jobspec_init(spec);
    int i;
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        int rc = apply_option(&c, argc, argv, &i, &why);
        if (rc == 1)
            break;
        if (rc < 0) {
            phx_jobspec_clear(spec);
            return phx_error_set(err, "invalid option %s", why.text);
        }
    }
    if (next)
        *next = i;
    return 0;
}

int phx_script_parse_argv(int argc, char *const argv[], const phx_script_opts_t *opts,
                          phx_jobspec_t *spec, int *next, phx_error_t *err)
{
    return parse_argv(argc, argv, opts, NULL, spec, next, err);
}

static int origin_of(const phx_script_origin_t *origin, size_t field)
{
    return origin && field < sizeof(origin->line) / sizeof(origin->line[0])
               ? origin->line[field]
               : 0;
}

/* "job.sh:3" or "command line". */
static void where(const phx_script_opts_t *opts, int line, char *buf, size_t size)
{
    if (line == PHX_SCRIPT_CMDLINE)
        snprintf(buf, size, "command line");
    else
        snprintf(buf, size, "%s:%d", fname(opts), line);
}

int phx_script_blame(const phx_script_opts_t *opts, const phx_script_origin_t *origin,
                     const phx_jobspec_blame_t *blame, phx_error_t *err)
{
    /* The latest of the blamed options heads the message (the command line
     * comes after every line); the others follow in order as "see also". */
    int lines[3], n = 0;
    for (int i = 0; blame && i < blame->count && i < 3; i++) {
        int l = origin_of(origin, blame->field[i]);
        unsigned key = (unsigned)l; /* PHX_SCRIPT_CMDLINE sorts last */
        int k = n;
        bool seen = false;
        for (int m = 0; m < n; m++)
            seen |= lines[m] == l;
        if (!l || seen)
            continue;
        for (; k > 0 && (unsigned)lines[k - 1] > key; k--)
            lines[k] = lines[k - 1];
        lines[k] = l;
        n++;
    }
    if (n == 0)
        return phx_error_prefix(err, "%s", fname(opts));
    char head[PHX_ERROR_TEXT_MAX], also[PHX_ERROR_TEXT_MAX] = "", w[300];
    where(opts, lines[n - 1], head, sizeof(head));
    for (int k = 0; k < n - 1; k++) {
        size_t used = strlen(also);
        where(opts, lines[k], w, sizeof(w));
        snprintf(also + used, sizeof(also) - used, "%s%s", used ? ", " : " (see also ",
                 w);
    }
    if (*also && err) {
        size_t used = strlen(err->text);
        snprintf(err->text + used, sizeof(err->text) - used, "%s)", also);
    }
    return phx_error_prefix(err, "%s", head);
}

int phx_script_build(const char *text, size_t len, int argc, char *const argv[],
                     const phx_script_opts_t *opts, const phx_jobspec_defaults_t *def,
                     const phx_jobspec_limits_t *limits, phx_jobspec_t *spec,
                     phx_error_t *err)
{
    phx_script_origin_t own = {{0}};
    phx_script_origin_t *origin = opts && opts->origin ? opts->origin : &own;
    phx_jobspec_blame_t blame;
    phx_jobspec_t cli;
    int next;
    memset(origin, 0, sizeof(*origin));
    if (parse_script(text, len, opts, origin, spec, err) < 0)
        return -1;
    if (parse_argv(argc, argv, opts, origin, &cli, &next, err) < 0)
        goto fail;
    if (next < argc) {
        phx_jobspec_clear(&cli);
        phx_error_set(err, "unexpected argument \"%s\" among the options", argv[next]);
        goto fail;
    }
    int rc = phx_jobspec_merge(spec, &cli);
    phx_jobspec_clear(&cli);
    if (rc < 0) {
        phx_error_set(err, "out of memory");
        goto fail;
    }
    if (phx_jobspec_finalize_blame(spec, def, limits, &blame, err) < 0) {
        phx_script_blame(opts, origin, &blame, err);
        goto fail;
    }
    return 0;
fail:
    phx_jobspec_clear(spec);
    return -1;
}
