#!/usr/bin/env bash
# timeout: 180
# phx alloc against a hostile network and a closed stderr (review of the
# alloc feature): anyone who can connect to the relay may hold its slots
# for unauthenticated connections (PHX_ALLOC_PENDING_MAX) idle, and the
# owner's srun still gets through (the oldest waiting one goes); a flood of
# junk connections fills neither the output file nor the user's terminal
# (at most 20 refusals logged a minute); and phx alloc whose stderr is a
# closed pipe still runs the command and ends the job (SIGPIPE ignored),
# rather than dying and leaving the job to hold its node.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
PHX_HEARTBEAT=0.5
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd

as() { as_user "$@"; }
home1=$(getent passwd phxu1 | cut -d: -f6)
rm -f "$home1"/.phx-alloc-*.out "$home1/ready" "$home1/done1" "$home1/done2" "$home1/piped"
granted() { sed -n 's/^.*Granted job allocation \([0-9]*\)$/\1/p' "$1"; }

as phxu1 "phx alloc -N 1 -t 2 sh -c 'touch ready; while [ ! -e done1 ]; do sleep 0.1; done; srun -n1 echo survived; while [ ! -e done2 ]; do sleep 0.1; done'" \
    >"$PHX_TEST_DIR/h1.out" 2>"$PHX_TEST_DIR/h1.err" &
apid=$!
wait_for 60 test -e "$home1/ready"
read -r _ host port _ < <(head -n1 "$home1"/.phx-alloc-*.out)
id=$(granted "$PHX_TEST_DIR/h1.err")
note "relay of job $id at $host:$port"

# Sixteen idle connections (no credential): the owner's srun gets through.
for fd in $(seq 10 25); do
    eval "exec $fd<>/dev/tcp/127.0.0.1/$port"
done
sleep 0.5
touch "$home1/done1"
wait_for 8 grep -q survived "$PHX_TEST_DIR/h1.out"
for fd in $(seq 10 25); do
    eval "exec $fd<&-"
done

# A flood of junk connections: a bounded number of lines logged.
for _ in $(seq 300); do
    exec 3<>"/dev/tcp/127.0.0.1/$port" && exec 3<&- || true
done
sleep 2
touch "$home1/done2"
wait "$apid" || fail "phx alloc after the flood: rc $?: $(cat "$PHX_TEST_DIR"/h1.*)"
wait_job "$id" COMPLETED 30
n=$(grep -c 'phx alloc: relay: refused a connection from' "$PHX_TEST_DIR/h1.err" || true)
note "$n refusals logged"
((n >= 1 && n <= 20)) || fail "$n refusals logged for 316 bad connections"

# stderr a closed pipe: phx alloc goes on, the job ends with the command.
as phxu1 "phx alloc -N 1 -t 2 sh -c 'touch piped' 2>&1 | true" || true
id=$(psql_q "SELECT max(id) FROM jobs")
wait_for 30 test -e "$home1/piped"
wait_job "$id" COMPLETED 30
assert_eq "" "$(ls -A "$home1" | grep '^.phx-alloc-' || true)" "output files left"
note ok
