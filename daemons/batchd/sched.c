/* Scheduling: offers → placement → ACCEPT, one job per ACCEPT (a job is one
 * gang: its tasks launch together or not at all).
 *
 * A pass (on every OFFERS event, and coalesced after submissions and job
 * ends): pending jobs become eligible (begin time, dependencies, the array
 * throttle), eligible jobs are ordered by multifactor priority, the EASY
 * planner (backfill.c) finds the top job that cannot start and its reserved
 * start (the shadow time), in each pool of partitions on their own nodes.
 * Jobs then take offers in priority order.  The first job of a pool that no
 * offer set can hold is its reserved job: batchd sends a gang REQUEST for it
 * (its nodes' shapes), so that the master holds nodes for it as they free
 * up, and the pool's later jobs start only if they end before the shadow
 * time, or within a lent offer's release_by, or on nodes the reservation
 * does not use.  Unused offers are declined with a short filter;
 * with no pending job eligible (none, or all held, waiting on dependencies,
 * InvalidAccount, ...) batchd SUPPRESSes offers, and REVIVEs when one is. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/timefmt.h"
#include "lib/hostlist.h"
#include "lib/log.h"

typedef struct pass {
    batchd_t *b;
    int64_t now;
    boffer_t *offers;
    size_t noffers;
    const json_t *raw; /* the event's offers, for re-parsing after a failed try */
    /* by pool (phx_bf_pools_t): its reserved job, the planner's decision
     * for it (or NULL), whether one of its jobs could not start */
    phx_bf_pools_t pools; /* of the nodes' partitions */
    bjob_t *reserved[PHX_BF_POOLS];
    const phx_bf_decision_t *rdec[PHX_BF_POOLS];
    bool blocked[PHX_BF_POOLS];
    bool any_blocked;
    const phx_bf_decision_t *cur; /* the planner's decision for the job placed */
    uint64_t part;                /* the partition try_job placed it in */
    const phx_bf_input_t *in;
    const bnode_t *const *pnodes; /* planner node i → node */
    batchd_gclasses_t gc;         /* the planner's GPU classes */
    /* the pass's ACCEPT: every job started is one operation (one gang) */
    json_t *acc_ops;
    bjob_t **acc_jobs;
    size_t nacc, acc_cap;
} pass_t;

