/* Frameworks: registry, disconnection with a failover timeout, removal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/log.h"

phx_fw_t *phx_fw_find(phx_master_t *m, const char *id)
{
    return phx_hmap_get(m->frameworks, id);
}

phx_fw_t *phx_fw_create(phx_master_t *m, const char *id)
{
    if (strlen(id) > PHX_FW_ID_MAX) { /* never cut: another framework's prefix */
        errno = ENAMETOOLONG;
        return NULL;
    }
    phx_fw_t *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return NULL;
    snprintf(fw->id, sizeof(fw->id), "%s", id);
    fw->master = m;
    fw->tasks = phx_hmap_create();
    fw->offers = phx_hmap_create();
    fw->weight = 1.0;
    if (!fw->tasks || !fw->offers || phx_hmap_put(m->frameworks, fw->id, fw) < 0) {
        phx_hmap_destroy(fw->tasks);
        phx_hmap_destroy(fw->offers);
        free(fw);
        return NULL;
    }
    return fw;
}

void phx_fw_send(phx_fw_t *fw, json_t *event)
{
    if (fw->stream)
        phx_stream_send(fw->stream, event);
    else
        json_decref(event);
}

static void rescind_all(phx_master_t *m, phx_fw_t *fw, bool tell)
{
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(fw->offers, &pos, NULL, &v))
        phx_offer_drop(m, v, tell);
}

static void persist_state(phx_master_t *m, phx_fw_t *fw, const char *state)
{
    const char *params[] = {fw->id, state};
    char what[PHX_FW_ID_MAX + 64];
    snprintf(what, sizeof(what), "framework %s as %s", fw->id, state);
    phx_master_write(
        m, what,
        "UPDATE frameworks SET state = $2, "
        "disconnected_at = CASE WHEN $2 = 'disconnected' THEN now() END, "
        "removed_at = CASE WHEN $2 = 'removed' THEN now() END WHERE id = $1",
        2, params);
}

static void failover_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_fw_t *fw = arg;
    phx_fw_remove(fw->master, fw, "failover timeout expired");
}

void phx_fw_disconnected(phx_master_t *m, phx_fw_t *fw)
{
    rescind_all(m, fw, false);
    phx_alloc_framework_deactivate(m->alloc, fw->id);
    persist_state(m, fw, "disconnected");
    double t = fw->failover_timeout;
    phx_log_notice("framework %s (%s) disconnected; its tasks are kept for %.0f s",
                   fw->id, fw->name, t);
    if (!fw->failover_ev)
        fw->failover_ev = event_new(m->base, -1, 0, failover_expired, fw);
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
    if (fw->failover_ev)
        event_add(fw->failover_ev, &tv);
}

void phx_fw_remove(phx_master_t *m, phx_fw_t *fw, const char *why)
{
    phx_log_notice("framework %s (%s) removed: %s", fw->id, fw->name, why);
    fw->removed = true;
    if (fw->failover_ev)
        event_del(fw->failover_ev);
    rescind_all(m, fw, true);
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(fw->tasks, &pos, NULL, &v)) {
        phx_task_t *t = v;
        if (!phx_task_state_terminal(t->state))
            phx_task_kill(m, t, why);
    }
    if (fw->stream) {
        phx_stream_close(fw->stream);
        fw->stream = NULL;
    }
    phx_alloc_framework_deactivate(m->alloc, fw->id);
    persist_state(m, fw, "removed");
    /* Tasks stay in memory until their agents report them ended; the
     * framework record goes with the last of them (phx_task_forget). */
    if (phx_hmap_count(fw->tasks) == 0)
        phx_fw_forget(m, fw);
}

void phx_fw_forget(phx_master_t *m, phx_fw_t *fw)
{
    if (fw->in_alloc)
        phx_alloc_framework_remove(m->alloc, fw->id);
    phx_hmap_del(m->frameworks, fw->id);
    phx_fw_free(fw);
}

void phx_fw_free(phx_fw_t *fw)
{
    if (!fw)
        return;
    if (fw->failover_ev)
        event_free(fw->failover_ev);
    phx_hmap_destroy(fw->tasks);
    phx_hmap_destroy(fw->offers);
    free(fw->name);
    free(fw->user);
    free(fw->role);
    free(fw);
}

void phx_fws_destroy(phx_master_t *m)
{
    if (!m->frameworks)
        return;
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        phx_fw_t *fw = v;
        size_t tp = 0;
        void *tv;
        while (phx_hmap_next(fw->tasks, &tp, NULL, &tv)) {
            phx_task_t *t = tv;
            phx_gang_release(t->gang, t); /* the gang goes with its last task */
            phx_task_free(t);
        }
        if (fw->stream)
            phx_stream_close(fw->stream);
        phx_fw_free(fw);
    }
    phx_hmap_destroy(m->frameworks);
    m->frameworks = NULL;
}
