/* phx-batchd: the daemon's state, shared by its files (loop thread only).
 *
 *   main.c     configuration, init and teardown ladders, timers, signals
 *   cluster.c  the nodes (agents table), for checks at submit and the planner
 *   queue.c    the in-memory queue, loaded from the database; transitions
 *   submit.c   POST /api/v1/jobs: parse, check, insert, answer after commit
 *   jobids.c   job ids for submissions, taken from the database in blocks
 *   api.c      the other user calls (list, show, cancel)
 *   hold.c     holds and releases (JobHeldUser, JobHeldAdmin)
 *   update.c   scontrol update for jobs: fields and rules (update_api.c)
 *   sched.c    offers → plan (priority, EASY backfill) → ACCEPT, REQUEST
 *   place.c    topology-aware packing of one job's share into one offer
 *   launch.c   TaskInfos of a job (batch step, holders), environment
 *   end.c      status updates → job end, requeue, accounting
 *   kill.c     cancel; a change's kill sent once its write committed */
#ifndef PHX_BATCHD_BATCHD_H
#define PHX_BATCHD_BATCHD_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "daemons/batchd/accounts.h"
#include "daemons/batchd/array.h"
#include "daemons/batchd/backfill.h"
#include "daemons/batchd/depend.h"
#include "daemons/batchd/features.h"
#include "daemons/batchd/jobspec.h"
#include "daemons/batchd/partition.h"
#include "daemons/batchd/priority.h"
#include "daemons/batchd/update.h"
#include "db/store.h"
#include "lib/config.h"
#include "lib/framework.h"
#include "lib/hmap.h"
#include "lib/munge.h"

#define BATCHD_FRAMEWORK_NAME "phx-batchd"

/* One task of a running job: one per node, index 0 runs the script. */
typedef struct bj_task {
    char id[64];
    char agent_id[32];
    char host[128];
    uint32_t cpus;  /* cores granted */
    uint32_t tasks; /* job tasks (ranks) on this node */
    uint64_t mem;   /* MiB */
    uint64_t gpus;  /* GPUs granted: bit i is device i (gpus.c) */
    bool ended;
} bj_task_t;

typedef struct bjob {
    uint64_t id;
    uint64_t array_job_id;  /* 0: not an array task */
    int64_t array_task_id;  /* -1: not an array task */
    uint32_t array_max_run; /* the %N throttle of its array, 0: none */
    /* its array's count, min, max and step, known once per array (at
     * submission, or per array at load): its launch only formats them */
    phx_array_stats_t array_stats;
    phx_jobspec_t spec;
    uid_t uid;
    gid_t gid;
    char *user;
    char *script;
    json_t *env;  /* object NAME → value (the submitter's), may be NULL */
    json_t *args; /* array of the script's arguments, may be NULL */
    char *submit_dir, *submit_host, *submit_line;
    phx_depend_t dep;
    phx_job_state_t state;
    phx_job_reason_t reason;
    uint32_t priority;
    int64_t submit_time, eligible_time, start_time, end_time; /* -1: none */
    /* pending: the start its pool's EASY reservation holds for it (the
     * shadow time) in plan expected_plan (batchd_t.plan_no), -1 if none */
    int64_t expected_start;
    uint64_t expected_plan;
    int exit_code, exit_signal;
    int requeue_count;
    uint8_t requeue_asked; /* batchd_requeue_t: requeue.c, by a user */
    uint16_t mail_sent;    /* TIME_LIMIT* mails of this run sent (mail.h bits) */
    int64_t mail_limit;    /* the time limit they were for (phx update) */
    int64_t requeued_run;  /* seconds of the run requeue.c requeued (its
                              REQUEUE mail: the times are gone), -1: none */
    bool cancel_requested;
    /* writes recording a change of its run (cancel, requeue, a lowered
     * time limit) not yet committed: nothing kills it for them (kill.c) */
    uint16_t kill_wait;
    /* writes recording a change that may let it start (a release, an
     * update of a pending job) not yet committed: not placed (order.c) until
     * they are, so that no start follows a change the database does not
     * know (kill.c: batchd_job_persist_placed) */
    uint16_t place_wait;
    /* with batchd.enforce_accounts, its user is not a member of its account
     * (accounts_db.c, at each read of account_users): not started while
     * pending, reason InvalidAccount (order.c) */
    bool account_invalid;
    bool ending; /* the batch step ended; waiting for the holders */
    bool node_fail;
    phx_job_state_t end_state;
    /* the allocation of the current run */
    bj_task_t *tasks;
    size_t ntasks;
    size_t tasks_live;
    char *node_list;
    char *stdout_path, *stderr_path;
    int64_t alloc_cpus;
    /* gang request outstanding for it ("" when none) */
    char request_id[48];
    uint32_t request_pool;           /* the planner's pool it was sent for */
    uint64_t run_mask, run_mask_gen; /* partitions it may run in, as of
                                        batchd_t.parts_gen (sched.c) */
    char *part_list; /* -p a,b while it runs in one (spec.partition): the
                        list again if it is requeued */
    int64_t request_until;
    int64_t request_after; /* the master refused its last one: not before */
    /* the nodes its -w, -x, -C allow (nodesel.c), as of b->nodes_gen */
    uint64_t *nodes_ok;
    uint64_t nodes_ok_gen;
    /* update_api.c: the start time of the run whose time limit was lowered
     * while it ran (batchd kills it at the new limit), 0: none */
    int64_t limit_start;
} bjob_t;

