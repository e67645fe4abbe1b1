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
. "$PHX_SRC/tests/e2e/fakemaster.sh"

fake_master_setup phxca fw-ca
{
    fake_master_task good ca-first
    fake_master_task good ca-long 4        # still running through the attacks below
    fake_master_task unsealed-step ca-long # a rank in ca-long's job: must not run
    fake_master_task unsealed-kill ca-long # must not kill it
    fake_master_task badmac ca-badmac
    fake_master_task good ca-second
    fake_master_task oldseq ca-oldseq
    fake_master_task good ca-third
    fake_master_task replayframe ca-third # the exact frame again: refused before LAUNCH
    fake_master_task good ca-last
} >"$PHX_TEST_DIR/tasks"

fake_master_run
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

# Before REGISTER anyone on the network may connect: such a peer may not
# buffer more than 4 MiB (a declared 15 MiB frame is cut off), must send
# REGISTER within 5 s, and cannot keep agents out: past 32 waiting
# connections the oldest go (refusing new ones kept agents out).
python3 - "$PHX_AGENT_PORT" "$PHX_TEST_DIR/now" >"$PHX_TEST_DIR/flood.out" <<'PY' &
import os, socket, struct, sys, time
port = int(sys.argv[1])
big = socket.create_connection(("127.0.0.1", port))
big.sendall(struct.pack("!II", 15 << 20, 0))
big.settimeout(10)
try:
    for _ in range(5 * 16):
        big.sendall(b"{" * 65536)
    while big.recv(65536):  # an ERROR, then the close
        pass
    print("big: cut off")
except socket.timeout:
    print("big: still open")
except OSError:
    print("big: cut off")
big.close()
time.sleep(0.5)
got = {}
def closed(conns, why=b""):
    n = 0
    for c in conns:
        c.setblocking(False)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got[c] = got.get(c, b"") + d
            n += why in got.get(c, b"")
        except BlockingIOError:
            pass
        except ConnectionResetError:
            n += why in got.get(c, b"")
    return n
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
time.sleep(1)
print("closed at once:", closed(conns), flush=True)
open(sys.argv[2], "w").close()  # an agent registers now
# once it is up: was one of ours closed to make room for it (the proof
# that eviction, not the 5 s deadline, let it in)?
while not os.path.exists(sys.argv[2] + ".up"):
    time.sleep(0.05)
print("evicted for the agent:", closed(conns, b"too many connections waiting") - 8,
      flush=True)
# a byte every 0.3 s keeps an idle timeout away, not the REGISTER deadline
drip = socket.create_connection(("127.0.0.1", port))
drip.sendall(struct.pack("!II", 1000, 0))
state = "open"
for _ in range(25):
    try:
        drip.sendall(b"{")
    except OSError:
        state = "closed"
        break
    time.sleep(0.3)
print("drip after 7.5 s:", state)
print("closed after 8 s:", closed(conns))
PY
flood=$!
# with 32 connections waiting, an agent registers
wait_for 30 test -e "$PHX_TEST_DIR/now"
start_agent n3 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n3 up 5
touch "$PHX_TEST_DIR/now.up"
wait "$flood"
got=$(cat "$PHX_TEST_DIR/flood.out")
note "$got"
assert_contains "$got" "big: cut off"
assert_contains "$got" "closed at once: 8"
assert_contains "$got" "evicted for the agent: 1"
assert_contains "$got" "closed after 8 s: 40"
assert_contains "$got" "drip after 7.5 s: closed"
log=$(cat "$PHX_TEST_DIR/master.log")
assert_contains "$log" "more than 4 MiB before registering"
assert_contains "$log" "32 agent connections have not sent REGISTER: closing the oldest"
assert_contains "$log" "no REGISTER within 5 s"
assert_eq up "$(node_field n1 state)" "n1 still served"
note ok
