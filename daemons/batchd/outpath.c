#include "daemons/batchd/outpath.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PAD_MAX 10

/* Walk pattern; with ctx NULL only check it. */
static int expand(const char *pattern, const phx_outpath_ctx_t *ctx, char *buf,
                  size_t len, phx_error_t *err)
{
    size_t n = 0;
    bool over = false;
#define PUT(...)                                                                       \
    do {                                                                               \
        int w_ =                                                                       \
            snprintf(buf ? buf + n : NULL, buf && n < len ? len - n : 0, __VA_ARGS__); \
        if (w_ < 0)                                                                    \
            over = true;                                                               \
        else                                                                           \
            n += (size_t)w_;                                                           \
    } while (0)
    if (!pattern || !*pattern)
        return phx_error_set(err, "empty file name pattern");
    if (ctx && ctx->work_dir && pattern[0] != '/')
        PUT("%s/", ctx->work_dir);
    for (const char *p = pattern; *p; p++) {
        if (*p != '%') {
            PUT("%c", *p);
            continue;
        }
        const char *start = p++;
        int pad = 0;
        while (isdigit((unsigned char)*p)) {
            pad = pad * 10 + (*p - '0');
            if (pad > PAD_MAX)
                return phx_error_set(err, "invalid pattern \"%s\": padding above %d",
                                     pattern, PAD_MAX);
            p++;
        }
        if (!ctx) {
            if (!*p || !strchr("jxuAaN%", *p))
                return phx_error_set(err,
                                     "invalid pattern \"%s\": unknown escape \"%.*s\"",
                                     pattern, (int)(p - start + (*p ? 1 : 0)), start);
            continue;
        }
        switch (*p) {
        case 'j': PUT("%0*" PRIu64, pad, ctx->job_id); break;
        case 'A':
            PUT("%0*" PRIu64, pad, ctx->array_job_id ? ctx->array_job_id : ctx->job_id);
            break;
        case 'a':
            if (ctx->array_task_id >= 0)
                PUT("%0*" PRId64, pad, ctx->array_task_id);
            else
                PUT("%0*u", pad, PHX_OUTPATH_NO_ARRAY_TASK);
            break;
        case 'x': PUT("%s", ctx->job_name ? ctx->job_name : ""); break;
        case 'u': PUT("%s", ctx->user ? ctx->user : ""); break;
        case 'N':
            PUT("%.*s", (int)strcspn(ctx->first_node ? ctx->first_node : "", "."),
                ctx->first_node ? ctx->first_node : "");
            break;
        case '%': PUT("%%"); break;
        default:
            return phx_error_set(err, "invalid pattern \"%s\": unknown escape \"%.*s\"",
                                 pattern, (int)(p - start + (*p ? 1 : 0)), start);
        }
    }
#undef PUT
    if (!ctx)
        return 0;
    if (over || n >= len)
        return phx_error_set(err, "file name from pattern \"%s\" is too long", pattern);
    return 0;
}

int phx_outpath_check(const char *pattern, phx_error_t *err)
{
    return expand(pattern, NULL, NULL, 0, err);
}

int phx_outpath_expand(const char *pattern, const phx_outpath_ctx_t *ctx, char *buf,
                       size_t len, phx_error_t *err)
{
    if (phx_outpath_check(pattern, err) < 0)
        return -1;
    return expand(pattern, ctx, buf, len, err);
}

int phx_outpath_check_fits(const char *pattern, const char *job_name,
                           const char *work_dir, phx_error_t *err)
{
    char node[256], user[33], buf[PHX_OUTPATH_MAX];
    memset(node, 'n', sizeof(node) - 1);
    node[sizeof(node) - 1] = '\0';
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    phx_outpath_ctx_t ctx = {.job_id = UINT64_MAX,
                             .array_job_id = UINT64_MAX,
                             .array_task_id = INT64_MAX,
                             .job_name = job_name,
                             .user = user,
                             .first_node = node,
                             .work_dir = work_dir};
    if (phx_outpath_expand(pattern, &ctx, buf, sizeof(buf), NULL) == 0)
        return 0;
    return phx_error_set(err,
                         "the file name from pattern \"%s\" in work dir \"%.64s...\" "
                         "could be longer than %d bytes",
                         pattern, work_dir ? work_dir : "", PHX_OUTPATH_MAX - 1);
}
