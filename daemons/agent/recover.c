/* phx-agent: start and stop the task subsystem, and adopt the tasks of a
 * previous incarnation from the records directory.
 *
 * Records of a task (<run_dir>/<key>/, key from phx_task_key; versions
 * before agent.run_dir kept them in <state_dir>/run/, which is still read
 * so that an upgrade adopts the tasks started before it):
 *   task    {"task": the launch's task object (framework_id, task_id...),
 *            "started_at": wall clock, "cgroup_base": {"user", "system",
 *            "oom_kills"} when its cgroup was reused (phx_cg_base_t)}
 *   status  {"pending": [unacknowledged STATUS...], "last": latest STATUS}
 *   shim    {"pid", "start" (ticks since boot), "child", "exec"}   by the shim
 *   exit    {"status": wait status, usage} or {"error": text}       by the shim
 *   kill    {"why": "kill"|"timeout", "deadline": wall clock}
 *   warned  {"at": wall clock}: the spec's warning signal was sent
 *
 * A shim is recognised by its pid and start time (no pid reuse can fool
 * us); the agent is not its parent any more, so it is watched with a pidfd.
 * A task whose shim ended while the agent was away is finished from the
 * shim's exit record: its true exit status. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemons/agent/cgroup.h"
#include "daemons/agent/outputs.h"
#include "daemons/agent/task.h"
#include "daemons/agent/users.h"
#include "lib/log.h"

static void adopt(phx_agentd_t *a, const char *fw, const char *id, json_t *rec,
                  const char *dir)
{
    json_t *spec = json_object_get(rec, "task");
    phx_task_t *t = phx_task_new(a, fw, id);
    if (!t)
        return;
    snprintf(t->dir, sizeof(t->dir), "%s", dir); /* where its shim writes */
    t->spec = json_incref(spec);
    t->started_at = json_number_value(json_object_get(rec, "started_at"));
    t->status_recorded = true; /* replaced, if there, never made anew */
    json_t *st = phx_rec_read(t->dir, "status");
    if (json_is_array(json_object_get(st, "pending"))) {
        json_array_extend(t->pending, json_object_get(st, "pending"));
        t->last = json_incref(json_object_get(st, "last"));
    }
    json_decref(st);
    t->has_cgroup = a->cg->mode != PHX_CG_NONE;
    t->froze = true; /* the agent before may have: its freezer is read */
    json_t *base = json_object_get(rec, "cgroup_base");
    if (json_is_object(base)) {
        t->cg_reused = true;
        t->cg_base.user = (uint64_t)json_integer_value(json_object_get(base, "user"));
        t->cg_base.system =
            (uint64_t)json_integer_value(json_object_get(base, "system"));
        t->cg_base.oom_kills =
            (uint64_t)json_integer_value(json_object_get(base, "oom_kills"));
    }
    if (phx_status_is_terminal(phx_status_state(t))) {
        t->phase = PHX_TASK_DONE;
        if (t->has_cgroup && phx_cg_release(a->cg, t->key, NULL, NULL, 0, false) == 0)
            t->has_cgroup = false;
        phx_log_info("task %s: %s, waiting for the master's acknowledgement", t->label,
                     phx_status_state(t));
        return;
    }
    phx_error_t err;
    if (phx_task_parse(t, &err) < 0) {
        phx_status_emit(t, "TASK_ERROR", "REASON_TASK_INVALID", err.text, -1, -1, NULL);
        return;
    }
    phx_task_gpu_cgroup_adopt(t); /* its steps' ranks join it */
    json_t *shim = phx_rec_read(t->dir, "shim");
    t->shim = (pid_t)json_integer_value(json_object_get(shim, "pid"));
    t->shim_start =
        (unsigned long long)json_integer_value(json_object_get(shim, "start"));
    t->child = (pid_t)json_integer_value(json_object_get(shim, "child"));
    bool exec = json_is_true(json_object_get(shim, "exec"));
    json_decref(shim);
    bool alive = t->shim > 0 && t->shim_start != 0 &&
                 phx_exec_proc_start(t->shim) == t->shim_start;
    phx_limits_arm(t);
    phx_limits_load_kill(t);
    /* Alive: watched until it is gone, its "exit" read only then (the shim
     * writes it in place: it may be writing it now). */
    if (alive) {
        t->phase = exec ? PHX_TASK_RUNNING : PHX_TASK_STARTING;
        if (exec && strcmp(phx_status_state(t), "TASK_RUNNING") != 0)
            phx_status_emit(t, "TASK_RUNNING", NULL, NULL, -1, -1, NULL);
        if (phx_task_watch_shim(t) < 0)
            phx_log_errx("task %s: could not watch its shim (pid %d)", t->label,
                         (int)t->shim);
        phx_log_notice("task %s: adopted, running (shim pid %d)", t->label,
                       (int)t->shim);
        return;
    }
    phx_log_notice("task %s: ended while the agent was away", t->label);
    if (exec && strcmp(phx_status_state(t), "TASK_RUNNING") != 0)
        phx_status_emit(t, "TASK_RUNNING", NULL, NULL, -1, -1, NULL);
    phx_task_shim_gone(t);
}

