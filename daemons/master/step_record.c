/* The accounting record of a numbered step: outcome, name, node list and
 * the statement's parameters.  Pure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/step_record.h"
#include "lib/hostlist.h"

const char phx_step_rec_sql[] =
    "WITH job AS (SELECT j.id FROM tasks t JOIN jobs j ON j.framework_id = "
    "t.framework_id AND j.batch_task_id = t.task_id WHERE t.gang_id = $1::bigint "
    "ORDER BY j.id LIMIT 1), "
    "rec AS (INSERT INTO job_steps AS s (job_id, step_id, name, state, start_time, "
    "end_time, ntasks, nnodes, node_list, alloc_cpus, exit_code, exit_signal, "
    "user_cpu_s, system_cpu_s, max_rss_bytes, gang_id, alloc_gpus) "
    "SELECT job.id, $2, $3, $4, to_timestamp($5::float8), to_timestamp($6::float8), "
    "$7::int, $8::int, $9, $10::int, $11::int, $12::int, $13::float8, $14::float8, "
    "$15::bigint, $1::bigint, $16::int FROM job "
    "ON CONFLICT (job_id, step_id) DO UPDATE SET name = EXCLUDED.name, "
    "state = EXCLUDED.state, start_time = EXCLUDED.start_time, "
    "end_time = EXCLUDED.end_time, ntasks = EXCLUDED.ntasks, nnodes = EXCLUDED.nnodes, "
    "node_list = EXCLUDED.node_list, alloc_cpus = EXCLUDED.alloc_cpus, "
    "exit_code = EXCLUDED.exit_code, exit_signal = EXCLUDED.exit_signal, "
    "user_cpu_s = EXCLUDED.user_cpu_s, system_cpu_s = EXCLUDED.system_cpu_s, "
    "max_rss_bytes = EXCLUDED.max_rss_bytes, gang_id = EXCLUDED.gang_id, "
    "alloc_gpus = EXCLUDED.alloc_gpus "
    "WHERE s.end_time IS NULL OR s.gang_id IS DISTINCT FROM EXCLUDED.gang_id) "
    "SELECT (SELECT id FROM job), coalesce((SELECT f.name = '" PHX_STEP_REC_BATCHD
    "' OR EXISTS (SELECT 1 FROM jobs j WHERE j.framework_id = f.id AND "
    "j.batch_task_id IS NOT NULL) FROM gangs g JOIN frameworks f ON f.id = "
    "g.framework_id WHERE g.id = $1::bigint), true)";

const char phx_step_rec_close_sql[] =
    "UPDATE job_steps SET state = $1, end_time = greatest(start_time, now()) "
    "WHERE gang_id IS NOT NULL AND end_time IS NULL AND step_id ~ '^[0-9]+$'";

bool phx_step_rec_permanent(const char *sqlstate)
{
    return sqlstate &&
           (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0);
}

const char *phx_step_rec_outcome(int max_code, int max_signal, bool aborted,
                                 int abort_code, phx_step_cause_t cause, int *exit_code,
                                 int *exit_signal)
{
    *exit_code = max_code < 0 ? 0 : max_code > 255 ? 255 : max_code;
    *exit_signal = max_signal < 0 ? 0 : max_signal > 127 ? 127 : max_signal;
    if (cause == PHX_STEP_CAUSE_CANCEL)
        return "CANCELLED";
    if (cause == PHX_STEP_CAUSE_NODE_FAIL)
        return "NODE_FAIL";
    if (aborted) {
        /* the status the rank gave (MPI_Abort's, or its exit code); the
         * signal is the master's kill of the others, not the step's */
        *exit_code = abort_code & 255;
        *exit_signal = 0;
        return "FAILED";
    }
    return max_code != 0 || max_signal != 0 ? "FAILED" : "COMPLETED";
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, surrogates or code points past U+10FFFF), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80;
        hi = s[0] == 0xED ? 0x9F : 0xBF;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80;
        hi = s[0] == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) /* also stops at the NUL */
            return 0;
    return n;
}

