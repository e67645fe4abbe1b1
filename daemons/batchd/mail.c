/* phx-batchd: mail to a job's user (mail.h): which jobs, whom, and the
 * mail program's processes. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/mail.h"
#include "lib/log.h"

#define MAIL_RUNNING 8    /* mail programs at once */
#define MAIL_QUEUED  1000 /* waiting for one of them; more are dropped */
#define MAIL_TIMEOUT 60   /* seconds a mail program may take: then killed */
#define MAIL_ARGS    (3 + PHX_MAIL_RCPT_MAX + 1) /* prog -s subject, rcpts, NULL */
#define MAIL_ENV     12

typedef struct mail_msg {
    struct mail_msg *next;
    char *argv[MAIL_ARGS];
    char *envp[MAIL_ENV];
    uint64_t job_id;
} mail_msg_t;

struct batchd_mail {
    char *prog;
    struct event *sigchld;
    struct {
        pid_t pid;
        int64_t since;
        uint64_t job_id;
    } run[MAIL_RUNNING];
    mail_msg_t *head, *tail;
    size_t queued;
    uint64_t sent, failed, dropped;
    int64_t dropped_logged;
};

static void msg_free(mail_msg_t *m)
{
    if (!m)
        return;
    for (char **a = m->argv; *a; a++)
        free(*a);
    for (char **e = m->envp; *e; e++)
        free(*e);
    free(m);
}

/* None of batchd's descriptors in the mail program: libevent's client
 * sockets (the master's event stream) are not close-on-exec. */
static void close_others(posix_spawn_file_actions_t *fa)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    posix_spawn_file_actions_addclosefrom_np(fa, 3);
#else
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            posix_spawn_file_actions_addclose(fa, fd);
    }
#endif
}

static void spawn_next(batchd_t *b)
{
    struct batchd_mail *ml = b->mail;
    for (size_t i = 0; i < MAIL_RUNNING && ml->head; i++) {
        if (ml->run[i].pid > 0)
            continue;
        mail_msg_t *m = ml->head;
        if (!(ml->head = m->next))
            ml->tail = NULL;
        ml->queued--;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        pid_t pid = -1;
        int rc = ENOMEM;
        if (posix_spawn_file_actions_init(&fa) == 0) {
            if (posix_spawnattr_init(&at) == 0) {
                posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_adddup2(&fa, 1, 2);
                close_others(&fa);
                posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
                                                  POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF);
                posix_spawnattr_setsigmask(&at, &none);
                posix_spawnattr_setsigdefault(&at, &all);
                rc = posix_spawn(&pid, ml->prog, &fa, &at, m->argv, m->envp);
                posix_spawnattr_destroy(&at);
            }
            posix_spawn_file_actions_destroy(&fa);
        }
        if (rc != 0) {
            ml->failed++;
            phx_log_warnx("job %" PRIu64 ": could not run batchd.mail_prog \"%s\": %s",
                          m->job_id, ml->prog, strerror(rc));
        } else {
            ml->run[i].pid = pid;
            ml->run[i].since = batchd_now();
            ml->run[i].job_id = m->job_id;
        }
        msg_free(m);
    }
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    batchd_t *b = arg;
    struct batchd_mail *ml = b->mail;
    /* ours only: another child of batchd's keeps its status for its own
     * waitpid */
    for (size_t i = 0; i < MAIL_RUNNING; i++) {
        int st;
        if (ml->run[i].pid <= 0 || waitpid(ml->run[i].pid, &st, WNOHANG) <= 0)
            continue;
        ml->run[i].pid = 0;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ml->sent++;
        } else {
            ml->failed++;
            phx_log_warnx("job %" PRIu64 ": batchd.mail_prog \"%s\" %s %d",
                          ml->run[i].job_id, ml->prog,
                          WIFEXITED(st) ? "exited with" : "was killed by signal",
                          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
    }
    spawn_next(b);
}

int batchd_mail_start(batchd_t *b, phx_error_t *err)
{
    const char *prog = phx_conf_str(b->conf, "batchd.mail_prog");
    if (!prog || !*prog)
        return 0; /* no mail */
    if (access(prog, X_OK) < 0) {
        phx_log_warnx("batchd.mail_prog: \"%s\": %s: jobs' --mail-type sends no mail",
                      prog, strerror(errno));
        return 0;
    }
    struct batchd_mail *ml = calloc(1, sizeof(*ml));
    if (!ml || !(ml->prog = strdup(prog))) {
        free(ml);
        return phx_error_set(err, "out of memory");
    }
    b->mail = ml;
    if (!(ml->sigchld = evsignal_new(b->base, SIGCHLD, on_sigchld, b)) ||
        event_add(ml->sigchld, NULL) < 0)
        return phx_error_set(err, "could not watch SIGCHLD for batchd.mail_prog");
    return 0;
}

