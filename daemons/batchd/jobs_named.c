/* The jobs an id of the job-control calls names (hold, release, update):
 * N, an array job id A, A_T or A_LIST (--array syntax).  batchd.h. */
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"

int batchd_jobs_named(batchd_t *b, uid_t uid, const char *text, batchd_job_f *fn,
                      void *arg, uint64_t *empty_array)
{
    *empty_array = 0;
    char *end;
    uint64_t id = strtoull(text, &end, 10);
    if (end == text || id == 0)
        return -1;
    if (*end == 0) {
        bjob_t *j = batchd_job_find(b, id);
        if (!j) /* an array whose job A left memory: another of its tasks */
            j = batchd_array_any_task(b, id);
        if (!batchd_may_act(b, uid, j))
            return 0;
        if (j->array_job_id != id) {
            fn(arg, j);
            return 0;
        }
        bool any = false; /* array A: its pending tasks (Slurm's rule) */
        for (size_t i = batchd_live_from(b); i < b->njobs; i++) {
            bjob_t *x = b->order[i];
            if (x->array_job_id == id && x->state == PHX_JOB_PENDING &&
                batchd_may_act(b, uid, x)) {
                any = true;
                fn(arg, x);
            }
        }
        if (!any)
            *empty_array = id;
        return 0;
    }
    phx_array_t a = {0};
    phx_error_t err;
    if (*end != '_' || strchr(end, '%') ||
        phx_array_parse(end + 1, b->limits.max_array_index, &a, &err) < 0)
        return -1;
    for (size_t i = 0; i < a.count; i++) {
        bjob_t *x = batchd_array_task_find(b, id, a.ids[i]);
        if (batchd_may_act(b, uid, x))
            fn(arg, x);
    }
    phx_array_clear(&a);
    return 0;
}
