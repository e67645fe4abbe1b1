-- TotalCPU of a requeued job's runs, each charged once in usage_daily (004).
--
-- 004 charged a run's TotalCPU as the sum over all of its job's steps when
-- the job reached a final state, and added a step's CPU written later only
-- while the job was still in that final state.  With requeue (scontrol
-- requeue, NODE_FAIL) a job has several runs, and:
--
--  - a run's batch step written after the job is PENDING again (phx-batchd
--    queues the step row, then the PENDING row; its store may write them in
--    either order in one group commit) or running again was never charged:
--    the job was not in a final state when it arrived;
--  - the numbered steps of an earlier run were charged again at the end of
--    every later run (they stay in job_steps with the job).
--
-- From here on a step belongs to the run that started at or before its own
-- start: steps with start_time >= jobs.start_time are the current run's.  At
-- a run's end only its own steps are charged; a step's CPU written while its
-- run is the job's charged run is added to that run; a step of an earlier
-- run (the job pending, running again, or ended again since) is charged on
-- its own times, as the late step of a run that ended.  A batch step row
-- overwritten by a later run (its start_time changes) keeps the earlier
-- run's CPU charged and charges the new run's in full.  A run put back to
-- PENDING without a final state (batchd.requeue_count after NODE_FAIL) is
-- not charged, as before; CPU of its steps written after that is.
-- phx_acct_usage_rebuild charges each job's last run with that run's steps.

CREATE FUNCTION acct_run_cpu(p_job bigint, p_start timestamptz)
RETURNS double precision LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(coalesce(user_cpu_s, 0) + coalesce(system_cpu_s, 0)), 0)
            FROM job_steps WHERE job_id = p_job AND start_time >= p_start);
END
$$;

CREATE OR REPLACE FUNCTION acct_usage_on_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND acct_charged(OLD.state, OLD.start_time) THEN
        IF NOT acct_charged(NEW.state, NEW.start_time) THEN
            RETURN NULL;
        END IF;
        PERFORM acct_usage_add(OLD.user_name, OLD.account, OLD.start_time, OLD.end_time,
                               -1, coalesce(OLD.alloc_cpus, 0),
                               acct_run_cpu(OLD.id, OLD.start_time), true);
    END IF;
    IF acct_charged(NEW.state, NEW.start_time) THEN
        PERFORM acct_usage_add(NEW.user_name, NEW.account, NEW.start_time, NEW.end_time,
                               1, coalesce(NEW.alloc_cpus, 0),
                               acct_run_cpu(NEW.id, NEW.start_time), true);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION acct_usage_on_step() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    delta double precision := 0;
    v_job bigint;
    v_start timestamptz;
    v_end timestamptz;
    j record;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        delta := coalesce(NEW.user_cpu_s, 0) + coalesce(NEW.system_cpu_s, 0);
        v_job := NEW.job_id;
        v_start := NEW.start_time;
        v_end := coalesce(NEW.end_time, NEW.start_time);
    END IF;
    -- an UPDATE that moves the start is a later run's step: the earlier
    -- run's CPU stays charged to it
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.start_time = NEW.start_time) THEN
        delta := delta - coalesce(OLD.user_cpu_s, 0) - coalesce(OLD.system_cpu_s, 0);
        v_job := OLD.job_id;
        v_start := OLD.start_time;
        v_end := coalesce(OLD.end_time, OLD.start_time);
    END IF;
    IF delta = 0 THEN
        RETURN NULL;
    END IF;
    SELECT user_name, account, state, start_time, end_time INTO j
    FROM jobs WHERE jobs.id = v_job FOR SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF j.start_time IS NOT NULL AND v_start >= j.start_time THEN
        -- the current run's: added to its charge, or charged at its end
        IF acct_charged(j.state, j.start_time) THEN
            PERFORM acct_usage_add(j.user_name, j.account, j.start_time, j.end_time,
                                   1, 0, delta, false);
        END IF;
    ELSE
        -- an earlier run's, which has ended: charged on the step's own times
        PERFORM acct_usage_add(j.user_name, j.account, v_start, v_end, 1, 0, delta,
                               false);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION phx_acct_usage_rebuild(since date DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM usage_daily WHERE since IS NULL OR day >= since;
    INSERT INTO usage_daily (day, user_name, account, jobs, cpu_seconds, total_cpu_s)
    SELECT d.day, j.user_name, coalesce(j.account, ''),
           count(*) FILTER (WHERE d.last),
           sum(d.seconds * coalesce(j.alloc_cpus, 0)),
           sum(acct_run_cpu(j.id, j.start_time) * d.share)
    FROM jobs j
    CROSS JOIN LATERAL acct_split_days(j.start_time, j.end_time) d
    WHERE acct_charged(j.state, j.start_time)
      AND (since IS NULL OR j.end_time >= since::timestamp AT TIME ZONE 'UTC')
      AND (since IS NULL OR d.day >= since)
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- As 004 did for the functions it replaced: the trigger functions run as
-- their owner with a pinned search path; none is for PUBLIC.
REVOKE ALL ON FUNCTION acct_run_cpu(bigint, timestamptz) FROM PUBLIC;
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format('ALTER FUNCTION acct_usage_on_job() SET search_path = %s, pg_temp', s);
    EXECUTE format('ALTER FUNCTION acct_usage_on_step() SET search_path = %s, pg_temp', s);
END
$$;
