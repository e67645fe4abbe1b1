/* The master's HTTP endpoints: GET /health, GET /state and GET /metrics
 * (authenticated as http_read.c says), and the operator API POST
 * /api/v1/operator (DRAIN_AGENT, REACTIVATE_AGENT), shaped after Mesos'
 * operator calls and authenticated with munge. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/master.h"
#include "daemons/master/sched.h"
#include "lib/http.h"
#include "lib/http_guard.h"
#include "lib/http_limit.h"
#include "lib/json.h"
#include "lib/log.h"

typedef void (*route_f)(phx_master_t *m, struct evhttp_request *req);

static void get_health(phx_master_t *m, struct evhttp_request *req)
{
    (void)m;
    phx_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *frameworks_json(phx_master_t *m)
{
    json_t *list = json_array();
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        phx_fw_t *fw = v;
        phx_alloc_framework_info_t info = {0};
        phx_alloc_framework_info(m->alloc, fw->id, &info);
        json_t *tasks = json_array();
        size_t tp = 0;
        void *tv;
        while (phx_hmap_next(fw->tasks, &tp, NULL, &tv)) {
            phx_task_t *t = tv;
            char *cores = phx_topo_coreset_str(phx_topo_grant_cores(t->grant));
            json_array_append_new(tasks,
                                  json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", t->id,
                                            "state", t->state, "agent", t->agent->name,
                                            "cores", cores ? cores : "", "gang",
                                            (json_int_t)(t->gang ? t->gang->id : 0)));
            free(cores);
        }
        json_array_append_new(
            list,
            json_pack("{s:s, s:s?, s:s?, s:s?, s:f, s:f, s:b, s:b, s:i, s:i, s:i, s:o}",
                      "id", fw->id, "name", fw->name, "user", fw->user, "role",
                      fw->role, "weight", fw->weight, "share", info.share, "connected",
                      fw->stream != NULL, "removed", fw->removed, "offers",
                      (int)phx_hmap_count(fw->offers), "used_cores", info.used_cores,
                      "requests", info.nrequests, "tasks", tasks));
    }
    return list;
}

static void get_state(phx_master_t *m, struct evhttp_request *req)
{
    if (phx_master_http_reader(m, req, false) < 0)
        return;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
                      "no-store");
    json_t *agents = json_array();
    for (size_t i = 0; i < m->nagents; i++) {
        json_t *a = phx_master_agent_json(m->agents[i]);
        /* cores and GPUs held for a gang request: why an idle node takes no
         * work */
        phx_alloc_agent_info_t info = {0};
        if (a && phx_alloc_agent_info(m->alloc, m->agents[i]->id, &info) == 0) {
            json_object_set_new(a, "held_cores", json_integer(info.held_cores));
            json_object_set_new(a, "held_gpus", json_integer(info.held_gpus));
        }
        json_array_append_new(agents, a);
    }
    phx_http_reply_json(req, 200,
                        json_pack("{s:s, s:I, s:o, s:o}", "version", PHX_VERSION,
                                  "time", (json_int_t)phx_master_wall(), "agents",
                                  agents, "frameworks", frameworks_json(m)));
}

