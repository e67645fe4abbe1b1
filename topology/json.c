/* The model as JSON and back.  Format (doc/topology.md):
 *   {"version": 1, "source": "local", "emulated": false,
 *    "sockets": [{"id": 0, "numa": [{"id": 0, "os_index": 0, "memory": B,
 *                                    "cores": [{"id": 0, "pus": [0, 1]}]}]}],
 *    "devices": [{"id": 0, "kind": "gpu", "name": "cuda0", "pci": "...",
 *                 "model": "...", "numa": 0, "socket": 0}]}
 * Ids are the model's logical ids; they must be dense from 0 and unique. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "topology/internal.h"

#define JSON_VERSION 1

static int add(json_t *obj, const char *key, json_t *value)
{
    return json_object_set_new(obj, key, value);
}

static json_t *core_json(const phx_topo_t *t, int c)
{
    json_t *pus = json_array();
    for (int i = t->core_pu_off[c]; pus && i < t->core_pu_off[c + 1]; i++)
        if (json_array_append_new(pus, json_integer(t->pus[i])) < 0) {
            json_decref(pus);
            return NULL;
        }
    json_t *o = json_object();
    if (!o || !pus || add(o, "id", json_integer(c)) < 0 || add(o, "pus", pus) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *numa_json(const phx_topo_t *t, int n)
{
    json_t *o = json_object(), *cores = json_array();
    if (!o || !cores || add(o, "id", json_integer(n)) < 0 ||
        add(o, "os_index",
            t->numa_os[n] >= 0 ? json_integer(t->numa_os[n]) : json_null()) < 0 ||
        add(o, "memory", json_integer((json_int_t)t->numa_mem[n])) < 0)
        goto error;
    for (int c = 0; c < t->ncores; c++)
        if (t->core_numa[c] == n && json_array_append_new(cores, core_json(t, c)) < 0)
            goto error;
    if (add(o, "cores", cores) < 0) {
        cores = NULL;
        goto error;
    }
    return o;
error:
    json_decref(cores);
    json_decref(o);
    return NULL;
}

static json_t *dev_json(const phx_topo_t *t, int d)
{
    const struct topo_dev *dev = &t->devs[d];
    json_t *o = json_object();
    if (!o || add(o, "id", json_integer(d)) < 0 ||
        add(o, "kind", json_string(phx_topo_dev_kind_name(dev->kind))) < 0 ||
        add(o, "name", json_string(dev->name)) < 0 ||
        add(o, "pci", json_string(dev->pci)) < 0 ||
        add(o, "model", json_string(dev->model)) < 0 ||
        add(o, "numa", dev->numa >= 0 ? json_integer(dev->numa) : json_null()) < 0 ||
        add(o, "socket", dev->socket >= 0 ? json_integer(dev->socket) : json_null()) <
            0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *phx_topo_to_json(const phx_topo_t *t)
{
    json_t *o = json_object(), *sockets = json_array(), *devs = json_array();
    if (!o || !sockets || !devs)
        goto error;
    for (int s = 0; s < t->nsockets; s++) {
        json_t *so = json_object(), *numas = json_array();
        if (!so || !numas || add(so, "id", json_integer(s)) < 0 ||
            json_array_append_new(sockets, so) < 0) {
            json_decref(numas);
            goto error;
        }
        for (int i = t->socket_numa_off[s]; i < t->socket_numa_off[s + 1]; i++)
            if (json_array_append_new(numas, numa_json(t, t->socket_numas[i])) < 0) {
                json_decref(numas);
                goto error;
            }
        if (add(so, "numa", numas) < 0)
            goto error;
    }
    for (int d = 0; d < t->ndevs; d++)
        if (json_array_append_new(devs, dev_json(t, d)) < 0)
            goto error;
    if (add(o, "version", json_integer(JSON_VERSION)) < 0 ||
        add(o, "source", json_string(t->source)) < 0 ||
        add(o, "emulated", json_boolean(t->emulated)) < 0 ||
        add(o, "sockets", sockets) < 0) {
        sockets = NULL;
        goto error;
    }
    sockets = NULL;
    if (add(o, "devices", devs) < 0) {
        devs = NULL;
        goto error;
    }
    return o;
error:
    json_decref(sockets);
    json_decref(devs);
    json_decref(o);
    errno = ENOMEM;
    return NULL;
}

/* Import state: the model being filled and which ids were seen where. */
struct import {
    phx_topo_t *t;
    int *core_owner;    /* [ncores] NUMA id that listed the core, -1 */
    bool *numa_seen;    /* [nnumas] */
    bool *socket_seen;  /* [nsockets] */
    const json_t **pus; /* [ncores] the "pus" array of each core */
};

