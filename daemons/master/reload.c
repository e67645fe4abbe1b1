/* SIGHUP: read the configuration again and apply its reloadable keys:
 * master.operators (names resolved again), master.role_weights (the weight
 * of every subscribed framework's role, in the allocator and the frameworks
 * table) and master.log_level.  A file that cannot be read, is wrong or
 * names an unknown user changes nothing; keys read only at start are
 * reported, not applied (lib/daemon.h). */
#include <stdio.h>
#include <stdlib.h>

#include "daemons/master/alloc.h"
#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "lib/daemon.h"
#include "lib/hmap.h"
#include "lib/http_limit.h"
#include "lib/log.h"

static void reweigh(phx_master_t *m)
{
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        phx_fw_t *fw = v;
        double w = phx_master_role_weight(m, fw->role);
        phx_error_t err;
        if (w == fw->weight)
            continue;
        if (phx_alloc_role_set_weight(m->alloc, fw->role, w, &err) < 0) {
            phx_log_errx("framework %s: role %s keeps weight %g: %s", fw->id, fw->role,
                         fw->weight, err.text);
            continue;
        }
        phx_log_notice("framework %s: role %s now weighs %g (was %g)", fw->id, fw->role,
                       w, fw->weight);
        fw->weight = w;
        char weight[32];
        snprintf(weight, sizeof(weight), "%g", w);
        const char *params[] = {fw->id, weight};
        phx_master_write(m, "a framework's weight",
                         "UPDATE frameworks SET weight = $2::float8 WHERE id = $1", 2,
                         params);
    }
    phx_sched_dirty(m);
}

void phx_master_reload(phx_master_t *m)
{
    phx_error_t err;
    uid_t *ops = NULL;
    size_t nops = 0;
    phx_conf_t *fresh =
        phx_daemon_conf_reread(phx_master_schema, m->conf_file, m->conf_sets,
                               m->conf_nsets, "master.log_level", &err);
    if (!fresh ||
        phx_daemon_uid_list(fresh, "master.operators", &ops, &nops, &err) < 0) {
        phx_log_errx("configuration not reloaded (the running one stays): %s",
                     err.text);
        phx_conf_destroy(fresh);
        return;
    }
    phx_daemon_conf_apply(m->conf, fresh, m->conf_file, "master.log_level", m->verbose);
    phx_conf_destroy(fresh);
    free(m->operator_uids);
    m->operator_uids = ops;
    m->noperator_uids = nops;
    phx_http_limit_set_max(
        m->http_limit, (size_t)phx_conf_int(m->conf, "master.max_http_connections"));
    reweigh(m);
    phx_master_policy_audit(m);
}
