#include "tests/unit/support/httptest.h"

#include <arpa/inet.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/socket.h>

uint16_t phx_test_http_listen(struct evhttp *http)
{
    struct evhttp_bound_socket *s =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (!s ||
        getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sa, &len) < 0 ||
        sa.sin_family != AF_INET)
        return 0;
    return ntohs(sa.sin_port);
}