static int bad(phx_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(phx_error_t *err, const char *fmt, ...)
{
    char text[PHX_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    errno = EINVAL;
    return phx_error_set(err, "%s", text);
}

static int get_array(const json_t *obj, const char *key, const char *what, int id,
                     json_t **out, phx_error_t *err)
{
    if (!json_is_object(obj))
        return bad(err, "%s entry must be an object", what);
    if (phx_json_arr(obj, key, true, out, err) < 0) {
        errno = EINVAL;
        return id >= 0 ? phx_error_prefix(err, "%s %d", what, id)
                       : phx_error_prefix(err, "%s", what);
    }
    return 0;
}

static int get_id(const json_t *obj, const char *what, int count, bool *seen, int *id,
                  phx_error_t *err)
{
    long long v;
    if (!json_is_object(obj))
        return bad(err, "%s entry must be an object", what);
    if (phx_json_int(obj, "id", true, 0, INT32_MAX, &v, err) < 0) {
        errno = EINVAL;
        return phx_error_prefix(err, "%s", what);
    }
    if (v >= count)
        return bad(err, "%s id %lld is out of range (there are %d)", what, v, count);
    if (seen && seen[v])
        return bad(err, "duplicate %s id %lld", what, v);
    if (seen)
        seen[v] = true;
    *id = (int)v;
    return 0;
}

/* First pass: shape and counts. */
static int count(const json_t *sockets, int *nnumas, int *ncores, int *npus,
                 phx_error_t *err)
{
    size_t i, j, k;
    json_t *so, *no, *co, *numas, *cores, *pus;
    *nnumas = *ncores = *npus = 0;
    json_array_foreach(sockets, i, so)
    {
        if (get_array(so, "numa", "socket", (int)i, &numas, err) < 0)
            return -1;
        json_array_foreach(numas, j, no)
        {
            if (get_array(no, "cores", "NUMA domain", -1, &cores, err) < 0)
                return -1;
            (*nnumas)++;
            json_array_foreach(cores, k, co)
            {
                if (get_array(co, "pus", "core", -1, &pus, err) < 0)
                    return -1;
                (*ncores)++;
                *npus += (int)json_array_size(pus);
                if (*ncores > PHX_TOPO_CORE_LIMIT || *npus > PHX_TOPO_PU_LIMIT)
                    return bad(err, "topology has more than %d cores or %d PUs",
                               PHX_TOPO_CORE_LIMIT, PHX_TOPO_PU_LIMIT);
            }
        }
    }
    return 0;
}

static int read_core(struct import *im, const json_t *co, int numa, phx_error_t *err)
{
    int id;
    if (get_id(co, "core", im->t->ncores, NULL, &id, err) < 0)
        return -1;
    int prev = im->core_owner[id];
    if (prev == numa)
        return bad(err, "duplicate core id %d in NUMA domain %d", id, numa);
    if (prev >= 0)
        return bad(err, "core %d is in two NUMA domains (%d and %d)", id, prev, numa);
    im->core_owner[id] = numa;
    im->t->core_numa[id] = numa;
    im->pus[id] = json_object_get(co, "pus");
    return 0;
}

static int read_numa(struct import *im, const json_t *no, int socket, phx_error_t *err)
{
    int id;
    long long mem, os = -1;
    json_t *cores, *co;
    size_t i;
    if (get_id(no, "NUMA domain", im->t->nnumas, im->numa_seen, &id, err) < 0)
        return -1;
    if (phx_json_int(no, "memory", true, 0, INT64_MAX, &mem, err) < 0 ||
        phx_json_int(no, "os_index", false, 0, INT32_MAX, &os, err) < 0) {
        errno = EINVAL;
        return phx_error_prefix(err, "NUMA domain %d", id);
    }
    im->t->numa_socket[id] = socket;
    im->t->numa_mem[id] = (uint64_t)mem;
    im->t->numa_os[id] = (int)os;
    cores = json_object_get(no, "cores");
    json_array_foreach(cores, i, co)
    {
        if (read_core(im, co, id, err) < 0)
            return -1;
    }
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int read_pus(struct import *im, phx_error_t *err)
{
    phx_topo_t *t = im->t;
    int off = 0;
    for (int c = 0; c < t->ncores; c++) {
        size_t i;
        json_t *pu;
        if (!im->pus[c])
            return bad(err, "core id %d is missing", c);
        t->core_pu_off[c] = off;
        json_array_foreach(im->pus[c], i, pu)
        {
            if (!json_is_integer(pu))
                return bad(err, "core %d: PUs must be integers", c);
            json_int_t v = json_integer_value(pu);
            if (v < 0 || v >= PHX_TOPO_PU_LIMIT)
                return bad(err, "core %d: PU %lld is out of range [0, %d)", c,
                           (long long)v, PHX_TOPO_PU_LIMIT);
            t->pus[off++] = (int)v;
        }
        qsort(t->pus + t->core_pu_off[c], (size_t)(off - t->core_pu_off[c]),
              sizeof(int), cmp_int);
    }
    t->core_pu_off[t->ncores] = off;
    return 0;
}

static int read_dev(phx_topo_t *t, const json_t *o, phx_error_t *err)
{
    int id;
    const char *kind, *name, *pci = "", *model = "";
    long long numa = -1, socket = -1;
    if (get_id(o, "device", t->ndevs, NULL, &id, err) < 0)
        return -1;
    struct topo_dev *d = &t->devs[id];
    if (d->name)
        return bad(err, "duplicate device id %d", id);
    if (phx_json_str(o, "kind", true, &kind, err) < 0 ||
        phx_json_str(o, "name", true, &name, err) < 0 ||
        phx_json_str(o, "pci", false, &pci, err) < 0 ||
        phx_json_str(o, "model", false, &model, err) < 0 ||
        phx_json_int(o, "numa", false, -1, INT32_MAX, &numa, err) < 0 ||
        phx_json_int(o, "socket", false, -1, INT32_MAX, &socket, err) < 0) {
        errno = EINVAL;
        return phx_error_prefix(err, "device %d", id);
    }
    if (strcmp(kind, "gpu") == 0)
        d->kind = PHX_TOPO_DEV_GPU;
    else if (strcmp(kind, "coproc") == 0)
        d->kind = PHX_TOPO_DEV_COPROC;
    else
        return bad(err, "device %d: unknown kind \"%s\"", id, kind);
    d->numa = (int)numa;
    d->socket = (int)socket;
    if (!(d->name = strdup(name)) || !(d->pci = strdup(pci)) ||
        !(d->model = strdup(model)))
        return phx_error_set(err, "out of memory");
    return 0;
}

static int read_all(struct import *im, const json_t *sockets, const json_t *devs,
                    phx_error_t *err)
{
    size_t i, j;
    json_t *so, *no;
    json_array_foreach(sockets, i, so)
    {
        int sid;
        if (get_id(so, "socket", im->t->nsockets, im->socket_seen, &sid, err) < 0)
            return -1;
        json_array_foreach(json_object_get(so, "numa"), j, no)
        {
            if (read_numa(im, no, sid, err) < 0)
                return -1;
        }
    }
    if (read_pus(im, err) < 0)
        return -1;
    json_array_foreach(devs, i, so)
    {
        if (read_dev(im->t, so, err) < 0)
            return -1;
    }
    return 0;
}

static phx_topo_t *import(const json_t *sockets, const json_t *devs, phx_error_t *err)
{
    int nnumas, ncores, npus;
    if (count(sockets, &nnumas, &ncores, &npus, err) < 0)
        return NULL;
    int ndevs = devs ? (int)json_array_size(devs) : 0;
    struct import im = {0};
    im.t = topo_alloc((int)json_array_size(sockets), nnumas, ncores, npus, ndevs);
    im.core_owner = malloc(((size_t)ncores + 1) * sizeof(int));
    im.numa_seen = calloc((size_t)nnumas + 1, sizeof(bool));
    im.socket_seen = calloc(json_array_size(sockets) + 1, sizeof(bool));
    im.pus = calloc((size_t)ncores + 1, sizeof(*im.pus));
    int rc = -1;
    if (!im.t || !im.core_owner || !im.numa_seen || !im.socket_seen || !im.pus) {
        errno = ENOMEM;
        phx_error_set(err, "out of memory");
        goto out;
    }
    for (int c = 0; c < ncores; c++)
        im.core_owner[c] = -1;
    if (ncores == 0) {
        bad(err, "topology has no cores");
        goto out;
    }
    rc = read_all(&im, sockets, devs, err);
    if (rc == 0)
        rc = topo_finish(im.t, err);
out:
    free(im.core_owner);
    free(im.numa_seen);
    free(im.socket_seen);
    free(im.pus);
    if (rc < 0) {
        phx_topo_destroy(im.t);
        return NULL;
    }
    return im.t;
}

phx_topo_t *phx_topo_from_json(const json_t *obj, phx_error_t *err)
{
    long long version;
    bool emulated = false;
    const char *source = NULL;
    json_t *sockets, *devs = NULL;
    if (!json_is_object(obj)) {
        bad(err, "topology must be a JSON object");
        return NULL;
    }
    if (phx_json_int(obj, "version", true, 0, INT32_MAX, &version, err) < 0 ||
        phx_json_bool(obj, "emulated", false, &emulated, err) < 0 ||
        phx_json_str(obj, "source", false, &source, err) < 0 ||
        phx_json_arr(obj, "sockets", true, &sockets, err) < 0 ||
        phx_json_arr(obj, "devices", false, &devs, err) < 0) {
        errno = EINVAL;
        phx_error_prefix(err, "topology");
        return NULL;
    }
    if (version != JSON_VERSION) {
        bad(err, "topology version %lld is not supported (expected %d)", version,
            JSON_VERSION);
        return NULL;
    }
    if (json_array_size(sockets) == 0) {
        bad(err, "topology has no sockets");
        return NULL;
    }
    phx_topo_t *t = import(sockets, devs, err);
    if (!t) {
        phx_error_prefix(err, "invalid topology");
        return NULL;
    }
    t->source = "json";
    static const char *const known[] = {"local", "xml", "synthetic", "json", NULL};
    for (int i = 0; source && known[i]; i++)
        if (strcmp(source, known[i]) == 0)
            t->source = known[i];
    t->emulated = emulated;
    return t;
}
