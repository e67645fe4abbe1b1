-- A job requeued by phx-batchd after a node failure (batchd.requeue_count)
-- has its lost run recorded first (its jobs row NODE_FAIL, charged in
-- usage_daily), then is made PENDING: two writes, which may commit in two
-- transactions.  A phx-batchd stopped between them (killed, deposed by a
-- failover) left the job NODE_FAIL for good, never requeued, where the
-- single RUNNING -> PENDING write before could not.  The NODE_FAIL write
-- now keeps the requeue to come in requeue_asked, as a requeue asked by
-- phx requeue is kept there with the run's final state, and a phx-batchd
-- that starts requeues every job whose final row still holds one (rows
-- left so by an earlier phx-batchd are cleared below).
--
--   'node_fail'  back to PENDING after a node failure (NodeFailRequeued)
--
-- Who may do what is unchanged (004): phx_daemon writes jobs.

ALTER TABLE jobs
    DROP CONSTRAINT jobs_requeue_asked,
    ADD CONSTRAINT jobs_requeue_asked
        CHECK (requeue_asked IN ('requeue', 'hold', 'hold_admin', 'node_fail'));

COMMENT ON COLUMN jobs.requeue_asked IS 'A requeue asked while the job runs, carried out when its batch step ends: requeue, hold (JobHeldUser) or hold_admin (JobHeldAdmin); node_fail: phx-batchd''s own after a node failure.  Kept with the run''s final state until the job is PENDING again (a phx-batchd that starts finishes it); NULL: none';

-- phx-batchd's loader reads these rows at every start, with the active
-- and recent ones (jobs_active, jobs_end): an index of their own keeps
-- that a bitmap scan, not one over every job ever run.
CREATE INDEX jobs_requeue_asked ON jobs (id) WHERE requeue_asked IS NOT NULL;

-- Rows left so before this migration (a phx requeue whose PENDING write
-- never committed) were never acted on, and their owners have seen them
-- ended since, maybe long ago: they are not requeued by surprise now.
UPDATE jobs SET requeue_asked = NULL
    WHERE requeue_asked IS NOT NULL AND state NOT IN ('PENDING', 'RUNNING');