/* A gang request batchd no longer tracks, to cancel at the master. */
typedef struct batchd_cancel {
    char id[48];
    int64_t until; /* moot after: the master let it expire */
} batchd_cancel_t;

/* A node, from the agents table. */
typedef struct bnode {
    char agent_id[32];
    char name[128];
    uint32_t cores;
    uint32_t sockets;
    uint32_t threads; /* per core (PUs / cores) */
    uint64_t mem;     /* MiB */
    bool usable;
    uint64_t parts;    /* the partitions it is in (partition.h) */
    uint64_t features; /* its features (features.h) */
    uint32_t ngpus;    /* its GPUs (devices of kind gpu, ids below 64) */
    struct bgpu {
        int id;         /* device id in its topology */
        char model[64]; /* "NVIDIA A100-SXM4-40GB" */
        uint8_t cls;    /* its class in the last scheduling pass's planner
                           (batchd_gpu_classes) */
    } * gpu;            /* ngpus of them (cluster.c) */
} bnode_t;

/* An offer while a pass uses it. */
typedef struct boffer {
    char id[96];
    char agent_id[32];
    char host[128];
    json_t *topology; /* "numa" array (borrowed from the event while used) */
    uint32_t cpus;
    uint64_t mem;             /* MiB */
    uint64_t gpus;            /* free GPUs offered: bit i is device i */
    double release_by;        /* seconds since the epoch, 0: none */
    char request_id[48];      /* "" when none */
    bool used;                /* takes no more jobs in this pass */
    bool accepted;            /* holds jobs of this pass: part of its ACCEPT */
    const struct bjob *owner; /* the job whose gang request it satisfies */
    /* free cores per NUMA domain while packing: cores[] ids, nfree */
    struct bo_numa {
        int numa, socket;
        int *cores;
        int ncores;
        int64_t mem;   /* MiB */
        int lo, hi;    /* its lowest and highest core offered (ids are dense
                          per domain), -1 when none */
        uint64_t gpus; /* free GPUs local to it, bit i is device i */
    } * numas;
    int nnumas;
} boffer_t;

typedef struct batchd_jobids batchd_jobids_t;

typedef struct batchd {
    phx_conf_t *conf;
    struct event_base *base;
    phx_db_store_t *store;
    batchd_jobids_t *jobids;
    phx_munge_t *munge;
    struct evhttp *http;
    struct phx_http_limit *http_limit; /* batchd.max_http_connections */
    struct phx_http_guard *http_guard; /* credentials before bodies; the limit's */
    phx_fwc_t *fwc;
    char *dsn;
    struct event *tick, *sigint, *sigterm, *sighup, *sched_ev;
    struct batchd_mail *mail; /* mail.c; NULL: batchd.mail_prog unset */
    const char *conf_file;    /* for reloading: -c FILE (NULL: none) */
    char **conf_sets;         /* and the -s overrides */
    int conf_nsets;
    bool verbose; /* -v: debug whatever the configuration says */
    /* settings */
    uid_t *operators;
    size_t noperators;
    size_t max_script;
    int64_t default_time, max_time;
    int64_t default_mem_per_cpu; /* MiB */
    int kill_grace;
    int max_requeue;
    int64_t keep_ended; /* seconds a finished job stays in memory */
    double refuse_seconds;
    char *compat_dir;      /* NULL: none; owned */
    bool slurm_env;        /* batch scripts also get SLURM_* (batchd.slurm_env) */
    bool mpirun_env;       /* OpenMPI's mpirun through phx-rsh (batchd.mpirun_env) */
    const char *partition; /* the default one's name */
    bparts_t parts;
    /* accounts (accounts_db.c): enforced once account_users is loaded */
    bool enforce_accounts;
    baccounts_t *accounts; /* NULL while not enforced */
    int64_t accounts_loaded, accounts_refresh;
    bool accounts_loading;
    phx_prio_weights_t weights;
    phx_bf_params_t bf;
    phx_jobspec_limits_t limits;
    /* the queue */
    phx_hmap_t *jobs;        /* id text → bjob_t */
    phx_hmap_t *array_tasks; /* "A_T" (array job id, task index) → bjob_t */
    bjob_t **order;          /* every job, by id */
    size_t njobs, cap;
    size_t live_from; /* order[0 .. live_from) are all final (batchd_live_from) */
    /* the eligible pending jobs in priority order (sched.c), when made */
    bjob_t **prio_order;
    uint32_t *prio_value;
    size_t prio_n;
    int64_t prio_at;
    bool prio_dirty;   /* jobs became pending since */
    phx_hmap_t *tasks; /* task id → bjob_t */
    phx_hmap_t *usage; /* user name → phx_usage_t (decayed cpu-seconds) */
    size_t npending, nrunning;
    /* per-user limits (userlim.c; 0: none) and the counts they read */
    uint32_t max_jobs, max_jobs_per_user, max_running_per_user;
    phx_hmap_t *users; /* uid text → counts (userlim.c), made on first use */
    size_t inflight;   /* jobs of submissions not committed yet */
    /* eligible pending jobs (order.c) as of the last pass, less those it
     * started: 0 while every pending job waits (held, dependency,
     * InvalidAccount, ...), so that batchd SUPPRESSes offers (sched.c) */
    size_t neligible;
    /* the cluster */
    bnode_t *nodes;
    size_t nnodes;
    phx_hmap_t *node_index; /* agent id → &nodes[i] */
    phx_hmap_t *node_names; /* name → &nodes[i], &batchd_node_lost when lost */
    uint64_t *nodes_none;   /* a bitmap of no node (nodesel.c) */
    int64_t nodes_loaded;
    bool nodes_loading;
    uint64_t nodes_gen;   /* bumped when the nodes or their features change */
    bfeatures_t features; /* batchd.node_features */
    /* scheduling */
    bool subscribed, suppressed, sched_pending;
    bool declined, want_revive; /* filters set since the last REVIVE */
    double last_revive;
    uint64_t request_seq;
    uint64_t parts_gen;     /* bumped when the partitions change (reload) */
    uint8_t pool_roots[64]; /* the pools of the last pass (sched.c) */
    bool pool_roots_set;
    /* the jobs with a gang request outstanding (request_id set): a new
     * request cancels its pool's others without a walk over every job */
    struct bjob **requested;
    size_t nrequested, requested_cap;
    /* requests forgotten, to cancel at the master when batchd_request_flush
     * can (subscribed; after the pass's ACCEPT) */
    batchd_cancel_t *cancels;
    size_t ncancels, cancels_cap;
    uint64_t launched, ended, passes;
    uint64_t plan_no; /* EASY plans made (sched.c): bjob_t.expected_plan */
    double pass_time; /* seconds spent in passes with offers */
    /* running jobs with a lowered time limit (update_api.c) */
    size_t limits_lowered;
    bool limits_scanned;
    /* the POST being handled: its writes, answered once committed (ack.c) */
    struct batchd_ack *ack;
    /* submissions with an Idempotency-Key not yet answered (submit.c) */
    struct submission *submit_inflight;
    /* leader.c: the election (db/leader.h) */
    struct phx_db_leader *leader;
    bool standby;        /* another batchd leads: refuse every request */
    bool failed;         /* exit with 1 when the loop ends */
    bool reload_pending; /* SIGHUP while standing by: reload once leading */
} batchd_t;

