-- A requeue asked for a running job (phx requeue, scontrol requeue and
-- requeuehold) is carried out once the job's batch step has ended: its run
-- is recorded, then the job is PENDING again.  phx-batchd kept the request
-- in memory only, so a restart in between ended the job FAILED instead.
-- It is now kept in the jobs row from the request until the job is PENDING
-- again (or a cancel wins), and a restarted phx-batchd carries it out.
--
--   NULL         none asked
--   'requeue'    back to PENDING
--   'hold'       back to PENDING, held by its owner (JobHeldUser)
--   'hold_admin' back to PENDING, held by an operator (JobHeldAdmin)
--
-- Who may do what is unchanged (004): phx_daemon writes jobs.

ALTER TABLE jobs
    ADD COLUMN requeue_asked text
        CONSTRAINT jobs_requeue_asked
            CHECK (requeue_asked IN ('requeue', 'hold', 'hold_admin'));

COMMENT ON COLUMN jobs.requeue_asked IS 'A requeue asked while the job runs, carried out when its batch step ends: requeue, hold (JobHeldUser) or hold_admin (JobHeldAdmin); NULL: none';