static int recover_from(phx_agentd_t *a, const char *records, phx_error_t *err)
{
    DIR *d = opendir(records);
    if (!d)
        return phx_error_set(err, "could not open \"%s\": %s", records,
                             strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char dir[PATH_MAX], key[PHX_TASK_KEY_MAX + 1] = "";
        snprintf(dir, sizeof(dir), "%s/%s", records, de->d_name);
        json_t *rec = phx_rec_read(dir, "task");
        json_t *spec = json_object_get(rec, "task");
        const char *fw = json_string_value(json_object_get(spec, "framework_id"));
        const char *id = json_string_value(json_object_get(spec, "task_id"));
        if (fw && id && phx_task_id_valid(id) && strlen(fw) <= PHX_TASK_FW_MAX)
            phx_task_key(fw, id, key);
        if (!json_is_object(spec)) {
            phx_log_warnx("\"%s\" has no task record, removed", dir);
            phx_rec_remove_dir(dir);
        } else if (strcmp(key, de->d_name) != 0) {
            /* Not named by its ids' key (an older layout?): its cgroup, if
             * any, goes with the strays. */
            phx_log_warnx("\"%s\" is not named after its task's ids, removed", dir);
            phx_rec_remove_dir(dir);
        } else if (phx_task_find_key(a, key)) {
            phx_log_warnx("\"%s\": task %s/%s is known already, ignored", dir, fw, id);
        } else {
            adopt(a, fw, id, rec, dir);
        }
        json_decref(rec);
    }
    closedir(d);
    return 0;
}

int phx_recover_tasks(phx_agentd_t *a, phx_error_t *err)
{
    if (recover_from(a, a->records_dir, err) < 0)
        return -1;
    char legacy[PATH_MAX];
    struct stat st;
    snprintf(legacy, sizeof(legacy), "%s/run",
             phx_conf_str(a->conf, "agent.state_dir"));
    if (strcmp(legacy, a->records_dir) == 0 || lstat(legacy, &st) < 0 ||
        !S_ISDIR(st.st_mode))
        return 0;
    phx_log_notice("adopting the tasks recorded in %s (before agent.run_dir)", legacy);
    if (recover_from(a, legacy, err) < 0)
        return -1;
    if (rmdir(legacy) == 0) /* empty: nothing left to adopt there */
        phx_log_info("removed %s", legacy);
    return 0;
}

/* Cgroups of tasks we have no records of: kill what is in them, remove them. */
static void sweep_strays(phx_agentd_t *a)
{
    char **ids;
    int n;
    if (phx_cg_list(a->cg, &ids, &n) < 0)
        return;
    for (int i = 0; i < n; i++) {
        if (!phx_task_find_key(a, ids[i])) {
            for (int k = 0; k < 50 && phx_cg_signal(a->cg, ids[i], SIGKILL) > 0; k++) {
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            if (a->cg->ops->destroy(a->cg, ids[i]) == 0)
                phx_log_notice("removed the cgroup %s of an unknown task", ids[i]);
            else
                phx_log_warn("could not remove the cgroup %s of an unknown task",
                             ids[i]);
        }
        free(ids[i]);
    }
    free(ids);
}

static bool task_known(const char *key, void *arg)
{
    return phx_task_find_key(arg, key) != NULL;
}

static void on_outputs_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_agentd_t *a = arg;
    int dir = open(a->outputs_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0 ||
        phx_outputs_sweep(dir, phx_rec_now(), a->output_keep, task_known, a) < 0)
        phx_log_warn("could not sweep the output folders in \"%s\"", a->outputs_dir);
    if (dir >= 0)
        close(dir);
}

int phx_agentd_outputs_start(phx_agentd_t *a, phx_error_t *err)
{
    a->output_keep = phx_conf_double(a->conf, "agent.task_output_keep");
    if (a->output_keep <= 0)
        return 0;
    /* A quarter of the retention, between a second and an hour. */
    double period = a->output_keep / 4;
    period = period < 1 ? 1 : period > 3600 ? 3600 : period;
    struct timeval tv = {(time_t)period,
                         (suseconds_t)((period - (time_t)period) * 1e6)};
    if (!(a->outputs_ev = event_new(a->base, -1, EV_PERSIST, on_outputs_sweep, a)) ||
        event_add(a->outputs_ev, &tv) < 0)
        return phx_error_set(err, "out of memory");
    return 0;
}

void phx_agentd_outputs_stop(phx_agentd_t *a)
{
    if (a->outputs_ev)
        event_free(a->outputs_ev);
    a->outputs_ev = NULL;
}

static void on_resend(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    phx_agentd_status_resend(arg);
}

/* One agent per folder: two agents given the same run_dir would adopt and
 * kill each other's tasks at start, and the same state_dir would have the
 * second take over the first's step socket.  The lock (flock on
 * <dir>/.agent.lock, which holds the pid) goes with the process: a restarted
 * agent takes it again while its predecessor's shims still run (the fd is
 * close-on-exec, so they never hold it). */