/* ack.c: a change is answered once committed.  Between begin and end (the
 * router, around a POST's handler) the writes queued through batchd_write
 * and batchd_write_row are counted, and batchd_reply answers after the last
 * of them committed, or 503 if one failed.  Without a request they are
 * phx_db_store_write and phx_db_store_write_row. */
typedef struct batchd_ack batchd_ack_t;
void batchd_ack_begin(batchd_t *b);
void batchd_ack_end(batchd_t *b);
int batchd_write(batchd_t *b, const char *sql, int nparams, const char *const *params,
                 phx_db_done_f cb, void *arg, phx_error_t *err);
int batchd_write_row(batchd_t *b, const phx_db_rows_t *kind, const char *const *params,
                     phx_db_done_f cb, void *arg, phx_error_t *err);
/* Answer req with body (stolen) and code once the writes counted so far
 * committed (at once if none is outstanding). */
void batchd_reply(batchd_t *b, struct evhttp_request *req, int code, json_t *body);

/* main.c */
/* Elected (leader.c): load the queue and the nodes, open the store fenced
 * with our epoch, subscribe.  Blocking. */
int batchd_start_leading(batchd_t *b, phx_error_t *err);
int64_t batchd_now(void);

/* leader.c: elect takes the leader lock (batchd_start_leading runs) or
 * stands by (0), or fails (-1).  standby_http answers req with the
 * standby's refusal (503) and returns true while standing by. */
int batchd_elect(batchd_t *b, phx_error_t *err);
int batchd_fence_store(batchd_t *b, phx_error_t *err);
/* From the tick: after a stall, exits if another batchd leads. */
void batchd_leader_check(batchd_t *b);
void batchd_leader_stop(batchd_t *b);
bool batchd_standby_http(batchd_t *b, struct evhttp_request *req);
bool batchd_is_operator(const batchd_t *b, uid_t uid);

/* cluster.c */
extern const bnode_t batchd_node_lost;
int batchd_nodes_load_sync(batchd_t *b, phx_error_t *err);
void batchd_nodes_refresh(batchd_t *b);
/* Free a node array of cluster.c (their GPU lists too); NULL is a no-op. */
void batchd_nodes_free(bnode_t *nodes, size_t n);
const bnode_t *batchd_node_by_agent(const batchd_t *b, const char *agent_id);
/* Refuse a spec the cluster can never run.  0 or -1 with err and *blame
 * (may be NULL) the offset in phx_jobspec_t of the option at fault, when
 * it is the choice of nodes (-w, -x, -C), else SIZE_MAX. */
int batchd_cluster_check(const batchd_t *b, const phx_jobspec_t *spec, size_t *blame,
                         phx_error_t *err);
int64_t batchd_cluster_cpus(const batchd_t *b);

