/* Writes nobody waits on: queued through the store, failures logged. */
#include <stdlib.h>
#include <string.h>

#include "daemons/master/master.h"
#include "lib/log.h"

static void written(const phx_error_t *err, phx_db_result_t *const *res, int nres,
                    void *arg)
{
    phx_master_fenced(err); /* another master leads: exits */
    (void)res;
    (void)nres;
    char *what = arg;
    if (err)
        phx_log_errx("could not record %s: %s", what, err->text);
    free(what);
}

/* what is copied for the callback; on failure to queue, say so and free it. */
static void not_queued(const char *what, char *copy, const phx_error_t *err)
{
    phx_log_errx("could not record %s: %s", what, copy ? err->text : "out of memory");
    free(copy);
}

void phx_master_write(phx_master_t *m, const char *what, const char *sql, int nparams,
                      const char *const *params)
{
    char *copy = strdup(what);
    phx_error_t err;
    if (!copy ||
        phx_db_store_write(m->store, sql, nparams, params, written, copy, &err) < 0)
        not_queued(what, copy, &err);
}

void phx_master_write_row(phx_master_t *m, const char *what, const phx_db_rows_t *kind,
                          const char *const *params)
{
    char *copy = strdup(what);
    phx_error_t err;
    if (!copy ||
        phx_db_store_write_row(m->store, kind, params, written, copy, &err) < 0)
        not_queued(what, copy, &err);
}
