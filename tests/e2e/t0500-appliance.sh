#!/usr/bin/env bash
# timeout: 180
# The appliance: phx-up brings up PostgreSQL, munged, the master, batchd and
# three agents under a private state dir; the demo's MPI job runs; phx-down
# stops exactly what phx-up started and frees every port.
. "$(dirname "$0")/lib.sh"

state=$PHX_TEST_DIR/state
base=$(free_port)
# phx-up uses base, base+1 and base+10.
for p in $base $((base + 1)) $((base + 10)); do
    port_listening "$p" && fail "port $p is taken; rerun"
done
"$PHX_SRC/scripts/phx-up" --state "$state" --agents 3 --port-base "$base" >up.log 2>&1 ||
    { cat up.log; fail "phx-up failed"; }
cat up.log >&2
assert_contains "$(cat up.log)" "Phalanx is up"
export PHX_CONFIG=$state/phalanx.conf
out=$(phx nodes)
for n in n01 n02 n03; do
    assert_contains "$out" "$n"
    assert_eq up "$(phx nodes --json | python3 -c "import json,sys; print([a['state'] for a in json.load(sys.stdin) if a['name']=='$n'][0])")"
done

# Twice is harmless.
"$PHX_SRC/scripts/phx-up" --state "$state" --agents 3 --port-base "$base" >up2.log 2>&1
assert_contains "$(cat up2.log)" "master already running"

# The main job: examples/hello-mpi.sh through batchd, MPI over 2 nodes,
# then its queue, accounting and SQL records.
out=$(timeout 120 "$PHX_SRC/scripts/demo-job" "$state" 2>&1) || { echo "$out"; fail "demo job failed"; }
note "$out"
assert_eq 4 "$(grep -c 'of 4 sum 10' <<<"$out")" "four ranks with the right sum"
assert_contains "$out" "phx run exited with 0"
assert_contains "$out" "COMPLETED      0:0"
assert_contains "$out" "(1 row)"

# A gang through the scheduler API on all three agents.
out=$(PHX_MUNGE_SOCKET=$state/munge/socket timeout 60 "$PHX_BUILD/examples/simple-framework" \
    --master "127.0.0.1:$base" --agents 3 --cmd true)
assert_eq 3 "$(printf '%s\n' "$out" | grep -c ': TASK_FINISHED$')"

# A taken port is named.
other=$PHX_TEST_DIR/other
expect_fail "$PHX_SRC/scripts/phx-up" --state "$other" --port-base "$base"
assert_contains "$PHX_OUT" "port $base is taken"

pids=$(cat "$state"/pids/*.pid)
"$PHX_SRC/scripts/phx-down" --state "$state"
for p in $pids; do
    alive "$p" && fail "process $p is still running after phx-down"
done
pgrep -f "$state" && fail "something of the appliance is still running"
for p in $base $((base + 1)) $((base + 10)); do
    port_listening "$p" && fail "port $p still taken after phx-down"
done
note ok