static int lock_dir(phx_agentd_t *a, const char *dir, const char *key, phx_error_t *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/.agent.lock", dir) >= (int)sizeof(path))
        return phx_error_set(err, "%s \"%s\" is too long", key, dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return phx_error_set(err, "%s: cannot open \"%s\": %s", key, path,
                             strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return phx_error_set(err,
                                 "%s \"%s\" is in use by another phx-agent (pid %s): "
                                 "give each agent its own (-r, -d)",
                                 key, dir, *pid ? pid : "unknown");
        return phx_error_set(err, "%s: cannot lock \"%s\": %s", key, path, strerror(e));
    }
    char pid[24];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        phx_log_warn("%s: could not write the pid into \"%s\"", key, path);
    a->dir_locks[a->ndir_locks++] = fd;
    return 0;
}

static void unlock_dirs(phx_agentd_t *a)
{
    while (a->ndir_locks > 0)
        close(a->dir_locks[--a->ndir_locks]);
}

int phx_agentd_tasks_start(phx_agentd_t *a, phx_error_t *err)
{
    const phx_conf_t *conf = a->conf;
    const char *state = phx_conf_str(conf, "agent.state_dir");
    a->allow_root = phx_conf_bool(conf, "agent.allow_root");
    a->status_retry = phx_conf_double(conf, "agent.status_retry");
    phx_rec_set_sync(phx_conf_bool(conf, "agent.sync_records"));
    a->default_grace = phx_conf_double(conf, "agent.kill_grace");
    const char *run = phx_conf_str(conf, "agent.run_dir");
    if (snprintf(a->records_dir, sizeof(a->records_dir), "%s", run) >=
        (int)sizeof(a->records_dir))
        return phx_error_set(err, "agent.run_dir \"%s\" is too long", run);
    if (snprintf(a->outputs_dir, sizeof(a->outputs_dir), "%s/tasks", state) >=
        (int)sizeof(a->outputs_dir))
        return phx_error_set(err, "agent.state_dir \"%s\" is too long", state);
    /* Users must get through the state dir to their default output files. */
    if (phx_rec_mkdir(state, 0755, err) < 0 ||
        phx_rec_mkdirs(a->records_dir, 0700, err) < 0 ||
        phx_rec_mkdir(a->outputs_dir, 0755, err) < 0)
        return -1;
    /* The records hold every task's environment and drive what the agent
     * kills and reports: a folder only the agent's user may change. */
    struct stat st;
    if (lstat(a->records_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return phx_error_set(
            err,
            "agent.run_dir \"%s\" must be a directory (not a symbolic "
            "link) owned by the agent's user that no one else may write",
            a->records_dir);
    if (lock_dir(a, a->records_dir, "agent.run_dir", err) < 0 ||
        (strcmp(state, a->records_dir) != 0 &&
         lock_dir(a, state, "agent.state_dir", err) < 0))
        return -1;
    if (phx_rec_set_base(a->records_dir) < 0 || phx_rec_set_base(a->outputs_dir) < 0)
        return phx_error_set(err, "could not open \"%s\" or \"%s\": %s", a->records_dir,
                             a->outputs_dir, strerror(errno));
    if (!(a->users = phx_users_create(PHX_USERS_TTL, NULL, NULL)))
        return phx_error_set(err, "out of memory");
    if (phx_launch_auth_init(a, err) < 0)
        return -1;
    if (!(a->cg = phx_cg_detect(phx_conf_str(conf, "agent.cgroup"),
                                phx_conf_str(conf, "agent.cgroup_root"), a->name, err)))
        return -1;
    if (a->cg->mode != PHX_CG_NONE)
        phx_log_info("tasks run in cgroup %s, under %s/%s/%s",
                     phx_cg_mode_name(a->cg->mode), a->cg->mounts[0].path, a->cg->root,
                     a->cg->agent);
    phx_cg_pool_clear(a->cg); /* a previous agent's: not worth adopting */
    if (phx_recover_tasks(a, err) < 0)
        return -1;
    sweep_strays(a);
    phx_cg_retire(a->cg);
    double r = a->status_retry;
    struct timeval tv = {(time_t)r, (suseconds_t)((r - (time_t)r) * 1e6)};
    if (!(a->resend_ev = event_new(a->base, -1, EV_PERSIST, on_resend, a)) ||
        event_add(a->resend_ev, &tv) < 0)
        return phx_error_set(err, "out of memory");
    return phx_agentd_outputs_start(a, err);
}

void phx_agentd_tasks_stop(phx_agentd_t *a)
{
    while (a->tasks) {
        phx_limits_clear(a->tasks);
        phx_task_free(a->tasks);
    }
    if (a->resend_ev)
        event_free(a->resend_ev);
    a->resend_ev = NULL;
    phx_agentd_outputs_stop(a);
    if (a->cg && a->cg->mode != PHX_CG_NONE) {
        phx_cg_pool_clear(a->cg);
        phx_cg_remove_base(a->cg);
    }
    phx_cg_destroy(a->cg);
    a->cg = NULL;
    free(a->master_uids);
    a->master_uids = NULL;
    phx_users_destroy(a->users);
    a->users = NULL;
    phx_rec_clear_bases();
    unlock_dirs(a);
}
