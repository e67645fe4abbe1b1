/* GPUs through the master: offers carry an agent's free GPUs, a task keeps
 * the GPUs it used until it ends, an offer's GPU-only rest goes back, an
 * ACCEPT's GPUs (by device id or by count) must lie within the offer, and
 * gang requests hold GPUs (per bundle, per agent, whole agents).
 *
 * The allocator's sources and accept_gpu.c are compiled in directly, as in
 * test_alloc.c (the master's sources are linked into phx-master only). */
#include "daemons/master/accept_gpu.c"
#include "daemons/master/alloc.c"
#include "daemons/master/alloc_drf.c"
#include "daemons/master/alloc_hold.c"
#include "daemons/master/alloc_offer.c"
#include "daemons/master/alloc_request.c"
#include "daemons/master/alloc_res.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

static char *fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("PHX_TOPO_FIXTURES");
    if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        snprintf(path, sizeof(path), "%.*s/fixtures/topo/%s",
                 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__, name);
    return path;
}

/* The gpu fixture: cores 0-3 and GPUs 0, 1 (cuda0, cuda1) on NUMA domain 0,
 * cores 4-7 and GPU 2 on domain 1; device 3 is a co-processor. */
struct fx {
    phx_topo_t *t;
    phx_topo_free_t *f;
    phx_alloc_t *a;
    phx_topo_grant_t *offer; /* the last offer's grant */
    int noffers;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    phx_error_t err = {{0}};
    fx->t = phx_topo_load_xml_file(fixture("gpu-2s2n8c-3gpu.xml"), &err);
    if (!fx->t)
        return -1;
    fx->f = phx_topo_free_create(fx->t);
    fx->a = phx_alloc_create();
    if (!fx->f || !fx->a || phx_alloc_agent_add(fx->a, 1, fx->f, &err) < 0 ||
        phx_alloc_framework_add(fx->a, "fw", "*", &err) < 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    phx_topo_grant_destroy(fx->offer);
    phx_alloc_destroy(fx->a);
    phx_topo_free_destroy(fx->f);
    phx_topo_destroy(fx->t);
    free(fx);
    return 0;
}

static int on_offer(const phx_alloc_offer_t *o, void *arg)
{
    struct fx *fx = arg;
    phx_topo_grant_destroy(fx->offer);
    fx->offer = o->grant;
    fx->noffers++;
    return 0;
}

/* One pass; the offer it made (owned by fx). */
static phx_topo_grant_t *offer(struct fx *fx, double now)
{
    int before = fx->noffers;
    assert_int_equal(phx_alloc_cycle(fx->a, now, on_offer, fx), 1);
    assert_int_equal(fx->noffers, before + 1);
    return fx->offer;
}

static char *gpus_of(struct fx *fx, const phx_topo_grant_t *g)
{
    static char buf[64];
    char *s = phx_gpus_str(fx->t, g);
    assert_non_null(s);
    snprintf(buf, sizeof(buf), "%s", s);
    free(s);
    return buf;
}

static void test_offer_task_release(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_grant_t *g = offer(fx, 1);
    assert_string_equal(gpus_of(fx, g), "0-2"); /* not the co-processor */
    assert_int_equal(phx_topo_free_ngpus(fx->f), 0);

    /* A task on cores 0-1 with GPUs 0 and 1; the rest comes back. */
    phx_topo_grant_t *task = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_core(task, 0);
    phx_topo_grant_add_core(task, 1);
    phx_topo_grant_add_gpu(task, 0);
    phx_topo_grant_add_gpu(task, 1);
    assert_int_equal(phx_alloc_offer_used(fx->a, 1, "fw", "t1", task, 0, &err), 0);
    phx_topo_grant_t *rest = phx_topo_grant_create(fx->t);
    for (int c = 2; c < 8; c++)
        phx_topo_grant_add_core(rest, c);
    for (int n = 0; n < 2; n++)
        phx_topo_grant_set_memory(rest, n, phx_topo_grant_memory(g, n));
    phx_topo_grant_add_gpu(rest, 2);
    assert_int_equal(phx_alloc_offer_return(fx->a, 1, "fw", rest, &err), 0);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 1);
    assert_true(phx_topo_free_has_gpu(fx->f, 2));

