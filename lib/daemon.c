#include "lib/daemon.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"

/* The file, then the overrides; *level from level_key. */
static phx_conf_t *conf_read(const phx_conf_key_t *schema, const char *file,
                             char *const *sets, int nsets, const char *level_key,
                             int *level, phx_error_t *err)
{
    phx_conf_t *conf = phx_conf_load(schema, file, err);
    if (!conf)
        return NULL;
    for (int i = 0; i < nsets; i++) {
        if (!sets[i] || phx_conf_set(conf, sets[i], err) < 0) {
            if (!sets[i])
                phx_error_set(err, "out of memory");
            phx_conf_destroy(conf);
            return NULL;
        }
    }
    *level = phx_log_level_parse(phx_conf_str(conf, level_key));
    if (*level < 0) {
        phx_error_set(err, "%s: unknown level \"%s\"", level_key,
                      phx_conf_str(conf, level_key));
        phx_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

phx_conf_t *phx_daemon_conf(const char *prog, const phx_conf_key_t *schema,
                            const char *file, char *const *sets, int nsets,
                            const char *level_key, bool verbose)
{
    phx_error_t err;
    int level;
    phx_conf_t *conf = conf_read(schema, file, sets, nsets, level_key, &level, &err);
    if (!conf) {
        fprintf(stderr, "%s: %s\n", prog, err.text);
        return NULL;
    }
    phx_log_set_level(verbose ? LOG_DEBUG : level);
    /* after the file is read: -c <(...) names an inherited descriptor */
    phx_daemon_close_inherited();
    return conf;
}

phx_conf_t *phx_daemon_conf_reread(const phx_conf_key_t *schema, const char *file,
                                   char *const *sets, int nsets, const char *level_key,
                                   phx_error_t *err)
{
    int level;
    return conf_read(schema, file, sets, nsets, level_key, &level, err);
}

struct changes {
    char applied[512], restart[512];
};

/* path appended to list, or "..." once it is full (room is kept for it) */
static void list_add(char *list, size_t size, const char *path)
{
    size_t n = strlen(list);
    if (n + strlen(path) + 8 < size)
        snprintf(list + n, size - n, "%s%s", n ? ", " : "", path);
    else if (!strstr(list, "..."))
        snprintf(list + n, size - n, "%s...", n ? ", " : "");
}

static void on_change(const char *path, bool reloadable, void *arg)
{
    struct changes *c = arg;
    if (reloadable)
        list_add(c->applied, sizeof(c->applied), path);
    else
        list_add(c->restart, sizeof(c->restart), path);
}

int phx_daemon_conf_apply(phx_conf_t *conf, phx_conf_t *fresh, const char *file,
                          const char *level_key, bool verbose)
{
    struct changes c = {{0}, {0}};
    int applied = phx_conf_take_reloadable(conf, fresh, on_change, &c);
    if (!verbose)
        phx_log_set_level(phx_log_level_parse(phx_conf_str(conf, level_key)));
    phx_log_notice("configuration %s reloaded: %s%s%s%s", file ? file : "(none)",
                   applied ? "applied " : "nothing changed that applies at once",
                   c.applied,
                   *c.restart ? "; changed but read at start only "
                                "(restart the daemon to apply): "
                              : "",
                   c.restart);
    return applied;
}

int phx_daemon_check_config(const phx_conf_t *conf)
{
    phx_conf_dump(conf, stdout);
    printf("configuration OK\n");
    return 0;
}

void phx_daemon_close_inherited(void)
{
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
    /* before Linux 5.9: every possible descriptor, with nothing that
     * allocates (this also runs in a child forked from a threaded agent) */
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 65536;
    for (long fd = 3; fd < max && fd < (1L << 20); fd++)
        close((int)fd);
}

int phx_daemon_uid_list(const phx_conf_t *conf, const char *key, uid_t **uids,
                        size_t *n, phx_error_t *err)
{
    size_t len = phx_conf_list_len(conf, key);
    uid_t *out = calloc(len ? len : 1, sizeof(*out));
    if (!out)
        return phx_error_set(err, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const char *name = phx_conf_list_get(conf, key, i);
        char *end;
        errno = 0;
        unsigned long v = strtoul(name, &end, 10);
        if (*name && !*end && !errno) {
            out[i] = (uid_t)v;
            continue;
        }
        struct passwd *pw = getpwnam(name);
        if (!pw) {
            free(out);
            return phx_error_set(err, "%s: unknown user \"%s\"", key, name);
        }
        out[i] = pw->pw_uid;
    }
    *uids = out;
    *n = len;
    return 0;
}
