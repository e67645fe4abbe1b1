-- Accounting (issue 9): sacct-like views over jobs and job_steps (003), a
-- per-day usage table kept current by triggers as jobs end, and the roles
-- that read them.  doc/accounting.md documents every column; the names and
-- types of acct_jobs, acct_steps and usage_daily are a public interface:
-- change them only by adding columns.
--
-- Roles (cluster-wide, NOLOGIN, created here once):
--   phx_daemon      the daemons: read and write the tables (row-level
--                   security lets it see every row)
--   phx_accountant  read-only: SELECT on every table and view, nothing else
--   phx_user        group of the per-user roles (phx_acct_grant_user): each
--                   sees only the rows whose user_name is its own name
-- The migration's runner (the database owner) keeps owning the tables and,
-- as owner, is not subject to row-level security.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['phx_daemon', 'phx_accountant', 'phx_user'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;       -- created meanwhile by a migration of another database
            END;
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Days: the UTC days [p_start, p_end) covers, with the whole seconds of each
-- (both ends truncated to the second), its share of the run (shares sum to
-- 1; a run of zero seconds is all on its last day) and whether the run ended
-- on that day.  Shared by the triggers and the rebuild so that both split
-- alike.

CREATE FUNCTION acct_split_days(p_start timestamptz, p_end timestamptz)
RETURNS TABLE (day date, seconds bigint, share double precision, last boolean)
LANGUAGE sql STABLE AS $$
    SELECT d.d::date,
           greatest(0, extract(epoch FROM
               least(b.e, (d.d + interval '1 day') AT TIME ZONE 'UTC')
               - greatest(b.s, d.d AT TIME ZONE 'UTC')))::bigint,
           CASE WHEN b.e > b.s
                THEN greatest(0, extract(epoch FROM
                         least(b.e, (d.d + interval '1 day') AT TIME ZONE 'UTC')
                         - greatest(b.s, d.d AT TIME ZONE 'UTC')))::double precision
                     / extract(epoch FROM b.e - b.s)::double precision
                WHEN d.d::date = (b.e AT TIME ZONE 'UTC')::date THEN 1
                ELSE 0 END,
           d.d::date = (b.e AT TIME ZONE 'UTC')::date
    FROM (SELECT date_trunc('second', p_start) AS s,
                 date_trunc('second', p_end) AS e) b
    CROSS JOIN LATERAL generate_series((b.s AT TIME ZONE 'UTC')::date::timestamp,
                                       (b.e AT TIME ZONE 'UTC')::date::timestamp,
                                       interval '1 day') AS d (d)
$$;

-- ---------------------------------------------------------------------------
-- usage_daily: per UTC day, user and account.  A job is charged when it
-- reaches a final state after having started: its CPU seconds (elapsed x
-- allocated CPUs) and TotalCPU are split over the days its run covers, in
-- proportion to the seconds of each; it counts as one job on the day it
-- ended.  Deleting (purging) jobs leaves their usage here, as slurmdbd keeps
-- its rollups; a requeued job keeps the charge of the run that ended and is
-- charged again when its next run ends.  phx_acct_usage_rebuild recomputes
-- the table from the jobs that remain.

CREATE TABLE usage_daily (
    day         date NOT NULL,
    user_name   text NOT NULL,
    account     text NOT NULL DEFAULT '',    -- '' for jobs without an account
    jobs        integer NOT NULL DEFAULT 0,
    cpu_seconds bigint NOT NULL DEFAULT 0,
    core_hours  double precision GENERATED ALWAYS AS (cpu_seconds / 3600.0) STORED,
    total_cpu_s double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_name, account)
);

CREATE INDEX usage_daily_user ON usage_daily (user_name, day);

COMMENT ON TABLE usage_daily IS 'Per UTC day, user and account: jobs ended, CPU seconds allocated (split by day), TotalCPU; kept current by triggers (doc/accounting.md)';
COMMENT ON COLUMN usage_daily.jobs IS 'Job runs that ended on this day (after starting)';
COMMENT ON COLUMN usage_daily.cpu_seconds IS 'Allocated CPU seconds (elapsed x alloc_cpus) that fell on this day';
COMMENT ON COLUMN usage_daily.core_hours IS 'cpu_seconds / 3600';
COMMENT ON COLUMN usage_daily.total_cpu_s IS 'User + system CPU seconds of the steps, split like cpu_seconds';

