#!/usr/bin/env bash
# timeout: 200
# A submission sent again by hand with the key phx printed (doc/batchd.md,
# "Sending a submission again"): phx advises "submit it again with
# PHX_SUBMIT_KEY=K" when no answer came.  The first send had a random key
# and no PHX_SUBMIT_KEY in its environment; the one by hand has it.  The
# environment phx sends (the job's) must leave it out, or the body differs
# and batchd refuses it (409) instead of answering with the job; and the job
# would inherit the key, so that a phx submit inside it reuses it.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd

home=$(getent passwd phxu1 | cut -d: -f6)
printf '#!/bin/sh\n#SBATCH -t 1\necho "key=${PHX_SUBMIT_KEY:-none}"\n' >"$home/job.sh"
chown phxu1 "$home/job.sh"

# The first send: a random key (as if its answer was lost).
id=$(as_user phxu1 phx submit --parsable job.sh)
key=$(psql_q "SELECT submit_key FROM jobs WHERE id = $id")
note "job $id, key $key"
[[ $key =~ ^[0-9a-f]{32}$ ]] || fail "no random key stored: '$key'"
# Sent again by hand with that key: the same job, no other row.
again=$(as_user phxu1 PHX_SUBMIT_KEY=$key phx submit --parsable job.sh) ||
    fail "sent again with PHX_SUBMIT_KEY: refused"
assert_eq "$id" "$again" "the job of the key"
assert_eq 1 "$(psql_q "SELECT count(*) FROM jobs")"
wait_job "$id" COMPLETED 60

# A job submitted with PHX_SUBMIT_KEY does not inherit it.
id2=$(as_user phxu1 PHX_SUBMIT_KEY=by-hand-key-000000001 phx submit --parsable job.sh)
wait_job "$id2" COMPLETED 60
assert_eq "key=none" "$(cat "$home/phx-$id2.out")" "the job's environment"
note ok
