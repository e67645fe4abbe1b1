/* A fake master for unit tests that drive the real phx-agent binary
 * ($BUILD/bin/phx-agent): a loopback listener speaking the wire protocol.
 * It answers REGISTER and heartbeats, sends LAUNCH and KILL, records every
 * STATUS and acknowledges it (unless told not to).  Like the master, it
 * gives each connection a session key in REGISTERED and signs LAUNCH frames
 * with it, and seals every frame after REGISTERED (doc/agent.md, "Channel
 * authentication").  The agent runs real
 * processes in real cgroups v1 as a real user (PHX_AGENTHARNESS_USER,
 * created if missing), with real munge credentials from a private munged.
 * Needs root.
 *
 * One harness per test binary, in phx_agentharness: phx_agentharness_setup
 * and phx_agentharness_teardown are the cmocka group setup and teardown,
 * phx_agentharness_reset the teardown of each test.  Nothing runs unless one
 * of these functions is called.  The helpers fail the running test (cmocka)
 * on an error, so callers check nothing. */
#ifndef PHX_TEST_AGENTHARNESS_H
#define PHX_TEST_AGENTHARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "lib/mac.h"
#include "lib/munge.h"
#include "lib/wire.h"
#include "lib/wire_seal.h"
#include "tests/unit/support/mungetest.h"

#define PHX_AGENTHARNESS_TOPO                                                          \
    "pack:1 numa:2 core:2 pu:1" /* 4 cores, 2 NUMA domains                             \
                                 */
#define PHX_AGENTHARNESS_USER "phxtest2"
#define PHX_AGENTHARNESS_NODE "ux1" /* the agent's name */

/* The agent's local name of task id of framework fw-1 (doc/agent.md). */
#define PHX_AGENTHARNESS_KEY(id) "fw-1+" id

typedef struct phx_agentharness {
    phx_test_munged_t munged;
    phx_munge_t *munge;
    char dir[128], state[192], shared[192], bin[4096];
    const char *run_sub;   /* the agent's run dir under state; NULL: "run" */
    const char *extra_set; /* one more "-s KEY=VALUE" for the next agent started */
    /* phx-unit-<our pid>: an agent sweeps every cgroup of its folder it has
     * no records of, so two runs of a test (two build dirs, at the same
     * time) must not share one, or each kills the other's tasks. */
    char cgroot[64];
    int lfd, cfd, port;
    pid_t agent;
    phx_wire_decoder_t *dec;
    json_t *statuses;   /* every STATUS received */
    json_t *backlog;    /* received, not yet returned by a wait (in order) */
    json_t *reg;        /* the last REGISTER */
    phx_mac_t *session; /* this connection's launch key */
    uint64_t seq;       /* the last LAUNCH's sequence number */
    /* After REGISTERED every frame is sealed with the key (lib/wire_seal.h):
     * the numbers of the last frame sealed and of the last one received. */
    bool sealing;
    uint64_t seal_sent, seal_received;
    bool autoack;
    uid_t uid;
    gid_t gid;
} phx_agentharness_t;

/* The harness's state: tests read it, and set run_sub, extra_set and autoack. */
extern phx_agentharness_t phx_agentharness;

/* Group setup: the user, a temporary directory, a private munged, the
 * listener, and a connected agent.  Group teardown: kill the agent and what
 * a failed test left in its cgroups, remove it all (PHX_KEEP=1 keeps the
 * directory).  Reset, after each test: see agentharness.c. */
int phx_agentharness_setup(void **state);
int phx_agentharness_teardown(void **state);
int phx_agentharness_reset(void **state);

/* Start an agent and answer its REGISTER (kept in reg); kill it with
 * SIGKILL and close its connection (no-op when none runs). */
void phx_agentharness_agent_start(void);
void phx_agentharness_agent_kill9(void);

/* Send a frame with header hdr (taken). */
void phx_agentharness_send(json_t *hdr);

