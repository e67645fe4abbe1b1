/* The node topology model: node → sockets → NUMA domains (memory) → cores →
 * PUs, plus GPUs and co-processors with their NUMA affinity.
 *
 * Every object has a logical id, dense from 0, in hwloc logical order when the
 * model comes from hwloc and as written when it comes from JSON; ids survive a
 * JSON round trip.  PUs are named by their OS index (what Linux calls a CPU).
 * No hwloc type appears here: the rest of Phalanx sees only phx_topo_t.
 *
 * A phx_topo_t is immutable once loaded, so it may be shared between threads.
 * See doc/topology.md for the rules applied to odd machines. */
#ifndef PHX_TOPO_H
#define PHX_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/error.h"

typedef struct phx_topo phx_topo_t;

/* Memory given to each NUMA domain of a synthetic description that names no
 * memory (hwloc alone would give 1 GiB). */
#define PHX_TOPO_SYNTHETIC_NUMA_MEM (16ULL << 30)
/* PU OS indexes are below this (Linux's largest NR_CPUS is 8192). */
#define PHX_TOPO_PU_LIMIT 65536
/* The model refuses nodes with more cores than this. */
#define PHX_TOPO_CORE_LIMIT 16384

typedef enum phx_topo_dev_kind {
    PHX_TOPO_DEV_GPU,
    PHX_TOPO_DEV_COPROC,
} phx_topo_dev_kind_t;

/* Loading.  Each returns a new model (free with phx_topo_destroy) or NULL with
 * errno set and err filled.  Strings are copied. */
phx_topo_t *phx_topo_load_local(phx_error_t *err);
phx_topo_t *phx_topo_load_xml_file(const char *path, phx_error_t *err);
phx_topo_t *phx_topo_load_xml_buffer(const char *xml, size_t len, phx_error_t *err);
/* hwloc synthetic description, e.g. "pack:2 numa:2 core:8 pu:2" or
 * "pack:2 numa:2(memory=64GiB) core:8 pu:2".  Marked emulated. */
phx_topo_t *phx_topo_load_synthetic(const char *desc, phx_error_t *err);
/* Preserves errno; NULL is a no-op. */
void phx_topo_destroy(phx_topo_t *topo);

/* JSON (see doc/topology.md for the format).  to_json returns a new reference
 * or NULL (ENOMEM).  from_json refuses malformed or inconsistent input with a
 * message naming the problem; obj is only read. */
json_t *phx_topo_to_json(const phx_topo_t *topo);
phx_topo_t *phx_topo_from_json(const json_t *obj, phx_error_t *err);

/* Where the model came from: "local", "xml" or "synthetic" (kept through
 * JSON), or "json" when the JSON did not say. */
const char *phx_topo_source(const phx_topo_t *topo);
/* Emulated models (synthetic or XML, or JSON of either) do not describe the
 * machine we run on; binding maps their PUs onto real ones (see bind.h). */
bool phx_topo_emulated(const phx_topo_t *topo);

/* Counts. */
int phx_topo_nsockets(const phx_topo_t *topo);
int phx_topo_nnumas(const phx_topo_t *topo);
int phx_topo_ncores(const phx_topo_t *topo);
int phx_topo_npus(const phx_topo_t *topo);
int phx_topo_ndevs(const phx_topo_t *topo);
uint64_t phx_topo_memory(const phx_topo_t *topo);

/* Accessors: ids must be in range (checked: -1 / 0 / NULL with EINVAL). */
int phx_topo_core_numa(const phx_topo_t *topo, int core);
int phx_topo_core_socket(const phx_topo_t *topo, int core);
/* PU OS indexes of a core, ascending; *npus set.  Borrowed from topo. */
const int *phx_topo_core_pus(const phx_topo_t *topo, int core, int *npus);
int phx_topo_numa_socket(const phx_topo_t *topo, int numa);
uint64_t phx_topo_numa_memory(const phx_topo_t *topo, int numa);
/* hwloc OS index of the NUMA node (-1 if the machine reported none). */
int phx_topo_numa_os_index(const phx_topo_t *topo, int numa);
int phx_topo_numa_ncores(const phx_topo_t *topo, int numa);
int phx_topo_socket_ncores(const phx_topo_t *topo, int socket);
int phx_topo_socket_nnumas(const phx_topo_t *topo, int socket);
/* The i-th NUMA domain of a socket, ascending ids. */
int phx_topo_socket_numa(const phx_topo_t *topo, int socket, int i);
/* Lowest core id of a NUMA domain / socket, -1 if it has none. */
int phx_topo_numa_first_core(const phx_topo_t *topo, int numa);
/* The core whose PUs include PU OS index pu, or -1. */
int phx_topo_pu_core(const phx_topo_t *topo, int pu);

/* Devices: GPUs and co-processors, one per physical device (hwloc's several
 * OS devices of one PCI function are merged).  Strings borrowed from topo;
 * pci_busid and model may be "".  numa/socket are -1 when the device is not
 * local to a single domain / socket. */
phx_topo_dev_kind_t phx_topo_dev_kind(const phx_topo_t *topo, int dev);
const char *phx_topo_dev_name(const phx_topo_t *topo, int dev);
const char *phx_topo_dev_pci(const phx_topo_t *topo, int dev);
const char *phx_topo_dev_model(const phx_topo_t *topo, int dev);
int phx_topo_dev_numa(const phx_topo_t *topo, int dev);
int phx_topo_dev_socket(const phx_topo_t *topo, int dev);
const char *phx_topo_dev_kind_name(phx_topo_dev_kind_t kind);

/* GPUs: the devices of kind PHX_TOPO_DEV_GPU, named everywhere by their
 * device id (co-processors are not allocated).  A GPU's index is its rank
 * among the node's GPUs in device id order (hwloc's order, by PCI bus id):
 * what CUDA_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES name with
 * CUDA_DEVICE_ORDER=PCI_BUS_ID.  gpu_index is -1 (EINVAL) for a device that is
 * not a GPU. */
bool phx_topo_is_gpu(const phx_topo_t *topo, int dev);
int phx_topo_ngpus(const phx_topo_t *topo);
int phx_topo_gpu_index(const phx_topo_t *topo, int dev);

#endif
