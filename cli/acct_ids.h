/* phx acct -j (cli/acct_ids.c): sacct's job and step ids as the
 * PostgreSQL array literals the query binds. */
#ifndef PHX_CLI_ACCT_IDS_H
#define PHX_CLI_ACCT_IDS_H

#include <stdbool.h>

typedef struct phx_acct_ids {
    char plain[1024];  /* "{41,42}": job ids (the job or a whole array) */
    char tasks_a[512]; /* "{41}" and "{3}": array task pairs */
    char tasks_t[512];
    /* steps, "41.batch", "41_3.0": their job (a job id, or an array id with
     * its task in steps_t, else -1) and step id, "{batch}" */
    char steps_a[512], steps_t[512], steps_s[1024];
    bool any_steps;
} phx_acct_ids_t;

/* "41,41_3,42.batch,41_3.0" into ids: whole jobs into plain, array tasks
 * into the pairs, steps (a number, batch or extern after the '.') into the
 * step arrays, or, with allocations (-X: no step lines), their jobs whole.
 * Only digits and step names get through (and they travel as parameters
 * all the same).  0, or -1 after saying why on stderr. */
int phx_acct_parse_ids(const char *list, bool allocations, phx_acct_ids_t *ids);

#endif
