-- Accounts and their members: Slurm's associations (user, account), managed
-- with SQL instead of sacctmgr.  phx-batchd reads account_users when
-- batchd.enforce_accounts is set: a job must then be charged to one of its
-- owner's accounts (the default one when it names none), so that the
-- accounts of jobs, acct_jobs and usage_daily mean something.
-- doc/accounting.md documents the tables; their columns are a public
-- interface like the views'.
--
-- Who may do what:
--   the owner (migrations' runner) and phx_acct_admin: add, change and
--       remove accounts and members (Slurm's sacctmgr as an administrator)
--   phx_daemon: read (phx-batchd); it writes neither table
--   phx_accountant: read everything
--   phx_user: read its own memberships and the accounts it is a member of
-- phx_acct_admin is a new NOLOGIN group role, created here once (roles
-- belong to the cluster); grant it to the people who manage accounts:
--   CREATE ROLE dave LOGIN IN ROLE phx_acct_admin;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'phx_acct_admin') THEN
        BEGIN
            CREATE ROLE phx_acct_admin NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;       -- created meanwhile by a migration of another database
        END;
    END IF;
END
$$;

-- Names as Slurm keeps them: lower case (phx-batchd lowers a job's -A), 1 to
-- 64 letters, digits, '_', '-' or '.', not starting with '-' or '.'.
CREATE TABLE accounts (
    name         text PRIMARY KEY
        CONSTRAINT accounts_name CHECK (name ~ '^[a-z0-9_][a-z0-9_.-]{0,63}$'),
    description  text NOT NULL DEFAULT '',
    organization text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE accounts IS 'Accounts jobs are charged to (sacctmgr''s accounts; doc/accounting.md)';

-- A user (Unix name, as jobs.user_name) is a member of an account; at most
-- one of a user's memberships is its default.  The constraint is deferred
-- to the commit, so that one UPDATE can move a user's default:
--   UPDATE account_users SET is_default = (account = 'chem')
--   WHERE user_name = 'alice';
CREATE TABLE account_users (
    user_name  text NOT NULL
        CONSTRAINT account_users_user CHECK (user_name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$'),
    account    text NOT NULL REFERENCES accounts (name)
                   ON UPDATE CASCADE ON DELETE CASCADE,
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_name, account),
    CONSTRAINT account_users_one_default EXCLUDE USING btree (user_name WITH =)
        WHERE (is_default) DEFERRABLE INITIALLY DEFERRED
);

CREATE INDEX account_users_account ON account_users (account);

COMMENT ON TABLE account_users IS 'Members of accounts (sacctmgr''s associations): user_name may charge jobs to account; is_default: the account of its jobs that name none';

-- ---------------------------------------------------------------------------
-- Row-level security, as for jobs (004): members of phx_user see their own
-- rows, the daemons and accountants all, account administrators all and may
-- write.

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_users ENABLE ROW LEVEL SECURITY;

CREATE POLICY accounts_daemon ON accounts FOR SELECT TO phx_daemon USING (true);
CREATE POLICY accounts_accountant ON accounts FOR SELECT TO phx_accountant USING (true);
CREATE POLICY accounts_admin ON accounts TO phx_acct_admin USING (true) WITH CHECK (true);
CREATE POLICY accounts_own ON accounts FOR SELECT TO phx_user
    USING (EXISTS (SELECT 1 FROM account_users m
                   WHERE m.account = accounts.name AND m.user_name = current_user::text));

CREATE POLICY account_users_daemon ON account_users FOR SELECT TO phx_daemon
    USING (true);
CREATE POLICY account_users_accountant ON account_users FOR SELECT TO phx_accountant
    USING (true);
CREATE POLICY account_users_admin ON account_users TO phx_acct_admin
    USING (true) WITH CHECK (true);
CREATE POLICY account_users_own ON account_users FOR SELECT TO phx_user
    USING (user_name = current_user::text);

-- ---------------------------------------------------------------------------
-- Privileges.  004's default privileges gave phx_daemon every write on new
-- tables: it only reads these.

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON accounts, account_users FROM phx_daemon;
GRANT SELECT ON accounts, account_users TO phx_daemon, phx_accountant, phx_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, account_users TO phx_acct_admin;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %s TO phx_acct_admin',
                   quote_ident(current_schema()));
END
$$;