-- Add (sign +1) or take out (-1) the charge of one run.  Runs with the
-- privileges of its caller: only the trigger functions below call it.
-- PL/pgSQL, not SQL: its statement's plan is kept for the session, where a
-- SQL function's body would be planned again at every job end.
CREATE FUNCTION acct_usage_add(p_user text, p_account text, p_start timestamptz,
                               p_end timestamptz, p_sign integer, p_cpus integer,
                               p_total_cpu double precision, p_count boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s timestamptz := date_trunc('second', p_start);
    e timestamptz := date_trunc('second', p_end);
BEGIN
    IF (s AT TIME ZONE 'UTC')::date = (e AT TIME ZONE 'UTC')::date THEN
        -- most runs: within one day (the same figures as acct_split_days)
        INSERT INTO usage_daily AS u (day, user_name, account, jobs, cpu_seconds,
                                      total_cpu_s)
        VALUES ((e AT TIME ZONE 'UTC')::date, p_user, coalesce(p_account, ''),
                CASE WHEN p_count THEN p_sign ELSE 0 END,
                p_sign * extract(epoch FROM e - s)::bigint * p_cpus,
                p_sign * p_total_cpu)
        ON CONFLICT (day, user_name, account) DO UPDATE
            SET jobs = u.jobs + excluded.jobs,
                cpu_seconds = u.cpu_seconds + excluded.cpu_seconds,
                total_cpu_s = u.total_cpu_s + excluded.total_cpu_s;
        RETURN;
    END IF;
    INSERT INTO usage_daily AS u (day, user_name, account, jobs, cpu_seconds, total_cpu_s)
    SELECT d.day, p_user, coalesce(p_account, ''),
           CASE WHEN p_count AND d.last THEN p_sign ELSE 0 END,
           p_sign * d.seconds * p_cpus,
           p_sign * p_total_cpu * d.share
    FROM acct_split_days(p_start, p_end) d
    ON CONFLICT (day, user_name, account) DO UPDATE
        SET jobs = u.jobs + excluded.jobs,
            cpu_seconds = u.cpu_seconds + excluded.cpu_seconds,
            total_cpu_s = u.total_cpu_s + excluded.total_cpu_s;
END
$$;

-- A run is charged once its job is in a final state and has started.
CREATE FUNCTION acct_charged(p_state text, p_start timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_state NOT IN ('PENDING', 'RUNNING') AND p_start IS NOT NULL
$$;

CREATE FUNCTION acct_job_cpu(p_job bigint) RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(coalesce(user_cpu_s, 0) + coalesce(system_cpu_s, 0)), 0)
            FROM job_steps WHERE job_id = p_job);
END
$$;

-- jobs: charge a run when it ends; a correction of a finished job (times,
-- CPUs, owner, account, final state) replaces its charge; a finished job put
-- back to PENDING (requeue) keeps it.
CREATE FUNCTION acct_usage_on_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND acct_charged(OLD.state, OLD.start_time) THEN
        IF NOT acct_charged(NEW.state, NEW.start_time) THEN
            RETURN NULL;
        END IF;
        PERFORM acct_usage_add(OLD.user_name, OLD.account, OLD.start_time, OLD.end_time,
                               -1, coalesce(OLD.alloc_cpus, 0), acct_job_cpu(OLD.id), true);
    END IF;
    IF acct_charged(NEW.state, NEW.start_time) THEN
        PERFORM acct_usage_add(NEW.user_name, NEW.account, NEW.start_time, NEW.end_time,
                               1, coalesce(NEW.alloc_cpus, 0), acct_job_cpu(NEW.id), true);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_usage_insert AFTER INSERT ON jobs FOR EACH ROW
    WHEN (acct_charged(NEW.state, NEW.start_time))
    EXECUTE FUNCTION acct_usage_on_job();

