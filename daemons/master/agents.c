/* The master's registry of agents: lookup, state transitions (persisted),
 * start-up load from the database, heartbeat expiry, JSON for /state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemons/master/alloc.h"
#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "lib/hmap.h"
#include "db/db.h"
#include "lib/log.h"

double phx_master_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t phx_master_wall(void)
{
    return (int64_t)time(NULL);
}

double phx_master_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

phx_master_agent_t *phx_master_agent_by_id(phx_master_t *m, int64_t id)
{
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)id);
    return phx_hmap_get(m->agents_by_id, key);
}

int phx_master_agent_set_id(phx_master_t *m, phx_master_agent_t *a, int64_t id)
{
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)a->id);
    if (a->id && phx_hmap_get(m->agents_by_id, key) == a)
        phx_hmap_del(m->agents_by_id, key);
    a->id = id;
    snprintf(key, sizeof(key), "%lld", (long long)id);
    return phx_hmap_put(m->agents_by_id, key, a);
}

void phx_master_agent_sync_alloc(phx_master_t *m, phx_master_agent_t *a)
{
    if (!a->in_alloc) {
        if (!a->free || a->id == 0)
            return;
        phx_error_t err;
        if (phx_alloc_agent_add(m->alloc, a->id, a->free, &err) < 0) {
            phx_log_errx("agent \"%s\": %s", a->name, err.text);
            return;
        }
        a->in_alloc = true;
    }
    bool available = a->state == PHX_AGENT_UP && !a->drained;
    phx_alloc_agent_set_available(m->alloc, a->id, available);
    if (!available) { /* its offers go back */
        size_t pos = 0;
        void *v;
        while (phx_hmap_next(m->offers, &pos, NULL, &v)) {
            phx_offer_t *o = v;
            if (o->agent == a)
                phx_offer_drop(m, o, true);
        }
    }
    phx_sched_dirty(m);
}

const char *phx_master_agent_state_name(phx_agent_state_t s)
{
    switch (s) {
    case PHX_AGENT_UP: return "up";
    case PHX_AGENT_UNREACHABLE: return "unreachable";
    case PHX_AGENT_LOST: return "lost";
    }
    return "?";
}

phx_master_agent_t *phx_master_agent_find(phx_master_t *m, const char *name)
{
    for (size_t i = 0; i < m->nagents; i++)
        if (strcmp(m->agents[i]->name, name) == 0)
            return m->agents[i];
    return NULL;
}

