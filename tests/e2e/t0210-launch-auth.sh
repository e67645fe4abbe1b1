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
. "$PHX_SRC/tests/e2e/fakemaster.sh"

fake_master_setup phxla fw-la
{
    fake_master_task good la-good
    fake_master_task nomac la-nomac
    fake_master_task wrongkey la-wrongkey
    fake_master_task replay la-replay
    fake_master_task tampered la-tampered
    fake_master_task good la-good2
} >"$PHX_TEST_DIR/tasks"

fake_master_run
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
