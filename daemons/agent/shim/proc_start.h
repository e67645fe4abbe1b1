/* The start time of a process (/proc/<pid>/stat field 22, clock ticks since
 * boot), 0 when it is gone or a zombie: with its pid, what identifies a
 * process across pid reuse.  Header-only: phx-agent and phx-shim (static,
 * libc only) both use it. */
#ifndef PHX_AGENT_PROC_START_H
#define PHX_AGENT_PROC_START_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static inline unsigned long long phx_proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || !p[1] || !p[2])
        return 0;
    /* After "pid (comm)": state is field 3, starttime field 22. */
    if (p[2] == 'Z' || p[2] == 'X')
        return 0;
    p += 2;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

#endif
