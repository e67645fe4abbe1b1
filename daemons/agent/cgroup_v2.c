/* phx-agent: cgroup v2 (the unified hierarchy), used when its root offers
 * the cpuset and memory controllers.  Not exercised on the development
 * machine (its cgroup2 mount has no controllers); see doc/agent.md.
 * Its cgroups are not reused: v2 refuses rename(2) of a cgroup (EPERM). */
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"

static void dir_of(const phx_cg_t *cg, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s%s%s", cg->mounts[0].path, cg->root, cg->agent,
             id ? "/" : "", id ? id : "");
}

static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)); p += n)
        if ((p == text || p[-1] == ' ') &&
            (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
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
    while ((m = getmntent(f)))
        if (strcmp(m->mnt_type, "cgroup2") == 0 && cg->nmounts == 0) {
            snprintf(cg->mounts[0].ctrl, sizeof(cg->mounts[0].ctrl), "unified");
            snprintf(cg->mounts[0].path, sizeof(cg->mounts[0].path), "%s", m->mnt_dir);
            cg->nmounts = 1;
        }
    endmntent(f);
    if (cg->nmounts == 0)
        return phx_error_set(err, "no cgroup2 hierarchy mounted");
    char buf[PHX_CG_PATH + 32];
    if (phx_cg_read(cg->mounts[0].path, "cgroup.controllers", buf, sizeof(buf)) < 0)
        return phx_error_set(err, "could not read %s/cgroup.controllers: %s",
                             cg->mounts[0].path, strerror(errno));
    if (!has_word(buf, "cpuset") || !has_word(buf, "memory"))
        return phx_error_set(err, "%s lacks the cpuset and memory controllers",
                             cg->mounts[0].path);
    if (access(cg->mounts[0].path, W_OK) < 0)
        return phx_error_set(err, "%s is not writable: %s", cg->mounts[0].path,
                             strerror(errno));
    /* cgroup.kill exists in every cgroup but the root, from Linux 5.14. */
    char probe_dir[PHX_CG_PATH];
    snprintf(probe_dir, sizeof(probe_dir), "%s/%s", cg->mounts[0].path, cg->root);
    if (phx_cg_mkdirs(cg->mounts[0].path, cg->root) == 0) {
        snprintf(buf, sizeof(buf), "%s/cgroup.kill", probe_dir);
        cg->has_kill = access(buf, F_OK) == 0;
    }
    return 0;
}

/* Let the children of dir use cpuset and memory (required) and cpu.  Not
 * pids, which nothing limits or reads (an agent before this version enabled
 * it; it stays enabled where it was, harmless). */
static int enable_at(const char *dir)
{
    static const char *const ctrls[] = {"cpuset", "memory", "cpu"};
    char avail[1024], w[16];
    if (phx_cg_read(dir, "cgroup.controllers", avail, sizeof(avail)) < 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        snprintf(w, sizeof(w), "+%s", ctrls[i]);
        if (has_word(avail, ctrls[i]) &&
            phx_cg_write(dir, "cgroup.subtree_control", w) < 0 && i < 2)
            return -1;
    }
    return 0;
}

/* Enable the controllers at every level from the mount down to the agent's
 * folder, which holds no process itself ("no internal processes"). */
static int enable_subtree(const phx_cg_t *cg)
{
    char rel[520], dir[PHX_CG_PATH];
    snprintf(rel, sizeof(rel), "%s/%s", cg->root, cg->agent);
    if (phx_cg_mkdirs(cg->mounts[0].path, rel) < 0 || enable_at(cg->mounts[0].path) < 0)
        return -1;
    for (char *p = rel;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            snprintf(dir, sizeof(dir), "%s/%s", cg->mounts[0].path, rel);
            if (enable_at(dir) < 0)
                return -1;
            if (!(*p = c))
                break;
        }
    }
    return 0;
}

static int destroy(const phx_cg_t *cg, const char *id)
{
    char dir[PHX_CG_PATH];
    dir_of(cg, id, dir, sizeof(dir));
    return rmdir(dir) < 0 && errno != ENOENT ? -1 : 0;
}

