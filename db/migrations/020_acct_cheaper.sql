-- Cheaper accounting per job end (doc/accounting.md, "Cost per job"): the
-- same figures in usage_daily and acct_jobs for less of PostgreSQL's CPU.
--
-- 1. acct_run_gpus (014) was a SQL function with a FROM
--    (jsonb_array_elements): PostgreSQL inlines no such function and, before
--    version 18, plans its body again at every call.  The jobs_usage_update
--    trigger called it three times per job end (twice in its WHEN, once in
--    acct_usage_on_job): about 50 us of the ~140 us a job end cost.  It is
--    now one expression (a jsonpath over the tasks), which the planner
--    inlines into the trigger's WHEN, the trigger function's statements, the
--    rebuild and acct_jobs.  Its answers are unchanged on every input: 0 for
--    NULL and for anything but an array; else the sum, over the array's
--    elements that are objects whose "gpus" is an array, of that array's
--    length (its elements counted as they are: a nested array is one).
--    tests/unit/test_acct_gpus.c pins them.
--
-- 2. acct_usage_on_job charges a run that ends on the day it started (most
--    runs) with its own INSERT, the one acct_usage_add makes for such a run,
--    the run's TotalCPU read in it: no call of acct_usage_add and
--    acct_run_cpu (two PL/pgSQL calls and their statements) per job end.
--    Other runs, and the charge taken out of a corrected job, still go
--    through acct_usage_add.
--
-- 3. job_steps_usage fired for every step written and returned at once when
--    the step had no CPU time to add.  The INSERT case is now a trigger of
--    its own, job_steps_usage_insert, whose WHEN skips such steps without
--    calling the (SECURITY DEFINER) function; updates and deletes keep
--    job_steps_usage.
--
-- Who may do what is unchanged (004): the trigger functions keep running
-- as their owner with a pinned search path.

CREATE OR REPLACE FUNCTION acct_run_gpus(p_tasks jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_tasks) = 'array'
                THEN jsonb_array_length(jsonb_path_query_array(
                         p_tasks, 'strict $[*] ? (@.gpus.type() == "array").gpus[*]'))
                ELSE 0 END
$$;

-- 014's, the same-day charge of the new run made here.
CREATE OR REPLACE FUNCTION acct_usage_on_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    s timestamptz;
    e timestamptz;
BEGIN
    IF TG_OP = 'UPDATE' AND acct_charged(OLD.state, OLD.start_time) THEN
        IF NOT acct_charged(NEW.state, NEW.start_time) THEN
            RETURN NULL;
        END IF;
        PERFORM acct_usage_add(OLD.user_name, OLD.account, OLD.start_time, OLD.end_time,
                               -1, coalesce(OLD.alloc_cpus, 0),
                               acct_run_cpu(OLD.id, OLD.start_time), true,
                               acct_run_gpus(OLD.run_tasks));
    ELSIF NOT acct_charged(NEW.state, NEW.start_time) THEN
        RETURN NULL;
    END IF;
    s := date_trunc('second', NEW.start_time);
    e := date_trunc('second', NEW.end_time);
    IF (s AT TIME ZONE 'UTC')::date = (e AT TIME ZONE 'UTC')::date THEN
        -- acct_usage_add's same-day INSERT for sign +1, with acct_run_cpu's sum
        INSERT INTO usage_daily AS u (day, user_name, account, jobs, cpu_seconds,
                                      total_cpu_s, gpu_seconds)
        VALUES ((e AT TIME ZONE 'UTC')::date, NEW.user_name, coalesce(NEW.account, ''), 1,
                extract(epoch FROM e - s)::bigint * coalesce(NEW.alloc_cpus, 0),
                (SELECT coalesce(sum(coalesce(st.user_cpu_s, 0)
                                     + coalesce(st.system_cpu_s, 0)), 0)
                 FROM job_steps st
                 WHERE st.job_id = NEW.id AND st.start_time >= NEW.start_time),
                extract(epoch FROM e - s)::bigint * acct_run_gpus(NEW.run_tasks))
        ON CONFLICT (day, user_name, account) DO UPDATE
            SET jobs = u.jobs + excluded.jobs,
                cpu_seconds = u.cpu_seconds + excluded.cpu_seconds,
                total_cpu_s = u.total_cpu_s + excluded.total_cpu_s,
                gpu_seconds = u.gpu_seconds + excluded.gpu_seconds;
    ELSE
        PERFORM acct_usage_add(NEW.user_name, NEW.account, NEW.start_time, NEW.end_time,
                               1, coalesce(NEW.alloc_cpus, 0),
                               acct_run_cpu(NEW.id, NEW.start_time), true,
                               acct_run_gpus(NEW.run_tasks));
    END IF;
    RETURN NULL;
END
$$;

-- acct_usage_on_step (010) returns at once when a new step adds no CPU
-- time (delta 0): such steps are no longer handed to it.
DROP TRIGGER job_steps_usage ON job_steps;
CREATE TRIGGER job_steps_usage_insert AFTER INSERT ON job_steps
    FOR EACH ROW
    WHEN (coalesce(NEW.user_cpu_s, 0) + coalesce(NEW.system_cpu_s, 0) <> 0)
    EXECUTE FUNCTION acct_usage_on_step();
CREATE TRIGGER job_steps_usage
    AFTER DELETE OR UPDATE OF user_cpu_s, system_cpu_s ON job_steps
    FOR EACH ROW EXECUTE FUNCTION acct_usage_on_step();

-- CREATE OR REPLACE reset the function's settings: its search path pinned
-- again, as 004 did.
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format('ALTER FUNCTION acct_usage_on_job() SET search_path = %s, pg_temp', s);
END
$$;
