/* The accounting fixture: ten jobs written the way phx-batchd writes them
 * (PENDING, RUNNING with an allocation, steps, a final state), ids 1 to 10:
 *   1 alice  physics  two nodes, batch and MPI step       COMPLETED
 *   2 alice  physics  exits 3                             FAILED 3:0
 *   3 bob    chem     past its time limit                 TIMEOUT 0:15
 *   4 bob    chem     over its memory                     OUT_OF_MEMORY 0:9
 *   5 alice  bio      over midnight, CPU times come late  CANCELLED 0:15
 *   6 bob    chem     cancelled while pending             CANCELLED
 *   7-9 carol physics array 7_[0-2]                       COMPLETED, FAILED 1:0,
 *                                                         COMPLETED
 *  10 bob    chem     pending                             PENDING
 * Uses tests/unit/support/sqltest.h; fails the running test on an error. */
#ifndef PHX_TEST_ACCTFIXTURE_H
#define PHX_TEST_ACCTFIXTURE_H

#include "db/db.h"

/* The base time of phx_acctfixture_db. */
#define PHX_ACCTFIXTURE_BASE "2024-03-01 00:00:00+00"

/* Insert the fixture with times from base (a timestamptz) into c. */
void phx_acctfixture_load(phx_db_conn_t *c, const char *base);
/* A fresh database (phx_sqltest_fresh_db) in time zone UTC with the fixture
 * loaded at PHX_ACCTFIXTURE_BASE; the caller closes it. */
phx_db_conn_t *phx_acctfixture_db(void);

#endif
