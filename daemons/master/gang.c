/* Gangs: register an accepted gang, write it with its tasks in one
 * transaction, then launch every task; a gang whose commit fails launches
 * nothing.  A gang that loses a task abnormally loses them all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/sched.h"
#include "lib/log.h"

static char *task_key(const phx_task_t *t)
{
    size_t n = strlen(t->fw->id) + strlen(t->id) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s", t->fw->id, t->id);
    return k;
}

int phx_task_index(phx_task_t *t)
{
    char *k = task_key(t);
    if (!k)
        return -1;
    int rc = phx_hmap_put(t->fw->tasks, t->id, t);
    if (rc == 0 && phx_hmap_put(t->agent->tasks, k, t) < 0) {
        phx_hmap_del(t->fw->tasks, t->id);
        rc = -1;
    }
    free(k);
    return rc;
}

void phx_task_unindex(phx_task_t *t)
{
    char *k = task_key(t);
    phx_hmap_del(t->fw->tasks, t->id);
    if (k)
        phx_hmap_del(t->agent->tasks, k);
    free(k);
}

static const char gang_sql[] =
    "WITH g AS (INSERT INTO gangs (framework_id, ntasks, nagents) VALUES ($1, $2, $3) "
    "RETURNING id) "
    "INSERT INTO tasks (framework_id, task_id, gang_id, agent_id, name, user_name, "
    "uid, cores, gpus, cpus, memory_bytes, command) "
    "SELECT $1, t.task_id, g.id, t.agent_id, t.name, t.user_name, t.uid, t.cores, "
    "t.gpus, t.cpus, t.memory_bytes, t.command "
    "FROM g, jsonb_to_recordset($4::jsonb) AS t(task_id text, agent_id bigint, "
    "name text, user_name text, uid integer, cores text, gpus text, cpus integer, "
    "memory_bytes bigint, command jsonb) RETURNING gang_id";

static void gang_committed(const phx_error_t *err, phx_db_result_t *const *res,
                           int nres, void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    phx_gang_t *g = arg;
    phx_master_t *m = g->fw->master;
    if (err || nres < 1 || phx_db_result_rows(res[0]) < 1) {
        phx_log_errx("could not record a gang of framework %s: %s", g->fw->id,
                     err ? err->text : "no row");
        char msg[600];
        snprintf(msg, sizeof(msg), "could not record the gang: %s",
                 err ? err->text : "no row");
        g->failing = true;
        for (int i = 0; i < g->ntasks; i++)
            phx_task_update(m, g->tasks[i], "TASK_ERROR", "REASON_TASK_INVALID", msg,
                            NULL);
        return;
    }
    g->id = strtoll(phx_db_result_get(res[0], 0, 0), NULL, 10);
    phx_log_info("gang %lld of framework %s: %d tasks committed", (long long)g->id,
                 g->fw->id, g->ntasks);
    for (int i = 0; i < g->ntasks; i++) {
        phx_task_t *t = g->tasks[i];
        json_object_set_new(t->launch, "gang_id", json_integer(g->id));
        if (phx_task_state_terminal(t->state))
            continue;
        if (t->killing || g->failing) {
            phx_task_update(m, t, "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH",
                            "killed before launch", NULL);
            continue;
        }
        if (phx_task_send_launch(m, t) < 0)
            phx_task_update(m, t, "TASK_LOST", "REASON_AGENT_DISCONNECTED",
                            "agent not connected at launch", NULL);
    }
}

/* The rows' JSON, each task's "command" being its LAUNCH object (gang_id 0)
 * made of the text phx_task_canon made, not serialised again. */