static int create(phx_cg_t *cg, const char *id, bool reused, const phx_cg_set_t *was,
                  const char *cpus, const char *mems, long long memory,
                  phx_error_t *err)
{
    (void)reused; /* never: no pool in v2, whose cgroups cannot be renamed */
    (void)was;
    char dir[PHX_CG_PATH], num[32];
    if (enable_subtree(cg) < 0)
        return phx_error_set(err, "could not enable controllers under %s/%s: %s",
                             cg->mounts[0].path, cg->root, strerror(errno));
    dir_of(cg, id, dir, sizeof(dir));
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return phx_error_set(err, "could not create cgroup %s: %s", dir,
                             strerror(errno));
    snprintf(num, sizeof(num), "%lld", memory);
    const char *what = NULL, *value = NULL;
    if (phx_cg_write(dir, "cpuset.cpus", cpus) < 0)
        what = "cpuset.cpus", value = cpus;
    else if (phx_cg_write(dir, "cpuset.mems", mems) < 0)
        what = "cpuset.mems", value = mems;
    else if (memory > 0 && phx_cg_write(dir, "memory.max", num) < 0)
        what = "memory.max", value = num;
    if (what) {
        int e = errno;
        rmdir(dir);
        errno = e;
        return phx_error_set(err, "could not write \"%s\" to %s of cgroup %s: %s",
                             value, what, id, strerror(e));
    }
    if (memory > 0)
        phx_cg_write(dir, "memory.swap.max", "0");
    return 0;
}

static int join(const phx_cg_t *cg, const char *id, pid_t pid)
{
    char dir[PHX_CG_PATH], num[32];
    dir_of(cg, id, dir, sizeof(dir));
    snprintf(num, sizeof(num), "%d", (int)pid);
    return phx_cg_write(dir, "cgroup.procs", num);
}

static int procs_files(const phx_cg_t *cg, const char *id, char (*files)[PHX_CG_PATH],
                       int max)
{
    char dir[PHX_CG_PATH];
    dir_of(cg, id, dir, sizeof(dir));
    return max > 0 &&
                   snprintf(files[0], PHX_CG_PATH, "%s/cgroup.procs", dir) < PHX_CG_PATH
               ? 1
               : 0;
}

static void procs_path(const phx_cg_t *cg, const char *id, char *buf, size_t len)
{
    char dir[PHX_CG_PATH];
    dir_of(cg, id, dir, sizeof(dir));
    snprintf(buf, len, "%s/cgroup.procs", dir);
}

static int freeze(const phx_cg_t *cg, const char *id, bool frozen)
{
    char dir[PHX_CG_PATH];
    dir_of(cg, id, dir, sizeof(dir));
    return phx_cg_write(dir, "cgroup.freeze", frozen ? "1" : "0");
}

static long long field(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

static int is_frozen(const phx_cg_t *cg, const char *id)
{
    char dir[PHX_CG_PATH], buf[256];
    dir_of(cg, id, dir, sizeof(dir));
    if (phx_cg_read(dir, "cgroup.events", buf, sizeof(buf)) < 0)
        return -1;
    return field(buf, "frozen") == 1;
}

static int kill_all(const phx_cg_t *cg, const char *id)
{
    if (!cg->has_kill) {
        errno = ENOTSUP;
        return -1;
    }
    char dir[PHX_CG_PATH];
    dir_of(cg, id, dir, sizeof(dir));
    return phx_cg_write(dir, "cgroup.kill", "1");
}

static int usage(const phx_cg_t *cg, const char *id, const phx_cg_base_t *base,
                 phx_cg_usage_t *u)
{
    char dir[PHX_CG_PATH], buf[4096];
    (void)base; /* never reused */
    memset(u, 0, sizeof(*u));
    dir_of(cg, id, dir, sizeof(dir));
    if (phx_cg_read(dir, "cpu.stat", buf, sizeof(buf)) == 0) {
        long long user = field(buf, "user_usec"), sys = field(buf, "system_usec");
        if (user >= 0 && sys >= 0) {
            u->user_s = (double)user / 1e6;
            u->system_s = (double)sys / 1e6;
            u->have_cpu = true;
        }
    }
    if (phx_cg_read(dir, "memory.peak", buf, sizeof(buf)) == 0 && buf[0] >= '0' &&
        buf[0] <= '9') {
        u->max_rss = strtoull(buf, NULL, 10);
        u->have_rss = true;
    }
    if (phx_cg_read(dir, "memory.events", buf, sizeof(buf)) == 0) {
        long long kills = field(buf, "oom_kill");
        if (kills > 0)
            u->oom_kills = (uint64_t)kills;
    }
    return 0;
}

static char *allowed_mems(const phx_cg_t *cg)
{
    char dir[PHX_CG_PATH], buf[4096];
    dir_of(cg, NULL, dir, sizeof(dir));
    if (phx_cg_read(dir, "cpuset.mems.effective", buf, sizeof(buf)) < 0 &&
        phx_cg_read("/sys/devices/system/node", "online", buf, sizeof(buf)) < 0)
        snprintf(buf, sizeof(buf), "0");
    buf[strcspn(buf, "\n")] = '\0';
    return strdup(buf);
}

const phx_cg_ops_t phx_cg_v2_ops = {
    .probe = probe,
    .create = create,
    .join = join,
    .procs_files = procs_files,
    .procs_path = procs_path,
    .freeze = freeze,
    .frozen = is_frozen,
    .kill_all = kill_all,
    .usage = usage,
    .destroy = destroy,
    .allowed_mems = allowed_mems,
};
