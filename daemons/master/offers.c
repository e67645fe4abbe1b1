/* Offers: allocation passes (coalesced, at most one per loop iteration), the
 * offer registry, offer JSON (Mesos scalars plus a topology extension) and
 * expiry.  An offer's resources are allocated from its agent's free tracker
 * for as long as the offer lives, so nothing is offered twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/master/alloc.h"
#include "daemons/master/sched.h"
#include "lib/log.h"

phx_offer_t *phx_offer_find(phx_master_t *m, const char *id)
{
    return phx_hmap_get(m->offers, id);
}

void phx_offer_free(phx_offer_t *o)
{
    phx_topo_grant_destroy(o->grant);
    free(o->request_id);
    free(o);
}

void phx_offer_drop(phx_master_t *m, phx_offer_t *o, bool rescind)
{
    phx_hmap_del(m->offers, o->id);
    phx_hmap_del(o->fw->offers, o->id);
    if (rescind)
        phx_fw_send(o->fw, json_pack("{s:s, s:{s:{s:s}}}", "type", "RESCIND", "rescind",
                                     "offer_id", "value", o->id));
    phx_error_t err;
    if (o->grant &&
        phx_alloc_offer_return(m->alloc, o->agent->id, o->fw->id, o->grant, &err) < 0)
        phx_log_errx("offer %s: could not return its resources: %s", o->id, err.text);
    phx_offer_free(o);
    phx_sched_dirty(m);
}

void phx_offers_expire(phx_master_t *m, double now)
{
    size_t pos = 0;
    void *v;
    while (phx_hmap_next(m->offers, &pos, NULL, &v)) {
        phx_offer_t *o = v;
        if (o->expires_at <= now || o->agent->state != PHX_AGENT_UP ||
            o->agent->drained) {
            phx_log_debug("rescinding offer %s to framework %s", o->id, o->fw->id);
            phx_offer_drop(m, o, true);
        }
    }
}

static json_t *scalar(const char *name, double value, const char *role)
{
    return json_pack("{s:s, s:s, s:{s:f}, s:s, s:{s:s}}", "name", name, "type",
                     "SCALAR", "scalar", "value", value, "role", "*", "allocation_info",
                     "role", role);
}

json_t *phx_offer_json(phx_master_t *m, const phx_offer_t *o)
{
    (void)m;
    const phx_topo_t *topo = o->agent->topo;
    const phx_topo_coreset_t *cores = phx_topo_grant_cores(o->grant);
    uint64_t mem = 0;
    for (int n = 0; n < phx_topo_nnumas(topo); n++)
        mem += phx_topo_grant_memory(o->grant, n);
    phx_topo_free_t *view = phx_offer_view(topo, o->grant);
    json_t *bundles = view ? phx_topo_free_bundles_json(view) : NULL;
    phx_topo_free_destroy(view);
    char agent_id[32];
    snprintf(agent_id, sizeof(agent_id), "%lld", (long long)o->agent->id);
    const char *role = o->fw->role ? o->fw->role : "*";
    json_t *res =
        json_pack("[o, o]", scalar("cpus", phx_topo_coreset_count(cores), role),
                  scalar("mem", (double)(mem >> 20), role));
    int ngpus = phx_topo_grant_ngpus(o->grant);
    if (res && ngpus > 0) /* Mesos' "gpus" scalar; none on a node without */
        json_array_append_new(res, scalar("gpus", ngpus, role));
    json_t *attrs = json_pack(
        "[{s:s, s:s, s:{s:f}}, {s:s, s:s, s:{s:f}}]", "name", "sockets", "type",
        "SCALAR", "scalar", "value", (double)phx_topo_nsockets(topo), "name", "numas",
        "type", "SCALAR", "scalar", "value", (double)phx_topo_nnumas(topo));
    json_t *offer = json_pack(
        "{s:{s:s}, s:{s:s}, s:{s:s}, s:s, s:o, s:o, s:{s:s}, s:o}", "id", "value",
        o->id, "framework_id", "value", o->fw->id, "agent_id", "value", agent_id,
        "hostname", o->agent->name, "resources", res, "attributes", attrs,
        "allocation_info", "role", role, "topology", bundles ? bundles : json_object());
    if (offer && o->release_by > 0)
        json_object_set_new(
            offer, "release_by",
            json_pack("{s:I}", "nanoseconds", (json_int_t)(o->release_by * 1e9)));
    if (offer && o->request_id)
        json_object_set_new(offer, "request_id", json_string(o->request_id));
    return offer;
}

