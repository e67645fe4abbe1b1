/* Building the model from hwloc: local discovery, XML, synthetic.
 *
 * Rules (doc/topology.md): sockets are hwloc packages (one if there are
 * none); a core belongs to the first NUMA node, in logical order, whose cpuset
 * holds it (a single memory-less domain if there is none); a NUMA node that
 * spans several packages becomes one domain per package, its memory shared
 * evenly; machines without Core objects get one core per PU; NUMA nodes
 * without cores (HBM, CXL) are not modelled. */
#include <ctype.h>
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "topology/internal.h"

struct build {
    hwloc_topology_t hw;
    hwloc_obj_t *cores; /* hwloc objects standing for model cores */
    int ncores;
    int *core_pkg;    /* [ncores] socket id */
    int *core_hwnuma; /* [ncores] hwloc NUMA logical index, nhwnuma for none */
    int nhwnuma;
    int nsockets;
    int *pair_id; /* [nsockets * (nhwnuma + 1)] model NUMA id or -1 */
    int npairs;
};

static void build_free(struct build *b)
{
    free(b->cores);
    free(b->core_pkg);
    free(b->core_hwnuma);
    free(b->pair_id);
}

static int core_numa_of(hwloc_topology_t hw, hwloc_obj_t core, int nhwnuma)
{
    for (int i = 0; i < nhwnuma; i++) {
        hwloc_obj_t n = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, (unsigned)i);
        if (n && !hwloc_bitmap_iszero(n->cpuset) &&
            hwloc_bitmap_isincluded(core->cpuset, n->cpuset))
            return i;
    }
    return nhwnuma;
}

/* Collect cores, their package and NUMA node, and the (package, NUMA) pairs. */
static int collect(struct build *b, phx_error_t *err)
{
    hwloc_obj_type_t ctype = HWLOC_OBJ_CORE;
    int n = hwloc_get_nbobjs_by_type(b->hw, HWLOC_OBJ_CORE);
    if (n <= 0) {
        ctype = HWLOC_OBJ_PU;
        n = hwloc_get_nbobjs_by_type(b->hw, HWLOC_OBJ_PU);
    }
    if (n <= 0 || n > PHX_TOPO_CORE_LIMIT) {
        errno = EINVAL;
        return phx_error_set(err, "topology has %d cores (limit %d)", n,
                             PHX_TOPO_CORE_LIMIT);
    }
    int npkg = hwloc_get_nbobjs_by_type(b->hw, HWLOC_OBJ_PACKAGE);
    b->nsockets = npkg > 0 ? npkg : 1;
    b->nhwnuma = hwloc_get_nbobjs_by_type(b->hw, HWLOC_OBJ_NUMANODE);
    if (b->nhwnuma < 0)
        b->nhwnuma = 0;
    b->cores = calloc((size_t)n, sizeof(*b->cores));
    b->core_pkg = calloc((size_t)n, sizeof(int));
    b->core_hwnuma = calloc((size_t)n, sizeof(int));
    size_t npair = (size_t)b->nsockets * (size_t)(b->nhwnuma + 1);
    b->pair_id = malloc(npair * sizeof(int));
    if (!b->cores || !b->core_pkg || !b->core_hwnuma || !b->pair_id)
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < npair; i++)
        b->pair_id[i] = -1;
    for (int i = 0; i < n; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(b->hw, ctype, (unsigned)i);
        if (!o || !o->cpuset || hwloc_bitmap_iszero(o->cpuset))
            continue;
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(b->hw, HWLOC_OBJ_PACKAGE, o);
        int c = b->ncores++;
        b->cores[c] = o;
        b->core_pkg[c] = pkg && npkg > 0 ? (int)pkg->logical_index : 0;
        b->core_hwnuma[c] = core_numa_of(b->hw, o, b->nhwnuma);
        b->pair_id[b->core_pkg[c] * (b->nhwnuma + 1) + b->core_hwnuma[c]] = -2;
    }
    if (b->ncores == 0) {
        errno = EINVAL;
        return phx_error_set(err, "topology has no usable core");
    }
    for (size_t i = 0; i < npair; i++)
        if (b->pair_id[i] == -2)
            b->pair_id[i] = b->npairs++;
    return 0;
}

