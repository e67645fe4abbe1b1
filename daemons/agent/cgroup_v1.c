/* phx-agent: cgroup v1.  One directory per task in each of the cpuset,
 * memory, freezer (required) and cpuacct (when mounted) hierarchies.  The
 * freezer hierarchy is the one whose cgroup.procs lists the processes.
 *
 * Not the pids hierarchy: nothing sets pids.max or reads pids.current, and a
 * directory there cost a mkdir, an rmdir and a join (a write to its
 * cgroup.procs) per task.  Agents before this version made one; their
 * task cgroups left there are removed as their tasks end (retire_pids). */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"

static const char *const controllers[] = {"freezer", "cpuset", "memory", "cpuacct"};

static int mount_index(const phx_cg_t *cg, const char *ctrl)
{
    for (int i = 0; i < cg->nmounts; i++)
        if (strcmp(cg->mounts[i].ctrl, ctrl) == 0)
            return i;
    return -1;
}

/* The folder of task id (NULL: the agent's) in the hierarchy of ctrl:
 * <mount of ctrl>/<root>/<agent>[/<id>] into buf, *at AT_FDCWD; or, when
 * the agent's folder is open (open_bases) and at is not NULL, <id> relative
 * to it, *at its descriptor: the kernel then walks one component, not
 * seven (/sys/fs/cgroup/memory/phalanx/<agent>/<id>/...), for each of the
 * ~25 cgroup file operations of a task.  -1 if ctrl is not mounted. */
static int dir_of(const phx_cg_t *cg, const char *ctrl, const char *id, char *buf,
                  size_t len, int *at)
{
    int i = mount_index(cg, ctrl);
    if (i < 0)
        return -1;
    if (at && id && cg->mounts[i].fd >= 0) {
        *at = cg->mounts[i].fd;
        snprintf(buf, len, "%s", id);
        return 0;
    }
    if (at)
        *at = AT_FDCWD;
    snprintf(buf, len, "%s/%s/%s%s%s", cg->mounts[i].path, cg->root, cg->agent,
             id ? "/" : "", id ? id : "");
    return 0;
}

/* (Re)open the agent's folder in each hierarchy, where it exists: at start
 * (an earlier agent's, with tasks to adopt) and whenever create makes it
 * (it may have been removed meanwhile: a descriptor would then name a
 * folder that is gone). */
