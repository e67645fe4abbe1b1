/* phx-agent: shared state of the daemon's files (loop thread only). */
#ifndef PHX_AGENT_H
#define PHX_AGENT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/config.h"
#include "lib/mac.h"
#include "lib/masters.h"
#include "lib/munge.h"
#include "lib/wire.h"
#include "topology/topo.h"

/* A task is known by (framework_id, task_id): task ids are unique only per
 * framework.  On the node it is named by a local key (task.c). */
#define PHX_TASK_ID_MAX  128 /* task ids: [A-Za-z0-9._:-], not "." or ".." */
#define PHX_TASK_FW_MAX  256 /* framework ids accepted (the master makes <= 128) */
#define PHX_TASK_KEY_MAX 255 /* NAME_MAX: a file and cgroup name */

typedef enum phx_agent_link_state {
    PHX_LINK_IDLE, /* waiting to (re)connect */
    PHX_LINK_CONNECTING,
    PHX_LINK_REGISTERING, /* REGISTER sent */
    PHX_LINK_REGISTERED,
} phx_agent_link_state_t;

typedef struct phx_agentd {
    struct event_base *base;
    phx_conf_t *conf;
    phx_munge_t *munge;
    phx_topo_t *topo;
    json_t *topo_json;
    const char *name;      /* borrowed from conf */
    phx_masters_t masters; /* agent.master: tried in turn (lib/masters.h) */
    bool redirected;       /* a standby named the leader: try it next */
    size_t max_frame;

    phx_agent_link_state_t link;
    struct bufferevent *bev;
    phx_wire_decoder_t *dec;
    struct event *reconnect_ev;
    struct event *heartbeat_ev;
    double backoff; /* seconds before the next attempt */
    double backoff_max;
    double heartbeat_interval;
    int heartbeat_missed;
    int64_t agent_id;
    uint64_t heartbeat_seq;
    char nonce[33]; /* of this connection's REGISTER */
    /* Launch authentication (launch_auth.c): the key the master gave this
     * connection, NULL before REGISTERED and after a disconnection, and the
     * sequence number of the last LAUNCH accepted with it. */
    phx_mac_t *session;
    uint64_t launch_seq;
    /* Channel authentication (master_link.c, lib/wire_seal.h): once the
     * key is there every frame either way is sealed with it; the numbers
     * of the last frame sealed and of the last one accepted.  Reset with
     * the key. */
    uint64_t seal_sent;
    uint64_t seal_received;
    struct event *sigint, *sigterm, *sighup;
    const char *conf_file; /* for reloading: -c FILE (NULL: none) */
    char **conf_sets;      /* and the -s overrides */
    int conf_nsets;
    bool verbose; /* -v: debug whatever the configuration says */

    /* Task execution (task.c and friends). */
    char records_dir[512]; /* agent.run_dir: one folder of records per task */
    char outputs_dir[512]; /* <state_dir>/tasks: default stdout/stderr */
    int dir_locks[2];      /* run_dir's and state_dir's (recover.c) */
    int ndir_locks;
    struct phx_cg *cg;       /* cgroup flavour detected at start */
    struct phx_users *users; /* user lookups, cached PHX_USERS_TTL s (users.h) */
    uid_t *master_uids;      /* agent.master_users, resolved */
    size_t nmaster_uids;
    bool allow_root;
    double status_retry;
    double default_grace;
    struct phx_task *tasks; /* doubly linked, newest first */
    struct event *resend_ev;
    struct event *outputs_ev; /* the sweep of ended tasks' outputs (outputs.h) */
    double output_keep;       /* agent.task_output_keep */
    struct phx_agent_done {
        char framework_id[PHX_TASK_FW_MAX + 1];
        char task_id[PHX_TASK_ID_MAX + 1];
    } recent[64]; /* tasks finished and acknowledged, a ring */
    unsigned nrecent;
} phx_agentd_t;

extern const phx_conf_key_t phx_agentd_schema[];

/* master_link.c */
int phx_agentd_link_start(phx_agentd_t *a, phx_error_t *err);
void phx_agentd_link_stop(phx_agentd_t *a);
/* Queue a frame to the master; steals hdr. */
int phx_agentd_send(phx_agentd_t *a, json_t *hdr, const void *attach,
                    size_t attach_len);

/* True when frames may be sent to the master (REGISTERED). */
bool phx_agentd_link_ready(const phx_agentd_t *a);

/* launch_auth.c: take the session key of REGISTERED's credential (from a
 * uid of agent.master_users, for our uid only, bound to our name and this
 * connection's nonce); forget it (wiped) when the connection goes. */
int phx_launch_auth_session(phx_agentd_t *a, const char *cred, phx_error_t *err);
void phx_launch_auth_forget(phx_agentd_t *a);

/* task.c: the task subsystem, started before the link (recovery first). */
int phx_agentd_tasks_start(phx_agentd_t *a, phx_error_t *err);
/* Forget tasks without touching them: they keep running for the next agent. */
void phx_agentd_tasks_stop(phx_agentd_t *a);
void phx_agentd_on_launch(phx_agentd_t *a, const phx_frame_t *f);
void phx_agentd_on_kill(phx_agentd_t *a, const phx_frame_t *f);
/* signal.c: SIGNAL (scancel -s) to a task's program or its steps' ranks. */
void phx_agentd_on_signal(phx_agentd_t *a, const phx_frame_t *f);
/* status.c */
void phx_agentd_on_status_ack(phx_agentd_t *a, const phx_frame_t *f);
/* step.c: MPI steps (step.h); the local step socket, "" when disabled. */
int phx_agentd_steps_start(phx_agentd_t *a, phx_error_t *err);
void phx_agentd_steps_stop(phx_agentd_t *a);
void phx_agentd_on_step(phx_agentd_t *a, const phx_frame_t *f);
/* The master link went down: steps end here. */
void phx_agentd_steps_link_lost(phx_agentd_t *a);
const char *phx_agentd_step_socket(void);
/* REGISTER's "tasks": new reference. */
json_t *phx_agentd_tasks_json(phx_agentd_t *a);
/* Send every unacknowledged status (after REGISTERED, and by the retry timer). */
void phx_agentd_status_resend(phx_agentd_t *a);

#endif