static void fill_numas(struct build *b, phx_topo_t *t)
{
    int stride = b->nhwnuma + 1;
    int *shares = calloc((size_t)stride, sizeof(int));
    for (int s = 0; s < b->nsockets; s++)
        for (int h = 0; h < stride; h++)
            if (b->pair_id[s * stride + h] >= 0 && shares)
                shares[h]++;
    int *given = calloc((size_t)stride, sizeof(int));
    for (int s = 0; s < b->nsockets; s++)
        for (int h = 0; h < stride; h++) {
            int id = b->pair_id[s * stride + h];
            if (id < 0)
                continue;
            t->numa_socket[id] = s;
            if (h == b->nhwnuma)
                continue;
            hwloc_obj_t o =
                hwloc_get_obj_by_type(b->hw, HWLOC_OBJ_NUMANODE, (unsigned)h);
            uint64_t mem = o->attr ? o->attr->numanode.local_memory : 0;
            int k = shares && shares[h] > 0 ? shares[h] : 1;
            t->numa_mem[id] = mem / (uint64_t)k;
            if (given && given[h]++ == 0)
                t->numa_mem[id] += mem % (uint64_t)k;
            t->numa_os[id] = (int)o->os_index;
        }
    free(shares);
    free(given);
}

static void fill_cores(struct build *b, phx_topo_t *t)
{
    int stride = b->nhwnuma + 1, off = 0;
    for (int c = 0; c < b->ncores; c++) {
        t->core_numa[c] = b->pair_id[b->core_pkg[c] * stride + b->core_hwnuma[c]];
        t->core_pu_off[c] = off;
        unsigned pu;
        hwloc_bitmap_foreach_begin(pu, b->cores[c]->cpuset)
        {
            t->pus[off++] = (int)pu;
        }
        hwloc_bitmap_foreach_end();
    }
    t->core_pu_off[b->ncores] = off;
}

static bool is_accel(hwloc_obj_t o)
{
    return o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU ||
           o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC;
}

/* Preferred names first: compute-API names over display names. */
static int name_rank(const char *name)
{
    static const char *const prefs[] = {"cuda", "rsmi", "ze",   "nvml",    "opencl",
                                        "ve",   "mic",  "card", "renderD", NULL};
    for (int i = 0; prefs[i]; i++)
        if (strncmp(name, prefs[i], strlen(prefs[i])) == 0)
            return i;
    return 99;
}

static hwloc_obj_t pci_of(hwloc_obj_t o)
{
    for (hwloc_obj_t p = o->parent; p && hwloc_obj_type_is_io(p->type); p = p->parent)
        if (p->type == HWLOC_OBJ_PCI_DEVICE)
            return p;
    return o;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* The single model NUMA domain / socket covering an I/O object, else -1. */
static void locate(struct build *b, phx_topo_t *t, hwloc_obj_t o, int *numa, int *sock)
{
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(b->hw, o);
    *numa = *sock = -1;
    if (!anc || !anc->cpuset)
        return;
    int n = -1, s = -1;
    bool many_n = false, many_s = false;
    for (int c = 0; c < b->ncores; c++) {
        if (!hwloc_bitmap_intersects(b->cores[c]->cpuset, anc->cpuset))
            continue;
        int cn = t->core_numa[c], cs = t->numa_socket[cn];
        many_n |= n >= 0 && n != cn;
        many_s |= s >= 0 && s != cs;
        n = cn;
        s = cs;
    }
    *numa = many_n ? -1 : n;
    *sock = many_s ? -1 : s;
}

static int count_devs(struct build *b, hwloc_obj_t *keys)
{
    int n = 0;
    for (hwloc_obj_t o = hwloc_get_next_osdev(b->hw, NULL); o;
         o = hwloc_get_next_osdev(b->hw, o)) {
        if (!is_accel(o) || !o->name)
            continue;
        hwloc_obj_t key = pci_of(o);
        int i = 0;
        while (i < n && keys[i] != key)
            i++;
        if (i == n)
            keys[n++] = key;
    }
    return n;
}

static int fill_devs(struct build *b, phx_topo_t *t, hwloc_obj_t *keys)
{
    for (hwloc_obj_t o = hwloc_get_next_osdev(b->hw, NULL); o;
         o = hwloc_get_next_osdev(b->hw, o)) {
        if (!is_accel(o) || !o->name)
            continue;
        hwloc_obj_t key = pci_of(o);
        int i = 0;
        while (keys[i] != key)
            i++;
        struct topo_dev *d = &t->devs[i];
        if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU || !d->name)
            d->kind = o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU ? PHX_TOPO_DEV_GPU
                                                                 : PHX_TOPO_DEV_COPROC;
        if (!d->name || name_rank(o->name) < name_rank(d->name)) {
            free(d->name);
            if (!(d->name = strdup(o->name)))
                return -1;
        }
        const char *model = hwloc_obj_get_info_by_name(o, "GPUModel");
        if (!d->model || (!d->model[0] && model)) {
            free(d->model);
            if (!(d->model = dup_or_empty(model)))
                return -1;
        }
        if (!d->pci) {
            char bus[32] = "";
            if (key != o)
                snprintf(bus, sizeof(bus), "%04x:%02x:%02x.%x",
                         key->attr->pcidev.domain, key->attr->pcidev.bus,
                         key->attr->pcidev.dev, key->attr->pcidev.func);
            if (!(d->pci = strdup(bus)))
                return -1;
            locate(b, t, key, &d->numa, &d->socket);
        }
    }
    /* No OS device named a model: fall back to the PCI device name. */
    for (int i = 0; i < t->ndevs; i++) {
        const char *pcidev = keys[i]->type == HWLOC_OBJ_PCI_DEVICE
                                 ? hwloc_obj_get_info_by_name(keys[i], "PCIDevice")
                                 : NULL;
        if (!t->devs[i].model[0] && pcidev) {
            free(t->devs[i].model);
            if (!(t->devs[i].model = strdup(pcidev)))
                return -1;
        }
    }
    return 0;
}

