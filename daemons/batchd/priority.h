/* Multifactor priority, as Slurm's priority/multifactor:
 *
 *   priority = w_age * age + w_fairshare * F + w_jobsize * size
 *            + w_partition * partition + w_qos * qos - nice
 *
 * each factor in 0..1: age = min(now - eligible, max_age) / max_age;
 * F = 2^(-U/S) with U the user's decayed usage share and S its share of the
 * shares; size = the job's cpus / the cluster's (1 - that with favor_small);
 * partition and QOS factors as the daemon's configuration gives them.
 * The result is clamped to 1..UINT32_MAX (0 would mean held). */
#ifndef PHX_BATCHD_PRIORITY_H
#define PHX_BATCHD_PRIORITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Filled by the daemon from its configuration. */
typedef struct phx_prio_weights {
    uint32_t age;
    uint32_t fairshare;
    uint32_t job_size;
    uint32_t partition;
    uint32_t qos;
    int64_t max_age;   /* seconds; age stops growing there (Slurm: 7 days) */
    int64_t half_life; /* seconds of usage decay (Slurm: 7 days); 0: no decay */
    bool favor_small;
} phx_prio_weights_t;

/* Slurm's defaults: max age and half-life 7 days, weights 0 except age and
 * fairshare 1000 (a small site's usual starting point). */
void phx_prio_weights_default(phx_prio_weights_t *w);

/* One user's (or account's) usage: cpu-seconds decayed up to `at`. */
typedef struct phx_usage {
    double value;
    int64_t at;
} phx_usage_t;

/* Decay u to now, then add amount (cpu-seconds used at now). */
void phx_usage_add(phx_usage_t *u, double amount, int64_t now, int64_t half_life);
/* u's value decayed to now (u unchanged). */
double phx_usage_value(const phx_usage_t *u, int64_t now, int64_t half_life);

/* One fair-share party: its shares (raw, normalised over all parties) and
 * its usage; factor is written by phx_fairshare_compute. */
typedef struct phx_fs_party {
    double shares;
    phx_usage_t usage;
    double factor; /* out: 2^(-U/S), 0..1 */
} phx_fs_party_t;

/* F = 2^(-usage_norm / shares_norm); 0 when shares_norm is 0. */
double phx_fairshare_factor(double usage_norm, double shares_norm);
/* Fill factor for every party at now: U = its decayed usage / the total
 * (0 when nobody used anything), S = its shares / the total. */
void phx_fairshare_compute(phx_fs_party_t *parties, size_t count, int64_t now,
                           int64_t half_life);

typedef struct phx_prio_job {
    uint64_t id;
    int64_t submit_time;
    int64_t eligible_time; /* age counts from here */
    int64_t cpus;          /* ntasks * cpus_per_task */
    double fairshare;      /* F of its user, 0..1 */
    double partition;      /* 0..1 */
    double qos;            /* 0..1 */
    int64_t nice;
    uint32_t priority; /* out */
} phx_prio_job_t;

uint32_t phx_priority_compute(const phx_prio_weights_t *w, const phx_prio_job_t *job,
                              int64_t cluster_cpus, int64_t now);
/* Compute every job's priority and sort: highest first, then earlier
 * submit, then lower id (a total order: the same input gives the same
 * queue). */
void phx_priority_sort(const phx_prio_weights_t *w, phx_prio_job_t *jobs, size_t count,
                       int64_t cluster_cpus, int64_t now);
/* qsort comparator of that order over computed priorities. */
int phx_priority_cmp(const void *a, const void *b);

#endif
