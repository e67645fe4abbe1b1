#include "tests/unit/support/mungetest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int write_key(const char *path)
{
    unsigned char key[1024];
    int rnd = open("/dev/urandom", O_RDONLY);
    if (rnd < 0 || read(rnd, key, sizeof(key)) != (ssize_t)sizeof(key)) {
        if (rnd >= 0)
            close(rnd);
        return -1;
    }
    close(rnd);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0400);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, key, sizeof(key));
    close(fd);
    return n == (ssize_t)sizeof(key) ? 0 : -1;
}

int phx_test_munged_start(phx_test_munged_t *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->dir, sizeof(m->dir), "/tmp/phx-munge-XXXXXX");
    if (!mkdtemp(m->dir) || chmod(m->dir, 0755) < 0) {
        perror("mungetest: mkdtemp");
        return -1;
    }
    char key[192], pid[192], log[192], seed[192];
    snprintf(m->socket, sizeof(m->socket), "%s/munge.socket", m->dir);
    snprintf(key, sizeof(key), "%s/munge.key", m->dir);
    snprintf(pid, sizeof(pid), "%s/munged.pid", m->dir);
    snprintf(log, sizeof(log), "%s/munged.log", m->dir);
    snprintf(seed, sizeof(seed), "%s/munged.seed", m->dir);
    if (write_key(key) < 0) {
        perror("mungetest: key");
        return -1;
    }
    char a_sock[256], a_key[256], a_pid[256], a_log[256], a_seed[256];
    snprintf(a_sock, sizeof(a_sock), "--socket=%s", m->socket);
    snprintf(a_key, sizeof(a_key), "--key-file=%s", key);
    snprintf(a_pid, sizeof(a_pid), "--pid-file=%s", pid);
    snprintf(a_log, sizeof(a_log), "--log-file=%s", log);
    snprintf(a_seed, sizeof(a_seed), "--seed-file=%s", seed);
    pid_t self = getpid();
    m->pid = fork();
    if (m->pid < 0)
        return -1;
    if (m->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (getppid() != self)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) { /* munged -F also logs to stderr; its log file has it all */
            dup2(devnull, STDERR_FILENO);
            close(devnull);
        }
        execl("/usr/sbin/munged", "munged", "-F", a_sock, a_key, a_pid, a_log, a_seed,
              (char *)NULL);
        perror("mungetest: exec munged");
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (stat(m->socket, &st) == 0)
            return 0;
        int status;
        if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
            fprintf(stderr, "mungetest: munged exited early, see %s\n", log);
            m->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "mungetest: munged socket %s did not appear\n", m->socket);
    return -1;
}

void phx_test_munged_stop(phx_test_munged_t *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
    if (m->dir[0]) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", m->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "mungetest: could not remove %s\n", m->dir);
        m->dir[0] = '\0';
    }
}
