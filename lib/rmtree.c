#include "lib/rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

void (*phx_rmtree_race_hook)(int parent, const char *name);

static int remove_below(int parent, const char *name, int depth)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    if (depth >= PHX_RMTREE_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }
    int first = 0;
    for (int pass = 0; pass < PHX_RMTREE_PASSES; pass++) {
        if (phx_rmtree_race_hook)
            phx_rmtree_race_hook(parent, name);
        /* a link swapped in since: ELOOP or ENOTDIR, not followed; the next
         * pass unlinks it */
        int fd = openat(parent, name,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            if (errno == ENOENT)
                return 0;
            if ((errno == ELOOP || errno == ENOTDIR) && unlinkat(parent, name, 0) == 0)
                return 0;
            return -1;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        bool progress = false;
        for (struct dirent *de; (de = readdir(d));) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (remove_below(dirfd(d), de->d_name, depth + 1) == 0)
                progress = true;
            else if (!first)
                first = errno;
        }
        closedir(d);
        if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return 0;
        if (errno != ENOTEMPTY && errno != EEXIST)
            return -1;
        /* again only if names came or hid from readdir while it removed;
         * a part that cannot go is not tried again (nor, below it, again
         * and again: that would be exponential in the depth) */
        if (!progress || first)
            break;
    }
    errno = first ? first : ENOTEMPTY;
    return -1;
}

int phx_rmtree_at(int parent, const char *name)
{
    return remove_below(parent, name, 0);
}
