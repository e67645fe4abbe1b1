/* Step directories: each step's TMPDIR and OpenMPI session directory, one
 * per step on this node, owned by the step's user.
 *
 * They live in a base directory of this agent's own, made with a random
 * name (mkdtemp) on /dev/shm (OpenMPI's shared memory backing files go
 * there) and kept root's, mode 0711: users reach their step's directory
 * but cannot list the base or create anything in it.  A step directory
 * was once made straight in /dev/shm under a predictable name, and the
 * agent, as root, followed a user's symlink planted there (chown gave the
 * user any file) and removed trees by path (nftw: a directory swapped for
 * a symlink mid-walk turned root's removals anywhere).  Now nothing in a
 * user's tree is reached by a path: removal walks with openat, unlinkat
 * and O_NOFOLLOW relative to directories already open. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/rmtree.h"
#include "pmix/pmix_impl.h"

static void remove_at(int parent, const char *name, const char *top);

/* The bases of this node's agents that died without removing theirs (kill
 * -9): root's, 0711, named phx-<node>-XXXXXX, whose .agent names a pid
 * that is gone.  A live pid keeps its base (emulated agents of several
 * test clusters share a host; a recycled pid only delays the removal). */
static void remove_stale_bases(const char *dir, const char *prefix)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    size_t plen = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        if (strncmp(e->d_name, prefix, plen) != 0 || strlen(e->d_name) != plen + 6 ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 07777) != 0711)
            continue;
        char pidfile[300], text[32] = "";
        snprintf(pidfile, sizeof(pidfile), "%s/.agent", e->d_name);
        int fd = openat(dirfd(d), pidfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
        if (fd >= 0)
            close(fd);
        long pid = n > 0 ? strtol(text, NULL, 10) : 0;
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            phx_log_info("removing %s/%s, the step directories of agent pid %ld (gone)",
                         dir, e->d_name, pid);
            remove_at(dirfd(d), e->d_name, e->d_name);
        }
    }
    closedir(d);
}

int phx_pmix_stepbase_create(phx_pmix_t *p, phx_error_t *err)
{
    struct stat st;
    const char *base =
        stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : p->tmpdir;
    char node[64];
    size_t n = 0;
    for (const char *c = p->node; *c && n < sizeof(node) - 1; c++)
        node[n++] = *c == '/' ? '_' : *c;
    node[n] = '\0';
    int w = snprintf(p->stepbase, sizeof(p->stepbase), "%s/phx-%s-XXXXXX", base, node);
    if (w < 0 || (size_t)w >= sizeof(p->stepbase))
        return phx_error_set(err, "step directory base under \"%s\" is too long", base);
    if (!mkdtemp(p->stepbase)) {
        phx_error_set(err, "could not create a step directory base \"%s\": %s",
                      p->stepbase, strerror(errno));
        p->stepbase[0] = '\0';
        return -1;
    }
    if (chmod(p->stepbase, 0711) < 0) {
        phx_error_set(err, "could not chmod \"%s\": %s", p->stepbase, strerror(errno));
        rmdir(p->stepbase);
        p->stepbase[0] = '\0';
        return -1;
    }
    /* whose it is, for the next agent if this one is killed */
    char pidfile[1100], text[32];
    snprintf(pidfile, sizeof(pidfile), "%s/.agent", p->stepbase);
    int fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (fd < 0 || write(fd, text, (size_t)len) != len)
        phx_log_warn("could not write %s", pidfile);
    if (fd >= 0)
        close(fd);
    char prefix[80];
    snprintf(prefix, sizeof(prefix), "phx-%s-", node);
    remove_stale_bases(base, prefix);
    return 0;
}

int phx_pmix_step_dir(const phx_pmix_t *p, const char *nspace, char *buf, size_t len)
{
    if (!p->stepbase[0] || !*nspace || strchr(nspace, '/') ||
        strcmp(nspace, ".") == 0 || strcmp(nspace, "..") == 0)
        return -1;
    int w = snprintf(buf, len, "%s/%s", p->stepbase, nspace);
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

int phx_pmix_step_dir_make(phx_pmix_t *p, const char *nspace, uid_t uid, gid_t gid,
                           phx_error_t *err)
{
    char dir[1400];
    if (phx_pmix_step_dir(p, nspace, dir, sizeof(dir)) < 0)
        return phx_error_set(err, "no step directory for namespace \"%s\"", nspace);
    /* only root writes in the base: an existing one is a step's of ours
     * (a namespace used again), still checked */
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return phx_error_set(err, "could not create directory \"%s\": %s", dir,
                             strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return phx_error_set(err, "could not open directory \"%s\": %s", dir,
                             strerror(errno));
    int rc = 0;
    if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0)
        rc = phx_error_set(err, "could not give \"%s\" to uid %d: %s", dir, (int)uid,
                           strerror(errno));
    close(fd);
    return rc;
}

/* Remove name in the directory open as parent, a tree walked relative to
 * directories already open, never following a symlink. */
/* Remove name in the directory open as parent, a tree walked relative to
 * directories already open, never following a symlink (lib/rmtree.h). */
static void remove_at(int parent, const char *name, const char *top)
{
    if (phx_rmtree_at(parent, name) < 0)
        phx_log_warn("%s: could not remove \"%s\"", top, name);
}

void phx_pmix_step_dir_remove(phx_pmix_t *p, const char *nspace)
{
    char dir[1400];
    if (phx_pmix_step_dir(p, nspace, dir, sizeof(dir)) < 0)
        return;
    int base = open(p->stepbase, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (base < 0)
        return;
    remove_at(base, nspace, dir);
    close(base);
}

void phx_pmix_stepbase_remove(phx_pmix_t *p)
{
    if (!p->stepbase[0])
        return;
    char *slash = strrchr(p->stepbase, '/');
    int parent = -1;
    if (slash) {
        *slash = '\0';
        parent = open(p->stepbase, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
    }
    if (parent >= 0) {
        remove_at(parent, slash + 1, p->stepbase);
        close(parent);
    }
    p->stepbase[0] = '\0';
}