static void open_bases(phx_cg_t *cg)
{
    char dir[PHX_CG_PATH];
    for (int i = 0; i < cg->nmounts; i++) {
        if (cg->mounts[i].fd >= 0)
            close(cg->mounts[i].fd);
        snprintf(dir, sizeof(dir), "%s/%s/%s", cg->mounts[i].path, cg->root, cg->agent);
        cg->mounts[i].fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
}

static bool has_opt(const char *opts, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = opts; (p = strstr(p, name)); p += n)
        if ((p == opts || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static int probe(phx_cg_t *cg, phx_error_t *err)
{
    FILE *f = setmntent("/proc/self/mounts", "re");
    if (!f)
        return phx_error_set(err, "could not read /proc/self/mounts: %s",
                             strerror(errno));
    struct mntent *m;
    char pids[sizeof(cg->mounts[0].path)] = "";
    while ((m = getmntent(f))) {
        if (strcmp(m->mnt_type, "cgroup") != 0)
            continue;
        if (!*pids && has_opt(m->mnt_opts, "pids"))
            snprintf(pids, sizeof(pids), "%s", m->mnt_dir);
        for (size_t c = 0; c < sizeof(controllers) / sizeof(*controllers); c++) {
            if (!has_opt(m->mnt_opts, controllers[c]) ||
                mount_index(cg, controllers[c]) >= 0 || cg->nmounts >= PHX_CG_MAX_HIER)
                continue;
            snprintf(cg->mounts[cg->nmounts].ctrl, sizeof(cg->mounts[0].ctrl), "%s",
                     controllers[c]);
            snprintf(cg->mounts[cg->nmounts].path, sizeof(cg->mounts[0].path), "%s",
                     m->mnt_dir);
            cg->nmounts++;
        }
    }
    endmntent(f);
    /* The freezer first: phx_cg_list and procs_path read mounts[0]. */
    for (int r = 0; r < 3; r++) {
        int i = mount_index(cg, controllers[r]);
        if (i < 0)
            return phx_error_set(err, "no %s hierarchy mounted", controllers[r]);
        if (access(cg->mounts[i].path, W_OK) < 0)
            return phx_error_set(err, "%s is not writable: %s", cg->mounts[i].path,
                                 strerror(errno));
        if (r == 0 && i != 0) {
            __typeof__(cg->mounts[0]) tmp = cg->mounts[0];
            cg->mounts[0] = cg->mounts[i];
            cg->mounts[i] = tmp;
        }
    }
    /* The pids hierarchy on its own, with an older agent's folder in it. */
    for (int i = 0; *pids && i < cg->nmounts; i++)
        if (strcmp(cg->mounts[i].path, pids) == 0)
            *pids = '\0';
    char dir[PHX_CG_PATH];
    if (*pids &&
        snprintf(dir, sizeof(dir), "%s/%s/%s", pids, cg->root, cg->agent) <
            (int)sizeof(cg->retired) &&
        access(dir, F_OK) == 0)
        snprintf(cg->retired, sizeof(cg->retired), "%s", dir);
    open_bases(cg);
    return 0;
}

/* The cgroup an older agent made for task id in the pids hierarchy. */
static void retire_pids(const phx_cg_t *cg, const char *id)
{
    char dir[PHX_CG_PATH];
    if (*cg->retired &&
        snprintf(dir, sizeof(dir), "%s/%s", cg->retired, id) < (int)sizeof(dir))
        rmdir(dir);
}

/* A new cpuset child is empty: copy cpus and mems down from its parent. */
static int cpuset_inherit(const char *parent, const char *child)
{
    char buf[4096];
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        if (phx_cg_read(child, files[i], buf, sizeof(buf)) < 0)
            return -1;
        if (buf[0] != '\n' && buf[0] != '\0')
            continue;
        if (phx_cg_read(parent, files[i], buf, sizeof(buf)) < 0 ||
            phx_cg_write(child, files[i], buf) < 0)
            return -1;
    }
    return 0;
}

/* Create <root>/<agent> in the cpuset hierarchy with inherited cpus/mems. */
static int cpuset_base(const phx_cg_t *cg)
{
    int i = mount_index(cg, "cpuset");
    char rel[520], parent[PHX_CG_PATH], child[PHX_CG_PATH];
    snprintf(rel, sizeof(rel), "%s/%s", cg->root, cg->agent);
    if (phx_cg_mkdirs(cg->mounts[i].path, rel) < 0)
        return -1;
    snprintf(parent, sizeof(parent), "%s", cg->mounts[i].path);
    for (char *p = rel;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            snprintf(child, sizeof(child), "%s/%s", cg->mounts[i].path, rel);
            if (cpuset_inherit(parent, child) < 0)
                return -1;
            snprintf(parent, sizeof(parent), "%s", child);
            if (!(*p = c))
                break;
        }
    }
    return 0;
}

static int destroy(const phx_cg_t *cg, const char *id)
{
    int rc = 0;
    char dir[PHX_CG_PATH];
    int at;
    for (int i = 0; i < cg->nmounts; i++) {
        if (dir_of(cg, cg->mounts[i].ctrl, id, dir, sizeof(dir), &at) == 0 &&
            unlinkat(at, dir, AT_REMOVEDIR) < 0 && errno != ENOENT)
            rc = -1;
    }
    retire_pids(cg, id);
    return rc;
}

/* The memory limit of a new cgroup (memory > 0), or of a reused one, whose
 * limits are those of its last task (was, when known: nothing to write if
 * the same): memory.limit_in_bytes may not exceed
 * memory.memsw.limit_in_bytes, so a higher limit writes memsw first. */
static int memory_limit(int at, const char *dir, long long memory, bool reused,
                        const phx_cg_set_t *was, const char **what, char *num,
                        size_t len)
{
    snprintf(num, len, "%lld", memory > 0 ? memory : -1);
    *what = "memory.limit_in_bytes";
    if (!reused && memory <= 0)
        return 0;
    if (reused && was && was->cpus &&
        (was->memory > 0 ? was->memory : -1) == (memory > 0 ? memory : -1))
        return 0;
    if (reused && memory <= 0) {
        phx_cg_write_at(at, dir, "memory.memsw.limit_in_bytes", num);
        return phx_cg_write_at(at, dir, "memory.limit_in_bytes", num);
    }
    /* No swap for the task either, where the kernel accounts it. */
    if (phx_cg_write_at(at, dir, "memory.limit_in_bytes", num) < 0) {
        if (!reused || errno != EINVAL ||
            phx_cg_write_at(at, dir, "memory.memsw.limit_in_bytes", num) < 0)
            return -1;
        return phx_cg_write_at(at, dir, "memory.limit_in_bytes", num);
    }
    phx_cg_write_at(at, dir, "memory.memsw.limit_in_bytes", num);
    return 0;
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int create(phx_cg_t *cg, const char *id, bool reused, const phx_cg_set_t *was,
                  const char *cpus, const char *mems, long long memory,
                  phx_error_t *err)
{
    if (!reused)
        was = NULL;
    char dir[PHX_CG_PATH], rel[PHX_CG_PATH];
    if (!reused && cpuset_base(cg) < 0)
        return phx_error_set(err, "could not prepare the cpuset hierarchy: %s",
                             strerror(errno));
    for (int i = 0; !reused && i < cg->nmounts; i++) {
        snprintf(rel, sizeof(rel), "%s/%s/%s", cg->root, cg->agent, id);
        if (phx_cg_mkdirs(cg->mounts[i].path, rel) < 0) {
            int e = errno;
            destroy(cg, id);
            errno = e;
            return phx_error_set(err, "could not create cgroup %s/%s: %s",
                                 cg->mounts[i].path, rel, strerror(e));
        }
    }
    if (!reused)
        open_bases(cg);
    char num[32];
    const char *what = NULL, *value = NULL;
    int at;
    dir_of(cg, "cpuset", id, dir, sizeof(dir), &at);
    if (!same(was ? was->cpus : NULL, cpus) &&
        phx_cg_write_at(at, dir, "cpuset.cpus", cpus) < 0)
        what = "cpuset.cpus", value = cpus;
    else if (!same(was ? was->mems : NULL, mems) &&
             phx_cg_write_at(at, dir, "cpuset.mems", mems) < 0)
        what = "cpuset.mems", value = mems;
    if (!what) {
        dir_of(cg, "memory", id, dir, sizeof(dir), &at);
        if (memory_limit(at, dir, memory, reused, was, &what, num, sizeof(num)) < 0)
            value = num;
        else
            what = NULL;
    }
    if (what) {
        int e = errno;
        destroy(cg, id);
        errno = e;
        return phx_error_set(err, "could not write \"%s\" to %s of cgroup %s: %s",
                             value, what, id, strerror(e));
    }
    return 0;
}

/* A process joining by itself, single-threaded as a fork's or vfork's child
 * is, writes "0" to "tasks": that moves its one thread, all of it, and the
 * kernel then skips its global lock against every fork and exit of the
 * machine (cgroup_threadgroup_rwsem), which a pid in "cgroup.procs" takes:
 * under a stream of short tasks, the joins queued behind each other and
 * held up every fork and exit (doc/agent.md). */
static int join(const phx_cg_t *cg, const char *id, pid_t pid)
{
    char dir[PHX_CG_PATH], num[32];
    bool self = pid == getpid();
    snprintf(num, sizeof(num), "%d", self ? 0 : (int)pid);
    int at;
    for (int i = 0; i < cg->nmounts; i++) {
        dir_of(cg, cg->mounts[i].ctrl, id, dir, sizeof(dir), &at);
        if (phx_cg_write_at(at, dir, self ? "tasks" : "cgroup.procs", num) < 0)
            return -1;
    }
    return 0;
}

/* The files the task's process, the shim's single-threaded vfork child,
 * writes "0" to: "tasks", as join above. */

static int procs_files(const phx_cg_t *cg, const char *id, char (*files)[PHX_CG_PATH],
                       int max)
{
    char dir[PHX_CG_PATH];
    int n = 0;
    for (int i = 0; i < cg->nmounts && n < max; i++) {
        dir_of(cg, cg->mounts[i].ctrl, id, dir, sizeof(dir), NULL); /* for the shim */
        if (snprintf(files[n], PHX_CG_PATH, "%s/tasks", dir) < PHX_CG_PATH)
            n++;
    }
    return n;
}

static void procs_path(const phx_cg_t *cg, const char *id, char *buf, size_t len)
{
    char dir[PHX_CG_PATH];
    dir_of(cg, "freezer", id, dir, sizeof(dir), NULL);
    snprintf(buf, len, "%s/cgroup.procs", dir);
}

static int procs_open(const phx_cg_t *cg, const char *id)
{
    char dir[PHX_CG_PATH], path[PHX_CG_PATH + 16];
    int at;
    dir_of(cg, "freezer", id, dir, sizeof(dir), &at);
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    return openat(at, path, O_RDONLY | O_CLOEXEC);
}

static int freeze(const phx_cg_t *cg, const char *id, bool frozen)
{
    char dir[PHX_CG_PATH];
    int at;
    dir_of(cg, "freezer", id, dir, sizeof(dir), &at);
    return phx_cg_write_at(at, dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
}

static int is_frozen(const phx_cg_t *cg, const char *id)
{
    char dir[PHX_CG_PATH], buf[64];
    int at;
    dir_of(cg, "freezer", id, dir, sizeof(dir), &at);
    if (phx_cg_read_at(at, dir, "freezer.state", buf, sizeof(buf)) < 0)
        return -1;
    return strncmp(buf, "FROZEN", 6) == 0;
}

static int kill_all(const phx_cg_t *cg, const char *id)
{
    (void)cg;
    (void)id;
    errno = ENOTSUP;
    return -1;
}

/* "key value" lines: the value of key, or -1. */
static long long field(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

/* a - b, or 0 if b is larger (a counter cannot go back: never) */
static uint64_t less(long long a, uint64_t b)
{
    return a > 0 && (uint64_t)a > b ? (uint64_t)a - b : 0;
}

static int usage(const phx_cg_t *cg, const char *id, const phx_cg_base_t *base,
                 phx_cg_usage_t *u)
{
    static const phx_cg_base_t none;
    char dir[PHX_CG_PATH], buf[4096];
    memset(u, 0, sizeof(*u));
    if (!base)
        base = &none;
    int at;
    if (dir_of(cg, "cpuacct", id, dir, sizeof(dir), &at) == 0 &&
        phx_cg_read_at(at, dir, "cpuacct.stat", buf, sizeof(buf)) == 0) {
        long hz = sysconf(_SC_CLK_TCK);
        long long user = field(buf, "user"), sys = field(buf, "system");
        if (user >= 0 && sys >= 0 && hz > 0) {
            u->user_s = (double)less(user, base->user) / (double)hz;
            u->system_s = (double)less(sys, base->system) / (double)hz;
            u->have_cpu = true;
        }
    }
    dir_of(cg, "memory", id, dir, sizeof(dir), &at);
    if (phx_cg_read_at(at, dir, "memory.max_usage_in_bytes", buf, sizeof(buf)) == 0 &&
        buf[0] >= '0' && buf[0] <= '9') {
        u->max_rss = strtoull(buf, NULL, 10);
        u->have_rss = true;
    }
    if (phx_cg_read_at(at, dir, "memory.oom_control", buf, sizeof(buf)) == 0) {
        u->oom_kills = less(field(buf, "oom_kill"), base->oom_kills);
        if (u->oom_kills == 0 && field(buf, "under_oom") > 0)
            u->oom_kills = 1;
    }
    return 0;
}

/* Rename the cgroups of from to to in every hierarchy, or none. */
static int rename_all(const phx_cg_t *cg, const char *from, const char *to)
{
    char a[PHX_CG_PATH], b[PHX_CG_PATH];
    int at, bt;
    for (int i = 0; i < cg->nmounts; i++) {
        dir_of(cg, cg->mounts[i].ctrl, from, a, sizeof(a), &at);
        dir_of(cg, cg->mounts[i].ctrl, to, b, sizeof(b), &bt);
        if (renameat(at, a, bt, b) == 0)
            continue;
        int e = errno;
        while (i-- > 0) {
            dir_of(cg, cg->mounts[i].ctrl, from, a, sizeof(a), &at);
            dir_of(cg, cg->mounts[i].ctrl, to, b, sizeof(b), &bt);
            renameat(bt, b, at, a);
        }
        errno = e;
        return -1;
    }
    return 0;
}

/* A cgroup is reused when its task left nothing in it: no process in any
 * hierarchy (a process may only be moved by root, but may be), thawed, and
 * at most 64 pages charged to it (page cache, tmpfs, anonymous memory, as
 * memory.stat counts them): 64 pages is the batch in which the kernel
 * charges a memory cgroup (MEMCG_CHARGE_BATCH), so the next task's peak,
 * which moves by such steps, is no less exact than in a new cgroup, and
 * its limit has as much room.  More (a task that wrote more than 256 KiB
 * to disk files, its output for one) and the cgroup is removed instead:
 * memory.force_empty would cost more than a new cgroup (0.5 ms of CPU for
 * one holding nothing but the per-CPU charge caches, measured) and evict
 * files that other tasks read, the job's program for one.  The per-CPU
 * charge caches the task leaves (up to 64 pages on each CPU it ran on),
 * counted in usage_in_bytes, are used up by the next task's first charges,
 * as a new cgroup's first charge makes one: the peak of `sh -c true` is
 * 512 KiB in either.  The peak is reset (to that); the limits are
 * rewritten by create. */
static int pool_put(const phx_cg_t *cg, const char *id, const char *name, bool idle)
{
    char dir[PHX_CG_PATH], buf[4096];
    int at;
    /* mounts[0] is the freezer's (probe): with idle, read just now, and
     * thawed as it came (new, or pooled so) since nothing froze it. */
    for (int i = idle ? 1 : 0; i < cg->nmounts; i++) {
        dir_of(cg, cg->mounts[i].ctrl, id, dir, sizeof(dir), &at);
        if (phx_cg_read_at(at, dir, "cgroup.procs", buf, sizeof(buf)) < 0 || *buf)
            return -1;
    }
    dir_of(cg, "freezer", id, dir, sizeof(dir), &at);
    if (!idle && (phx_cg_read_at(at, dir, "freezer.state", buf, sizeof(buf)) < 0 ||
                  strcmp(buf, "THAWED\n") != 0))
        return -1;
    dir_of(cg, "memory", id, dir, sizeof(dir), &at);
    if (phx_cg_read_at(at, dir, "memory.stat", buf, sizeof(buf)) < 0)
        return -1;
    long long cache = field(buf, "cache"), rss = field(buf, "rss");
    long long swap = field(buf, "swap"), page = sysconf(_SC_PAGESIZE);
    if (cache < 0 || rss < 0 || cache + rss + (swap > 0 ? swap : 0) > 64 * page ||
        phx_cg_write_at(at, dir, "memory.max_usage_in_bytes", "0") < 0)
        return -1;
    if (rename_all(cg, id, name) < 0)
        return -1;
    retire_pids(cg, id);
    return 0;
}

static int pool_take(const phx_cg_t *cg, const char *name, const char *id,
                     phx_cg_base_t *base)
{
    char dir[PHX_CG_PATH], buf[4096];
    if (rename_all(cg, name, id) < 0)
        return -1;
    memset(base, 0, sizeof(*base));
    int at;
    if (dir_of(cg, "cpuacct", id, dir, sizeof(dir), &at) == 0 &&
        phx_cg_read_at(at, dir, "cpuacct.stat", buf, sizeof(buf)) == 0) {
        long long user = field(buf, "user"), sys = field(buf, "system");
        base->user = user > 0 ? (uint64_t)user : 0;
        base->system = sys > 0 ? (uint64_t)sys : 0;
    }
    dir_of(cg, "memory", id, dir, sizeof(dir), &at);
    if (phx_cg_read_at(at, dir, "memory.oom_control", buf, sizeof(buf)) == 0) {
        long long kills = field(buf, "oom_kill");
        base->oom_kills = kills > 0 ? (uint64_t)kills : 0;
    }
    return 0;
}

static char *allowed_mems(const phx_cg_t *cg)
{
    char buf[4096];
    int i = mount_index(cg, "cpuset");
    if (phx_cg_read(cg->mounts[i].path, "cpuset.effective_mems", buf, sizeof(buf)) <
            0 &&
        phx_cg_read(cg->mounts[i].path, "cpuset.mems", buf, sizeof(buf)) < 0)
        return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    return strdup(buf);
}

const phx_cg_ops_t phx_cg_v1_ops = {
    .probe = probe,
    .create = create,
    .join = join,
    .procs_files = procs_files,
    .procs_path = procs_path,
    .procs_open = procs_open,
    .freeze = freeze,
    .frozen = is_frozen,
    .kill_all = kill_all,
    .usage = usage,
    .destroy = destroy,
    .pool_put = pool_put,
    .pool_take = pool_take,
    .allowed_mems = allowed_mems,
};
