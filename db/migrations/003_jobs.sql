-- The batch queue of phx-batchd: jobs, their steps and every state change.
-- A job row is written (PENDING) in the transaction that acknowledges the
-- submission.  Accounting (acct_jobs, acct_steps, usage_daily) are views over
-- these tables; see doc/jobs.md for states and reasons.  Times are
-- timestamptz, durations integer seconds, memory MiB unless the name says
-- bytes.

CREATE DOMAIN job_state AS text
    CHECK (VALUE IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED',
                     'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY'));

CREATE TABLE jobs (
    id              bigserial PRIMARY KEY,
    -- Array tasks: one row each; array_job_id is the id of the array's first
    -- task (also on that row), as Slurm's %A.  Both NULL for other jobs.
    array_job_id    bigint,
    array_task_id   integer CHECK (array_task_id >= 0),
    array_spec      text,               -- canonical "1-100%10", on every task
    name            text NOT NULL,
    uid             integer NOT NULL CHECK (uid >= 0),
    gid             integer NOT NULL CHECK (gid >= 0),
    user_name       text NOT NULL,
    group_name      text,
    account         text,
    partition       text NOT NULL,
    qos             text,
    state           job_state NOT NULL DEFAULT 'PENDING',
    reason          text NOT NULL DEFAULT 'None',  -- Priority, Resources, Dependency...
    priority        bigint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4294967295),
    nice            integer NOT NULL DEFAULT 0,
    spec            jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
    script          text NOT NULL,
    work_dir        text NOT NULL,
    submit_dir      text NOT NULL,
    submit_line     text NOT NULL,
    submit_host     text,
    stdout_path     text,               -- expanded at start
    stderr_path     text,               -- NULL: with stdout
    dependency      text,               -- canonical, NULL when none
    -- the request, copied out of spec for queries
    time_limit      integer CHECK (time_limit > 0),  -- seconds; NULL = UNLIMITED
    nodes_min       integer NOT NULL CHECK (nodes_min >= 1),
    nodes_max       integer NOT NULL,
    ntasks          integer NOT NULL,
    ntasks_per_node integer CHECK (ntasks_per_node >= 1),
    cpus_per_task   integer NOT NULL DEFAULT 1 CHECK (cpus_per_task >= 1),
    mem_per_node    bigint CHECK (mem_per_node >= 0),  -- MiB; 0 = all of each node's
    mem_per_cpu     bigint CHECK (mem_per_cpu > 0),    -- MiB
    exclusive       boolean NOT NULL DEFAULT false,
    requeue         boolean NOT NULL DEFAULT true,
    -- the life of the job
    submit_time     timestamptz NOT NULL DEFAULT now(),
    begin_time      timestamptz,        -- --begin
    eligible_time   timestamptz,        -- dependencies and begin time satisfied
    start_time      timestamptz,
    end_time        timestamptz,
    exit_code       integer CHECK (exit_code BETWEEN 0 AND 255),
    exit_signal     integer CHECK (exit_signal BETWEEN 0 AND 127),
    -- the allocation (of the last run when requeued)
    gang_id         bigint,             -- the master's gang
    node_list       text,               -- compressed, n[01-04]
    alloc_nodes     integer CHECK (alloc_nodes >= 1),
    alloc_cpus      integer CHECK (alloc_cpus >= 1),
    alloc_mem       bigint CHECK (alloc_mem >= 0),   -- MiB over all nodes
    tasks_per_node  text,               -- 2(x3),1
    requeue_count   integer NOT NULL DEFAULT 0 CHECK (requeue_count >= 0),
    cancel_uid      integer,
    cancel_time     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT jobs_array_ids CHECK ((array_job_id IS NULL) = (array_task_id IS NULL)),
    CONSTRAINT jobs_nodes CHECK (nodes_max >= nodes_min),
    CONSTRAINT jobs_ntasks CHECK (ntasks >= nodes_min),
    CONSTRAINT jobs_one_mem CHECK (mem_per_node IS NULL OR mem_per_cpu IS NULL),
    CONSTRAINT jobs_started CHECK (
        state IN ('PENDING', 'CANCELLED') OR start_time IS NOT NULL),
    CONSTRAINT jobs_ended CHECK (
        state IN ('PENDING', 'RUNNING') OR end_time IS NOT NULL),
    CONSTRAINT jobs_order CHECK (end_time IS NULL OR start_time IS NULL OR end_time >= start_time),
    CONSTRAINT jobs_allocated CHECK (
        state <> 'RUNNING' OR (node_list IS NOT NULL AND alloc_cpus IS NOT NULL
                               AND alloc_nodes IS NOT NULL))
);

