#include "tests/unit/support/paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int phx_test_dir_up(int up, char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return -1;
    exe[n] = '\0';
    for (int i = 0; i < up; i++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    return snprintf(buf, len, "%s", exe) < (int)len ? 0 : -1;
}

int phx_test_repo_dir(char *buf, size_t len)
{
    const char *src = getenv("PHX_SRC");
    if (src && *src)
        return snprintf(buf, len, "%s", src) < (int)len ? 0 : -1;
    return phx_test_dir_up(4, buf, len);
}