static double mono(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int64_t end_of(const bjob_t *j, int64_t start)
{
    return j->spec.time_limit > 0 ? start + j->spec.time_limit : PHX_BF_NO_END;
}

/* --- placing one job on the pass's offers --- */

typedef struct choice {
    size_t offer;
    uint32_t tasks;
} choice_t;

static bool offer_allows(pass_t *p, const boffer_t *o, const bjob_t *j)
{
    int64_t end = end_of(j, p->now);
    if (o->used)
        return false;
    if (o->owner && o->owner != j)
        return false; /* held for another job's gang request */
    if (o->owner == j)
        return true;
    /* now is whole seconds: the job may end up to a second after end */
    if (o->release_by > 0 && (end == PHX_BF_NO_END || (double)end + 1 > o->release_by))
        return false;
    if (!p->any_blocked || o->release_by > 0)
        return true; /* nothing blocked, or a lent offer */
    const bnode_t *n = batchd_node_by_agent(p->b, o->agent_id);
    uint32_t pool = phx_bf_pool_of(
        &p->pools, n ? n->parts : batchd_parts_node_mask(&p->b->parts, o->host));
    if (!p->blocked[pool])
        return true; /* nothing of the node's pool is blocked */
    /* behind a blocked job: only where the planner put this job, which it
     * checked does not delay the reservation */
    if (!p->cur ||
        (p->cur->verdict != PHX_BF_START && p->cur->verdict != PHX_BF_BACKFILL))
        return false;
    for (size_t i = 0; i < p->cur->nshares; i++)
        if (strcmp(p->pnodes[p->cur->shares[i].node]->agent_id, o->agent_id) == 0)
            return true;
    return false;
}

/* Tasks of j (its request r) the offer can hold, capped by cap: as many as
 * batchd_place can put there (batchd_offer_tasks), each inside one socket
 * unless spread. */
static uint32_t capacity(pass_t *p, const boffer_t *o, const bjob_t *j,
                         const phx_bf_request_t *r, uint32_t cap, bool spread)
{
    const phx_jobspec_t *s = &j->spec;
    const bnode_t *n = batchd_node_by_agent(p->b, o->agent_id);
    if (r->only && (!n || !phx_bf_node_allowed(r, (size_t)(n - p->b->nodes))))
        return 0; /* -w, -x, -C; an unknown node: its name and features too */
    if (n ? !phx_bf_node_qualifies(r, n->parts, n->sockets, n->cores, n->threads)
          : !phx_bf_node_qualifies(r, batchd_parts_node_mask(&p->b->parts, o->host), 1,
                                   1, 1))
        return 0; /* an unknown node: its shape too */
    uint32_t t = batchd_offer_tasks(o, r->cpus_per_task, r->ntasks_per_socket, spread);
    t = batchd_gpu_tasks(n, o, j, r, t > cap ? cap : t);
    if (s->exclusive == 1)
        return n && o->cpus >= n->cores ? t : 0;
    while (t > 0 &&
           batchd_job_mem(p->b, j, t * r->cpus_per_task, n ? n->mem : o->mem) > o->mem)
        t--;
    if (s->mem_per_node == 0 && n && o->mem < n->mem)
        return 0;
    return t;
}

/* The offers for j, best fit: the offer that holds the most of the share
 * still to place, the one with the fewest free cores among equals.  spread:
 * tasks may span sockets; the offers holding more tasks inside sockets go
 * first among equals.  even: exactly N nodes without a per-node count take
 * ceil(ntasks / N) tasks at most each (Slurm's block layout). */
static int choose(pass_t *p, bjob_t *j, const phx_bf_request_t *r, bool spread,
                  bool even, choice_t *ch, size_t *nch)
{
    const phx_jobspec_t *s = &j->spec;
    uint32_t left = (uint32_t)s->ntasks, nodes_min = (uint32_t)s->nodes_min,
             nodes_max = (uint32_t)s->nodes_max;
    uint32_t per =
        s->ntasks_per_node != PHX_UNSET ? (uint32_t)s->ntasks_per_node : left;
    if (even && s->ntasks_per_node == PHX_UNSET && nodes_min == nodes_max &&
        nodes_min > 1)
        per = (left + nodes_min - 1) / nodes_min;
    *nch = 0;
    bool *taken = calloc(p->noffers + 1, sizeof(bool));
    if (!taken)
        return -1;
    while (left > 0 && *nch < nodes_max) {
        uint32_t remaining_nodes =
            nodes_min > *nch + 1 ? nodes_min - (uint32_t)*nch - 1 : 0;
        uint32_t cap = per < left - remaining_nodes ? per : left - remaining_nodes;
        if (cap == 0)
            break;
        ssize_t best = -1;
        uint32_t best_t = 0, best_in = 0;
        for (size_t i = 0; i < p->noffers; i++) {
            boffer_t *o = &p->offers[i];
            if (taken[i] || !offer_allows(p, o, j))
                continue;
            uint32_t t = capacity(p, o, j, r, cap, spread);
            if (t == 0)
                continue;
            uint32_t in = spread ? capacity(p, o, j, r, cap, false) : t;
            if (best < 0 || t > best_t || (t == best_t && in > best_in) ||
                (t == best_t && in == best_in && o->cpus < p->offers[best].cpus))
                best = (ssize_t)i, best_t = t, best_in = in;
        }
        if (best < 0)
            break;
        taken[best] = true;
        ch[*nch].offer = (size_t)best;
        ch[*nch].tasks = best_t;
        (*nch)++;
        left -= best_t;
    }
    free(taken);
    return left == 0 && *nch >= nodes_min ? 0 : -1;
}

/* Each task's cores inside one socket when the offers allow; a task spans
 * sockets only when no choice of offers holds the job otherwise (possible
 * only with tasks of several cores and no per-socket cap).  Exactly N nodes
 * share the tasks evenly when they can, else as they can (4 + 2 on nodes
 * of 4 and 2 free cores: the planner counts it as starting). */
static int try_shape(pass_t *p, bjob_t *j, const phx_bf_request_t *rp, choice_t *ch,
                     size_t *nch)
{
    phx_bf_request_t r = *rp;
    bool exact = r.nodes_min > 1 && r.nodes_min == r.nodes_max && !r.ntasks_per_node;
    if (choose(p, j, &r, false, true, ch, nch) == 0 ||
        (exact && choose(p, j, &r, false, false, ch, nch) == 0))
        return 0;
    if (r.cpus_per_task == 1 || r.ntasks_per_socket)
        return -1;
    return choose(p, j, &r, true, true, ch, nch) == 0 ||
                   (exact && choose(p, j, &r, true, false, ch, nch) == 0)
               ? 0
               : -1;
}

/* try_shape() within one partition: the planner's for the job, else each
 * of the job's in turn (-p a,b: all its nodes in one of them).  p->part:
 * the partition's bit, 0 without partitions. */
static int try_job(pass_t *p, bjob_t *j, choice_t *ch, size_t *nch)
{
    phx_bf_request_t r;
    batchd_bf_request(p->b, &j->spec, &r);
    r.only = batchd_job_nodes(p->b, j);
    if (p->cur && p->cur->parts)
        r.parts = p->cur->parts;
    uint64_t all = r.parts;
    if (!(all & (all - 1))) {
        p->part = all;
        return try_shape(p, j, &r, ch, nch);
    }
    for (uint64_t m = all; m; m &= m - 1) {
        r.parts = m & (~m + 1);
        if (try_shape(p, j, &r, ch, nch) == 0) {
            p->part = r.parts;
            return 0;
        }
    }
    return -1;
}

static void accepted(phx_fwc_t *c, int status, const char *body, void *arg)
{
    (void)c;
    size_t n = (size_t)(uintptr_t)arg;
    if (status == 202)
        return;
    /* the master reported each refused job's tasks as TASK_ERROR updates */
    phx_log_errx("the master refused the launch of %zu job%s (HTTP %d): %s", n,
                 n == 1 ? "" : "s", status, body ? body : "");
}

/* The nodes in the order of their list (PHX_JOB_NODELIST, compressed):
 * node 0, where the script runs, PHX_NODEID and PHX_TASKS_PER_NODE follow
 * it, as in Slurm.  As chosen when the names cannot be ordered. */
static void in_list_order(const pass_t *p, choice_t *ch, size_t nch)
{
    const char **h = calloc(nch + 1, sizeof(*h));
    size_t *ord = calloc(nch + 1, sizeof(*ord));
    choice_t *was = calloc(nch + 1, sizeof(*was));
    for (size_t i = 0; h && i < nch; i++)
        h[i] = p->offers[ch[i].offer].host;
    if (h && ord && was && phx_hostlist_order(h, nch, ord) == 0) {
        memcpy(was, ch, nch * sizeof(*was));
        for (size_t k = 0; k < nch; k++)
            ch[k] = was[ord[k]];
    }
    free(h);
    free(ord);
    free(was);
}

static int start_job(pass_t *p, bjob_t *j, choice_t *ch, size_t nch)
{
    batchd_t *b = p->b;
    in_list_order(p, ch, nch);
    const phx_jobspec_t *s = &j->spec;
    uint32_t cpt = (uint32_t)s->cpus_per_task;
    uint32_t per_sock = batchd_job_per_socket(s);
    bool cyclic = s->distribution && strstr(s->distribution, ":cyclic") != NULL;
    bj_task_t *tasks = calloc(nch, sizeof(*tasks));
    int **cores = calloc(nch, sizeof(*cores));
    uint32_t *ncores = calloc(nch, sizeof(*ncores));
    const char **hosts = calloc(nch, sizeof(*hosts));
    int rc = -1;
    char *list = batchd_run_partition(b, j, p->part);
    if (!tasks || !cores || !ncores || !hosts)
        goto out;
    int64_t cpus = 0;
    for (size_t i = 0; i < nch; i++) {
        boffer_t *o = &p->offers[ch[i].offer];
        const bnode_t *n = batchd_node_by_agent(b, o->agent_id);
        if (!(cores[i] = calloc(o->cpus + 1, sizeof(int))) ||
            batchd_place(o, ch[i].tasks, cpt, per_sock, cyclic, s->exclusive == 1,
                         cores[i], &ncores[i]) < 0)
            goto out;
        bj_task_t *t = &tasks[i];
        t->gpus = batchd_gpu_pick(n, o, j, ch[i].tasks, cores[i], ncores[i]);
        if (!t->gpus && batchd_job_wants_gpus(j))
            goto out;
        if (j->requeue_count)
            snprintf(t->id, sizeof(t->id), "%" PRIu64 ".r%d.%zu", j->id,
                     j->requeue_count, i);
        else
            snprintf(t->id, sizeof(t->id), "%" PRIu64 ".%zu", j->id, i);
        snprintf(t->agent_id, sizeof(t->agent_id), "%s", o->agent_id);
        snprintf(t->host, sizeof(t->host), "%s", o->host);
        t->cpus = ncores[i];
        t->tasks = ch[i].tasks;
        t->mem = batchd_job_mem(b, j, ncores[i], n ? n->mem : o->mem);
        if (t->mem > o->mem)
            t->mem = o->mem;
        hosts[i] = t->host;
        cpus += ncores[i];
    }
    free(j->tasks);
    j->tasks = tasks;
    j->ntasks = nch;
    tasks = NULL;
    free(j->node_list);
    j->node_list = phx_hostlist_compress(hosts, nch);
    j->alloc_cpus = cpus;
    json_t *ops = batchd_launch_ops(b, j, cores, ncores);
    if (p->nacc == p->acc_cap) {
        size_t cap = p->acc_cap ? 2 * p->acc_cap : 16;
        bjob_t **m = realloc(p->acc_jobs, cap * sizeof(*m));
        if (m) {
            p->acc_jobs = m;
            p->acc_cap = cap;
        }
    }
    if (!ops || p->nacc == p->acc_cap || json_array_extend(p->acc_ops, ops) < 0) {
        json_decref(ops);
        free(j->tasks);
        j->tasks = NULL;
        j->ntasks = 0;
        goto out;
    }
    json_decref(ops);
    p->acc_jobs[p->nacc++] = j;
    /* the offers keep what the job left for the next jobs of the pass */
    for (size_t i = 0; i < nch; i++) {
        boffer_t *o = &p->offers[ch[i].offer];
        o->accepted = true;
        o->cpus -= j->tasks[i].cpus < o->cpus ? j->tasks[i].cpus : o->cpus;
        o->mem -= j->tasks[i].mem < o->mem ? j->tasks[i].mem : o->mem;
        o->gpus &= ~j->tasks[i].gpus;
        if (o->cpus == 0 || s->exclusive == 1 || o->owner)
            o->used = true;
        j->tasks[i].ended = false;
        phx_hmap_put(b->tasks, j->tasks[i].id, j);
    }
    j->tasks_live = nch;
    j->start_time = p->now;
    j->end_time = -1;
    j->ending = j->cancel_requested = j->node_fail = false;
    j->exit_code = j->exit_signal = 0;
    batchd_job_set_state(b, j, PHX_JOB_RUNNING, PHX_REASON_NONE);
    b->launched++;
    phx_log_debug("job %" PRIu64 ": started on %s", j->id, j->node_list);
    rc = 0;
out:
    if (list && rc < 0) { /* not started: of its list again */
        free(j->spec.partition);
        j->spec.partition = list;
        j->run_mask_gen = 0;
    } else if (list) { /* kept for a requeue */
        free(j->part_list);
        j->part_list = list;
    }
    for (size_t i = 0; cores && i < nch; i++)
        free(cores[i]);
    free(cores);
    free(ncores);
    free(hosts);
    free(tasks);
    return rc;
}

/* --- the pass --- */

/* The partitions j may run in (batchd_parts_run_mask), kept until they
 * change. */
static uint64_t job_run_mask(batchd_t *b, bjob_t *j)
{
    if (j->run_mask_gen != b->parts_gen + 1) {
        j->run_mask = batchd_parts_run_mask(&b->parts, j->spec.partition);
        j->run_mask_gen = b->parts_gen + 1;
    }
    return j->run_mask;
}

/* The jobs the planner examines, best first: at most bf_max_job_test of
 * each pool (a job of several partitions counts in each of theirs), so
 * that a long queue in one partition keeps no other's jobs from being
 * looked at.  Their requests into reqs, the jobs into rjob. */
static size_t pass_select(pass_t *p, const phx_bf_node_t *nodes, bjob_t **cand,
                          phx_prio_job_t *prio, phx_bf_request_t **reqs, bjob_t ***rjob)
{
    batchd_t *b = p->b;
    phx_bf_pools_init(&p->pools, nodes, b->nnodes);
    /* nodes that came or went may join or split pools: the requests were
     * cancelled by their old pools */
    for (uint32_t i = 0; i < 64; i++)
        phx_bf_pool_of(&p->pools, UINT64_C(1) << i); /* every root direct */
    if (b->pool_roots_set &&
        memcmp(b->pool_roots, p->pools.root, sizeof(b->pool_roots)) != 0) {
        phx_log_info("pools of partitions changed: gang requests asked again");
        batchd_sched_parts_changed(b);
    }
    memcpy(b->pool_roots, p->pools.root, sizeof(b->pool_roots));
    b->pool_roots_set = true;
    size_t npools = phx_bf_pools_count(&p->pools, nodes, b->nnodes), test = 0;
    uint32_t budget = b->bf.max_job_test, tested[PHX_BF_POOLS] = {0}, in[64];
    bool has_nodes[PHX_BF_POOLS] = {false};
    for (size_t i = 0; i < b->nnodes; i++) /* pools of no node are never full */
        for (size_t k = 0, nk = phx_bf_pools_list(&p->pools, nodes[i].parts, in);
             k < nk; k++)
            has_nodes[in[k]] = true;
    /* one pool: the first bf_max_job_test jobs are all it needs */
    size_t n = batchd_order(b, p->now, npools > 1 ? 0 : budget, cand, prio);
    *reqs = calloc(n + 1, sizeof(**reqs));
    *rjob = calloc(n + 1, sizeof(**rjob));
    if (!*reqs || !*rjob)
        return 0;
    for (size_t i = 0, full = 0; i < n && full < npools; i++) {
        bjob_t *j = cand[prio[i].id];
        j->priority = prio[i].priority;
        /* counted where its pools have room (the planner's examine) */
        size_t nk = phx_bf_pools_list(&p->pools, job_run_mask(b, j), in), room = 0;
        for (size_t k = 0; k < nk; k++) {
            if (budget && tested[in[k]] >= budget)
                continue;
            room++;
            full += budget && ++tested[in[k]] == budget && has_nodes[in[k]];
        }
        if (!room)
            continue;
        batchd_bf_request_shape(b, &j->spec,
                                &(*reqs)[test]); /* the names parsed once */
        (*reqs)[test].parts = job_run_mask(b, j);
        (*reqs)[test].only = batchd_job_nodes(b, j);
        (*reqs)[test].job_id = j->id;
        (*reqs)[test].gpu_other = batchd_gpu_other(&p->gc, j);
        (*rjob)[test++] = j;
    }
    return test;
}

/* Another task of its array or another job of its user started earlier in
 * this pass: j waits, and its gang request (cancelled after the ACCEPT)
 * stops the master holding nodes for it; the reason is written. */
static void held_back(batchd_t *b, bjob_t *j, phx_job_reason_t why)
{
    if (j->request_id[0])
        batchd_request_drop(b, j);
    if (j->reason != why) {
        j->reason = why;
        batchd_job_persist(b, j);
    }
}

static void pass_run(pass_t *p)
{
    batchd_t *b = p->b;
    int64_t now = p->now;
    size_t live = batchd_live_from(b);
    bjob_t **cand = calloc(b->npending + 1, sizeof(*cand)), **rjob = NULL;
    phx_prio_job_t *prio = calloc(b->npending + 1, sizeof(*prio));
    /* the planner: free = what our running jobs leave of each usable node */
    phx_bf_node_t *nodes = calloc(b->nnodes + 1, sizeof(*nodes));
    const bnode_t **pnodes = calloc(b->nnodes + 1, sizeof(*pnodes));
    phx_bf_request_t *reqs = NULL;
    phx_bf_running_t *run = calloc(b->nrunning + 1, sizeof(*run));
    phx_bf_share_t *shares = NULL;
    size_t nshares = 0, nrun = 0, sharecap = 0;
    phx_bf_plan_t plan = {0};
    if (!cand || !prio || !nodes || !pnodes || !run)
        goto out_plan;
    for (size_t i = 0; i < b->nnodes; i++) {
        pnodes[i] = &b->nodes[i];
        const bnode_t *bn = &b->nodes[i];
        nodes[i] = (phx_bf_node_t){.cores_total = bn->cores,
                                   .cores_free = bn->cores,
                                   .mem_total = bn->mem,
                                   .mem_free = bn->mem,
                                   .usable = bn->usable,
                                   .sockets = bn->sockets,
                                   .threads_per_core = bn->threads,
                                   .parts = bn->parts,
                                   .gpus_total = bn->ngpus,
                                   .gpus_free = bn->ngpus};
    }
    batchd_gpu_classes(b, &p->gc, nodes); /* GPUs by model */
    size_t test = pass_select(p, nodes, cand, prio, &reqs, &rjob);
    if (!reqs || !rjob)
        goto out_plan;
    for (size_t i = live; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (j->state == PHX_JOB_RUNNING)
            sharecap += j->ntasks;
    }
    shares = calloc(sharecap + 1, sizeof(*shares));
    if (!shares)
        goto out_plan;
    for (size_t i = live; i < b->njobs && nrun < b->nrunning; i++) {
        bjob_t *j = b->order[i];
        if (j->state != PHX_JOB_RUNNING)
            continue;
        size_t first = nshares;
        for (size_t k = 0; k < j->ntasks; k++) {
            const bnode_t *bn = batchd_node_by_agent(b, j->tasks[k].agent_id);
            if (bn) {
                size_t x = (size_t)(bn - b->nodes);
                uint32_t c = j->tasks[k].cpus;
                uint64_t m = j->tasks[k].mem;
                nodes[x].cores_free -=
                    c < nodes[x].cores_free ? c : nodes[x].cores_free;
                nodes[x].mem_free -= m < nodes[x].mem_free ? m : nodes[x].mem_free;
                shares[nshares] = (phx_bf_share_t){.node = (uint32_t)x,
                                                   .tasks = j->tasks[k].tasks,
                                                   .cores = c,
                                                   .mem = m};
                batchd_gpu_hold(&p->gc, bn, j, &j->tasks[k], &nodes[x],
                                &shares[nshares++]);
            }
        }
        /* it frees what it holds at its end: the planner gives the shares
         * back then (they were once added back here too, so every busy node
         * looked free now and no job was ever RESERVED) */
        int64_t end = end_of(j, j->start_time);
        run[nrun++] =
            (phx_bf_running_t){j->id, end < now && end != PHX_BF_NO_END ? now : end,
                               shares + first, nshares - first};
    }
    phx_bf_input_t in = {now, nodes, b->nnodes, run, nrun, reqs, test, p->gc.n};
    phx_error_t err;
    /* Reset at out_plan, before this frame goes. */
    // cppcheck-suppress autoVariables
    p->in = &in;
    p->pnodes = pnodes;
    if (phx_backfill_plan(&in, &b->bf, &plan, &err) < 0) {
        phx_log_errx("backfill plan failed: %s", err.text);
        goto out_plan;
    }
    batchd_expected_starts(b, rjob, plan.decisions, test);
    choice_t *ch = calloc(b->nnodes + 1, sizeof(*ch));
    size_t unused = p->noffers;
    for (size_t i = 0; ch && i < test; i++) {
        if (p->noffers > 0 && unused == 0)
            break; /* the no-offer passes keep the reasons */
        bjob_t *j = rjob[i];
        const phx_bf_decision_t *d = &plan.decisions[i];
        if (j->array_job_id && j->array_max_run &&
            batchd_array_running(b, j->array_job_id) >= j->array_max_run) {
            held_back(b, j, PHX_REASON_JOB_ARRAY_TASK_LIMIT);
            continue;
        }
        if (!batchd_userlim_may_run(b, j->uid)) { /* another of the user's started */
            held_back(b, j, PHX_REASON_QOS_MAX_JOBS_PER_USER);
            continue;
        }
        size_t nch = 0;
        p->cur = d;
        if (unused > 0 && d->verdict != PHX_BF_NEVER &&
            d->verdict != PHX_BF_NOT_TESTED && try_job(p, j, ch, &nch) == 0) {
            if (start_job(p, j, ch, nch) == 0) {
                unused = 0;
                for (size_t k = 0; k < p->noffers; k++)
                    unused += !p->offers[k].used;
                batchd_request_drop(b, j); /* cancelled after the ACCEPT */
                continue;
            }
            /* re-read offers the failed placement touched; one that already
             * holds jobs of this pass cannot be re-read: it takes no more */
            for (size_t k = 0; k < p->noffers; k++) {
                if (p->offers[k].used)
                    continue;
                if (p->offers[k].accepted)
                    p->offers[k].used = true, unused--;
                else
                    batchd_offer_parse(&p->offers[k], json_array_get(p->raw, k));
            }
        }
        phx_job_reason_t why =
            p->blocked[d->pool] ? PHX_REASON_PRIORITY : PHX_REASON_RESOURCES;
        /* every partition it lists runs nothing: the first one's state */
        const bpart_t *pt = reqs[i].parts == BATCHD_PART_GONE
                                ? batchd_parts_find(&b->parts, j->spec.partition, NULL)
                                : NULL;
        if (pt && (pt->state == BPART_DOWN || pt->state == BPART_INACTIVE))
            why = pt->state == BPART_DOWN ? PHX_REASON_PARTITION_DOWN
                                          : PHX_REASON_PARTITION_INACTIVE;
        if (d->verdict != PHX_BF_NEVER && (unused > 0 || p->noffers == 0)) {
            /* every pool of its partitions: behind it, placement keeps to
             * the planner's nodes there */
            uint32_t pools[64];
            size_t nk = phx_bf_pools_list(&p->pools, reqs[i].parts, pools);
            for (size_t k = 0; k < nk; k++)
                p->blocked[pools[k]] = true;
            p->blocked[d->pool] = p->any_blocked = true;
        }
        /* the gang request: the planner's reserved job of its pool, or a
         * multi-node job that fits but whose nodes are not all offered */
        if (!p->reserved[d->pool] &&
            (d->verdict == PHX_BF_RESERVED ||
             (d->verdict == PHX_BF_START && j->spec.nodes_min > 1))) {
            p->reserved[d->pool] = j;
            p->rdec[d->pool] = d->nshares ? d : NULL;
            batchd_request_send(b, j, d->pool, p->rdec[d->pool], p->now);
        }
        if (j->reason != why) {
            j->reason = why;
            batchd_job_persist(b, j);
        }
    }
    free(ch);
out_plan:
    p->in = NULL; /* it pointed into this frame */
    phx_backfill_plan_clear(&plan);
    free(nodes);
    free(pnodes);
    free(reqs);
    free(rjob);
    free(run);
    free(shares);
    free(cand);
    free(prio);
}

/* The jobs the pass started, in one ACCEPT whose every operation is a gang of
 * its own (doc/scheduler-api.md): one round trip and one allocation pass of
 * the master start as many jobs as the offers hold.  If the call cannot even
 * be sent, the jobs go back to pending. */
static void send_accept(pass_t *p)
{
    batchd_t *b = p->b;
    if (p->nacc > 0) {
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < p->noffers; i++)
            if (p->offers[i].accepted)
                json_array_append_new(ids,
                                      json_pack("{s:s}", "value", p->offers[i].id));
        json_t *call =
            ids ? json_pack("{s:s, s:{s:o, s:O, s:{s:f}, s:{s:b}}}", "type", "ACCEPT",
                            "accept", "offer_ids", ids, "operations", p->acc_ops,
                            "filters", "refuse_seconds", 0.0, "phx",
                            "gang_per_operation", 1)
                : NULL;
        if (phx_fwc_call(b->fwc, call, accepted, (void *)(uintptr_t)p->nacc) < 0) {
            phx_log_errx("could not send the launch of %zu jobs; they stay pending",
                         p->nacc);
            for (size_t i = 0; i < p->nacc; i++) {
                bjob_t *j = p->acc_jobs[i];
                for (size_t k = 0; k < j->ntasks; k++)
                    phx_hmap_del(b->tasks, j->tasks[k].id);
                free(j->tasks);
                j->tasks = NULL;
                j->ntasks = 0;
                j->tasks_live = 0;
                j->start_time = -1;
                batchd_job_set_state(b, j, PHX_JOB_PENDING, PHX_REASON_RESOURCES);
                b->launched--;
            }
            for (size_t i = 0; i < p->noffers; i++)
                p->offers[i].accepted = false; /* declined instead */
        }
    }
    batchd_request_flush(b);
}

