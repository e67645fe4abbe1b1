/* phx-agent: cgroup detection and what both versions share (see cgroup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "lib/log.h"

const char *phx_cg_mode_name(phx_cg_mode_t mode)
{
    switch (mode) {
    case PHX_CG_V1: return "v1";
    case PHX_CG_V2: return "v2";
    default: return "none";
    }
}

static bool name_ok(const char *s)
{
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (*s == '/')
            return false;
    return true;
}

phx_cg_t *phx_cg_detect(const char *prefer, const char *root, const char *agent,
                        phx_error_t *err)
{
    bool any = strcmp(prefer, "auto") == 0;
    if (!any && strcmp(prefer, "v1") && strcmp(prefer, "v2") &&
        strcmp(prefer, "none")) {
        phx_error_set(err, "agent.cgroup must be auto, v1, v2 or none, not \"%s\"",
                      prefer);
        errno = EINVAL;
        return NULL;
    }
    /* The root may have levels ("slurm/phalanx") but no "." or ".." parts. */
    if (!*root || root[0] == '/' || strstr(root, "..") || strlen(root) >= 256 ||
        !name_ok(agent) || strlen(agent) >= 256) {
        phx_error_set(err, "agent.cgroup_root \"%s\" must be a relative path", root);
        errno = EINVAL;
        return NULL;
    }
    phx_cg_t *cg = calloc(1, sizeof(*cg));
    if (!cg) {
        phx_error_set(err, "out of memory");
        return NULL;
    }
    for (int i = 0; i < PHX_CG_MAX_HIER; i++)
        cg->mounts[i].fd = -1;
    snprintf(cg->root, sizeof(cg->root), "%s", root);
    snprintf(cg->agent, sizeof(cg->agent), "%s", agent);
    if (strcmp(prefer, "none") == 0)
        return cg;
    static const struct {
        const char *name;
        phx_cg_mode_t mode;
        const phx_cg_ops_t *ops;
    } order[] = {{"v2", PHX_CG_V2, &phx_cg_v2_ops}, {"v1", PHX_CG_V1, &phx_cg_v1_ops}};
    char why[2][PHX_ERROR_TEXT_MAX] = {"", ""};
    for (size_t i = 0; i < 2; i++) {
        if (!any && strcmp(prefer, order[i].name) != 0)
            continue;
        phx_error_t e;
        cg->nmounts = 0;
        if (order[i].ops->probe(cg, &e) == 0) {
            cg->mode = order[i].mode;
            cg->ops = order[i].ops;
            return cg;
        }
        snprintf(why[i], sizeof(why[i]), "%s", e.text);
        if (!any) {
            phx_error_set(err, "cgroup %s is not usable: %s", prefer, e.text);
            free(cg);
            errno = ENOTSUP;
            return NULL;
        }
    }
    cg->nmounts = 0;
    phx_log_warnx("no usable cgroup (v2: %s; v1: %s): tasks are only bound with hwloc, "
                  "without memory limits or reliable killing of their process trees",
                  why[0], why[1]);
    return cg;
}

void phx_cg_destroy(phx_cg_t *cg)
{
    int e = errno;
    if (cg) {
        free(cg->allowed_mems);
        for (int i = 0; i < cg->npool; i++)
            phx_cg_set_clear(&cg->pool_set[i]);
        for (int i = 0; i < PHX_CG_MAX_HIER; i++)
            if (cg->mounts[i].fd >= 0)
                close(cg->mounts[i].fd);
    }
    free(cg);
    errno = e;
}

const char *phx_cg_allowed_mems(phx_cg_t *cg)
{
    if (!cg->allowed_mems && cg->mode != PHX_CG_NONE)
        cg->allowed_mems = cg->ops->allowed_mems(cg);
    return cg->allowed_mems;
}

int phx_cg_write(const char *dir, const char *file, const char *value)
{
    return phx_cg_write_at(AT_FDCWD, dir, file, value);
}

