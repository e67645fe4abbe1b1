/* Partitions: parsing the configuration's Slurm-style lines, and which
 * nodes each partition has (partition.h). */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemons/batchd/partition.h"
#include "daemons/batchd/timefmt.h"
#include "lib/hostlist.h"

#define PART_NAME_MAX   64
#define PART_NODES_MAX  65536
#define PART_GROUPS_MAX 256
#define PART_PRIO_MAX   65533 /* Slurm's bound of PriorityJobFactor */
#define PART_ACCTS_MAX  256
#define ACCOUNT_MAX     64

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PART_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static int yes_no(const char *v, bool *out)
{
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

static int set_nodes(bpart_t *p, const char *v, phx_error_t *err)
{
    if (strcasecmp(v, "ALL") == 0) {
        p->all = true;
        return (p->nodes_text = strdup("ALL")) ? 0
                                               : phx_error_set(err, "out of memory");
    }
    if (phx_hostlist_expand(v, PART_NODES_MAX, &p->nodes, &p->nnodes, err) < 0)
        return phx_error_prefix(err, "Nodes=%s", v);
    if (p->nnodes == 0)
        return phx_error_set(err, "Nodes=%s names no node", v);
    qsort(p->nodes, p->nnodes, sizeof(*p->nodes), cmp_str);
    return (p->nodes_text = strdup(v)) ? 0 : phx_error_set(err, "out of memory");
}

static int set_groups(bpart_t *p, const char *v, phx_error_t *err)
{
    if (!(p->allow_text = strdup(v)))
        return phx_error_set(err, "out of memory");
    if (strcasecmp(v, "ALL") == 0)
        return 0;
    char *copy = strdup(v), *save = NULL;
    if (!copy || !(p->allow = calloc(PART_GROUPS_MAX, sizeof(gid_t)))) {
        free(copy);
        return phx_error_set(err, "out of memory");
    }
    int rc = 0;
    for (char *g = strtok_r(copy, ",", &save); g && rc == 0;
         g = strtok_r(NULL, ",", &save)) {
        struct group gr, *res = NULL;
        char buf[16384];
        if (p->nallow == PART_GROUPS_MAX)
            rc =
                phx_error_set(err, "AllowGroups: more than %d groups", PART_GROUPS_MAX);
        else if (getgrnam_r(g, &gr, buf, sizeof(buf), &res) != 0 || !res)
            rc = phx_error_set(err, "AllowGroups: no group \"%s\" on this host", g);
        else
            p->allow[p->nallow++] = res->gr_gid;
    }
    free(copy);
    if (rc == 0 && p->nallow == 0)
        rc = phx_error_set(err, "AllowGroups=%s names no group", v);
    return rc;
}

bool batchd_account_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > ACCOUNT_MAX || s[0] == '-' || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/* AllowAccounts=a,b|ALL or DenyAccounts=a,b (deny), at most one of them. */
static int set_accounts(bpart_t *p, const char *key, bool deny, const char *v,
                        phx_error_t *err)
{
    if (p->accounts_text)
        return p->deny_accounts == deny
                   ? phx_error_set(err, "%s given twice", key)
                   : phx_error_set(err,
                                   "AllowAccounts and DenyAccounts on one partition: "
                                   "give one of them");
    p->deny_accounts = deny;
    if (!(p->accounts_text = strdup(v)))
        return phx_error_set(err, "out of memory");
    if (strcasecmp(v, "ALL") == 0)
        return deny ? phx_error_set(err, "DenyAccounts=ALL would refuse every job (use "
                                         "State=INACTIVE, or AllowAccounts)")
                    : 0;
    if (!(p->accounts = calloc(PART_ACCTS_MAX, sizeof(char *))))
        return phx_error_set(err, "out of memory");
    for (const char *at = v; *at;) {
        const char *comma = strchr(at, ','), *n = at;
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        at = comma ? comma + 1 : at + len;
        if (!batchd_account_name_ok(n, len))
            return phx_error_set(err,
                                 "%s=%s: \"%.*s\" is not an account name (1 to %d "
                                 "letters, digits, '_', '-' or '.')",
                                 key, v, (int)(len < 80 ? len : 80), n, ACCOUNT_MAX);
        if (p->naccounts == PART_ACCTS_MAX)
            return phx_error_set(err, "%s: more than %d accounts", key, PART_ACCTS_MAX);
        char *a = strndup(n, len);
        if (!a)
            return phx_error_set(err, "out of memory");
        for (char *c = a; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        p->accounts[p->naccounts++] = a;
        if (comma && !*at)
            return phx_error_set(err, "%s=%s: an empty account name", key, v);
    }
    qsort(p->accounts, p->naccounts, sizeof(char *), cmp_str);
    return 0;
}

const char *batchd_conf_word(char *tok, const char **value, phx_error_t *err)
{
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok || !eq[1]) {
        phx_error_set(err, "\"%s\" is not KEY=VALUE", tok);
        return NULL;
    }
    *eq = '\0';
    *value = eq + 1;
    return tok;
}

int batchd_partition_parse(const char *spec, int64_t default_time, int64_t max_time,
                           bpart_t *out, bool *is_default, phx_error_t *err)
{
    memset(out, 0, sizeof(*out));
    *is_default = false;
    out->default_time = default_time;
    out->max_time = max_time;
    out->prio_factor = 1;
    bool has_default = false;
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
        return phx_error_set(err, "out of memory");
    int rc = 0;
    for (char *tok = strtok_r(copy, " \t", &save); tok && rc == 0;
         tok = strtok_r(NULL, " \t", &save)) {
        const char *v, *k = batchd_conf_word(tok, &v, err);
        if (!k) {
            rc = -1;
            break;
        }
        if (strcasecmp(k, "PartitionName") == 0) {
            if (out->name)
                rc = phx_error_set(err, "PartitionName given twice");
            else if (!name_ok(v))
                rc = phx_error_set(err,
                                   "PartitionName=%s: a name is 1 to 64 letters, "
                                   "digits, '_', '-' or '.'",
                                   v);
            else if (!(out->name = strdup(v)))
                rc = phx_error_set(err, "out of memory");
        } else if (strcasecmp(k, "Nodes") == 0) {
            if (out->nodes_text)
                rc = phx_error_set(err, "Nodes given twice");
            else
                rc = set_nodes(out, v, err);
        } else if (strcasecmp(k, "Default") == 0) {
            if (yes_no(v, is_default) < 0)
                rc = phx_error_set(err, "Default=%s: YES or NO", v);
        } else if (strcasecmp(k, "MaxTime") == 0) {
            if (phx_time_parse(v, &out->max_time, err) < 0)
                rc = phx_error_prefix(err, "MaxTime");
        } else if (strcasecmp(k, "DefaultTime") == 0) {
            if (phx_time_parse(v, &out->default_time, err) < 0)
                rc = phx_error_prefix(err, "DefaultTime");
            has_default = true;
        } else if (strcasecmp(k, "State") == 0) {
            size_t i;
            for (i = 0;
                 i < 4 && strcasecmp(v, batchd_part_state_name((bpart_state_t)i)); i++)
                ;
            if (i == 4)
                rc = phx_error_set(err, "State=%s: UP, DOWN, DRAIN or INACTIVE", v);
            out->state = (bpart_state_t)(i < 4 ? i : 0);
        } else if (strcasecmp(k, "PriorityJobFactor") == 0) {
            char *end;
            unsigned long f = strtoul(v, &end, 10);
            if (*end || !isdigit((unsigned char)*v) || f > PART_PRIO_MAX)
                rc = phx_error_set(err, "PriorityJobFactor=%s: a whole number 0-%d", v,
                                   PART_PRIO_MAX);
            out->prio_factor = (uint32_t)f;
        } else if (strcasecmp(k, "AllowGroups") == 0) {
            if (out->allow_text)
                rc = phx_error_set(err, "AllowGroups given twice");
            else
                rc = set_groups(out, v, err);
        } else if (strcasecmp(k, "AllowAccounts") == 0) {
            rc = set_accounts(out, "AllowAccounts", false, v, err);
        } else if (strcasecmp(k, "DenyAccounts") == 0) {
            rc = set_accounts(out, "DenyAccounts", true, v, err);
        } else if (strcasecmp(k, "Hidden") == 0) {
            if (yes_no(v, &out->hidden) < 0)
                rc = phx_error_set(err, "Hidden=%s: YES or NO", v);
        } else {
            rc = phx_error_set(err,
                               "unknown key \"%s\" (PartitionName, Nodes, Default, "
                               "MaxTime, DefaultTime, State, PriorityJobFactor, "
                               "AllowGroups, AllowAccounts, DenyAccounts, Hidden)",
                               k);
        }
    }
    free(copy);
    if (rc == 0 && !out->name)
        rc = phx_error_set(err, "no PartitionName=");
    else if (rc == 0 && !out->nodes_text)
        rc = phx_error_set(err, "no Nodes= (a host list, or ALL)");
    if (rc == 0 && out->max_time > 0 &&
        (out->default_time == 0 || out->default_time > out->max_time)) {
        if (has_default) {
            char t[32];
            phx_time_format(out->max_time, t, sizeof(t));
            rc = phx_error_set(err, "DefaultTime is beyond MaxTime (%s)", t);
        } else {
            out->default_time = out->max_time; /* the global default does not fit */
        }
    }
    if (rc < 0) {
        batchd_partition_clear(out);
        errno = EINVAL;
    }
    return rc;
}

void batchd_partition_clear(bpart_t *p)
{
    free(p->name);
    phx_hostlist_free(p->nodes, p->nnodes);
    free(p->nodes_text);
    free(p->allow);
    free(p->allow_text);
    for (size_t i = 0; i < p->naccounts; i++)
        free(p->accounts[i]);
    free(p->accounts);
    free(p->accounts_text);
    memset(p, 0, sizeof(*p));
}

void batchd_parts_clear(bparts_t *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        batchd_partition_clear(&ps->v[i]);
    free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

int batchd_parts_make(const phx_conf_t *conf, int64_t default_time, int64_t max_time,
                      bparts_t *out, phx_error_t *err)
{
    memset(out, 0, sizeof(*out));
    size_t n = phx_conf_list_len(conf, "batchd.partitions");
    const char *named = phx_conf_str(conf, "batchd.partition");
    if (n == 0) {
        if (!named || !name_ok(named)) {
            errno = EINVAL;
            return phx_error_set(
                err,
                "batchd.partition: \"%s\" is not a partition name (1 to 64 "
                "letters, digits, '_', '-' or '.')",
                named ? named : "");
        }
        char spec[160];
        snprintf(spec, sizeof(spec), "PartitionName=%s Nodes=ALL", named ? named : "");
        bool d;
        if (!(out->v = calloc(1, sizeof(*out->v))))
            return phx_error_set(err, "out of memory");
        if (batchd_partition_parse(spec, default_time, max_time, &out->v[0], &d, err) <
            0) {
            batchd_parts_clear(out);
            return phx_error_prefix(err, "batchd.partition");
        }
        out->n = 1;
        out->max_prio_factor = out->v[0].prio_factor;
        return 0;
    }
    if (n > BATCHD_PARTS_MAX)
        return phx_error_set(err, "batchd.partitions: %zu partitions, at most %d", n,
                             BATCHD_PARTS_MAX);
    if (!(out->v = calloc(n, sizeof(*out->v))))
        return phx_error_set(err, "out of memory");
    ssize_t deflt = -1;
    for (size_t i = 0; i < n; i++) {
        bool d;
        if (batchd_partition_parse(phx_conf_list_get(conf, "batchd.partitions", i),
                                   default_time, max_time, &out->v[i], &d, err) < 0) {
            phx_error_prefix(err, "batchd.partitions[%zu]", i);
            goto fail;
        }
        out->n = i + 1;
        if (batchd_parts_find(out, out->v[i].name, NULL) != &out->v[i]) {
            phx_error_set(err, "batchd.partitions[%zu]: partition \"%s\" given twice",
                          i, out->v[i].name);
            goto fail;
        }
        if (d && deflt >= 0) {
            phx_error_set(err, "batchd.partitions[%zu]: Default=YES again (\"%s\" is)",
                          i, out->v[deflt].name);
            goto fail;
        }
        if (d)
            deflt = (ssize_t)i;
    }
    if (phx_conf_is_set(conf, "batchd.partition")) {
        size_t k;
        if (!batchd_parts_find(out, named, &k)) {
            phx_error_set(
                err,
                "batchd.partition: \"%s\" is none of batchd.partitions (it names "
                "the default one)",
                named);
            goto fail;
        }
        if (deflt >= 0 && (size_t)deflt != k) {
            phx_error_set(
                err,
                "batchd.partition: \"%s\", but batchd.partitions makes \"%s\" "
                "the default",
                named, out->v[deflt].name);
            goto fail;
        }
        deflt = (ssize_t)k;
    }
    out->deflt = deflt >= 0 ? (size_t)deflt : 0;
    for (size_t i = 0; i < out->n; i++)
        if (out->v[i].prio_factor > out->max_prio_factor)
            out->max_prio_factor = out->v[i].prio_factor;
    return 0;
fail:
    batchd_parts_clear(out);
    errno = EINVAL;
    return -1;
}

/* The partition called name[0..len), or NULL. */
static const bpart_t *find_n(const bparts_t *ps, const char *name, size_t len,
                             size_t *index)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strlen(ps->v[i].name) == len && memcmp(ps->v[i].name, name, len) == 0) {
            if (index)
                *index = i;
            return &ps->v[i];
        }
    return NULL;
}