/* nodesel.c: the nodes of b->nodes (bit i: b->nodes[i]) j may use by its
 * -w, -x and -C: NULL when it names none; kept in j until b->nodes_gen
 * changes (no node while it cannot be made). */
const uint64_t *batchd_job_nodes(const batchd_t *b, bjob_t *j);
/* The same for a spec, malloc'd into *out (NULL: any node).  0 or -1. */
int batchd_nodesel_make(const batchd_t *b, const phx_jobspec_t *s, uint64_t **out);
/* At submit: -w and -x name known nodes, -C the site's features.  0, or -1
 * with err and *field (offsetof in phx_jobspec_t) of the option at fault. */
int batchd_nodesel_check(const batchd_t *b, const phx_jobspec_t *s, size_t *field,
                         phx_error_t *err);

/* jobids.c */
/* n job ids, in increasing order (err NULL), or err, NULL and 0 when none
 * could be taken.  ids is valid during the call only. */
typedef void batchd_jobids_f(batchd_t *b, const uint64_t *ids, size_t n,
                             const phx_error_t *err, void *arg);
int batchd_jobids_init(batchd_t *b);
/* Call ready with the next n (> 0) job ids: before returning when they are
 * at hand (or none can be asked for), else once the database gave the next
 * block; in call order, so that job ids follow the order of submission.
 * -1 (ENOMEM, or n 0) and ready is never called. */
int batchd_jobids_take(batchd_t *b, size_t n, batchd_jobids_f *ready, void *arg);
/* Fail every waiter; after the store is destroyed.  NULL-safe. */
void batchd_jobids_destroy(batchd_t *b);

/* queue.c */
bjob_t *batchd_job_new(void);
void batchd_job_free(bjob_t *j);
int batchd_queue_add(batchd_t *b, bjob_t *j);
bjob_t *batchd_job_find(const batchd_t *b, uint64_t id);
/* Task `task` of array array_job_id, or NULL (also when it left memory). */
bjob_t *batchd_array_task_find(const batchd_t *b, uint64_t array_job_id, int64_t task);
/* A task of array array_job_id in memory, the lowest id first: the array
 * even once its job A (task 0) has left memory; NULL if none.  O(log n) to
 * reach the array, then a walk over ids from it. */
bjob_t *batchd_array_any_task(const batchd_t *b, uint64_t array_job_id);
/* order.c: the eligible pending jobs, best first, into cand (npending + 1
 * entries) and prio (prio[i].id indexes cand; priority set): their number,
 * at least want of them when there are (all when want is 0), also in
 * b->neligible.  Updates the jobs' pending reasons and eligible times on
 * the way. */
size_t batchd_order(batchd_t *b, int64_t now, size_t want, bjob_t **cand,
                    phx_prio_job_t *prio);
/* sched.c: a new plan of the n jobs examined (decisions d): each one's
 * reserved start (squeue --start), -1 if none; queue.c shows only the
 * latest plan's, so a job the plan did not examine shows none. */
static inline void batchd_expected_starts(batchd_t *b, bjob_t *const *jobs,
                                          const phx_bf_decision_t *d, size_t n)
{
    b->plan_no++;
    for (size_t i = 0; i < n; i++) {
        jobs[i]->expected_start =
            d[i].verdict == PHX_BF_RESERVED ? d[i].start_time : -1;
        jobs[i]->expected_plan = b->plan_no;
    }
}
/* The index in order of the first job that is not final. */
size_t batchd_live_from(batchd_t *b);
int batchd_queue_load(batchd_t *b, phx_error_t *err);
void batchd_queue_destroy(batchd_t *b);
void batchd_queue_expire(batchd_t *b, int64_t now);
/* The job as JSON for the API (new reference). */
json_t *batchd_job_json(const batchd_t *b, const bjob_t *j, bool full);
/* Persist the job's state, reason, times, allocation and exit. */
void batchd_job_persist(batchd_t *b, bjob_t *j);
/* The same with cb (arg) for the write's callback: 0, or -1 (logged) and
 * cb never runs. */
int batchd_job_persist_cb(batchd_t *b, bjob_t *j, phx_db_done_f cb, void *arg);
/* kill.c: batchd_job_persist for a change of a pending job that may let it
 * start (release, update): j is not placed (order.c) until that write has
 * committed; then a pass is asked.  The store commits its writes in order:
 * writes queued before (update_api.c's spec) are committed by then too. */
void batchd_job_persist_placed(batchd_t *b, bjob_t *j);
/* A store callback for a write of job (uint64_t)(uintptr_t)arg: logs a
 * failure. */
void batchd_job_written(const phx_error_t *err, phx_db_result_t *const *r, int n,
                        void *arg);
void batchd_job_set_state(batchd_t *b, bjob_t *j, phx_job_state_t st,
                          phx_job_reason_t why);
/* Fill the job's dependency environment for depend.c. */
void batchd_dep_env(batchd_t *b, bjob_t *j, phx_dep_env_t *env);
/* kill.c.  Ask the master to kill the job's tasks that have not ended
 * (none while batchd is not connected). */
void batchd_job_kill_live(batchd_t *b, const bjob_t *j);
/* Cancel: pending → CANCELLED now; running → its tasks killed once
 * jobs.cancel_uid is committed. */
