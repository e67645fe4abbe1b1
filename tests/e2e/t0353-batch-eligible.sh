#!/usr/bin/env bash
# timeout: 180
# What batchd may start, and whether it takes offers meanwhile.
# 1. A queue of held jobs only: batchd SUPPRESSes offers (its offer passes,
#    /health's offer_passes, stop); a release REVIVEs them and the job
#    runs; the other stays held.
# 2. Accounts enforced (accounts_refresh 1 s): a user removed from an
#    account with SQL keeps its running job running, but its pending jobs
#    (one that named the account, one given it as the user's default) are
#    not started even on a free core: PENDING, reason InvalidAccount (phx
#    queue, phx show, jobs.reason; not in job_events); a held one shows its
#    hold and gets InvalidAccount once released; offers are suppressed
#    while no pending job is eligible.  The membership restored: they run.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_BATCHD_EXTRA='enforce_accounts = true;
                  accounts_refresh = 1;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
psql_q "INSERT INTO accounts (name) VALUES ('chem'), ('bio');
        INSERT INTO account_users (user_name, account, is_default) VALUES
            ('phxu1', 'chem', true), ('phxu2', 'bio', true)"
start_batchd
wait_for 10 grep -q "accounts enforced: 2 memberships" "$PHX_TEST_DIR/batchd.log"
for u in phxu1 phxu2; do
    home=$(getent passwd $u | cut -d: -f6)
    printf '#!/bin/sh\n#SBATCH -t 5\necho "ran $PHX_JOB_ID on $PHX_JOB_ACCOUNT"\n' >"$home/j.sh"
    printf '#!/bin/sh\nsleep 300\n' >"$home/long.sh"
    chown $u "$home/j.sh" "$home/long.sh"
done
home1=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
reason() { job_field "$1" reason; }
reason_is() { [[ $(reason "$1") == "$2" ]]; }
passes() {
    curl -sf "http://$PHX_BATCHD/health" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["offer_passes"])'
}
# suppressed DESC: no OFFERS reach batchd for 4 s (they came every second
# or so while it declined them: batchd.refuse_seconds is 1 s)
suppressed() {
    sleep 2 # what was in flight
    local before after
    before=$(passes)
    sleep 4
    after=$(passes)
    assert_eq "$before" "$after" "offers suppressed: $1"
}

# 1. Held jobs only: suppressed; a release revives, the job runs.
h1=$(as phx submit --parsable -H j.sh)
h2=$(as phx submit --parsable -H j.sh)
assert_eq "PENDING JobHeldUser" "$(job_field "$h1" state) $(reason "$h1")"
suppressed "two held jobs"
as phx release "$h1"
wait_job "$h1" COMPLETED 20
assert_eq "ran $h1 on chem" "$(cat "$home1/phx-$h1.out")"
assert_eq "PENDING JobHeldUser" "$(job_field "$h2" state) $(reason "$h2")"
suppressed "one held job left"
phx cancel "$h2"
wait_job "$h2" CANCELLED 20

# 2. InvalidAccount.  phxu1 runs one job, phxu2 holds the other core;
# phxu1's next jobs wait behind: one with -A chem, one with its default
# account (chem), one held.
r=$(as phx submit --parsable -A chem long.sh)
wait_job "$r" RUNNING 20
l=$(as_user phxu2 phx submit --parsable long.sh)
wait_job "$l" RUNNING 20
p=$(as phx submit --parsable -A chem j.sh)
d=$(as phx submit --parsable j.sh)
h=$(as phx submit --parsable -H j.sh)
assert_eq chem "$(job_field "$d" account)"
psql_q "DELETE FROM account_users WHERE user_name = 'phxu1'"
wait_for 10 grep -q "accounts enforced: 1 memberships" "$PHX_TEST_DIR/batchd.log"
wait_for 10 reason_is "$p" InvalidAccount
wait_for 10 reason_is "$d" InvalidAccount
assert_eq "PENDING JobHeldUser" "$(job_field "$h" state) $(reason "$h")"
assert_contains "$(as phx queue)" "(InvalidAccount)"
assert_contains "$(as phx show "$p")" "JobState=PENDING Reason=InvalidAccount"
assert_eq InvalidAccount "$(psql_q "SELECT reason FROM jobs WHERE id = $d")"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" \
    "job $p: user phxu1 is no longer a member of account chem"
# a core frees: still not started; phxu1's running job runs on
phx cancel "$l"
wait_job "$l" CANCELLED 20
sleep 3
assert_eq "PENDING InvalidAccount PENDING InvalidAccount RUNNING" \
    "$(job_field "$p" state) $(reason "$p") $(job_field "$d" state) $(reason "$d") $(job_field "$r" state)"
# released: InvalidAccount
as phx release "$h"
wait_for 10 reason_is "$h" InvalidAccount
suppressed "every pending job InvalidAccount"
assert_eq "$h" "$(psql_q "SELECT string_agg(job_id::text, ' ') FROM job_events WHERE reason = 'InvalidAccount'")" \
    "the trigger records holds only: the release of $h, InvalidAccount from then"

# The membership back: they run, charged to chem.
psql_q "INSERT INTO account_users (user_name, account, is_default) VALUES ('phxu1', 'chem', true)"
for id in $p $d $h; do wait_job "$id" COMPLETED 30; done
for id in $p $d $h; do assert_eq "ran $id on chem" "$(cat "$home1/phx-$id.out")"; done
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" "job $p: user phxu1 may use account chem again"
assert_eq RUNNING "$(job_field "$r" state)"
phx cancel "$r"
wait_job "$r" CANCELLED 20
note ok
