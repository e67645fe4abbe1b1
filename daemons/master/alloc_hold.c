/* Allocator: serving gang requests.  Requests are served in order (highest
 * role weight, then oldest): for each, the planner predicts from task end
 * times when enough bundles of its shape will be free (T*), chooses the
 * agents that will provide them (the hold set), holds their free
 * resources, lends what is held with release_by = T* when T* is known, and
 * offers the held resources to the requester, all in one pass, once they
 * make up the gang.  A request that stays waiting for resources is
 * *holding*: it claims its candidate agents (those its shape allows: the
 * listed ones, else all), and a later request is served only if none of
 * its candidates is claimed; otherwise it waits.  So requests on disjoint
 * agent sets (partitions) each hold, and an unlisted request is served
 * only first, alone.  Requests satisfied at once, or that the available
 * agents cannot hold, claim nothing. */
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
    if (phx_topo_free_ncores(ag->free) == 0 && phx_topo_free_memory(ag->free) == 0 &&
        phx_topo_free_ngpus(ag->free) == 0)
        return;
    phx_topo_grant_t *g = alloc_grant_get(ag);
    if (!g)
        return;
    alloc_grant_from_free(g, ag->free);
    if (phx_topo_free_alloc(ag->free, g, NULL) == 0)
        alloc_res_add(&ag->held, ag->topo, g);
    alloc_grant_put(ag, g);
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
    int ng = phx_topo_free_ngpus(ag->free);
    alloc_res_count(&ag->held, t, nc, nm, &ng);
    ag->fit_now = ag->fit_t = alloc_fit(t, s, nc, nm, ng, a->sock_cores, a->sock_mem);
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
            alloc_res_count(ev[i].res, t, nc, nm, &ng);
        int f = alloc_fit(t, s, nc, nm, ng, a->sock_cores, a->sock_mem);
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

/* With max_agents: fits[] over the request's agents' fit_t, the largest
 * count seen or to come (points) in *maxfit.  -1 on ENOMEM. */
static int fits_init(phx_alloc_t *a, const struct point *p, size_t npoints, int *maxfit)
{
    int mx = 0;
    for (size_t i = 0; i < a->nspan; i++)
        mx = a->span[i]->fit_t > mx ? a->span[i]->fit_t : mx;
    for (size_t i = 0; i < npoints; i++)
        mx = p[i].fit > mx ? p[i].fit : mx;
    if (alloc_grow((void **)&a->fits, &a->cap_fits, (size_t)mx + 1, sizeof(int)) < 0)
        return -1;
    memset(a->fits, 0, ((size_t)mx + 1) * sizeof(int));
    for (size_t i = 0; i < a->nspan; i++)
        if (a->span[i]->available)
            a->fits[a->span[i]->fit_t]++;
    *maxfit = mx;
    return 0;
}

/* The agents r may use into a->span: the listed ones that exist, else all
 * of them.  -1 on ENOMEM. */
static int span_set(phx_alloc_t *a, const struct alloc_request *r)
{
    const phx_alloc_shape_t *s = &r->shape;
    if (!s->agents) {
        a->span = a->agents;
        a->nspan = a->nagents;
        return 0;
    }
    a->span = NULL;
    a->nspan = 0;
    if (alloc_grow((void **)&a->listed, &a->cap_listed, s->nagents,
                   sizeof(*a->listed)) < 0)
        return -1;
    for (size_t i = 0; i < s->nagents; i++) {
        if (i > 0 && s->agents[i] == s->agents[i - 1])
            continue; /* sorted: a duplicate follows its twin */
        struct alloc_agent *ag = alloc_agent_find(a, s->agents[i]);
        if (ag)
            a->listed[a->nspan++] = ag;
    }
    a->span = a->listed;
    return 0;
}

/* Plan for r over a->span: returns T* (now when satisfiable at once,
 * INFINITY when only tasks of unknown end stand in the way, -1 when the
 * available agents cannot hold it) and marks the agents chosen for r. */
