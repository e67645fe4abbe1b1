/* phx acct: accounting records like sacct, read straight from the
 * acct_jobs and acct_steps views (doc/accounting.md).  Who sees what is the
 * database's row-level security: connected as a user's role, only that
 * user's jobs come back. */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/acct_ids.h"
#include "cli/acct_time.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "db/db.h"

typedef enum col_kind {
    KIND_TEXT,
    KIND_INT,
    KIND_DURATION, /* seconds -> [D-]HH:MM:SS */
    KIND_LIMIT,    /* a duration, NULL = UNLIMITED */
    KIND_TIME,     /* timestamptz -> local YYYY-MM-DDTHH:MM:SS */
    KIND_BYTES,
    KIND_MIB,
} col_kind_t;

typedef struct column {
    const char *name; /* sacct's name: header, --format */
    const char *view; /* the views' column: --json key, --format alias */
    const char *raw;  /* the column the table prints from */
    col_kind_t kind;
    int width;
    bool on_steps; /* acct_steps has it */
} column_t;

static const column_t columns[] = {
    {"JobID", "jobid", "jobid", KIND_TEXT, 12, true},
    {"JobIDRaw", "job_id", "job_id", KIND_INT, 10, true},
    {"ArrayJobID", "array_job_id", "array_job_id", KIND_INT, 10, true},
    {"ArrayTaskID", "array_task_id", "array_task_id", KIND_INT, 11, true},
    {"JobName", "job_name", "job_name", KIND_TEXT, 10, true},
    {"User", "user_name", "user_name", KIND_TEXT, 9, true},
    {"UID", "uid", "uid", KIND_INT, 6, true},
    {"GID", "gid", "gid", KIND_INT, 6, true},
    {"Group", "group_name", "group_name", KIND_TEXT, 9, true},
    {"Account", "account", "account", KIND_TEXT, 10, true},
    {"Partition", "partition", "partition", KIND_TEXT, 10, false}, /* as sacct */
    {"QOS", "qos", "qos", KIND_TEXT, 10, true},
    {"State", "state", "state", KIND_TEXT, 10, true},
    {"Reason", "reason", "reason", KIND_TEXT, 10, false},
    {"ExitCode", "exit_code", "exit_code", KIND_TEXT, 8, true},
    {"Submit", "submit", "submit", KIND_TIME, 19, true},
    {"Eligible", "eligible", "eligible", KIND_TIME, 19, true},
    {"Start", "start", "start", KIND_TIME, 19, true},
    {"End", "end", "end", KIND_TIME, 19, true},
    {"Elapsed", "elapsed", "elapsed_s", KIND_DURATION, 10, true},
    {"ElapsedRaw", "elapsed_s", "elapsed_s", KIND_INT, 10, true},
    {"Planned", "wait", "wait_s", KIND_DURATION, 10, false},
    {"PlannedRaw", "wait_s", "wait_s", KIND_INT, 10, false},
    {"Timelimit", "timelimit", "timelimit_s", KIND_LIMIT, 10, true},
    {"TimelimitRaw", "timelimit_s", "timelimit_s", KIND_INT, 12, true},
    {"ReqNodes", "req_nodes", "req_nodes", KIND_INT, 8, false},
    {"ReqCPUS", "req_cpus", "req_cpus", KIND_INT, 8, false},
    {"ReqMem", "req_mem", "req_mem", KIND_TEXT, 10, true},
    {"AllocNodes", "alloc_nodes", "alloc_nodes", KIND_INT, 10, true},
    {"AllocCPUS", "alloc_cpus", "alloc_cpus", KIND_INT, 10, true},
    {"AllocMem", "alloc_mem", "alloc_mem", KIND_MIB, 10, false},
    {"AllocTRES", "alloc_tres", "alloc_tres", KIND_TEXT, 30, true},
    {"AllocGPUS", "alloc_gpus", "alloc_gpus", KIND_INT, 9, true}, /* not sacct's */
    {"GPUTime", "gpu_time", "gpu_time_s", KIND_DURATION, 10, true},
    {"GPUTimeRAW", "gpu_time_s", "gpu_time_s", KIND_INT, 10, true},
    /* sacct's other names of the same figures */
    {"NNodes", "alloc_nodes", "alloc_nodes", KIND_INT, 8, true},
    {"NCPUS", "alloc_cpus", "alloc_cpus", KIND_INT, 10, true},
    {"Reserved", "wait", "wait_s", KIND_DURATION, 10, false},
    {"NodeList", "node_list", "node_list", KIND_TEXT, 15, true},
    {"NTasks", "ntasks", "ntasks", KIND_INT, 8, true},
    {"CPUTime", "cpu_time", "cpu_time_s", KIND_DURATION, 10, true},
    {"CPUTimeRAW", "cpu_time_s", "cpu_time_s", KIND_INT, 10, true},
    {"TotalCPU", "total_cpu", "total_cpu_s", KIND_DURATION, 10, true},
    {"UserCPU", "user_cpu_s", "user_cpu_s", KIND_DURATION, 10, true},
    {"SystemCPU", "system_cpu_s", "system_cpu_s", KIND_DURATION, 10, true},
    {"MaxRSS", "max_rss_bytes", "max_rss_bytes", KIND_BYTES, 10, true},
    {"Restarts", "restarts", "restarts", KIND_INT, 8, false},
    {"WorkDir", "work_dir", "work_dir", KIND_TEXT, 20, true},
    {"SubmitLine", "submit_line", "submit_line", KIND_TEXT, 20, true},
};
#define NCOLUMNS     (sizeof(columns) / sizeof(columns[0]))
#define MAX_SELECTED 50 /* json_build_object takes at most 100 arguments */

