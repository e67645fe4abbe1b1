/* phx acct -j: sacct's job and step ids (acct_ids.h). */
#include "cli/acct_ids.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool all_digits(const char *s, size_t len)
{
    if (len == 0 || len > 18)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int append_id(char *buf, size_t size, const char *id, size_t len)
{
    size_t used = strlen(buf);
    int n =
        snprintf(buf + used, size - used, "%s%.*s", used > 1 ? "," : "", (int)len, id);
    return n < 0 || (size_t)n >= size - used ? -1 : 0;
}

/* A step id after the '.': a number (a numbered step), batch or extern. */
static bool step_name(const char *s, size_t len)
{
    return (len <= 9 && all_digits(s, len)) || (len == 5 && !strncmp(s, "batch", 5)) ||
           (len == 6 && !strncmp(s, "extern", 6));
}

/* "41", "41_3", with ".STEP" or not: the job part into a (job or array
 * id) and t (task, or "-1"), 0; -1 if malformed. */
static int job_part(const char *p, size_t len, const char **a, size_t *alen,
                    const char **t, size_t *tlen)
{
    size_t us = strcspn(p, "_");
    *a = p;
    *alen = us < len ? us : len;
    *t = us < len ? p + us + 1 : "-1";
    *tlen = us < len ? len - us - 1 : 2;
    return all_digits(*a, *alen) && (us >= len || all_digits(*t, *tlen)) ? 0 : -1;
}

int phx_acct_parse_ids(const char *list, bool allocations, phx_acct_ids_t *o)
{
    char *const lists[] = {o->plain,   o->tasks_a, o->tasks_t,
                           o->steps_a, o->steps_t, o->steps_s};
    const size_t sizes[] = {sizeof(o->plain),   sizeof(o->tasks_a), sizeof(o->tasks_t),
                            sizeof(o->steps_a), sizeof(o->steps_t), sizeof(o->steps_s)};
    for (size_t i = 0; i < sizeof(lists) / sizeof(*lists); i++)
        strcpy(lists[i], "{");
    if (!*list) {
        fprintf(stderr, "phx: -j needs a job id (41, 41_3, 41.batch, 41.0)\n");
        return -1;
    }
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t dot = strcspn(p, ".");
        const char *a, *t;
        size_t alen, tlen;
        int rc = 0;
        if (job_part(p, dot < len ? dot : len, &a, &alen, &t, &tlen) < 0 ||
            (dot < len && !step_name(p + dot + 1, len - dot - 1))) {
            fprintf(stderr,
                    "phx: invalid job id \"%.*s\" (41, 41_3, 41.batch, 41.0, "
                    "41_3.batch)\n",
                    (int)len, p);
            return -1;
        }
        if (dot < len && !allocations) { /* -X: the step's job line */
            o->any_steps = true;
            rc = append_id(o->steps_a, sizeof(o->steps_a), a, alen) < 0 ||
                         append_id(o->steps_t, sizeof(o->steps_t), t, tlen) < 0 ||
                         append_id(o->steps_s, sizeof(o->steps_s), p + dot + 1,
                                   len - dot - 1) < 0
                     ? -1
                     : 0;
        } else if (*t == '-')
            rc = append_id(o->plain, sizeof(o->plain), a, alen);
        else
            rc = append_id(o->tasks_a, sizeof(o->tasks_a), a, alen) < 0
                     ? -1
                     : append_id(o->tasks_t, sizeof(o->tasks_t), t, tlen);
        if (rc < 0) {
            fprintf(stderr, "phx: too many job ids\n");
            return -1;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    for (size_t i = 0; i < sizeof(lists) / sizeof(*lists); i++)
        if (strlen(lists[i]) + 2 > sizes[i]) {
            fprintf(stderr, "phx: too many job ids\n");
            return -1;
        } else
            strcat(lists[i], "}");
    return 0;
}
