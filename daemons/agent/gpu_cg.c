/* phx-agent: a task's v1 devices cgroup, denying the device files of the
 * node's GPUs that are not the task's (doc/agent.md, "GPUs").  Made before
 * the shim starts, joined by the shim with the task's other cgroups,
 * removed when the task ends.  Not pooled: only tasks with GPUs have one.
 * Its steps' ranks join it, or a child of it that denies more when a rank
 * sees only some of the task's GPUs (--gpus-per-task). */
#include <dirent.h>
#include <errno.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/task.h"
#include "lib/log.h"

/* Where the device files are looked up: "" (the machine's /proc and /sys),
 * or $PHX_GPU_SYSROOT, a fake tree for the tests. */
static const char *sysroot(void)
{
    const char *r = getenv("PHX_GPU_SYSROOT");
    return r ? r : "";
}

/* The v1 devices hierarchy's mount, looked up once; "" if none. */
static const char *devices_mount(void)
{
    static char path[256];
    static bool looked;
    if (looked)
        return path;
    looked = true;
    FILE *f = setmntent("/proc/self/mounts", "re");
    struct mntent *m;
    while (f && (m = getmntent(f)))
        if (strcmp(m->mnt_type, "cgroup") == 0 && hasmntopt(m, "devices")) {
            snprintf(path, sizeof(path), "%s", m->mnt_dir);
            break;
        }
    if (f)
        endmntent(f);
    return path;
}

/* <devices mount>/<cgroup_root>/<agent>/<key> into buf; -1 if none. */
static int gpu_cg_dir(const phx_task_t *t, char *buf, size_t len)
{
    const phx_cg_t *cg = t->a->cg;
    if (cg->mode != PHX_CG_V1 || !*devices_mount() ||
        snprintf(buf, len, "%s/%s/%s/%s", devices_mount(), cg->root, cg->agent,
                 t->key) >= (int)len)
        return -1;
    return 0;
}

int phx_task_gpu_cgroup(phx_task_t *t, phx_error_t *err)
{
    static bool said;
    char deny[PHX_GPU_DEV_MAX][24], dir[PHX_CG_PATH], rel[PHX_CG_PATH];
    free(t->gpu_cg);
    t->gpu_cg = NULL;
    if (!t->gpus)
        return 0;
    /* A task with all of the node's GPUs denies nothing itself, but its
     * cgroup is the parent of its ranks' (--gpus-per-task): made too.  None
     * only when no GPU of the node has a device file found. */
    int n = phx_gpu_deny_list(t->a->topo, t->gpus, sysroot(), deny, PHX_GPU_DEV_MAX);
    bool files = n > 0 || phx_gpu_deny_list(t->a->topo, NULL, sysroot(), deny,
                                            PHX_GPU_DEV_MAX) > 0;
    if (!files || gpu_cg_dir(t, dir, sizeof(dir)) < 0) {
        if (!said)
            phx_log_info("tasks' GPUs are named in their environment only: %s",
                         !files ? "no device file of a GPU of the node was found"
                                : "no cgroup v1 devices hierarchy");
        said = true;
        return 0;
    }
    const phx_cg_t *cg = t->a->cg;
    snprintf(rel, sizeof(rel), "%s/%s/%s", cg->root, cg->agent, t->key);
    if (phx_cg_mkdirs(devices_mount(), rel) < 0)
        return phx_error_set(err, "could not make the devices cgroup %s: %s", dir,
                             strerror(errno));
    for (int i = 0; i < n; i++) {
        char line[40];
        snprintf(line, sizeof(line), "c %.23s rwm", deny[i]);
        if (phx_cg_write(dir, "devices.deny", line) < 0) {
            int e = errno;
            rmdir(dir);
            return phx_error_set(err, "could not deny device %s in %s: %s", deny[i],
                                 dir, strerror(e));
        }
    }
    if (asprintf(&t->gpu_cg, "%s/cgroup.procs", dir) < 0) {
        t->gpu_cg = NULL;
        rmdir(dir);
        return phx_error_set(err, "out of memory");
    }
    return 0;
}