static double plan(phx_alloc_t *a, struct alloc_request *r, double now)
{
    int k = r->shape.nbundles, m = r->shape.min_agents, mx = r->shape.max_agents;
    int nfit = 0, maxfit = 0;
    long total = 0;
    size_t npoints = 0, ncands = 0;
    for (size_t i = 0; i < a->nspan; i++) {
        struct alloc_agent *ag = a->span[i];
        ag->chosen_for = NULL;
        ag->fit_now = ag->fit_t = 0;
        if (!ag->available)
            continue;
        if (agent_timeline(a, ag, &r->shape, now, &npoints) < 0)
            return -1;
        total += ag->fit_now;
        nfit += ag->fit_now > 0;
    }
    struct point *p = a->points;
    if (mx > 0) {
        if (fits_init(a, p, npoints, &maxfit) < 0)
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
    for (size_t i = 0; i < a->nspan; i++)
        if (a->span[i]->available && a->span[i]->fit_t > 0)
            a->cands[ncands++] = a->span[i];
    if (ncands > 1)
        qsort(a->cands, ncands, sizeof(*a->cands), cmp_cand);
    for (size_t i = 0, sum = 0;
         i < ncands && (sum < (size_t)k || (int)i < m) && (mx == 0 || (int)i < mx);
         i++) {
        a->cands[i]->chosen_for = r;
        sum += (size_t)a->cands[i]->fit_t;
        r->held_bundles += a->cands[i]->fit_now;
        r->hold_agents++;
        r->ready_agents += a->cands[i]->fit_now > 0;
    }
    return when;
}

/* Hold the free resources of the agents chosen for r.  Agents that left
 * the hold set are released at the end of the pass. */
static void hold_chosen(phx_alloc_t *a, const struct alloc_request *r)
{
    for (size_t i = 0; i < a->nspan; i++) {
        struct alloc_agent *ag = a->span[i];
        if (ag->chosen_for != r)
            continue;
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
    for (size_t i = 0; i < a->nspan; i++)
        if (a->span[i]->chosen_for == r)
            a->cands[n++] = a->span[i];
    if (n > 1)
        qsort(a->cands, n, sizeof(*a->cands), cmp_agent_id);
    for (size_t i = 0; i < n; i++) {
        struct alloc_agent *ag = a->cands[i];
        ag->chosen_for = NULL;
        /* an agent of the set that holds no bundle (a task overdue now:
         * counted as ending, not ended) offers nothing */
        if (ag->fit_now > 0 && !alloc_res_empty(&ag->held) &&
            alloc_offer(ag, r->fw, true, 0, r->id, cb, arg) > 0)
            offers++;
        alloc_hold_release(a, ag); /* whatever a refusal left */
    }
    return offers;
}

static int lend(phx_alloc_t *a, const struct alloc_request *r, double until, double now,
                phx_alloc_offer_f cb, void *arg)
{
    int offers = 0;
    for (size_t i = 0; i < a->nspan; i++) {
        struct alloc_agent *ag = a->span[i];
        if (ag->chosen_for != r || ag->held.ncores == 0)
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

/* Whether a holding request served earlier in the pass (any: there is one)
 * claimed an agent of r, in a->span. */
static bool span_claimed(const phx_alloc_t *a, const struct alloc_request *r, bool any)
{
    if (!any || !r->shape.agents)
        return any; /* no list: r's candidates are all agents */
    for (size_t i = 0; i < a->nspan; i++)
        if (a->span[i]->claimed)
            return true;
    return false;
}

/* End of the pass: release the agents that no holding request chose,
 * clear the pass's marks. */
static void pass_end(phx_alloc_t *a)
{
    for (size_t i = 0; i < a->nagents; i++) {
        struct alloc_agent *ag = a->agents[i];
        if (!ag->chosen_for && (ag->holding || !alloc_res_empty(&ag->held)))
            alloc_hold_release(a, ag);
        ag->chosen_for = NULL;
        ag->claimed = false;
    }
    a->span = NULL;
    a->nspan = 0;
}

int alloc_hold_pass(phx_alloc_t *a, double now, phx_alloc_offer_f cb, void *arg)
{
    int offers = 0;
    bool any = false, all = false; /* some agent, every agent claimed */
    a->plan_dirty = false;
    if (a->nreqs == 0) {
        release_all(a);
        return 0;
    }
    qsort(a->reqs, a->nreqs, sizeof(*a->reqs), cmp_req);
    for (size_t i = 0; i < a->nreqs; i++)
        a->reqs[i]->holding = false;
    for (size_t i = 0; i < a->nreqs && !all;) {
        struct alloc_request *r = a->reqs[i];
        r->position = (int)i;
        /* waits: inactive, or some of its agents claimed */
        if (!r->fw->active || span_set(a, r) < 0 || span_claimed(a, r, any)) {
            i++;
            continue;
        }
        double when = plan(a, r, now);
        if (when < 0) {
            i++; /* cannot be held on what is available now: serve the next */
            continue;
        }
        hold_chosen(a, r);
        if (when <= now && r->held_bundles >= r->shape.nbundles &&
            r->ready_agents >= r->shape.min_agents) {
            offers += satisfy(a, r, cb, arg);
            alloc_request_remove(a, i, true, PHX_ALLOC_REQUEST_SATISFIED);
            continue;
        }
        r->holding = true; /* it claims its candidates */
        any = true;
        all = !r->shape.agents;
        for (size_t j = 0; !all && j < a->nspan; j++)
            a->span[j]->claimed = true;
        if (isfinite(when) && when > now)
            offers += lend(a, r, when, now, cb, arg);
        i++;
    }
    for (size_t i = 0; i < a->nreqs; i++)
        a->reqs[i]->position = (int)i;
    pass_end(a);
    a->plan_dirty = false;
    return offers;
}