const char *batchd_parts_next(const char **list, size_t *len)
{
    const char *s = *list;
    if (!s || !*s)
        return NULL;
    const char *comma = strchr(s, ',');
    *len = comma ? (size_t)(comma - s) : strlen(s);
    *list = comma ? comma + 1 : s + *len;
    return s;
}

const bpart_t *batchd_parts_find(const bparts_t *ps, const char *name, size_t *index)
{
    if (!name) {
        if (ps->n == 0)
            return NULL;
        if (index)
            *index = ps->deflt;
        return &ps->v[ps->deflt];
    }
    const char *at = name, *n;
    size_t len;
    while ((n = batchd_parts_next(&at, &len)))
        if (len > 0) {
            const bpart_t *p = find_n(ps, n, len, index);
            if (p)
                return p;
        }
    return NULL;
}

bool batchd_parts_list_has(const char *list, const char *name)
{
    const char *n;
    size_t len;
    while ((n = batchd_parts_next(&list, &len)))
        if (strlen(name) == len && memcmp(n, name, len) == 0)
            return true;
    return false;
}

uint64_t batchd_parts_node_mask(const bparts_t *ps, const char *node)
{
    uint64_t m = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const bpart_t *p = &ps->v[i];
        if (p->all || bsearch(&node, p->nodes, p->nnodes, sizeof(*p->nodes), cmp_str))
            m |= UINT64_C(1) << i;
    }
    return m;
}

