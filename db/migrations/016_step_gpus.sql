-- GPUs of job steps (doc/accounting.md, "GPUs"): job_steps.alloc_gpus,
-- the GPUs a numbered step's ranks were given over all its nodes, written
-- by phx-master with the step's other figures (daemons/master/step_record.c):
-- under --gpus-per-task=K (closest binding) K per rank, at most the job's
-- GPUs of the node; otherwise all of the job's GPUs on the step's nodes
-- (every rank sees them).  Rows written before this, and steps of jobs
-- without GPUs, have 0.
--
-- acct_steps gains, at its end (its other columns are unchanged):
--   alloc_gpus   the step's GPUs; for the batch step, those of the job's
--                task on the batch node (jobs.run_tasks, 014)
--   gpu_time     elapsed x alloc_gpus, interval; gpu_time_s, bigint seconds
--   alloc_tres   sacct's AllocTRES of a step line: "cpu=2,node=1,gres/gpu=1"
--                (mem=... when the step asked memory: req_mem x nodes)
--
-- usage_daily is unchanged: a job's GPU seconds are its allocation's (014),
-- its steps' are part of them.  Who may do what is unchanged (004).

ALTER TABLE job_steps
    ADD COLUMN alloc_gpus integer NOT NULL DEFAULT 0 CHECK (alloc_gpus >= 0);

COMMENT ON COLUMN job_steps.alloc_gpus IS 'Numbered steps: the GPUs its ranks were given over all its nodes (0: none); batch rows keep 0 (acct_steps takes the batch node''s)';

-- The GPUs of the task on host among a run's tasks (jobs.run_tasks), the
-- first task's when none is on host.
CREATE FUNCTION acct_batch_gpus(p_tasks jsonb, p_host text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((
        SELECT CASE WHEN jsonb_typeof(e.t -> 'gpus') = 'array'
                    THEN jsonb_array_length(e.t -> 'gpus') ELSE 0 END
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_tasks) = 'array' THEN p_tasks
                                       ELSE '[]' END) WITH ORDINALITY e(t, i)
        ORDER BY (e.t ->> 'host') IS NOT DISTINCT FROM p_host DESC, e.i
        LIMIT 1), 0)
$$;

-- acct_steps (004's), with the GPU columns at its end.
CREATE OR REPLACE VIEW acct_steps WITH (security_invoker = true) AS
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
                   ELSE s.step_id::bigint END AS step_order,
    -- 016: appended (a view's columns may only be added at its end)
    g.alloc_gpus,
    make_interval(secs => t.elapsed_s * g.alloc_gpus) AS gpu_time,
    t.elapsed_s * g.alloc_gpus AS gpu_time_s,
    'cpu=' || s.alloc_cpus
    || coalesce(',mem=' || CASE WHEN s.req_mem * s.nnodes % 1024 = 0
                                THEN (s.req_mem * s.nnodes / 1024) || 'G'
                                ELSE (s.req_mem * s.nnodes) || 'M' END, '')
    || ',node=' || s.nnodes
    || CASE WHEN g.alloc_gpus > 0 THEN ',gres/gpu=' || g.alloc_gpus ELSE '' END
        AS alloc_tres
FROM job_steps s
JOIN jobs j ON j.id = s.job_id
CROSS JOIN LATERAL (
    SELECT greatest(0, extract(epoch FROM
               date_trunc('second', coalesce(s.end_time, now()))
               - date_trunc('second', s.start_time)))::bigint AS elapsed_s
) t
CROSS JOIN LATERAL (
    SELECT CASE WHEN s.step_id = 'batch' THEN acct_batch_gpus(j.run_tasks, s.node_list)
                ELSE s.alloc_gpus END AS alloc_gpus
) g;

COMMENT ON COLUMN acct_steps.alloc_gpus IS 'GPUs its ranks were given over all its nodes (batch: the batch node''s); 0: none';
COMMENT ON COLUMN acct_steps.gpu_time_s IS 'elapsed_s x alloc_gpus';
COMMENT ON COLUMN acct_steps.alloc_tres IS 'sacct AllocTRES of a step: "cpu=N[,mem=M],node=K[,gres/gpu=G]"';