static void get_metrics(phx_master_t *m, struct evhttp_request *req)
{
    if (phx_master_http_reader(m, req, true) < 0)
        return;
    int by_state[3] = {0}, drained = 0;
    long long cores = 0, cores_free = 0;
    unsigned long long mem = 0, mem_free = 0;
    size_t tasks = 0;
    for (size_t i = 0; i < m->nagents; i++) {
        phx_master_agent_t *a = m->agents[i];
        by_state[a->state]++;
        drained += a->drained;
        tasks += phx_hmap_count(a->tasks);
        if (a->topo && a->free && a->state == PHX_AGENT_UP) {
            cores += phx_topo_ncores(a->topo);
            cores_free += phx_topo_free_ncores(a->free);
            mem += phx_topo_memory(a->topo);
            mem_free += phx_topo_free_memory(a->free);
        }
    }
    phx_db_store_stats_t st;
    phx_db_store_stats(m->store, &st);
    char text[4096];
    snprintf(
        text, sizeof(text),
        "# HELP phx_agents Agents by state.\n# TYPE phx_agents gauge\n"
        "phx_agents{state=\"up\"} %d\nphx_agents{state=\"unreachable\"} %d\n"
        "phx_agents{state=\"lost\"} %d\n"
        "# TYPE phx_agents_drained gauge\nphx_agents_drained %d\n"
        "# HELP phx_cores Cores of agents that are up.\n# TYPE phx_cores gauge\n"
        "phx_cores{kind=\"total\"} %lld\nphx_cores{kind=\"free\"} %lld\n"
        "# TYPE phx_memory_bytes gauge\nphx_memory_bytes{kind=\"total\"} %llu\n"
        "phx_memory_bytes{kind=\"free\"} %llu\n"
        "# TYPE phx_frameworks gauge\nphx_frameworks %zu\n"
        "# TYPE phx_offers gauge\nphx_offers %zu\n"
        "# TYPE phx_tasks gauge\nphx_tasks %zu\n"
        "# TYPE phx_db_transactions_total counter\nphx_db_transactions_total %llu\n"
        "# TYPE phx_db_writes_total counter\nphx_db_writes_total %llu\n"
        "# TYPE phx_db_failures_total counter\nphx_db_failures_total %llu\n"
        "# TYPE phx_db_queued gauge\nphx_db_queued %zu\n"
        "# HELP phx_http_connections HTTP connections open (this one too).\n"
        "# TYPE phx_http_connections gauge\nphx_http_connections %zu\n"
        "# HELP phx_http_connections_refused_total Past "
        "master.max_http_connections.\n"
        "# TYPE phx_http_connections_refused_total counter\n"
        "phx_http_connections_refused_total %llu\n"
        "# HELP phx_http_refused_before_body_total Requests of a large body "
        "refused at their head: no valid credential (doc/http.md).\n"
        "# TYPE phx_http_refused_before_body_total counter\n"
        "phx_http_refused_before_body_total %llu\n",
        by_state[PHX_AGENT_UP], by_state[PHX_AGENT_UNREACHABLE],
        by_state[PHX_AGENT_LOST], drained, cores, cores_free, mem, mem_free,
        phx_hmap_count(m->frameworks), phx_hmap_count(m->offers), tasks,
        (unsigned long long)st.transactions, (unsigned long long)st.committed,
        (unsigned long long)st.failed, st.queued, phx_http_limit_open(m->http_limit),
        (unsigned long long)phx_http_limit_refused(m->http_limit),
        (unsigned long long)(m->http_guard ? phx_http_guard_refused(m->http_guard)
                                           : 0));
    phx_http_reply_text(req, 200, "text/plain; version=0.0.4", text);
}

typedef struct drain_op {
    phx_http_deferred_t *reply;
    char *name;
    bool drain;
} drain_op_t;

static void drain_written(const phx_error_t *err, phx_db_result_t *const *res, int nres,
                          void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    (void)res;
    (void)nres;
    drain_op_t *op = arg;
    struct evhttp_request *req = phx_http_deferred_req(op->reply);
    if (err)
        phx_log_errx("could not record %s of agent \"%s\": %s",
                     op->drain ? "drain" : "resume", op->name, err->text);
    if (req) {
        if (err)
            phx_http_reply_error(req, 503, "could not record the change: %s",
                                 err->text);
        else
            phx_http_reply_json(
                req, 200,
                json_pack("{s:s, s:b}", "name", op->name, "drained", op->drain));
    }
    phx_http_deferred_free(op->reply);
    free(op->name);
    free(op);
}

static void post_operator(phx_master_t *m, struct evhttp_request *req)
{
    phx_error_t err;
    phx_munge_cred_t cred;
    if (phx_http_auth(req, m->munge, NULL, &cred, &err) < 0) {
        phx_log_warnx("operator call refused: %s", err.text);
        phx_http_reply_error(req, 401, "%s", err.text);
        return;
    }
    uid_t uid = cred.uid;
    phx_munge_cred_clear(&cred);
    json_t *body = phx_http_body_json(req, PHX_HTTP_BODY_MAX, &err);
    const char *type = NULL, *name = NULL, *reason = NULL;
    if (!body || phx_json_str(body, "type", true, &type, &err) < 0) {
        phx_http_reply_error(req, 400, "%s", err.text);
        json_decref(body);
        return;
    }
    bool drain = strcmp(type, "DRAIN_AGENT") == 0;
    if (!drain && strcmp(type, "REACTIVATE_AGENT") != 0) {
        phx_http_reply_error(req, 400, "unknown operator call \"%s\"", type);
        json_decref(body);
        return;
    }
    if (phx_json_str(body, "name", true, &name, &err) < 0 ||
        phx_json_str(body, "reason", false, &reason, &err) < 0) {
        phx_http_reply_error(req, 400, "%s: %s", type, err.text);
        json_decref(body);
        return;
    }
    if (!phx_master_is_operator(m, uid)) {
        phx_log_warnx("%s of \"%s\" refused: uid %u is not an operator", type, name,
                      (unsigned)uid);
        phx_http_reply_error(req, 403, "%s: uid %u is not an operator", type,
                             (unsigned)uid);
        json_decref(body);
        return;
    }
    phx_master_agent_t *a = phx_master_agent_find(m, name);
    if (!a) {
        phx_http_reply_error(req, 404, "%s: no agent named \"%s\"", type, name);
        json_decref(body);
        return;
    }
    if (drain && (!reason || !*reason)) {
        phx_http_reply_error(req, 400, "DRAIN_AGENT: a reason is required");
        json_decref(body);
        return;
    }
    drain_op_t *op = calloc(1, sizeof(*op));
    if (!op || !(op->name = strdup(name)) || !(op->reply = phx_http_defer(req))) {
        if (op)
            free(op->name);
        free(op);
        phx_http_reply_error(req, 500, "out of memory");
        json_decref(body);
        return;
    }
    op->drain = drain;
    char uidtext[16];
    snprintf(uidtext, sizeof(uidtext), "%u", (unsigned)uid);
    const char *params[] = {name, drain ? "t" : "f", drain ? reason : NULL,
                            drain ? uidtext : NULL};
    if (phx_db_store_write(
            m->store,
            "UPDATE agents SET drained = $2::boolean, drain_reason = $3, "
            "drained_by = $4::integer, drained_at = CASE WHEN $2::boolean "
            "THEN now() END WHERE name = $1",
            4, params, drain_written, op, &err) < 0) {
        phx_http_deferred_free(op->reply);
        free(op->name);
        free(op);
        phx_http_reply_error(req, 503, "%s", err.text);
        json_decref(body);
        return;
    }
    /* The allocator reads this at once; the reply waits for the commit. */
    a->drained = drain;
    free(a->drain_reason);
    a->drain_reason = drain ? strdup(reason) : NULL;
    phx_master_agent_sync_alloc(m, a);
    phx_log_notice("agent \"%s\" %s by uid %u%s%s", name, drain ? "drained" : "resumed",
                   (unsigned)uid, drain ? ": " : "", drain ? reason : "");
    json_decref(body);
}

