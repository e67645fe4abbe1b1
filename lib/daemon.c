#include "lib/daemon.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"

phx_conf_t *phx_daemon_conf(const char *prog, const phx_conf_key_t *schema,
                            const char *file, char *const *sets, int nsets,
                            const char *level_key, bool verbose)
{
    phx_error_t err;
    phx_conf_t *conf = phx_conf_load(schema, file, &err);
    if (!conf) {
        fprintf(stderr, "%s: %s\n", prog, err.text);
        return NULL;
    }
    for (int i = 0; i < nsets; i++) {
        if (!sets[i] || phx_conf_set(conf, sets[i], &err) < 0) {
            fprintf(stderr, "%s: %s\n", prog, sets[i] ? err.text : "out of memory");
            phx_conf_destroy(conf);
            return NULL;
        }
    }
    int level = phx_log_level_parse(phx_conf_str(conf, level_key));
    if (level < 0) {
        fprintf(stderr, "%s: %s: unknown level \"%s\"\n", prog, level_key,
                phx_conf_str(conf, level_key));
        phx_conf_destroy(conf);
        return NULL;
    }
    phx_log_set_level(verbose ? LOG_DEBUG : level);
    /* after the file is read: -c <(...) names an inherited descriptor */
    phx_daemon_close_inherited();
    return conf;
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
    /* before Linux 5.9: what /proc lists (closing while reading it would
     * close the listing's own descriptor) */
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int fds[1024], n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 1024;) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d))
            fds[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}