-- The queue: pending jobs in priority order (the daemon's scan on start).
CREATE INDEX jobs_queue ON jobs (priority DESC, submit_time, id) WHERE state = 'PENDING';
CREATE INDEX jobs_active ON jobs (state) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX jobs_user ON jobs (uid, submit_time);
CREATE INDEX jobs_account ON jobs (account, end_time);
CREATE INDEX jobs_end ON jobs (end_time);
CREATE UNIQUE INDEX jobs_array ON jobs (array_job_id, array_task_id)
    WHERE array_job_id IS NOT NULL;
-- singleton: active jobs by owner and name
CREATE INDEX jobs_singleton ON jobs (uid, name) WHERE state IN ('PENDING', 'RUNNING');

COMMENT ON TABLE jobs IS 'Batch jobs of phx-batchd, one row per job or array task';
COMMENT ON COLUMN jobs.spec IS 'The request as phx_jobspec_t JSON (doc/jobs.md)';
COMMENT ON COLUMN jobs.time_limit IS 'Seconds; NULL means UNLIMITED';
COMMENT ON COLUMN jobs.mem_per_node IS 'MiB per node (--mem); 0 = all of each node''s memory';
COMMENT ON COLUMN jobs.reason IS 'Why PENDING, or why it ended (DependencyNeverSatisfied, ...)';

-- Steps: "batch" (the script), "extern", then "0", "1"... (phx run / srun).
CREATE TABLE job_steps (
    job_id        bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_id       text NOT NULL CHECK (step_id IN ('batch', 'extern') OR step_id ~ '^[0-9]+$'),
    name          text NOT NULL DEFAULT '',
    state         job_state NOT NULL DEFAULT 'RUNNING',
    start_time    timestamptz NOT NULL DEFAULT now(),
    end_time      timestamptz,
    ntasks        integer NOT NULL CHECK (ntasks >= 1),
    nnodes        integer NOT NULL CHECK (nnodes >= 1),
    node_list     text NOT NULL,
    alloc_cpus    integer NOT NULL CHECK (alloc_cpus >= 1),
    req_mem       bigint,               -- MiB per node, when the step asked
    exit_code     integer CHECK (exit_code BETWEEN 0 AND 255),
    exit_signal   integer CHECK (exit_signal BETWEEN 0 AND 127),
    user_cpu_s    double precision CHECK (user_cpu_s >= 0),
    system_cpu_s  double precision CHECK (system_cpu_s >= 0),
    max_rss_bytes bigint CHECK (max_rss_bytes >= 0),
    PRIMARY KEY (job_id, step_id),
    CONSTRAINT job_steps_ended CHECK (state IN ('PENDING', 'RUNNING') OR end_time IS NOT NULL),
    CONSTRAINT job_steps_order CHECK (end_time IS NULL OR end_time >= start_time)
);

CREATE INDEX job_steps_end ON job_steps (end_time);

-- Every state change of a job, with its time (written by the trigger below,
-- so no code path can forget one).
CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    time        timestamptz NOT NULL DEFAULT now(),
    from_state  job_state,              -- NULL at submission
    to_state    job_state NOT NULL,
    reason      text
);

CREATE INDEX job_events_job ON job_events (job_id, time);

CREATE FUNCTION jobs_record_transition() RETURNS trigger
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
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_transition AFTER INSERT OR UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_record_transition();
