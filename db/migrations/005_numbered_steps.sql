-- Accounting of numbered steps (issue 9): `phx run` / `srun` steps 0, 1, ...
-- of a job are rows of job_steps (003), written by phx-master, which starts
-- and ends them.  phx-batchd writes jobs, phx-master writes gangs and tasks;
-- the link between the two is recorded here so that the master attributes a
-- step to its job from what only the daemons wrote, never from anything the
-- job's user controls (its environment):
--
--   step's gang (master, in memory) → tasks (framework_id, task_id, gang_id)
--     → jobs (framework_id, batch_task_id), written by phx-batchd when the
--       job starts (the batch task of its current run).
--
-- acct_steps, acct_jobs, usage_daily and the row-level security policies of
-- job_steps apply to the new rows unchanged (doc/accounting.md).

ALTER TABLE jobs
    ADD COLUMN framework_id text,       -- phx-batchd's framework at the last start
    ADD COLUMN batch_task_id text;      -- the task running the batch script (last run)

COMMENT ON COLUMN jobs.framework_id IS 'The master''s framework id of phx-batchd when the job (last) started';
COMMENT ON COLUMN jobs.batch_task_id IS 'The master''s task id of the batch script of the last run: links the job to its gang (tasks.gang_id)';

-- The master's lookup: from a gang's tasks to their job.
CREATE INDEX jobs_batch_task ON jobs (framework_id, batch_task_id)
    WHERE batch_task_id IS NOT NULL;

ALTER TABLE job_steps
    ADD COLUMN gang_id bigint;          -- numbered steps: the master's gang (run) they ran in

COMMENT ON COLUMN job_steps.gang_id IS 'Numbered steps: the gang (run of the job) the step ran in; NULL for batch and extern';

-- A restarted master numbers a running job's next step after the last one.
CREATE INDEX job_steps_gang ON job_steps (gang_id) WHERE gang_id IS NOT NULL;