void batchd_mail_stop(batchd_t *b)
{
    struct batchd_mail *ml = b->mail;
    if (!ml)
        return;
    if (ml->sigchld)
        event_free(ml->sigchld);
    while (ml->head) {
        mail_msg_t *m = ml->head;
        ml->head = m->next;
        msg_free(m);
    }
    free(ml->prog);
    free(ml);
    b->mail = NULL;
}

static char *envf(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *envf(const char *name, const char *fmt, ...)
{
    char value[512], *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    return asprintf(&out, "%s=%s", name, value) < 0 ? NULL : out;
}

static const char *event_word(unsigned event)
{
    switch (event) {
    case PHX_MAIL_BEGIN: return "BEGIN";
    case PHX_MAIL_END: return "END";
    case PHX_MAIL_FAIL: return "FAIL";
    case PHX_MAIL_REQUEUE: return "REQUEUE";
    case PHX_MAIL_INVALID_DEPEND: return "INVALID_DEPEND";
    case PHX_MAIL_TIME_LIMIT: return "TIME_LIMIT";
    case PHX_MAIL_TIME_LIMIT_90: return "TIME_LIMIT_90";
    case PHX_MAIL_TIME_LIMIT_80: return "TIME_LIMIT_80";
    default: return "TIME_LIMIT_50";
    }
}

static void queue_mail(batchd_t *b, const bjob_t *j, const phx_mail_job_t *mj,
                       unsigned event)
{
    struct batchd_mail *ml = b->mail;
    if (ml->queued >= MAIL_QUEUED) {
        ml->dropped++;
        if (batchd_now() - ml->dropped_logged >= 60) {
            ml->dropped_logged = batchd_now();
            phx_log_warnx("batchd.mail_prog: %zu mails wait already: %" PRIu64
                          " dropped so far",
                          ml->queued, ml->dropped);
        }
        return;
    }
    mail_msg_t *m = calloc(1, sizeof(*m));
    if (!m)
        return;
    char subject[512];
    phx_mail_subject(mj, event, subject, sizeof(subject));
    size_t n = 0;
    m->argv[n++] = strdup("mail");
    m->argv[n++] = strdup("-s");
    m->argv[n++] = strdup(subject);
    /* checked again here: a job's row may be older than the check at
     * submission, and the program runs as batchd's user (root) */
    const char *to = j->spec.mail_user ? j->spec.mail_user : j->user;
    for (const char *p = to; p && *p && n < MAIL_ARGS - 1;) {
        size_t len = strcspn(p, ",");
        char *rcpt = strndup(p, len);
        if (rcpt && !phx_jobspec_mail_user_valid(rcpt)) {
            phx_log_warnx("job %" PRIu64 ": a recipient of its mail is not an "
                          "address: left out",
                          j->id);
            free(rcpt);
        } else {
            m->argv[n++] = rcpt;
        }
        p += len + (p[len] == ',');
    }
    if (phx_mail_rcpt_count(to) > PHX_MAIL_RCPT_MAX) /* a row from before the check */
        phx_log_warnx("job %" PRIu64 ": its mail goes to the first %d of its "
                      "recipients only",
                      j->id, PHX_MAIL_RCPT_MAX);
    if (n == 3) {
        free(m->argv[0]);
        free(m->argv[1]);
        free(m->argv[2]);
        free(m);
        return;
    }
    size_t e = 0;
    m->envp[e++] =
        strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    m->envp[e++] =
        envf("PHX_JOB_ID", "%" PRIu64, mj->array_summary ? j->array_job_id : j->id);
    m->envp[e++] = envf("PHX_JOB_NAME", "%s", j->spec.job_name ? j->spec.job_name : "");
    m->envp[e++] = envf("PHX_JOB_USER", "%s", j->user ? j->user : "");
    m->envp[e++] = envf("PHX_JOB_STATE", "%s", phx_job_state_name(mj->state));
    m->envp[e++] = envf("PHX_JOB_MAIL_TYPE", "%s", event_word(event));
    m->envp[e++] = envf("PHX_JOB_EXIT_CODE", "%d:%d", mj->exit_code, mj->exit_signal);
    if (j->array_job_id) {
        m->envp[e++] = envf("PHX_ARRAY_JOB_ID", "%" PRIu64, j->array_job_id);
        if (!mj->array_summary)
            m->envp[e++] = envf("PHX_ARRAY_TASK_ID", "%" PRId64, j->array_task_id);
    }
    m->job_id = j->id;
    for (size_t i = 0; i < n; i++)
        if (!m->argv[i])
            goto oom;
    for (size_t i = 0; i < e; i++)
        if (!m->envp[i])
            goto oom;
    if (ml->tail)
        ml->tail->next = m;
    else
        ml->head = m;
    ml->tail = m;
    ml->queued++;
    spawn_next(b);
    return;
oom:
    phx_log_warnx("job %" PRIu64 ": no memory for its mail", j->id);
    for (size_t i = 0; i < MAIL_ARGS; i++)
        free(m->argv[i]);
    for (size_t i = 0; i < MAIL_ENV; i++)
        free(m->envp[i]);
    free(m);
}

static void mail_job(const bjob_t *j, int64_t now, phx_mail_job_t *mj)
{
    *mj = (phx_mail_job_t){.id = j->id,
                           .array_job_id = j->array_job_id,
                           .array_task_id = j->array_task_id,
                           .name = j->spec.job_name,
                           .state = j->state,
                           .exit_code = j->exit_code & 255,
                           .exit_signal = j->exit_signal & 127,
                           .submit_time = j->submit_time,
                           .start_time = j->start_time,
                           .end_time =
                               phx_job_state_is_final(j->state) ? j->end_time : -1,
                           .time_limit = j->spec.time_limit,
                           .now = now};
}

/* An array's summary shows its worst end: a failure, else a cancel. */
static int badness(phx_job_state_t s)
{
    return s == PHX_JOB_COMPLETED || !phx_job_state_is_final(s) ? 0
           : s == PHX_JOB_CANCELLED                             ? 1
                                                                : 2;
}

/* Where j's array starts in b->order (by id: no task is older than its
 * array's id, the first task's) */
static size_t array_from(const batchd_t *b, uint64_t array_job_id)
{
    size_t lo = 0, hi = b->njobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->order[mid]->id < array_job_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool same_array(const bjob_t *o, const bjob_t *j)
{
    return o != j && o->array_job_id == j->array_job_id;
}

static bool invalid_depend(const bjob_t *j)
{
    return j->state == PHX_JOB_CANCELLED && j->reason == PHX_REASON_DEPENDENCY_NEVER;
}

/* An array mailed as a whole (no ARRAY_TASKS): its BEGIN with its first
 * task to start, its end with its last task to end, as the worst state of
 * its tasks kept in memory and their highest exit code, and the end event
 * of the worst of them (INVALID_DEPEND when a task was cancelled for a
 * dependency never met, else FAIL, else END: phx_mail_end_event), as
 * Slurm's summary carries the array's worst state.  False: not now.
 * Called at each task's start or end: it looks at the array's part of
 * b->order only and stops at the first task that says "not now", else the
 * end of an array of thousands of tasks would scan the queue thousands of
 * times. */
static bool array_summary(batchd_t *b, const bjob_t *j, unsigned *event,
                          phx_mail_job_t *mj)
{
    size_t from = array_from(b, j->array_job_id);
    mj->array_summary = true;
    if (*event == PHX_MAIL_BEGIN) {
        for (size_t i = from; i < b->njobs; i++)
            if (same_array(b->order[i], j) && b->order[i]->start_time >= 0)
                return false;
        return true;
    }
    if (*event == PHX_MAIL_REQUEUE)
        return false;
    /* from the newest, where the tasks still to end lie */
    for (size_t i = b->njobs; i-- > from;)
        if (same_array(b->order[i], j) && !phx_job_state_is_final(b->order[i]->state))
            return false;
    bool invalid = invalid_depend(j);
    for (size_t i = from; i < b->njobs; i++) {
        const bjob_t *o = b->order[i];
        if (!same_array(o, j))
            continue;
        if (badness(o->state) > badness(mj->state))
            mj->state = o->state;
        if ((o->exit_code & 255) > mj->exit_code)
            mj->exit_code = o->exit_code & 255;
        invalid = invalid || invalid_depend(o);
    }
    *event = phx_mail_end_event(phx_mail_mask(j->spec.mail_type), mj->state, invalid);
    return *event != 0; /* 0: say FAIL alone, and none failed */
}

void batchd_mail_state(batchd_t *b, bjob_t *j, phx_job_state_t from)
{
    if (!b->mail || !j->spec.mail_type)
        return;
    unsigned mask = phx_mail_mask(j->spec.mail_type);
    /* a run that ends to be requeued (phx requeue: end.c records it as it
     * ended, then requeue.c requeues it): its mail is the REQUEUE */
    if (phx_job_state_is_final(j->state) && j->requeue_asked)
        return;
    unsigned event = phx_mail_event(mask, from, j->state, j->reason);
    if (j->state == PHX_JOB_RUNNING) { /* a new run: its time limit mails again */
        j->mail_sent = 0;
        j->mail_limit = j->spec.time_limit;
    }
    bool summary = j->array_job_id && !(mask & PHX_MAIL_ARRAY_TASKS);
    if (summary && phx_job_state_is_final(j->state) && !phx_job_state_is_final(from) &&
        (mask & (PHX_MAIL_END | PHX_MAIL_FAIL | PHX_MAIL_INVALID_DEPEND)))
        event = PHX_MAIL_END; /* a task's end: the summary says which, if any */
    if (!event)
        return;
    phx_mail_job_t mj;
    mail_job(j, batchd_now(), &mj);
    if (event == PHX_MAIL_REQUEUE && j->start_time < 0 && j->requeued_run >= 0) {
        mj.start_time = mj.now - j->requeued_run; /* the run requeued (requeue.c) */
        mj.end_time = mj.now;
    }
    if (summary && !array_summary(b, j, &event, &mj))
        return;
    queue_mail(b, j, &mj, event);
}

/* The shares mailed of j's run, in jobs.spec ("batchd": {"mail": [start,
 * limit, bits]}): a restarted batchd sends none of them again (queue.c
 * reads them back for the same run and limit). */
static void shares_persist(batchd_t *b, const bjob_t *j)
{
    char id[24], v[96];
    snprintf(id, sizeof(id), "%" PRIu64, j->id);
    snprintf(v, sizeof(v), "[%" PRId64 ", %" PRId64 ", %u]", j->start_time,
             j->mail_limit, (unsigned)j->mail_sent);
    const char *p[] = {id, v};
    phx_error_t err;
    if (batchd_write(b,
                     "UPDATE jobs SET spec = jsonb_set(spec, '{batchd}', "
                     "coalesce(spec->'batchd', '{}') || jsonb_build_object('mail', "
                     "$2::jsonb)) WHERE id = $1",
                     2, p, batchd_job_written, (void *)(uintptr_t)j->id, &err) < 0)
        phx_log_errx("job %" PRIu64 ": could not record its mails: %s", j->id,
                     err.text);
}

void batchd_mail_tick(batchd_t *b, int64_t now)
{
    struct batchd_mail *ml = b->mail;
    if (!ml)
        return;
    for (size_t i = 0; i < MAIL_RUNNING; i++)
        if (ml->run[i].pid > 0 && now - ml->run[i].since > MAIL_TIMEOUT) {
            phx_log_warnx("job %" PRIu64 ": batchd.mail_prog still runs after %d s: "
                          "killed",
                          ml->run[i].job_id, MAIL_TIMEOUT);
            /* its session (POSIX_SPAWN_SETSID): with what it started, its
             * sendmail; reaped by on_sigchld */
            kill(-ml->run[i].pid, SIGKILL);
            ml->run[i].since = now;
        }
    for (size_t i = batchd_live_from(b); i < b->njobs; i++) {
        bjob_t *j = b->order[i];
        if (j->state != PHX_JOB_RUNNING || !j->spec.mail_type)
            continue;
        if (j->mail_limit != j->spec.time_limit) { /* changed: its shares anew */
            j->mail_limit = j->spec.time_limit;
            j->mail_sent = 0;
        }
        unsigned mask = phx_mail_mask(j->spec.mail_type), reached;
        int64_t start = j->limit_start > 0 ? j->limit_start : j->start_time;
        unsigned due = phx_mail_timed_due(mask, j->mail_sent, start, j->spec.time_limit,
                                          now, &reached);
        j->mail_sent |= reached;
        if (!due)
            continue;
        phx_mail_job_t mj;
        mail_job(j, now, &mj);
        queue_mail(b, j, &mj, due);
        shares_persist(b, j);
    }
}
