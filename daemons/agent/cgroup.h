/* phx-agent: one cgroup per task, under a per-agent subtree:
 *
 *   v1: <mount of ctrl>/<agent.cgroup_root>/<agent name>/<task key>
 *       for ctrl in cpuset, memory, freezer (required) and cpuacct
 *   v2: <cgroup2 mount>/<agent.cgroup_root>/<agent name>/<task key>
 *       with cpuset, memory (required) and cpu enabled in subtree_control
 *
 * No pids controller: nothing limits or reads a task's number of processes,
 * and in v1 its hierarchy cost a mkdir, an rmdir and a join per task.
 *
 * v1 cgroups are reused (a pool): a task's cgroups, empty once it ended,
 * are reset and renamed (rename(2), v1 only, within their parent) to
 * ".pool-<n>", then renamed to the key of a later task, in place of a mkdir
 * and an rmdir in each hierarchy.  At most PHX_CG_POOL_MAX per agent; the
 * counters a cgroup cannot reset are read when it is taken (phx_cg_base_t)
 * and subtracted from its new task's usage.  Keys never begin with ".",
 * which phx_cg_list skips.
 *
 * The flavour is detected once at start (phx_cg_detect).  Mode NONE means
 * no usable cgroup: tasks are only bound with hwloc. */
#ifndef PHX_AGENT_CGROUP_H
#define PHX_AGENT_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"

typedef enum phx_cg_mode {
    PHX_CG_NONE,
    PHX_CG_V1,
    PHX_CG_V2,
} phx_cg_mode_t;

typedef struct phx_cg_usage {
    double user_s, system_s;
    bool have_cpu;
    uint64_t max_rss; /* bytes */
    bool have_rss;
    uint64_t oom_kills; /* OOM kills inside the cgroup */
} phx_cg_usage_t;

/* What a reused cgroup had counted before its task, in the flavour's raw
 * units (v1: cpuacct.stat USER_HZ ticks, memory.oom_control oom_kill): all
 * zero for a new cgroup. */
typedef struct phx_cg_base {
    uint64_t user, system;
    uint64_t oom_kills;
} phx_cg_base_t;

/* What create wrote to a task's cgroups: a reused cgroup keeps them, so
 * that the next create writes only what differs (cpuset writes are among
 * the dearest cgroup operations).  Strings malloc'd; NULL: not known. */
typedef struct phx_cg_set {
    char *cpus, *mems;
    long long memory;
} phx_cg_set_t;

void phx_cg_set_clear(phx_cg_set_t *set);

typedef struct phx_cg phx_cg_t;

#define PHX_CG_POOL_MAX 64 /* reusable cgroups kept per agent */
#define PHX_CG_MAX_HIER 6
#define PHX_CG_PATH     1200 /* mount + root + agent + task key + file */

/* Flavour operations, one table per cgroup version (cgroup_v1.c, cgroup_v2.c). */
typedef struct phx_cg_ops {
    /* Detect: fill cg's mounts; 0 if usable, -1 with err saying why not. */
    int (*probe)(phx_cg_t *cg, phx_error_t *err);
    /* Make the task's cgroups (reused: they exist, taken from the pool;
     * was: what they hold, or NULL) and write its cpus, mems and memory
     * limit; on failure none is left. */
    int (*create)(phx_cg_t *cg, const char *id, bool reused, const phx_cg_set_t *was,
                  const char *cpus, const char *mems, long long memory,
                  phx_error_t *err);
    /* Move pid into every hierarchy of the task (async-signal-safe enough
     * for a forked child: open, write, close).  pid the caller's own: v1
     * moves the calling thread only ("0" to "tasks"), so the caller must be
     * single-threaded, as a fork's child is; never a threaded process. */
    int (*join)(const phx_cg_t *cg, const char *id, pid_t pid);
    /* The files a single-threaded process writes "0" to, to join the
     * task's cgroups by itself (one per hierarchy: v1's "tasks", v2's
     * "cgroup.procs"): their number, at most max. */
    int (*procs_files)(const phx_cg_t *cg, const char *id, char (*files)[PHX_CG_PATH],
                       int max);
    /* Path of the task's cgroup.procs that lists every process. */
    void (*procs_path)(const phx_cg_t *cg, const char *id, char *buf, size_t len);
    /* That file opened for reading (NULL: open procs_path). */
    int (*procs_open)(const phx_cg_t *cg, const char *id);
    /* Freeze (1) or thaw (0); frozen() is 1 once frozen, 0 if not yet. */
    int (*freeze)(const phx_cg_t *cg, const char *id, bool frozen);
    int (*frozen)(const phx_cg_t *cg, const char *id);
    /* Kill every process at once (v2 cgroup.kill); -1 with ENOTSUP if absent. */
    int (*kill_all)(const phx_cg_t *cg, const char *id);
    /* What the task used: the counters less base (NULL: none). */
    int (*usage)(const phx_cg_t *cg, const char *id, const phx_cg_base_t *base,
                 phx_cg_usage_t *u);
    int (*destroy)(const phx_cg_t *cg, const char *id);
    /* Reuse, NULL where the flavour cannot rename a cgroup (v2).  put:
     * if no process is left in any hierarchy and nothing needs a reclaim,
     * reset what the next task must not inherit and rename the cgroups of id
     * to name; -1 if not (nothing renamed); idle: the caller has just
     * read the freezer's cgroup.procs empty and never froze the cgroup
     * (neither is read again).  take: rename name to id and read the
     * counters it keeps in base; -1 if not (nothing renamed). */
    int (*pool_put)(const phx_cg_t *cg, const char *id, const char *name, bool idle);
    int (*pool_take)(const phx_cg_t *cg, const char *name, const char *id,
                     phx_cg_base_t *base);
    /* The memory nodes a child may use, list format (caller frees). */
    char *(*allowed_mems)(const phx_cg_t *cg);
} phx_cg_ops_t;