static void decline_unused(pass_t *p)
{
    batchd_t *b = p->b;
    json_t *ids = json_array();
    for (size_t i = 0; i < p->noffers; i++)
        if (!p->offers[i].accepted)
            json_array_append_new(ids, json_pack("{s:s}", "value", p->offers[i].id));
    if (json_array_size(ids) > 0) {
        phx_fwc_decline(b->fwc, ids, b->refuse_seconds);
        b->declined = true;
    }
    json_decref(ids);
}

/* Offers are wanted while a pending job is eligible (b->neligible, the
 * last pass's count): what makes one so (submission, release, a job's end,
 * an account restored, the clock's tick) runs a pass that counts again. */
static void suppress_or_revive(batchd_t *b)
{
    if (!b->subscribed)
        return;
    bool work = b->npending > 0 && b->neligible > 0;
    if (!work && !b->suppressed) {
        phx_fwc_suppress(b->fwc);
        b->suppressed = true;
        return;
    }
    double t = mono();
    if (work && (b->suppressed || (b->declined && b->want_revive)) &&
        t - b->last_revive > 0.2) {
        phx_fwc_revive(b->fwc);
        b->suppressed = b->declined = b->want_revive = false;
        b->last_revive = t;
    }
}

void batchd_sched_offers(batchd_t *b, const json_t *offers)
{
    pass_t p = {.b = b, .now = batchd_now(), .raw = offers, .acc_ops = json_array()};
    size_t n = json_array_size(offers);
    p.offers = calloc(n + 1, sizeof(*p.offers));
    if (!p.offers || !p.acc_ops) {
        free(p.offers);
        json_decref(p.acc_ops);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(offers, i);
        if (batchd_offer_parse(&p.offers[p.noffers], o) < 0)
            phx_log_warnx("offer %zu of an OFFERS event is malformed", i);
        p.noffers++;
        if (p.offers[i].request_id[0]) { /* a pending job's request */
            for (size_t k = 0; k < b->nrequested; k++) {
                bjob_t *x = b->requested[k];
                if (strcmp(x->request_id, p.offers[i].request_id) == 0 &&
                    x->state == PHX_JOB_PENDING) {
                    p.offers[i].owner = x;
                    /* satisfied: ask again soon if it cannot use them */
                    x->request_until = p.now + 2;
                }
            }
        }
        if (!batchd_node_by_agent(b, p.offers[i].agent_id))
            batchd_nodes_refresh(b);
    }
    b->sched_pending = false;
    double t0 = mono();
    if (b->npending > 0)
        pass_run(&p);
    double dt = mono() - t0;
    b->pass_time += dt;
    b->passes++;
    if (dt > 0.05)
        phx_log_info("slow scheduling pass: %.0f ms for %zu offers, %zu pending",
                     dt * 1e3, p.noffers, b->npending);
    send_accept(&p);
    for (size_t i = 0; i < p.nacc && b->neligible > 0; i++)
        b->neligible -= p.acc_jobs[i]->state == PHX_JOB_RUNNING; /* started */
    decline_unused(&p);
    for (size_t i = 0; i < p.noffers; i++)
        batchd_offer_clear(&p.offers[i]);
    free(p.offers);
    free(p.acc_jobs);
    json_decref(p.acc_ops);
    suppress_or_revive(b);
}