static const char default_format[] = "JobID,JobName,Partition,Account,AllocCPUS,State,"
                                     "ExitCode";

typedef struct selected {
    const column_t *col;
    int width;
} selected_t;

/* Whose jobs: every one the database lets the caller read (the default,
 * -a), those of -u, or the caller's own (--me).  The last option wins. */
typedef enum who {
    WHO_ALL,
    WHO_LIST,
    WHO_ME,
} who_t;

/* A list option's values: repeated options add to it, comma-separated, as
 * sacct's do (slurm_addto_char_list). */
typedef struct optlist {
    bool set;
    char v[4096];
} optlist_t;

typedef struct acct_opts {
    optlist_t users, accounts, states_arg, jobs, names, partitions, qos;
    const char *start, *end, *format, *dsn;
    const char *delimiter; /* between -P/-p fields, "|" by default */
    who_t who;
    bool allocations, parsable, parsable_end, noheader, json;
    char my_uid[24];
    char states[256];          /* canonical, comma-separated */
    phx_acct_ids_t ids;        /* -j */
    char since[32], until[32]; /* epoch seconds */
    selected_t sel[MAX_SELECTED];
    int nsel;
} acct_opts_t;

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: phx acct [-u USER[,...] | -a | --me] [-A ACCOUNT[,...]] [-S START]\n"
        "                [-E END] [-j ID[,...]] [-s STATE[,...]] [--name NAME[,...]]\n"
        "                [-r PARTITION[,...]] [-q QOS[,...]] [-X] [-o|--format COLS]\n"
        "                [-P|-p] [--delimiter STR] [-n] [--json] [--dsn DSN]\n"
        "                [--helpformat]\n"
        "\n"
        "  -u, --user        only these users' jobs (names or uids)\n"
        "  -a, --allusers    every user's jobs the database lets you read (default)\n"
        "      --me          only your own jobs\n"
        "  -A, --account     only these accounts\n"
        "  -S, --starttime   jobs not ended before T (default: midnight today, "
        "unless -j)\n"
        "  -E, --endtime     jobs submitted at or before T\n"
        "  -j, --jobs        41 (a job, or every task of array 41), 41_3 (a task),\n"
        "                    41.batch, 41.0, 41_3.batch (a step line alone)\n"
        "  -s, --state       COMPLETED, FAILED, ... or CD, F, CA, TO, OOM, NF, R, PD\n"
        "      --name        only jobs of these names\n"
        "  -r, --partition   only jobs of these partitions\n"
        "  -q, --qos         only jobs of these QOS\n"
        "  -X, --allocations jobs only, no step lines\n"
        "  -o, --format      columns, e.g. JobID,User,Elapsed,MaxRSS,JobName%%30\n"
        "  -P, --parsable2   '|'-separated output\n"
        "  -p, --parsable    '|'-separated output, a '|' after the last field too\n"
        "      --delimiter   between -P/-p fields instead of '|'\n"
        "  -n, --noheader    no header lines\n"
        "      --json        JSON array of rows (view column names, typed values)\n"
        "      --dsn         libpq connection string (else PHX_DSN, client.dsn)\n"
        "T: YYYY-MM-DD[THH:MM[:SS]], MM/DD[/YY][-HH:MM[:SS]], MMDD[YY], HH:MM[:SS],\n"
        "   today, now, now-N[second|minute|hour|day|week][s]\n"
        "Repeated list options add up: -j 41 -j 42 is -j 41,42.\n"
        "See doc/accounting.md.\n");
}

