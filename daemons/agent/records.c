/* phx-agent: small durable files of the task records, and list helpers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemons/agent/task.h"

/* Folders kept open (phx_rec_set_base): a path below one is opened
 * relative to it, so that the kernel walks one or two components instead
 * of the whole path (/run/phalanx/agent/<key>/status) for each of the ~20
 * file operations of a task's records: that walk was a tenth of the agent's
 * CPU under bench_batch (perf: link_path_walk). */
static struct {
    char path[PATH_MAX];
    size_t len;
    int fd;
} bases[2] = {{.fd = -1}, {.fd = -1}};

int phx_rec_set_base(const char *dir)
{
    for (size_t i = 0; i < sizeof(bases) / sizeof(*bases); i++) {
        if (bases[i].fd >= 0 && strcmp(bases[i].path, dir) != 0)
            continue;
        if (bases[i].fd >= 0)
            close(bases[i].fd);
        bases[i].fd = -1;
        if (strlen(dir) >= sizeof(bases[i].path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        snprintf(bases[i].path, sizeof(bases[i].path), "%s", dir);
        bases[i].len = strlen(dir);
        bases[i].fd = fd;
        return 0;
    }
    errno = ENOSPC;
    return -1;
}

void phx_rec_clear_bases(void)
{
    for (size_t i = 0; i < sizeof(bases) / sizeof(*bases); i++) {
        if (bases[i].fd >= 0)
            close(bases[i].fd);
        bases[i].fd = -1;
    }
}

/* path (absolute, or as given) as a directory fd and a path relative to it. */
static int at(const char *path, const char **rel)
{
    for (size_t i = 0; i < sizeof(bases) / sizeof(*bases); i++)
        if (bases[i].fd >= 0 && strncmp(path, bases[i].path, bases[i].len) == 0 &&
            path[bases[i].len] == '/' && path[bases[i].len + 1]) {
            *rel = path + bases[i].len + 1;
            return bases[i].fd;
        }
    *rel = path;
    return AT_FDCWD;
}

int phx_rec_mkdir(const char *path, mode_t mode, phx_error_t *err)
{
    const char *rel;
    int fd = at(path, &rel);
    if (mkdirat(fd, rel, mode) < 0 && errno != EEXIST)
        return phx_error_set(err, "could not create directory \"%s\": %s", path,
                             strerror(errno));
    return 0;
}

int phx_rec_mkdirs(const char *path, mode_t mode, phx_error_t *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return phx_error_set(err, "path \"%s\" is too long", path);
    for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return phx_error_set(err, "could not create directory \"%s\": %s", buf,
                                 strerror(errno));
        *p = '/';
    }
    return phx_rec_mkdir(buf, mode, err);
}

/* Records are written to a temporary file and renamed into place, so a
 * crash of the agent (kill -9) never leaves a torn one.  fsync also
 * protects them against a crash of the node, at some milliseconds per
 * record: opt-in (agent.sync_records), since the node's tasks die with it
 * anyway and the master then reports them lost. */
static bool sync_records;

void phx_rec_set_sync(bool on)
{
    sync_records = on;
}

bool phx_rec_get_sync(void)
{
    return sync_records;
}

static int fsync_dir(const char *dir)
{
    if (!sync_records)
        return 0;
    const char *rel;
    int base = at(dir, &rel);
    int fd = openat(base, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static pid_t self(void)
{
    static pid_t pid; /* the agent does not fork (posix_spawn execs at once) */
    if (!pid)
        pid = getpid();
    return pid;
}

static int write_all(int fd, const char *text, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

int phx_rec_write(const char *dir, const char *name, const json_t *v, phx_error_t *err)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
    const char *rel;
    int base = at(dir, &rel);
    snprintf(path, sizeof(path), "%s/%s", rel, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", rel, name, (int)self());
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return phx_error_set(err, "out of memory");
    int fd = openat(base, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(text);
        return phx_error_set(err, "could not create \"%s\": %s", tmp, strerror(errno));
    }
    int rc = write_all(fd, text, strlen(text));
    free(text);
    if (rc < 0 || (sync_records && fsync(fd) < 0)) {
        int e = errno;
        close(fd);
        unlinkat(base, tmp, 0);
        errno = e;
        return phx_error_set(err, "could not write \"%s\": %s", tmp, strerror(e));
    }
    close(fd);
    if (renameat(base, tmp, base, path) < 0) {
        int e = errno;
        unlinkat(base, tmp, 0);
        errno = e;
        return phx_error_set(err, "could not rename \"%s\": %s", tmp, strerror(e));
    }
    if (fsync_dir(dir) < 0)
        return phx_error_set(err, "could not sync \"%s\": %s", dir, strerror(errno));
    return 0;
}

/* A record made for the first time (the task's folder is new, or the file
 * cannot exist yet): written in place, no temporary file and no rename (on
 * tmpfs a rename was a tenth of the agent's CPU per task, perf).  A crash
 * while writing it leaves an empty or cut file, which no reader takes for
 * a record (JSON that does not parse is no record: phx_rec_read), the same
 * as a crash just before: nothing was done yet on the strength of it (a
 * task record is written before its shim starts, a status before it is
 * sent).  If name exists already, replaced atomically (phx_rec_write). */
int phx_rec_create(const char *dir, const char *name, const json_t *v, phx_error_t *err)
{
    char path[PATH_MAX + 64];
    const char *rel;
    int base = at(dir, &rel);
    snprintf(path, sizeof(path), "%s/%s", rel, name);
    int fd = openat(base, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return phx_rec_write(dir, name, v, err);
    if (fd < 0)
        return phx_error_set(err, "could not create \"%s/%s\": %s", dir, name,
                             strerror(errno));
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = text ? write_all(fd, text, strlen(text)) : (errno = ENOMEM, -1);
    free(text);
    if (rc < 0 || (sync_records && fsync(fd) < 0)) {
        int e = errno;
        close(fd);
        unlinkat(base, path, 0);
        return phx_error_set(err, "could not write \"%s/%s\": %s", dir, name,
                             strerror(e));
    }
    close(fd);
    if (fsync_dir(dir) < 0)
        return phx_error_set(err, "could not sync \"%s\": %s", dir, strerror(errno));
    return 0;
}

/* A record is a few hundred bytes: one read, no stdio (json_load_file's
 * fopen costs an fstat and a second read). */
json_t *phx_rec_read(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    const char *rel;
    int base = at(dir, &rel);
    snprintf(path, sizeof(path), "%s/%s", rel, name);
    int fd = openat(base, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char small[8192], *buf = small;
    size_t cap = sizeof(small), len = 0;
    for (;;) {
        if (len == cap) {
            char *m = realloc(buf == small ? NULL : buf, cap * 2);
            if (!m)
                break;
            if (buf == small)
                memcpy(m, small, len);
            buf = m;
            cap *= 2;
        }
        size_t want = cap - len;
        ssize_t n = read(fd, buf + len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if ((size_t)n < want) /* a regular file: its end, no read to learn it */
            break;
    }
    close(fd);
    json_t *v = json_loadb(buf, len, 0, NULL);
    if (buf != small)
        free(buf);
    return v;
}

bool phx_rec_exists(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    const char *rel;
    int base = at(dir, &rel);
    snprintf(path, sizeof(path), "%s/%s", rel, name);
    return faccessat(base, path, F_OK, 0) == 0;
}

int phx_rec_unlink(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    const char *rel;
    int base = at(dir, &rel);
    snprintf(path, sizeof(path), "%s/%s", rel, name);
    return unlinkat(base, path, 0) < 0 && errno != ENOENT ? -1 : 0;
}

int phx_rec_remove_dir(const char *dir)
{
    /* The records every task that ran has (recover.c), "task" first (a
     * folder without it is what is left of an ended task: recover.c removes
     * it), then the folder; a listing only if something else is left: a
     * killed or warned task's "kill" or "warned" (rare: not tried by name,
     * two failed lookups per task), a temporary file of a crash. */
    static const char *const names[] = {"task", "status", "shim", "exit"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        phx_rec_unlink(dir, names[i]);
    const char *rel;
    int base = at(dir, &rel);
    if (unlinkat(base, rel, AT_REMOVEDIR) < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTEMPTY && errno != EEXIST)
            return -1;
        DIR *d = opendir(dir);
        if (!d)
            return errno == ENOENT ? 0 : -1;
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                phx_rec_unlink(dir, de->d_name);
        closedir(d);
        if (unlinkat(base, rel, AT_REMOVEDIR) < 0)
            return -1;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        fsync_dir(parent);
    }
    return 0;
}

double phx_rec_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

int phx_rec_parse_list(const char *list, int max, int **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    int cap = 0, count = 0, *out = NULL;
    const char *p = list;
    if (!*p)
        goto bad;
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9')
            goto bad;
        long lo = strtol(p, &end, 10), hi = lo;
        p = end;
        if (*p == '-') {
            if (p[1] < '0' || p[1] > '9')
                goto bad;
            hi = strtol(p + 1, &end, 10);
            p = end;
        }
        if (lo < 0 || hi < lo || hi >= max)
            goto bad;
        for (long i = lo; i <= hi; i++) {
            if (count == cap) {
                cap = cap ? 2 * cap : 16;
                int *m = realloc(out, (size_t)cap * sizeof(*m));
                if (!m)
                    goto bad;
                out = m;
            }
            out[count++] = (int)i;
        }
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    qsort(out, (size_t)count, sizeof(*out), cmp_int);
    for (int i = 1; i < count; i++)
        if (out[i] == out[i - 1])
            goto bad;
    *ids = out;
    *n = count;
    return 0;
bad:
    free(out);
    errno = EINVAL;
    return -1;
}

char *phx_rec_format_list(const int *ids, int n)
{
    size_t cap = (size_t)n * 24 + 1, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && ids[j + 1] == ids[j] + 1)
            j++;
        len += (size_t)snprintf(s + len, cap - len, "%s%d", len ? "," : "", ids[i]);
        if (j > i)
            len += (size_t)snprintf(s + len, cap - len, "-%d", ids[j]);
        i = j + 1;
    }
    return s;
}
