#include "daemons/batchd/priority.h"

#include <math.h>
#include <stdlib.h>

#define WEEK (7 * 24 * 3600)

void phx_prio_weights_default(phx_prio_weights_t *w)
{
    *w = (phx_prio_weights_t){
        .age = 1000,
        .fairshare = 1000,
        .max_age = WEEK,
        .half_life = WEEK,
    };
}

static double decay(double value, int64_t elapsed, int64_t half_life)
{
    if (half_life <= 0 || elapsed <= 0)
        return value;
    return value * exp2(-(double)elapsed / (double)half_life);
}

double phx_usage_value(const phx_usage_t *u, int64_t now, int64_t half_life)
{
    return decay(u->value, now - u->at, half_life);
}

void phx_usage_add(phx_usage_t *u, double amount, int64_t now, int64_t half_life)
{
    /* Usage never moves back in time: a late report decays from u->at. */
    if (now > u->at) {
        u->value = decay(u->value, now - u->at, half_life);
        u->at = now;
    }
    u->value += amount;
}

double phx_fairshare_factor(double usage_norm, double shares_norm)
{
    if (shares_norm <= 0)
        return 0;
    return exp2(-usage_norm / shares_norm);
}

void phx_fairshare_compute(phx_fs_party_t *p, size_t count, int64_t now,
                           int64_t half_life)
{
    double total_usage = 0, total_shares = 0;
    for (size_t i = 0; i < count; i++) {
        total_usage += phx_usage_value(&p[i].usage, now, half_life);
        total_shares += p[i].shares > 0 ? p[i].shares : 0;
    }
    for (size_t i = 0; i < count; i++) {
        double u = total_usage > 0
                       ? phx_usage_value(&p[i].usage, now, half_life) / total_usage
                       : 0;
        double s = total_shares > 0 && p[i].shares > 0 ? p[i].shares / total_shares : 0;
        p[i].factor = phx_fairshare_factor(u, s);
    }
}

static double clamp01(double v)
{
    return v < 0 || isnan(v) ? 0 : v > 1 ? 1 : v;
}

uint32_t phx_priority_compute(const phx_prio_weights_t *w, const phx_prio_job_t *job,
                              int64_t cluster_cpus, int64_t now)
{
    double age = 0;
    if (w->max_age > 0 && now > job->eligible_time) {
        int64_t a = now - job->eligible_time;
        age = a >= w->max_age ? 1 : (double)a / (double)w->max_age;
    }
    double size =
        cluster_cpus > 0 ? clamp01((double)job->cpus / (double)cluster_cpus) : 0;
    if (w->favor_small)
        size = 1 - size;
    double p = (double)w->age * age + (double)w->fairshare * clamp01(job->fairshare) +
               (double)w->job_size * size +
               (double)w->partition * clamp01(job->partition) +
               (double)w->qos * clamp01(job->qos);
    /* Round each job's sum the same way: ties stay ties. */
    p = floor(p + 0.5) - (double)job->nice;
    if (p < 1)
        return 1;
    if (p > UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)p;
}

int phx_priority_cmp(const void *a, const void *b)
{
    const phx_prio_job_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->submit_time != y->submit_time)
        return x->submit_time < y->submit_time ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void phx_priority_sort(const phx_prio_weights_t *w, phx_prio_job_t *jobs, size_t count,
                       int64_t cluster_cpus, int64_t now)
{
    for (size_t i = 0; i < count; i++)
        jobs[i].priority = phx_priority_compute(w, &jobs[i], cluster_cpus, now);
    qsort(jobs, count, sizeof(*jobs), phx_priority_cmp);
}
