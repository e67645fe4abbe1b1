#include "tests/unit/support/pgtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGTEST_MAX 8

static phx_test_pg_t *started[PGTEST_MAX];

/* Highest /usr/lib/postgresql/<version>/bin with an initdb, or $PHX_PG_BINDIR. */
static int find_bindir(char *buf, size_t len)
{
    const char *env = getenv("PHX_PG_BINDIR");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return 0;
    }
    DIR *d = opendir("/usr/lib/postgresql");
    if (!d)
        return -1;
    int best = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[512];
        int v = atoi(de->d_name);
        snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/initdb", de->d_name);
        if (v > best && access(path, X_OK) == 0)
            best = v;
    }
    closedir(d);
    if (best < 0)
        return -1;
    snprintf(buf, len, "/usr/lib/postgresql/%d/bin", best);
    return 0;
}

/* Run argv as the postgres user (when root) with output to dir/log; wait. */
static int run_as_postgres(const phx_test_pg_t *pg, const char *log, char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", pg->dir, log);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int devnull = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (devnull >= 0)
            dup2(devnull, 0);
        if (geteuid() == 0) {
            struct passwd *pw = getpwnam("postgres");
            if (!pw || initgroups("postgres", pw->pw_gid) < 0 ||
                setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                _exit(126);
            setenv("HOME", pw->pw_dir, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void show_log(const phx_test_pg_t *pg, const char *log)
{
    char path[256], line[512];
    snprintf(path, sizeof(path), "%s/%s", pg->dir, log);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "pgtest: %s: %s", log, line);
    fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void stop_server(const phx_test_pg_t *pg);

/* A child that outlives a crashed test: it waits for EOF on a pipe whose
 * write end only the test holds, then stops the server and removes the
 * directory, unless told "done" first. */
static void start_watchdog(phx_test_pg_t *pg)
{
    int fds[2];
    pg->watchdog_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[1]);
        setsid(); /* out of the test's process group and its signals */
        char c;
        ssize_t n;
        while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR)
            ;
        if (n <= 0) {
            stop_server(pg);
            nftw(pg->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        }
        _exit(0);
    }
    close(fds[0]);
    pg->watchdog_fd = fds[1];
    pg->watchdog_pid = pid;
}

static void stop_all_at_exit(void)
{
    for (int i = 0; i < PGTEST_MAX; i++)
        if (started[i])
            phx_test_pg_stop(started[i]);
}

int phx_test_pg_start(phx_test_pg_t *pg, const char *const *settings)
{
    static bool registered;
    memset(pg, 0, sizeof(*pg));
    pg->watchdog_fd = -1;
    pg->port = 5432; /* the socket lives in our private directory */
    if (find_bindir(pg->bindir, sizeof(pg->bindir)) < 0) {
        fprintf(stderr, "pgtest: no PostgreSQL server under /usr/lib/postgresql\n");
        return -1;
    }
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/phx-pg-XXXXXX");
    if (!mkdtemp(pg->dir)) {
        perror("pgtest: mkdtemp");
        return -1;
    }
    struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
    if (geteuid() == 0 && (!pw || chown(pg->dir, pw->pw_uid, pw->pw_gid) < 0)) {
        fprintf(stderr, "pgtest: could not give %s to the postgres user\n", pg->dir);
        goto error;
    }
    if (!registered) {
        atexit(stop_all_at_exit);
        registered = true;
    }
    for (int i = 0; i < PGTEST_MAX; i++) {
        if (!started[i]) {
            started[i] = pg;
            break;
        }
    }
    pg->running = true; /* from here on, stop removes the directory */

    char initdb[320], pg_ctl[320], data[160];
    snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bindir);
    snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", pg->bindir);
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    char *const init_argv[] = {initdb,  "-D",         data,        "-A",
                               "trust", "-U",         "postgres",  "-E",
                               "UTF8",  "--locale=C", "--no-sync", NULL};
    if (run_as_postgres(pg, "initdb.log", init_argv) < 0) {
        fprintf(stderr, "pgtest: initdb failed\n");
        show_log(pg, "initdb.log");
        goto error;
    }
    char opts[2048];
    int off =
        snprintf(opts, sizeof(opts), "-k %s -p %d -c listen_addresses='' -c fsync=off",
                 pg->dir, pg->port);
    for (int i = 0; settings && settings[i]; i++)
        off += snprintf(opts + off, sizeof(opts) - (size_t)off, " -c %s", settings[i]);
    char logfile[160];
    snprintf(logfile, sizeof(logfile), "%s/postgres.log", pg->dir);
    char *const start_argv[] = {pg_ctl, "-D", data, "-l", logfile, "-o",
                                opts,   "-w", "-t", "60", "start", NULL};
    start_watchdog(pg);
    if (run_as_postgres(pg, "pg_ctl.log", start_argv) < 0) {
        fprintf(stderr, "pgtest: postgres did not start\n");
        show_log(pg, "pg_ctl.log");
        show_log(pg, "postgres.log");
        goto error;
    }
    return 0;
error:
    phx_test_pg_stop(pg);
    return -1;
}

int phx_test_pg_createdb(phx_test_pg_t *pg, const char *name, char *dsn, size_t len)
{
    char createdb[320], port[16];
    snprintf(createdb, sizeof(createdb), "%s/createdb", pg->bindir);
    snprintf(port, sizeof(port), "%d", pg->port);
    char *const argv[] = {createdb, "-h",       pg->dir,      "-p", port,
                          "-U",     "postgres", (char *)name, NULL};
    if (run_as_postgres(pg, "createdb.log", argv) < 0) {
        fprintf(stderr, "pgtest: could not create database %s\n", name);
        show_log(pg, "createdb.log");
        return -1;
    }
    snprintf(dsn, len, "host=%s port=%d dbname=%s user=postgres", pg->dir, pg->port,
             name);
    return 0;
}

static void stop_server(const phx_test_pg_t *pg)
{
    char pg_ctl[320], data[160], pid_file[192];
    snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", pg->bindir);
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(pid_file, sizeof(pid_file), "%s/postmaster.pid", data);
    struct stat st;
    if (stat(pid_file, &st) == 0) {
        char *const argv[] = {pg_ctl,      "-D", data,   "-m",
                              "immediate", "-w", "stop", NULL};
        if (run_as_postgres(pg, "pg_ctl.log", argv) < 0)
            fprintf(stderr, "pgtest: could not stop postgres in %s\n", pg->dir);
    }
}

void phx_test_pg_stop(phx_test_pg_t *pg)
{
    for (int i = 0; i < PGTEST_MAX; i++)
        if (started[i] == pg)
            started[i] = NULL;
    if (!pg->running)
        return;
    pg->running = false;
    stop_server(pg);
    nftw(pg->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (pg->watchdog_fd >= 0) {
        if (write(pg->watchdog_fd, "d", 1) != 1)
            perror("pgtest: watchdog");
        close(pg->watchdog_fd);
        pg->watchdog_fd = -1;
        waitpid(pg->watchdog_pid, NULL, 0);
    }
}
