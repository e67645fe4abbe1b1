/* Partitions: named sets of nodes with their own time limits, as Slurm's
 * (PartitionName=... Nodes=... in slurm.conf), so that scripts asking for
 * `#SBATCH -p compute` run unchanged.  A job runs in one partition, on its
 * nodes only.  Without batchd.partitions there is one partition,
 * batchd.partition, of every node. */
#ifndef PHX_BATCHD_PARTITION_H
#define PHX_BATCHD_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/error.h"

#define BATCHD_PARTS_MAX 63 /* one bit each in a node's mask */
/* The mask of a job whose partition is gone from the configuration: no
 * node has it, so the job waits (reason Resources) until it is back. */
#define BATCHD_PART_GONE (UINT64_C(1) << 63)

/* State=: UP runs and takes jobs, DOWN takes them and runs none, DRAIN runs
 * those it has and takes no more, INACTIVE neither. */
typedef enum bpart_state {
    BPART_UP,
    BPART_DOWN,
    BPART_DRAIN,
    BPART_INACTIVE
} bpart_state_t;

typedef struct bpart {
    char *name;
    bool all;     /* Nodes=ALL: every node, also ones not known yet */
    char **nodes; /* sorted */
    size_t nnodes;
    char *nodes_text;
    int64_t default_time, max_time; /* seconds; max 0: none */
    uint32_t prio_factor;           /* PriorityJobFactor (1) */
    bpart_state_t state;
    gid_t *allow; /* AllowGroups; NULL: ALL */
    size_t nallow;
    char *allow_text;
    /* AllowAccounts (NULL: ALL) or DenyAccounts (NULL: none), never both;
     * lower case, sorted */
    char **accounts;
    size_t naccounts;
    bool deny_accounts; /* accounts is DenyAccounts */
    char *accounts_text;
    bool hidden; /* Hidden=YES */
} bpart_t;

typedef struct bparts {
    bpart_t *v;
    size_t n;
    size_t deflt;             /* the default partition's index */
    uint32_t max_prio_factor; /* the largest PriorityJobFactor */
} bparts_t;

/* A word "KEY=VALUE" of a slurm.conf-style line, split in place: the key,
 * and *value; NULL with err when the word is not KEY=VALUE. */
const char *batchd_conf_word(char *tok, const char **value, phx_error_t *err);

/* Parse one "PartitionName=N Nodes=L [Default=YES|NO] [MaxTime=T]
 * [DefaultTime=T] [PriorityJobFactor=N] [AllowGroups=G,...|ALL]
 * [AllowAccounts=A,...|ALL | DenyAccounts=A,...] [Hidden=YES|NO]" (keys in
 * any case; account names in any case, kept in lower case); times default to
 * default_time and max_time (batchd.default_time_limit, batchd.max_time_limit).
 * *is_default tells Default=YES.  0 or -1 with err naming the key (and an unknown
 * group). */
int batchd_partition_parse(const char *spec, int64_t default_time, int64_t max_time,
                           bpart_t *out, bool *is_default, phx_error_t *err);
void batchd_partition_clear(bpart_t *p);

/* The partitions of a configuration (batchd.partitions, batchd.partition);
 * errors name the key and the entry. */
int batchd_parts_make(const phx_conf_t *conf, int64_t default_time, int64_t max_time,
                      bparts_t *out, phx_error_t *err);
void batchd_parts_clear(bparts_t *ps);

/* The partition called name (NULL: the default), or NULL; for a list
 * ("short,long", sbatch -p's), the first of it that exists. */
const bpart_t *batchd_parts_find(const bparts_t *ps, const char *name, size_t *index);
/* The next name of a list "a,b" at *list: its start (len bytes), *list
 * moved past it; NULL at the end. */
const char *batchd_parts_next(const char **list, size_t *len);
/* Does the list "a,b" name name? */
bool batchd_parts_list_has(const char *list, const char *name);
/* Bit i set: node is in partition i. */
uint64_t batchd_parts_node_mask(const bparts_t *ps, const char *node);
/* The mask a job of partition name may use: the bits of the partitions
 * it lists that exist (BATCHD_PART_GONE if none; 0, any node, when ps has
 * no partitions).  A job of several runs within one of them. */
uint64_t batchd_parts_job_mask(const bparts_t *ps, const char *name);
/* The same without the partitions that run no job (DOWN, INACTIVE): what
 * the planner and placement use. */
uint64_t batchd_parts_run_mask(const bparts_t *ps, const char *name);
/* "up", "down", "drain", "inactive". */
const char *batchd_part_state_name(bpart_state_t st);
/* [{name, default, nodes (as configured), max_time, default_time (seconds,
 * 0: none) and their texts, hidden, allow_groups, allow_accounts,
 * deny_accounts}] of the partitions whose bit is set in shown, for phx
 * partitions and sinfo. */
json_t *batchd_parts_json(const bparts_t *ps, uint64_t shown);
/* The job's partition factor of priority: its PriorityJobFactor over the
 * largest one (0..1; 0 for a partition not configured; of a list, its
 * largest). */
double batchd_parts_prio(const bparts_t *ps, const char *name);
/* May the user (uid, primary gid, name) run jobs in p?  Root always; else
 * ALL, or one of the user's groups in AllowGroups. */
bool batchd_partition_allows(const bpart_t *p, uid_t uid, gid_t gid, const char *user);
/* May a job charged to account (NULL: none) run in p (AllowAccounts,
 * DenyAccounts; names compared in any case)?  false with err saying why. */
bool batchd_partition_account_ok(const bpart_t *p, const char *account,
                                 phx_error_t *err);
/* An account name: 1 to 64 letters, digits, '_', '-' or '.', not starting
 * with '-' or '.' (len bytes of s). */
bool batchd_account_name_ok(const char *s, size_t len);
/* The same partitions (names, nodes as configured, states, in order)? */
bool batchd_parts_same(const bparts_t *a, const bparts_t *b);
/* "a, b, c" into buf, for messages. */
void batchd_parts_names(const bparts_t *ps, char *buf, size_t len);

#endif