    /* The next offer has GPU 2 only; a part naming GPU 0 is not offered. */
    g = offer(fx, 2);
    assert_string_equal(gpus_of(fx, g), "2");
    phx_topo_grant_t *bad = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_core(bad, 2);
    phx_topo_grant_add_gpu(bad, 0);
    assert_int_equal(phx_alloc_offer_used(fx->a, 1, "fw", "t2", bad, 0, &err), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(phx_alloc_offer_return(fx->a, 1, "fw", g, &err), 0);

    /* The task ends: its GPUs are free again and offered. */
    assert_int_equal(phx_alloc_usage_sub(fx->a, 1, "fw", "t1"), 0);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 3);
    g = offer(fx, 3);
    assert_string_equal(gpus_of(fx, g), "0-2");
    assert_int_equal(phx_alloc_offer_return(fx->a, 1, "fw", g, &err), 0);
    phx_topo_grant_destroy(bad);
    phx_topo_grant_destroy(rest);
    phx_topo_grant_destroy(task);
}

/* A task takes all cores and memory but no GPU: the offer's rest is GPUs
 * alone, and must still go back (it is not an empty part). */
static void test_gpu_only_rest(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_grant_t *g = offer(fx, 1);
    phx_topo_grant_t *task = phx_topo_grant_create(fx->t);
    for (int c = 0; c < 8; c++)
        phx_topo_grant_add_core(task, c);
    for (int n = 0; n < 2; n++)
        phx_topo_grant_set_memory(task, n, phx_topo_grant_memory(g, n));
    assert_int_equal(phx_alloc_offer_used(fx->a, 1, "fw", "t1", task, 0, &err), 0);
    phx_topo_grant_t *rest = phx_topo_grant_create(fx->t);
    for (int d = 0; d < 3; d++)
        phx_topo_grant_add_gpu(rest, d);
    assert_int_equal(phx_alloc_offer_return(fx->a, 1, "fw", rest, &err), 0);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 3);
    phx_alloc_framework_info_t info;
    assert_int_equal(phx_alloc_framework_info(fx->a, "fw", &info), 0);
    assert_int_equal(info.offered_cores, 0);
    assert_int_equal(phx_alloc_usage_sub(fx->a, 1, "fw", "t1"), 0);
    phx_topo_grant_destroy(rest);
    phx_topo_grant_destroy(task);
}

/* A recovered task's GPUs are allocated again (phx_gpus_parse, usage_add). */
static void test_recovered_task(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_grant_t *task = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_core(task, 4);
    assert_int_equal(phx_gpus_parse(task, fx->t, "0,2", &err), 0);
    assert_string_equal(gpus_of(fx, task), "0,2");
    assert_int_equal(phx_alloc_usage_add(fx->a, 1, "fw", "t1", task, 0, &err), 0);
    assert_false(phx_topo_free_has_gpu(fx->f, 0));
    assert_true(phx_topo_free_has_gpu(fx->f, 1));
    /* Another recovered task naming GPU 2 as well: refused, naming it. */
    phx_topo_grant_t *other = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_core(other, 5);
    assert_int_equal(phx_gpus_parse(other, fx->t, "2", &err), 0);
    assert_int_equal(phx_alloc_usage_add(fx->a, 1, "fw", "t2", other, 0, &err), -1);
    assert_non_null(strstr(err.text, "GPU 2 (cuda2): already allocated"));
    assert_int_equal(phx_gpus_parse(other, fx->t, "3", &err), -1); /* coproc */
    assert_int_equal(phx_gpus_parse(other, fx->t, "", &err), 0);
    assert_int_equal(phx_alloc_usage_sub(fx->a, 1, "fw", "t1"), 0);
    assert_int_equal(phx_topo_free_ngpus(fx->f), 3);
    phx_topo_grant_destroy(other);
    phx_topo_grant_destroy(task);
}

static int accept_gpus(phx_topo_free_t *view, const char *ti_text, int ngpus,
                       phx_topo_grant_t *g, phx_error_t *err)
{
    json_t *ti = json_loads(ti_text, 0, NULL);
    assert_non_null(ti);
    int rc = phx_accept_gpus(view, ti, ngpus, "n1", g, err);
    json_decref(ti);
    return rc;
}