void phx_step_rec_set_name(phx_step_rec_t *r, const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    const char *base = slash ? slash + 1 : argv0 ? argv0 : "";
    const unsigned char *in = (const unsigned char *)base;
    size_t used = 0;
    while (*in) {
        size_t n = utf8_len(in);
        if (used + (n ? n : 1) >= sizeof(r->name))
            break; /* never half a character */
        if (n) {
            memcpy(r->name + used, in, n);
            used += n;
            in += n;
        } else {
            r->name[used++] = '?';
            in++;
        }
    }
    r->name[used] = '\0';
}

void phx_step_rec_add_node(phx_step_rec_t *r, const char *node)
{
    size_t len = strlen(r->node_list), cap = sizeof(r->node_list);
    if (len > 0 && r->node_list[len - 1] == '+')
        return;
    size_t need = strlen(node) + (len ? 1 : 0);
    if (len + need + 2 > cap) { /* room for "+" and the NUL */
        snprintf(r->node_list + len, cap - len, "%s+", len ? "," : "");
        return;
    }
    snprintf(r->node_list + len, cap - len, "%s%s", len ? "," : "", node);
}

static const char *num(phx_step_rec_params_t *o, int i, double v)
{
    snprintf(o->buf[i], sizeof(o->buf[i]), "%.6f", v);
    return o->buf[i];
}

static const char *inum(phx_step_rec_params_t *o, int i, long long v)
{
    snprintf(o->buf[i], sizeof(o->buf[i]), "%lld", v);
    return o->buf[i];
}

/* The list compressed into o->nodes; the list as it is when it was cut
 * ("+") or cannot be compressed. */
static const char *compressed(const phx_step_rec_t *r, phx_step_rec_params_t *o)
{
    size_t len = strlen(r->node_list);
    if (len == 0 || r->node_list[len - 1] == '+')
        return r->node_list;
    char copy[sizeof(r->node_list)];
    const char *names[sizeof(r->node_list) / 2 + 1];
    size_t n = 0;
    memcpy(copy, r->node_list, len + 1);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save))
        names[n++] = t;
    char *c = phx_hostlist_compress(names, n);
    const char *out = r->node_list;
    if (c && strlen(c) < sizeof(o->nodes)) {
        memcpy(o->nodes, c, strlen(c) + 1);
        out = o->nodes;
    }
    free(c);
    return out;
}

void phx_step_rec_params(const phx_step_rec_t *r, phx_step_rec_params_t *o)
{
    bool ended = r->end >= 0;
    memset(o->p, 0, sizeof(o->p));
    o->p[0] = inum(o, 0, (long long)r->gang_id);
    o->p[1] = inum(o, 1, r->number);
    o->p[2] = r->name;
    o->p[3] = r->state ? r->state : "RUNNING";
    o->p[4] = num(o, 4, r->start);
    o->p[5] = ended ? num(o, 5, r->end < r->start ? r->start : r->end) : NULL;
    o->p[6] = inum(o, 6, r->ntasks > 0 ? r->ntasks : 1);
    o->p[7] = inum(o, 7, r->nnodes > 0 ? r->nnodes : 1);
    const char *nodes = compressed(r, o);
    o->p[8] = nodes[0] ? nodes : "?";
    o->p[9] = inum(o, 9, r->alloc_cpus > 0 ? r->alloc_cpus : 1);
    o->p[10] = ended ? inum(o, 10, r->exit_code & 255) : NULL;
    o->p[11] = ended ? inum(o, 11, r->exit_signal & 127) : NULL;
    if (r->have_usage) {
        o->p[12] = num(o, 12, r->user_s < 0 ? 0 : r->user_s);
        o->p[13] = num(o, 13, r->system_s < 0 ? 0 : r->system_s);
        o->p[14] = r->max_rss >= 0 ? inum(o, 14, (long long)r->max_rss) : NULL;
    }
    o->p[15] = inum(o, 15, r->alloc_gpus > 0 ? r->alloc_gpus : 0);
}
