/* phx-master: shared state of the daemon's files.  Everything here is touched
 * on the loop thread only. */
#ifndef PHX_MASTER_H
#define PHX_MASTER_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "db/store.h"

struct phx_hmap;
struct phx_alloc;
#include "lib/config.h"
#include "lib/mac.h"
#include "lib/munge.h"
#include "topology/free.h"
#include "topology/topo.h"

typedef enum phx_agent_state {
    PHX_AGENT_UP,
    PHX_AGENT_UNREACHABLE, /* connection gone, within the re-register grace */
    PHX_AGENT_LOST,
} phx_agent_state_t;

typedef struct phx_master phx_master_t;

/* The longest framework id (FrameworkID.value of SUBSCRIBE; the agents take
 * up to 256).  Ids were once kept in 40 bytes: a longer one was cut, and the
 * framework answered to an id it never chose. */
#define PHX_FW_ID_MAX 128

/* A SUBSCRIBE whose database write is in flight: counted by policy.c as a
 * framework already (parallel SUBSCRIBEs once passed the caps together). */
typedef struct phx_sub_inflight {
    struct phx_sub_inflight *next;
    char id[PHX_FW_ID_MAX + 1];
    uid_t uid;
    bool authenticated;
} phx_sub_inflight_t;
typedef struct phx_master_conn phx_master_conn_t;

/* One agent known to the master: registered now or once (from the database). */
typedef struct phx_master_agent {
    int64_t id;
    char *name;
    char *address; /* peer address of its connection */
    phx_agent_state_t state;
    bool drained;
    char *drain_reason;
    phx_topo_t *topo;      /* NULL until it registered with this master */
    phx_topo_free_t *free; /* free cores and memory */
    double last_seen;      /* monotonic seconds */
    int64_t registered_at; /* wall clock, seconds */
    int64_t state_changed_at;
    phx_master_conn_t *conn; /* NULL when not connected */
    uint64_t links;          /* connections attached so far (steps.c) */
    struct phx_hmap *tasks;  /* "framework/task" → phx_task_t (borrowed) */
    bool in_alloc;           /* known to the allocator */
    bool can_signal;         /* its REGISTER's "features" has "signal" */
    bool signal_done;        /* and "signal_done": it answers SIGNAL */
} phx_master_agent_t;

typedef struct phx_sigwait phx_sigwait_t;

struct phx_master {
    struct event_base *base;
    phx_conf_t *conf;
    phx_munge_t *munge;
    phx_db_store_t *store;
    struct evconnlistener *agent_listener;
    struct evhttp *http;
    struct phx_http_limit *http_limit; /* master.max_http_connections */
    struct phx_http_guard *http_guard; /* credentials before bodies; the limit's */
    struct event *tick;
    struct event *sigint, *sigterm, *sighup;
    const char *conf_file; /* for reloading: -c FILE (NULL: none) */
    char **conf_sets;      /* and the -s overrides */
    int conf_nsets;
    bool verbose; /* -v: debug whatever the configuration says */

    uid_t *agent_uids; /* uids trusted to register agents */
    size_t nagent_uids;
    uid_t *operator_uids;
    size_t noperator_uids;
    double heartbeat_interval;
    int heartbeat_missed;
    size_t max_frame;

    phx_master_agent_t **agents;   /* owned */
    struct phx_hmap *agents_by_id; /* decimal id → agent (borrowed) */
    size_t nagents, cap_agents;
    LIST_HEAD(conn_list, phx_master_conn) conns;
    uint64_t next_conn_serial;

    /* The scheduler (sched.h). */
    struct phx_hmap *frameworks; /* id → phx_fw_t (owned) */
    struct phx_hmap *offers;     /* id → phx_offer_t (owned) */
    struct phx_alloc *alloc;
    struct event *alloc_ev;   /* one allocation pass per loop iteration */
    struct event *sched_tick; /* offer expiry, heartbeats, update resends */
    bool alloc_pending;
    double offer_timeout;
    double framework_heartbeat;
    double last_heartbeat;
    char master_id[24]; /* prefix of offer ids */
    uint64_t next_offer;
    bool allow_unauthenticated;
    uid_t *open_uids; /* users unauthenticated frameworks may run as */
    size_t nopen_uids;
    phx_sub_inflight_t *subs_inflight;
    struct phx_mac *web_key; /* signs web sessions (http_read.c) */
    int64_t web_session_ttl;
    char *metrics_token; /* master.metrics_token_file's, or NULL */

    /* leader.c: the election (db/leader.h). */
    struct phx_db_leader *leader;
    bool standby;  /* another master leads: refuse everyone */
    bool failed;   /* exit with 1 when the loop ends */
    int64_t epoch; /* ours once elected (the store's fence) */

    /* signal_wait.c: SIGNAL calls waiting for their agent's SIGNAL_DONE */
    phx_sigwait_t *sigwaits;
    uint64_t next_sigwait;
};

/* signal_wait.c: answer req once agent a says what it signalled of task_id
 * in its SIGNAL_DONE for id (the "reply" of the SIGNAL just sent; ids from
 * ++m->next_sigwait), else after a timeout.  -1 (nothing set up, req not
 * answered) on ENOMEM. */