typedef enum phx_agentharness_cred {
    PHX_AGENTHARNESS_SIGNED,
    PHX_AGENTHARNESS_UNSIGNED,  /* no "mac", no "seq" */
    PHX_AGENTHARNESS_TAMPERED,  /* signed, then the payload changed */
    PHX_AGENTHARNESS_WRONG_KEY, /* signed with a key of our own */
    PHX_AGENTHARNESS_REPLAYED,  /* signed, with the last sequence number again */
} phx_agentharness_cred_t;

/* A task id of framework fw-1 running script under /bin/sh as the test
 * user on core 1, NUMA 0, 256 MiB, no time limit; the caller owns it. */
json_t *phx_agentharness_task_new(const char *id, const char *script);
/* Send LAUNCH of task (taken). */
void phx_agentharness_launch(json_t *task, phx_agentharness_cred_t cred);

/* Wait for a STATUS of task id of framework fw (any framework if NULL), in
 * any state if state is NULL, else that one; the caller owns it.  Statuses
 * of other tasks that came first are not lost: the agent sends its tasks'
 * statuses in no set order (e.g. those of two tasks that ended while it was
 * down), so the next waits look at them first. */
json_t *phx_agentharness_wait_fw_status(const char *fw, const char *id,
                                        const char *state, double timeout);
json_t *phx_agentharness_wait_status(const char *id, const char *state, double timeout);
/* The first status past TASK_RUNNING: an acknowledged TASK_RUNNING may still
 * be sent again, when the agent's resend timer beats the ack. */
json_t *phx_agentharness_wait_fw_end(const char *fw, const char *id, double timeout);
json_t *phx_agentharness_wait_end(const char *id, double timeout);
/* Drain frames for s seconds (recording and acking statuses). */
void phx_agentharness_drain(double s);
/* Statuses received of a task in a state, each counted once: a status
 * resent before its ack arrived comes again with the same uuid. */
int phx_agentharness_count_fw_states(const char *fw, const char *id, const char *state);
int phx_agentharness_count_states(const char *id, const char *state);
/* s must be state with exit code code (json_integer_value reads a null
 * exit_code, e.g. of a task killed by a signal, as 0: say what came). */
void phx_agentharness_assert_exit(json_t *s, const char *state, int code);

/* A task (phx_agentharness_task_new) that ends with status code once the
 * test calls phx_agentharness_go(id): so that it ends when the test says,
 * not after a sleep that a loaded machine makes too short or too long. */
json_t *phx_agentharness_go_task(const char *id, int code);
void phx_agentharness_go(const char *id);

/* Whether the records of task key are in <state>/run. */
bool phx_agentharness_records_exist(const char *key);
/* Wait until the agent forgot task key (its terminal status acknowledged,
 * its records removed), recording and acknowledging statuses meanwhile. */
void phx_agentharness_wait_forgotten(const char *key, double timeout);
/* Wait until the shim of task key recorded how its program ended. */
void phx_agentharness_wait_exit_record(const char *key, double timeout);
/* Whether the agent's cgroup of task key exists under controller ctrl. */
bool phx_agentharness_cgroup_exists(const char *ctrl, const char *key);
/* The agent's pooled cgroups (".pool-<n>", cgroup.h) under controller ctrl. */
int phx_agentharness_pool_count(const char *ctrl);
/* The standard output of task key (default outputs); the caller frees it. */
char *phx_agentharness_stdout(const char *key);
bool phx_agentharness_pid_alive(pid_t pid);

/* A string member, never NULL (a missing one must fail an assertion, not
 * crash the test). */
const char *phx_agentharness_jstr(const json_t *o, const char *key);
/* The file at path (up to 64 KiB), or NULL; the caller frees it. */
char *phx_agentharness_slurp(const char *path);
/* The clock of the agent's timestamps and records. */
double phx_agentharness_wall(void);

#endif
