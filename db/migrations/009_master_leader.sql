-- Master leader election (doc/admin.md, "High availability").  Every
-- phx-master takes a session advisory lock on a connection it holds for its
-- life; the one that gets it is the leader, the others are standbys that
-- redirect agents and frameworks to it.  The leader bumps the epoch of the
-- one row of master_leader and records its addresses there; every write
-- transaction it makes then starts with SELECT phx_master_fence(epoch), so
-- that a master that lost the lead (a newer epoch) cannot write any more.
--
-- The fence reads the row FOR SHARE: a new leader's UPDATE of the epoch
-- waits for every transaction of the old leader still in flight, and the
-- old leader's transactions that start afterwards see the new epoch.
--
-- Who may do what: phx_daemon (the masters) reads and updates the row
-- (default privileges of 004); phx_accountant reads it; nobody inserts or
-- deletes it (there is exactly one row).

CREATE TABLE master_leader (
    id            smallint PRIMARY KEY DEFAULT 1
        CONSTRAINT master_leader_one CHECK (id = 1),
    epoch         bigint NOT NULL DEFAULT 0
        CONSTRAINT master_leader_epoch CHECK (epoch >= 0),
    agent_address text,          -- host:port of its agent listener
    http_address  text,          -- host:port of its HTTP API
    host          text,          -- the host name it runs on (information)
    pid           integer,       -- its process id there (information)
    elected_at    timestamptz
);

COMMENT ON TABLE master_leader IS 'The leading phx-master: its epoch and addresses (one row; doc/admin.md)';
COMMENT ON COLUMN master_leader.epoch IS 'Bumped by every newly elected leader; writes of older epochs are refused';

INSERT INTO master_leader (id, epoch) VALUES (1, 0);

REVOKE INSERT, DELETE, TRUNCATE ON master_leader FROM phx_daemon;

-- Raises SQLSTATE PXL01 unless leader_epoch is the current epoch; returns
-- it otherwise.  Holds the row FOR SHARE until the transaction ends.
CREATE FUNCTION phx_master_fence(leader_epoch bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current_epoch bigint;
BEGIN
    SELECT epoch INTO current_epoch FROM master_leader WHERE id = 1 FOR SHARE;
    IF current_epoch IS DISTINCT FROM leader_epoch THEN
        RAISE EXCEPTION 'master epoch % is not the current one (%): this master is no longer the leader',
            leader_epoch, current_epoch
            USING ERRCODE = 'PXL01';
    END IF;
    RETURN current_epoch;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION phx_master_fence(bigint) SET search_path = %s, pg_temp',
                   quote_ident(current_schema()));
END
$$;