int phx_sigwait_start(phx_master_t *m, struct evhttp_request *req,
                      phx_master_agent_t *a, const char *task_id, uint64_t id);
/* SIGNAL_DONE from a. */
void phx_sigwait_done(phx_master_t *m, phx_master_agent_t *a, const json_t *hdr);
/* a's connection closed: its waits answered 409. */
void phx_sigwait_agent_gone(phx_master_t *m, phx_master_agent_t *a);
/* Teardown: every wait answered 503, freed. */
void phx_sigwaits_destroy(phx_master_t *m);

/* Clocks: monotonic seconds (timeouts); wall-clock seconds, whole and
 * fractional (the allocator's clock: filters, task ends, release_by). */
double phx_master_now(void);
int64_t phx_master_wall(void);
double phx_master_clock(void);

/* dbwrite.c: a write nobody waits on; a failure is logged naming `what`. */
void phx_master_write(phx_master_t *m, const char *what, const char *sql, int nparams,
                      const char *const *params);
/* The same for a row write (phx_db_store_write_row: may go with others). */
void phx_master_write_row(phx_master_t *m, const char *what, const phx_db_rows_t *kind,
                          const char *const *params);

/* policy.c: what a framework may do (see there).  Each returns NULL when
 * allowed, else why not. */
bool phx_master_is_operator(const phx_master_t *m, uid_t uid);
const char *phx_master_role_refused(const phx_master_t *m, const char *role,
                                    bool authenticated, uid_t uid);
const char *phx_master_frameworks_refused(const phx_master_t *m, const char *id,
                                          bool authenticated, uid_t uid);
struct phx_fw;
/* Log every framework whose role the configuration no longer allows it
 * (after a reload, and of those recovered at start). */
void phx_master_policy_audit(const phx_master_t *m);
const char *phx_master_requests_refused(const phx_master_t *m, const struct phx_fw *fw,
                                        size_t adding);

/* reload.c: SIGHUP.  Read the configuration again and apply its reloadable
 * keys; a wrong file changes nothing. */
void phx_master_reload(phx_master_t *m);

/* leader.c: see there.  elect takes the leader lock or stands by (0), or
 * fails (-1); a leader then runs phx_master_start_leading (main.c), a
 * standby when it wins the lock later. */
int phx_master_elect(phx_master_t *m, phx_error_t *err);
int phx_master_start_leading(phx_master_t *m, phx_error_t *err);
void phx_master_leader_stop(phx_master_t *m);
/* From the tick: when the loop did not run for half the lease (stopped,
 * stuck), ask the database whether we still lead before anything acts on
 * the time that passed (agents lost...); exits if not. */
void phx_master_leader_check(phx_master_t *m, double now);
/* A store callback's error: exits at once if the fence refused the write
 * (another master leads now). */
void phx_master_fenced(const phx_error_t *err);
/* Fence the store's writes with our epoch (a refused one exits). */
int phx_master_fence_store(phx_master_t *m, phx_error_t *err);
/* One statement on a connection of its own (db), in a transaction fenced
 * with our epoch, as the store's are: for the writes made before the store
 * exists.  Exits if the fence refuses it; else as phx_db_query. */
int phx_master_fenced_query(phx_master_t *m, phx_db_conn_t *db, const char *sql,
                            int nparams, const char *const *params,
                            phx_db_result_t **res, phx_error_t *err);
/* The refusal a standby answers with (an agent's ERROR frame fields, or
 * with http an HTTP body), and the HTTP answer (503). */
json_t *phx_master_standby_refusal(const phx_master_t *m, bool http);
void phx_master_standby_http(phx_master_t *m, struct evhttp_request *req);

/* conf.c */
extern const phx_conf_key_t phx_master_schema[];

/* agents.c: the registry. */
phx_master_agent_t *phx_master_agent_find(phx_master_t *m, const char *name);
phx_master_agent_t *phx_master_agent_add(phx_master_t *m, const char *name);
phx_master_agent_t *phx_master_agent_by_id(phx_master_t *m, int64_t id);
/* Record the agent's id (from the database) in the id index. */
int phx_master_agent_set_id(phx_master_t *m, phx_master_agent_t *a, int64_t id);
/* Tell the allocator whether the agent may receive work (up, not drained). */
void phx_master_agent_sync_alloc(phx_master_t *m, phx_master_agent_t *a);
void phx_master_agents_destroy(phx_master_t *m);
const char *phx_master_agent_state_name(phx_agent_state_t s);
/* Change state in memory and persist it; logs the transition. */
void phx_master_agent_set_state(phx_master_t *m, phx_master_agent_t *a,
                                phx_agent_state_t s, const char *why);
/* Load every agent from the database at start-up (blocking, before the loop
 * runs); agents not lost become unreachable with a fresh grace period. */
int phx_master_agents_load(phx_master_t *m, const char *dsn, phx_error_t *err);
/* Mark agents that missed their heartbeats as lost. */
void phx_master_agents_check(phx_master_t *m, double now);
/* agent_conn.c: close connections that did not send REGISTER in time. */
void phx_master_conns_check(phx_master_t *m, double now);
json_t *phx_master_agent_json(const phx_master_agent_t *a);

