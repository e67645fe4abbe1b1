/* phx-agent: removal of the output folders of ended tasks (outputs.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemons/agent/outputs.h"
#include "lib/log.h"

static int remove_below(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR)
        return -1;
    if (depth >= PHX_OUTPUTS_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }
    /* A symbolic link swapped in since: ELOOP (or ENOTDIR), not followed. */
    int fd = openat(dirfd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int rc = 0, e = 0;
    /* Names removed while reading may hide others from readdir: read again
     * until a pass removes nothing. */
    for (bool again = true; again;) {
        again = false;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (remove_below(fd, de->d_name, depth + 1) == 0)
                again = true;
            else if (!e)
                e = errno;
        }
        if (again)
            rewinddir(d);
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        rc = -1;
        e = e ? e : errno;
    }
    if (rc < 0)
        errno = e;
    return rc;
}

int phx_outputs_remove_at(int dirfd, const char *name)
{
    return remove_below(dirfd, name, 0);
}

/* The newest ctime of the folder name and of its entries, or -1. */
static double newest_change(int dir_fd, const char *name)
{
    int fd = openat(dir_fd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    double newest = (double)st.st_ctim.tv_sec + (double)st.st_ctim.tv_nsec / 1e9;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return newest;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            double c = (double)st.st_ctim.tv_sec + (double)st.st_ctim.tv_nsec / 1e9;
            if (c > newest)
                newest = c;
        }
    }
    closedir(d);
    return newest;
}

int phx_outputs_sweep(int dir_fd, double now, double keep, phx_outputs_live_f live,
                      void *arg)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *key = de->d_name;
        struct stat st;
        if (key[0] == '.' || live(key, arg) ||
            fstatat(fd, key, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue; /* the agent makes only folders here */
        double changed = newest_change(fd, key);
        if (changed < 0 || now - changed < keep)
            continue;
        if (phx_outputs_remove_at(fd, key) == 0) {
            removed++;
            phx_log_info("removed the output folder of ended task %s", key);
        } else {
            phx_log_warn("could not remove the output folder of ended task %s", key);
        }
    }
    closedir(d);
    return removed;
}
