/* sbatch --signal (jobsig.h). */
#include "daemons/batchd/jobsig.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    int number;
} sig_names[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ABRT", SIGABRT},
    {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM},   {"TERM", SIGTERM}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
    {"SEGV", SIGSEGV},   {"BUS", SIGBUS},   {"FPE", SIGFPE},       {"ILL", SIGILL},
    {"TRAP", SIGTRAP},
};
#define NNAMES (sizeof(sig_names) / sizeof(sig_names[0]))

/* A whole decimal number in [lo, hi] of the len bytes at s; -1 if not. */
static long number(const char *s, size_t len, long lo, long hi)
{
    if (len == 0 || len > 6)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* SIG: a number, NAME, SIGNAME, RTMIN+N, RTMAX-N; -1 if none. */
static int signal_of(const char *s, size_t len)
{
    if (len >= 3 && strncasecmp(s, "SIG", 3) == 0 && !isdigit((unsigned char)s[3])) {
        s += 3;
        len -= 3;
    }
    long n = number(s, len, 1, SIGRTMAX);
    if (n > 0)
        return n < 32 || n >= SIGRTMIN ? (int)n : -1; /* 32, 33: glibc's own */
    for (size_t i = 0; i < NNAMES; i++)
        if (strlen(sig_names[i].name) == len &&
            strncasecmp(s, sig_names[i].name, len) == 0)
            return sig_names[i].number;
    if (len >= 5 && strncasecmp(s, "RTMIN", 5) == 0) {
        long k = len == 5 ? 0 : s[5] == '+' ? number(s + 6, len - 6, 0, SIGRTMAX) : -1;
        return k >= 0 && SIGRTMIN + k <= SIGRTMAX ? SIGRTMIN + (int)k : -1;
    }
    if (len >= 5 && strncasecmp(s, "RTMAX", 5) == 0) {
        long k = len == 5 ? 0 : s[5] == '-' ? number(s + 6, len - 6, 0, SIGRTMAX) : -1;
        return k >= 0 && SIGRTMAX - k >= SIGRTMIN ? SIGRTMAX - (int)k : -1;
    }
    return -1;
}

int phx_jobsig_parse(const char *text, phx_jobsig_t *out, phx_error_t *err)
{
    const char *p = text, *colon = strchr(text, ':');
    phx_jobsig_t s = {0, PHX_JOBSIG_DEFAULT_TIME, false};
    if (colon) {
        for (const char *f = p; f < colon; f++) {
            if (*f == 'B' || *f == 'b')
                s.batch = true;
            else if (*f == 'R' || *f == 'r')
                return phx_error_set(err,
                                     "--signal=%s: R: (a signal at the end of a "
                                     "reservation) is not supported",
                                     text);
            else
                return phx_error_set(err,
                                     "--signal=%s: expected [B:]SIG[@SECONDS] (flag "
                                     "\"%.*s\")",
                                     text, (int)(colon - p), p);
        }
        if (colon == p)
            return phx_error_set(err, "--signal=%s: expected [B:]SIG[@SECONDS]", text);
        p = colon + 1;
    }
    const char *at = strchr(p, '@');
    size_t len = at ? (size_t)(at - p) : strlen(p);
    if ((s.signal = signal_of(p, len)) < 0)
        return phx_error_set(err,
                             "--signal=%s: unknown signal \"%.*s\" (a number, or a "
                             "name such as USR1)",
                             text, (int)len, p);
    if (at) {
        long t = number(at + 1, strlen(at + 1), 0, PHX_JOBSIG_MAX_TIME);
        if (t < 0)
            return phx_error_set(err,
                                 "--signal=%s: the time before the limit must be 0 to "
                                 "%d seconds, not \"%s\"",
                                 text, PHX_JOBSIG_MAX_TIME, at + 1);
        s.before = (int)t;
    }
    *out = s;
    return 0;
}

int phx_jobsig_signal(const char *text, phx_error_t *err)
{
    size_t len = strlen(text);
    int sig = len <= 16 ? signal_of(text, len) : -1;
    if (sig < 0)
        return phx_error_set(err,
                             "unknown signal \"%.32s\" (a number 1-64, or a name such "
                             "as USR1, SIGUSR1, TERM, KILL)",
                             text);
    return sig;
}

char *phx_jobsig_format(const phx_jobsig_t *s)
{
    const char *name = NULL;
    char num[16];
    for (size_t i = 0; i < NNAMES && !name; i++)
        if (sig_names[i].number == s->signal)
            name = sig_names[i].name;
    if (!name) {
        if (s->signal >= SIGRTMIN && s->signal <= SIGRTMAX)
            snprintf(num, sizeof(num), "RTMIN+%d", s->signal - SIGRTMIN);
        else
            snprintf(num, sizeof(num), "%d", s->signal);
        name = num;
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%s%s@%d", s->batch ? "B:" : "", name, s->before);
    return strdup(buf);
}