/* The bits of the partitions listed in name (NULL: the default) that run
 * jobs (all of them, or only UP and DRAIN ones), BATCHD_PART_GONE if none. */
static uint64_t list_mask(const bparts_t *ps, const char *name, bool running)
{
    size_t i, len;
    uint64_t m = 0;
    if (ps->n == 0)
        return 0; /* none configured: any node */
    if (!name) {
        const bpart_t *p = batchd_parts_find(ps, NULL, &i);
        if (p && (!running || (p->state != BPART_DOWN && p->state != BPART_INACTIVE)))
            m = UINT64_C(1) << i;
    }
    const char *at = name, *n;
    while ((n = batchd_parts_next(&at, &len))) {
        const bpart_t *p = find_n(ps, n, len, &i);
        if (p && (!running || (p->state != BPART_DOWN && p->state != BPART_INACTIVE)))
            m |= UINT64_C(1) << i;
    }
    return m ? m : BATCHD_PART_GONE;
}

uint64_t batchd_parts_job_mask(const bparts_t *ps, const char *name)
{
    return list_mask(ps, name, false);
}

bool batchd_parts_same(const bparts_t *a, const bparts_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const bpart_t *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->name, y->name) != 0 || x->all != y->all || x->state != y->state ||
            strcmp(x->nodes_text ? x->nodes_text : "",
                   y->nodes_text ? y->nodes_text : "") != 0)
            return false;
    }
    return true;
}

