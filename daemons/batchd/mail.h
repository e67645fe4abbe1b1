/* phx-batchd: mail to a job's user at its state changes (sbatch's
 * --mail-type and --mail-user; doc/jobs.md, "Mail").
 *
 * batchd.mail_prog (Slurm's MailProg) is run as `PROG -s SUBJECT RCPT...`,
 * as mail(1), with the job's PHX_JOB_* in its environment and /dev/null as
 * its input: never through a shell, at most MAIL_RUNNING at once, more
 * queued (bounded), each killed after a minute.  Loop thread only.
 *
 * The pure part (which events a change is, the subject) is in mail_fmt.c,
 * unit-tested; the spawning in mail.c. */
#ifndef PHX_BATCHD_MAIL_H
#define PHX_BATCHD_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemons/batchd/jobspec.h"

/* --mail-type words, as bits. */
enum {
    PHX_MAIL_BEGIN = 1u << 0,
    PHX_MAIL_END = 1u << 1,
    PHX_MAIL_FAIL = 1u << 2,
    PHX_MAIL_REQUEUE = 1u << 3,
    PHX_MAIL_INVALID_DEPEND = 1u << 4,
    PHX_MAIL_STAGE_OUT = 1u << 5, /* accepted: there is no stage-out */
    PHX_MAIL_TIME_LIMIT = 1u << 6,
    PHX_MAIL_TIME_LIMIT_90 = 1u << 7,
    PHX_MAIL_TIME_LIMIT_80 = 1u << 8,
    PHX_MAIL_TIME_LIMIT_50 = 1u << 9,
    PHX_MAIL_ARRAY_TASKS = 1u << 10, /* one mail per array task, not per array */
};
#define PHX_MAIL_TIMED                                                                 \
    (PHX_MAIL_TIME_LIMIT | PHX_MAIL_TIME_LIMIT_90 | PHX_MAIL_TIME_LIMIT_80 |           \
     PHX_MAIL_TIME_LIMIT_50)

/* The bits of a --mail-type value (comma-separated words, any case; ALL is
 * BEGIN, END, FAIL, REQUEUE, INVALID_DEPEND and STAGE_OUT, as Slurm's;
 * NONE clears).  Unknown words are ignored (the submission checked them).
 * NULL: 0. */
unsigned phx_mail_mask(const char *mail_type);

/* The event a state change is for a job asking mask, or 0: BEGIN (it
 * starts), REQUEUE (back to PENDING from running, not for RESOURCES: a
 * launch that could not be sent, or from an end), and at its end one of
 * INVALID_DEPEND (cancelled: a dependency that can never be met), FAIL
 * (FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY) or END, the first it asks
 * for in that order: one mail for one end. */
unsigned phx_mail_event(unsigned mask, phx_job_state_t from, phx_job_state_t to,
                        phx_job_reason_t reason);

/* The end event of a job asking mask that ended in state, or 0:
 * INVALID_DEPEND (invalid_depend: cancelled for a dependency that can
 * never be met), FAIL (FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY), END,
 * the first it asks for in that order.  An array's summary (mail.c) gives
 * its tasks' worst state, and invalid_depend when one of them was. */
unsigned phx_mail_end_event(unsigned mask, phx_job_state_t state, bool invalid_depend);

/* The TIME_LIMIT* event now due for a job running since start with limit
 * seconds whose mails in sent (bits) went out, or 0: the highest share of
 * its limit reached (100, 90, 80, 50 %) that it asks for and was not sent.
 * *reached: the bits of every share reached (to be marked sent with it, so
 * that a late 50 % never follows a 90 %). */
unsigned phx_mail_timed_due(unsigned mask, unsigned sent, int64_t start, int64_t limit,
                            int64_t now, unsigned *reached);

/* --mail-user is checked at submission: phx_jobspec_mail_user_valid
 * (jobspec.h), and its addresses counted (submit.c): at most
 * PHX_MAIL_RCPT_MAX, as many as the mail program's arguments take. */
#define PHX_MAIL_RCPT_MAX 32
/* The addresses of a --mail-user list (commas + 1; 0 for NULL or ""). */
static inline size_t phx_mail_rcpt_count(const char *mail_user)
{
    size_t n = mail_user && *mail_user ? 1 : 0;
    for (const char *p = mail_user; n && *p; p++)
        n += *p == ',';
    return n;
}

/* What a mail says of a job, for the subject. */
typedef struct phx_mail_job {
    uint64_t id;
    uint64_t array_job_id; /* 0: not an array task */
    int64_t array_task_id;
    bool array_summary; /* for its whole array (no ARRAY_TASKS) */
    const char *name;
    phx_job_state_t state;
    int exit_code, exit_signal;
    int64_t submit_time, start_time, end_time, time_limit, now;
} phx_mail_job_t;

/* Slurm's subject with our name: `Phalanx Job_id=42 Name=x Began, Queued
 * time 00:00:03`, `... Ended, Run time 00:01:02, COMPLETED, ExitCode 0`,
 * `... Failed, ...`, `... Requeued, ...`, `... Reached 90% of time limit,
 * Run time ...`; an array's summary `Phalanx Array Summary Job_id=40_*
 * (40) Name=x ...`.  Control characters of the name become '?'.  Truncated
 * to len. */
void phx_mail_subject(const phx_mail_job_t *m, unsigned event, char *buf, size_t len);

#endif
