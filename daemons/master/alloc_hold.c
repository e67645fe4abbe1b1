/* Allocator: gang requests.  The head request (highest role weight, then
 * oldest) is served: the planner predicts from task end times when enough
 * bundles of its shape will be free (T*), chooses the agents that will
 * provide them (the hold set), holds their free resources, lends what is
 * held with release_by = T* when T* is known, and offers the held resources
 * to the requester, all in one pass, once they make up the gang. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc_impl.h"

struct point {
    double t;
    struct alloc_agent *ag;
    int fit; /* the agent's bundles from t on */
};

struct event {
    double t;
    const struct alloc_res *res;
};

void alloc_request_free(struct alloc_request *r)
{
    if (!r)
        return;
    free(r->id);
    free((void *)r->shape.agents);
    free(r);
}

static bool req_before(const struct alloc_request *x, const struct alloc_request *y)
{
    if (x->fw->role->weight != y->fw->role->weight)
        return x->fw->role->weight > y->fw->role->weight;
    if (x->added_at != y->added_at)
        return x->added_at < y->added_at;
    return x->seq < y->seq;
}

static int cmp_req(const void *x, const void *y)
{
    const struct alloc_request *rx = *(struct alloc_request *const *)x;
    const struct alloc_request *ry = *(struct alloc_request *const *)y;
    return req_before(rx, ry) ? -1 : req_before(ry, rx) ? 1 : 0;
}

static void request_remove(phx_alloc_t *a, size_t i, bool tell,
                           phx_alloc_request_end_t why)
{
    struct alloc_request *r = a->reqs[i];
    memmove(&a->reqs[i], &a->reqs[i + 1], (a->nreqs - i - 1) * sizeof(*a->reqs));
    a->nreqs--;
    r->fw->nrequests--;
    if (a->head == r)
        a->head = NULL;
    a->plan_dirty = true;
    if (tell && a->req_cb)
        a->req_cb(r->fw->id, r->id, why, a->req_arg);
    alloc_request_free(r);
}

void alloc_requests_drop_fw(phx_alloc_t *a, struct alloc_fw *fw)
{
    for (size_t i = 0; i < a->nreqs;)
        if (a->reqs[i]->fw == fw)
            request_remove(a, i, false, PHX_ALLOC_REQUEST_EXPIRED);
        else
            i++;
}

void alloc_requests_expire(phx_alloc_t *a, double now)
{
    for (size_t i = 0; i < a->nreqs;) {
        struct alloc_request *r = a->reqs[i];
        if (r->expires_at > 0 && r->expires_at <= now) {
            request_remove(a, i, true, PHX_ALLOC_REQUEST_EXPIRED);
            continue;
        }
        alloc_note_expiry(a, r->expires_at);
        i++;
    }
}

void alloc_hold_release(phx_alloc_t *a, struct alloc_agent *ag)
{
    if (ag->holding) {
        ag->holding = false;
        a->nholding--;
    }
    if (!ag->held.cores || alloc_res_empty(&ag->held))
        return;
    phx_topo_grant_t *g = alloc_grant_get(ag);
    if (!g)
        return; /* stays held; retried at the next release */
    alloc_res_to_grant(&ag->held, ag->topo, g);
    phx_topo_free_release(ag->free, g, NULL);
    alloc_grant_put(ag, g);
    alloc_res_clear(&ag->held, ag->topo);
    alloc_mark(a, ag);
}

/* Move the agent's free resources into its hold. */
static void hold_take(struct alloc_agent *ag)
{
    if (phx_topo_free_ncores(ag->free) == 0 && phx_topo_free_memory(ag->free) == 0)
        return;
    phx_topo_grant_t *g = alloc_grant_get(ag);
    if (!g)
        return;
    alloc_grant_from_free(g, ag->free);
    if (phx_topo_free_alloc(ag->free, g, NULL) == 0)
        alloc_res_add(&ag->held, ag->topo, g);
    alloc_grant_put(ag, g);
}