phx_master_agent_t *phx_master_agent_add(phx_master_t *m, const char *name)
{
    if (m->nagents == m->cap_agents) {
        size_t cap = m->cap_agents ? 2 * m->cap_agents : 16;
        phx_master_agent_t **a = realloc(m->agents, cap * sizeof(*a));
        if (!a)
            return NULL;
        m->agents = a;
        m->cap_agents = cap;
    }
    phx_master_agent_t *a = calloc(1, sizeof(*a));
    if (!a || !(a->name = strdup(name)) || !(a->tasks = phx_hmap_create())) {
        if (a)
            free(a->name);
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    a->state = PHX_AGENT_UNREACHABLE;
    m->agents[m->nagents++] = a;
    return a;
}

static void agent_free(phx_master_agent_t *a)
{
    phx_hmap_destroy(a->tasks);
    phx_topo_free_destroy(a->free);
    phx_topo_destroy(a->topo);
    free(a->name);
    free(a->address);
    free(a->drain_reason);
    free(a);
}

void phx_master_agents_destroy(phx_master_t *m)
{
    for (size_t i = 0; i < m->nagents; i++)
        agent_free(m->agents[i]);
    free(m->agents);
    phx_hmap_destroy(m->agents_by_id);
    m->agents_by_id = NULL;
    m->agents = NULL;
    m->nagents = m->cap_agents = 0;
}

void phx_master_agent_set_state(phx_master_t *m, phx_master_agent_t *a,
                                phx_agent_state_t s, const char *why)
{
    if (a->state == s)
        return;
    phx_log_notice("agent \"%s\": %s -> %s (%s)", a->name,
                   phx_master_agent_state_name(a->state),
                   phx_master_agent_state_name(s), why);
    a->state = s;
    a->state_changed_at = phx_master_wall();
    phx_master_agent_sync_alloc(m, a);
    if (s == PHX_AGENT_LOST)
        phx_tasks_agent_lost(m, a);
    const char *params[] = {a->name, phx_master_agent_state_name(s)};
    char what[128];
    snprintf(what, sizeof(what), "the state of agent \"%s\"", a->name);
    phx_master_write(
        m, what,
        "UPDATE agents SET state = $2, state_changed_at = now() WHERE name = $1", 2,
        params);
}

void phx_master_agents_check(phx_master_t *m, double now)
{
    double limit = m->heartbeat_interval * m->heartbeat_missed;
    for (size_t i = 0; i < m->nagents; i++) {
        phx_master_agent_t *a = m->agents[i];
        if (a->state == PHX_AGENT_LOST || now - a->last_seen <= limit)
            continue;
        char why[96];
        snprintf(why, sizeof(why), "no heartbeat for %.1f s", now - a->last_seen);
        if (a->conn)
            phx_master_conn_close(a->conn, why); /* makes it unreachable */
        phx_master_agent_set_state(m, a, PHX_AGENT_LOST, why);
    }
}

int phx_master_agents_load(phx_master_t *m, const char *dsn, phx_error_t *err)
{
    phx_db_conn_t *db = phx_db_connect(dsn, err);
    if (!db)
        return -1;
    phx_db_result_t *res = NULL;
    int rc = -1;
    /* A master that starts gives every agent not already lost a fresh grace
     * period to re-register. */
    if (phx_master_fenced_query(
            m, db,
            "UPDATE agents SET state = 'unreachable', state_changed_at = now() "
            "WHERE state = 'up'",
            0, NULL, NULL, err) < 0 ||
        phx_db_query(db,
                     "SELECT id, name, address, state, topology::text, drained, "
                     "drain_reason, extract(epoch from registered_at)::bigint "
                     "FROM agents ORDER BY id",
                     0, NULL, &res, err) < 0)
        goto out;
    double now = phx_master_now();
    for (int r = 0; r < phx_db_result_rows(res); r++) {
        const char *name = phx_db_result_get(res, r, 1);
        phx_master_agent_t *a = phx_master_agent_add(m, name);
        if (!a) {
            phx_error_set(err, "out of memory loading agents");
            goto out;
        }
        if (phx_master_agent_set_id(
                m, a, strtoll(phx_db_result_get(res, r, 0), NULL, 10)) < 0) {
            phx_error_set(err, "out of memory loading agents");
            goto out;
        }
        a->address = strdup(phx_db_result_get(res, r, 2));
        a->state = strcmp(phx_db_result_get(res, r, 3), "lost") == 0
                       ? PHX_AGENT_LOST
                       : PHX_AGENT_UNREACHABLE;
        a->drained = strcmp(phx_db_result_get(res, r, 5), "t") == 0;
        if (!phx_db_result_isnull(res, r, 6))
            a->drain_reason = strdup(phx_db_result_get(res, r, 6));
        a->registered_at = strtoll(phx_db_result_get(res, r, 7), NULL, 10);
        a->state_changed_at = phx_master_wall();
        a->last_seen = now;
        json_error_t jerr;
        json_t *tj = json_loads(phx_db_result_get(res, r, 4), 0, &jerr);
        phx_error_t terr;
        a->topo = tj ? phx_topo_from_json(tj, &terr) : NULL;
        json_decref(tj);
        if (a->topo && (a->free = phx_topo_free_create(a->topo)))
            phx_master_agent_sync_alloc(m, a);
        else
            phx_log_warnx("agent \"%s\": stored topology unreadable; waiting for it to "
                          "register",
                          name);
    }
    phx_log_info("loaded %zu agents from the database", m->nagents);
    rc = 0;
out:
    phx_db_result_destroy(res);
    phx_db_conn_close(db);
    return rc;
}

json_t *phx_master_agent_json(const phx_master_agent_t *a)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:b, s:s?, s:s?, s:I, s:I}", "id", (json_int_t)a->id,
                  "name", a->name, "state", phx_master_agent_state_name(a->state),
                  "drained", a->drained, "drain_reason", a->drain_reason, "address",
                  a->address, "registered_at", (json_int_t)a->registered_at,
                  "state_changed_at", (json_int_t)a->state_changed_at);
    if (!o || !a->topo)
        return o;
    const phx_topo_t *t = a->topo;
    json_t *res = json_pack("{s:i, s:i, s:i, s:i, s:I, s:i, s:I}", "sockets",
                            phx_topo_nsockets(t), "numas", phx_topo_nnumas(t), "cores",
                            phx_topo_ncores(t), "pus", phx_topo_npus(t), "memory",
                            (json_int_t)phx_topo_memory(t), "cores_free",
                            a->free ? phx_topo_free_ncores(a->free) : 0, "memory_free",
                            (json_int_t)(a->free ? phx_topo_free_memory(a->free) : 0));
    json_object_set_new(o, "resources", res);
    if (a->free) {
        char *freelist = phx_topo_coreset_str(phx_topo_free_cores(a->free));
        json_object_set_new(o, "free_cores", json_string(freelist ? freelist : ""));
        free(freelist);
    }
    json_object_set_new(o, "topology", phx_topo_to_json(t));
    return o;
}
