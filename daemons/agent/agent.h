/* phx-agent: shared state of the daemon's files (loop thread only). */
#ifndef PHX_AGENT_H
#define PHX_AGENT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/munge.h"
#include "lib/wire.h"
#include "topology/topo.h"

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
    const char *name; /* borrowed from conf */
    char master_host[256];
    int master_port;
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
    struct event *sigint, *sigterm;
} phx_agentd_t;

extern const phx_conf_key_t phx_agentd_schema[];

/* master_link.c */
int phx_agentd_link_start(phx_agentd_t *a, phx_error_t *err);
void phx_agentd_link_stop(phx_agentd_t *a);
/* Queue a frame to the master; steals hdr. */
int phx_agentd_send(phx_agentd_t *a, json_t *hdr, const void *attach,
                    size_t attach_len);

#endif