int alloc_fit_empty(const phx_topo_t *t, const phx_alloc_shape_t *s, phx_alloc_t *a)
{
    for (int n = 0; n < phx_topo_nnumas(t); n++) {
        a->numa_cores[n] = phx_topo_numa_ncores(t, n);
        a->numa_mem[n] = phx_topo_numa_memory(t, n);
    }
    return alloc_fit(t, s, a->numa_cores, a->numa_mem, a->sock_cores, a->sock_mem);
}

/* ---- the planner ---- */

static int cmp_event(const void *x, const void *y)
{
    double tx = ((const struct event *)x)->t, ty = ((const struct event *)y)->t;
    return tx < ty ? -1 : tx > ty;
}

static int cmp_point(const void *x, const void *y)
{
    const struct point *px = x, *py = y;
    if (px->t != py->t)
        return px->t < py->t ? -1 : 1;
    if (px->ag->id != py->ag->id)
        return px->ag->id < py->ag->id ? -1 : 1;
    return px->fit - py->fit;
}

static int cmp_cand(const void *x, const void *y)
{
    const struct alloc_agent *ax = *(struct alloc_agent *const *)x;
    const struct alloc_agent *ay = *(struct alloc_agent *const *)y;
    if (ax->fit_t != ay->fit_t)
        return ax->fit_t > ay->fit_t ? -1 : 1;
    if (ax->t_reach != ay->t_reach)
        return ax->t_reach < ay->t_reach ? -1 : 1;
    if (ax->holding != ay->holding)
        return ax->holding ? -1 : 1;
    return ax->id < ay->id ? -1 : ax->id > ay->id;
}

static int cmp_agent_id(const void *x, const void *y)
{
    int64_t ix = (*(struct alloc_agent *const *)x)->id;
    int64_t iy = (*(struct alloc_agent *const *)y)->id;
    return ix < iy ? -1 : ix > iy;
}

static double event_time(double t, double now)
{
    if (t <= 0)
        return INFINITY;      /* unknown */
    return t < now ? now : t; /* overdue: any moment now */
}

/* The agent's bundles now (free + held) and, as points, whenever the end of
 * tasks and offers will raise that number.  -1 on ENOMEM. */
static int agent_timeline(phx_alloc_t *a, struct alloc_agent *ag,
                          const phx_alloc_shape_t *s, double now, size_t *npoints)
{
    const phx_topo_t *t = ag->topo;
    int nn = phx_topo_nnumas(t);
    int *nc = a->numa_cores;
    uint64_t *nm = a->numa_mem;
    for (int n = 0; n < nn; n++) {
        nc[n] = phx_topo_free_numa_ncores(ag->free, n);
        nm[n] = phx_topo_free_numa_memory(ag->free, n);
    }
    alloc_res_count(&ag->held, t, nc, nm);
    ag->fit_now = ag->fit_t = alloc_fit(t, s, nc, nm, a->sock_cores, a->sock_mem);
    ag->t_reach = now;

    size_t nev = 0, need = (size_t)ag->ntasks + (size_t)ag->nslots;
    if (alloc_grow(&a->events, &a->cap_events, need, sizeof(struct event)) < 0)
        return -1;
    struct event *ev = a->events;
    for (int i = 0; i < ag->ntasks; i++)
        ev[nev++] =
            (struct event){event_time(ag->tasks[i]->end, now), &ag->tasks[i]->res};
    for (int i = 0; i < ag->nslots; i++)
        if (ag->slots[i].fw && !alloc_res_empty(&ag->slots[i].offered))
            ev[nev++] = (struct event){event_time(ag->slots[i].release_by, now),
                                       &ag->slots[i].offered};
    if (nev > 1)
        qsort(ev, nev, sizeof(*ev), cmp_event);
    int prev = ag->fit_now;
    for (size_t i = 0; i < nev;) {
        double when = ev[i].t;
        for (; i < nev && ev[i].t == when; i++)
            alloc_res_count(ev[i].res, t, nc, nm);
        int f = alloc_fit(t, s, nc, nm, a->sock_cores, a->sock_mem);
        if (f <= prev)
            continue;
        if (alloc_grow(&a->points, &a->cap_points, *npoints + 1, sizeof(struct point)) <
            0)
            return -1;
        ((struct point *)a->points)[(*npoints)++] = (struct point){when, ag, f};
        prev = f;
    }
    return 0;
}

