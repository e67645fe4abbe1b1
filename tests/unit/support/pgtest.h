/* A private PostgreSQL for a test binary: initdb in a temporary directory
 * owned by the postgres user (the server refuses root), unix socket in that
 * directory, no TCP.  Stopped (-m immediate) and removed by
 * phx_test_pg_stop, at exit if the test did not get there, and by a watchdog
 * process if the test dies without exiting (crash, sanitizer abort, kill). */
#ifndef PHX_TEST_PGTEST_H
#define PHX_TEST_PGTEST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct phx_test_pg {
    char dir[128];    /* socket directory; data in dir/data */
    char bindir[256]; /* PostgreSQL server binaries */
    int port;
    bool running;
    int watchdog_fd; /* write end; its EOF tells the watchdog to clean up */
    int watchdog_pid;
} phx_test_pg_t;

/* settings: NULL or a NULL-terminated list of "name=value" server settings
 * added after the defaults (fsync=off unless overridden).  0 when the server
 * accepts connections, -1 (message on stderr) otherwise. */
int phx_test_pg_start(phx_test_pg_t *pg, const char *const *settings);
/* Create database name and write its DSN into dsn.  0 or -1. */
int phx_test_pg_createdb(phx_test_pg_t *pg, const char *name, char *dsn, size_t len);
void phx_test_pg_stop(phx_test_pg_t *pg);

/* The cmocka group set-up and teardown (pg_group_setup, pg_group_teardown)
 * of a test file whose one server is the phx_test_pg_t variable pg. */
#define PHX_TEST_PG_GROUP_FIXTURES(pg)                                                 \
    static int pg_group_setup(void **state)                                            \
    {                                                                                  \
        (void)state;                                                                   \
        return phx_test_pg_start(&(pg), NULL);                                         \
    }                                                                                  \
    static int pg_group_teardown(void **state)                                         \
    {                                                                                  \
        (void)state;                                                                   \
        phx_test_pg_stop(&(pg));                                                       \
        return 0;                                                                      \
    }

#endif
