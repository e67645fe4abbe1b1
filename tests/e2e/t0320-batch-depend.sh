#!/usr/bin/env bash
# timeout: 90
# Dependencies: an afterok chain runs in order; afternotok of a job that
# succeeded never runs (cancelled, DependencyNeverSatisfied); afternotok of
# a failed job runs; afterany runs after either.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:4 pu:1"
wait_node n1 up
start_batchd
home=$(getent passwd phxu1 | cut -d: -f6)
rm -f "$home/order.log"
as() { as_user phxu1 "$@"; }
printf '#!/bin/sh\necho "$PHX_JOB_NAME start $(date +%%s.%%N)" >>"$HOME/order.log"\nsleep 1\necho "$PHX_JOB_NAME end $(date +%%s.%%N)" >>"$HOME/order.log"\nexit ${RC:-0}\n' >"$home/step.sh"
chown phxu1 "$home/step.sh"
a=$(as phx submit --parsable -J A step.sh)
b=$(as phx submit --parsable -J B -d afterok:$a step.sh)
c=$(as phx submit --parsable -J C -d afterok:$b step.sh)
n=$(as phx submit --parsable -J N -d afternotok:$a step.sh)
f=$(as RC=4 phx submit --parsable -J F step.sh)
g=$(as phx submit --parsable -J G -d afternotok:$f step.sh)
h=$(as phx submit --parsable -J H -d afterok:$f step.sh)
assert_eq Dependency "$(job_field "$c" reason)"
wait_job "$c" COMPLETED 40
wait_job "$g" COMPLETED 20
wait_job "$f" FAILED 5
wait_job "$n" CANCELLED 10
assert_eq DependencyNeverSatisfied "$(job_field "$n" reason)"
wait_job "$h" CANCELLED 10
t() { awk -v n="$1" -v k="$2" '$1 == n && $2 == k {print $3}' "$home/order.log"; }
cat "$home/order.log" >&2
python3 -c "import sys; a=list(map(float, sys.argv[1:])); sys.exit(0 if a[0] <= a[1] and a[2] <= a[3] and a[4] <= a[5] else 1)" \
    "$(t A end)" "$(t B start)" "$(t B end)" "$(t C start)" "$(t F end)" "$(t G start)" ||
    fail "dependencies ran out of order"
assert_eq "" "$(t N start)" "afternotok of a success never runs"
assert_eq "" "$(t H start)" "afterok of a failure never runs"
note ok
