/* Small socket helpers of the CLI (sock.c): the agent's step socket and
 * the relay's tunnels. */
#ifndef PHX_CLI_SOCK_H
#define PHX_CLI_SOCK_H

#include <stddef.h>

/* A blocking stream connection to the unix socket at path (close-on-exec);
 * -1 with errno (ENAMETOOLONG for a path too long for sun_path). */
int phx_cli_connect_unix(const char *path);
/* Write all of buf to a blocking socket (no SIGPIPE); -1 with errno. */
int phx_cli_send_all(int fd, const void *buf, size_t len);

#endif