/* The most bundles m agents hold: the largest counts of fits[0..maxfit]
 * (fits[f]: agents holding f bundles). */
static long top_sum(const int *fits, int maxfit, int m)
{
    long sum = 0;
    for (int f = maxfit; f > 0 && m > 0; f--) {
        int n = fits[f] < m ? fits[f] : m;
        sum += (long)n * f;
        m -= n;
    }
    return sum;
}

/* With max_agents: fits[] over the agents' fit_t, the largest count seen or
 * to come (points) in *maxfit.  -1 on ENOMEM. */
static int fits_init(phx_alloc_t *a, const struct point *p, size_t npoints,
                     const struct alloc_request *r, int *maxfit)
{
    int mx = 0;
    for (size_t i = 0; i < a->nagents; i++)
        mx = a->agents[i]->fit_t > mx ? a->agents[i]->fit_t : mx;
    for (size_t i = 0; i < npoints; i++)
        mx = p[i].fit > mx ? p[i].fit : mx;
    if (alloc_grow((void **)&a->fits, &a->cap_fits, (size_t)mx + 1, sizeof(int)) < 0)
        return -1;
    memset(a->fits, 0, ((size_t)mx + 1) * sizeof(int));
    for (size_t i = 0; i < a->nagents; i++) {
        const struct alloc_agent *ag = a->agents[i];
        if (ag->available && alloc_shape_allows(&r->shape, ag->id))
            a->fits[ag->fit_t]++;
    }
    *maxfit = mx;
    return 0;
}

/* Plan for r: returns T* (now when satisfiable at once, INFINITY when only
 * tasks of unknown end stand in the way, -1 when the available agents
 * cannot hold it) and marks the chosen agents. */
static double plan(phx_alloc_t *a, struct alloc_request *r, double now)
{
    int k = r->shape.nbundles, m = r->shape.min_agents, mx = r->shape.max_agents;
    int nfit = 0, maxfit = 0;
    long total = 0;
    size_t npoints = 0, ncands = 0;
    for (size_t i = 0; i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        ag->chosen = false;
        ag->fit_now = ag->fit_t = 0;
        if (!ag->available || !alloc_shape_allows(&r->shape, ag->id))
            continue;
        if (agent_timeline(a, ag, &r->shape, now, &npoints) < 0)
            return -1;
        total += ag->fit_now;
        nfit += ag->fit_now > 0;
    }
    struct point *p = a->points;
    if (mx > 0) {
        if (fits_init(a, p, npoints, r, &maxfit) < 0)
            return -1;
        total = top_sum(a->fits, maxfit, mx);
    }
    double when = total >= k && nfit >= m ? now : -1;
    if (when < 0) {
        if (npoints > 1)
            qsort(p, npoints, sizeof(*p), cmp_point);
        for (size_t i = 0; i < npoints && when < 0;) {
            double t = p[i].t;
            for (; i < npoints && p[i].t == t; i++) {
                if (mx > 0) {
                    a->fits[p[i].ag->fit_t]--;
                    a->fits[p[i].fit]++;
                } else {
                    total += p[i].fit - p[i].ag->fit_t;
                }
                nfit += p[i].ag->fit_t == 0;
                p[i].ag->fit_t = p[i].fit;
                p[i].ag->t_reach = t;
            }
            if (mx > 0)
                total = top_sum(a->fits, maxfit, mx);
            if (total >= k && nfit >= m)
                when = t;
        }
    }
    r->satisfiable_at = isfinite(when) && when >= 0 ? when : 0;
    r->held_bundles = r->hold_agents = r->ready_agents = 0;
    if (when < 0)
        return -1;
    if (alloc_grow((void **)&a->cands, &a->cap_cands, a->nagents, sizeof(*a->cands)) <
        0)
        return -1;
    for (size_t i = 0; i < a->nagents; i++)
        if (a->agents[i]->available && a->agents[i]->fit_t > 0)
            a->cands[ncands++] = a->agents[i];
    if (ncands > 1)
        qsort(a->cands, ncands, sizeof(*a->cands), cmp_cand);
    for (size_t i = 0, sum = 0;
         i < ncands && (sum < (size_t)k || (int)i < m) && (mx == 0 || (int)i < mx);
         i++) {
        a->cands[i]->chosen = true;
        sum += (size_t)a->cands[i]->fit_t;
        r->held_bundles += a->cands[i]->fit_now;
        r->hold_agents++;
        r->ready_agents += a->cands[i]->fit_now > 0;
    }
    return when;
}