static void test_accept_gpus(void **state)
{
    struct fx *fx = *state;
    phx_error_t err = {{0}};
    phx_topo_free_t *view = fx->f; /* an offer of everything but GPU 1 */
    phx_topo_grant_t *taken = phx_topo_grant_create(fx->t),
                     *g = phx_topo_grant_create(fx->t);
    phx_topo_grant_add_gpu(taken, 1);
    assert_int_equal(phx_topo_free_alloc(view, taken, &err), 0);

    assert_int_equal(accept_gpus(view, "{\"gpus\": [2, 0]}", 2, g, &err), 0);
    assert_string_equal(gpus_of(fx, g), "0,2");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{\"gpus\": [0]}", -1, g, &err), 0);
    assert_string_equal(gpus_of(fx, g), "0");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{\"gpus\": [0, 1]}", 2, g, &err), -1);
    assert_string_equal(err.text, "gpus[1]: GPU 1 (cuda1) is not in the offer");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{\"gpus\": [3]}", 1, g, &err), -1);
    assert_string_equal(err.text, "gpus[0] is not a GPU of agent \"n1\"");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{\"gpus\": [0, 0]}", 2, g, &err), -1);
    assert_string_equal(err.text, "gpus[1] = 0 named twice");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{\"gpus\": [0]}", 2, g, &err), -1);
    assert_string_equal(err.text, "gpus lists 1 GPUs but resources ask for 2");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{\"gpus\": \"0\"}", 1, g, &err), -1);

    /* By count: nearest the task's first core.  Core 0 (domain 0): GPU 0,
     * then (GPU 1 not offered) GPU 2 of the other socket. */
    phx_topo_grant_clear(g);
    phx_topo_grant_add_core(g, 0);
    assert_int_equal(accept_gpus(view, "{}", 2, g, &err), 0);
    assert_string_equal(gpus_of(fx, g), "0,2");
    phx_topo_grant_clear(g);
    phx_topo_grant_add_core(g, 5); /* domain 1: GPU 2 first */
    assert_int_equal(accept_gpus(view, "{}", 1, g, &err), 0);
    assert_string_equal(gpus_of(fx, g), "2");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{}", 3, g, &err), -1);
    assert_string_equal(err.text, "3 GPUs do not fit in the offer (2 free)");
    phx_topo_grant_clear(g);
    assert_int_equal(accept_gpus(view, "{}", 0, g, &err), 0);
    assert_int_equal(phx_topo_grant_ngpus(g), 0);

    /* The LAUNCH form: id, index (node-local GPU order), name, PCI bus id. */
    phx_topo_grant_add_gpu(g, 2);
    json_t *j = phx_gpus_launch_json(fx->t, g);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        s, "[{\"id\":2,\"index\":2,\"name\":\"cuda2\",\"pci\":\"0000:82:00.0\"}]");
    free(s);
    json_decref(j);
    assert_int_equal(phx_topo_free_release(view, taken, &err), 0);
    phx_topo_grant_destroy(g);
    phx_topo_grant_destroy(taken);
}

/* ---- gang requests with GPUs ---- */

/* Agent 1 (the gpu fixture) and agent 2 (4 cores, no GPU); frameworks fw
 * and g, both suppressed: only requests are offered, every offer kept. */
struct gx {
    struct fx fx;
    phx_topo_t *plain;
    phx_topo_free_t *f2;
    struct gx_offer {
        int64_t agent;
        char fw[8], req[16];
        phx_topo_grant_t *g;
    } o[8];
    int n;
};

static int setup_gang(void **state)
{
    if (setup(state) < 0)
        return -1;
    struct gx *gx = calloc(1, sizeof(*gx));
    phx_error_t err = {{0}};
    gx->fx = *(struct fx *)*state;
    free(*state);
    *state = gx;
    gx->plain = phx_topo_load_synthetic("pack:1 numa:1(memory=4GiB) core:4 pu:1", &err);
    gx->f2 = gx->plain ? phx_topo_free_create(gx->plain) : NULL;
    if (!gx->f2 || phx_alloc_agent_add(gx->fx.a, 2, gx->f2, &err) < 0 ||
        phx_alloc_framework_add(gx->fx.a, "g", "*", &err) < 0 ||
        phx_alloc_suppress(gx->fx.a, "fw") < 0 || phx_alloc_suppress(gx->fx.a, "g") < 0)
        return -1;
    return 0;
}

static int teardown_gang(void **state)
{
    struct gx *gx = *state;
    for (int i = 0; i < gx->n; i++)
        phx_topo_grant_destroy(gx->o[i].g);
    phx_alloc_destroy(gx->fx.a);
    gx->fx.a = NULL;
    phx_topo_free_destroy(gx->f2);
    phx_topo_destroy(gx->plain);
    struct fx *fx = malloc(sizeof(*fx));
    *fx = gx->fx;
    free(gx);
    *state = fx;
    return teardown(state);
}

