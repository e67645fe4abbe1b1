-- A cancel asked for a running job (phx cancel, scancel) is kept in
-- jobs.cancel_uid and cancel_time (003) and is now carried out by a
-- restarted phx-batchd too: a RUNNING row with cancel_uid set is a job
-- being cancelled, whose tasks are killed again and which ends CANCELLED.
-- Before this, phx-batchd read cancel_uid back from no row, and a restart
-- while the job's tasks were being killed ended it FAILED.
--
-- cancel_uid now names who cancelled the job's current run: a requeue
-- clears it.  phx-batchd before this left it set when a cancelled job was
-- requeued; such stale values on the rows of live jobs (pending, or
-- running again after the requeue: cancelled before the run started) are
-- cleared here, so that a restarted phx-batchd does not cancel those jobs.
--
-- Who may do what is unchanged (004): phx_daemon writes jobs.

UPDATE jobs SET cancel_uid = NULL, cancel_time = NULL
 WHERE cancel_uid IS NOT NULL
   AND (state = 'PENDING'
        OR (state = 'RUNNING' AND requeue_count > 0 AND cancel_time < start_time));

COMMENT ON COLUMN jobs.cancel_uid IS 'Who cancelled the job''s current run (NULL: none; a requeue clears it); on a RUNNING row, a cancel phx-batchd carries out, also after a restart';