/* Release the agents that left the hold set, hold the free resources of
 * the chosen ones. */
static void apply_holds(phx_alloc_t *a)
{
    for (size_t i = 0; i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        if (!ag->chosen) {
            if (ag->holding || !alloc_res_empty(&ag->held))
                alloc_hold_release(a, ag);
            continue;
        }
        if (!ag->holding) {
            ag->holding = true;
            a->nholding++;
        }
        hold_take(ag);
    }
}

static int satisfy(phx_alloc_t *a, struct alloc_request *r, phx_alloc_offer_f cb,
                   void *arg)
{
    size_t n = 0;
    int offers = 0;
    for (size_t i = 0; i < a->nagents; i++)
        if (a->agents[i]->chosen)
            a->cands[n++] = a->agents[i];
    if (n > 1)
        qsort(a->cands, n, sizeof(*a->cands), cmp_agent_id);
    for (size_t i = 0; i < n; i++) {
        struct alloc_agent *ag = a->cands[i];
        ag->chosen = false;
        /* an agent of the set that holds no bundle (a task overdue now:
         * counted as ending, not ended) offers nothing */
        if (ag->fit_now > 0 && !alloc_res_empty(&ag->held) &&
            alloc_offer(ag, r->fw, true, 0, r->id, cb, arg) > 0)
            offers++;
        alloc_hold_release(a, ag); /* whatever a refusal left */
    }
    return offers;
}

static int lend(phx_alloc_t *a, double until, double now, phx_alloc_offer_f cb,
                void *arg)
{
    int offers = 0;
    for (size_t i = 0; i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        if (!ag->chosen || ag->held.ncores == 0)
            continue;
        struct alloc_fw *fw = alloc_drf_pick(a, ag, now);
        if (!fw)
            continue;
        if (alloc_offer(ag, fw, true, until, NULL, cb, arg) > 0)
            offers++;
        alloc_drf_push(a, fw);
    }
    return offers;
}

static void release_all(phx_alloc_t *a)
{
    for (size_t i = 0; a->nholding > 0 && i < a->nagents; i++)
        if (a->agents[i]->holding)
            alloc_hold_release(a, a->agents[i]);
}

int alloc_hold_pass(phx_alloc_t *a, double now, phx_alloc_offer_f cb, void *arg)
{
    int offers = 0;
    a->plan_dirty = false;
    a->head = NULL;
    if (a->nreqs == 0) {
        release_all(a);
        return 0;
    }
    qsort(a->reqs, a->nreqs, sizeof(*a->reqs), cmp_req);
    for (size_t i = 0; i < a->nreqs;) {
        struct alloc_request *r = a->reqs[i];
        r->position = (int)i;
        if (!r->fw->active) {
            i++;
            continue;
        }
        double when = plan(a, r, now);
        if (when < 0) {
            i++; /* cannot be held on what is available now: serve the next */
            continue;
        }
        apply_holds(a);
        if (when <= now && r->held_bundles >= r->shape.nbundles &&
            r->ready_agents >= r->shape.min_agents) {
            offers += satisfy(a, r, cb, arg);
            request_remove(a, i, true, PHX_ALLOC_REQUEST_SATISFIED);
            continue;
        }
        a->head = r;
        if (isfinite(when) && when > now)
            offers += lend(a, when, now, cb, arg);
        break;
    }
    for (size_t i = 0; i < a->nreqs; i++)
        a->reqs[i]->position = (int)i;
    if (!a->head)
        release_all(a);
    a->plan_dirty = false;
    return offers;
}

