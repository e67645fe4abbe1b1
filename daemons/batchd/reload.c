/* The settings batchd applies while running (batchd.operators, the priority
 * weights, the backfill bounds, the job limits, the partitions, batchd.enforce_accounts
 * and batchd.accounts_refresh (account_users is read again), batchd.log_level), read at
 * start and again on SIGHUP.  A file that cannot be read, is wrong, names an unknown
 * user or a time limit batchd cannot parse changes nothing; keys read only at start are
 * reported, not applied (lib/daemon.h). */
#include <stdlib.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/timefmt.h"
#include "lib/daemon.h"
#include "lib/http_limit.h"
#include "lib/log.h"

void batchd_conf_reloadable(batchd_t *b)
{
    const phx_conf_t *c = b->conf;
    phx_http_limit_set_max(b->http_limit,
                           (size_t)phx_conf_int(c, "batchd.max_http_connections"));
    phx_prio_weights_default(&b->weights);
    b->weights.age = (uint32_t)phx_conf_int(c, "batchd.priority_weight_age");
    b->weights.fairshare =
        (uint32_t)phx_conf_int(c, "batchd.priority_weight_fairshare");
    b->weights.job_size = (uint32_t)phx_conf_int(c, "batchd.priority_weight_job_size");
    b->weights.partition =
        (uint32_t)phx_conf_int(c, "batchd.priority_weight_partition");
    b->weights.max_age = phx_conf_int(c, "batchd.priority_max_age");
    b->weights.favor_small = phx_conf_bool(c, "batchd.priority_favor_small");
    b->weights.half_life = phx_conf_int(c, "batchd.fairshare_half_life");
    b->bf.window = phx_conf_int(c, "batchd.bf_window");
    b->bf.max_job_test = (uint32_t)phx_conf_int(c, "batchd.bf_max_job_test");
    b->max_jobs = (uint32_t)phx_conf_int(c, "batchd.max_jobs");
    b->max_jobs_per_user = (uint32_t)phx_conf_int(c, "batchd.max_jobs_per_user");
    b->max_running_per_user =
        (uint32_t)phx_conf_int(c, "batchd.max_running_jobs_per_user");
}

int batchd_conf_check(const phx_conf_t *conf, phx_error_t *err)
{
    int64_t t;
    if (phx_time_parse(phx_conf_str(conf, "batchd.default_time_limit"), &t, err) < 0)
        return phx_error_prefix(err, "batchd.default_time_limit");
    int64_t max;
    if (phx_time_parse(phx_conf_str(conf, "batchd.max_time_limit"), &max, err) < 0)
        return phx_error_prefix(err, "batchd.max_time_limit");
    bparts_t parts;
    if (batchd_parts_make(conf, t, max, &parts, err) < 0)
        return -1;
    batchd_parts_clear(&parts);
    bfeatures_t features;
    if (batchd_features_make(conf, &features, err) < 0)
        return -1;
    batchd_features_clear(&features);
    return 0;
}

/* The partitions again (checked with the fresh file already): jobs keep
 * their partition's name, nodes get their masks again. */
static void reload_partitions(batchd_t *b)
{
    bparts_t fresh;
    phx_error_t err;
    if (batchd_parts_make(b->conf, b->default_time, b->max_time, &fresh, &err) < 0) {
        phx_log_errx("partitions not reloaded (the running ones stay): %s", err.text);
        return;
    }
    bparts_t old = b->parts;
    bool same = batchd_parts_same(&old, &fresh);
    b->parts = fresh;
    b->partition = b->parts.v[b->parts.deflt].name;
    for (size_t i = 0; i < b->nnodes; i++)
        b->nodes[i].parts = batchd_parts_node_mask(&b->parts, b->nodes[i].name);
    batchd_parts_clear(&old);
    if (!same) /* a reload of, say, log_level keeps the nodes held */
        batchd_sched_parts_changed(b);
}

/* The node features again (checked with the fresh file already): a change
 * makes the jobs' node bitmaps again and asks their gang requests again. */
static void reload_features(batchd_t *b)
{
    bfeatures_t fresh;
    phx_error_t err;
    if (batchd_features_make(b->conf, &fresh, &err) < 0) {
        phx_log_errx("node features not reloaded (the running ones stay): %s",
                     err.text);
        return;
    }
    bool same = batchd_features_same(&b->features, &fresh);
    batchd_features_clear(&b->features);
    b->features = fresh;
    if (same)
        return;
    for (size_t i = 0; i < b->nnodes; i++)
        b->nodes[i].features = batchd_features_node(&b->features, b->nodes[i].name);
    b->nodes_gen++;
    batchd_sched_parts_changed(b);
}

void batchd_reload(batchd_t *b)
{
    phx_error_t err;
    uid_t *ops = NULL;
    size_t nops = 0;
    phx_conf_t *fresh =
        phx_daemon_conf_reread(batchd_schema, b->conf_file, b->conf_sets, b->conf_nsets,
                               "batchd.log_level", &err);
    if (!fresh || batchd_conf_check(fresh, &err) < 0 ||
        phx_daemon_uid_list(fresh, "batchd.operators", &ops, &nops, &err) < 0) {
        phx_log_errx("configuration not reloaded (the running one stays): %s",
                     err.text);
        phx_conf_destroy(fresh);
        return;
    }
    phx_daemon_conf_apply(b->conf, fresh, b->conf_file, "batchd.log_level", b->verbose);
    phx_conf_destroy(fresh);
    free(b->operators);
    b->operators = ops;
    b->noperators = nops;
    batchd_conf_reloadable(b);
    reload_partitions(b);
    reload_features(b);
    batchd_accounts_reload(b);
    b->prio_n = 0; /* the order is made again with the new weights */
    batchd_sched_dirty(b);
}