/* agent_conn.c: the agent wire. */
int phx_master_conn_listen(phx_master_t *m, const char *addr, phx_error_t *err);
void phx_master_conn_close(phx_master_conn_t *c, const char *why);
void phx_master_conns_destroy(phx_master_t *m);
const char *phx_master_conn_peer(const phx_master_conn_t *c);
/* Bytes queued for the agent, not written yet. */
size_t phx_master_conn_backlog(const phx_master_conn_t *c);
/* Queue a frame; steals hdr.  A failure closes the connection. */
int phx_master_conn_send(phx_master_conn_t *c, json_t *hdr, const void *attach,
                         size_t attach_len);
/* A sealed frame without attachment whose header the caller serialised
 * (len bytes: a JSON object with the string "type" type, not parsed here),
 * for a large header serialised once (LAUNCH).  As phx_master_conn_send. */
int phx_master_conn_send_text(phx_master_conn_t *c, const char *type, const char *text,
                              size_t len);
/* An attachment shared by the frames of many connections (a step's launch,
 * doc/steps.md): its bytes are queued on each by reference, never copied.
 * create takes data (malloc'd, len bytes) with one reference, the
 * caller's; each queued frame holds another until written or dropped with
 * its connection; the last release frees it.  Its SHA-256 is computed once,
 * here: each frame's MAC covers that digest instead of the bytes
 * (phx_wire_seal_head), so a launch to 1,000 agents is hashed once, not
 * 1,000 times.  NULL with errno. */
typedef struct phx_master_blob phx_master_blob_t;
phx_master_blob_t *phx_master_blob_create(void *data, size_t len);
void phx_master_blob_release(phx_master_blob_t *b);
/* Queue a sealed frame {hdr, the blob's bytes} (steals hdr; a registered
 * connection only).  -1 with errno (EMSGSIZE: above max_frame) and err;
 * then nothing was queued and the connection is open, unless queueing
 * itself failed (it is then closed). */
int phx_master_conn_send_shared(phx_master_conn_t *c, json_t *hdr, phx_master_blob_t *b,
                                phx_error_t *err);
/* Registration progress: hold a reference across an asynchronous step so
 * the connection outlives it; a closed connection stays allocated (and
 * reports closed) until the last reference goes. */
void phx_master_conn_hold(phx_master_conn_t *c);
void phx_master_conn_release(phx_master_conn_t *c);
bool phx_master_conn_closed(const phx_master_conn_t *c);
void phx_master_conn_set_registering(phx_master_conn_t *c, bool on);
bool phx_master_conn_registering(const phx_master_conn_t *c);
/* Attach the registered agent: from now on frames other than REGISTER are
 * accepted. */
void phx_master_conn_attach(phx_master_conn_t *c, phx_master_agent_t *a);

/* The connection's launch session (doc/agent.md, "Launch authentication"):
 * a fresh random key, in memory only, wiped when the connection closes.
 * new_session makes it (replacing any) and gives it in hex for the agent's
 * credential: the caller wipes key_hex. */
int phx_master_conn_new_session(phx_master_conn_t *c,
                                char key_hex[PHX_MAC_HEX_LEN + 1]);
/* REGISTERED (which carries the key) is queued: every frame after it, both
 * ways, is sealed with the key (lib/wire_seal.h); a no-op without a key. */
void phx_master_conn_start_sealing(phx_master_conn_t *c);
/* Sign a LAUNCH whose task's canonical JSON is text: the connection's next
 * sequence number, and the MAC (hex) over it and text; -1 without a key. */
int phx_master_conn_sign_launch(phx_master_conn_t *c, const char *text, size_t len,
                                uint64_t *seq, char mac_hex[PHX_MAC_HEX_LEN + 1]);

/* register.c: REGISTER handling. */
void phx_master_register(phx_master_conn_t *c, phx_master_t *m, const json_t *hdr);

/* webui.c: GET / */
void phx_master_webui(phx_master_t *m, struct evhttp_request *req);

/* http_read.c: who may read /state and /metrics; web sessions. */
int phx_master_http_read_init(phx_master_t *m, phx_error_t *err);
void phx_master_http_read_clear(phx_master_t *m);
/* 0 if req may read (metrics: /metrics, which also takes the metrics
 * token), else -1 having replied 401. */
int phx_master_http_reader(phx_master_t *m, struct evhttp_request *req, bool metrics);
/* POST /api/v1/session (munge): a web session token for the caller. */
void phx_master_http_session(phx_master_t *m, struct evhttp_request *req);
/* The session token of uid valid until expires (wall seconds). */
int phx_master_session_token(phx_master_t *m, uid_t uid, int64_t expires, char *buf,
                             size_t len);
/* *uid of a token valid and unexpired at now; else -1 with *why. */
int phx_master_session_check(phx_master_t *m, const char *token, int64_t now,
                             uid_t *uid, const char **why);

/* http_api.c: operator API and /state. */
int phx_master_http_start(phx_master_t *m, const char *addr, phx_error_t *err);

#endif
