/* Binding the calling process to a core set, with hwloc.  Emulated PUs are
 * mapped onto the PUs this process may use (see bind.h). */
#include <errno.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>

#include "topology/bind.h"
#include "topology/internal.h"

/* A topology of this machine, PUs only, for binding. */
static int open_local(hwloc_topology_t *hw, phx_error_t *err)
{
    if (hwloc_topology_init(hw) < 0)
        return phx_error_set(err, "could not initialise hwloc: %s", strerror(errno));
    hwloc_topology_set_all_types_filter(*hw, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_type_filter(*hw, HWLOC_OBJ_PU, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (hwloc_topology_load(*hw) < 0) {
        int e = errno;
        hwloc_topology_destroy(*hw);
        errno = e;
        return phx_error_set(err, "could not discover this machine: %s", strerror(e));
    }
    return 0;
}

/* Fill real with the PUs to bind to; 0 or -1 with err. */
static int real_pus(const phx_topo_t *topo, const phx_topo_coreset_t *cores,
                    hwloc_topology_t hw, hwloc_bitmap_t real, phx_error_t *err)
{
    if (cores->ncores != topo->ncores) {
        errno = EINVAL;
        return phx_error_set(err, "core set does not match the topology");
    }
    if (phx_topo_coreset_count(cores) == 0) {
        errno = EINVAL;
        return phx_error_set(err, "cannot bind to an empty core set");
    }
    hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(hw);
    int nallowed = hwloc_bitmap_weight(allowed);
    if (nallowed <= 0) {
        errno = ENODEV;
        return phx_error_set(err, "this process may not run on any PU");
    }
    int *ordinal = NULL; /* allowed PUs, ascending: emulated PU P -> [P % n] */
    if (topo->emulated) {
        ordinal = malloc((size_t)nallowed * sizeof(int));
        if (!ordinal)
            return phx_error_set(err, "out of memory");
        int k = 0;
        unsigned pu;
        hwloc_bitmap_foreach_begin(pu, allowed)
        {
            ordinal[k++] = (int)pu;
        }
        hwloc_bitmap_foreach_end();
    }
    int rc = 0;
    for (int c = phx_topo_coreset_next(cores, -1); c >= 0 && rc == 0;
         c = phx_topo_coreset_next(cores, c))
        for (int i = topo->core_pu_off[c]; i < topo->core_pu_off[c + 1]; i++) {
            int pu = ordinal ? ordinal[topo->pus[i] % nallowed] : topo->pus[i];
            if (hwloc_bitmap_set(real, (unsigned)pu) < 0) {
                rc = phx_error_set(err, "out of memory");
                break;
            }
        }
    free(ordinal);
    return rc;
}

char *phx_topo_bind_cpuset_str(const phx_topo_t *topo, const phx_topo_coreset_t *cores,
                               phx_error_t *err)
{
    hwloc_topology_t hw;
    if (open_local(&hw, err) < 0)
        return NULL;
    char *s = NULL;
    hwloc_bitmap_t real = hwloc_bitmap_alloc();
    if (!real) {
        phx_error_set(err, "out of memory");
    } else if (real_pus(topo, cores, hw, real, err) == 0 &&
               hwloc_bitmap_list_asprintf(&s, real) < 0) {
        s = NULL;
        phx_error_set(err, "out of memory");
    }
    int e = errno;
    hwloc_bitmap_free(real);
    hwloc_topology_destroy(hw);
    errno = e;
    return s;
}

int phx_topo_bind(const phx_topo_t *topo, const phx_topo_coreset_t *cores,
                  phx_error_t *err)
{
    hwloc_topology_t hw;
    if (open_local(&hw, err) < 0)
        return -1;
    int rc = -1;
    hwloc_bitmap_t real = hwloc_bitmap_alloc();
    if (!real) {
        phx_error_set(err, "out of memory");
    } else if (real_pus(topo, cores, hw, real, err) == 0) {
        rc = hwloc_set_cpubind(hw, real, HWLOC_CPUBIND_PROCESS);
        if (rc < 0) {
            char *list = NULL;
            int e = errno;
            hwloc_bitmap_list_asprintf(&list, real);
            phx_error_set(err, "could not bind to PUs %s: %s", list ? list : "?",
                          strerror(e));
            free(list);
            errno = e;
        }
    }
    int e = errno;
    hwloc_bitmap_free(real);
    hwloc_topology_destroy(hw);
    errno = e;
    return rc;
}
