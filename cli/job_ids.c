/* Job ids on the command line (job_ids.h). */
#include "cli/job_ids.h"

#include <stdio.h>
#include <string.h>

int phx_cli_job_path(const char *arg, size_t len, const char *op, bool lists,
                     char *path, size_t size)
{
    size_t n = strspn(arg, "0123456789");
    if (n > len)
        n = len;
    if (n == 0 || n > 20)
        return -1;
    const char *t = arg + n + 1;
    size_t tl = len > n + 1 ? len - n - 1 : 0;
    if (n < len && (arg[n] != '_' || tl == 0))
        return -1;
    if (tl >= 2 && t[0] == '[' && t[tl - 1] == ']') {
        t++;
        tl -= 2;
    }
    if (n < len && (tl == 0 || strspn(t, lists ? "0123456789-,:" : "0123456789") < tl ||
                    (!lists && t != arg + n + 1)))
        return -1;
    int w = n == len ? snprintf(path, size, "/api/v1/jobs/%.*s/%s", (int)n, arg, op)
                     : snprintf(path, size, "/api/v1/jobs/%.*s_%.*s/%s", (int)n, arg,
                                (int)tl, t, op);
    return w > 0 && (size_t)w < size ? 0 : -1;
}

const char *phx_cli_next_id(const char **at, size_t *len)
{
    const char *s = *at;
    while (*s == ',')
        s++;
    if (!*s)
        return NULL;
    const char *e = s;
    int depth = 0;
    for (; *e && (depth > 0 || *e != ','); e++)
        depth += *e == '[' ? 1 : *e == ']' ? -1 : 0;
    *len = (size_t)(e - s);
    *at = e;
    return s;
}