void phx_task_gpu_cgroup_remove(phx_task_t *t)
{
    char dir[PHX_CG_PATH];
    free(t->gpu_cg);
    t->gpu_cg = NULL;
    if (!t->gpus || gpu_cg_dir(t, dir, sizeof(dir)) < 0)
        return;
    DIR *d = opendir(dir); /* its steps' first */
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char sub[PHX_CG_PATH + 300];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        if (strncmp(e->d_name, "gpus-", 5) == 0 && rmdir(sub) < 0 && errno != ENOENT)
            phx_log_warn("task %s: could not remove the devices cgroup %s", t->label,
                         sub);
    }
    if (d)
        closedir(d);
    if (rmdir(dir) < 0 && errno != ENOENT)
        phx_log_warn("task %s: could not remove the devices cgroup %s", t->label, dir);
    /* The agent's folder and the root's, when no other task has one there. */
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = '\0';
        if (rmdir(dir) < 0)
            break;
    }
}

/* Made as at the launch, again: a folder found there (it should be) gets
 * its deny lines written again, not trusted as it is; one gone while the
 * agent was away, or never made (an older agent's task), is made, so that
 * the steps' ranks never see more than the task's GPUs.  One that cannot be
 * made is still named: its ranks then fail to join it and do not start. */
void phx_task_gpu_cgroup_adopt(phx_task_t *t)
{
    char dir[PHX_CG_PATH];
    phx_error_t err;
    if (phx_task_gpu_cgroup(t, &err) == 0)
        return;
    phx_log_warnx("task %s: %s: its steps' ranks will not start", t->label, err.text);
    if (gpu_cg_dir(t, dir, sizeof(dir)) == 0 &&
        asprintf(&t->gpu_cg, "%s/cgroup.procs", dir) < 0)
        t->gpu_cg = NULL;
}

/* The child of the task's devices cgroup for a rank that sees gpus:
 * <dir>/gpus-0_2, with the node's other GPUs denied (again: a write that
 * fails leaves no half-made child trusted later). */
static int rank_cg(const phx_task_t *t, const char *gpus, char *procs, size_t len,
                   phx_error_t *err)
{
    char deny[PHX_GPU_DEV_MAX][24], dir[PHX_CG_PATH], name[PHX_CG_PATH];
    if (gpu_cg_dir(t, dir, sizeof(dir)) < 0)
        return phx_error_set(err, "the task's devices cgroup is gone");
    size_t k = 0;
    for (const char *c = *gpus ? gpus : "none"; *c && k + 1 < sizeof(name); c++)
        name[k++] = *c == ',' ? '_' : *c;
    name[k] = '\0';
    size_t dl = strlen(dir);
    if (k + 1 >= sizeof(name) || dl + k + 7 >= sizeof(dir) ||
        snprintf(dir + dl, sizeof(dir) - dl, "/gpus-%s", name) >=
            (int)(sizeof(dir) - dl))
        return phx_error_set(err, "the devices cgroup path of GPUs %s is too long",
                             gpus);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return phx_error_set(err, "could not make the devices cgroup %s: %s", dir,
                             strerror(errno));
    int n = phx_gpu_deny_list(t->a->topo, gpus, sysroot(), deny, PHX_GPU_DEV_MAX);
    for (int i = 0; i < n; i++) {
        char line[40];
        snprintf(line, sizeof(line), "c %.23s rwm", deny[i]);
        if (phx_cg_write(dir, "devices.deny", line) < 0)
            return phx_error_set(err, "could not deny device %s in %s: %s", deny[i],
                                 dir, strerror(errno));
    }
    if (snprintf(procs, len, "%s/cgroup.procs", dir) >= (int)len)
        return phx_error_set(err, "the devices cgroup path of GPUs %s is too long",
                             gpus);
    return 0;
}

int phx_task_gpu_cg_rank(const phx_task_t *t, const char *gpus, char *procs, size_t len,
                         phx_error_t *err)
{
    procs[0] = '\0';
    if (!t->gpu_cg)
        return 0;
    if (!gpus || strcmp(gpus, t->gpus ? t->gpus : "") == 0) {
        if (snprintf(procs, len, "%s", t->gpu_cg) >= (int)len)
            return phx_error_set(err, "the devices cgroup path is too long");
        return 0;
    }
    return rank_cg(t, gpus, procs, len, err);
}
