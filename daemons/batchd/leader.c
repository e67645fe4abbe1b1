/* phx-batchd's high availability (doc/admin.md, "High availability"; the
 * table and the fence are db/migrations/015_batchd_leader.sql): several
 * batchd on one database elect a leader as the masters do, with the
 * election of db/leader.c under a lock key of their own.
 *
 * The leader loads the queue and the nodes, fences every write of its
 * store with its epoch, and subscribes to the master with the framework
 * id the database keeps (main.c, batchd_start_leading): a new leader thus
 * resumes the framework of the one before, and adopts its running jobs as
 * batchd does after a restart.  A standby loads nothing: its listener
 * answers every request with 503 and a body naming the leader's address
 * (the masters' refusal, which phx follows), and it tries the lock every
 * batchd.standby_poll seconds.  A leader whose write the fence refuses,
 * whose lock connection is gone, or that finds after a stall that another
 * leads, exits at once without another write. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "daemons/batchd/batchd.h"
#include "db/leader.h"
#include "lib/http.h"
#include "lib/log.h"

#define BATCHD_LOCK_KEY  "31640063647511652" /* "phxbatd" in ASCII */
#define SQLSTATE_DEPOSED "PXL02"             /* phx_batchd_fence's */

static void deposed(const char *why, void *arg)
{
    (void)arg;
    /* Nothing more may go out as the leader's: no teardown, no flush. */
    phx_log_errx("no longer the leader: %s; exiting at once (started again, a batchd "
                 "stands by while another leads)",
                 why);
    _exit(1);
}

static int lead(phx_db_leader_t *l, void *arg, phx_error_t *err)
{
    (void)l;
    batchd_t *b = arg;
    b->standby = false;
    return batchd_start_leading(b, err);
}

static void lead_failed(const phx_error_t *err, void *arg)
{
    batchd_t *b = arg;
    phx_log_errx("%s", err->text);
    b->failed = true;
    event_base_loopexit(b->base, NULL);
}

int batchd_elect(batchd_t *b, phx_error_t *err)
{
    const char *addr = phx_conf_str(b->conf, "batchd.advertise_http");
    if (!addr || !*addr)
        addr = phx_conf_str(b->conf, "batchd.http_listen");
    phx_db_leader_opts_t o = {
        .dsn = b->dsn,
        .lock_key = BATCHD_LOCK_KEY,
        .table = "batchd_leader",
        .fence_fn = "phx_batchd_fence",
        .deposed_sqlstate = SQLSTATE_DEPOSED,
        .naddrs = 1,
        .addr_cols = {"http_address"},
        .addr_labels = {"users on"},
        .addrs = {addr},
        .standby_poll = phx_conf_double(b->conf, "batchd.standby_poll"),
        .lease = phx_conf_double(b->conf, "batchd.leader_lease"),
        .lead = lead,
        .deposed = deposed,
        .failed = lead_failed,
        .arg = b,
    };
    if (!(b->leader = phx_db_leader_create(b->base, &o, err)))
        return -1;
    b->standby = true; /* until lead runs */
    if (phx_db_leader_elect(b->leader, err) < 0)
        return -1;
    b->standby = phx_db_leader_standby(b->leader);
    return 0;
}

int batchd_fence_store(batchd_t *b, phx_error_t *err)
{
    return phx_db_leader_fence_store(b->leader, b->store, err);
}

void batchd_leader_check(batchd_t *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    phx_db_leader_check(b->leader, (double)ts.tv_sec + ts.tv_nsec / 1e9);
}

void batchd_leader_stop(batchd_t *b)
{
    phx_db_leader_destroy(b->leader); /* ends the session: the lock goes */
    b->leader = NULL;
}

bool batchd_standby_http(batchd_t *b, struct evhttp_request *req)
{
    if (!b->standby)
        return false;
    const char *leader = phx_db_leader_addr(b->leader, 0);
    char msg[600];
    if (*leader)
        snprintf(msg, sizeof(msg),
                 "standby: this batchd is not the leader; the leader is at %s", leader);
    else
        snprintf(msg, sizeof(msg),
                 "standby: this batchd is not the leader; no leader is known yet");
    phx_http_reply_json(
        req, 503,
        json_pack("{s:s, s:b, s:s}", "error", msg, "standby", 1, "leader", leader));
    return true;
}
