-- Frameworks, gangs and tasks of the master (the scheduler API).  A gang is
-- one ACCEPT: its tasks are written in the same transaction, before any
-- launch leaves the master.
CREATE TABLE frameworks (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    user_name        text NOT NULL,
    uid              integer,            -- munge-authenticated uid, NULL if unauthenticated
    roles            text[] NOT NULL DEFAULT '{}',
    weight           double precision NOT NULL DEFAULT 1 CHECK (weight > 0),
    failover_timeout double precision NOT NULL DEFAULT 0 CHECK (failover_timeout >= 0),
    state            text NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'disconnected', 'removed')),
    registered_at    timestamptz NOT NULL DEFAULT now(),
    disconnected_at  timestamptz,
    removed_at       timestamptz
);

CREATE TABLE gangs (
    id           bigserial PRIMARY KEY,
    framework_id text NOT NULL REFERENCES frameworks (id),
    ntasks       integer NOT NULL CHECK (ntasks > 0),
    nagents      integer NOT NULL CHECK (nagents > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);

CREATE TABLE tasks (
    framework_id text NOT NULL REFERENCES frameworks (id),
    task_id      text NOT NULL,
    gang_id      bigint NOT NULL REFERENCES gangs (id),
    agent_id     bigint NOT NULL REFERENCES agents (id),
    name         text NOT NULL DEFAULT '',
    user_name    text NOT NULL,
    uid          integer NOT NULL,
    cores        text NOT NULL,          -- logical core ids, list format
    cpus         integer NOT NULL CHECK (cpus > 0),
    memory_bytes bigint NOT NULL CHECK (memory_bytes >= 0),
    command      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'TASK_STAGING'
                 CHECK (state IN ('TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING',
                                  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED',
                                  'TASK_LOST', 'TASK_ERROR', 'TASK_DROPPED')),
    reason       text,
    message      text,
    exit_code    integer,
    exit_signal  integer,
    user_cpu_s   double precision,
    system_cpu_s double precision,
    max_rss_bytes bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    ended_at     timestamptz,
    PRIMARY KEY (framework_id, task_id)
);

CREATE INDEX tasks_live ON tasks (agent_id) WHERE ended_at IS NULL;
CREATE INDEX tasks_gang ON tasks (gang_id);
