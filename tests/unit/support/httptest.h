/* An evhttp server of a unit test on loopback. */
#ifndef PHX_TEST_HTTPTEST_H
#define PHX_TEST_HTTPTEST_H

#include <stdint.h>

struct evhttp;

/* Bind http to 127.0.0.1 on a port the kernel picks: that port, or 0 if it
 * could not. */
uint16_t phx_test_http_listen(struct evhttp *http);

#endif