/* ---- API ---- */

static int cmp_int_desc(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a < b) - (a > b);
}

static int shape_ok(const phx_alloc_shape_t *s, phx_error_t *err)
{
    if (s->nbundles < 1 || s->cores < 1) {
        errno = EINVAL;
        return phx_error_set(err, "gang request needs at least 1 bundle of 1 core");
    }
    if (s->kind != PHX_ALLOC_BUNDLE_NUMA && s->kind != PHX_ALLOC_BUNDLE_SOCKET &&
        s->kind != PHX_ALLOC_BUNDLE_ANY) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has an unknown bundle kind");
    }
    if (s->per_agent < 0 || s->per_socket < 0 || s->min_agents < 0) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has a negative bundle limit");
    }
    if (s->max_agents < 0 || (s->max_agents > 0 && s->max_agents < s->min_agents)) {
        errno = EINVAL;
        return phx_error_set(err,
                             "gang request wants at most %d agents but at least %d",
                             s->max_agents, s->min_agents);
    }
    if (s->min_agents > s->nbundles) {
        errno = EINVAL;
        return phx_error_set(err,
                             "gang request wants %d agents for %d bundles: at least "
                             "one bundle on each",
                             s->min_agents, s->nbundles);
    }
    if (s->per_socket > 0 && s->kind == PHX_ALLOC_BUNDLE_ANY) {
        errno = EINVAL;
        return phx_error_set(err, "bundles per socket need bundles of kind numa or "
                                  "socket, not any");
    }
    if (s->nagents > 0 && !s->agents) {
        errno = EINVAL;
        return phx_error_set(err, "gang request has an agent count but no agents");
    }
    return 0;
}

static struct alloc_request *request_find(const phx_alloc_t *a,
                                          const struct alloc_fw *fw, const char *id,
                                          size_t *index)
{
    for (size_t i = 0; i < a->nreqs; i++)
        if (a->reqs[i]->fw == fw && strcmp(a->reqs[i]->id, id) == 0) {
            if (index)
                *index = i;
            return a->reqs[i];
        }
    return NULL;
}