static void help_format(void)
{
    printf("%-13s %s\n", "COLUMN", "VIEW COLUMN (--json key)");
    for (size_t i = 0; i < NCOLUMNS; i++)
        printf("%-13s %s\n", columns[i].name, columns[i].view);
}

/* ------------------------------------------------------------------------- */
/* Options */

static const column_t *find_column(const char *name, size_t len)
{
    for (size_t i = 0; i < NCOLUMNS; i++)
        if ((strlen(columns[i].name) == len &&
             strncasecmp(columns[i].name, name, len) == 0) ||
            (strlen(columns[i].view) == len &&
             strncmp(columns[i].view, name, len) == 0))
            return &columns[i];
    return NULL;
}

/* "JobID,JobName%30,...": -1 after a message on an unknown column. */
static int parse_format(acct_opts_t *o, const char *format)
{
    const char *p = format;
    o->nsel = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t name_len = strcspn(p, ",%");
        if (name_len > len)
            name_len = len;
        const column_t *col = find_column(p, name_len);
        if (!col) {
            fprintf(stderr, "phx: unknown column \"%.*s\" (phx acct --helpformat)\n",
                    (int)name_len, p);
            return -1;
        }
        if (o->nsel == MAX_SELECTED) {
            fprintf(stderr, "phx: more than %d columns\n", MAX_SELECTED);
            return -1;
        }
        int width = col->width;
        if (name_len < len) {
            char *end;
            long w = strtol(p + name_len + 1, &end, 10);
            if (end != p + len || w < 1 || w > 1000) {
                fprintf(stderr, "phx: invalid column width in \"%.*s\"\n", (int)len, p);
                return -1;
            }
            width = (int)w;
        }
        o->sel[o->nsel++] = (selected_t){col, width};
        p += len;
        if (*p == ',')
            p++;
    }
    if (o->nsel == 0) {
        fprintf(stderr, "phx: --format names no column\n");
        return -1;
    }
    return 0;
}

