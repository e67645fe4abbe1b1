#!/usr/bin/env bash
# timeout: 240
# Any munge user may subscribe a framework, and the master queued every
# event for it (OFFERS, RESCIND, HEARTBEAT) without bound: one that never
# read its stream grew the master for as long as it stayed connected.
# Past master.max_stream_buffer bytes waiting it is now disconnected (as if
# it had gone: its failover timeout runs), and the master stays small.
# Here a framework subscribes and never reads, with offers rescinded and
# made again ten times a second on two wide nodes.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 0.1;
    framework_heartbeat = 0.1; max_stream_buffer = 65536;'
phx_setup
start_master
master_pid=$PHX_LAST_PID
for n in n1 n2; do
    start_agent $n "synthetic:pack:2 numa:4 core:32 pu:1"
    wait_node $n up
done

cat >"$PHX_TEST_DIR/mute.py" <<'PY'
import json, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, int(port)))
body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
    "user": "root", "name": "mute", "failover_timeout": 600}}}).encode()
s.sendall(b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
          + body)
time.sleep(float(sys.argv[2]))  # never reads
PY
# (mute outlives the wait: had it gone first, its stream would close
# without the overflow)
python3 "$PHX_TEST_DIR/mute.py" "$PHX_MASTER" 600 &
mute=$!
wait_for 180 grep -q "(mute): not reading its event stream" "$PHX_TEST_DIR/master.log"
# the close is logged when libevent sees the shutdown, a loop turn later
wait_for 10 grep -q "(mute): event stream closed" "$PHX_TEST_DIR/master.log"
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$master_pid/status")
note "master peak RSS: $rss kB"
kill "$mute" 2>/dev/null || true
wait "$mute" 2>/dev/null || true
log=$(cat "$PHX_TEST_DIR/master.log")
assert_contains "$log" "(mute): not reading its event stream"
assert_contains "$log" "(mute): event stream closed"
curl -sf "http://$PHX_MASTER/health" >/dev/null || fail "the master does not answer"
note ok
