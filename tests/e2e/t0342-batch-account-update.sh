#!/usr/bin/env bash
# timeout: 90
# A job whose user left its account (batchd.enforce_accounts, membership
# read at a reload; the periodic read is an hour away here): released from
# a hold it says InvalidAccount at once; `phx update ID Account=OTHER` to an
# account its user is in lets it run at once, without waiting for the next
# read of the members.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='enforce_accounts = true;
                  accounts_refresh = 3600;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
psql_q "INSERT INTO accounts (name) VALUES ('chem'), ('bio');
        INSERT INTO account_users (user_name, account, is_default) VALUES
            ('phxu1', 'chem', true), ('phxu1', 'bio', false)"
start_batchd
wait_for 10 grep -q "accounts enforced: 2 memberships" "$PHX_TEST_DIR/batchd.log"
home=$(getent passwd phxu1 | cut -d: -f6)
printf '#!/bin/sh\n#SBATCH -t 5 -o acct-%%j.out\necho "ran on $PHX_JOB_ACCOUNT"\n' >"$home/j.sh"
chown phxu1 "$home/j.sh"
as() { as_user phxu1 "$@"; }

p=$(as phx submit --parsable -H -A chem j.sh)
rm -f "$home/acct-$p.out"
psql_q "DELETE FROM account_users WHERE account = 'chem'"
kill -HUP "$(daemon_pid batchd)"
wait_for 10 grep -q "accounts enforced: 1 memberships" "$PHX_TEST_DIR/batchd.log"
assert_eq "PENDING JobHeldUser" "$(job_field "$p" state) $(job_field "$p" reason)"
as phx release "$p"
assert_eq InvalidAccount "$(job_field "$p" reason)" "released: its reason at once"
assert_eq "JobHeldUser InvalidAccount" "$(psql_q "SELECT string_agg(reason, ' ' ORDER BY id)
    FROM job_events WHERE job_id = $p AND to_state = 'PENDING'")" "job_events: held, released"
sleep 2
assert_eq "PENDING InvalidAccount" "$(job_field "$p" state) $(job_field "$p" reason)"
expect_fail as phx update "$p" Account=chem
assert_contains "$PHX_OUT" "chem"
as phx update "$p" Account=bio
wait_job "$p" COMPLETED 15
assert_eq "ran on bio" "$(cat "$home/acct-$p.out")"
