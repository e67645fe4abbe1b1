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

int phx_rec_mkdir(const char *path, mode_t mode, phx_error_t *err)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
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
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int phx_rec_write(const char *dir, const char *name, const json_t *v, phx_error_t *err)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int)getpid());
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return phx_error_set(err, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(text);
        return phx_error_set(err, "could not create \"%s\": %s", tmp, strerror(errno));
    }
    size_t len = strlen(text), off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    free(text);
    if (rc < 0 || (sync_records && fsync(fd) < 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return phx_error_set(err, "could not write \"%s\": %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return phx_error_set(err, "could not rename \"%s\": %s", tmp, strerror(e));
    }
    if (fsync_dir(dir) < 0)
        return phx_error_set(err, "could not sync \"%s\": %s", dir, strerror(errno));
    return 0;
}

json_t *phx_rec_read(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return json_load_file(path, 0, NULL);
}

bool phx_rec_exists(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

int phx_rec_unlink(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int phx_rec_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            phx_rec_unlink(dir, de->d_name);
    closedir(d);
    if (rmdir(dir) < 0)
        return -1;
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
