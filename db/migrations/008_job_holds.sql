-- Job holds (Slurm's scontrol hold/release, sbatch -H): a held job stays
-- PENDING with reason JobHeldUser (a hold by its owner, or -H) or
-- JobHeldAdmin (a hold by an operator, which only an operator releases).
-- phx-batchd keeps the hold in jobs.reason, so it survives a restart; no
-- column is added.
--
-- job_events recorded state changes only (003): a hold or a release
-- changes the reason of a job that stays PENDING, and went unrecorded.
-- From here on the trigger also records, as PENDING > PENDING with the new
-- reason, every change of reason into or out of a hold; the other changes
-- of a pending job's reason (Priority, Resources, ...) are the scheduler's
-- passing view and are still not recorded.  doc/batchd.md ("Holds",
-- "States") documents it.
--
-- Who may do what is unchanged (004): phx_daemon writes jobs and
-- job_events, members of phx_user read the events of their own jobs.

CREATE OR REPLACE FUNCTION jobs_record_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_events (job_id, time, from_state, to_state, reason)
        VALUES (NEW.id, NEW.submit_time, NULL, NEW.state, NEW.reason);
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO job_events (job_id, time, from_state, to_state, reason)
        VALUES (NEW.id,
                CASE WHEN NEW.state = 'RUNNING' THEN coalesce(NEW.start_time, now())
                     WHEN NEW.state = 'PENDING' THEN now()
                     ELSE coalesce(NEW.end_time, now()) END,
                OLD.state, NEW.state, NEW.reason);
    ELSIF NEW.reason IS DISTINCT FROM OLD.reason
          AND (NEW.reason IN ('JobHeldUser', 'JobHeldAdmin')
               OR OLD.reason IN ('JobHeldUser', 'JobHeldAdmin')) THEN
        INSERT INTO job_events (job_id, time, from_state, to_state, reason)
        VALUES (NEW.id, now(), OLD.state, NEW.state, NEW.reason);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER jobs_transition ON jobs;
CREATE TRIGGER jobs_transition AFTER INSERT OR UPDATE OF state, reason ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_record_transition();

COMMENT ON COLUMN jobs.reason IS 'Why PENDING (JobHeldUser, JobHeldAdmin: held), or why it ended (DependencyNeverSatisfied, ...)';
