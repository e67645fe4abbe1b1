/* Steps in the master: a request from the agent of a job's task, the
 * layout over the gang's agents, launches, exits, aborts and kills.
 *
 * The steps live in a file-local index (step id → step): the master's
 * struct belongs to other files, and steps are transient (in memory only;
 * a master restart loses them and their agents kill them). */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/sched.h"
#include "daemons/master/step.h"
#include "lib/hmap.h"
#include "lib/hostlist.h"
#include "lib/json.h"
#include "lib/log.h"
#include "topology/free.h"

static phx_hmap_t *steps; /* decimal id → phx_step_t (owned); NULL when empty */
/* decimal gang id → its steps in `steps` (a count, not a pointer); NULL when
 * empty: master.max_steps_per_job */
static phx_hmap_t *per_gang;
static uint64_t next_step;
static struct event *check_ev; /* lost agents, while there are steps */

static void check_steps(evutil_socket_t fd, short what, void *arg);
static void step_maybe_done(phx_master_t *m, phx_step_t *s);

static void step_free(phx_step_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nparts; i++) {
        phx_step_part_t *p = &s->parts[i];
        free(p->agent);
        free(p->task_id);
        free(p->ranks);
        for (int k = 0; p->cores && k < p->nranks; k++)
            free(p->cores[k]);
        free(p->cores);
        free(p->ncores);
        free(p->fence);
    }
    free(s->parts);
    if (s->resize_ev)
        event_free(s->resize_ev);
    free(s->failed);
    free(s->origin);
    free(s->fw_id);
    json_decref(s->req);
    free(s);
}

static uintptr_t gang_steps(int64_t gang_id)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)gang_id);
    return per_gang ? (uintptr_t)phx_hmap_get(per_gang, key) : 0;
}

/* Count the gang's steps up (+1) or down (-1); -1 with ENOMEM. */
static int gang_steps_add(int64_t gang_id, int delta)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)gang_id);
    uintptr_t n = gang_steps(gang_id) + (uintptr_t)(intptr_t)delta;
    if (n > 0)
        return (per_gang || (per_gang = phx_hmap_create())) &&
                       phx_hmap_put(per_gang, key, (void *)n) == 0
                   ? 0
                   : -1;
    if (per_gang)
        phx_hmap_del(per_gang, key);
    if (per_gang && phx_hmap_count(per_gang) == 0) {
        phx_hmap_destroy(per_gang);
        per_gang = NULL;
    }
    return 0;
}

static void step_forget(phx_step_t *s)
{
    char key[24];
    snprintf(key, sizeof(key), "%llu", (unsigned long long)s->id);
    if (steps && phx_hmap_del(steps, key))
        gang_steps_add(s->gang_id, -1);
    step_free(s);
    if (steps && phx_hmap_count(steps) == 0) {
        phx_hmap_destroy(steps);
        steps = NULL;
        if (check_ev)
            event_free(check_ev);
        check_ev = NULL;
    }
}

phx_step_t *phx_step_find(const json_t *hdr)
{
    json_t *id = json_object_get(hdr, "step");
    if (!steps || !json_is_integer(id))
        return NULL;
    char key[24];
    snprintf(key, sizeof(key), "%llu", (unsigned long long)json_integer_value(id));
    return phx_hmap_get(steps, key);
}

int phx_step_send(phx_master_t *m, const char *agent, json_t *hdr, const void *attach,
                  size_t len)
{
    phx_master_agent_t *a = phx_master_agent_find(m, agent);
    if (!a || !a->conn) {
        json_decref(hdr);
        errno = ENOTCONN;
        return -1;
    }
    return phx_master_conn_send(a->conn, hdr, attach, len);
}

static void refuse(phx_master_agent_t *a, const json_t *req, const char *why)
{
    phx_log_info("agent \"%s\": step refused: %s", a->name, why);
    if (a->conn)
        phx_master_conn_send(a->conn,
                             json_pack("{s:s, s:O?, s:s}", "type", "STEP_REFUSED",
                                       "req", req, "message", why),
                             NULL, 0);
}