void batchd_parts_names(const bparts_t *ps, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ps->n && at < len; i++)
        at +=
            (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", ps->v[i].name);
}

json_t *batchd_parts_json(const bparts_t *ps, uint64_t shown)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < ps->n; i++) {
        const bpart_t *p = &ps->v[i];
        if (!(shown & (UINT64_C(1) << i)))
            continue;
        char mt[32], dt[32];
        phx_time_format(p->max_time, mt, sizeof(mt));
        phx_time_format(p->default_time, dt, sizeof(dt));
        const char *accts = p->accounts_text ? p->accounts_text : "ALL";
        json_array_append_new(
            a, json_pack("{s:s, s:b, s:s, s:s, s:I, s:s, s:I, s:s, s:b, s:s, s:s, s:s}",
                         "name", p->name, "default", i == ps->deflt, "state",
                         batchd_part_state_name(p->state), "nodes", p->nodes_text,
                         "max_time", (json_int_t)p->max_time, "max_time_text", mt,
                         "default_time", (json_int_t)p->default_time,
                         "default_time_text", dt, "hidden", p->hidden, "allow_groups",
                         p->allow_text ? p->allow_text : "ALL", "allow_accounts",
                         p->deny_accounts ? "ALL" : accts, "deny_accounts",
                         p->deny_accounts ? accts : ""));
    }
    return a;
}

