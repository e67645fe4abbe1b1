/* Binding the calling process to a core set with hwloc.
 *
 * A model that describes this machine binds to its own PU OS indexes.  An
 * emulated model (synthetic, XML, or JSON of either) maps each of its PUs
 * onto the PUs this process may run on: emulated PU P goes to the
 * (P mod R)-th allowed PU in ascending order, R the number of allowed PUs.
 * See doc/topology.md. */
#ifndef PHX_TOPO_BIND_H
#define PHX_TOPO_BIND_H

#include "lib/error.h"
#include "topology/coreset.h"
#include "topology/topo.h"

/* The real cpuset (list format) that binding cores would use: for the
 * agent's cgroup.  Caller frees; NULL with errno and err on failure. */
char *phx_topo_bind_cpuset_str(const phx_topo_t *topo, const phx_topo_coreset_t *cores,
                               phx_error_t *err);
/* Bind the whole calling process to those PUs.  0 or -1 with err. */
int phx_topo_bind(const phx_topo_t *topo, const phx_topo_coreset_t *cores,
                  phx_error_t *err);

#endif