static int parse_req(const json_t *h, phx_step_req_t *r, phx_error_t *err)
{
    long long nodes = 0, ntasks = 0, ntpn = 0, cpt = 1;
    const char *bind = NULL, *dist = NULL;
    if (phx_json_int(h, "nodes", false, 0, 65536, &nodes, err) < 0 ||
        phx_json_int(h, "ntasks", false, 0, PHX_STEP_TASKS_MAX, &ntasks, err) < 0 ||
        phx_json_int(h, "ntasks_per_node", false, 0, 65536, &ntpn, err) < 0 ||
        phx_json_int(h, "cpus_per_task", false, 1, 65536, &cpt, err) < 0 ||
        phx_json_str(h, "cpu_bind", false, &bind, err) < 0 ||
        phx_json_str(h, "distribution", false, &dist, err) < 0)
        return -1;
    r->nodes = (int)nodes;
    r->job_counts = NULL;
    r->ntasks = (int)ntasks;
    r->ntasks_per_node = (int)ntpn;
    r->cpus_per_task = (int)cpt;
    if (dist && strcmp(dist, "block") != 0 && strcmp(dist, "cyclic") != 0)
        return phx_error_set(err, "unknown distribution \"%s\"", dist);
    r->cyclic = dist && strcmp(dist, "cyclic") == 0;
    if (bind && strcmp(bind, "cores") != 0 && strcmp(bind, "sockets") != 0 &&
        strcmp(bind, "none") != 0)
        return phx_error_set(err, "unknown cpu binding \"%s\"", bind);
    r->bind_cores = !bind || strcmp(bind, "none") != 0;
    r->bind_sockets = bind && strcmp(bind, "sockets") == 0;
    return phx_step_check_gpu_opts(h, r, err);
}

#define STEP_NODES_MAX 65536 /* names a step's -w or -x may expand to */

/* The step's -w and -x (host lists in the request) over the job's nodes:
 * phx_step_pick_nodes.  0 or -1 with err. */
static int pick_nodes(const json_t *h, phx_task_t **nodes, int *n, phx_step_req_t *r,
                      phx_error_t *err)
{
    const char *want = NULL, *skip = NULL;
    if (phx_json_str(h, "nodelist", false, &want, err) < 0 ||
        phx_json_str(h, "exclude", false, &skip, err) < 0)
        return -1;
    if (!want && !skip)
        return 0;
    char **w = NULL, **x = NULL;
    size_t nw = 0, nx = 0;
    const char **names = calloc((size_t)*n + 1, sizeof(*names));
    int rc = -1;
    if (!names) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < *n; i++)
        names[i] = nodes[i]->agent->name;
    if (want && phx_hostlist_expand(want, STEP_NODES_MAX, &w, &nw, err) < 0) {
        phx_error_prefix(err, "--nodelist");
        goto out;
    }
    if (skip && phx_hostlist_expand(skip, STEP_NODES_MAX, &x, &nx, err) < 0) {
        phx_error_prefix(err, "--exclude");
        goto out;
    }
    rc = phx_step_pick_nodes((void **)nodes, names, n, w, nw, x, nx, r, err);
out:
    phx_hostlist_free(w, nw);
    phx_hostlist_free(x, nx);
    free(names);
    return rc;
}

/* The job's layout when the request has one (phx_step_job_layout): the
 * nodes in its order, r->job_counts = counts, each node's ranks.  0 or -1
 * with err. */
static int job_layout(const json_t *h, phx_task_t **nodes, int n, phx_step_req_t *r,
                      int *counts, phx_error_t *err)
{
    const char **names = calloc((size_t)n + 1, sizeof(*names));
    if (!names)
        return phx_error_set(err, "out of memory");
    for (int i = 0; i < n; i++)
        names[i] = nodes[i]->agent->name;
    int rc = phx_step_job_layout(h, (void **)nodes, names, n, counts, err);
    free(names);
    if (rc > 0)
        r->job_counts = counts;
    return rc < 0 ? -1 : 0;
}