static int parse_states(acct_opts_t *o)
{
    static const char *const names[][2] = {
        {"PD", "PENDING"},   {"R", "RUNNING"},         {"CD", "COMPLETED"},
        {"F", "FAILED"},     {"CA", "CANCELLED"},      {"TO", "TIMEOUT"},
        {"NF", "NODE_FAIL"}, {"OOM", "OUT_OF_MEMORY"},
    };
    const char *p = o->states_arg.v;
    size_t used = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *state = NULL;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !state; i++)
            for (int k = 0; k < 2; k++)
                if (strlen(names[i][k]) == len && strncasecmp(names[i][k], p, len) == 0)
                    state = names[i][1];
        if (!state) {
            fprintf(stderr, "phx: unknown job state \"%.*s\"\n", (int)len, p);
            return -1;
        }
        used += (size_t)snprintf(o->states + used, sizeof(o->states) - used, "%s%s",
                                 used ? "," : "", state);
        if (used >= sizeof(o->states)) {
            fprintf(stderr, "phx: too many states\n");
            return -1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* -S/-E into epoch seconds, with a message when refused. */
static int parse_time(const char *arg, time_t now, char *out, size_t len)
{
    time_t t;
    if (phx_acct_parse_time(arg, now, &t) < 0) {
        fprintf(stderr,
                "phx: invalid time \"%s\" (YYYY-MM-DD[THH:MM[:SS]], MM/DD[/YY], "
                "HH:MM, now-2days)\n",
                arg);
        return -1;
    }
    snprintf(out, len, "%lld", (long long)t);
    return 0;
}

/* The option values parsed into what the query binds. */
static int check_args(acct_opts_t *o)
{
    if (o->who == WHO_ME)
        snprintf(o->my_uid, sizeof(o->my_uid), "%lu", (unsigned long)getuid());
    time_t now = time(NULL);
    if ((o->format || !o->json) &&
        parse_format(o, o->format ? o->format : default_format) < 0)
        return -1;
    if (o->states_arg.set && parse_states(o) < 0)
        return -1;
    if (o->jobs.set && phx_acct_parse_ids(o->jobs.v, o->allocations, &o->ids) < 0)
        return -1;
    if (!o->start && !o->jobs.set)
        o->start = "today";
    if (o->start && parse_time(o->start, now, o->since, sizeof(o->since)) < 0)
        return -1;
    if (o->end && parse_time(o->end, now, o->until, sizeof(o->until)) < 0)
        return -1;
    return 0;
}

/* -j 41 -j 42 is -j 41,42. */
static int add_to_list(optlist_t *l, const char *opt, const char *value)
{
    size_t used = strlen(l->v);
    int n =
        snprintf(l->v + used, sizeof(l->v) - used, "%s%s", l->set ? "," : "", value);
    if (n < 0 || (size_t)n >= sizeof(l->v) - used) {
        fprintf(stderr, "phx: the values of %s are longer than %zu characters\n", opt,
                sizeof(l->v) - 1);
        return -1;
    }
    l->set = true;
    return 0;
}

static int parse_args(acct_opts_t *o, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"allusers", no_argument, NULL, 'a'},
        {"me", no_argument, NULL, 'M'},
        {"name", required_argument, NULL, 'N'},
        {"partition", required_argument, NULL, 'r'},
        {"qos", required_argument, NULL, 'q'},
        {"delimiter", required_argument, NULL, 'd'},
        {"parsable", no_argument, NULL, 'p'},
        {"noheader", no_argument, NULL, 'n'},
        {"account", required_argument, NULL, 'A'},
        {"starttime", required_argument, NULL, 'S'},
        {"endtime", required_argument, NULL, 'E'},
        {"jobs", required_argument, NULL, 'j'},
        {"state", required_argument, NULL, 's'},
        {"allocations", no_argument, NULL, 'X'},
        {"format", required_argument, NULL, 'o'},
        {"parsable2", no_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'J'},
        {"dsn", required_argument, NULL, 'D'},
        {"helpformat", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:aA:S:E:j:s:r:q:Xo:Ppnh", opts, NULL)) !=
           -1) {
        switch (c) {
        case 'u':
            if (add_to_list(&o->users, "-u", optarg) < 0)
                return -1;
            o->who = WHO_LIST;
            break;
        case 'a': o->who = WHO_ALL; break;
        case 'M': o->who = WHO_ME; break;
        case 'N':
            if (add_to_list(&o->names, "--name", optarg) < 0)
                return -1;
            break;
        case 'r':
            if (add_to_list(&o->partitions, "-r", optarg) < 0)
                return -1;
            break;
        case 'q':
            if (add_to_list(&o->qos, "-q", optarg) < 0)
                return -1;
            break;
        case 'd': o->delimiter = optarg; break;
        case 'n': o->noheader = true; break;
        case 'A':
            if (add_to_list(&o->accounts, "-A", optarg) < 0)
                return -1;
            break;
        case 'S': o->start = optarg; break;
        case 'E': o->end = optarg; break;
        case 'j':
            if (!*optarg) {
                fprintf(stderr, "phx: -j needs a job id\n");
                return -1;
            }
            if (add_to_list(&o->jobs, "-j", optarg) < 0)
                return -1;
            break;
        case 's':
            if (add_to_list(&o->states_arg, "-s", optarg) < 0)
                return -1;
            break;
        case 'X': o->allocations = true; break;
        case 'o': o->format = optarg; break;
        case 'P':
            o->parsable = true;
            o->parsable_end = false;
            break;
        case 'p': o->parsable = o->parsable_end = true; break;
        case 'J': o->json = true; break;
        case 'D': o->dsn = optarg; break;
        case 'F': help_format(); return 1;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "phx: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return check_args(o);
}

/* ------------------------------------------------------------------------- */
/* The query: the jobs that pass the filters, then their steps */

typedef struct sqlbuf {
    char text[8192];
    size_t len;
    const char *params[24];
    int nparams;
    /* -j: the text selecting whole jobs (and their steps) and the steps
     * chosen by id, as conditions on a row with acct_jobs' names */
    char whole[400], steps[400];
} sqlbuf_t;

static void add(sqlbuf_t *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add(sqlbuf_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(q->text + q->len, sizeof(q->text) - q->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        q->len += (size_t)n < sizeof(q->text) - q->len ? (size_t)n : 0;
}

/* A parameter's number. */
static int param(sqlbuf_t *q, const char *value)
{
    q->params[q->nparams] = value;
    return ++q->nparams;
}

static void add_filters(sqlbuf_t *q, const acct_opts_t *o)
{
    add(q, "WITH j AS (SELECT * FROM acct_jobs WHERE true");
    if (o->who == WHO_LIST) {
        int users = param(q, o->users.v);
        add(q,
            " AND (user_name = ANY (string_to_array($%d, ',')) OR uid::text = ANY "
            "(string_to_array($%d, ',')))",
            users, users);
    } else if (o->who == WHO_ME)
        add(q, " AND uid = $%d::integer", param(q, o->my_uid));
    if (o->names.set)
        add(q, " AND job_name = ANY (string_to_array($%d, ','))", param(q, o->names.v));
    if (o->partitions.set)
        add(q, " AND partition = ANY (string_to_array($%d, ','))",
            param(q, o->partitions.v));
    if (o->qos.set)
        add(q, " AND qos = ANY (string_to_array($%d, ','))", param(q, o->qos.v));
    if (o->accounts.set)
        add(q, " AND account = ANY (string_to_array($%d, ','))",
            param(q, o->accounts.v));
    if (o->states_arg.set)
        add(q, " AND state = ANY (string_to_array($%d, ','))", param(q, o->states));
    if (o->jobs.set) {
        int plain = param(q, o->ids.plain);
        int a = param(q, o->ids.tasks_a);
        int t = param(q, o->ids.tasks_t);
        snprintf(
            q->whole, sizeof(q->whole),
            "(job_id = ANY ($%d::bigint[]) OR array_job_id = ANY ($%d::bigint[]) "
            "OR (array_job_id, array_task_id) IN (SELECT * FROM unnest($%d::bigint[], "
            "$%d::integer[])))",
            plain, plain, a, t);
        /* a step's job: 41.0 of job 41, 41_3.0 of the array's task 3 */
        if (o->ids.any_steps) {
            int sa = param(q, o->ids.steps_a), st = param(q, o->ids.steps_t);
            int ss = param(q, o->ids.steps_s);
            snprintf(q->steps, sizeof(q->steps),
                     "EXISTS (SELECT FROM unnest($%d::bigint[], $%d::integer[], "
                     "$%d::text[]) AS q (a, t, step) WHERE CASE WHEN q.t < 0 THEN "
                     "job_id = q.a ELSE array_job_id = q.a AND array_task_id = q.t END",
                     sa, st, ss);
            add(q, " AND (%s OR %s))", q->whole, q->steps);
        } else
            add(q, " AND %s", q->whole);
    }
    if (o->start)
        add(q, " AND (\"end\" IS NULL OR \"end\" >= to_timestamp($%d::bigint))",
            param(q, o->since));
    if (o->end)
        add(q, " AND submit <= to_timestamp($%d::bigint)", param(q, o->until));
    add(q, ")\n");
    if (o->ids.any_steps) /* the jobs chosen whole, not for a step alone */
        add(q, ", w AS (SELECT job_id FROM j WHERE %s)\n", q->whole);
}

/* One selected column as the job (or step) branch shows it. */
static void add_value(sqlbuf_t *q, const acct_opts_t *o, const column_t *col, bool step)
{
    if (step && !col->on_steps)
        add(q, "NULL");
    else if (o->json)
        add(q, "\"%s\"", col->view);
    else if (col->kind == KIND_TIME)
        add(q, "floor(extract(epoch FROM \"%s\"))::bigint", col->raw);
    else
        add(q, "\"%s\"", col->raw);
}

static void add_branch(sqlbuf_t *q, const acct_opts_t *o, bool step)
{
    char from[1024];
    if (!o->ids.any_steps)
        snprintf(from, sizeof(from), "%s",
                 step ? "acct_steps s WHERE s.job_id IN (SELECT job_id FROM j)" : "j");
    else if (!step)
        snprintf(from, sizeof(from), "j WHERE job_id IN (SELECT job_id FROM w)");
    else /* the steps of whole jobs, and those named (q->steps on s) */
        snprintf(from, sizeof(from),
                 "acct_steps s WHERE s.job_id IN (SELECT job_id FROM w) OR "
                 "(s.job_id IN (SELECT job_id FROM j) AND %s AND s.step_id = q.step))",
                 q->steps);
    add(q, step ? "UNION ALL SELECT s.job_id, s.step_order, "
                : "SELECT j.job_id AS k_job, -3 AS k_step, ");
    if (o->json && o->nsel == 0) { /* every column of the view */
        add(q, "row_to_json(%s) AS c0 FROM %s\n", step ? "s" : "j", from);
        return;
    }
    if (o->json)
        add(q, "json_build_object(");
    for (int i = 0; i < o->nsel; i++) {
        if (o->json)
            add(q, "%s'%s', ", i ? ", " : "", o->sel[i].col->view);
        else if (i)
            add(q, ", ");
        add_value(q, o, o->sel[i].col, step);
        if (!o->json)
            add(q, " AS c%d", i);
    }
    add(q, "%s FROM %s\n", o->json ? ") AS c0" : "", from);
}

static void build_query(sqlbuf_t *q, const acct_opts_t *o)
{
    add_filters(q, o);
    add(q, "SELECT * FROM (");
    add_branch(q, o, false);
    if (!o->allocations)
        add_branch(q, o, true);
    add(q, ") x ORDER BY k_job, k_step");
}

/* ------------------------------------------------------------------------- */
/* Output */

static void format_duration(const char *v, char *buf, size_t len)
{
    double d = strtod(v, NULL);
    long long s = d > 0 ? (long long)floor(d) : 0;
    long long days = s / 86400;
    if (days)
        snprintf(buf, len, "%lld-%02lld:%02lld:%02lld", days, s % 86400 / 3600,
                 s % 3600 / 60, s % 60);
    else
        snprintf(buf, len, "%02lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
}

static const char *format_value(const column_t *col, const phx_db_result_t *res,
                                int row, int c, char *buf, size_t len)
{
    bool null = phx_db_result_isnull(res, row, c);
    const char *v = phx_db_result_get(res, row, c);
    if (null)
        return col->kind == KIND_LIMIT  ? "UNLIMITED"
               : col->kind == KIND_TIME ? "Unknown"
                                        : "";
    switch (col->kind) {
    case KIND_DURATION:
    case KIND_LIMIT: format_duration(v, buf, len); return buf;
    case KIND_TIME: {
        time_t t = (time_t)strtoll(v, NULL, 10);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        return buf;
    }
    case KIND_BYTES:
    case KIND_MIB: {
        unsigned long long n = strtoull(v, NULL, 10);
        phx_cli_format_bytes(col->kind == KIND_MIB ? n << 20 : n, buf, len);
        return buf;
    }
    default: return v;
    }
}

/* sacct's cell: padded to width (JobID on the left, the rest on the right),
 * cut with a '+' when longer. */
static void print_cell(const selected_t *s, const char *v, bool last)
{
    int len = (int)strlen(v);
    bool left = s->col == &columns[0];
    if (len > s->width)
        printf("%.*s+", s->width - 1, v);
    else
        printf(left ? "%-*s" : "%*s", s->width, v);
    putchar(last ? '\n' : ' ');
}

/* -P: "a|b", -p: "a|b|" (sacct's --parsable ends each line with one). */
static void print_parsable(const acct_opts_t *o, const char *v, bool last)
{
    fputs(v, stdout);
    if (!last || o->parsable_end)
        fputs(o->delimiter ? o->delimiter : "|", stdout);
    if (last)
        putchar('\n');
}

static void print_table(const acct_opts_t *o, const phx_db_result_t *res)
{
    char buf[128];
    for (int i = 0; i < o->nsel && !o->noheader; i++) {
        if (o->parsable)
            print_parsable(o, o->sel[i].col->name, i + 1 == o->nsel);
        else
            print_cell(&o->sel[i], o->sel[i].col->name, i + 1 == o->nsel);
    }
    if (!o->parsable && !o->noheader)
        for (int i = 0; i < o->nsel; i++) {
            for (int k = 0; k < o->sel[i].width; k++)
                putchar('-');
            putchar(i + 1 == o->nsel ? '\n' : ' ');
        }
    for (int r = 0; r < phx_db_result_rows(res); r++)
        for (int i = 0; i < o->nsel; i++) {
            /* c0 is the third column, after the sort keys */
            const char *v =
                format_value(o->sel[i].col, res, r, i + 2, buf, sizeof(buf));
            if (o->parsable)
                print_parsable(o, v, i + 1 == o->nsel);
            else
                print_cell(&o->sel[i], v, i + 1 == o->nsel);
        }
}

static int print_json(const phx_db_result_t *res)
{
    json_t *rows = json_array();
    for (int r = 0; r < phx_db_result_rows(res); r++) {
        json_error_t jerr;
        json_t *row = json_loads(phx_db_result_get(res, r, 2), JSON_DECODE_ANY, &jerr);
        if (!row) {
            fprintf(stderr, "phx: invalid JSON from the database: %s\n", jerr.text);
            json_decref(rows);
            return -1;
        }
        json_array_append_new(rows, row);
    }
    char *s = json_dumps(rows, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(s ? s : "[]");
    free(s);
    json_decref(rows);
    return 0;
}

int phx_cmd_acct(int argc, char **argv)
{
    acct_opts_t o = {0};
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc < 0 ? 2 : 0;
    sqlbuf_t q = {.len = 0};
    build_query(&q, &o);
    if (q.len >= sizeof(q.text) - 1) {
        fprintf(stderr, "phx: query too long\n");
        return 2;
    }
    phx_error_t err;
    const char *dsn = o.dsn ? o.dsn : phx_cli_dsn();
    phx_db_conn_t *db = phx_db_connect(dsn, &err);
    if (!db) {
        fprintf(stderr, "phx: could not connect to the accounting database: %s\n",
                err.text);
        return 1;
    }
    phx_db_result_t *res = NULL;
    rc = phx_db_query(db, q.text, q.nparams, q.params, &res, &err);
    phx_db_conn_close(db);
    if (rc < 0) {
        fprintf(stderr, "phx: %s\n", err.text);
        return 1;
    }
    if (o.json)
        rc = print_json(res);
    else
        print_table(&o, res);
    phx_db_result_destroy(res);
    return rc < 0 ? 1 : 0;
}
