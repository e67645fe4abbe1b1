-- Idempotent submissions (doc/batchd.md, "Sending a submission again"):
-- a client sends a key of its choosing with a submission (the
-- Idempotency-Key header) and may send the submission again after a
-- timeout or a cut connection, to the same phx-batchd or to another one
-- after a failover; batchd then answers with the job it stored the first
-- time instead of storing a second one.
--
-- submit_key is the client's key, on the job's row (an array: on the row of
-- its array job, the task whose id is the array job id; NULL on the other
-- tasks).  It is unique per submitting uid: another user's equal key is
-- another job.  submit_digest is the SHA-256 (hex) of the submission's body,
-- so that a key sent again with another body is refused (409) instead of
-- answered with a job that is not the one asked for.  Both are NULL for a
-- submission without a key.  A key is remembered as long as its job's row
-- is kept.

ALTER TABLE jobs ADD COLUMN submit_key text,
                 ADD COLUMN submit_digest text;

CREATE UNIQUE INDEX jobs_uid_submit_key ON jobs (uid, submit_key);

COMMENT ON COLUMN jobs.submit_key IS 'The Idempotency-Key of the submission (unique per uid), NULL: none';
COMMENT ON COLUMN jobs.submit_digest IS 'SHA-256 (hex) of the submission body sent with submit_key';

-- The accountant reads every column of jobs but spec and script (017):
-- these two as well (the digest tells nothing of the body it hashes that
-- the columns the accountant reads do not, short of guessing the body).
SELECT phx_accountant_grant_columns();