/* The gang's live tasks, the caller's first. */
static phx_task_t **gang_nodes(phx_task_t *caller, int *n)
{
    phx_gang_t *g = caller->gang;
    phx_task_t **list = calloc((size_t)g->ntasks + 1, sizeof(*list));
    if (!list)
        return NULL;
    list[0] = caller;
    *n = 1;
    for (int i = 0; i < g->ntasks; i++) {
        phx_task_t *t = g->tasks[i];
        if (t && t != caller && !phx_task_state_terminal(t->state) && t->grant)
            list[(*n)++] = t;
    }
    return list;
}

static int *task_cores(const phx_task_t *t, int *n)
{
    const phx_topo_coreset_t *set = phx_topo_grant_cores(t->grant);
    *n = phx_topo_coreset_count(set);
    int *v = calloc((size_t)*n + 1, sizeof(*v));
    int i = 0;
    for (int c = phx_topo_coreset_next(set, -1); v && c >= 0 && i < *n;
         c = phx_topo_coreset_next(set, c))
        v[i++] = c;
    return v;
}

/* Local rank k's cores: cpus_per_task of the task's cores in turn (wrapping
 * when oversubscribed); under --cpu-bind=sockets, every core of the task on
 * the sockets of those. */
static void rank_cores(phx_step_part_t *p, int k, const int *cores, int ncores,
                       const phx_step_req_t *r, const phx_topo_t *topo)
{
    int cpt = r->cpus_per_task;
    /* past ncores, cpt cores in turn name every core, some twice: each
     * once is the same set (cpt may be 65536 where a node has 8) */
    int take = cpt < ncores ? cpt : ncores;
    int *mine = calloc((size_t)ncores, sizeof(int));
    if (!mine)
        return;
    int n = 0;
    for (int j = 0; j < take; j++)
        mine[n++] = cores[((long long)k * cpt + j) % ncores];
    if (r->bind_sockets && topo) {
        int *all = calloc((size_t)ncores, sizeof(int)), m = 0;
        for (int c = 0; all && c < ncores; c++) {
            bool same = false;
            for (int j = 0; j < n && !same; j++)
                same = phx_topo_core_socket(topo, cores[c]) ==
                       phx_topo_core_socket(topo, mine[j]);
            if (same)
                all[m++] = cores[c];
        }
        if (all) {
            free(mine);
            mine = all;
            n = m;
        }
    }
    p->cores[k] = mine;
    p->ncores[k] = n;
}

/* Fill the parts from the layout. */
static int build_parts(phx_step_t *s, phx_task_t **nodes, int nnodes, const int *counts,
                       const int *rank_node, const phx_step_req_t *r)
{
    s->parts = calloc((size_t)nnodes, sizeof(*s->parts));
    if (!s->parts)
        return -1;
    for (int i = 0; i < nnodes && counts[i] > 0; i++) {
        phx_step_part_t *p = &s->parts[s->nparts++];
        p->agent = strdup(nodes[i]->agent->name);
        p->task_id = strdup(nodes[i]->id);
        p->ranks = calloc((size_t)counts[i], sizeof(*p->ranks));
        if (!p->agent || !p->task_id || !p->ranks)
            return -1;
        for (int rank = 0; rank < s->size; rank++)
            if (rank_node[rank] == i)
                p->ranks[p->nranks++] = rank;
        int ncores;
        int *cores = task_cores(nodes[i], &ncores);
        if (!cores)
            return -1;
        p->oversubscribed =
            ncores < 1 || (long long)p->nranks * r->cpus_per_task > ncores;
        /* the cores its ranks occupy: at most the job's cores on that node */
        s->rec.alloc_cpus += p->oversubscribed ? (ncores > 0 ? ncores : p->nranks)
                                               : p->nranks * r->cpus_per_task;
        s->rec.alloc_gpus +=
            phx_step_gpus_on_node(r, p->nranks, phx_topo_grant_ngpus(nodes[i]->grant));
        phx_step_rec_add_node(&s->rec, p->agent);
        if (r->bind_cores && ncores > 0 &&
            (p->cores = calloc((size_t)p->nranks, sizeof(*p->cores))) &&
            (p->ncores = calloc((size_t)p->nranks, sizeof(int)))) {
            const phx_topo_t *topo = nodes[i]->agent->topo;
            for (int k = 0; k < p->nranks; k++)
                rank_cores(p, k, cores, ncores, r, topo);
        }
        free(cores);
    }
    return 0;
}

