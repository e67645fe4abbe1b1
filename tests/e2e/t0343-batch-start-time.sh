#!/usr/bin/env bash
# timeout: 90
# Expected start times (squeue --start): the job waiting for Resources has
# the start its EASY reservation holds, the end of the running job's time
# limit, in `phx queue --start`, `squeue --start`, %S and `phx show`'s
# StartTime; a job behind it (Priority) has none (N/A, Unknown); once it
# is held, neither has the held job.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
# one job examined a pass: a job the plan no longer examines shows no start
PHX_BATCHD_EXTRA="bf_max_job_test = 1;"
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\n#SBATCH -n 2 -t 1 -o /dev/null\nexec sleep 300\n' >"$home/two.sh"
printf '#!/bin/sh\n#SBATCH -n 1 -t 1 -o /dev/null\nexec sleep 300\n' >"$home/one.sh"
chown phxu1 "$home"/*.sh

a=$(as phx submit --parsable two.sh)
wait_job "$a" RUNNING 20
b=$(as phx submit --parsable two.sh)
c=$(as phx submit --parsable one.sh)
reserved() { [[ $(job_field "$b" reason) == Resources && -n $(job_field "$b" expected_start) ]]; }
wait_for 20 reserved
want=$(date -d "@$(($(job_field "$a" start_time) + 60))" +%Y-%m-%dT%H:%M:%S)
assert_eq "$b $want (Resources)" "$(as phx queue --start --noheader -j "$b" | awk '{print $1, $6, $8}')" \
    "phx queue --start: the reservation's start"
assert_eq "$c N/A" "$(as phx queue --start --noheader -j "$c" | awk '{print $1, $6}')" "behind it: none"
assert_eq "$b $c" "$(as "$PHX_SRC/scripts/compat/squeue" --start -h -o %i | xargs)" "pending jobs only"
assert_eq "$b $want" "$(as "$PHX_SRC/scripts/compat/squeue" --start -h -j "$b" | awk '{print $1, $6}')"
assert_eq "$want" "$(as phx queue --noheader -j "$b" -o %S)" "%S of a pending job"
assert_contains "$(as phx show "$b")" "StartTime=$want EndTime=Unknown"
assert_contains "$(as phx show "$c")" "StartTime=Unknown EndTime=Unknown"
assert_contains "$(as phx queue --start)" "START_TIME"
# A running job's %S is its start; a held one has none.
assert_eq "$(date -d "@$(job_field "$a" start_time)" +%Y-%m-%dT%H:%M:%S)" "$(as phx queue --noheader -j "$a" -o %S)"
as phx hold "$b"
assert_eq "N/A" "$(as phx queue --noheader -j "$b" -o %S)" "held: no start"
as phx cancel "$c"
# Overtaken (from a review): released but now last, b is no longer
# examined (bf_max_job_test = 1) and shows no start; d has it.
as phx release "$b"
wait_for 20 reserved
d=$(as phx submit --parsable two.sh)
run_ok as phx update "$b" Nice=10000
reserved_d() { [[ $(job_field "$d" reason) == Resources && -n $(job_field "$d" expected_start) ]]; }
wait_for 20 reserved_d
sleep 2
assert_eq "N/A" "$(as phx queue --noheader -j "$b" -o %S)" "b is no longer the reserved job"
assert_eq "$d" "$(as phx queue --start --noheader | awk '$6 != "N/A" {print $1}')" "one start: d's"
as phx cancel "$a" "$b" "$d"
