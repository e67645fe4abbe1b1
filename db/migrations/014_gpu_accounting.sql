-- GPU accounting (doc/accounting.md, "GPUs"): the GPUs of a job's run, its
-- GPU time, sacct's AllocTRES, and GPU seconds per day in usage_daily.
--
-- A job's GPUs are those of its current (last) run's tasks: phx-batchd
-- now writes each task's GPU device ids into jobs.run_tasks ("gpus": [0,
-- 1]); acct_run_gpus counts them.  Rows written before this have none
-- (0 GPUs), as have jobs that asked for none.
--
-- acct_jobs gains, at its end (its other columns are unchanged):
--   alloc_gpus   GPUs allocated over all nodes (0: none; also while pending)
--   gpu_time     elapsed x alloc_gpus, interval; gpu_time_s, bigint seconds
--   alloc_tres   sacct's AllocTRES: "cpu=4,mem=8G,node=1,gres/gpu=2" (mem in
--                G when a whole number of GiB, else M; no gres/gpu part
--                without GPUs; NULL before the job started)
-- usage_daily gains gpu_seconds (elapsed x alloc_gpus of the runs charged,
-- split over the days like cpu_seconds) and gpu_hours (generated).  The
-- triggers charge them with the CPU seconds; a change of a finished job's
-- GPUs replaces its charge, as one of its CPUs does.  Usage already in the
-- table has no GPU seconds; phx_acct_usage_rebuild() recomputes them from
-- the jobs that remain.
--
-- Who may do what is unchanged (004): the new function is not PUBLIC's,
-- the trigger functions keep their pinned search path.

CREATE FUNCTION acct_run_gpus(p_tasks jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(sum(jsonb_array_length(t -> 'gpus')), 0)::integer
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_tasks) = 'array' THEN p_tasks
                                   ELSE '[]' END) t
    WHERE jsonb_typeof(t -> 'gpus') = 'array'
$$;

COMMENT ON COLUMN jobs.run_tasks IS 'The tasks of the current (last) run, one per node: [{id, agent_id, host, cpus, tasks, mem, ended, gpus}], gpus their GPU device ids';

ALTER TABLE usage_daily
    ADD COLUMN gpu_seconds bigint NOT NULL DEFAULT 0,
    ADD COLUMN gpu_hours double precision GENERATED ALWAYS AS (gpu_seconds / 3600.0) STORED;

COMMENT ON COLUMN usage_daily.gpu_seconds IS 'Allocated GPU seconds (elapsed x alloc_gpus) that fell on this day';
COMMENT ON COLUMN usage_daily.gpu_hours IS 'gpu_seconds / 3600';

-- acct_usage_add with the run's GPUs (p_gpus, 0 by default: the step
-- trigger's calls charge CPU time only).  The 8-argument one goes: a call
-- of 8 arguments would be ambiguous between the two.
DROP FUNCTION acct_usage_add(text, text, timestamptz, timestamptz, integer, integer,
                             double precision, boolean);

CREATE FUNCTION acct_usage_add(p_user text, p_account text, p_start timestamptz,
                               p_end timestamptz, p_sign integer, p_cpus integer,
                               p_total_cpu double precision, p_count boolean,
                               p_gpus integer DEFAULT 0)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s timestamptz := date_trunc('second', p_start);
    e timestamptz := date_trunc('second', p_end);
BEGIN
    IF (s AT TIME ZONE 'UTC')::date = (e AT TIME ZONE 'UTC')::date THEN
        INSERT INTO usage_daily AS u (day, user_name, account, jobs, cpu_seconds,
                                      total_cpu_s, gpu_seconds)
        VALUES ((e AT TIME ZONE 'UTC')::date, p_user, coalesce(p_account, ''),
                CASE WHEN p_count THEN p_sign ELSE 0 END,
                p_sign * extract(epoch FROM e - s)::bigint * p_cpus,
                p_sign * p_total_cpu,
                p_sign * extract(epoch FROM e - s)::bigint * p_gpus)
        ON CONFLICT (day, user_name, account) DO UPDATE
            SET jobs = u.jobs + excluded.jobs,
                cpu_seconds = u.cpu_seconds + excluded.cpu_seconds,
                total_cpu_s = u.total_cpu_s + excluded.total_cpu_s,
                gpu_seconds = u.gpu_seconds + excluded.gpu_seconds;
        RETURN;
    END IF;
    INSERT INTO usage_daily AS u (day, user_name, account, jobs, cpu_seconds, total_cpu_s,
                                  gpu_seconds)
    SELECT d.day, p_user, coalesce(p_account, ''),
           CASE WHEN p_count AND d.last THEN p_sign ELSE 0 END,
           p_sign * d.seconds * p_cpus,
           p_sign * p_total_cpu * d.share,
           p_sign * d.seconds * p_gpus
    FROM acct_split_days(p_start, p_end) d
    ON CONFLICT (day, user_name, account) DO UPDATE
        SET jobs = u.jobs + excluded.jobs,
            cpu_seconds = u.cpu_seconds + excluded.cpu_seconds,
            total_cpu_s = u.total_cpu_s + excluded.total_cpu_s,
            gpu_seconds = u.gpu_seconds + excluded.gpu_seconds;
