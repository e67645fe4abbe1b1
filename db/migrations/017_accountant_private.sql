-- What the accountant does not read (004 granted phx_accountant SELECT on
-- every table): what users keep private, as Slurm keeps a job's script and
-- environment from everyone but its owner and the operators.
--   jobs.spec       the request, with the submitter's whole environment
--                   (tokens, passwords exported in a login shell...)
--   jobs.script     the batch script
--   tasks.command   a task's command line and environment
-- Every other column of jobs and tasks stays readable, and every row (the
-- row policies of 004 are unchanged).  Users still read their own jobs'
-- spec and script; the daemons and the tables' owner read everything.
--
-- Column privileges do not extend to columns added later: a migration that
-- adds a column to jobs or tasks after this one grants it to phx_accountant
-- itself (SELECT phx_accountant_grant_columns(), below), and test_acct
-- checks that the accountant reads every column but these three.

CREATE FUNCTION phx_accountant_grant_columns() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    cols text;
BEGIN
    FOREACH t IN ARRAY ARRAY['jobs', 'tasks'] LOOP
        EXECUTE format('REVOKE SELECT ON %I FROM phx_accountant', t);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
          INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = to_regclass(t) AND a.attnum > 0 AND NOT a.attisdropped
           AND (t, a.attname::text) NOT IN (('jobs', 'spec'), ('jobs', 'script'),
                                            ('tasks', 'command'));
        EXECUTE format('GRANT SELECT (%s) ON %I TO phx_accountant', cols, t);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION phx_accountant_grant_columns() FROM PUBLIC;

SELECT phx_accountant_grant_columns();