void batchd_job_cancel(batchd_t *b, bjob_t *j, uid_t by);
/* A write recording a change of running j that kills it: *cb and *arg
 * (the write's callback) wrapped so that j is killed for no change until
 * it is done, then for its cancel or requeue (if asked): true; false (no
 * memory) leaves them as they were.  When the write could not be queued,
 * batchd_kill_unwrap(cb, arg) (a no-op for an unwrapped cb). */
bool batchd_kill_wrap(batchd_t *b, bjob_t *j, phx_db_done_f *cb, void **arg);
void batchd_kill_unwrap(batchd_t *b, phx_db_done_f cb, void *arg);
/* batchd_job_persist of running j whose requeue was asked: its tasks
 * killed once committed. */
void batchd_job_persist_kill(batchd_t *b, bjob_t *j);
/* Number of running tasks of an array. */
uint32_t batchd_array_running(const batchd_t *b, uint64_t array_job_id);
void batchd_usage_add(batchd_t *b, const char *user, double cpu_s, int64_t now);

/* userlim.c: batchd.max_jobs, max_jobs_per_user (jobs pending or running,
 * every array task one) and max_running_jobs_per_user, Slurm's
 * MaxJobCount, a QOS's MaxSubmitJobsPerUser and MaxJobsPerUser.  Operators
 * are not held to the per-user ones. */
/* A job entered the queue (from = PHX_JOB_STATE_COUNT) or changed state. */
void batchd_userlim_move(batchd_t *b, uid_t uid, phx_job_state_t from,
                         phx_job_state_t to);
/* Room for a submission of n jobs by uid, taken until batchd_userlim_release
 * (the submission's end: by then its jobs are in the queue, or refused):
 * 0, or -1 with *status (the HTTP status) and err naming the limit. */
int batchd_userlim_reserve(batchd_t *b, uid_t uid, const char *user, uint32_t n,
                           int *status, phx_error_t *err);
void batchd_userlim_release(batchd_t *b, uid_t uid, uint32_t n);
/* Whether another job of uid may start now (max_running_jobs_per_user). */
bool batchd_userlim_may_run(const batchd_t *b, uid_t uid);
void batchd_userlim_clear(batchd_t *b);
double batchd_usage_get(batchd_t *b, const char *user, int64_t now);

/* accounts_db.c: account_users into b->accounts, per
 * batchd.enforce_accounts: at start (synchronously: -1 with err when it
 * cannot be read), after a reload and every batchd.accounts_refresh seconds
 * (through the store; a failed read keeps the table in use). */
int batchd_accounts_start(batchd_t *b, phx_error_t *err);
void batchd_accounts_reload(batchd_t *b);
void batchd_accounts_tick(batchd_t *b, int64_t now);
/* The partitions shown to uid (bit i: b->parts.v[i]): all to operators,
 * else those not Hidden and the Hidden ones the user may use (AllowGroups,
 * and with enforced accounts AllowAccounts/DenyAccounts for one of the
 * user's accounts). */
uint64_t batchd_parts_visible(const batchd_t *b, uid_t uid, gid_t gid);

/* submit.c / api.c */
void batchd_api_submit(batchd_t *b, struct evhttp_request *req, uid_t uid, gid_t gid);

/* submit_key.c: an Idempotency-Key is 16 to 64 letters, digits, '-' or
 * '_' (doc/batchd.md).  0, or -1 with err naming the header (a 400). */
#define BATCHD_SUBMIT_KEY_MIN    16
#define BATCHD_SUBMIT_KEY_MAX    64
#define BATCHD_SUBMIT_DIGEST_LEN 64
int batchd_submit_key_check(const char *key, phx_error_t *err);
/* SHA-256 (hex) of the submission body in a canonical form (compact, keys
 * sorted): equal for a body sent again.  0, or -1 (ENOMEM). */
int batchd_submit_digest(const json_t *body, char hex[BATCHD_SUBMIT_DIGEST_LEN + 1]);
/* The job's partition (none: the default) or list of them, as at
 * submission: each must exist; those that cannot take the job (state,
 * AllowGroups, AllowAccounts/DenyAccounts, MaxTime, the cluster fit) are
 * left out with a warning into warnings; none left: the first one's error.
 * Sets sp->partition to those kept and an unset time limit to the first's
 * DefaultTime.  0 or -1 with err. */
int batchd_resolve_partitions(const batchd_t *b, phx_jobspec_t *sp, uid_t uid,
                              gid_t gid, const char *user, json_t *warnings,
                              phx_error_t *err);
/* api_signal.c: POST /api/v1/jobs/ID/signal for j (found and authorised);
 * array_id non-zero: the id asked for is that array's job id, every task
 * of the array gets it (j is one of them, maybe not task A itself, which
 * may have left memory); 0: j alone (also "A_T"). */
void batchd_api_signal(batchd_t *b, struct evhttp_request *req, uid_t uid, bjob_t *j,
                       uint64_t array_id);
int batchd_api_start(batchd_t *b, const char *listen, phx_error_t *err);

/* sched.c */
void batchd_sched_dirty(batchd_t *b);