double batchd_parts_prio(const bparts_t *ps, const char *name)
{
    if (ps->max_prio_factor == 0)
        return 0;
    uint32_t best = 0;
    const bpart_t *p = name ? NULL : batchd_parts_find(ps, NULL, NULL);
    if (p)
        best = p->prio_factor;
    const char *at = name, *n;
    size_t len;
    while ((n = batchd_parts_next(&at, &len)))
        if ((p = find_n(ps, n, len, NULL)) && p->prio_factor > best)
            best = p->prio_factor;
    return (double)best / (double)ps->max_prio_factor;
}

bool batchd_partition_allows(const bpart_t *p, uid_t uid, gid_t gid, const char *user)
{
    if (!p->allow || uid == 0)
        return true;
    gid_t groups[1024];
    int n = (int)(sizeof(groups) / sizeof(groups[0]));
    if (getgrouplist(user, gid, groups, &n) < 0) { /* more than 1024: the first */
        n = (int)(sizeof(groups) / sizeof(groups[0]));
    }
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < p->nallow; k++)
            if (groups[i] == p->allow[k])
                return true;
    return false;
}

static int cmp_case(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

bool batchd_partition_account_ok(const bpart_t *p, const char *account,
                                 phx_error_t *err)
{
    if (!p->accounts)
        return true; /* AllowAccounts=ALL, or neither key */
    bool listed = account && bsearch(&account, p->accounts, p->naccounts,
                                     sizeof(*p->accounts), cmp_case);
    if (p->deny_accounts && listed) {
        phx_error_set(err, "account %s may not use partition %s (DenyAccounts=%s)",
                      account, p->name, p->accounts_text);
        return false;
    }
    if (!p->deny_accounts && !listed) {
        if (account)
            phx_error_set(err, "account %s may not use partition %s (AllowAccounts=%s)",
                          account, p->name, p->accounts_text);
        else
            phx_error_set(
                err,
                "partition %s takes jobs of accounts %s only (AllowAccounts): "
                "give one with -A",
                p->name, p->accounts_text);
        return false;
    }
    return true;
}

const char *batchd_part_state_name(bpart_state_t st)
{
    static const char *const names[] = {"up", "down", "drain", "inactive"};
    return (unsigned)st < 4 ? names[st] : "?";
}

uint64_t batchd_parts_run_mask(const bparts_t *ps, const char *name)
{
    return list_mask(ps, name, true);
}