int phx_cg_read(const char *dir, const char *file, char *buf, size_t len)
{
    return phx_cg_read_at(AT_FDCWD, dir, file, buf, len);
}

int phx_cg_write_at(int at, const char *dir, const char *file, const char *value)
{
    char path[PHX_CG_PATH];
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(at, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    int e = errno;
    close(fd);
    if (n != (ssize_t)len) {
        errno = n < 0 ? e : EIO;
        return -1;
    }
    return 0;
}

int phx_cg_read_at(int at, const char *dir, const char *file, char *buf, size_t len)
{
    char path[PHX_CG_PATH];
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(at, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* The files read so (one value, or lines made by one show function)
     * come whole in the first read when they fit: a shorter read than
     * asked is the end, no second read to learn it (cgroup.procs, a list,
     * is read whole by phx_cg_pids; here only whether it is empty). */
    size_t got = 0;
    while (got + 1 < len) {
        size_t want = len - 1 - got;
        ssize_t n = read(fd, buf + got, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if ((size_t)n < want)
            break;
    }
    buf[got] = '\0';
    close(fd);
    return 0;
}

int phx_cg_mkdirs(const char *base, const char *rel)
{
    char path[PHX_CG_PATH];
    if (snprintf(path, sizeof(path), "%s/%s", base, rel) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + strlen(base) + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return -1;
            if (!(*p = c))
                break;
        }
    }
    return 0;
}

int phx_cg_pids(const phx_cg_t *cg, const char *id, pid_t *pids, int max)
{
    if (cg->mode == PHX_CG_NONE)
        return 0;
    int fd;
    if (cg->ops->procs_open) {
        fd = cg->ops->procs_open(cg, id);
    } else {
        char path[PHX_CG_PATH];
        cg->ops->procs_path(cg, id, path, sizeof(path));
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* Read and parsed in chunks, no stdio: mostly one empty read. */
    char buf[4096];
    int n = 0;
    long p = 0;
    bool in = false;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t k = 0; k < r && n < max; k++) {
            if (buf[k] >= '0' && buf[k] <= '9') {
                p = p * 10 + (buf[k] - '0');
                in = true;
            } else if (in) {
                pids[n++] = (pid_t)p;
                p = 0;
                in = false;
            }
        }
    }
    if (in && n < max)
        pids[n++] = (pid_t)p;
    close(fd);
    return n;
}

int phx_cg_signal(const phx_cg_t *cg, const char *id, int sig)
{
    pid_t pids[4096];
    int n = phx_cg_pids(cg, id, pids, 4096);
    for (int i = 0; i < n; i++)
        kill(pids[i], sig);
    return n;
}

int phx_cg_list(const phx_cg_t *cg, char ***ids, int *n)
{
    *ids = NULL;
    *n = 0;
    if (cg->mode == PHX_CG_NONE)
        return 0;
    char dir[PHX_CG_PATH];
    snprintf(dir, sizeof(dir), "%s/%s/%s", cg->mounts[0].path, cg->root, cg->agent);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int cap = 0;
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **m = realloc(*ids, (size_t)cap * sizeof(*m));
            if (!m)
                break;
            *ids = m;
        }
        if (((*ids)[*n] = strdup(de->d_name)))
            (*n)++;
    }
    closedir(d);
    return 0;
}

static void pool_name(char *buf, size_t len, unsigned n)
{
    snprintf(buf, len, ".pool-%u", n);
}

void phx_cg_set_clear(phx_cg_set_t *set)
{
    free(set->cpus);
    free(set->mems);
    memset(set, 0, sizeof(*set));
}