CREATE TRIGGER jobs_usage_update
    AFTER UPDATE OF state, start_time, end_time, alloc_cpus, user_name, account ON jobs
    FOR EACH ROW
    WHEN ((acct_charged(OLD.state, OLD.start_time) OR acct_charged(NEW.state, NEW.start_time))
          AND (OLD.state, OLD.start_time, OLD.end_time, OLD.alloc_cpus, OLD.user_name,
               OLD.account) IS DISTINCT FROM
              (NEW.state, NEW.start_time, NEW.end_time, NEW.alloc_cpus, NEW.user_name,
               NEW.account))
    EXECUTE FUNCTION acct_usage_on_job();

-- job_steps: CPU times that arrive or change while the job is charged are
-- added to its charge (steps may be written before or after the job's end).
-- The job row is read FOR SHARE, so that a concurrent transaction ending the
-- job either sees this step or is seen by it, never neither.  Steps deleted
-- with their job (a purge) leave the usage alone: the job is gone by then.
CREATE FUNCTION acct_usage_on_step() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    delta double precision := 0;
    v_job bigint;
    j record;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        delta := coalesce(NEW.user_cpu_s, 0) + coalesce(NEW.system_cpu_s, 0);
        v_job := NEW.job_id;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        delta := delta - coalesce(OLD.user_cpu_s, 0) - coalesce(OLD.system_cpu_s, 0);
        v_job := OLD.job_id;
    END IF;
    IF delta = 0 THEN
        RETURN NULL;
    END IF;
    SELECT user_name, account, state, start_time, end_time INTO j
    FROM jobs WHERE jobs.id = v_job FOR SHARE;
    IF FOUND AND acct_charged(j.state, j.start_time) THEN
        PERFORM acct_usage_add(j.user_name, j.account, j.start_time, j.end_time,
                               1, 0, delta, false);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_steps_usage
    AFTER INSERT OR DELETE OR UPDATE OF user_cpu_s, system_cpu_s ON job_steps
    FOR EACH ROW EXECUTE FUNCTION acct_usage_on_step();

-- Recompute usage_daily for the days from since (all days when NULL) out of
-- the jobs table: after a bulk load with triggers off, or to drop the usage
-- of purged jobs.  Returns the number of rows written.  Owner only.
CREATE FUNCTION phx_acct_usage_rebuild(since date DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM usage_daily WHERE since IS NULL OR day >= since;
    INSERT INTO usage_daily (day, user_name, account, jobs, cpu_seconds, total_cpu_s)
    SELECT d.day, j.user_name, coalesce(j.account, ''),
           count(*) FILTER (WHERE d.last),
           sum(d.seconds * coalesce(j.alloc_cpus, 0)),
           sum(coalesce(c.cpu, 0) * d.share)
    FROM jobs j
    LEFT JOIN (SELECT job_id,
                      sum(coalesce(user_cpu_s, 0) + coalesce(system_cpu_s, 0)) AS cpu
               FROM job_steps GROUP BY job_id) c ON c.job_id = j.id
    CROSS JOIN LATERAL acct_split_days(j.start_time, j.end_time) d
    WHERE acct_charged(j.state, j.start_time)
      AND (since IS NULL OR j.end_time >= since::timestamp AT TIME ZONE 'UTC')
      AND (since IS NULL OR d.day >= since)
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- ---------------------------------------------------------------------------
-- The views.  security_invoker: the row-level security of jobs and job_steps
-- applies to whoever queries them.  They are not security_barrier: the
-- policies' conditions already run before any condition of the query, and a
-- barrier would stop "WHERE jobid = '41'" from using the tables' indexes.

CREATE VIEW acct_jobs WITH (security_invoker = true) AS
SELECT
    CASE WHEN j.array_job_id IS NULL THEN j.id::text
         ELSE j.array_job_id || '_' || j.array_task_id END AS jobid,
    j.id AS job_id,
    j.array_job_id,
    j.array_task_id,
    j.name AS job_name,
    j.user_name,
    j.uid,
    j.gid,
    j.group_name,
    j.account,
    j.partition,
    j.qos,
    j.state::text AS state,
    j.reason,
    coalesce(j.exit_code, 0) || ':' || coalesce(j.exit_signal, 0) AS exit_code,
    j.exit_code AS exit_status,
    j.exit_signal,
    j.submit_time AS submit,
    j.eligible_time AS eligible,
    j.start_time AS start,
    j.end_time AS "end",
    make_interval(secs => t.elapsed_s) AS elapsed,
    t.elapsed_s,
    make_interval(secs => t.wait_s) AS wait,
    t.wait_s,
    make_interval(secs => j.time_limit) AS timelimit,
    j.time_limit AS timelimit_s,
    j.nodes_min AS req_nodes,
    j.ntasks * j.cpus_per_task AS req_cpus,
    CASE WHEN j.mem_per_cpu IS NOT NULL THEN j.mem_per_cpu || 'Mc'
         WHEN j.mem_per_node IS NOT NULL THEN j.mem_per_node || 'Mn' END AS req_mem,
    j.alloc_nodes,
    j.alloc_cpus,
    j.alloc_mem,
    j.node_list,
    j.ntasks,
    j.cpus_per_task,
    make_interval(secs => t.elapsed_s * coalesce(j.alloc_cpus, 0)) AS cpu_time,
    t.elapsed_s * coalesce(j.alloc_cpus, 0) AS cpu_time_s,
    make_interval(secs => coalesce(st.user_cpu_s, 0) + coalesce(st.system_cpu_s, 0))
        AS total_cpu,
    coalesce(st.user_cpu_s, 0) + coalesce(st.system_cpu_s, 0) AS total_cpu_s,
    coalesce(st.user_cpu_s, 0) AS user_cpu_s,
    coalesce(st.system_cpu_s, 0) AS system_cpu_s,
    st.max_rss_bytes,
    st.nsteps,
    j.requeue_count AS restarts,
    j.work_dir,
    j.submit_line,
    j.submit_host
FROM jobs j
CROSS JOIN LATERAL (
    SELECT CASE WHEN j.start_time IS NULL THEN 0
                ELSE greatest(0, extract(epoch FROM
                         date_trunc('second', coalesce(j.end_time, now()))
                         - date_trunc('second', j.start_time)))::bigint END AS elapsed_s,
           CASE WHEN j.start_time IS NOT NULL
                THEN greatest(0, extract(epoch FROM date_trunc('second', j.start_time)
                         - date_trunc('second', coalesce(j.eligible_time, j.submit_time))))::bigint
                WHEN j.state = 'PENDING' AND j.eligible_time IS NOT NULL
                THEN greatest(0, extract(epoch FROM date_trunc('second', now())
                         - date_trunc('second', j.eligible_time)))::bigint END AS wait_s
) t
LEFT JOIN LATERAL (
    SELECT sum(s.user_cpu_s) AS user_cpu_s,
           sum(s.system_cpu_s) AS system_cpu_s,
           max(s.max_rss_bytes) AS max_rss_bytes,
           count(*) AS nsteps
    FROM job_steps s WHERE s.job_id = j.id
) st ON true;

COMMENT ON VIEW acct_jobs IS 'One row per job or array task, like sacct -X (doc/accounting.md)';
COMMENT ON COLUMN acct_jobs.jobid IS 'sacct JobID: "41", or "41_3" for task 3 of array 41';
COMMENT ON COLUMN acct_jobs.exit_code IS 'sacct ExitCode: "exit:signal", "0:0" until the job ends';
COMMENT ON COLUMN acct_jobs.elapsed_s IS 'Whole seconds from start to end (to now while running)';
COMMENT ON COLUMN acct_jobs.wait_s IS 'Seconds from eligible (else submit) to start (sacct Planned)';
COMMENT ON COLUMN acct_jobs.req_mem IS 'sacct ReqMem: "<MiB>Mn" per node or "<MiB>Mc" per CPU';
COMMENT ON COLUMN acct_jobs.alloc_mem IS 'MiB over all nodes';
COMMENT ON COLUMN acct_jobs.cpu_time_s IS 'sacct CPUTimeRAW: elapsed_s x alloc_cpus';
COMMENT ON COLUMN acct_jobs.total_cpu_s IS 'sacct TotalCPU: user + system CPU seconds of all steps';
COMMENT ON COLUMN acct_jobs.max_rss_bytes IS 'sacct MaxRSS: the highest of the steps, bytes';

CREATE VIEW acct_steps WITH (security_invoker = true) AS
SELECT
    CASE WHEN j.array_job_id IS NULL THEN j.id::text
         ELSE j.array_job_id || '_' || j.array_task_id END || '.' || s.step_id AS jobid,
    j.id AS job_id,
    s.step_id,
    j.array_job_id,
    j.array_task_id,
    coalesce(nullif(s.name, ''), s.step_id) AS job_name,
    j.user_name,
    j.uid,
    j.gid,
    j.group_name,
    j.account,
    j.partition,
    j.qos,
    s.state::text AS state,
    coalesce(s.exit_code, 0) || ':' || coalesce(s.exit_signal, 0) AS exit_code,
    s.exit_code AS exit_status,
    s.exit_signal,
    j.submit_time AS submit,
    j.eligible_time AS eligible,
    s.start_time AS start,
    s.end_time AS "end",
    make_interval(secs => t.elapsed_s) AS elapsed,
    t.elapsed_s,
    make_interval(secs => j.time_limit) AS timelimit,
    j.time_limit AS timelimit_s,
    s.req_mem || 'Mn' AS req_mem,
    s.nnodes AS alloc_nodes,
    s.alloc_cpus,
    s.node_list,
    s.ntasks,
    make_interval(secs => t.elapsed_s * s.alloc_cpus) AS cpu_time,
    t.elapsed_s * s.alloc_cpus AS cpu_time_s,
    make_interval(secs => coalesce(s.user_cpu_s, 0) + coalesce(s.system_cpu_s, 0))
        AS total_cpu,
    coalesce(s.user_cpu_s, 0) + coalesce(s.system_cpu_s, 0) AS total_cpu_s,
    coalesce(s.user_cpu_s, 0) AS user_cpu_s,
    coalesce(s.system_cpu_s, 0) AS system_cpu_s,
    s.max_rss_bytes,
    j.work_dir,
    j.submit_line,
    CASE s.step_id WHEN 'batch' THEN -2 WHEN 'extern' THEN -1
                   ELSE s.step_id::bigint END AS step_order
FROM job_steps s
JOIN jobs j ON j.id = s.job_id
CROSS JOIN LATERAL (
    SELECT greatest(0, extract(epoch FROM
               date_trunc('second', coalesce(s.end_time, now()))
               - date_trunc('second', s.start_time)))::bigint AS elapsed_s
) t;

COMMENT ON VIEW acct_steps IS 'One row per job step ("41.batch", "41.0"), like sacct''s step lines (doc/accounting.md)';
COMMENT ON COLUMN acct_steps.job_name IS 'The step''s name (its step_id when unnamed), as sacct shows on step lines';
COMMENT ON COLUMN acct_steps.step_order IS 'Sort key: batch, extern, then 0, 1, ...';

-- Users filter on their name (row-level security) and phx acct -u uses it.
CREATE INDEX jobs_user_end ON jobs (user_name, end_time);

-- ---------------------------------------------------------------------------
-- Row-level security.  Policies name roles; members of phx_user see their
-- own rows, phx_daemon and phx_accountant see all.  Privileges decide who
-- may write: only phx_daemon, and usage_daily only through the triggers.

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_daily ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_daemon ON jobs TO phx_daemon USING (true) WITH CHECK (true);
CREATE POLICY jobs_accountant ON jobs FOR SELECT TO phx_accountant USING (true);
CREATE POLICY jobs_own ON jobs FOR SELECT TO phx_user
    USING (user_name = current_user::text);

CREATE POLICY job_steps_daemon ON job_steps TO phx_daemon USING (true) WITH CHECK (true);
CREATE POLICY job_steps_accountant ON job_steps FOR SELECT TO phx_accountant USING (true);
CREATE POLICY job_steps_own ON job_steps FOR SELECT TO phx_user
    USING (EXISTS (SELECT 1 FROM jobs j
                   WHERE j.id = job_steps.job_id AND j.user_name = current_user::text));

CREATE POLICY job_events_daemon ON job_events TO phx_daemon USING (true) WITH CHECK (true);
CREATE POLICY job_events_accountant ON job_events FOR SELECT TO phx_accountant
    USING (true);
CREATE POLICY job_events_own ON job_events FOR SELECT TO phx_user
    USING (EXISTS (SELECT 1 FROM jobs j
                   WHERE j.id = job_events.job_id AND j.user_name = current_user::text));

CREATE POLICY usage_daily_daemon ON usage_daily FOR SELECT TO phx_daemon USING (true);
CREATE POLICY usage_daily_accountant ON usage_daily FOR SELECT TO phx_accountant
    USING (true);
CREATE POLICY usage_daily_own ON usage_daily FOR SELECT TO phx_user
    USING (user_name = current_user::text);

-- ---------------------------------------------------------------------------
-- Privileges.  Functions are executable by PUBLIC unless revoked.

REVOKE ALL ON FUNCTION acct_usage_add(text, text, timestamptz, timestamptz, integer,
                                      integer, double precision, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION acct_usage_on_job() FROM PUBLIC;
REVOKE ALL ON FUNCTION acct_usage_on_step() FROM PUBLIC;
REVOKE ALL ON FUNCTION phx_acct_usage_rebuild(date) FROM PUBLIC;

DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    -- The trigger functions run as their owner: pin their search path.
    EXECUTE format('ALTER FUNCTION acct_usage_on_job() SET search_path = %s, pg_temp', s);
    EXECUTE format('ALTER FUNCTION acct_usage_on_step() SET search_path = %s, pg_temp', s);

    EXECUTE format('GRANT USAGE ON SCHEMA %s TO phx_daemon, phx_accountant, phx_user', s);

    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON agents, frameworks, gangs, tasks, '
            'jobs, job_steps, job_events TO phx_daemon';
    EXECUTE 'GRANT SELECT ON usage_daily, acct_jobs, acct_steps TO phx_daemon';
    IF to_regclass('schema_version') IS NOT NULL THEN   -- the runner's own table
        EXECUTE 'GRANT SELECT ON schema_version TO phx_daemon';
    END IF;
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %s '
                   'TO phx_daemon', s);

    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %s TO phx_accountant', s);

    EXECUTE 'GRANT SELECT ON jobs, job_steps, job_events, usage_daily, acct_jobs, '
            'acct_steps TO phx_user';

    -- Tables and sequences that later migrations create (run by the same
    -- role): the daemons write them, the accountant reads them.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT SELECT, INSERT, UPDATE, '
                   'DELETE ON TABLES TO phx_daemon', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT USAGE, SELECT, UPDATE '
                   'ON SEQUENCES TO phx_daemon', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT SELECT ON TABLES '
                   'TO phx_accountant', s);
END
$$;

-- ---------------------------------------------------------------------------
-- Per-user roles.  SELECT phx_acct_grant_user('alice') creates role alice
-- (LOGIN, no password: sites authenticate it with peer or another method in
-- pg_hba.conf) if it does not exist and makes it a member of phx_user.  The
-- caller needs CREATEROLE (or to be superuser); EXECUTE is the owner's only.

CREATE FUNCTION phx_acct_grant_user(unix_user text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF unix_user IS NULL OR unix_user !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid user name "%"', unix_user
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Unix user names: letters, digits, ".", "_", "-", not starting with "-" or "."';
    END IF;
    IF unix_user ~ '^(pg_|phx_)' OR unix_user = 'postgres' THEN
        RAISE EXCEPTION 'user name "%" is reserved', unix_user
            USING ERRCODE = 'reserved_name';
    END IF;
    SELECT rolsuper, rolbypassrls INTO r FROM pg_roles WHERE rolname = unix_user;
    IF NOT FOUND THEN
        EXECUTE format('CREATE ROLE %I LOGIN', unix_user);
    ELSIF r.rolsuper OR r.rolbypassrls THEN
        RAISE EXCEPTION 'role "%" bypasses row-level security', unix_user
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('GRANT phx_user TO %I', unix_user);
END
$$;

-- Takes the role out of phx_user (it then reads nothing); the role stays.
CREATE FUNCTION phx_acct_revoke_user(unix_user text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('REVOKE phx_user FROM %I', unix_user);
END
$$;

REVOKE ALL ON FUNCTION phx_acct_grant_user(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION phx_acct_revoke_user(text) FROM PUBLIC;
