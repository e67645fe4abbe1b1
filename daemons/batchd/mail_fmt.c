/* phx-batchd: what a job's mail is about and what its subject says
 * (mail.h).  Pure: no clock, no I/O. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/mail.h"

unsigned phx_mail_mask(const char *mail_type)
{
    static const struct {
        const char *word;
        unsigned bits;
    } words[] = {
        {"BEGIN", PHX_MAIL_BEGIN},
        {"END", PHX_MAIL_END},
        {"FAIL", PHX_MAIL_FAIL},
        {"REQUEUE", PHX_MAIL_REQUEUE},
        {"INVALID_DEPEND", PHX_MAIL_INVALID_DEPEND},
        {"STAGE_OUT", PHX_MAIL_STAGE_OUT},
        {"ALL", PHX_MAIL_BEGIN | PHX_MAIL_END | PHX_MAIL_FAIL | PHX_MAIL_REQUEUE |
                    PHX_MAIL_INVALID_DEPEND | PHX_MAIL_STAGE_OUT},
        {"TIME_LIMIT", PHX_MAIL_TIME_LIMIT},
        {"TIME_LIMIT_90", PHX_MAIL_TIME_LIMIT_90},
        {"TIME_LIMIT_80", PHX_MAIL_TIME_LIMIT_80},
        {"TIME_LIMIT_50", PHX_MAIL_TIME_LIMIT_50},
        {"ARRAY_TASKS", PHX_MAIL_ARRAY_TASKS},
    };
    unsigned mask = 0;
    for (const char *p = mail_type; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n == 4 && strncasecmp(p, "NONE", 4) == 0)
            mask = 0;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strlen(words[i].word) == n && strncasecmp(p, words[i].word, n) == 0)
                mask |= words[i].bits;
        p += n + (p[n] == ',');
    }
    return mask;
}

static bool is_final(phx_job_state_t s)
{
    return s != PHX_JOB_PENDING && s != PHX_JOB_RUNNING;
}

unsigned phx_mail_event(unsigned mask, phx_job_state_t from, phx_job_state_t to,
                        phx_job_reason_t reason)
{
    if (from == to)
        return 0;
    if (to == PHX_JOB_RUNNING)
        return mask & PHX_MAIL_BEGIN;
    if (to == PHX_JOB_PENDING) /* RESOURCES: its launch could not be sent */
        return (from == PHX_JOB_RUNNING && reason != PHX_REASON_RESOURCES) ||
                       is_final(from)
                   ? mask & PHX_MAIL_REQUEUE
                   : 0;
    if (!is_final(to) || is_final(from))
        return 0;
    return phx_mail_end_event(
        mask, to, to == PHX_JOB_CANCELLED && reason == PHX_REASON_DEPENDENCY_NEVER);
}

unsigned phx_mail_end_event(unsigned mask, phx_job_state_t state, bool invalid_depend)
{
    if (invalid_depend && (mask & PHX_MAIL_INVALID_DEPEND))
        return PHX_MAIL_INVALID_DEPEND;
    bool failed = state == PHX_JOB_FAILED || state == PHX_JOB_TIMEOUT ||
                  state == PHX_JOB_NODE_FAIL || state == PHX_JOB_OUT_OF_MEMORY;
    if (failed && (mask & PHX_MAIL_FAIL))
        return PHX_MAIL_FAIL;
    return mask & PHX_MAIL_END;
}

unsigned phx_mail_timed_due(unsigned mask, unsigned sent, int64_t start, int64_t limit,
                            int64_t now, unsigned *reached)
{
    static const struct {
        unsigned bit;
        int pct;
    } steps[] = {{PHX_MAIL_TIME_LIMIT, 100},
                 {PHX_MAIL_TIME_LIMIT_90, 90},
                 {PHX_MAIL_TIME_LIMIT_80, 80},
                 {PHX_MAIL_TIME_LIMIT_50, 50}};
    unsigned due = 0;
    *reached = 0;
    if (!(mask & PHX_MAIL_TIMED) || limit <= 0 || start < 0 || now < start)
        return 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if ((now - start) * 100 >= limit * steps[i].pct) {
            *reached |= steps[i].bit;
            if (!due && (mask & steps[i].bit) && !(sent & steps[i].bit))
                due = steps[i].bit;
        }
    return due;
}

/* Slurm's elapsed times in mails: HH:MM:SS, D-HH:MM:SS past a day. */
static void elapsed(int64_t s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%" PRId64 "-%02d:%02d:%02d", s / 86400,
                 (int)(s % 86400 / 3600), (int)(s % 3600 / 60), (int)(s % 60));
    else
        snprintf(buf, len, "%02d:%02d:%02d", (int)(s / 3600), (int)(s % 3600 / 60),
                 (int)(s % 60));
}

void phx_mail_subject(const phx_mail_job_t *m, unsigned event, char *buf, size_t len)
{
    char name[128], id[64], t[40];
    size_t i = 0;
    for (const char *p = m->name ? m->name : ""; *p && i + 1 < sizeof(name); p++)
        name[i++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
    name[i] = '\0';
    if (m->array_summary)
        snprintf(id, sizeof(id), "Array Summary Job_id=%" PRIu64 "_* (%" PRIu64 ")",
                 m->array_job_id, m->array_job_id);
    else if (m->array_job_id)
        snprintf(id, sizeof(id), "Job_id=%" PRIu64 "_%" PRId64 " (%" PRIu64 ")",
                 m->array_job_id, m->array_task_id, m->id);
    else
        snprintf(id, sizeof(id), "Job_id=%" PRIu64, m->id);
    int64_t end = m->end_time >= 0 ? m->end_time : m->now;
    elapsed(m->start_time >= 0 ? end - m->start_time : 0, t, sizeof(t));
    const char *state = phx_job_state_name(m->state);
    switch (event) {
    case PHX_MAIL_BEGIN:
        elapsed(m->start_time - m->submit_time, t, sizeof(t));
        snprintf(buf, len, "Phalanx %s Name=%s Began, Queued time %s", id, name, t);
        return;
    case PHX_MAIL_REQUEUE:
        snprintf(buf, len, "Phalanx %s Name=%s Requeued, Run time %s", id, name, t);
        return;
    case PHX_MAIL_TIME_LIMIT:
    case PHX_MAIL_TIME_LIMIT_90:
    case PHX_MAIL_TIME_LIMIT_80:
    case PHX_MAIL_TIME_LIMIT_50: {
        int pct = event == PHX_MAIL_TIME_LIMIT      ? 100
                  : event == PHX_MAIL_TIME_LIMIT_90 ? 90
                  : event == PHX_MAIL_TIME_LIMIT_80 ? 80
                                                    : 50;
        char lim[40];
        elapsed(m->time_limit, lim, sizeof(lim));
        snprintf(buf, len,
                 "Phalanx %s Name=%s Reached %d%% of time limit, Run time %s "
                 "of %s",
                 id, name, pct, t, lim);
        return;
    }
    default: break;
    }
    const char *what = event == PHX_MAIL_FAIL ? "Failed"
                       : event == PHX_MAIL_INVALID_DEPEND
                           ? "Failed, dependency never met"
                           : "Ended";
    if (m->exit_signal)
        snprintf(buf, len, "Phalanx %s Name=%s %s, Run time %s, %s, Signal %d", id,
                 name, what, t, state, m->exit_signal);
    else
        snprintf(buf, len, "Phalanx %s Name=%s %s, Run time %s, %s, ExitCode %d", id,
                 name, what, t, state, m->exit_code);
}