/* reload.c: the settings applied while running.  batchd_schema is main.c's;
 * batchd_conf_check: what the schema cannot check (time limits);
 * batchd_conf_reloadable: b's weights and backfill bounds from b->conf;
 * batchd_reload (SIGHUP): read the configuration again, apply its
 * reloadable keys, or change nothing when it is wrong. */
extern const phx_conf_key_t batchd_schema[];
int batchd_conf_check(const phx_conf_t *conf, phx_error_t *err);
void batchd_conf_reloadable(batchd_t *b);
void batchd_reload(batchd_t *b);
void batchd_sched_offers(batchd_t *b, const json_t *offers);
void batchd_sched_subscribed(batchd_t *b);
void batchd_sched_job_done(batchd_t *b, bjob_t *j);
/* Forget j's gang request (request_id cleared; not cancelled at the
 * master): a request the master refused, or one cancelled otherwise. */
void batchd_request_forget(batchd_t *b, bjob_t *j);
/* Forget j's gang request and cancel it at the master by the next
 * batchd_request_flush (every request batchd stops tracking goes so, or
 * the master holds nodes for it until it expires). */
void batchd_request_drop(batchd_t *b, bjob_t *j);
/* Send the cancels batchd_request_drop kept, when subscribed (else they
 * wait for the next flush: at the end of each pass, on subscribing). */
void batchd_request_flush(batchd_t *b);
/* Free the tracking of requests (at exit). */
void batchd_request_clear(batchd_t *b);
/* request.c: the gang request of j, reserved in pool (d: the planner's
 * decision for it, or NULL), unless one for that pool is outstanding and
 * fresh; it cancels the pool's other requests and j's old one. */
void batchd_request_send(batchd_t *b, bjob_t *j, uint32_t pool,
                         const phx_bf_decision_t *d, int64_t now);
/* The partitions changed: every gang request is cancelled (they list the
 * old partitions' nodes, by the old pools) and asked again. */
void batchd_sched_parts_changed(batchd_t *b);
/* The memory (MiB) of the job's share of `cores` cores on a node of
 * `total` MiB (--mem, --mem=0, --mem-per-cpu or the default per core). */
uint64_t batchd_job_mem(const batchd_t *b, const bjob_t *j, uint32_t cores,
                        uint64_t total);

/* gang.c: the REQUEST item asking the master to hold for j what it can use
 * (new reference; NULL on ENOMEM); d: the planner's decision (its nodes),
 * or NULL. */
json_t *batchd_gang_request(const batchd_t *b, bjob_t *j, const phx_bf_decision_t *d,
                            const char *id);

/* place.c: pack `tasks` tasks of `cpt` cores (ntasks_per_socket: 0 any) into
 * the offer; the cores chosen go to cores[] (room for tasks*cpt), removed
 * from the offer's free lists.  whole: take every core.  0 or -1 (no room). */
int batchd_place(boffer_t *o, uint32_t tasks, uint32_t cpt, uint32_t per_socket,
                 bool cyclic, bool whole, int *cores, uint32_t *ncores);
/* The tasks batchd_place can put in the offer (phx_bf_socket_tasks over its
 * free cores per socket): spread false counts only tasks inside one socket. */
uint32_t batchd_offer_tasks(const boffer_t *o, uint32_t cpt, uint32_t per_socket,
                            bool spread);
/* The job's cap of tasks per socket: --ntasks-per-socket, 1 for
 * --hint=memory_bound, else 0 (none). */
uint32_t batchd_job_per_socket(const phx_jobspec_t *s);
/* The job's request to the planner (also the submit check's). */
void batchd_bf_request(const batchd_t *b, const phx_jobspec_t *s, phx_bf_request_t *r);
/* The same without its partitions (bfreq.c). */
void batchd_bf_request_shape(const batchd_t *b, const phx_jobspec_t *s,
                             phx_bf_request_t *r);
int batchd_offer_parse(boffer_t *o, const json_t *offer);
void batchd_offer_clear(boffer_t *o);

/* gpus.c: GPUs in placement (device ids below 64, one bit each). */
uint64_t batchd_gpu_mask(const json_t *ids); /* a JSON array of ids */
bool batchd_job_wants_gpus(const struct bjob *j);
/* The node's GPUs whose model holds type (ignoring case; "": all). */
uint64_t batchd_node_gpus(const bnode_t *n, const char *type);
/* The node has the GPUs of one node's share (or one task's) of s. */
bool batchd_node_gpus_fit(const bnode_t *n, const phx_jobspec_t *s);
/* Of t tasks of j (its request r), those the offer's free GPUs hold, by
 * the planner's rule (phx_bf_gpu_tasks; an exclusive job: all or none, a
 * whole node having all of its GPUs free). */
uint32_t batchd_gpu_tasks(const bnode_t *n, const boffer_t *o, const struct bjob *j,
                          const phx_bf_request_t *r, uint32_t t);
/* The GPUs of j's share of tasks tasks on cores (placed on o): those local
 * to the cores' NUMA domains first; 0 when j asks for none or they are not
 * free. */
/* The GPUs j's task t holds on node n: those it was given, or for a job
 * loaded from the database (its tasks' GPUs are the master's) what its
 * request gives a node. */