int phx_cg_take(phx_cg_t *cg, const char *id, phx_cg_base_t *base, phx_cg_set_t *was)
{
    memset(base, 0, sizeof(*base));
    memset(was, 0, sizeof(*was));
    if (cg->mode == PHX_CG_NONE || !cg->ops->pool_take)
        return 0;
    char name[32];
    while (cg->npool > 0) {
        int k = --cg->npool;
        pool_name(name, sizeof(name), cg->pool[k]);
        *was = cg->pool_set[k]; /* the caller's now */
        memset(&cg->pool_set[k], 0, sizeof(cg->pool_set[k]));
        if (cg->ops->pool_take(cg, name, id, base) == 0)
            return 1;
        phx_log_warn("could not reuse cgroup %s for %s, removed", name, id);
        cg->ops->destroy(cg, name);
        memset(base, 0, sizeof(*base));
        phx_cg_set_clear(was);
    }
    return 0;
}

int phx_cg_release(phx_cg_t *cg, const char *id, const char *cpus, const char *mems,
                   long long memory, bool idle)
{
    if (cg->mode == PHX_CG_NONE)
        return 0;
    if (cg->ops->pool_put && cg->npool < PHX_CG_POOL_MAX) {
        char name[32];
        unsigned n = cg->pool_next++; /* never again, even if put fails */
        pool_name(name, sizeof(name), n);
        if (cg->ops->pool_put(cg, id, name, idle) == 0) {
            phx_cg_set_t *set = &cg->pool_set[cg->npool];
            memset(set, 0, sizeof(*set));
            if (cpus && mems &&
                (!(set->cpus = strdup(cpus)) || !(set->mems = strdup(mems))))
                phx_cg_set_clear(set); /* not known: all written next time */
            set->memory = memory;
            cg->pool[cg->npool++] = n;
            return 0;
        }
    }
    return cg->ops->destroy(cg, id);
}

void phx_cg_pool_clear(phx_cg_t *cg)
{
    for (int i = 0; i < cg->npool; i++)
        phx_cg_set_clear(&cg->pool_set[i]);
    cg->npool = 0;
    if (cg->mode == PHX_CG_NONE)
        return;
    char dir[PHX_CG_PATH], sub[PHX_CG_PATH];
    for (int i = 0; i < cg->nmounts; i++) {
        snprintf(dir, sizeof(dir), "%s/%s/%s", cg->mounts[i].path, cg->root, cg->agent);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_type == DT_DIR && strncmp(de->d_name, ".pool-", 6) == 0 &&
                snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) <
                    (int)sizeof(sub) &&
                rmdir(sub) < 0)
                phx_log_warn("could not remove the pooled cgroup %s", sub);
        closedir(d);
    }
}

/* rmdir dir and its parent (the shared root, when this was its last agent). */
static int remove_folder(const char *dir)
{
    char parent[PHX_CG_PATH];
    if (rmdir(dir) < 0)
        return -1;
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        rmdir(parent);
    }
    return 0;
}

void phx_cg_retire(phx_cg_t *cg)
{
    if (cg->mode == PHX_CG_NONE || !*cg->retired)
        return;
    DIR *d = opendir(cg->retired);
    if (d) {
        struct dirent *de;
        char dir[PHX_CG_PATH];
        while ((de = readdir(d)))
            if (de->d_type == DT_DIR && de->d_name[0] != '.' &&
                snprintf(dir, sizeof(dir), "%s/%s", cg->retired, de->d_name) <
                    (int)sizeof(dir))
                rmdir(dir); /* fails while a task runs in it */
        closedir(d);
    }
    if (remove_folder(cg->retired) == 0 || errno == ENOENT)
        *cg->retired = '\0';
}

void phx_cg_remove_base(const phx_cg_t *cg)
{
    char dir[PHX_CG_PATH];
    if (*cg->retired)
        remove_folder(cg->retired);
    for (int i = 0; i < cg->nmounts; i++) {
        snprintf(dir, sizeof(dir), "%s/%s/%s", cg->mounts[i].path, cg->root, cg->agent);
        remove_folder(dir); /* fails while tasks are there, for the next agent */
    }
}