static phx_topo_t *build_model(hwloc_topology_t hw, phx_error_t *err)
{
    struct build b = {.hw = hw};
    phx_topo_t *t = NULL;
    hwloc_obj_t *keys = NULL;
    if (collect(&b, err) < 0)
        goto error;
    int npus = 0;
    for (int c = 0; c < b.ncores; c++)
        npus += hwloc_bitmap_weight(b.cores[c]->cpuset);
    int nosdev = 0;
    for (hwloc_obj_t o = hwloc_get_next_osdev(hw, NULL); o;
         o = hwloc_get_next_osdev(hw, o))
        nosdev++;
    keys = calloc((size_t)nosdev + 1, sizeof(*keys));
    if (!keys)
        goto nomem;
    int ndevs = count_devs(&b, keys);
    t = topo_alloc(b.nsockets, b.npairs, b.ncores, npus, ndevs);
    if (!t)
        goto nomem;
    fill_numas(&b, t);
    fill_cores(&b, t);
    if (fill_devs(&b, t, keys) < 0)
        goto nomem;
    free(keys);
    build_free(&b);
    return t;
nomem:
    errno = ENOMEM;
    phx_error_set(err, "out of memory");
error:
    free(keys);
    build_free(&b);
    phx_topo_destroy(t);
    return NULL;
}

typedef int (*setup_f)(hwloc_topology_t hw, const void *arg, size_t len);