uint32_t batchd_task_gpus(const bnode_t *n, const struct bjob *j, const bj_task_t *t);
uint64_t batchd_gpu_pick(const bnode_t *n, const boffer_t *o, const struct bjob *j,
                         uint32_t tasks, const int *cores, uint32_t ncores);
/* The planner's GPU classes (backfill.h) in one pass: each distinct model
 * of the nodes' GPUs a class, in node order, up to PHX_BF_GPU_CLASSES; the
 * models past the last but one share the last.  Models are borrowed from
 * the nodes (valid while they are not refreshed). */
#define BATCHD_GPU_MODELS 64 /* models told apart for a type's classes */
typedef struct batchd_gclasses {
    uint32_t n;       /* classes (0: no GPU) */
    uint32_t nmodels; /* distinct models seen, at most BATCHD_GPU_MODELS */
    bool overflow;    /* more models than that: the last class may be any */
    const char *model[BATCHD_GPU_MODELS]; /* model i's class: min(i, n - 1) */
    char type[32];                        /* the last type asked of batchd_gpu_other, */
    uint32_t other;                       /* and its answer */
} batchd_gclasses_t;
/* Make the classes of b's nodes' GPUs (each GPU's cls) and fill the
 * planner nodes' (nodes[i] of b->nodes[i]) GPUs by class, all free. */
void batchd_gpu_classes(batchd_t *b, batchd_gclasses_t *gc, phx_bf_node_t *nodes);
/* The classes a job of j's GPU type may not use (phx_bf_request_t's
 * gpu_other): 0 for a job without a type or without GPUs. */
uint32_t batchd_gpu_other(batchd_gclasses_t *gc, const struct bjob *j);
/* Task t of j holds its GPUs on n: taken off the planner node x's free
 * GPUs (by class with classes) and recorded in its share s. */
void batchd_gpu_hold(batchd_gclasses_t *gc, const bnode_t *n, const struct bjob *j,
                     const bj_task_t *t, phx_bf_node_t *x, phx_bf_share_t *s);

/* launch.c: the ACCEPT operations for a placed job (new reference). */
/* A job of several partitions (-p a,b) runs in one, part (its bit): it is
 * of that one from now on.  The list it had, to put back if it does not
 * start, or NULL (nodesel.c). */
char *batchd_run_partition(batchd_t *b, bjob_t *j, uint64_t part);
json_t *batchd_launch_ops(batchd_t *b, bjob_t *j, int *const *cores,
                          const uint32_t *ncores);

/* hold.c: a job held (PENDING, reason JobHeldUser or JobHeldAdmin) is
 * never eligible until released. */
static inline bool batchd_job_held(const bjob_t *j)
{
    return j->state == PHX_JOB_PENDING &&
           (j->reason == PHX_REASON_HELD || j->reason == PHX_REASON_HELD_ADMIN);
}
/* hold.c, requeue.c, update_api.c: who may act on j (hold, requeue,
 * update): its owner or an operator; false for no job (NULL). */
static inline bool batchd_may_act(const batchd_t *b, uid_t uid, const bjob_t *j)
{
    return j && (uid == j->uid || batchd_is_operator(b, uid));
}
/* "N", or "A_T" for an array task: a job as messages name it. */
static inline void batchd_job_text(const bjob_t *j, char *buf, size_t len)
{
    if (j->array_job_id)
        snprintf(buf, len, "%" PRIu64 "_%" PRId64, j->array_job_id, j->array_task_id);
    else
        snprintf(buf, len, "%" PRIu64, j->id);
}
/* jobs_named.c: the jobs text (N, A, A_T, A_LIST) names that uid may act
 * on, each to fn: an array job id A, its pending tasks (with none, *empty
 * is A, else 0); another user's job is skipped, as one that does not
 * exist.  0, or -1 when text is malformed. */
typedef void batchd_job_f(void *arg, bjob_t *j);
int batchd_jobs_named(batchd_t *b, uid_t uid, const char *text, batchd_job_f *fn,
                      void *arg, uint64_t *empty);
typedef enum batchd_hold_op {
    BATCHD_HOLD,
    BATCHD_UHOLD,
    BATCHD_RELEASE
} batchd_hold_op_t;
/* Hold (an operator's BATCHD_HOLD: JobHeldAdmin), user-hold or release j
 * for uid by, whose job it is or who is an operator; a hold drops j's gang
 * request.  1 changed (persisted), 0 nothing to change, -1 with err and
 * errno EBUSY (j is not pending) or EPERM (an operator's hold, by a user). */
int batchd_hold_job(batchd_t *b, bjob_t *j, uid_t by, batchd_hold_op_t op,
                    phx_error_t *err);
/* POST /api/v1/jobs/ID/{hold,uhold,release}: idtext (len bytes) N, A_T or
 * A_LIST. */
void batchd_api_hold(batchd_t *b, struct evhttp_request *req, uid_t uid,
                     const char *idtext, size_t len, batchd_hold_op_t op);

