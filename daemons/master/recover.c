/* Recovery at start-up: frameworks not removed and tasks not ended come back
 * from the database before agents re-register, so that a restarted (or newly
 * elected) master kills nothing that runs.  Frameworks come back
 * disconnected, with their failover timeout counted from now; each task's
 * resources are allocated again in its agent's tracker.  Numbered steps
 * that were running are closed CANCELLED: a step lives in the master's
 * memory only, and the agents killed its ranks when they lost the master. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "daemons/master/step_record.h"
#include "db/db.h"
#include "lib/log.h"

static int load_frameworks(phx_master_t *m, phx_db_conn_t *db, phx_error_t *err)
{
    phx_db_result_t *res = NULL;
    if (phx_db_query(
            db,
            "SELECT id, name, user_name, uid, coalesce(roles[1], '*'), weight, "
            "failover_timeout FROM frameworks WHERE state <> 'removed'",
            0, NULL, &res, err) < 0)
        return -1;
    for (int r = 0; r < phx_db_result_rows(res); r++) {
        phx_fw_t *fw = phx_fw_create(m, phx_db_result_get(res, r, 0));
        if (!fw) {
            phx_error_set(err, "framework %.*s: %s", PHX_FW_ID_MAX,
                          phx_db_result_get(res, r, 0),
                          errno == ENAMETOOLONG ? "id too long" : "out of memory");
            phx_db_result_destroy(res);
            return -1;
        }
        fw->name = strdup(phx_db_result_get(res, r, 1));
        fw->user = strdup(phx_db_result_get(res, r, 2));
        fw->authenticated = !phx_db_result_isnull(res, r, 3);
        fw->uid = (uid_t)strtoul(phx_db_result_get(res, r, 3), NULL, 10);
        fw->role = strdup(phx_db_result_get(res, r, 4));
        fw->weight = atof(phx_db_result_get(res, r, 5));
        fw->failover_timeout = atof(phx_db_result_get(res, r, 6));
        phx_error_t aerr;
        phx_alloc_role_set_weight(m->alloc, fw->role, fw->weight > 0 ? fw->weight : 1,
                                  &aerr);
        if (phx_alloc_framework_add(m->alloc, fw->id, fw->role, &aerr) == 0) {
            fw->in_alloc = true;
            phx_alloc_framework_deactivate(m->alloc, fw->id);
        }
    }
    phx_db_result_destroy(res);
    return 0;
}

static phx_gang_t *gang_of(phx_hmap_t *gangs, phx_fw_t *fw, const char *id, int ntasks)
{
    phx_gang_t *g = phx_hmap_get(gangs, id);
    if (g)
        return g;
    if (!(g = calloc(1, sizeof(*g))) ||
        !(g->tasks = calloc((size_t)ntasks, sizeof(*g->tasks)))) {
        free(g);
        return NULL;
    }
    g->id = strtoll(id, NULL, 10);
    g->fw = fw;
    if (phx_hmap_put(gangs, id, g) < 0) {
        free(g->tasks);
        free(g);
        return NULL;
    }
    return g;
}

/* The task's grant: its cores and, per NUMA domain, memory per core, and its
 * GPUs. */
static phx_topo_grant_t *grant_of(const phx_topo_t *topo, const char *cores,
                                  const char *gpus, int cpus, uint64_t memory)
{
    phx_topo_grant_t *g = phx_topo_grant_create(topo);
    phx_topo_coreset_t *set = phx_topo_coreset_create(phx_topo_ncores(topo));
    phx_error_t err;
    if (!g || !set || phx_topo_coreset_parse(set, cores, &err) < 0 ||
        phx_gpus_parse(g, topo, gpus, &err) < 0)
        goto error;
    uint64_t per_cpu = cpus > 0 ? (memory + (uint64_t)cpus - 1) / (uint64_t)cpus : 0;
    for (int c = phx_topo_coreset_next(set, -1); c >= 0;
         c = phx_topo_coreset_next(set, c)) {
        int numa = phx_topo_core_numa(topo, c);
        if (phx_topo_grant_add_core(g, c) < 0 ||
            phx_topo_grant_set_memory(g, numa,
                                      phx_topo_grant_memory(g, numa) + per_cpu) < 0)
            goto error;
    }
    phx_topo_coreset_destroy(set);
    return g;
error:
    phx_topo_coreset_destroy(set);
    phx_topo_grant_destroy(g);
    return NULL;
}

