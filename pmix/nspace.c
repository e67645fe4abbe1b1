/* Namespaces: one per step, registered from the step's rank map; the
 * environment of each rank; the step's private directory and its removal. */
#include <errno.h>
#include <pmix.h>
#include <pmix_server.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "pmix/pmix_impl.h"

/* Wait for a PMIx operation's completion (a few milliseconds). */
typedef struct sync_op {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    pmix_status_t status;
} sync_op_t;

static void sync_init(sync_op_t *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->done = false;
    s->status = PMIX_SUCCESS;
}

static void sync_cb(pmix_status_t status, void *cbdata)
{
    sync_op_t *s = cbdata;
    pthread_mutex_lock(&s->lock);
    s->status = status;
    s->done = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* rc: what the call returned; waits only if the callback is coming. */
static pmix_status_t sync_wait(sync_op_t *s, pmix_status_t rc)
{
    if (rc == PMIX_SUCCESS) {
        pthread_mutex_lock(&s->lock);
        while (!s->done)
            pthread_cond_wait(&s->cond, &s->lock);
        rc = s->status;
        pthread_mutex_unlock(&s->lock);
    } else if (rc == PMIX_OPERATION_SUCCEEDED) {
        rc = PMIX_SUCCESS;
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    return rc;
}

int phx_pmix_env_set(char ***env, int *n, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *kv = malloc(klen + strlen(value) + 2);
    if (!kv)
        return -1;
    sprintf(kv, "%s=%s", key, value);
    for (int i = 0; i < *n; i++)
        if (strncmp((*env)[i], key, klen) == 0 && (*env)[i][klen] == '=') {
            free((*env)[i]);
            (*env)[i] = kv;
            return 0;
        }
    char **m = realloc(*env, (size_t)(*n + 2) * sizeof(*m));
    if (!m) {
        free(kv);
        return -1;
    }
    m[(*n)++] = kv;
    m[*n] = NULL;
    *env = m;
    return 0;
}

/* "a,b,c" of the local ranks, or of the whole node list. */
static char *join_ints(const int *v, int n)
{
    size_t cap = (size_t)n * 12 + 1, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%d", i ? "," : "", v[i]);
    return s;
}

static char *node_list(const phx_pmix_map_t *map)
{
    size_t cap = 1;
    for (int i = 0; i < map->nnodes; i++)
        cap += strlen(map->nodes[i]) + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < map->nnodes; i++)
        len +=
            (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", map->nodes[i]);
    return s;
}

static char *ppn_list(const phx_pmix_map_t *map)
{
    size_t cap = 1;
    for (int i = 0; i < map->nnodes; i++)
        cap += (size_t)map->nranks[i] * 12 + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int i = 0; i < map->nnodes; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s", i ? ";" : "");
        for (int k = 0; k < map->nranks[i]; k++)
            len += (size_t)snprintf(s + len, cap - len, "%s%d", k ? "," : "",
                                    map->ranks[i][k]);
    }
    return s;
}

/* Where rank runs: its node and its index there; -1 if not in the map. */
static int locate(const phx_pmix_map_t *map, int rank, int *node, int *local)
{
    for (int i = 0; i < map->nnodes; i++)
        for (int k = 0; k < map->nranks[i]; k++)
            if (map->ranks[i][k] == rank) {
                *node = i;
                *local = k;
                return 0;
            }
    return -1;
}

static void load_u32(pmix_info_t *info, const char *key, uint32_t v)
{
    PMIX_INFO_LOAD(info, key, &v, PMIX_UINT32);
}

static void load_u16(pmix_info_t *info, const char *key, uint16_t v)
{
    PMIX_INFO_LOAD(info, key, &v, PMIX_UINT16);
}

/* Per-rank data: PMIX_PROC_DATA with PMIX_RANK first. */
static void load_proc(pmix_info_t *info, const phx_pmix_map_t *map, int node, int k)
{
    pmix_data_array_t *da;
    PMIX_DATA_ARRAY_CREATE(da, 6, PMIX_INFO);
    pmix_info_t *pi = da->array;
    pmix_rank_t r = (pmix_rank_t)map->ranks[node][k];
    PMIX_INFO_LOAD(&pi[0], PMIX_RANK, &r, PMIX_PROC_RANK);
    load_u16(&pi[1], PMIX_LOCAL_RANK, (uint16_t)k);
    load_u16(&pi[2], PMIX_NODE_RANK, (uint16_t)k);
    load_u32(&pi[3], PMIX_NODEID, (uint32_t)node);
    PMIX_INFO_LOAD(&pi[4], PMIX_HOSTNAME, map->nodes[node], PMIX_STRING);
    load_u32(&pi[5], PMIX_APPNUM, 0);
    PMIX_INFO_LOAD(info, PMIX_PROC_DATA, da, PMIX_DATA_ARRAY);
    PMIX_DATA_ARRAY_FREE(da);
}

int phx_pmix_step_register(phx_pmix_t *p, const phx_pmix_map_t *map, phx_error_t *err)
{
    if (map->node < 0 || map->node >= map->nnodes)
        return phx_error_set(err, "this node is not in the map of step %s",
                             map->nspace);
    if (phx_pmix_step_dir_make(p, map->nspace, map->uid, map->gid, err) < 0)
        return -1;
    char *nodes = node_list(map), *ppn = ppn_list(map), *nodemap = NULL,
         *procmap = NULL;
    int nlocal = map->nranks[map->node];
    char *peers = join_ints(map->ranks[map->node], nlocal);
    int rc = -1;
    pmix_info_t *info = NULL;
    size_t ninfo = 12 + (size_t)map->size;
    if (!nodes || !ppn || !peers) {
        phx_error_set(err, "out of memory");
        goto out;
    }
    if (PMIx_generate_regex(nodes, &nodemap) != PMIX_SUCCESS ||
        PMIx_generate_ppn(ppn, &procmap) != PMIX_SUCCESS) {
        phx_error_set(err, "could not make the node and process maps of step %s",
                      map->nspace);
        goto out;
    }
    PMIX_INFO_CREATE(info, ninfo);
    size_t i = 0;
    PMIX_INFO_LOAD(&info[i++], PMIX_NODE_MAP, nodemap, PMIX_STRING);
    PMIX_INFO_LOAD(&info[i++], PMIX_PROC_MAP, procmap, PMIX_STRING);
    PMIX_INFO_LOAD(&info[i++], PMIX_JOBID, map->nspace, PMIX_STRING);
    load_u32(&info[i++], PMIX_JOB_SIZE, (uint32_t)map->size);
    load_u32(&info[i++], PMIX_MAX_PROCS, (uint32_t)map->size);
    load_u32(&info[i++], PMIX_UNIV_SIZE, (uint32_t)map->size);
    load_u32(&info[i++], PMIX_NUM_NODES, (uint32_t)map->nnodes);
    load_u32(&info[i++], PMIX_APPNUM, 0);
    load_u32(&info[i++], PMIX_LOCAL_SIZE, (uint32_t)nlocal);
    PMIX_INFO_LOAD(&info[i++], PMIX_LOCAL_PEERS, peers, PMIX_STRING);
    pmix_rank_t ldr = (pmix_rank_t)map->ranks[map->node][0];
    PMIX_INFO_LOAD(&info[i++], PMIX_LOCALLDR, &ldr, PMIX_PROC_RANK);
    pmix_rank_t aldr = 0;
    PMIX_INFO_LOAD(&info[i++], PMIX_APPLDR, &aldr, PMIX_PROC_RANK);
    for (int n = 0; n < map->nnodes; n++)
        for (int k = 0; k < map->nranks[n]; k++)
            load_proc(&info[i++], map, n, k);
    sync_op_t s;
    sync_init(&s);
    pmix_status_t st = sync_wait(
        &s, PMIx_server_register_nspace(map->nspace, nlocal, info, i, sync_cb, &s));
    if (st != PMIX_SUCCESS) {
        phx_error_set(err, "could not register namespace %s: %s", map->nspace,
                      PMIx_Error_string(st));
        goto out;
    }
    for (int k = 0; k < nlocal; k++) {
        pmix_proc_t proc;
        PMIX_PROC_LOAD(&proc, map->nspace, (pmix_rank_t)map->ranks[map->node][k]);
        sync_init(&s);
        st = sync_wait(&s, PMIx_server_register_client(&proc, map->uid, map->gid, NULL,
                                                       sync_cb, &s));
        if (st != PMIX_SUCCESS) {
            phx_error_set(err, "could not register rank %d of %s: %s",
                          map->ranks[map->node][k], map->nspace, PMIx_Error_string(st));
            phx_pmix_step_deregister(p, map->nspace);
            goto out;
        }
    }
    if (phx_pmix_gate_step_add(map) < 0) {
        phx_error_set(err, "out of memory");
        phx_pmix_step_deregister(p, map->nspace);
        goto out;
    }
    rc = 0;
out:
    if (info)
        PMIX_INFO_FREE(info, ninfo);
    free(nodes);
    free(ppn);
    free(peers);
    free(nodemap);
    free(procmap);
    return rc;
}

static int envf(char ***env, int *n, const char *key, long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%ld", v);
    return phx_pmix_env_set(env, n, key, buf);
}

int phx_pmix_rank_env(phx_pmix_t *p, const phx_pmix_map_t *map, int rank, char ***env,
                      int *n, phx_error_t *err)
{
    int node, local;
    if (locate(map, rank, &node, &local) < 0)
        return phx_error_set(err, "rank %d is not in step %s", rank, map->nspace);
    pmix_proc_t proc;
    PMIX_PROC_LOAD(&proc, map->nspace, (pmix_rank_t)rank);
    if (!*env && !(*env = calloc(1, sizeof(char *))))
        return phx_error_set(err, "out of memory");
    pmix_status_t st = PMIx_server_setup_fork(&proc, env);
    if (st != PMIX_SUCCESS)
        return phx_error_set(err, "could not set up rank %d of %s: %s", rank,
                             map->nspace, PMIx_Error_string(st));
    for (*n = 0; (*env)[*n]; (*n)++)
        ;
    char dir[1400];
    if (phx_pmix_step_dir(p, map->nspace, dir, sizeof(dir)) < 0)
        return phx_error_set(err, "no step directory for namespace \"%s\"",
                             map->nspace);
    int nlocal = map->nranks[node];
    if (phx_pmix_env_set(env, n, "OMPI_MCA_schizo", "^orte") < 0 ||
        phx_pmix_env_set(env, n, "OMPI_MCA_btl_tcp_if_include", "lo") < 0 ||
        phx_pmix_env_set(env, n, "OMPI_MCA_btl_vader_backing_directory", dir) < 0 ||
        phx_pmix_env_set(env, n, "OMPI_MCA_orte_tmpdir_base", dir) < 0 ||
        (map->oversubscribed &&
         phx_pmix_env_set(env, n, "OMPI_MCA_mpi_yield_when_idle", "1") < 0) ||
        envf(env, n, "OMPI_COMM_WORLD_SIZE", map->size) < 0 ||
        envf(env, n, "OMPI_COMM_WORLD_RANK", rank) < 0 ||
        envf(env, n, "OMPI_COMM_WORLD_LOCAL_RANK", local) < 0 ||
        envf(env, n, "OMPI_COMM_WORLD_LOCAL_SIZE", nlocal) < 0 ||
        envf(env, n, "OMPI_COMM_WORLD_NODE_RANK", local) < 0 ||
        envf(env, n, "PHX_PROCID", rank) < 0 ||
        envf(env, n, "PHX_LOCALID", local) < 0 ||
        envf(env, n, "PHX_NODEID", node) < 0 ||
        envf(env, n, "PHX_NPROCS", map->size) < 0 ||
        envf(env, n, "PHX_STEP_NUM_NODES", map->nnodes) < 0 ||
        phx_pmix_env_set(env, n, "PHX_STEP_NSPACE", map->nspace) < 0 ||
        phx_pmix_env_set(env, n, "TMPDIR", dir) < 0)
        return phx_error_set(err, "out of memory");
    return 0;
}

void phx_pmix_step_deregister(phx_pmix_t *p, const char *nspace)
{
    phx_pmix_gate_step_remove(nspace);
    phx_pmix_drain(p);
    phx_pmix_pending_fail(p, nspace);
    sync_op_t s;
    sync_init(&s);
    PMIx_server_deregister_nspace(nspace, sync_cb, &s);
    pmix_status_t st = sync_wait(&s, PMIX_SUCCESS);
    if (st != PMIX_SUCCESS)
        phx_log_warnx("could not deregister namespace %s: %s", nspace,
                      PMIx_Error_string(st));
    phx_pmix_step_dir_remove(p, nspace);
}