static int on_gang_offer(const phx_alloc_offer_t *o, void *arg)
{
    struct gx *gx = arg;
    assert_true(gx->n < 8);
    struct gx_offer *x = &gx->o[gx->n++];
    x->agent = o->agent_id;
    snprintf(x->fw, sizeof(x->fw), "%s", o->framework);
    snprintf(x->req, sizeof(x->req), "%s", o->request_id ? o->request_id : "");
    x->g = o->grant;
    return 0;
}

/* One pass at now: the offers it made. */
static int gang_cycle(struct gx *gx, double now)
{
    int before = gx->n;
    int n = phx_alloc_cycle(gx->fx.a, now, on_gang_offer, gx);
    assert_int_equal(gx->n - before, n);
    return n;
}

/* A task of fw on agent 1 (recovered: never offered) with these cores and
 * GPUs, ending at end (0: unknown). */
static void task_on_1(struct gx *gx, const char *id, int c0, int c1, const char *gpus,
                      double end)
{
    phx_error_t err = {{0}};
    phx_topo_grant_t *g = phx_topo_grant_create(gx->fx.t);
    for (int c = c0; c <= c1; c++)
        phx_topo_grant_add_core(g, c);
    assert_int_equal(phx_gpus_parse(g, gx->fx.t, gpus, &err), 0);
    assert_int_equal(phx_alloc_usage_add(gx->fx.a, 1, "fw", id, g, end, &err), 0);
    phx_topo_grant_destroy(g);
}

/* The request's offer (the last one made): g's, on agent 1, with its id,
 * all 8 cores and the GPUs listed. */
static void request_offered(struct gx *gx, const char *req, const char *gpus)
{
    struct gx_offer *x = &gx->o[gx->n - 1];
    assert_string_equal(x->fw, "g");
    assert_string_equal(x->req, req);
    assert_int_equal(x->agent, 1);
    assert_int_equal(phx_topo_coreset_count(phx_topo_grant_cores(x->g)), 8);
    assert_string_equal(gpus_of(&gx->fx, x->g), gpus);
}

/* GPUs on each agent used (agent_gpus, --gpus-per-node) are held like its
 * cores: a request for 3 GPUs on an agent waits while a task has 2 of
 * them, though 6 cores are free (before, it was satisfied at once with the
 * one free GPU), holding the free GPU; once the task ends its offer
 * carries all 3.  Agent 2, without GPU, never holds.  More GPUs than an
 * agent has is refused, saying so. */
