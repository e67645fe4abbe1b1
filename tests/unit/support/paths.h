/* Where a unit test binary finds the tree: it runs as
 * <build>/tests/unit/<test>; the source tree is $PHX_SRC (scripts/run-tests
 * sets it, so that a build directory may be anywhere), else the build's
 * parent (<repo>/<build>). */
#ifndef PHX_TEST_PATHS_H
#define PHX_TEST_PATHS_H

#include <stddef.h>

/* The directory up levels above the binary into buf: 0, or -1 when
 * /proc/self/exe cannot be read or buf is too small. */
int phx_test_dir_up(int up, char *buf, size_t len);

/* The source tree into buf: $PHX_SRC when set, else up 4 levels. */
int phx_test_repo_dir(char *buf, size_t len);

#define phx_test_build_dir(buf, len) phx_test_dir_up(3, (buf), (len))

#endif
