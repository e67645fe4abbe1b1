/* Where a unit test binary finds the tree: it runs as
 * <repo>/<build>/tests/unit/<test>. */
#ifndef PHX_TEST_PATHS_H
#define PHX_TEST_PATHS_H

#include <stddef.h>

/* <build> (up = 3) or <repo> (up = 4) into buf: 0, or -1 when
 * /proc/self/exe cannot be read or buf is too small. */
int phx_test_dir_up(int up, char *buf, size_t len);

#define phx_test_build_dir(buf, len) phx_test_dir_up(3, (buf), (len))
#define phx_test_repo_dir(buf, len)  phx_test_dir_up(4, (buf), (len))

#endif