static const struct {
    enum evhttp_cmd_type method;
    const char *path;
    route_f handler;
} routes[] = {
    {EVHTTP_REQ_GET, "/", phx_master_webui},
    {EVHTTP_REQ_GET, "/health", get_health},
    {EVHTTP_REQ_GET, "/state", get_state},
    {EVHTTP_REQ_GET, "/metrics", get_metrics},
    {EVHTTP_REQ_POST, "/api/v1/operator", post_operator},
    {EVHTTP_REQ_POST, "/api/v1/session", phx_master_http_session},
    {EVHTTP_REQ_POST, "/api/v1/scheduler", phx_sched_http},
};

static void on_request(struct evhttp_request *req, void *arg)
{
    phx_master_t *m = arg;
    /* TCP_NODELAY: set once per connection when accepted (lib/http_limit.c),
     * not by a system call per request */
    if (m->standby) { /* another master leads: say where (leader.c) */
        phx_master_standby_http(m, req);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path) {
        phx_http_reply_error(req, 400, "bad request URI");
        return;
    }
    bool path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        path_known = true;
        if (evhttp_request_get_command(req) == routes[i].method) {
            routes[i].handler(m, req);
            return;
        }
    }
    if (path_known)
        phx_http_reply_error(req, 405, "method not allowed on %s", path);
    else
        phx_http_reply_error(req, 404, "no such endpoint: %s", path);
}

/* A request past 16 KiB of body without a munge credential (lib/http_guard.h):
 * a framework's call, whose Mesos-Stream-Id must be that of a subscribed
 * framework (sched_api.c checks it is the caller's), or any request when
 * the master takes unauthenticated frameworks. */
static bool admit_call(void *arg, const char *sid)
{
    phx_master_t *m = arg;
    if (m->allow_unauthenticated)
        return true;
    size_t pos = 0;
    void *v;
    while (sid && *sid && phx_hmap_next(m->frameworks, &pos, NULL, &v)) {
        const phx_fw_t *fw = v;
        if (fw->stream && !fw->removed && strcmp(fw->stream_id, sid) == 0)
            return true;
    }
    return false;
}

int phx_master_http_start(phx_master_t *m, const char *addr, phx_error_t *err)
{
    char host[256];
    int port;
    if (phx_http_parse_addr(addr, host, sizeof(host), &port, err) < 0)
        return -1;
    if (!(m->http = evhttp_new(m->base)))
        return phx_error_set(err, "out of memory");
    evhttp_set_max_body_size(m->http, PHX_HTTP_BODY_MAX);
    evhttp_set_max_headers_size(m->http, PHX_HTTP_HEADERS_MAX);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    if (!(m->http_limit = phx_http_limit_create(
              m->http, m->base, "master.max_http_connections",
              (size_t)phx_conf_int(m->conf, "master.max_http_connections"),
              phx_conf_double(m->conf, "master.http_timeout"), err)))
        return -1;
    /* a body past 16 KiB only with a credential: lib/http_guard.h */
    phx_http_guard_t *g = phx_http_guard_create(m->http, m->http_limit, m->base,
                                                m->munge, PHX_HTTP_HEADERS_MAX,
                                                PHX_HTTP_BODY_MAX, on_request, m, err);
    if (!g)
        return -1;
    m->http_guard = g;
    phx_http_guard_set_admit(g, "Mesos-Stream-Id", admit_call, m);
    if (!evhttp_bind_socket_with_handle(m->http, host, (unsigned short)port))
        return phx_error_set(err, "could not listen for HTTP on %s: %s", addr,
                             strerror(errno ? errno : EADDRINUSE));
    return 0;
}
