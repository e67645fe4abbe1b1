-- phx-batchd leader election (doc/admin.md, "High availability"), the
-- masters' (009) for the batch framework: every phx-batchd takes a session
-- advisory lock of its own key on a connection it holds for its life; the
-- one that gets it leads, the others stand by and answer users with a
-- refusal naming the leader's address.  The leader bumps the epoch of the
-- one row of batchd_leader and records its address there; every write
-- transaction it makes then starts with SELECT phx_batchd_fence(epoch), so
-- that a batchd that lost the lead (a newer epoch) cannot write any more.
--
-- The fence reads the row FOR SHARE: a new leader's UPDATE of the epoch
-- waits for every transaction of the old leader still in flight, and the
-- old leader's transactions that start afterwards see the new epoch.
--
-- Who may do what: phx_daemon (the daemons) reads and updates the row
-- (default privileges of 004); phx_accountant reads it; nobody inserts or
-- deletes it (there is exactly one row).

CREATE TABLE batchd_leader (
    id            smallint PRIMARY KEY DEFAULT 1
        CONSTRAINT batchd_leader_one CHECK (id = 1),
    epoch         bigint NOT NULL DEFAULT 0
        CONSTRAINT batchd_leader_epoch CHECK (epoch >= 0),
    http_address  text,          -- host:port of its user API
    host          text,          -- the host name it runs on (information)
    pid           integer,       -- its process id there (information)
    elected_at    timestamptz
);

COMMENT ON TABLE batchd_leader IS 'The leading phx-batchd: its epoch and address (one row; doc/admin.md)';
COMMENT ON COLUMN batchd_leader.epoch IS 'Bumped by every newly elected leader; writes of older epochs are refused';

INSERT INTO batchd_leader (id, epoch) VALUES (1, 0);

REVOKE INSERT, DELETE, TRUNCATE ON batchd_leader FROM phx_daemon;

-- Raises SQLSTATE PXL02 unless leader_epoch is the current epoch; returns
-- it otherwise.  Holds the row FOR SHARE until the transaction ends.
CREATE FUNCTION phx_batchd_fence(leader_epoch bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current_epoch bigint;
BEGIN
    SELECT epoch INTO current_epoch FROM batchd_leader WHERE id = 1 FOR SHARE;
    IF current_epoch IS DISTINCT FROM leader_epoch THEN
        RAISE EXCEPTION 'batchd epoch % is not the current one (%): this batchd is no longer the leader',
            leader_epoch, current_epoch
            USING ERRCODE = 'PXL02';
    END IF;
    RETURN current_epoch;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION phx_batchd_fence(bigint) SET search_path = %s, pg_temp',
                   quote_ident(current_schema()));
END
$$;