int phx_alloc_request_add(phx_alloc_t *a, const char *framework, const char *request_id,
                          const phx_alloc_shape_t *shape, double duration,
                          double expires_at, double now, phx_error_t *err)
{
    struct alloc_fw *fw = alloc_fw_find(a, framework);
    if (!fw) {
        errno = ENOENT;
        return phx_error_set(err, "unknown framework %s", framework ? framework : "");
    }
    if (!request_id || !*request_id) {
        errno = EINVAL;
        return phx_error_set(err, "gang request id is empty");
    }
    if (shape_ok(shape, err) < 0)
        return phx_error_prefix(err, "gang request %s", request_id);
    if (request_find(a, fw, request_id, NULL)) {
        errno = EEXIST;
        return phx_error_set(err, "gang request %s of framework %s already exists",
                             request_id, framework);
    }
    phx_alloc_shape_t sorted = *shape;
    if (shape->agents && !(sorted.agents = alloc_shape_agents_copy(shape))) {
        errno = ENOMEM;
        return phx_error_set(err, "could not add gang request %s: out of memory",
                             request_id);
    }
    long capacity = 0, agents = 0;
    int *fits = calloc(a->nagents + 1, sizeof(*fits));
    if (!fits) {
        free((void *)sorted.agents);
        errno = ENOMEM;
        return phx_error_set(err, "could not add gang request %s: out of memory",
                             request_id);
    }
    for (size_t i = 0; i < a->nagents; i++)
        if (a->agents[i]->available && alloc_shape_allows(&sorted, a->agents[i]->id)) {
            int fit = alloc_fit_empty(a->agents[i]->topo, &sorted, a);
            fits[agents] = fit;
            agents += fit > 0;
        }
    /* the most bundles: over all agents, or the max_agents holding most */
    if (sorted.max_agents > 0 && agents > sorted.max_agents)
        qsort(fits, (size_t)agents, sizeof(*fits), cmp_int_desc);
    for (long i = 0; i < agents && (sorted.max_agents == 0 || i < sorted.max_agents);
         i++)
        capacity += fits[i];
    free(fits);
    if (agents < shape->min_agents) {
        free((void *)sorted.agents);
        errno = ENOSPC;
        return phx_error_set(err,
                             "gang request %s needs %d agents but only %ld of the "
                             "available%s agents can hold one of its bundles",
                             request_id, shape->min_agents, agents,
                             shape->agents ? " listed" : "");
    }
    if (capacity < shape->nbundles) {
        free((void *)sorted.agents);
        errno = ENOSPC;
        return phx_error_set(
            err,
            "gang request %s needs %d %s bundles of %d cores and %llu bytes (at most "
            "%d per agent, %d per socket, on at most %d agents, 0: any; on %s agents; "
            "%llu bytes more on each agent%s) but the available cluster can hold at "
            "most %ld",
            request_id, shape->nbundles, phx_alloc_bundle_kind_name(shape->kind),
            shape->cores, (unsigned long long)shape->mem, shape->per_agent,
            shape->per_socket, shape->max_agents, shape->agents ? "the listed" : "any",
            (unsigned long long)shape->agent_mem,
            shape->whole_agent ? ", whole agents"
            : shape->whole_mem ? ", all of its memory"
                               : "",
            capacity);
    }
    struct alloc_request *r = calloc(1, sizeof(*r));
    struct alloc_request **reqs = realloc(a->reqs, (a->nreqs + 1) * sizeof(*reqs));
    if (reqs)
        a->reqs = reqs;
    if (!r || !reqs || !(r->id = strdup(request_id))) {
        free((void *)sorted.agents);
        free(r);
        errno = ENOMEM;
        return phx_error_set(err, "could not add gang request %s: out of memory",
                             request_id);
    }
    r->fw = fw;
    r->shape = sorted;
    r->added_at = now;
    r->duration = duration;
    r->expires_at = expires_at > 0 ? expires_at : 0;
    r->seq = a->next_seq++;
    r->position = (int)a->nreqs;
    a->reqs[a->nreqs++] = r;
    fw->nrequests++;
    alloc_note_expiry(a, r->expires_at);
    a->plan_dirty = true;
    return 0;
}

int phx_alloc_request_cancel(phx_alloc_t *a, const char *framework,
                             const char *request_id)
{
    struct alloc_fw *fw = alloc_fw_find(a, framework);
    size_t i;
    if (!fw || !request_id || !request_find(a, fw, request_id, &i)) {
        errno = ENOENT;
        return -1;
    }
    request_remove(a, i, false, PHX_ALLOC_REQUEST_EXPIRED);
    return 0;
}

int phx_alloc_request_info(const phx_alloc_t *a, const char *framework,
                           const char *request_id, phx_alloc_request_info_t *out)
{
    const struct alloc_fw *fw = alloc_fw_find(a, framework);
    const struct alloc_request *r =
        fw && request_id ? request_find(a, fw, request_id, NULL) : NULL;
    if (!r) {
        errno = ENOENT;
        return -1;
    }
    bool head = a->head == r;
    *out = (phx_alloc_request_info_t){
        .state = head ? PHX_ALLOC_REQUEST_HOLDING : PHX_ALLOC_REQUEST_WAITING,
        .shape = r->shape,
        .added_at = r->added_at,
        .duration = r->duration,
        .expires_at = r->expires_at,
        .position = r->position,
        .held_bundles = head ? r->held_bundles : 0,
        .hold_agents = head ? r->hold_agents : 0,
        .satisfiable_at = head ? r->satisfiable_at : 0,
    };
    return 0;
}
