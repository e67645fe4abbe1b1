/* The masters a client may talk to (doc/admin.md, "High availability"): a
 * list of host:port addresses tried in turn, and the refusal a standby
 * master answers with, which names the leader.
 *
 * A client follows a refusal only to an address of its own list: a
 * refusal travels before any authentication and must not be able to send
 * agents or frameworks elsewhere. */
#ifndef PHX_MASTERS_H
#define PHX_MASTERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/config.h"
#include "lib/error.h"

#define PHX_MASTERS_MAX     16
#define PHX_MASTER_HOST_MAX 256
#define PHX_MASTER_ADDR_MAX (PHX_MASTER_HOST_MAX + 8)

typedef struct phx_masters {
    char host[PHX_MASTERS_MAX][PHX_MASTER_HOST_MAX];
    int port[PHX_MASTERS_MAX];
    size_t n;
    size_t cur; /* the one to try now */
} phx_masters_t;

/* Append "host:port", or several separated by commas (blanks around each
 * are ignored).  -1 with err naming the bad address, or when the list
 * would hold more than PHX_MASTERS_MAX. */
int phx_masters_add(phx_masters_t *l, const char *text, phx_error_t *err);
/* Reset l to a configuration list key's addresses (each element may
 * itself be a comma-separated list); at least one is required. */
int phx_masters_from_conf(phx_masters_t *l, const phx_conf_t *conf, const char *path,
                          phx_error_t *err);
/* The current address's host and port; "host:port" into buf. */
const char *phx_masters_host(const phx_masters_t *l);
int phx_masters_port(const phx_masters_t *l);
const char *phx_masters_addr(const phx_masters_t *l, char *buf, size_t len);
/* Every address, comma-separated, into buf (for logs). */
const char *phx_masters_all(const phx_masters_t *l, char *buf, size_t len);
/* Move to the next address (after the last: the first). */
void phx_masters_next(phx_masters_t *l);
/* Make addr ("host:port") the current one if the list has it: true;
 * false (and l unchanged) if it does not. */
bool phx_masters_follow(phx_masters_t *l, const char *addr);

/* A standby's refusal: a JSON object with "standby": true and "leader",
 * the leader's address for this kind of client ("" when no leader is
 * known).  1 and leader filled if obj is one, else 0. */
int phx_masters_refusal(const json_t *obj, char *leader, size_t len);
/* The same from a JSON text (an HTTP answer's body). */
int phx_masters_refusal_text(const char *text, size_t textlen, char *leader,
                             size_t len);

#endif
