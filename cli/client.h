/* What every phx command needs: where the daemons are, a munge context,
 * and HTTP calls that turn failures into one clear line on stderr. */
#ifndef PHX_CLI_CLIENT_H
#define PHX_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/munge.h"

typedef enum phx_cli_target {
    PHX_CLI_MASTER,
    PHX_CLI_BATCHD,
} phx_cli_target_t;

/* Call a daemon; the JSON answer (a new reference) or NULL after printing
 * why (unreachable, HTTP error with the daemon's message, bad JSON).
 * authenticated: attach a munge credential.  *status gets the HTTP status
 * (0 if none arrived) when status is not NULL. */
json_t *phx_cli_call(phx_cli_target_t target, const char *method, const char *path,
                     const json_t *body, bool authenticated, int *status);

/* Quiet: phx_cli_call says nothing when no daemon answered, or only
 * standbys did (its caller, phx alloc, waits through a failover and says
 * so once).  Off by default. */
void phx_cli_set_quiet(bool quiet);

/* A submission to batchd (POST /api/v1/jobs), sent with an Idempotency-Key
 * header: PHX_SUBMIT_KEY if set, else a new random key (128 bits, hex).
 * With the key a submission that got no answer (a timeout, a cut
 * connection) is sent again, to the next batchd of the list or to the lone
 * one, at most PHX_CLI_SUBMIT_SENDS times in all: batchd answers a key it
 * stored with the job it stored (doc/batchd.md).  As phx_cli_call
 * otherwise. */
#define PHX_CLI_SUBMIT_SENDS 4
json_t *phx_cli_submit(const json_t *body, int *status);

/* A new submission key into key: 32 hex digits from getrandom.  0, or -1. */
int phx_cli_submit_key(char key[33]);

/* The daemon's host:port (PHX_MASTER/PHX_BATCHD, the configuration, the
 * default).  Borrowed. */
const char *phx_cli_address(phx_cli_target_t target);

/* The accounting database's libpq connection string: PHX_DSN, else
 * client.dsn of the configuration (default "dbname=phalanx").  Borrowed. */
const char *phx_cli_dsn(void);

/* A munge context on PHX_MUNGE_SOCKET, client.munge_socket or munge's
 * default socket; the caller destroys it. */
phx_munge_t *phx_cli_munge(phx_error_t *err);

/* Human sizes: "512M", "15.6G". */
void phx_cli_format_bytes(unsigned long long bytes, char *buf, size_t len);

/* The master's agents (/state "agents"), or NULL having said why. */
json_t *phx_cli_agents(void);

#endif