static char *rows_text(phx_task_t **tasks, size_t n, const json_t *rows)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (out)
        out[len++] = '[';
    for (size_t i = 0; out && i < n; i++) {
        size_t lc = 0;
        char *row = json_dumps(json_array_get(rows, i), JSON_COMPACT);
        char *cmd = row ? phx_task_launch_text(tasks[i], 0, &lc) : NULL;
        size_t lr = row ? strlen(row) : 0;
        static const char key[] = ",\"command\":";
        size_t need = len + lr + sizeof(key) + lc + 3;
        char *grown = out;
        if (cmd && lr > 2 && need > cap && (grown = realloc(out, 2 * need)))
            cap = 2 * need;
        if (!cmd || lr <= 2 || !grown) {
            free(row);
            free(cmd);
            free(out); /* still ours when realloc failed */
            return NULL;
        }
        out = grown;
        if (i > 0)
            out[len++] = ',';
        memcpy(out + len, row, lr - 1); /* without its "}" */
        len += lr - 1;
        memcpy(out + len, key, sizeof(key) - 1);
        len += sizeof(key) - 1;
        memcpy(out + len, cmd, lc);
        len += lc;
        out[len++] = '}';
        free(row);
        free(cmd);
    }
    if (out) {
        out[len++] = ']';
        out[len] = '\0';
    }
    return out;
}

int phx_gang_start(phx_master_t *m, phx_fw_t *fw, phx_task_t **tasks, size_t n,
                   json_t *rows, phx_error_t *err)
{
    phx_gang_t *g = calloc(1, sizeof(*g));
    if (!g || !(g->tasks = calloc(n, sizeof(*g->tasks)))) {
        free(g);
        return phx_error_set(err, "out of memory");
    }
    g->fw = fw;
    g->ntasks = (int)n;
    g->live = (int)n;
    int nagents = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= tasks[k]->agent == tasks[i]->agent;
        nagents += !seen;
    }
    char *text = rows_text(tasks, n, rows);
    char ntext[16], atext[16];
    snprintf(ntext, sizeof(ntext), "%zu", n);
    snprintf(atext, sizeof(atext), "%d", nagents);
    const char *params[] = {fw->id, ntext, atext, text};
    int rc =
        text ? phx_db_store_write(m->store, gang_sql, 4, params, gang_committed, g, err)
             : phx_error_set(err, "out of memory");
    free(text);
    if (rc < 0) {
        free(g->tasks);
        free(g);
        return phx_error_prefix(err, "could not record the gang");
    }
    size_t indexed = 0;
    for (; indexed < n; indexed++) {
        tasks[indexed]->gang = g;
        g->tasks[indexed] = tasks[indexed];
        if (phx_task_index(tasks[indexed]) < 0)
            break;
    }
    if (indexed < n) {
        /* The write is queued: let it commit, and fail the tasks then. */
        g->failing = true;
        phx_log_errx("out of memory registering a gang of framework %s", fw->id);
    }
    return 0;
}

/* A gang's end: the ends that meet in a group commit are one statement
 * (they were one each, a statement per job for phx-batchd). */
static const phx_db_rows_t gang_end_rows = {
    .one = "UPDATE gangs SET ended_at = now() WHERE id = $1::bigint",
    .many = "UPDATE gangs SET ended_at = now() FROM unnest($1::bigint[]) AS u (id) "
            "WHERE gangs.id = u.id",
    .nparams = 1,
    .nkeys = 1,
};

void phx_gang_task_ended(phx_master_t *m, phx_task_t *t, bool abnormal)
{
    phx_gang_t *g = t->gang;
    if (!g)
        return;
    g->live--;
    if (abnormal && !g->failing && g->live > 0) {
        g->failing = true;
        char why[300];
        snprintf(why, sizeof(why), "gang member %s ended abnormally (%s)", t->id,
                 t->state);
        phx_log_notice("gang %lld of framework %s: %s; killing the rest",
                       (long long)g->id, g->fw->id, why);
        for (int i = 0; i < g->ntasks; i++)
            if (g->tasks[i] != t && !phx_task_state_terminal(g->tasks[i]->state))
                phx_task_kill(m, g->tasks[i], why);
    }
    if (g->live == 0 && g->id > 0) {
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)g->id);
        const char *params[] = {id};
        phx_master_write_row(m, "the end of a gang", &gang_end_rows, params);
    }
}

void phx_gang_release(phx_gang_t *g, phx_task_t *t)
{
    if (!g)
        return;
    int left = 0;
    for (int i = 0; i < g->ntasks; i++) {
        if (g->tasks[i] == t)
            g->tasks[i] = NULL;
        left += g->tasks[i] != NULL;
    }
    if (left == 0) {
        free(g->tasks);
        free(g);
    }
}