static int load_tasks(phx_master_t *m, phx_db_conn_t *db, phx_error_t *err)
{
    phx_db_result_t *res = NULL;
    if (phx_db_query(
            db,
            "SELECT t.framework_id, t.task_id, t.gang_id, t.agent_id, t.cores, "
            "t.cpus, t.memory_bytes, t.state, g.ntasks, (SELECT coalesce(max("
            "s.step_id::bigint) + 1, 0) FROM job_steps s WHERE s.gang_id = t.gang_id "
            "AND s.step_id ~ '^[0-9]+$'), t.gpus FROM tasks t "
            "JOIN gangs g ON g.id = t.gang_id WHERE t.ended_at IS NULL "
            "ORDER BY t.gang_id",
            0, NULL, &res, err) < 0)
        return -1;
    phx_hmap_t *gangs = phx_hmap_create();
    int n = 0;
    for (int r = 0; gangs && r < phx_db_result_rows(res); r++) {
        const char *fw_id = phx_db_result_get(res, r, 0),
                   *id = phx_db_result_get(res, r, 1);
        phx_fw_t *fw = phx_fw_find(m, fw_id);
        phx_master_agent_t *a =
            phx_master_agent_by_id(m, strtoll(phx_db_result_get(res, r, 3), NULL, 10));
        if (!fw || !a || !a->topo) {
            phx_log_warnx(
                "task %s/%s: its framework or agent is gone; it is not recovered",
                fw_id, id);
            continue;
        }
        phx_task_t *t = calloc(1, sizeof(*t));
        int cpus = atoi(phx_db_result_get(res, r, 5));
        uint64_t memory = strtoull(phx_db_result_get(res, r, 6), NULL, 10);
        phx_gang_t *g = gang_of(gangs, fw, phx_db_result_get(res, r, 2),
                                atoi(phx_db_result_get(res, r, 8)));
        if (!t || !g || !(t->id = strdup(id)) ||
            !(t->grant = grant_of(a->topo, phx_db_result_get(res, r, 4),
                                  phx_db_result_get(res, r, 10), cpus, memory))) {
            phx_task_free(t);
            phx_log_errx("task %s/%s could not be recovered", fw_id, id);
            continue;
        }
        t->fw = fw;
        t->agent = a;
        t->cpus = cpus;
        t->memory = memory;
        t->gang = g;
        g->next_step = atoi(phx_db_result_get(res, r, 9)); /* numbered steps go on */
        /* A task that never reported counts as running: it was launched. */
        const char *state = phx_db_result_get(res, r, 7);
        t->state = strcmp(state, "TASK_STAGING") == 0 ? "TASK_STAGING" : "TASK_RUNNING";
        g->tasks[g->ntasks++] = t;
        g->live++;
        phx_error_t aerr;
        if (phx_alloc_usage_add(m->alloc, a->id, fw->id, t->id, t->grant, 0, &aerr) < 0)
            phx_log_errx("task %s/%s: %s", fw_id, id, aerr.text);
        else
            t->in_alloc = true;
        if (phx_task_index(t) < 0)
            phx_log_errx("task %s/%s could not be indexed", fw_id, id);
        n++;
    }
    phx_hmap_destroy(gangs); /* gangs are owned by their tasks */
    phx_db_result_destroy(res);
    if (!gangs)
        return phx_error_set(err, "out of memory");
    phx_log_info("recovered %zu frameworks and %d running tasks",
                 phx_hmap_count(m->frameworks), n);
    return 0;
}

/* Not fatal: a master that cannot close them still schedules. */
static void close_steps(phx_master_t *m, phx_db_conn_t *db)
{
    const char *p[] = {"CANCELLED"};
    phx_db_result_t *res = NULL;
    phx_error_t err;
    if (phx_master_fenced_query(m, db, phx_step_rec_close_sql, 1, p, &res, &err) < 0) {
        phx_log_errx("could not close the steps left running: %s", err.text);
        return;
    }
    long n = phx_db_result_affected(res);
    phx_db_result_destroy(res);
    phx_log(n > 0 ? LOG_NOTICE : LOG_INFO, false,
            "closed %ld numbered steps left running by the previous master (CANCELLED)",
            n);
}

int phx_master_recover(phx_master_t *m, const char *dsn, phx_error_t *err)
{
    phx_db_conn_t *db = phx_db_connect(dsn, err);
    if (!db)
        return -1;
    close_steps(m, db);
    int rc = load_frameworks(m, db, err) < 0 || load_tasks(m, db, err) < 0 ? -1 : 0;
    phx_db_conn_close(db);
    return rc;
}

void phx_master_recover_start_timers(phx_master_t *m)
{
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        phx_fw_t *fw = v;
        if (!fw->stream && !fw->removed)
            phx_fw_disconnected(m, fw);
    }
}
