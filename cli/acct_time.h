/* sacct's time forms for phx acct -S and -E (cli/acct_time.c). */
#ifndef PHX_CLI_ACCT_TIME_H
#define PHX_CLI_ACCT_TIME_H

#include <time.h>

/* arg read in local time against now, as sacct's parse_time(arg, past=1):
 * YYYY-MM-DD[THH:MM[:SS]], MM/DD[/YY][-HH:MM[:SS]], MMDD[YY], HH:MM[:SS]
 * (today), today, midnight, now, now[+-]N[unit] (blanks allowed around the
 * sign, the number and the unit).  Without a year: this year, or last year
 * when the month is later than now's; without a time: midnight.  0 with
 * *out, or -1 on a form it does not know. */
int phx_acct_parse_time(const char *arg, time_t now, time_t *out);

#endif