END
$$;

-- 010's, charging the run's GPUs too.
CREATE OR REPLACE FUNCTION acct_usage_on_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND acct_charged(OLD.state, OLD.start_time) THEN
        IF NOT acct_charged(NEW.state, NEW.start_time) THEN
            RETURN NULL;
        END IF;
        PERFORM acct_usage_add(OLD.user_name, OLD.account, OLD.start_time, OLD.end_time,
                               -1, coalesce(OLD.alloc_cpus, 0),
                               acct_run_cpu(OLD.id, OLD.start_time), true,
                               acct_run_gpus(OLD.run_tasks));
    END IF;
    IF acct_charged(NEW.state, NEW.start_time) THEN
        PERFORM acct_usage_add(NEW.user_name, NEW.account, NEW.start_time, NEW.end_time,
                               1, coalesce(NEW.alloc_cpus, 0),
                               acct_run_cpu(NEW.id, NEW.start_time), true,
                               acct_run_gpus(NEW.run_tasks));
    END IF;
    RETURN NULL;
END
$$;

-- A finished job's GPUs written after its end (or corrected) replace its
-- charge too.
DROP TRIGGER jobs_usage_update ON jobs;
CREATE TRIGGER jobs_usage_update
    AFTER UPDATE OF state, start_time, end_time, alloc_cpus, user_name, account, run_tasks
    ON jobs
    FOR EACH ROW
    WHEN ((acct_charged(OLD.state, OLD.start_time) OR acct_charged(NEW.state, NEW.start_time))
          AND (OLD.state, OLD.start_time, OLD.end_time, OLD.alloc_cpus, OLD.user_name,
               OLD.account, acct_run_gpus(OLD.run_tasks)) IS DISTINCT FROM
              (NEW.state, NEW.start_time, NEW.end_time, NEW.alloc_cpus, NEW.user_name,
               NEW.account, acct_run_gpus(NEW.run_tasks)))
    EXECUTE FUNCTION acct_usage_on_job();

CREATE OR REPLACE FUNCTION phx_acct_usage_rebuild(since date DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM usage_daily WHERE since IS NULL OR day >= since;
    INSERT INTO usage_daily (day, user_name, account, jobs, cpu_seconds, total_cpu_s,
                             gpu_seconds)
    SELECT d.day, j.user_name, coalesce(j.account, ''),
           count(*) FILTER (WHERE d.last),
           sum(d.seconds * coalesce(j.alloc_cpus, 0)),
           sum(acct_run_cpu(j.id, j.start_time) * d.share),
           sum(d.seconds * acct_run_gpus(j.run_tasks))
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

-- acct_jobs (004's), with the GPU columns at its end.
CREATE OR REPLACE VIEW acct_jobs WITH (security_invoker = true) AS
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
    j.submit_host,
    -- 014: appended (a view's columns may only be added at its end)
    g.alloc_gpus,
    make_interval(secs => t.elapsed_s * g.alloc_gpus) AS gpu_time,
    t.elapsed_s * g.alloc_gpus AS gpu_time_s,
    CASE WHEN j.alloc_cpus IS NOT NULL THEN
        'cpu=' || j.alloc_cpus
        || coalesce(',mem=' || CASE WHEN j.alloc_mem > 0 AND j.alloc_mem % 1024 = 0
                                    THEN (j.alloc_mem / 1024) || 'G'
                                    ELSE j.alloc_mem || 'M' END, '')
        || coalesce(',node=' || j.alloc_nodes, '')
        || CASE WHEN g.alloc_gpus > 0 THEN ',gres/gpu=' || g.alloc_gpus ELSE '' END
    END AS alloc_tres
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
CROSS JOIN LATERAL (SELECT acct_run_gpus(j.run_tasks) AS alloc_gpus) g
LEFT JOIN LATERAL (
    SELECT sum(s.user_cpu_s) AS user_cpu_s,
           sum(s.system_cpu_s) AS system_cpu_s,
           max(s.max_rss_bytes) AS max_rss_bytes,
           count(*) AS nsteps
    FROM job_steps s WHERE s.job_id = j.id
) st ON true;

COMMENT ON COLUMN acct_jobs.alloc_gpus IS 'GPUs allocated over all nodes (0: none)';
COMMENT ON COLUMN acct_jobs.gpu_time_s IS 'elapsed_s x alloc_gpus';
COMMENT ON COLUMN acct_jobs.alloc_tres IS 'sacct AllocTRES: "cpu=N,mem=M,node=K[,gres/gpu=G]", NULL before the job started';

REVOKE ALL ON FUNCTION acct_usage_add(text, text, timestamptz, timestamptz, integer,
                                      integer, double precision, boolean, integer)
    FROM PUBLIC;
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format('ALTER FUNCTION acct_usage_on_job() SET search_path = %s, pg_temp', s);
END
$$;