static void test_request_agent_gpus(void **state)
{
    struct gx *gx = *state;
    phx_error_t err = {{0}};
    task_on_1(gx, "t1", 0, 1, "0,1", 0);
    phx_alloc_shape_t sh = {
        .nbundles = 1, .cores = 1, .kind = PHX_ALLOC_BUNDLE_ANY, .agent_gpus = 4};
    assert_int_equal(phx_alloc_request_add(gx->fx.a, "g", "big", &sh, 60, 0, 1, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_string_equal(err.text, "gang request big needs 4 GPUs on an agent (0 per "
                                  "bundle, 4 more per agent) but the available agents "
                                  "have at most 3");
    sh.agent_gpus = 3;
    assert_int_equal(phx_alloc_request_add(gx->fx.a, "g", "r", &sh, 60, 0, 1, &err), 0);
    assert_int_equal(gang_cycle(gx, 2), 0);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(gx->fx.a, "g", "r", &ri), 0);
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(ri.hold_agents, 1);
    assert_int_equal(ri.held_bundles, 0);
    assert_int_equal(ri.shape.agent_gpus, 3);
    phx_alloc_agent_info_t ai;
    assert_int_equal(phx_alloc_agent_info(gx->fx.a, 1, &ai), 0);
    assert_int_equal(ai.held_cores, 6);
    assert_int_equal(ai.held_gpus, 1);
    assert_int_equal(phx_alloc_agent_info(gx->fx.a, 2, &ai), 0);
    assert_false(ai.holding);
    assert_int_equal(ai.held_cores, 0);

    assert_int_equal(phx_alloc_usage_sub(gx->fx.a, 1, "fw", "t1"), 0);
    assert_int_equal(gang_cycle(gx, 3), 1);
    request_offered(gx, "r", "0-2");
}

/* GPUs per bundle (gpus, --gpus-per-task): 3 bundles of 1 core and 1 GPU
 * fit agent 1 only when its 3 GPUs are free; a task with one of them makes
 * the request hold, expecting the task's end.  4 such bundles are more
 * than the cluster holds. */
static void test_request_gpus_per_bundle(void **state)
{
    struct gx *gx = *state;
    phx_error_t err = {{0}};
    task_on_1(gx, "t1", 4, 4, "2", 10);
    phx_alloc_shape_t sh = {
        .nbundles = 4, .cores = 1, .kind = PHX_ALLOC_BUNDLE_NUMA, .gpus = 1};
    assert_int_equal(phx_alloc_request_add(gx->fx.a, "g", "x", &sh, 60, 0, 1, &err),
                     -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err.text, "bundles of 1 cores and 0 bytes"));
    assert_non_null(strstr(err.text, "; 1 GPUs per bundle and 0 more on each agent) "
                                     "but the available cluster can hold at most 3"));
    sh.nbundles = 3;
    assert_int_equal(phx_alloc_request_add(gx->fx.a, "g", "r", &sh, 60, 0, 1, &err), 0);
    assert_int_equal(gang_cycle(gx, 2), 0);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(gx->fx.a, "g", "r", &ri), 0);
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(ri.held_bundles, 2);
    assert_true(ri.satisfiable_at == 10);
    phx_alloc_agent_info_t ai;
    assert_int_equal(phx_alloc_agent_info(gx->fx.a, 1, &ai), 0);
    assert_int_equal(ai.held_gpus, 2);

    assert_int_equal(phx_alloc_usage_sub(gx->fx.a, 1, "fw", "t1"), 0);
    assert_int_equal(gang_cycle(gx, 3), 1);
    request_offered(gx, "r", "0-2");
}

/* whole_agent needs all of the agent's GPUs free too: GPU 2 still offered
 * to fw keeps agent 1 from a whole-agent request, though its cores and
 * memory are all free. */
static void test_request_whole_agent_gpus(void **state)
{
    struct gx *gx = *state;
    phx_error_t err = {{0}};
    assert_int_equal(phx_alloc_revive(gx->fx.a, "fw"), 0);
    assert_int_equal(gang_cycle(gx, 1), 2); /* fw gets both agents */
    assert_int_equal(gx->o[0].agent, 1);
    phx_topo_grant_t *rest = phx_topo_grant_create(gx->fx.t);
    for (int c = 0; c < 8; c++)
        phx_topo_grant_add_core(rest, c);
    for (int n = 0; n < 2; n++)
        phx_topo_grant_set_memory(rest, n, phx_topo_grant_memory(gx->o[0].g, n));
    phx_topo_grant_add_gpu(rest, 0);
    phx_topo_grant_add_gpu(rest, 1);
    assert_int_equal(phx_alloc_offer_return(gx->fx.a, 1, "fw", rest, &err), 0);

    phx_alloc_shape_t sh = {.nbundles = 1,
                            .cores = 8,
                            .kind = PHX_ALLOC_BUNDLE_ANY,
                            .per_agent = 1,
                            .whole_agent = true};
    assert_int_equal(phx_alloc_request_add(gx->fx.a, "g", "w", &sh, 60, 0, 1, &err), 0);
    assert_int_equal(gang_cycle(gx, 2), 0);
    phx_alloc_request_info_t ri;
    assert_int_equal(phx_alloc_request_info(gx->fx.a, "g", "w", &ri), 0);
    assert_int_equal(ri.state, PHX_ALLOC_REQUEST_HOLDING);
    assert_int_equal(ri.held_bundles, 0);

    phx_topo_grant_clear(rest);
    phx_topo_grant_add_gpu(rest, 2);
    assert_int_equal(phx_alloc_offer_return(gx->fx.a, 1, "fw", rest, &err), 0);
    assert_int_equal(gang_cycle(gx, 3), 1);
    request_offered(gx, "w", "0-2");
    phx_topo_grant_destroy(rest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offer_task_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_only_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovered_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_gpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_agent_gpus, setup_gang,
                                        teardown_gang),
        cmocka_unit_test_setup_teardown(test_request_gpus_per_bundle, setup_gang,
                                        teardown_gang),
        cmocka_unit_test_setup_teardown(test_request_whole_agent_gpus, setup_gang,
                                        teardown_gang),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