/* requeue.c: scontrol requeue and requeuehold */
typedef enum batchd_requeue {
    BATCHD_REQUEUE_NO,
    BATCHD_REQUEUE_YES,
    BATCHD_REQUEUE_HOLD,       /* requeuehold by its owner: JobHeldUser */
    BATCHD_REQUEUE_HOLD_ADMIN, /* by an operator: JobHeldAdmin */
    BATCHD_REQUEUE_NODE_FAIL,  /* by end.c after a node failure
                                  (batchd.requeue_count): NodeFailRequeued;
                                  stored with the run's NODE_FAIL only */
} batchd_requeue_t;
/* jobs.requeue_asked (migrations 011, 019): the name stored ("requeue",
 * "hold", "hold_admin", "node_fail"), NULL for none; and back (NULL or
 * unknown: NO).  A running job's is a requeue asked; a job in a final
 * state has one only if batchd stopped between the write recording its
 * run and the one making it PENDING: batchd_requeue_resume finishes it. */
static inline const char *batchd_requeue_name(batchd_requeue_t r)
{
    static const char *const names[] = {
        [BATCHD_REQUEUE_YES] = "requeue",
        [BATCHD_REQUEUE_HOLD] = "hold",
        [BATCHD_REQUEUE_HOLD_ADMIN] = "hold_admin",
        [BATCHD_REQUEUE_NODE_FAIL] = "node_fail",
    };
    return r > BATCHD_REQUEUE_NO && r <= BATCHD_REQUEUE_NODE_FAIL ? names[r] : NULL;
}
static inline batchd_requeue_t batchd_requeue_parse(const char *name)
{
    for (int r = BATCHD_REQUEUE_YES; name && r <= BATCHD_REQUEUE_NODE_FAIL; r++)
        if (strcmp(name, batchd_requeue_name((batchd_requeue_t)r)) == 0)
            return (batchd_requeue_t)r;
    return BATCHD_REQUEUE_NO;
}
/* kill.c: after (re)subscribing, kill again the live tasks of the running
 * jobs whose requeue or cancel was asked (the kills may not have reached
 * the master before a restart of batchd), but for those whose change is
 * not committed yet (its commit kills them). */
void batchd_kills_resume(batchd_t *b);
/* POST /api/v1/jobs/ID/requeue (hold: /requeuehold): idtext (len bytes) N,
 * A_T or A. */
void batchd_api_requeue(batchd_t *b, struct evhttp_request *req, uid_t uid,
                        const char *idtext, size_t len, bool hold);
/* j (running, its batch step ended, or ended) PENDING again as
 * j->requeue_asked says, its restart count up by one.  A running job's
 * run is recorded first (end.c's batch_ended: its final state, charged,
 * its batch step), whether the requeue was asked (requeue.c) or follows a
 * node failure (BATCHD_REQUEUE_NODE_FAIL). */
void batchd_requeue_now(batchd_t *b, bjob_t *j);
/* At start, once the store is up and before any pass: the jobs loaded in
 * a final state with a requeue recorded (requeue_asked: a batchd that
 * stopped between recording the run and making the job PENDING, the two
 * writes may commit apart) are requeued as batchd_requeue_now would have. */
void batchd_requeue_resume(batchd_t *b);
/* What both requeues (asked: batchd_requeue_now; after a node failure:
 * end.c) reset: restart count up, the run's times (start, end: -1), age,
 * flags and dependency; the state is the caller's to set. */
void batchd_requeue_reset(batchd_t *b, bjob_t *j);

/* mail.c: --mail-type (mail.h).  start reads batchd.mail_prog (none: no
 * mail); state is told every state change of a job (from: its state
 * before), tick once a second (time limit shares, stuck mail programs). */
int batchd_mail_start(batchd_t *b, phx_error_t *err);
void batchd_mail_stop(batchd_t *b);
void batchd_mail_state(batchd_t *b, bjob_t *j, phx_job_state_t from);
void batchd_mail_tick(batchd_t *b, int64_t now);
/* Drop j's dependency (met when it started) before it is queued again,
 * in memory and in its jobs row. */
void batchd_requeue_dep_clear(batchd_t *b, bjob_t *j);
/* update_api.c: change j's fields (u) for uid by (its owner or an
 * operator), all or nothing, checked as at submission; a pending job is
 * ordered and placed again.  done gets what changed ("TimeLimit=05:00").  1
 * changed (persisted), 0 nothing to change, -1 with err and errno EBUSY
 * (not pending, or ended), EPERM (a rule of who may), EINVAL (a value). */
int batchd_update_job(batchd_t *b, bjob_t *j, uid_t by, const batchd_update_t *u,
                      json_t *warnings, char *done, size_t len, phx_error_t *err);
/* The jobs row's spec and the columns phx update may change (name,
 * account, partition, limits, dependency...), from j. */
void batchd_job_persist_spec(batchd_t *b, bjob_t *j);
/* POST /api/v1/jobs/ID/update {"fields": ["KEY=VALUE", ...]}. */
void batchd_api_update(batchd_t *b, struct evhttp_request *req, uid_t uid,
                       const char *idtext, size_t len);
/* Once a second: kill the running jobs past a time limit lowered while
 * they ran (their agents enforce the one they started with). */
void batchd_update_tick(batchd_t *b, int64_t now);

/* end.c */
void batchd_on_update(batchd_t *b, const json_t *status);
void batchd_job_finish(batchd_t *b, bjob_t *j, phx_job_state_t st,
                       phx_job_reason_t why);

#endif