/* A tracker whose free resources are exactly the grant's. */
phx_topo_free_t *phx_offer_view(const phx_topo_t *topo, const phx_topo_grant_t *grant)
{
    phx_topo_free_t *view = phx_topo_free_create(topo);
    phx_topo_grant_t *rest = phx_topo_grant_create(topo);
    if (!view || !rest)
        goto error;
    const phx_topo_coreset_t *have = phx_topo_grant_cores(grant);
    for (int c = 0; c < phx_topo_ncores(topo); c++)
        if (!phx_topo_coreset_has(have, c) && phx_topo_grant_add_core(rest, c) < 0)
            goto error;
    for (int n = 0; n < phx_topo_nnumas(topo); n++)
        if (phx_topo_grant_set_memory(rest, n,
                                      phx_topo_numa_memory(topo, n) -
                                          phx_topo_grant_memory(grant, n)) < 0)
            goto error;
    for (int d = 0; d < phx_topo_ndevs(topo); d++)
        if (phx_topo_is_gpu(topo, d) && !phx_topo_grant_has_gpu(grant, d) &&
            phx_topo_grant_add_gpu(rest, d) < 0)
            goto error;
    if (phx_topo_free_alloc(view, rest, NULL) < 0)
        goto error;
    phx_topo_grant_destroy(rest);
    return view;
error:
    phx_topo_grant_destroy(rest);
    phx_topo_free_destroy(view);
    return NULL;
}

typedef struct pass {
    phx_master_t *m;
    phx_hmap_t *batches; /* framework id → json array of offers */
    int offers;
} pass_t;

static int on_offer(const phx_alloc_offer_t *ao, void *arg)
{
    pass_t *p = arg;
    phx_master_t *m = p->m;
    phx_fw_t *fw = phx_fw_find(m, ao->framework);
    phx_master_agent_t *a = phx_master_agent_by_id(m, ao->agent_id);
    json_t *batch = fw ? phx_hmap_get(p->batches, fw->id) : NULL;
    if (fw && !batch && (batch = json_array()) &&
        phx_hmap_put(p->batches, fw->id, batch) < 0) {
        json_decref(batch);
        batch = NULL;
    }
    phx_offer_t *o = fw && a && batch ? calloc(1, sizeof(*o)) : NULL;
    if (!o) {
        phx_log_errx("could not make an offer of agent %lld to framework %s",
                     (long long)ao->agent_id, ao->framework);
        return -1;
    }
    snprintf(o->id, sizeof(o->id), "%s-O%llu", m->master_id,
             (unsigned long long)++m->next_offer);
    o->fw = fw;
    o->agent = a;
    o->expires_at = phx_master_now() + m->offer_timeout;
    o->release_by = ao->release_by;
    o->request_id = ao->request_id ? strdup(ao->request_id) : NULL;
    if (phx_hmap_put(m->offers, o->id, o) < 0 ||
        phx_hmap_put(fw->offers, o->id, o) < 0) {
        phx_hmap_del(m->offers, o->id);
        phx_offer_free(o);
        return -1;
    }
    o->grant = ao->grant;
    json_array_append_new(batch, phx_offer_json(m, o));
    p->offers++;
    return 0;
}

void phx_offers_allocate(phx_master_t *m)
{
    pass_t p = {.m = m, .batches = phx_hmap_create()};
    if (!p.batches)
        return;
    phx_alloc_cycle(m->alloc, phx_master_clock(), on_offer, &p);
    size_t pos = 0;
    const char *fw_id;
    void *v;
    while (phx_hmap_next(p.batches, &pos, &fw_id, &v)) {
        phx_fw_t *fw = phx_fw_find(m, fw_id);
        json_t *batch = v;
        if (fw)
            phx_fw_send(fw, json_pack("{s:s, s:{s:O}}", "type", "OFFERS", "offers",
                                      "offers", batch));
        json_decref(batch);
    }
    phx_hmap_destroy(p.batches);
    if (p.offers)
        phx_log_debug("allocation pass: %d offers", p.offers);
}

static void on_alloc_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_master_t *m = arg;
    m->alloc_pending = false;
    phx_offers_allocate(m);
}

void phx_sched_dirty(phx_master_t *m)
{
    if (m->alloc_pending)
        return;
    if (!m->alloc_ev && !(m->alloc_ev = event_new(m->base, -1, 0, on_alloc_ev, m)))
        return;
    m->alloc_pending = true;
    event_active(m->alloc_ev, 0, 0);
}
