#!/usr/bin/env bash
# timeout: 300
# The agent forwards every INPUT frame of a `phx run` client as STEP_INPUT
# through the master to each other agent, and the credit window counts
# bytes only.  A client (any user inside their own job can speak the step
# socket's protocol) that sent INPUT frames with no bytes and no eof was
# never slowed down: every one cost the origin agent, the master (unseal,
# seal) and the remote agent a frame, without bound.  phx run itself never
# sends such a frame (read() returns 0 only at EOF): the agent refuses it.  A proxy between phx run and its agent
# injects N empty INPUT frames once the step started.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5
phx_setup
start_master
master_pid=$PHX_LAST_PID
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"
D=$PHX_TEST_DIR
N=${EMPTY_FRAMES:-300000}

cat >"$D/proxy.py" <<'PY'
import json, os, socket, struct, sys, threading
path, real, n, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lst = socket.socket(socket.AF_UNIX); lst.bind(path); lst.listen(1)
cli, _ = lst.accept()
agent = socket.socket(socket.AF_UNIX); agent.connect(real)
lock = threading.Lock()
def up():
    while True:
        b = cli.recv(65536)
        if not b:
            agent.shutdown(socket.SHUT_WR); return
        with lock: agent.sendall(b)
threading.Thread(target=up, daemon=True).start()
hdr = json.dumps({"type": "INPUT", "eof": False}).encode()
empty = struct.pack(">II", len(hdr), 0) + hdr
buf, seen = b"", []
while True:
    try: b = agent.recv(65536)
    except OSError: b = b""
    if not b: break
    cli.sendall(b); buf += b
    while len(buf) >= 8:
        hl, al = struct.unpack(">II", buf[:8])
        if len(buf) < 8 + hl + al: break
        t = json.loads(buf[8:8 + hl])["type"]; buf = buf[8 + hl + al:]
        seen.append(t)
        if t == "STEP_STARTED":
            try:
                with lock: agent.sendall(empty * n)
                open(log, "a").write("injected %d\n" % n)
            except OSError as e: # the agent refused and closed
                open(log, "a").write("injecting: %s\n" % e)
open(log, "a").write("agent frames: %s\n" % " ".join(seen))
PY

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # clock ticks
before=$(cpu "$master_pid")
step_job "python3 $D/proxy.py $D/proxy.sock \$PHX_AGENT_SOCKET $N $D/proxy.log & sleep 1; sleep 8 | PHX_AGENT_SOCKET=$D/proxy.sock timeout 60 $phx run -N2 -n2 sh -c 'sleep 5; echo ok'"
after=$(cpu "$master_pid")
note "$(cat "$D/proxy.log" 2>/dev/null)"
note "master CPU for $N empty INPUT frames: $(( (after - before) * 10 )) ms"
# Expected: the agent refuses an INPUT frame with no bytes and no eof.
assert_contains "$(cat "$D/proxy.log")" "ERROR" "empty INPUT frame refused"
