#!/usr/bin/env bash
# timeout: 120
# Channel authentication against a real agent (doc/agent.md): a test plays
# the master (tools/fake_master.py) and seals every frame after REGISTERED.
# Sealed LAUNCHes run.  An unsealed STEP_LAUNCH or KILL, a sealed frame with
# a wrong MAC, one numbered as an earlier frame, and an earlier frame sent
# again each make the agent drop the connection (logged) and run or kill
# nothing; it registers again and the sealed flow goes on.  Everything the
# agent sends after REGISTERED is sealed and in sequence.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxca
phx_setup
chmod a+x "$PHX_TEST_DIR"
mkdir -m 1777 "$PHX_TEST_DIR/marks"
uid=$(id -u phxca)
gid=$(id -g phxca)
port=$(sed -n 's/.*master = "127.0.0.1:\([0-9]*\)".*/\1/p' "$PHX_CONFIG" | head -1)

task() { # MODE ID [SLEEP]: one line of the tasks file; the task touches marks/ID
    printf '%s {"task_id":"%s","framework_id":"fw-ca","gang_id":1,"user":"phxca","uid":%d,"gid":%d,"argv":["/bin/sh","-c","sleep %s; touch %s/marks/%s"],"env":{"MARK":"%s/marks/%s"},"cwd":"/tmp","stdout":null,"stderr":null,"cores":"0","memory":0,"numas":"0","time_limit":0,"kill_grace":1}\n' \
        "$1" "$2" "$uid" "$gid" "${3:-0}" "$PHX_TEST_DIR" "$2" "$PHX_TEST_DIR" "$2"
}
{
    task good ca-first
    task good ca-long 4        # still running through the attacks below
    task unsealed-step ca-long # a rank in ca-long's job: must not run
    task unsealed-kill ca-long # must not kill it
    task badmac ca-badmac
    task good ca-second
    task oldseq ca-oldseq
    task good ca-third
    task replayframe ca-third # the exact frame again: refused before LAUNCH
    task good ca-last
} >"$PHX_TEST_DIR/tasks"

python3 "$PHX_SRC/tests/e2e/tools/fake_master.py" "$port" "$PHX_MUNGE_SOCKET" \
    "$PHX_TEST_DIR/tasks" >"$PHX_TEST_DIR/fake.out" 2>&1 &
fake=$!
wait_for 10 port_listening "$port"
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait "$fake" || fail "fake master failed: $(cat "$PHX_TEST_DIR/fake.out")"
out=$(cat "$PHX_TEST_DIR/fake.out")
note "$out"
log=$(cat "$PHX_TEST_DIR/agent-n1.log")

assert_contains "$out" "ALL DONE"
for t in ca-first ca-long ca-second ca-third ca-last; do
    assert_contains "$out" "STATUS $t TASK_FINISHED"
done
assert_not_contains "$out" "TASK_KILLED"
for m in "unsealed-step ca-long" "unsealed-kill ca-long" "badmac ca-badmac" \
    "oldseq ca-oldseq" "replayframe ca-third"; do
    assert_contains "$out" "DROPPED $m"
    assert_not_contains "$out" "NOT DROPPED $m"
done
assert_eq 5 "$(grep -c REREGISTERED <<<"$out")" "re-registrations after each refusal"
assert_not_contains "$out" "UNSEALED FROM AGENT"
assert_not_contains "$out" "BAD FRAME FROM AGENT"
assert_not_contains "$out" "STATUS ca-badmac"
assert_not_contains "$out" "STATUS ca-oldseq"
ran=$(ls "$PHX_TEST_DIR/marks")
assert_eq "ca-first ca-last ca-long ca-second ca-third" "$(echo $ran)" \
    "only the sealed launches ran (no step rank, no refused launch)"
assert_contains "$log" 'lost the master at 127.0.0.1:'"$port"': frame refused: frame "STEP_LAUNCH" is not sealed'
assert_contains "$log" 'frame refused: frame "KILL" is not sealed'
assert_contains "$log" "frame refused: sealed frame's MAC refused"
# oldseq and replayframe (the numbers depend on the heartbeats acknowledged)
assert_eq 2 "$(grep -c 'frame refused: sealed frame number [0-9]* refused: expected [0-9]* (a replay)' \
    "$PHX_TEST_DIR/agent-n1.log")" "replays refused"

# The master's side: after REGISTERED, an unsealed frame closes the
# connection (logged); the master goes on serving the other agents (n1,
# which registers with it now).
start_master
wait_node n1 up
topo=$(phx topo --synthetic "pack:1 numa:1 core:2 pu:1" --json)
nonce=0123456789abcdef
cred=$(munge -S "$PHX_MUNGE_SOCKET" -s "phx-register n5 $nonce")
printf '{"type":"REGISTER","name":"n5","nonce":"%s","cred":"%s","topology":%s}' \
    "$nonce" "$cred" "$topo" >"$PHX_TEST_DIR/reg.json"
printf '{"type":"STEP_REQUEST","req":1,"framework_id":"fw","task_id":"t","argv":["id"]}' \
    >"$PHX_TEST_DIR/step.json"
got=$(WIRE_GAP=1 "$PHX_SRC/tests/e2e/tools/wire.py" "$PHX_AGENT_PORT" \
    "$PHX_TEST_DIR/reg.json" "$PHX_TEST_DIR/step.json")
note "$got"
assert_contains "$got" '"type": "REGISTERED"'
assert_contains "$got" CLOSED
wait_for 10 grep -q 'agent "n5" (127.0.0.1:[0-9]*) disconnected: frame refused: frame "STEP_REQUEST" is not sealed' \
    "$PHX_TEST_DIR/master.log"
assert_eq up "$(node_field n1 state)" "n1 still served"
note ok
