-- Agents: one row per node that ever registered.  The master keeps the live
-- model in memory; this table is what survives a restart and what operators
-- and accountants query.
CREATE TABLE agents (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    address          text,
    state            text NOT NULL DEFAULT 'up'
                     CHECK (state IN ('up', 'unreachable', 'lost')),
    topology         jsonb NOT NULL,
    sockets          integer NOT NULL CHECK (sockets >= 0),
    numas            integer NOT NULL CHECK (numas >= 0),
    cores            integer NOT NULL CHECK (cores >= 0),
    pus              integer NOT NULL CHECK (pus >= 0),
    memory_bytes     bigint NOT NULL CHECK (memory_bytes >= 0),
    drained          boolean NOT NULL DEFAULT false,
    drain_reason     text,
    drained_by       integer,
    drained_at       timestamptz,
    first_registered timestamptz NOT NULL DEFAULT now(),
    registered_at    timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz NOT NULL DEFAULT now(),
    state_changed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE agents IS 'Nodes known to the master (phx nodes)';
COMMENT ON COLUMN agents.state IS 'up: connected; unreachable: connection lost, within the re-register grace; lost: missed its heartbeats';
COMMENT ON COLUMN agents.drained IS 'true: the node receives no new work (phx nodes drain)';
