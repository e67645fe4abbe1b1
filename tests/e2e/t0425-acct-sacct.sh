#!/usr/bin/env bash
# timeout: 120
# The sacct wrapper (scripts/compat/sacct) over real jobs: -P -n, -p, the
# columns of SACCT_FORMAT, -o, -b, -l, -X, -s FAILED, --name, grouped short
# options, repeated list options adding up, whose jobs by default (the
# caller's; -a, -u and -j otherwise; root all), "--", options refused by
# name or for a value, and sacct run by a batch job from the PATH
# phx-batchd gives it.  Users reach PostgreSQL through client.dsn as their
# own roles; phxsacct2's role is an accountant's (reads all rows).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxsacct1
test_user phxsacct2
phx_setup
chmod a+x "$PHX_TEST_DIR"
chmod 0711 "$PHX_PG_DIR" # users reach the socket (the data dir stays 0700)
sed -i "/^client: {/a\\    dsn = \"host=$PHX_PG_DIR port=5432 dbname=phalanx\";" "$PHX_CONFIG"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd
psql_q "SELECT phx_acct_grant_user('phxsacct1')" >/dev/null
psql_q "CREATE ROLE phxsacct2 LOGIN IN ROLE phx_accountant" >/dev/null

as() { as_user "$@"; }
sacct=$PHX_SRC/scripts/compat/sacct
home1=$(getent passwd phxsacct1 | cut -d: -f6)
home2=$(getent passwd phxsacct2 | cut -d: -f6)
printf '#!/bin/sh\n#SBATCH -J fail\nexit 3\n' >"$home1/fail.sh"
printf '#!/bin/sh\n#SBATCH -J other\ntrue\n' >"$home2/other.sh"
# sacct inside a job, by name from the job's PATH, with no -j (the user's
# jobs since midnight) and with -j (this job, running).
cat >"$home1/inside.sh" <<'S'
#!/bin/sh
#SBATCH -J inside
echo "sacct is $(command -v sacct)"
sacct -X -P -n --format=JobID,JobName,State
sacct -j "$PHX_JOB_ID" -X --format=JobID,State -p -n
S
chown phxsacct1 "$home1"/*.sh
chown phxsacct2 "$home2/other.sh"

fail=$(as phxsacct1 phx submit --parsable fail.sh)
other=$(as phxsacct2 phx submit --parsable other.sh)
wait_job "$fail" FAILED 30
wait_job "$other" COMPLETED 30
inside=$(as phxsacct1 phx submit --parsable inside.sh)
wait_job "$inside" COMPLETED 30
out=$(cat "$home1/phx-$inside.out")
note "$out"
assert_contains "$(head -1 <<<"$out")" "/scripts/compat/sacct"
assert_eq "$fail|fail|FAILED
$inside|inside|RUNNING
$inside|RUNNING|" "$(tail -n +2 <<<"$out")"

# The habits: -j ID --format ... -P -n (a job and its batch step).
run_ok as phxsacct1 "$sacct" -j "$fail" --format=JobID,Elapsed,MaxRSS,ExitCode -P -n
note "$PHX_OUT"
assert_eq "$fail|3:0
$fail.batch|3:0" "$(printf '%s\n' "$PHX_OUT" | cut -d'|' -f1,4)"
[[ $PHX_OUT =~ ^$fail\|00:00:0[0-9]\| ]] || fail "Elapsed: $PHX_OUT"
# -p: a '|' after the last field, header included; grouped options.
assert_eq "JobID|State|ExitCode|
$fail|FAILED|3:0|" "$(as phxsacct1 "$sacct" -pX -j "$fail" -o JobID,State,ExitCode)"
assert_eq "$fail" "$(as phxsacct1 "$sacct" -nPXj"$fail" -o JobID)"
# SACCT_FORMAT is the default columns; -o, -b replace it; -o and -b add up.
assert_eq "JobID|JobName|State
$fail|fail|FAILED" "$(as phxsacct1 SACCT_FORMAT=JobID,JobName%20,State "$sacct" -X -P -j "$fail")"
assert_eq "JobID|User" "$(as phxsacct1 SACCT_FORMAT=JobID,JobName "$sacct" -X -P -o JobID,User -j "$fail" | head -1)"
assert_eq "$fail|FAILED|3:0" "$(as phxsacct1 SACCT_FORMAT=JobName "$sacct" -b -X -P -n -j "$fail")"
assert_eq "JobName|JobID|State|ExitCode" "$(as phxsacct1 "$sacct" -o JobName -b -P -j "$fail" | head -1)"
out=$(as phxsacct1 "$sacct" -b -j "$fail")
assert_eq "$(printf '%-12s %10s %8s' JobID State ExitCode)
------------ ---------- --------
$(printf '%-12s %10s %8s' "$fail" FAILED 3:0)" "$(head -3 <<<"$out")"
assert_eq "JobID|JobIDRaw|JobName|Partition|MaxRSS|NTasks|AllocCPUS|Elapsed|State|ExitCode|ReqMem" \
    "$(as phxsacct1 "$sacct" -l -P -j "$fail" | head -1)"
# The default columns are sacct's; without -X the steps follow their job.
assert_eq "JobID|JobName|Partition|Account|AllocCPUS|State|ExitCode" \
    "$(as phxsacct1 "$sacct" -P -j "$fail" | head -1)"
assert_eq "$fail $fail.batch" "$(as phxsacct1 "$sacct" -P -n -o JobID -j "$fail" | xargs)"

# Whose jobs.  phxsacct2 reads every row (an accountant's role), yet sacct
# shows its own jobs unless -a, -u or -j says otherwise; phxsacct1's own
# role sees only its jobs, even with -a; root sees all.
ids() { as "$1" "$sacct" -X -P -n -o JobID "${@:2}" | xargs; }
assert_eq "$other" "$(ids phxsacct2)"
assert_eq "$fail $other $inside" "$(ids phxsacct2 -a)"
assert_eq "$fail $inside" "$(ids phxsacct2 -u phxsacct1)"
assert_eq "$fail" "$(ids phxsacct2 -j "$fail")"
assert_eq "$fail $inside" "$(ids phxsacct1 -a)"
assert_eq "$fail $other $inside" "$("$sacct" -X -P -n -o JobID | xargs)" "root: all users"
# -a -s FAILED, --name, -S and -E.
assert_eq "$fail|phxsacct1|FAILED" "$(as phxsacct2 "$sacct" -a -s FAILED -X -P -n -o JobID,User,State)"
assert_eq "$inside" "$(ids phxsacct2 -a --name=inside)"
assert_eq "$fail $other $inside" "$(ids phxsacct2 -a -r batch)"
assert_eq "" "$(ids phxsacct2 -a --partition=debug)"
assert_eq "$fail,FAILED" "$(as phxsacct1 "$sacct" -X -P -n -o JobID,State --delimiter=, -j "$fail")"
assert_eq "" "$(ids phxsacct2 -a -S now+1days)"
assert_eq "" "$(ids phxsacct2 -a -S 2020-01-01 -E 2020-01-02)"
assert_eq "$fail $other $inside" "$(ids phxsacct2 -a -S now-1day)" "singular unit"
# Repeated list options add up, as sacct's (slurm_addto_char_list).
assert_eq "$fail $other" "$(ids phxsacct2 -j "$fail" -j "$other")"
assert_eq "$fail $other" "$(ids phxsacct2 -j "$fail" --jobs="$other")"
assert_eq "$fail $other $inside" "$(ids phxsacct2 -u phxsacct1 -u phxsacct2)"
assert_eq "$fail $other $inside" "$(ids phxsacct2 -a -s FAILED -s COMPLETED)"
assert_eq "$fail $other" "$(ids phxsacct2 -a --name fail --name=other)"
assert_eq "$fail $other $inside" "$(ids phxsacct2 -a -r nosuch -r batch)"
# "--" ends the options, and sacct takes no operands.
assert_eq "$other" "$(ids phxsacct2 --)"
expect_fail as phxsacct2 "$sacct" -X -- -a
assert_contains "$PHX_OUT" 'sacct: Unknown arguments: -a'

# Refused, by name: options that would change what is selected, and others.
expect_fail as phxsacct1 "$sacct" -D
assert_contains "$PHX_OUT" 'sacct: option "-D" is not supported by the phx wrapper'
expect_fail as phxsacct1 "$sacct" --units=M
assert_contains "$PHX_OUT" 'option "--units" is not supported'
expect_fail as phxsacct1 "$sacct" -nLM other
assert_contains "$PHX_OUT" 'option "-M" is not supported'
expect_fail as phxsacct1 "$sacct" "$fail"
assert_contains "$PHX_OUT" "unexpected argument \"$fail\""
expect_fail as phxsacct1 "$sacct" -j '""'
assert_contains "$PHX_OUT" 'sacct: -j needs a job id (in a job: $PHX_JOB_ID'
expect_fail as phxsacct1 "$sacct" --parsable=x
assert_contains "$PHX_OUT" 'sacct: option "--parsable" takes no value'
expect_fail as phxsacct1 "$sacct" --allusers=x
assert_contains "$PHX_OUT" 'sacct: option "--allusers" takes no value'
expect_fail as phxsacct1 "$sacct" --format=JobID,Nope
assert_contains "$PHX_OUT" 'unknown column "Nope"'
run_ok as phxsacct1 "$sacct" -e
assert_contains "$PHX_OUT" "MaxRSS"

# Steps in -j, as sacct: ID.STEP (batch, extern, a number) and A_T.STEP show
# those step lines alone; with the job's own id, the job and all its steps;
# with -X, a step's job line.
printf '#!/bin/sh\n#SBATCH -J steps\nphx run -n 1 true\nphx run -n 1 true\n' >"$home1/steps.sh"
printf '#!/bin/sh\n#SBATCH -J arr -a 0-1\ntrue\n' >"$home1/arr.sh"
chown phxsacct1 "$home1/steps.sh" "$home1/arr.sh"
steps=$(as phxsacct1 phx submit --parsable steps.sh)
arr=$(as phxsacct1 phx submit --parsable arr.sh)
wait_job "$steps" COMPLETED 30
wait_job "${arr}_1" COMPLETED 30
jid() { as phxsacct1 "$sacct" -P -n -o JobID "$@" | xargs; }
assert_eq "$steps $steps.batch $steps.0 $steps.1" "$(jid -j "$steps")"
assert_eq "$steps.0" "$(jid -j "$steps.0")"
assert_eq "$steps.batch $steps.1" "$(jid -j "$steps.1,$steps.batch")"
assert_eq "$fail.batch $steps.0" "$(jid -j "$steps.0" -j "$fail.batch")"
assert_eq "$fail $fail.batch $steps.1" "$(jid -j "$fail,$steps.1")"
assert_eq "${arr}_1.batch" "$(jid -j "${arr}_1.batch")"
assert_eq "$steps" "$(jid -X -j "$steps.0")"
assert_eq "" "$(jid -j "$steps.7")"
assert_eq "$steps.0|COMPLETED|0:0" "$(as phxsacct1 "$sacct" -P -n -o JobID,State,ExitCode -j "$steps.0")"
expect_fail as phxsacct1 "$sacct" -j "$steps.x"
assert_contains "$PHX_OUT" "invalid job id \"$steps.x\" (41, 41_3, 41.batch, 41.0, 41_3.batch)"
expect_fail as phxsacct1 phx acct -j "${steps}_1_2"
assert_contains "$PHX_OUT" "invalid job id"
