/* The scheduler side of phx-master: frameworks, their event streams, offers,
 * gangs and tasks.  Shaped after Mesos' v1 scheduler API (doc/scheduler-api.md).
 * Loop thread only. */
#ifndef PHX_MASTER_SCHED_H
#define PHX_MASTER_SCHED_H

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemons/master/master.h"
#include "lib/hmap.h"
#include "topology/free.h"

typedef struct phx_fw phx_fw_t;
typedef struct phx_offer phx_offer_t;
typedef struct phx_task phx_task_t;
typedef struct phx_gang phx_gang_t;
typedef struct phx_stream phx_stream_t;

struct phx_fw {
    phx_master_t *master;
    char id[PHX_FW_ID_MAX + 1];
    char *name, *user, *role;
    uid_t uid; /* from munge; meaningful if authenticated */
    bool authenticated;
    double weight;
    double failover_timeout;
    char stream_id[40];
    phx_stream_t *stream; /* NULL while disconnected */
    bool removed;
    bool in_alloc;
    struct event *failover_ev;
    phx_hmap_t *tasks;  /* task id → phx_task_t (owned) */
    phx_hmap_t *offers; /* offer id → phx_offer_t (borrowed from m->offers) */
};

struct phx_offer {
    char id[48];
    phx_fw_t *fw;
    phx_master_agent_t *agent;
    phx_topo_grant_t *grant; /* allocated from the agent's free tracker */
    double expires_at;       /* monotonic */
    double release_by;       /* wall clock seconds; 0: none */
    char *request_id;        /* gang request it serves, or NULL */
};

struct phx_task {
    char *id;
    phx_fw_t *fw;
    phx_gang_t *gang;
    phx_master_agent_t *agent;
    phx_topo_grant_t *grant; /* its cores and memory, allocated */
    int cpus;
    uint64_t memory;
    double end_by;         /* wall clock time limit end, 0: none */
    const char *state;     /* static string: TASK_STAGING ... */
    bool killing;          /* a KILL was requested by the framework */
    bool in_alloc;         /* its resources are allocated through the allocator */
    json_t *launch;        /* the LAUNCH task object, until the agent took it */
    char *canon;           /* its canonical JSON without gang_id (phx_task_canon) */
    size_t canon_split;    /* where gang_id goes in canon */
    json_t *pending;       /* the last UPDATE status not yet acknowledged */
    char *last_agent_uuid; /* dedupe agent status resends */
};

struct phx_gang {
    int64_t id;
    phx_fw_t *fw;
    int ntasks;
    int live; /* tasks not yet terminal */
    bool failing;
    int next_step; /* number of its next MPI step: 0, 1, ... (step.c) */
    phx_task_t **tasks;
};

/* sched_api.c */
void phx_sched_http(phx_master_t *m, struct evhttp_request *req);

/* stream.c: RecordIO event streams. */
phx_stream_t *phx_stream_open(phx_master_t *m, phx_fw_t *fw,
                              struct evhttp_request *req);
/* Send one event (steals it).  Dropped if the stream is closed. */
void phx_stream_send(phx_stream_t *s, json_t *event);
void phx_stream_close(phx_stream_t *s);
/* Heartbeats to every open stream. */
void phx_stream_heartbeat_all(phx_master_t *m);

/* frameworks.c */
phx_fw_t *phx_fw_find(phx_master_t *m, const char *id);
/* NULL with ENAMETOOLONG for an id above PHX_FW_ID_MAX, ENOMEM. */
phx_fw_t *phx_fw_create(phx_master_t *m, const char *id);
/* The stream went away: rescind its offers, start the failover timer. */
void phx_fw_disconnected(phx_master_t *m, phx_fw_t *fw);
/* Kill its tasks, forget it. */
void phx_fw_remove(phx_master_t *m, phx_fw_t *fw, const char *why);
void phx_fws_destroy(phx_master_t *m);
void phx_fw_free(phx_fw_t *fw);
/* A removed framework whose last task is gone: out of the allocator, freed. */
void phx_fw_forget(phx_master_t *m, phx_fw_t *fw);
/* Send an event to a framework if it is connected (steals event). */
void phx_fw_send(phx_fw_t *fw, json_t *event);

/* offers.c */
/* Run an allocation pass now (call through phx_sched_dirty to coalesce). */
void phx_offers_allocate(phx_master_t *m);
/* Ask for one allocation pass at the end of this loop iteration. */
void phx_sched_dirty(phx_master_t *m);
/* A role's weight from master.role_weights (1 when not listed). */
double phx_master_role_weight(const phx_master_t *m, const char *role);
phx_offer_t *phx_offer_find(phx_master_t *m, const char *id);
/* Give the offer's remaining resources back and forget the offer.
 * rescind: tell the framework. */
