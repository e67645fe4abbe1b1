/* phx-agent's configuration keys (the "agent" group of phalanx.conf). */
#include "daemons/agent/agent.h"

const phx_conf_key_t phx_agentd_schema[] = {
    {"agent.name", PHX_CONF_STRING, NULL, 0, 0, false,
     "node name (default: the host name)"},
    {"agent.master", PHX_CONF_STRING, "127.0.0.1:6051", 0, 0, false,
     "host:port of the master's agent listener"},
    {"agent.topology", PHX_CONF_STRING, "", 0, 0, false,
     "empty: discover this machine; synthetic:DESC or xml:FILE to emulate a node"},
    {"agent.state_dir", PHX_CONF_STRING, "/var/lib/phalanx/agent", 0, 0, false,
     "directory for the agent's state (task records, PMIx tmpdir)"},
    {"agent.munge_socket", PHX_CONF_STRING, NULL, 0, 0, false,
     "munged socket (default: munge's own)"},
    {"agent.reconnect_max", PHX_CONF_DOUBLE, "10", 0.1, 3600, false,
     "longest wait between reconnection attempts, seconds"},
    {"agent.max_frame", PHX_CONF_INT, "16777216", 1024, 1073741824, false,
     "largest wire frame in bytes"},
    {"agent.log_level", PHX_CONF_STRING, "info", 0, 0, true,
     "error, warning, notice, info or debug"},
    {"master", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"batchd", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {"client", PHX_CONF_FOREIGN, NULL, 0, 0, false, NULL},
    {NULL, 0, NULL, 0, 0, false, NULL},
};