struct phx_cg {
    phx_cg_mode_t mode;
    const phx_cg_ops_t *ops;
    char root[256];  /* agent.cgroup_root */
    char agent[256]; /* agent name */
    /* v1: one mount per controller, NULL name ends; v2: mounts[0]. */
    struct {
        char ctrl[16];
        char path[256];
        int fd; /* v1: <path>/<root>/<agent>, O_PATH, or -1 (cgroup_v1.c) */
    } mounts[PHX_CG_MAX_HIER];
    int nmounts;
    bool has_kill; /* v2 cgroup.kill */
    /* v1: <pids mount>/<root>/<agent>, when an agent before this version
     * left task cgroups there (it made one per task): each is removed as
     * its task ends, the empty ones at start (phx_cg_retire), "" if none. */
    char retired[PHX_CG_PATH];
    /* Reusable cgroups, ".pool-<n>" for n in pool[], the last put first
     * taken; pool_next numbers the next one put. */
    unsigned pool[PHX_CG_POOL_MAX];
    phx_cg_set_t pool_set[PHX_CG_POOL_MAX]; /* what each holds */
    int npool;
    unsigned pool_next;
    /* ops->allowed_mems, read once (phx_cg_allowed_mems) */
    char *allowed_mems;
};

extern const phx_cg_ops_t phx_cg_v1_ops;
extern const phx_cg_ops_t phx_cg_v2_ops;

/* prefer: "auto", "v1", "v2" or "none".  NULL with err on a bad preference
 * or when a forced flavour is not usable. */
phx_cg_t *phx_cg_detect(const char *prefer, const char *root, const char *agent,
                        phx_error_t *err);
void phx_cg_destroy(phx_cg_t *cg);
/* The memory nodes tasks may use (ops->allowed_mems), read at the first
 * call and taken as fixed for the agent's life, like its PUs; NULL in mode
 * NONE or if unreadable (then read again next time).  Owned by cg. */
const char *phx_cg_allowed_mems(phx_cg_t *cg);
const char *phx_cg_mode_name(phx_cg_mode_t mode);

/* Pids listed in the task's cgroup.procs: count (≥ 0) or -1. */
int phx_cg_pids(const phx_cg_t *cg, const char *id, pid_t *pids, int max);
/* Send sig to every process of the task; the number signalled or -1. */
int phx_cg_signal(const phx_cg_t *cg, const char *id, int sig);
/* Ids of the task cgroups that exist under the agent's subtree. */
int phx_cg_list(const phx_cg_t *cg, char ***ids, int *n);

/* Name the task's cgroups id: 1 if a pooled one was renamed (*base: its
 * counters then, *was: what it holds, the caller's to clear), 0 if none
 * (create makes them; *base and *was zeroed). */
int phx_cg_take(phx_cg_t *cg, const char *id, phx_cg_base_t *base, phx_cg_set_t *was);
/* The task's cgroups are done with: pooled when reusable and the pool has
 * room, else removed; 0, or -1 if they could not be removed.  cpus, mems,
 * memory: what create wrote, to be kept with a pooled cgroup (cpus NULL:
 * not known).  idle: as pool_put's (false: checked). */
int phx_cg_release(phx_cg_t *cg, const char *id, const char *cpus, const char *mems,
                   long long memory, bool idle);
/* Remove the pooled cgroups, also those a previous agent left (at start
 * and at a clean stop). */
void phx_cg_pool_clear(phx_cg_t *cg);

/* Remove what an older agent left in a hierarchy this one no longer uses
 * (cg->retired): the empty task cgroups and, once empty, the folder.  At
 * start, after recovery. */
void phx_cg_retire(phx_cg_t *cg);

/* Remove the agent's folder (and the root) where empty: at a clean stop. */
void phx_cg_remove_base(const phx_cg_t *cg);

/* Shared by the flavours. */
int phx_cg_write(const char *dir, const char *file, const char *value);
/* Read a small file into buf (NUL-terminated, trailing newline kept). */
int phx_cg_read(const char *dir, const char *file, char *buf, size_t len);
/* The same with dir relative to the directory at (or AT_FDCWD). */
int phx_cg_write_at(int at, const char *dir, const char *file, const char *value);
int phx_cg_read_at(int at, const char *dir, const char *file, char *buf, size_t len);
/* mkdir -p below base (base must exist). */
int phx_cg_mkdirs(const char *base, const char *rel);

#endif