void phx_offer_drop(phx_master_t *m, phx_offer_t *o, bool rescind);
void phx_offers_expire(phx_master_t *m, double now);
/* Free the memory only (shutdown). */
void phx_offer_free(phx_offer_t *o);
json_t *phx_offer_json(phx_master_t *m, const phx_offer_t *o);
/* A free tracker whose free resources are exactly those of grant (new). */
phx_topo_free_t *phx_offer_view(const phx_topo_t *topo, const phx_topo_grant_t *grant);
/* A gang request from REQUEST's requests[i]. */
int phx_sched_request_add(phx_master_t *m, phx_fw_t *fw, const json_t *req,
                          phx_error_t *err);

/* accept.c */
/* Validate and start a gang; 0, or -1 with err naming the task and reason
 * (nothing launched, every offer's resources back in the pool). */
int phx_accept(phx_master_t *m, phx_fw_t *fw, const json_t *accept, phx_error_t *err);

/* accept_gpu.c: a task's GPUs (device ids, topology/topo.h). */
/* Add the GPUs an ACCEPT's TaskInfo asks for to grant, whose cores are
 * chosen: ngpus (resources' "gpus", -1 when absent) of the offer's view,
 * those of "gpus": [ids] when listed (as many as ngpus unless -1), else the
 * free ones nearest the task's first core.  -1 with err naming the GPU that
 * is not in the offer. */
int phx_accept_gpus(const phx_topo_free_t *view, const json_t *ti, int ngpus,
                    const char *agent, phx_topo_grant_t *grant, phx_error_t *err);
/* A grant's GPUs in list format ("0-1,3"; "" for none); NULL on ENOMEM. */
char *phx_gpus_str(const phx_topo_t *topo, const phx_topo_grant_t *grant);
/* Add the GPUs of a list to grant (recovery); -1 naming the problem. */
int phx_gpus_parse(phx_topo_grant_t *grant, const phx_topo_t *topo, const char *list,
                   phx_error_t *err);
/* The LAUNCH's "gpus": [{"id", "index", "name", "pci"}...]; NULL on ENOMEM. */
json_t *phx_gpus_launch_json(const phx_topo_t *topo, const phx_topo_grant_t *grant);

/* recover.c: frameworks and live tasks from the database (start-up, before
 * the loop runs); then failover timers for the frameworks. */
int phx_master_recover(phx_master_t *m, const char *dsn, phx_error_t *err);
void phx_master_recover_start_timers(phx_master_t *m);

/* gang.c */
/* Register tasks (resources already allocated) as one gang and queue its
 * commit; launches follow the commit.  Takes the tasks on success. */
int phx_gang_start(phx_master_t *m, phx_fw_t *fw, phx_task_t **tasks, size_t n,
                   json_t *rows, phx_error_t *err);
/* A member became terminal; abnormal ends kill the rest. */
void phx_gang_task_ended(phx_master_t *m, phx_task_t *t, bool abnormal);
/* A member is freed; the gang goes with its last member. */
void phx_gang_release(phx_gang_t *g, phx_task_t *t);
int phx_task_index(phx_task_t *t);
void phx_task_unindex(phx_task_t *t);

/* tasks.c */
phx_task_t *phx_task_find(phx_fw_t *fw, const char *id);
/* A status update for task (from an agent, or made by the master); persists
 * it, forwards it to the framework, releases resources of terminal tasks
 * and kills the rest of a failing gang. */
void phx_task_update(phx_master_t *m, phx_task_t *t, const char *state,
                     const char *reason, const char *message, const json_t *extra);
bool phx_task_state_terminal(const char *state);
/* Ask the task's agent to kill it. */
void phx_task_kill(phx_master_t *m, phx_task_t *t, const char *why);
/* Serialise t->launch once (canonical JSON, gang_id left out): the gang's
 * row and the LAUNCH are both made of that text.  -1 with ENOMEM. */
int phx_task_canon(phx_task_t *t);
/* The canonical JSON of t->launch with gang_id (what the LAUNCH signs and
 * carries): malloc'd, *len its length; NULL if out of memory. */
char *phx_task_launch_text(const phx_task_t *t, long long gang_id, size_t *len);
/* Send the task's LAUNCH to its agent (signed). */
int phx_task_send_launch(phx_master_t *m, phx_task_t *t);
/* Send again every update not acknowledged yet (each heartbeat interval). */
void phx_sched_resend_updates(phx_master_t *m);
/* Every task of an agent that was lost becomes TASK_LOST. */
void phx_tasks_agent_lost(phx_master_t *m, phx_master_agent_t *a);
/* Free a task that is terminal and acknowledged (or whose framework went). */
void phx_task_forget(phx_master_t *m, phx_task_t *t);
/* Free the memory only (shutdown). */
void phx_task_free(phx_task_t *t);
/* Agent frames. */
void phx_tasks_on_status(phx_master_t *m, phx_master_agent_t *a, const json_t *hdr);
void phx_tasks_reconcile_agent(phx_master_t *m, phx_master_agent_t *a,
                               const json_t *reported);
/* The status of a task as a Mesos TaskStatus JSON object. */
json_t *phx_task_status_json(const phx_task_t *t, const char *state, const char *reason,
                             const char *message, const char *uuid);

#endif
