#!/usr/bin/env bash
# timeout: 90
# Launch authentication against a real agent (doc/agent.md): a test plays
# the master (tools/fake_master.py, which seals every frame after
# REGISTERED: t0220).  REGISTERED without a session key: the
# agent drops the connection and registers again.  With a key sealed for
# the agent's uid: a LAUNCH signed with it runs; one without a MAC, signed
# with another key, with a sequence number already used, or changed after
# signing is refused (TASK_ERROR / REASON_TASK_UNAUTHORIZED) and runs
# nothing.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxla
phx_setup
chmod a+x "$PHX_TEST_DIR"
mkdir -m 1777 "$PHX_TEST_DIR/marks"
uid=$(id -u phxla)
gid=$(id -g phxla)
port=$(sed -n 's/.*master = "127.0.0.1:\([0-9]*\)".*/\1/p' "$PHX_CONFIG" | head -1)

task() { # MODE ID: one line of the tasks file; the task touches marks/ID
    printf '%s {"task_id":"%s","framework_id":"fw-la","gang_id":1,"user":"phxla","uid":%d,"gid":%d,"argv":["/bin/sh","-c","touch %s/marks/%s"],"env":{"MARK":"%s/marks/%s"},"cwd":"/tmp","stdout":null,"stderr":null,"cores":"0","memory":0,"numas":"0","time_limit":0,"kill_grace":1}\n' \
        "$1" "$2" "$uid" "$gid" "$PHX_TEST_DIR" "$2" "$PHX_TEST_DIR" "$2"
}
{
    task good la-good
    task nomac la-nomac
    task wrongkey la-wrongkey
    task replay la-replay
    task tampered la-tampered
    task good la-good2
} >"$PHX_TEST_DIR/tasks"

python3 "$PHX_SRC/tests/e2e/tools/fake_master.py" "$port" "$PHX_MUNGE_SOCKET" \
    "$PHX_TEST_DIR/tasks" >"$PHX_TEST_DIR/fake.out" 2>&1 &
fake=$!
wait_for 10 port_listening "$port"
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait "$fake" || fail "fake master failed: $(cat "$PHX_TEST_DIR/fake.out")"
out=$(cat "$PHX_TEST_DIR/fake.out")
note "$out"

assert_contains "$out" "DROPPED WITHOUT KEY"
assert_contains "$(cat "$PHX_TEST_DIR/agent-n1.log")" 'REGISTERED carries no session key'
assert_contains "$out" "ALL DONE"
assert_contains "$out" "STATUS la-good TASK_FINISHED"
assert_contains "$out" "STATUS la-good2 TASK_FINISHED"
for t in la-nomac la-wrongkey la-replay la-tampered; do
    assert_contains "$out" "STATUS $t TASK_ERROR REASON_TASK_UNAUTHORIZED"
    assert_not_contains "$out" "STATUS $t TASK_RUNNING"
done
[[ -e $PHX_TEST_DIR/marks/la-good && -e $PHX_TEST_DIR/marks/la-good2 ]] ||
    fail "the signed launches did not run"
ran=$(ls "$PHX_TEST_DIR/marks")
assert_eq "la-good la-good2" "$(echo $ran)" "only the signed launches ran"
log=$(cat "$PHX_TEST_DIR/agent-n1.log")
assert_contains "$log" 'task fw-la/la-nomac: launch refused: launch is not signed'
assert_contains "$log" 'task fw-la/la-wrongkey: launch refused: launch signature refused'
assert_contains "$log" 'task fw-la/la-replay: launch refused: launch refused: sequence number 1 is not above 1'
assert_contains "$log" 'task fw-la/la-tampered: launch refused: launch signature refused'
note ok
