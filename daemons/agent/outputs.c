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
#include "lib/rmtree.h"

int phx_outputs_remove_at(int dirfd, const char *name)
{
    return phx_rmtree_at(dirfd, name);
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

/* What an earlier sweep could not remove (a tree too deep, a process of
 * the user's still writing from inside it) is tried again: all of .trash
 * goes, and is made anew when a folder needs it. */
static void empty_trash(int dir_fd)
{
    if (phx_rmtree_at(dir_fd, ".trash") < 0)
        phx_log_warn("could not empty .trash of the task outputs");
}

int phx_outputs_sweep(int dir_fd, double now, double keep, phx_outputs_live_f live,
                      void *arg)
{
    empty_trash(dir_fd);
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
        /* out of its user's reach first (.trash is root's, 0700): a process
         * of theirs could otherwise keep adding files while it goes */
        int where = fd, trash = -1;
        if ((mkdirat(fd, ".trash", 0700) == 0 || errno == EEXIST) &&
            (trash = openat(fd, ".trash",
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
            fstat(trash, &st) == 0 && st.st_uid == 0 && (st.st_mode & 077) == 0 &&
            renameat(fd, key, trash, key) == 0)
            where = trash;
        if (phx_outputs_remove_at(where, key) == 0) {
            removed++;
            phx_log_info("removed the output folder of ended task %s", key);
        } else {
            phx_log_warn("could not remove the output folder of ended task %s", key);
        }
        if (trash >= 0)
            close(trash);
    }
    closedir(d);
    return removed;
}
