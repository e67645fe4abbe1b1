/* phx-shim ($BUILD/bin/phx-shim) run directly with hand-made plans, as the
 * agent runs it (daemons/agent/exec.c): the plan on fd 3, the notify pipe on
 * fd 4, its records in a temporary folder.  Real processes, as user nobody;
 * needs root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/unit/support/paths.h"

static char shim[PATH_MAX], dir[PATH_MAX];

/* dir/name, in a static buffer */
static const char *at(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

typedef struct plan {
    char buf[65536];
    size_t len;
} plan_t;

static void put(plan_t *p, const char *key, const char *value)
{
    size_t kl = strlen(key) + 1, vl = strlen(value) + 1;
    assert_true(p->len + kl + vl <= sizeof(p->buf));
    memcpy(p->buf + p->len, key, kl);
    memcpy(p->buf + p->len + kl, value, vl);
    p->len += kl + vl;
}

/* A plan for user nobody writing into out (under dir), with path as its
 * environment's PATH; then the caller adds script/arg/env entries. */
static void plan_path(plan_t *p, const char *out, const char *path)
{
    p->len = 0;
    put(p, "dir", dir);
    put(p, "sync", "0");
    put(p, "uid", "65534");
    put(p, "gid", "65534");
    put(p, "group", "65534");
    put(p, "cwd", "/");
    put(p, "out", at(out));
    put(p, "err", at(out));
    char env[PATH_MAX + 16];
    snprintf(env, sizeof(env), "PATH=%s", path);
    put(p, "env", env);
}

static void plan_base(plan_t *p, const char *out)
{
    plan_path(p, out, "/usr/bin:/bin");
}

/* Run the shim on the plan; its notify line into note (may be empty); its
 * exit record, parsed. */
static json_t *run(const plan_t *p, char *note, size_t len)
{
    unlink(at("exit"));
    int pfd = memfd_create("plan", 0), nfd[2];
    assert_true(pfd >= 0);
    assert_int_equal(write(pfd, p->buf, p->len), (ssize_t)p->len);
    assert_int_equal(lseek(pfd, 0, SEEK_SET), 0);
    assert_int_equal(pipe(nfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int a = fcntl(pfd, F_DUPFD, 10), b = fcntl(nfd[1], F_DUPFD, 10);
        dup2(a, 3);
        dup2(b, 4);
        execl(shim, "phx-shim", (char *)NULL);
        _exit(127);
    }
    close(pfd);
    close(nfd[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < len && (n = read(nfd[0], note + got, len - 1 - got)) > 0)
        got += (size_t)n;
    note[got] = '\0';
    close(nfd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    json_error_t je;
    json_t *rec = json_load_file(at("exit"), 0, &je);
    if (!rec)
        fail_msg("exit record %s: %s", at("exit"), je.text);
    return rec;
}

static char *slurp(const char *name)
{
    static char text[4096];
    FILE *f = fopen(at(name), "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static int status_of(json_t *rec)
{
    json_t *s = json_object_get(rec, "status");
    if (!json_is_integer(s))
        fail_msg("no status in the exit record: %s",
                 json_string_value(json_object_get(rec, "error")));
    return (int)json_integer_value(s);
}

static void test_program_as_nobody(void **state)
{
    (void)state;
    plan_t p;
    char note[64];
    plan_base(&p, "prog.out");
    put(&p, "cpus", "0,1500"); /* ids past CPU_SETSIZE: 1024 */
    put(&p, "arg", "/bin/sh");
    put(&p, "arg", "-c");
    put(&p, "arg", "id -u; grep Cpus_allowed_list /proc/self/status; exit 3");
    json_t *rec = run(&p, note, sizeof(note));
    assert_int_equal(strncmp(note, "R ", 2), 0);
    int st = status_of(rec);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
    assert_true(json_is_number(json_object_get(rec, "user_cpu_s")));
    char *out = slurp("prog.out");
    assert_non_null(strstr(out, "65534\n"));
    assert_non_null(strstr(out, "Cpus_allowed_list:\t0\n"));
    json_decref(rec);
    json_t *shim_rec = json_load_file(at("shim"), 0, NULL);
    assert_non_null(shim_rec);
    assert_true(json_is_true(json_object_get(shim_rec, "exec")));
    json_decref(shim_rec);
}

/* The program's stdin is /dev/null, read-only (the shim's own fd 0, handed
 * down: a write to it fails), its stdout and stderr the files asked for;
 * the shim's records are whole JSON and no temporary file is left (the
 * first ones are created in place, the second "shim" renamed). */
static void test_std_streams(void **state)
{
    (void)state;
    plan_t p;
    char note[64];
    plan_base(&p, "streams.out");
    put(&p, "arg", "/bin/sh");
    put(&p, "arg", "-c");
    put(&p, "arg",
        "echo in=$(readlink /proc/self/fd/0); "
        "if (echo x >&0) 2>/dev/null; then echo stdin-writable; else echo stdin-ro; "
        "fi; "
        "read line && echo read-something; echo err >&2");
    json_t *rec = run(&p, note, sizeof(note));
    assert_int_equal(WEXITSTATUS(status_of(rec)), 0);
    char *out = slurp("streams.out");
    assert_non_null(strstr(out, "in=/dev/null\n"));
    assert_non_null(strstr(out, "stdin-ro\n"));
    assert_null(strstr(out, "read-something"));
    assert_non_null(strstr(out, "err\n"));
    json_decref(rec);
    json_t *shim_rec = json_load_file(at("shim"), 0, NULL);
    assert_non_null(shim_rec);
    assert_true(json_is_true(json_object_get(shim_rec, "exec")));
    json_decref(shim_rec);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp"))
            fail_msg("a temporary record is left: %s", de->d_name);
    closedir(d);
}

/* The script from memory, by fexecve and by its interpreter: $0 is
 * /dev/fd/N, the arguments follow, the "#!" line's argument is passed. */
static void script_case(bool interpreter)
{
    plan_t p;
    char note[64];
    plan_base(&p, "script.out");
    if (interpreter)
        put(&p, "interpreter", "1");
    put(&p, "script", "#!/bin/sh -u\necho \"0=$0 1=$1 2=$2 u=$-\"\nkill -USR1 $$\n");
    put(&p, "arg", "ignored-argv0");
    put(&p, "arg", "a b");
    put(&p, "arg", "c");
    json_t *rec = run(&p, note, sizeof(note));
    int st = status_of(rec);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGUSR1);
    char *out = slurp("script.out");
    assert_non_null(strstr(out, "0=/dev/fd/"));
    assert_non_null(strstr(out, " 1=a b 2=c u="));
    assert_non_null(strchr(strstr(out, " u="), 'u')); /* sh ran with -u */
    json_decref(rec);
}

static void test_script_fexecve(void **state)
{
    (void)state;
    script_case(false);
}

static void test_script_interpreter(void **state)
{
    (void)state;
    script_case(true);
}

/* Errors before exec: in the exit record, as valid JSON even when the
 * message holds bytes that are not UTF-8. */
static void test_errors(void **state)
{
    (void)state;
    plan_t p;
    char note[64];
    p.len = 0; /* a cwd that does not exist and is not UTF-8 */
    put(&p, "dir", dir);
    put(&p, "uid", "65534");
    put(&p, "gid", "65534");
    put(&p, "cwd", "/nonexistent-\xff\xfe-d\xc3\xa9j\xc3");
    put(&p, "out", "/dev/null");
    put(&p, "err", "/dev/null");
    put(&p, "arg", "/bin/true");
    json_t *rec = run(&p, note, sizeof(note));
    assert_string_equal(note, "");
    const char *e = json_string_value(json_object_get(rec, "error"));
    assert_non_null(e);
    assert_non_null(strstr(e, "could not change to directory \"/nonexistent-?"
                              "?-d\xc3\xa9j?\""));
    json_decref(rec);

    plan_base(&p, "err.out");
    put(&p, "cpus", "0-x");
    put(&p, "arg", "/bin/true");
    rec = run(&p, note, sizeof(note));
    assert_non_null(
        strstr(json_string_value(json_object_get(rec, "error")), "bad PU list"));
    json_decref(rec);

    plan_base(&p, "err.out");
    put(&p, "frobnicate", "1");
    put(&p, "arg", "/bin/true");
    rec = run(&p, note, sizeof(note));
    assert_string_equal(json_string_value(json_object_get(rec, "error")),
                        "plan: unknown key");
    json_decref(rec);
}

static void put_file(const char *name, const char *text, mode_t mode)
{
    FILE *f = fopen(at(name), "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(at(name), mode), 0);
}

/* A program named without a slash is looked for in the task's PATH, not
 * the shim's; a file the kernel cannot run (no "#!") goes through
 * /bin/sh, as execvp does; not found is ENOENT, found but not executable
 * EACCES. */
static void test_path_search(void **state)
{
    (void)state;
    plan_t p;
    char note[64], path[PATH_MAX + 128];
    assert_true(mkdir(at("bin"), 0755) == 0 || errno == EEXIST);
    put_file("bin/noshebang", "echo \"noshebang 0=$0 1=$1\"\n", 0755);
    put_file("bin/notexec", "echo never\n", 0644);
    snprintf(path, sizeof(path), "%s:/usr/bin:/bin", at("bin"));

    plan_path(&p, "path.out", path);
    put(&p, "arg", "noshebang");
    put(&p, "arg", "a b");
    json_t *rec = run(&p, note, sizeof(note));
    assert_int_equal(status_of(rec), 0);
    char expect[PATH_MAX + 256];
    snprintf(expect, sizeof(expect), "noshebang 0=%s 1=a b\n", at("bin/noshebang"));
    assert_string_equal(slurp("path.out"), expect);
    json_decref(rec);

    plan_path(&p, "path.out", path);
    put(&p, "arg", "id");
    put(&p, "arg", "-u");
    rec = run(&p, note, sizeof(note));
    assert_int_equal(status_of(rec), 0);
    assert_string_equal(slurp("path.out"), "65534\n");
    json_decref(rec);

    plan_path(&p, "path.out", path);
    put(&p, "arg", "no-such-program-here");
    rec = run(&p, note, sizeof(note));
    assert_string_equal(json_string_value(json_object_get(rec, "error")),
                        "could not execute \"no-such-program-here\": No such file or "
                        "directory");
    json_decref(rec);

    plan_path(&p, "path.out", path);
    put(&p, "arg", "notexec");
    rec = run(&p, note, sizeof(note));
    assert_string_equal(json_string_value(json_object_get(rec, "error")),
                        "could not execute \"notexec\": Permission denied");
    json_decref(rec);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "test_shim: needs root (to become user nobody)\n");
        return -1;
    }
    char build[PATH_MAX - 32];
    if (phx_test_build_dir(build, sizeof(build)) < 0)
        return -1;
    snprintf(shim, sizeof(shim), "%s/bin/phx-shim", build);
    snprintf(dir, sizeof(dir), "%s/phx-test-shim.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir) || chmod(dir, 0777) < 0) /* nobody writes its output here */
        return -1;
    return access(shim, X_OK);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_program_as_nobody),
        cmocka_unit_test(test_std_streams),
        cmocka_unit_test(test_script_fexecve),
        cmocka_unit_test(test_script_interpreter),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_path_search),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
