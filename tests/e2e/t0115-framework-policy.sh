#!/usr/bin/env bash
# timeout: 90
# Any munge user may run a framework, within bounds: a role the operators
# gave a weight is theirs to hand out (a user once subscribed as "batch"
# with batchd's weight), a role in master.role_users is its users' alone,
# a user has at most master.max_frameworks_per_user frameworks and a
# framework at most master.max_requests_per_framework gang requests.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
PHX_MASTER_EXTRA='role_weights = ["batch=3", "*=1"]; role_users = ["science=phxu2", "*=root"];
    max_frameworks_per_user = 1; max_requests_per_framework = 1;
    allow_unauthenticated = true; open_users = ["phxu1"]; framework_heartbeat = 1.0;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
fw=$PHX_BUILD/examples/simple-framework

# fw_as USER ROLE [ARGS...]: run simple-framework as USER for at most 30 s
# (a refused one ends at once; one killed by the timeout would leave no
# TEARDOWN and hold its user's place for its failover timeout)
fw_as() {
    local u=$1 role=$2
    shift 2
    runuser -u "$u" -- env PHX_MASTER="$PHX_MASTER" PHX_MUNGE_SOCKET="$PHX_MUNGE_SOCKET" \
        timeout 30 "$fw" --agents 1 --role "$role" "$@" 2>&1 || true
}

out=$(fw_as phxu1 batch --cmd true)
note "$out"
assert_contains "$out" "SUBSCRIBE answered 403"
assert_contains "$out" 'as role \"batch\": the role has a weight set by the operators'
out=$(fw_as phxu1 science --cmd true)
assert_contains "$out" "the role is reserved to the users master.role_users lists"
# its user may, and root may take the weighted role
out=$(fw_as phxu2 science --cmd "id -un")
note "$out"
assert_contains "$out" "subscribed as framework"
assert_contains "$out" "TASK_FINISHED"
out=$(fw_as root batch --cmd true)
assert_contains "$out" "TASK_FINISHED"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" \
    "SUBSCRIBE of \"simple-framework\" as role \"batch\" by uid $(id -u phxu1) refused"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" \
    'master.role_users entry "*=root" is ignored'

# One framework per user: a second one of phxu1 is refused while the
# first runs, not once it is gone.
runuser -u phxu1 -- env PHX_MASTER="$PHX_MASTER" PHX_MUNGE_SOCKET="$PHX_MUNGE_SOCKET" \
    "$fw" --agents 1 --cmd "sleep 30" >"$PHX_TEST_DIR/first.out" 2>&1 &
first=$!
wait_for 20 grep -q TASK_RUNNING "$PHX_TEST_DIR/first.out"
out=$(fw_as phxu1 "*" --cmd true)
assert_contains "$out" "max_frameworks_per_user"
kill "$first"
wait "$first" 2>/dev/null || true
# a framework that goes away without TEARDOWN stays until its failover
# timeout (10 s for simple-framework); "*" stays open though weighted.
# The output goes to a file, not a pipe into grep -q: grep leaving at the
# first match killed the framework (SIGPIPE) before its TEARDOWN, and its
# failover then refused all 8 SUBSCRIBEs below.
wait_for 30 sh -c "runuser -u phxu1 -- env PHX_MASTER=$PHX_MASTER PHX_MUNGE_SOCKET=$PHX_MUNGE_SOCKET timeout 10 $fw --agents 1 --cmd true >$PHX_TEST_DIR/again.out 2>&1; grep -q TASK_FINISHED $PHX_TEST_DIR/again.out"
# SUBSCRIBEs at once: the cap counts those still being written (8 in
# parallel once gave 4 frameworks to a user allowed 1).  The one let in
# runs until all 8 were answered (a "sleep 2" task let a SUBSCRIBE that a
# loaded machine sent 2 s late in after it, a second success).
par_answered() {
    [[ $(grep -l "subscribed as framework\|max_frameworks_per_user" "$PHX_TEST_DIR"/par.[1-8] | wc -l) == 8 ]]
}
pids=()
for i in 1 2 3 4 5 6 7 8; do
    fw_as phxu1 "*" --cmd "while [ ! -e $PHX_TEST_DIR/par.go ]; do sleep 0.1; done" \
        >"$PHX_TEST_DIR/par.$i" &
    pids+=($!)
done
wait_for 25 par_answered
touch "$PHX_TEST_DIR/par.go"
wait "${pids[@]}" # not the daemons
assert_eq 1 "$(cat "$PHX_TEST_DIR"/par.* | grep -c "subscribed as framework")"
assert_contains "$(cat "$PHX_TEST_DIR"/par.*)" "max_frameworks_per_user"

# A reload that takes a role from a framework's user says so (the
# framework keeps it until it subscribes again).
runuser -u phxu2 -- env PHX_MASTER="$PHX_MASTER" PHX_MUNGE_SOCKET="$PHX_MUNGE_SOCKET" \
    "$fw" --agents 1 --role science --cmd "sleep 30" >"$PHX_TEST_DIR/sci.out" 2>&1 &
sci=$!
wait_for 20 grep -q TASK_RUNNING "$PHX_TEST_DIR/sci.out"
sed -i 's/"science=phxu2"/"science=root"/' "$PHX_CONFIG"
kill -HUP "$(daemon_pid master)"
wait_for 10 grep -q 'holds role "science", which the configuration no longer allows it' \
    "$PHX_TEST_DIR/master.log"
kill "$sci"
wait "$sci" 2>/dev/null || true

# One gang request at a time: a call of two is refused whole, by name.
out=$(python3 "$PHX_SRC/tests/e2e/tools/mesos_fw.py" "$PHX_MASTER" requests)
note "$out"
assert_contains "$out" "400"
assert_contains "$out" "REQUEST of 2 gang requests: the framework would have more than master.max_requests_per_framework"
assert_contains "$out" "held: 0"
note ok
