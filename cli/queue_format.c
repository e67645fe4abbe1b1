#include "cli/queue_format.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef enum kind { K_STR, K_INT, K_TIME, K_DURATION } kind_t;

static const struct spec {
    char letter;
    const char *header;
    const char *key; /* the job's field; NULL: computed */
    kind_t kind;
} specs[] = {
    {'a', "ACCOUNT", "account", K_STR},
    {'A', "JOBID", "job_id", K_INT},
    {'C', "CPUS", NULL, K_INT},
    {'D', "NODES", "nodes", K_INT},
    {'e', "END_TIME", "end_time", K_TIME},
    {'E', "DEPENDENCY", "dependency", K_STR},
    {'F', "ARRAY_JOB_ID", NULL, K_INT},
    {'i', "JOBID", NULL, K_STR},
    {'j', "NAME", "name", K_STR},
    {'K', "ARRAY_TASK_ID", NULL, K_STR},
    {'l', "TIME_LIMIT", "time_limit_text", K_STR},
    {'L', "TIME_LEFT", NULL, K_DURATION},
    {'M', "TIME", "elapsed", K_DURATION},
    {'N', "NODELIST", "node_list", K_STR},
    {'P', "PARTITION", "partition", K_STR},
    {'Q', "PRIORITY", "priority", K_INT},
    {'r', "REASON", "reason", K_STR},
    {'R', "NODELIST(REASON)", NULL, K_STR},
    {'S', "START_TIME", "start_time", K_TIME},
    {'t', "ST", "state_code", K_STR},
    {'T', "STATE", "state", K_STR},
    {'u', "USER", "user", K_STR},
    {'U', "UID", "uid", K_INT},
    {'V', "SUBMIT_TIME", "submit_time", K_TIME},
    {'Z', "WORK_DIR", "work_dir", K_STR},
};

/* %S of a pending job */
static const struct spec expected = {'S', "START_TIME", "expected_start", K_TIME};

static const struct spec *spec_of(char c)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (specs[i].letter == c)
            return &specs[i];
    return NULL;
}

/* One "%[.|-][width]X" at *p (past the '%'): right, width, the spec. */
static const char *field(const char *p, bool *right, int *width, char *letter)
{
    *right = *p == '.';
    p += *right;
    p += !*right && *p == '-'; /* left, as without '.' */
    *width = 0;
    while (*p >= '0' && *p <= '9' && *width < 1000)
        *width = *width * 10 + (*p++ - '0');
    *letter = *p;
    return *p ? p + 1 : p;
}

int phx_queue_format_check(const char *fmt, phx_error_t *err)
{
    if (strlen(fmt) > 1024)
        return phx_error_set(err, "--format: longer than 1024 characters");
    for (const char *p = fmt; *p;) {
        if (*p++ != '%')
            continue;
        if (*p == '%') {
            p++;
            continue;
        }
        bool right;
        int width;
        char letter;
        const char *start = p - 1;
        p = field(p, &right, &width, &letter);
        if (!letter)
            return phx_error_set(
                err, "--format \"%s\": \"%s\" ends without a field letter", fmt, start);
        if (width >= 1000)
            return phx_error_set(err, "--format \"%s\": a width is at most 999", fmt);
        if (!spec_of(letter))
            return phx_error_set(err,
                                 "--format \"%s\": %%%c is not a field phx queue knows "
                                 "(aACDeEFijKlLMNPQrRStTuUVZ)",
                                 fmt, letter);
    }
    return 0;
}

static void duration(long long s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%lld-%02lld:%02lld:%02lld", s / 86400, s % 86400 / 3600,
                 s % 3600 / 60, s % 60);
    else if (s >= 3600)
        snprintf(buf, len, "%lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
    else
        snprintf(buf, len, "%lld:%02lld", s / 60, s % 60);
}

static long long num(const json_t *job, const char *key)
{
    return (long long)json_integer_value(json_object_get(job, key));
}

static const char *text(const json_t *job, const char *key)
{
    const char *s = json_string_value(json_object_get(job, key));
    return s ? s : "";
}

/* The value of spec s for job, into buf. */
static void value(const struct spec *s, const json_t *job, int64_t now, char *buf,
                  size_t len)
{
    const json_t *at = json_object_get(job, "array_task_id");
    bool pending = strcmp(text(job, "state"), "PENDING") == 0;
    switch (s->letter) {
    case 'C': {
        long long cpus = num(job, "alloc_cpus");
        snprintf(buf, len, "%lld",
                 cpus > 0 ? cpus : num(job, "ntasks") * num(job, "cpus_per_task"));
        return;
    }
    case 'F':
        snprintf(buf, len, "%lld", at ? num(job, "array_job_id") : num(job, "job_id"));
        return;
    case 'i':
        if (at)
            snprintf(buf, len, "%lld_%lld", num(job, "array_job_id"),
                     (long long)json_integer_value(at));
        else
            snprintf(buf, len, "%lld", num(job, "job_id"));
        return;
    case 'K':
        if (at)
            snprintf(buf, len, "%lld", (long long)json_integer_value(at));
        else
            snprintf(buf, len, "N/A");
        return;
    case 'L': {
        long long limit = num(job, "time_limit");
        if (limit <= 0)
            snprintf(buf, len, "UNLIMITED");
        else
            duration(limit - num(job, "elapsed"), buf, len);
        (void)now;
        return;
    }
    case 'S': /* a pending job's: its reservation's (squeue --start) */
        if (pending)
            s = &expected;
        break;
    case 'R':
        if (pending)
            snprintf(buf, len, "(%s)", text(job, "reason"));
        else
            snprintf(buf, len, "%s", text(job, "node_list"));
        return;
    default: break;
    }
    const json_t *v = json_object_get(job, s->key);
    switch (s->kind) {
    case K_STR:
        snprintf(buf, len, "%s", json_is_string(v) ? json_string_value(v) : "");
        break;
    case K_INT: snprintf(buf, len, "%lld", (long long)json_integer_value(v)); break;
    case K_DURATION: duration((long long)json_integer_value(v), buf, len); break;
    case K_TIME: {
        if (!json_is_integer(v)) {
            snprintf(buf, len, "N/A");
            break;
        }
        time_t t = (time_t)json_integer_value(v);
        struct tm tm;
        if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm))
            snprintf(buf, len, "N/A");
        break;
    }
    }
}

void phx_queue_format_line(const char *fmt, const json_t *job, int64_t now, char *out,
                           size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = fmt; *p && o + 1 < len;) {
        if (*p != '%' || p[1] == '%') {
            out[o++] = *p;
            p += *p == '%' ? 2 : 1;
            continue;
        }
        bool right;
        int width;
        char letter, v[1024];
        p = field(p + 1, &right, &width, &letter);
        const struct spec *s = spec_of(letter);
        if (!s)
            continue; /* refused by the check */
        if (job)
            value(s, job, now, v, sizeof(v));
        else
            snprintf(v, sizeof(v), "%s", s->header);
        int n = width > 0 ? snprintf(out + o, len - o, right ? "%*.*s" : "%-*.*s",
                                     width, width, v)
                          : snprintf(out + o, len - o, "%s", v);
        o += n > 0 ? (size_t)n : 0;
        if (o >= len)
            o = len - 1;
    }
    out[o] = '\0';
}
