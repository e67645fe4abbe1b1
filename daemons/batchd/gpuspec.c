/* GPU requests: parsing, checks and canonical forms (gpuspec.h). */
#include "daemons/batchd/gpuspec.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OF(f) offsetof(phx_jobspec_t, f)

/* "[TYPE:]N" (count_first false) or, in a gres, "TYPE[:N]" / "N" after the
 * name.  count_optional: a missing N is 1.  Fills type ("" when none) and
 * *count; -1 with err naming what is wrong. */
static int parse_typed(const char *what, const char *text, bool count_optional,
                       char type[PHX_GPU_TYPE_SIZE], int64_t *count, phx_error_t *err)
{
    const char *colon = strchr(text, ':');
    const char *num = text;
    type[0] = 0;
    if (colon || (count_optional && !isdigit((unsigned char)text[0]))) {
        size_t len = colon ? (size_t)(colon - text) : strlen(text);
        if (len == 0 || len >= PHX_GPU_TYPE_SIZE)
            return phx_error_set(err, "%s \"%s\": a GPU type has 1 to %d characters",
                                 what, text, PHX_GPU_TYPE_SIZE - 1);
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)text[i]) && !strchr("_.-", text[i]))
                return phx_error_set(err,
                                     "%s \"%s\": a GPU type is letters, digits, "
                                     "'_', '.' and '-'",
                                     what, text);
        memcpy(type, text, len);
        type[len] = 0;
        num = colon ? colon + 1 : "1";
    }
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (!isdigit((unsigned char)*num) || *end || errno || v < 1 || v > PHX_GPUS_MAX)
        return phx_error_set(err, "%s \"%s\": expected a GPU count from 1 to %d", what,
                             text, PHX_GPUS_MAX);
    *count = v;
    return 0;
}

/* Replace *field by "[prefix]TYPE:N" or "[prefix]N". */
static int canon(char **field, const char *prefix, const char *type, int64_t n,
                 phx_error_t *err)
{
    char *s;
    if (asprintf(&s, "%s%s%s%" PRId64, prefix, type, *type ? ":" : "", n) < 0)
        return phx_error_set(err, "out of memory");
    free(*field);
    *field = s;
    return 0;
}

/* --gres: a comma-separated list of NAME[:TYPE][:N]; gpu is the only
 * generic resource, given once. */
static int finalize_gres(phx_jobspec_t *s, phx_error_t *err)
{
    char type[PHX_GPU_TYPE_SIZE] = "";
    int64_t n = 0;
    if (strcmp(s->gres, "none") == 0) {
        free(s->gres);
        s->gres = NULL;
        return 0;
    }
    char *copy = strdup(s->gres), *save = NULL;
    if (!copy)
        return phx_error_set(err, "out of memory");
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        size_t len = strcspn(item, ":");
        if (len != 3 || strncmp(item, "gpu", 3) != 0)
            rc = phx_error_set(err,
                               "--gres=%s: generic resource \"%.*s\" is not "
                               "supported (gpu is the only one)",
                               s->gres, (int)len, item);
        else if (n)
            rc = phx_error_set(err, "--gres=%s: gpu is given twice", s->gres);
        else if (!item[3])
            n = 1;
        else
            rc = parse_typed("--gres", item + 4, true, type, &n, err);
    }
    free(copy);
    if (rc == 0 && !n)
        rc = phx_error_set(err, "--gres=%s: no gpu in it", s->gres);
    return rc < 0 ? -1 : canon(&s->gres, "gpu:", type, n, err);
}

int phx_gpuspec_finalize(phx_jobspec_t *s, size_t *field, phx_error_t *err)
{
    static const struct {
        const char *name;
        size_t off;
    } ways[] = {
        {"--gres", OF(gres)},
        {"--gpus-per-node", OF(gpus_per_node)},
        {"--gpus-per-task", OF(gpus_per_task)},
        {"--gpus", OF(gpus)},
    };
    const char *given = NULL;
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        char **f = (char **)((char *)s + ways[i].off);
        if (!*f)
            continue;
        *field = ways[i].off;
        if (given)
            return phx_error_set(err,
                                 "%s and %s both ask for GPUs: give one of --gres=gpu, "
                                 "--gpus-per-node, --gpus-per-task and --gpus",
                                 given, ways[i].name);
        given = ways[i].name;
        char type[PHX_GPU_TYPE_SIZE];
        int64_t n;
        if (ways[i].off == OF(gres)) {
            if (finalize_gres(s, err) < 0)
                return -1;
            continue;
        }
        if (parse_typed(ways[i].name, *f, false, type, &n, err) < 0 ||
            canon(f, "", type, n, err) < 0)
            return -1;
        if (ways[i].off == OF(gpus) && n % s->nodes_min != 0)
            return phx_error_set(err,
                                 "--gpus=%s over %" PRId64 " nodes: give a multiple of "
                                 "the node count, or --gpus-per-node/--gpus-per-task",
                                 *f, s->nodes_min);
        if (ways[i].off == OF(gpus) && s->nodes_max != s->nodes_min)
            return phx_error_set(err,
                                 "--gpus=%s with %" PRId64 "-%" PRId64 " nodes: the "
                                 "node count must be fixed, or use --gpus-per-node",
                                 *f, s->nodes_min, s->nodes_max);
    }
    return 0;
}

/* "[TYPE:]N" (canonical) into type and a count. */
static int64_t read_canon(const char *text, char type[PHX_GPU_TYPE_SIZE])
{
    const char *colon = strrchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : 0;
    if (len >= PHX_GPU_TYPE_SIZE)
        len = PHX_GPU_TYPE_SIZE - 1;
    memcpy(type, text, len);
    type[len] = 0;
    return strtoll(colon ? colon + 1 : text, NULL, 10);
}

bool phx_gpuspec_any(const phx_jobspec_t *s)
{
    return s->gres || s->gpus_per_node || s->gpus_per_task || s->gpus;
}

void phx_gpuspec_get(const phx_jobspec_t *s, phx_gpureq_t *g)
{
    memset(g, 0, sizeof(*g));
    if (s->gres && strncmp(s->gres, "gpu:", 4) == 0)
        g->per_node = read_canon(s->gres + 4, g->type);
    else if (s->gpus_per_node)
        g->per_node = read_canon(s->gpus_per_node, g->type);
    else if (s->gpus_per_task)
        g->per_task = read_canon(s->gpus_per_task, g->type);
    else if (s->gpus && s->nodes_min > 0)
        g->per_node = read_canon(s->gpus, g->type) / s->nodes_min;
}

int64_t phx_gpuspec_node(const phx_gpureq_t *g, int64_t ntasks)
{
    return g->per_node ? g->per_node : g->per_task * ntasks;
}