static phx_topo_t *load(setup_f setup, const void *arg, size_t len, const char *what,
                        phx_error_t *err)
{
    hwloc_topology_t hw;
    if (hwloc_topology_init(&hw) < 0) {
        phx_error_set(err, "could not initialise hwloc: %s", strerror(errno));
        return NULL;
    }
    phx_topo_t *t = NULL;
    hwloc_topology_set_io_types_filter(hw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (setup && setup(hw, arg, len) < 0) {
        int e = errno ? errno : EINVAL;
        phx_error_set(err, "could not read %s: %s", what, strerror(e));
        errno = e;
        goto out;
    }
    if (hwloc_topology_load(hw) < 0) {
        int e = errno ? errno : EINVAL;
        phx_error_set(err, "could not load topology from %s: %s", what, strerror(e));
        errno = e;
        goto out;
    }
    t = build_model(hw, err);
    if (t && topo_finish(t, err) < 0) {
        phx_error_prefix(err, "topology from %s", what);
        phx_topo_destroy(t);
        t = NULL;
    }
out:
    hwloc_topology_destroy(hw);
    return t;
}

phx_topo_t *phx_topo_load_local(phx_error_t *err)
{
    phx_topo_t *t = load(NULL, NULL, 0, "this machine", err);
    if (t)
        t->source = "local";
    return t;
}

static int setup_xml_file(hwloc_topology_t hw, const void *arg, size_t len)
{
    (void)len;
    return hwloc_topology_set_xml(hw, arg);
}

static int setup_xml_buffer(hwloc_topology_t hw, const void *arg, size_t len)
{
    return hwloc_topology_set_xmlbuffer(hw, arg, (int)len);
}

static int setup_synthetic(hwloc_topology_t hw, const void *arg, size_t len)
{
    (void)len;
    return hwloc_topology_set_synthetic(hw, arg);
}

phx_topo_t *phx_topo_load_xml_file(const char *path, phx_error_t *err)
{
    char what[PHX_ERROR_TEXT_MAX / 2];
    snprintf(what, sizeof(what), "XML file \"%s\"", path);
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        phx_error_set(err, "could not open file \"%s\": %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    fclose(f);
    phx_topo_t *t = load(setup_xml_file, path, 0, what, err);
    if (t) {
        t->source = "xml";
        t->emulated = true;
    }
    return t;
}

phx_topo_t *phx_topo_load_xml_buffer(const char *xml, size_t len, phx_error_t *err)
{
    if (len == 0 || len > INT32_MAX) {
        errno = EINVAL;
        phx_error_set(err, "XML buffer of %zu bytes is empty or too large", len);
        return NULL;
    }
    /* hwloc wants the terminating NUL counted in len. */
    size_t n = xml[len - 1] == '\0' ? len : len + 1;
    char *copy = NULL;
    if (n != len) {
        if (!(copy = malloc(n))) {
            phx_error_set(err, "out of memory");
            return NULL;
        }
        memcpy(copy, xml, len);
        copy[len] = '\0';
    }
    phx_topo_t *t = load(setup_xml_buffer, copy ? copy : xml, n, "XML buffer", err);
    free(copy);
    if (t) {
        t->source = "xml";
        t->emulated = true;
    }
    return t;
}

/* hwloc says only EINVAL about a bad description: check the shape ourselves
 * to name the faulty level, and bound its size. */
static int check_synthetic(const char *desc, phx_error_t *err)
{
    char buf[1024];
    double pus = 1;
    int nlevels = 0;
    bool last_is_pu = false;
    hwloc_obj_type_t type = HWLOC_OBJ_PU;
    if (strlen(desc) >= sizeof(buf)) {
        errno = EINVAL;
        return phx_error_set(err, "synthetic description is too long");
    }
    snprintf(buf, sizeof(buf), "%s", desc);
    for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save)) {
        char *colon = strchr(tok, ':'), *eq = strchr(tok, '=');
        if (tok[0] == '[' || tok[0] == '(' || (eq && (!colon || eq < colon)))
            continue; /* attached memory or attributes: left to hwloc */
        char *num = colon ? colon + 1 : tok;
        if (colon) {
            *colon = '\0';
            if (hwloc_type_sscanf(tok, &type, NULL, 0) < 0) {
                errno = EINVAL;
                return phx_error_set(err,
                                     "synthetic description \"%s\": unknown "
                                     "object type \"%s\"",
                                     desc, tok);
            }
        }
        if (!colon && !isdigit((unsigned char)tok[0])) {
            errno = EINVAL;
            return phx_error_set(err,
                                 "synthetic description \"%s\": level \"%s\" is "
                                 "not TYPE:COUNT",
                                 desc, tok);
        }
        char *end;
        long count = strtol(num, &end, 10);
        if (end == num || count < 1 || (*end && *end != '(')) {
            errno = EINVAL;
            return phx_error_set(err, "synthetic description \"%s\": bad count \"%s\"",
                                 desc, num);
        }
        pus *= (double)count;
        nlevels++;
        last_is_pu = !colon || type == HWLOC_OBJ_PU;
    }
    if (nlevels > 0 && !last_is_pu) {
        errno = EINVAL;
        return phx_error_set(
            err, "synthetic description \"%s\" must end with a pu level", desc);
    }
    if (nlevels == 0) {
        errno = EINVAL;
        return phx_error_set(err, "empty synthetic description");
    }
    if (pus > PHX_TOPO_PU_LIMIT) {
        errno = EINVAL;
        return phx_error_set(err,
                             "synthetic description \"%s\" has %.0f PUs, more "
                             "than the limit %d",
                             desc, pus, PHX_TOPO_PU_LIMIT);
    }
    return 0;
}

phx_topo_t *phx_topo_load_synthetic(const char *desc, phx_error_t *err)
{
    if (check_synthetic(desc, err) < 0)
        return NULL;
    char what[PHX_ERROR_TEXT_MAX / 2];
    snprintf(what, sizeof(what), "synthetic description \"%s\"", desc);
    phx_topo_t *t = load(setup_synthetic, desc, 0, what, err);
    if (!t)
        return NULL;
    t->source = "synthetic";
    t->emulated = true;
    if (!strcasestr(desc, "memory="))
        for (int n = 0; n < t->nnumas; n++)
            t->numa_mem[n] = PHX_TOPO_SYNTHETIC_NUMA_MEM;
    return t;
}
