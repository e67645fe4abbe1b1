/* The nodes a job may use by -w/--nodelist, -x/--exclude, -C/--constraint
 * and the GPUs it asks for (gpus.c), as a bitmap over b->nodes (the planner's node
 * indices): checked at submit, made once per job and kept until the nodes or the
 * features change (b->nodes_gen). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/batchd/batchd.h"
#include "daemons/batchd/gpuspec.h"
#include "lib/hostlist.h"
#include "lib/log.h"

/* What a job that names nodes gets when its bitmap cannot be made (out of
 * memory): no node, this pass (b->nodes_none, made with the node list; this
 * when the nodes were not loaded through cluster.c, in tests). */
static const uint64_t ns_no_node[1024];

static bool ns_restricted(const phx_jobspec_t *s)
{
    return s->nodelist || s->exclude || s->constraint || phx_gpuspec_any(s);
}

/* The index of the node of that name; -1 when none, -2 when it is lost. */
static ssize_t ns_node_index(const batchd_t *b, const char *name)
{
    if (!b->node_names) { /* not loaded through cluster.c (tests) */
        for (size_t i = 0; i < b->nnodes; i++)
            if (strcmp(b->nodes[i].name, name) == 0)
                return (ssize_t)i;
        return -1;
    }
    const bnode_t *n = phx_hmap_get(b->node_names, name);
    return !n ? -1 : n == &batchd_node_lost ? -2 : n - b->nodes;
}

static void ns_bit_set(uint64_t *m, size_t i, bool on)
{
    if (on)
        m[i >> 6] |= UINT64_C(1) << (i & 63);
    else
        m[i >> 6] &= ~(UINT64_C(1) << (i & 63));
}

/* The names of a -w or -x list that no node has: -1 with err naming the
 * first (and the count), else 0.  A lost node's name is one of -x's (the
 * usual way to keep off a broken node), never of -w's (the job could not
 * start). */
static int ns_names_known(const batchd_t *b, const char *list, const char *opt,
                          bool lost_ok, phx_error_t *err)
{
    char **names;
    size_t n, unknown = 0, lost = 0;
    const char *first = NULL, *first_lost = NULL;
    if (phx_hostlist_expand(list, PHX_JOBNODES_MAX, &names, &n, err) < 0)
        return phx_error_prefix(err, "%s", opt);
    for (size_t i = 0; i < n; i++) {
        ssize_t k = ns_node_index(b, names[i]);
        if (k == -1 && !unknown++)
            first = names[i];
        if (k == -2 && !lost_ok && !lost++)
            first_lost = names[i];
    }
    if (unknown)
        phx_error_set(err, "%s %s: no node is named %s%s", opt, list, first,
                      unknown > 1 ? " (nor others of the list)" : "");
    else if (lost)
        phx_error_set(err, "%s %s: node %s is lost (its agent is gone: phx nodes)", opt,
                      list, first_lost);
    phx_hostlist_free(names, n);
    return unknown || lost ? -1 : 0;
}

int batchd_nodesel_check(const batchd_t *b, const phx_jobspec_t *s, size_t *field,
                         phx_error_t *err)
{
    *field = offsetof(phx_jobspec_t, nodelist);
    if (s->nodelist && ns_names_known(b, s->nodelist, "--nodelist", false, err) < 0)
        return -1;
    *field = offsetof(phx_jobspec_t, exclude);
    if (s->exclude && ns_names_known(b, s->exclude, "--exclude", true, err) < 0)
        return -1;
    *field = offsetof(phx_jobspec_t, constraint);
    uint64_t terms[PHX_CONSTRAINT_TERMS];
    size_t nterms;
    if (s->constraint &&
        phx_constraint_compile(s->constraint, (const char *const *)b->features.names,
                               b->features.n, terms, &nterms, err) < 0)
        return -1;
    return 0;
}

/* Set (on) or clear the bits of a list's nodes. */
static int ns_mark(const batchd_t *b, uint64_t *m, const char *list, bool on)
{
    char **names;
    size_t n;
    phx_error_t err;
    if (phx_hostlist_expand(list, PHX_JOBNODES_MAX, &names, &n, &err) < 0)
        return -1; /* checked at submit: a stored list parses */
    for (size_t i = 0; i < n; i++) {
        ssize_t k = ns_node_index(b, names[i]);
        if (k >= 0)
            ns_bit_set(m, (size_t)k, on);
    }
    phx_hostlist_free(names, n);
    return 0;
}

int batchd_nodesel_make(const batchd_t *b, const phx_jobspec_t *s, uint64_t **out)
{
    *out = NULL;
    if (!ns_restricted(s))
        return 0;
    size_t words = (b->nnodes + 63) / 64;
    uint64_t *m = calloc(words ? words : 1, sizeof(*m));
    if (!m)
        return -1;
    if (s->nodelist && ns_mark(b, m, s->nodelist, true) < 0) {
        free(m);
        return -1;
    }
    for (size_t i = 0; !s->nodelist && i < b->nnodes; i++)
        ns_bit_set(m, i, true);
    if (s->exclude && ns_mark(b, m, s->exclude, false) < 0) {
        free(m);
        return -1;
    }
    if (s->constraint) {
        uint64_t terms[PHX_CONSTRAINT_TERMS];
        /* a feature the site dropped since submit: no node has it */
        size_t nterms = phx_constraint_compile_now(
            s->constraint, (const char *const *)b->features.names, b->features.n,
            terms);
        for (size_t i = 0; i < b->nnodes; i++)
            if (!phx_constraint_match(terms, nterms, b->nodes[i].features))
                ns_bit_set(m, i, false);
    }
    /* GPUs: only the nodes that have them (of the type asked) */
    for (size_t i = 0; phx_gpuspec_any(s) && i < b->nnodes; i++)
        if (!batchd_node_gpus_fit(&b->nodes[i], s))
            ns_bit_set(m, i, false);
    *out = m;
    return 0;
}

const uint64_t *batchd_job_nodes(const batchd_t *b, bjob_t *j)
{
    if (!ns_restricted(&j->spec))
        return NULL;
    if (j->nodes_ok && j->nodes_ok_gen == b->nodes_gen)
        return j->nodes_ok;
    free(j->nodes_ok);
    j->nodes_ok = NULL;
    if (batchd_nodesel_make(b, &j->spec, &j->nodes_ok) < 0) {
        phx_log_errx("job %" PRIu64 ": out of memory for the nodes it names: it "
                     "waits",
                     j->id);
        return b->nodes_none ? b->nodes_none : ns_no_node;
    }
    j->nodes_ok_gen = b->nodes_gen;
    return j->nodes_ok;
}

/* A job of several partitions (-p a,b) runs in one, part (its bit): the
 * job is of that one from now on, as in Slurm (its PHX_JOB_PARTITION, its
 * row).  The list it had, to put back if it does not start, or NULL. */
char *batchd_run_partition(batchd_t *b, bjob_t *j, uint64_t part)
{
    if (!j->spec.partition || !strchr(j->spec.partition, ',') || !part ||
        (part & (part - 1)))
        return NULL;
    unsigned i = (unsigned)__builtin_ctzll(part);
    char *name = i < b->parts.n ? strdup(b->parts.v[i].name) : NULL;
    if (!name)
        return NULL;
    char *list = j->spec.partition;
    j->spec.partition = name;
    j->run_mask_gen = 0;
    return list;
}