/* The request's "input": "all", "none" (or none given: a `phx run` whose
 * stdin is /dev/null, or an older one) or a rank number below size.  With
 * "pty" (--pty: rank 0 on a terminal of this size) it must be 0. */
static int parse_input(const json_t *h, int size, int *input, phx_error_t *err)
{
    json_t *v = json_object_get(h, "input"), *pty = json_object_get(h, "pty");
    const char *str = json_string_value(v);
    phx_winsize_t ws;
    *input = PHX_STEP_IN_NONE;
    if (pty && !json_is_null(pty)) {
        if (phx_winsize_parse(pty, &ws, err) < 0)
            return -1;
        if (!json_is_integer(v) || json_integer_value(v) != 0)
            return phx_error_set(err, "pty: rank 0 must get the input (input 0)");
    }
    if (!v || json_is_null(v) || (str && strcmp(str, "none") == 0))
        return 0;
    if (str && strcmp(str, "all") == 0) {
        *input = PHX_STEP_IN_ALL;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return phx_error_set(err, "invalid input \"%s\" (all, none or a rank number)",
                             str ? str : "?");
    if (json_integer_value(v) >= size)
        return phx_error_set(err, "--input=%lld: the step has %d ranks (0 to %d)",
                             (long long)json_integer_value(v), size, size - 1);
    *input = (int)json_integer_value(v);
    return 0;
}

/* The launch could not be queued on every part (a frame above max_frame,
 * a connection that failed): the step fails, not hangs.  The parts not
 * launched end at once (no ranks there), the others are killed and end
 * when they report; `phx run` gets why in STEP_DONE (phx_step_kill logs
 * it).  May free s. */
static void launch_failed(phx_master_t *m, phx_step_t *s, const char *why)
{
    s->failed = strdup(why);
    for (int i = 0; i < s->nparts; i++)
        if (!s->parts[i].launched && !s->parts[i].exited) {
            s->parts[i].exited = true;
            s->exited++;
        }
    phx_step_kill(m, s, 1, why);
    step_maybe_done(m, s);
}

static phx_task_t *caller_task(phx_master_t *m, phx_master_agent_t *a, const json_t *h,
                               phx_error_t *err)
{
    const char *fw_id, *task_id;
    if (phx_json_str(h, "framework_id", true, &fw_id, err) < 0 ||
        phx_json_str(h, "task_id", true, &task_id, err) < 0 ||
        phx_step_check_command(h, err) < 0)
        return NULL;
    phx_fw_t *fw = phx_fw_find(m, fw_id);
    phx_task_t *t = fw ? phx_task_find(fw, task_id) : NULL;
    if (!t || t->agent != a || !t->gang || t->gang->id <= 0 || !t->grant ||
        phx_task_state_terminal(t->state)) {
        phx_error_set(err, "task %s of framework %s is not a running job task here",
                      task_id, fw_id);
        return NULL;
    }
    return t;
}

void phx_step_on_request(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    const json_t *h = f->header;
    json_t *req = json_object_get(h, "req");
    phx_error_t err;
    phx_step_req_t r;
    phx_task_t *t = caller_task(m, a, h, &err);
    if (!t || parse_req(h, &r, &err) < 0) {
        refuse(a, req, err.text);
        return;
    }
    r.max_per_node = (int)phx_conf_int(m->conf, "master.max_step_tasks_per_node");
    long long max_steps = phx_conf_int(m->conf, "master.max_steps_per_job");
    if (max_steps > 0 && gang_steps(t->gang->id) >= (uintptr_t)max_steps) {
        phx_error_set(&err,
                      "job already runs %llu steps: at most %lld at once "
                      "(master.max_steps_per_job)",
                      (unsigned long long)gang_steps(t->gang->id), max_steps);
        refuse(a, req, err.text);
        return;
    }
    int nnodes = 0, n = -1, *rank_node = NULL;
    phx_task_t **nodes = gang_nodes(t, &nnodes);
    int *counts = calloc((size_t)nnodes + 1, sizeof(int));
    int *job = calloc((size_t)nnodes + 1, sizeof(int));
    phx_step_t *s = calloc(1, sizeof(*s));
    char key[24];
    if (!nodes || !counts || !job || !s) {
        phx_error_set(&err, "out of memory");
        goto refused;
    }
    if (pick_nodes(h, nodes, &nnodes, &r, &err) < 0 ||
        job_layout(h, nodes, nnodes, &r, job, &err) < 0 ||
        (n = phx_step_layout(&r, nnodes, NULL, counts, &rank_node, &err)) < 0 ||
        parse_input(h, n, &s->input, &err) < 0)
        goto refused;
    for (int i = 0; i < nnodes && counts[i] > 0; i++) /* its GPUs per task there */
        if (phx_step_check_gpus(&r, nodes[i]->agent->name, counts[i],
                                phx_topo_grant_ngpus(nodes[i]->grant), &err) < 0)
            goto refused;
    s->id = ++next_step;
    s->size = n;
    s->cpus_per_task = r.cpus_per_task;
    s->gang_id = t->gang->id;
    s->req = json_incref(req);
    s->rec.gang_id = s->gang_id;
    s->rec.ntasks = n;
    s->rec.start = phx_master_clock();
    s->rec.end = -1;
    s->rec.state = "RUNNING";
    phx_step_rec_set_name(
        &s->rec, json_string_value(json_array_get(json_object_get(h, "argv"), 0)));
    snprintf(s->nspace, sizeof(s->nspace), "phx.%lld.%llu", (long long)s->gang_id,
             (unsigned long long)s->id);
    s->origin_link = a->links;
    if (!(s->origin = strdup(a->name)) || !(s->fw_id = strdup(t->fw->id)) ||
        build_parts(s, nodes, nnodes, counts, rank_node, &r) < 0) {
        phx_error_set(&err, "out of memory");
        goto refused;
    }
    for (int i = 0; i < s->nparts; i++) {
        phx_master_agent_t *pa = phx_master_agent_find(m, s->parts[i].agent);
        if (!pa || !pa->conn) {
            phx_error_set(&err, "agent \"%s\" of the job is not connected",
                          s->parts[i].agent);
            goto refused;
        }
    }
    snprintf(key, sizeof(key), "%llu", (unsigned long long)s->id);
    if (gang_steps_add(s->gang_id, +1) < 0) {
        phx_error_set(&err, "out of memory");
        goto refused;
    }
    if ((!steps && !(steps = phx_hmap_create())) || phx_hmap_put(steps, key, s) < 0) {
        gang_steps_add(s->gang_id, -1);
        phx_error_set(&err, "out of memory");
        goto refused;
    }
    /* numbered once it is sure to start: the numbers have no gaps */
    s->rec.number = t->gang->next_step++;
    s->rec.nnodes = s->nparts;
    struct timeval sec = {1, 0};
    if (!check_ev && (check_ev = event_new(m->base, -1, EV_PERSIST, check_steps, m)))
        event_add(check_ev, &sec);
    phx_log_info("step %s: step %d of gang %lld, %d ranks on %d agents for task %s",
                 s->nspace, s->rec.number, (long long)s->gang_id, s->size, s->nparts,
                 t->id);
    bool origin_runs = false;
    for (int i = 0; i < s->nparts; i++)
        origin_runs = origin_runs || strcmp(s->parts[i].agent, s->origin) == 0;
    bool launched = phx_step_launch_send(m, s, h, &err) == 0;
    /* no rank where `phx run` runs (-w, -x): its agent learns the step
     * there, to route its output and end to it */
    if (launched && !origin_runs)
        phx_step_send(m, s->origin,
                      json_pack("{s:s, s:I, s:O, s:i, s:i, s:o}", "type",
                                "STEP_STARTED", "step", (json_int_t)s->id, "req",
                                s->req, "number", s->rec.number, "size", s->size,
                                "input_to", phx_step_input_to(s)),
                      NULL, 0);
    phx_step_acct_write(m, &s->rec);
    free(nodes);
    free(counts);
    free(job);
    free(rank_node);
    if (!launched)
        launch_failed(m, s, err.text); /* may free s */
    return;
refused:
    refuse(a, req, err.text);
    step_free(s);
    free(nodes);
    free(counts);
    free(job);
    free(rank_node);
}

static phx_step_part_t *part_of(phx_step_t *s, const phx_master_agent_t *a)
{
    for (int i = 0; i < s->nparts; i++)
        if (strcmp(s->parts[i].agent, a->name) == 0)
            return &s->parts[i];
    return NULL;
}

void phx_step_kill(phx_master_t *m, phx_step_t *s, int code, const char *why)
{
    if (s->aborted)
        return;
    s->aborted = true;
    s->abort_code = code;
    phx_log_notice("step %s: %s; killing it on %d agents", s->nspace, why, s->nparts);
    for (int i = 0; i < s->nparts; i++)
        if (!s->parts[i].exited)
            phx_step_send(m, s->parts[i].agent,
                          json_pack("{s:s, s:I, s:s}", "type", "STEP_KILL", "step",
                                    (json_int_t)s->id, "reason", why),
                          NULL, 0);
}

void phx_step_on_abort(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    if (!s || !part_of(s, a))
        return;
    long long status = 1;
    const char *msg = NULL;
    phx_error_t err;
    phx_json_int(f->header, "status", false, -1000000, 1000000, &status, &err);
    phx_json_str(f->header, "message", false, &msg, &err);
    if (!s->aborted && json_is_true(json_object_get(f->header, "cancel")))
        s->cause = PHX_STEP_CAUSE_CANCEL;
    char why[300];
    snprintf(why, sizeof(why), "%s on agent \"%s\" (status %lld)",
             msg && *msg ? msg : "a rank aborted", a->name, status);
    phx_step_kill(m, s, (int)status, why);
}

/* A part's CPU times (summed) and max RSS (the highest) of its ranks. */
static void add_usage(phx_step_t *s, const json_t *h)
{
    json_t *u = json_object_get(h, "user_cpu_s"),
           *y = json_object_get(h, "system_cpu_s");
    json_t *rss = json_object_get(h, "max_rss_bytes");
    if (!json_is_number(u) || !json_is_number(y))
        return;
    if (!s->rec.have_usage)
        s->rec.max_rss = -1;
    s->rec.have_usage = true;
    s->rec.user_s += json_number_value(u) > 0 ? json_number_value(u) : 0;
    s->rec.system_s += json_number_value(y) > 0 ? json_number_value(y) : 0;
    if (json_is_integer(rss) && json_integer_value(rss) > s->rec.max_rss)
        s->rec.max_rss = json_integer_value(rss);
}

/* An exit number of a STEP_EXIT within [0, max]: 0 when absent. */
static int exit_field(const json_t *h, const char *name, int max)
{
    json_int_t v = json_integer_value(json_object_get(h, name));
    return v < 0 ? 0 : v > max ? max : (int)v;
}

void phx_step_on_exit(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    phx_step_t *s = phx_step_find(f->header);
    phx_step_part_t *p = s ? part_of(s, a) : NULL;
    if (!p || p->exited)
        return;
    p->exited = true;
    s->exited++;
    /* the agent's summary of its ranks (daemons/agent/step_exit.c); the
     * numbers are bounded to what exits can be */
    int c = exit_field(f->header, "exit_code", 128 + 127);
    int code = exit_field(f->header, "max_code", 255);
    int sig = exit_field(f->header, "max_signal", 127);
    if (c > s->exit_code)
        s->exit_code = c;
    if (code > s->max_code)
        s->max_code = code;
    if (sig > s->max_signal)
        s->max_signal = sig;
    if (json_integer_value(json_object_get(f->header, "failed")) > 0)
        phx_log_info(
            "step %s: %lld of %lld ranks on %s failed, the first rank %lld", s->nspace,
            (long long)json_integer_value(json_object_get(f->header, "failed")),
            (long long)json_integer_value(json_object_get(f->header, "nranks")),
            a->name,
            (long long)json_integer_value(json_object_get(f->header, "first_failed")));
    add_usage(s, f->header);
    step_maybe_done(m, s);
}

static void step_maybe_done(phx_master_t *m, phx_step_t *s)
{
    if (s->exited < s->nparts)
        return;
    int code = s->aborted ? s->abort_code : s->exit_code;
    s->rec.end = phx_master_clock();
    s->rec.state = phx_step_rec_outcome(
        s->max_code, s->max_signal, s->aborted && s->cause == PHX_STEP_CAUSE_NONE,
        s->abort_code, s->cause, &s->rec.exit_code, &s->rec.exit_signal);
    phx_log_info("step %s: ended with exit code %d (%s %d:%d)", s->nspace, code,
                 s->rec.state, s->rec.exit_code, s->rec.exit_signal);
    json_t *done = json_pack("{s:s, s:I, s:O?, s:i, s:b}", "type", "STEP_DONE", "step",
                             (json_int_t)s->id, "req", s->req, "exit_code", code,
                             "aborted", s->aborted);
    if (done && s->failed)
        json_object_set_new(done, "message", json_string(s->failed));
    phx_step_send(m, s->origin, done, NULL, 0);
    phx_step_acct_write(m, &s->rec);
    step_forget(s);
}

/* An agent whose connection went away takes its ranks' story with it: the
 * step is killed everywhere else and ends without it. */
static void check_steps(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_t *m = arg;
    size_t n = steps ? phx_hmap_count(steps) : 0, pos = 0, i = 0;
    phx_step_t **list = calloc(n + 1, sizeof(*list));
    void *v;
    while (list && steps && i < n && phx_hmap_next(steps, &pos, NULL, &v))
        list[i++] = v;
    for (size_t k = 0; k < i; k++) {
        phx_step_t *s = list[k];
        /* `phx run` is gone when its agent's link is (the agent fails its
         * clients then): a step with no rank there (-w, -x) would run on
         * with no one to follow it */
        phx_master_agent_t *o = phx_master_agent_find(m, s->origin);
        if (!s->aborted && (!o || !o->conn || o->links != s->origin_link)) {
            char why[300];
            snprintf(why, sizeof(why), "the agent of phx run (\"%s\") was lost",
                     s->origin);
            phx_step_kill(m, s, 128 + 9, why);
        }
        for (int p = 0; p < s->nparts; p++) {
            phx_step_part_t *part = &s->parts[p];
            phx_master_agent_t *a = phx_master_agent_find(m, part->agent);
            if (part->exited || (a && a->conn))
                continue;
            part->exited = true;
            s->exited++;
            if (!s->aborted)
                s->cause = PHX_STEP_CAUSE_NODE_FAIL;
            char why[300];
            snprintf(why, sizeof(why), "agent \"%s\" was lost", part->agent);
            phx_step_kill(m, s, 128 + 9, why);
        }
        step_maybe_done(m, s);
    }
    free(list);
}

void phx_step_on_frame(phx_master_t *m, phx_master_agent_t *a, const phx_frame_t *f)
{
    static const struct {
        const char *type;
        void (*fn)(phx_master_t *, phx_master_agent_t *, const phx_frame_t *);
    } table[] = {
        {"STEP_REQUEST", phx_step_on_request},
        {"STEP_EXIT", phx_step_on_exit},
        {"STEP_ABORT", phx_step_on_abort},
        {"STEP_OUTPUT", phx_step_on_output},
        {"STEP_INPUT", phx_step_on_input},
        {"STEP_INPUT_ACK", phx_step_on_input_ack},
        {"STEP_WINSIZE", phx_step_on_winsize},
        {"FENCE", phx_step_on_fence},
        {"DMODEX", phx_step_on_dmodex},
        {"DMODEX_DATA", phx_step_on_dmodex_data},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(f->type, table[i].type) == 0) {
            table[i].fn(m, a, f);
            return;
        }
}
