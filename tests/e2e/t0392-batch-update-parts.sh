#!/usr/bin/env bash
# timeout: 180
# An update of another field (TimeLimit) of a pending job of "-p a,b"
# while a is DRAIN keeps both partitions: once a is UP again the job still
# lists a,b (a review found the check's narrowed list stored for good).
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_BATCHD_EXTRA='partitions = ["PartitionName=a Nodes=n1 Default=YES State=UP",
                  "PartitionName=b Nodes=n1"];'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\necho ran\n' >"$home/j.sh"
chown phxu1 "$home/j.sh"
h=$(as phx submit --parsable -H -p a,b -t 5 j.sh)
assert_eq "a,b" "$(job_field "$h" partition)"
hups() { grep -c "reloaded: applied batchd.partitions" "$PHX_TEST_DIR/batchd.log" || true; }
sed -i 's/PartitionName=a Nodes=n1 Default=YES State=UP/PartitionName=a Nodes=n1 Default=YES State=DRAIN/' "$PHX_CONFIG"
kill -HUP "$(daemon_pid batchd)"
wait_for 10 sh -c "[ \$(grep -c 'reloaded: applied batchd.partitions' '$PHX_TEST_DIR/batchd.log') -ge 1 ]"
out=$(as phx update "$h" TimeLimit=3 2>&1) || true
note "update said: $out"
sed -i 's/State=DRAIN/State=UP/' "$PHX_CONFIG"
kill -HUP "$(daemon_pid batchd)"
wait_for 10 sh -c "[ \$(grep -c 'reloaded: applied batchd.partitions' '$PHX_TEST_DIR/batchd.log') -ge 2 ]"
assert_eq "180" "$(job_field "$h" time_limit)"
# the job was asked a new time limit only: its partitions are as submitted
assert_eq "a,b" "$(job_field "$h" partition)"
note ok