static void on_sched(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    batchd_t *b = arg;
    b->sched_pending = false;
    pass_t p = {.b = b, .now = batchd_now()};
    if (b->npending > 0)
        pass_run(&p);
    batchd_request_flush(b);
    suppress_or_revive(b);
}

void batchd_sched_dirty(batchd_t *b)
{
    b->want_revive = true;
    if (b->sched_pending)
        return;
    if (!b->sched_ev && !(b->sched_ev = event_new(b->base, -1, 0, on_sched, b)))
        return;
    b->sched_pending = true;
    event_active(b->sched_ev, 0, 0);
}

void batchd_sched_subscribed(batchd_t *b)
{
    /* explicit reconciliation of every task we believe live */
    json_t *ids = json_array();
    for (size_t i = 0; i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        for (size_t k = 0; k < j->ntasks; k++)
            if (!j->tasks[k].ended)
                json_array_append_new(ids, json_string(j->tasks[k].id));
    }
    if (json_array_size(ids) > 0) {
        phx_log_info("reconciling %zu tasks", json_array_size(ids));
        phx_fwc_reconcile(b->fwc, ids);
    }
    json_decref(ids);
    batchd_kills_resume(b);
    batchd_request_flush(b); /* what was dropped while unsubscribed */
    /* a REVIVE when work is pending (filters of an earlier subscription),
     * else a SUPPRESS */
    b->suppressed = false;
    b->declined = b->want_revive = true;
    b->last_revive = 0;
    batchd_sched_dirty(b);
}
