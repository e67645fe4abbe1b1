/* Private to topology/: the model's layout and bitmap helpers shared by the
 * files of this folder.  Nothing outside topology/ includes this. */
#ifndef PHX_TOPO_INTERNAL_H
#define PHX_TOPO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "topology/coreset.h"
#include "topology/topo.h"

#define WORD_BITS 64
#define NWORDS(n) (((n) + WORD_BITS - 1) / WORD_BITS)

struct phx_topo_coreset {
    int ncores;
    int nwords;
    uint64_t w[];
};

struct topo_dev {
    phx_topo_dev_kind_t kind;
    char *name;
    char *pci;
    char *model;
    int numa;
    int socket;
};

struct phx_topo {
    const char *source; /* static string */
    bool emulated;
    int nsockets, nnumas, ncores, npus, ndevs;

    /* Filled by the loaders. */
    int *numa_socket;   /* [nnumas] */
    uint64_t *numa_mem; /* [nnumas] */
    int *numa_os;       /* [nnumas] */
    int *core_numa;     /* [ncores] */
    int *core_pu_off;   /* [ncores + 1]: PUs of core c are pus[off[c]..off[c+1]) */
    int *pus;           /* [npus] OS indexes */
    struct topo_dev *devs;

    /* Derived by topo_finish. */
    int nwords;            /* words of a core bitmap */
    int *core_socket;      /* [ncores] */
    int *numa_ncores;      /* [nnumas] */
    int *numa_first;       /* [nnumas] lowest core, -1 */
    int *socket_ncores;    /* [nsockets] */
    int *socket_numa_off;  /* [nsockets + 1] into socket_numas */
    int *socket_numas;     /* [nnumas] NUMA ids grouped by socket, ascending */
    uint64_t *numa_mask;   /* [nnumas * nwords] */
    uint64_t *socket_mask; /* [nsockets * nwords] */
    int *numa_wlo;         /* [nnumas] first word with a core of the domain */
    int *numa_whi;         /* [nnumas] one past the last such word */
    int pu_end;            /* 1 + largest PU OS index */
    int *pu_core;          /* [pu_end] core of a PU OS index, or -1 */
};

/* Allocate a model with these counts, arrays zeroed (numa_os, devices' numa
 * and socket set to -1).  NULL on ENOMEM. */
phx_topo_t *topo_alloc(int nsockets, int nnumas, int ncores, int npus, int ndevs);
/* Check the loaders' arrays for consistency and derive the rest.  On error
 * err names the problem; the caller destroys topo. */
int topo_finish(phx_topo_t *topo, phx_error_t *err);

static inline bool bit_test(const uint64_t *w, int i)
{
    return (w[i / WORD_BITS] >> (i % WORD_BITS)) & 1;
}

static inline void bit_set(uint64_t *w, int i)
{
    w[i / WORD_BITS] |= (uint64_t)1 << (i % WORD_BITS);
}

static inline void bit_clear(uint64_t *w, int i)
{
    w[i / WORD_BITS] &= ~((uint64_t)1 << (i % WORD_BITS));
}

/* Format ascending non-negative integers as a list ("0-3,8"); caller frees. */
char *list_format(const int *v, int n);

#endif
