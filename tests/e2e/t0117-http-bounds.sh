#!/usr/bin/env bash
# timeout: 150
# The HTTP servers of the master and batchd bound their connections, and
# close idle ones.  libevent's evhttp accepted every connection and never
# timed one out: anyone who could reach the port could hold connections
# without sending a byte until the daemon ran out of descriptors (and its
# agents' and database's with them).  Past master.max_http_connections
# (batchd.max_http_connections) a new connection now reads a 503 at once
# and is closed, the open ones go on, a line is logged; a connection idle
# for http_timeout seconds is closed, and a framework's event stream stays
# while its heartbeats flow.  And a framework id of 40 to 128 characters
# is kept whole: the master cut it to 39 (a 40-byte buffer), so the
# framework was told another id than the one it chose; above 128 it is
# refused, saying so.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; max_http_connections = 6;
    http_timeout = 3.0; framework_heartbeat = 0.5;'
PHX_BATCHD_EXTRA='max_http_connections = 5; http_timeout = 3.0;'
phx_setup
start_master
master_pid=$PHX_LAST_PID

cat >"$PHX_TEST_DIR/conns.py" <<'PY'
"""conns.py HOST:PORT fill|idle|stream|subscribe ID"""
import json, socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
addr = (host, int(port))


def dial():
    s = socket.create_connection(addr, timeout=5)
    return s


def get(s, path="/health"):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return s.recv(4096).decode(errors="replace").split("\r\n")[0]


def fill():
    """Open connections that send nothing until one is refused."""
    held = []
    for i in range(1, 50):
        s = dial()
        s.settimeout(0.2)
        try:
            data = s.recv(4096)
        except socket.timeout:
            held.append(s)
            continue
        print("refused at connection %d: %s" % (i, data.decode().split("\r\n")[0]))
        print("body: %s" % data.decode().split("\r\n\r\n", 1)[1].strip())
        s.settimeout(2)
        print("then: %s" % ("closed" if s.recv(4096) == b"" else "open"))
        break
    else:
        print("never refused")
    # the open ones still work, each twice (keep-alive)
    for s in held:
        s.settimeout(5)
    print("held:", " ".join(get(s) for s in held for _ in range(2)))
    for s in held:
        s.close()


def idle():
    s = dial()
    t0 = time.time()
    s.settimeout(20)
    data = s.recv(4096)
    print("idle connection closed after %.0f s%s" % (time.time() - t0,
          "" if data == b"" else " with " + repr(data[:40])))


def subscribe(fid, hold):
    s = dial()
    body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "root", "name": "long-id", "id": {"value": fid}}}}).encode()
    s.sendall(b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
              + body)
    s.settimeout(5)
    buf = b""
    t0 = time.time()
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            print("stream closed after %.0f s" % (time.time() - t0))
            break
        buf += chunk
        if time.time() - t0 >= hold:
            if hold:
                print("stream open after %.0f s" % hold)
            break
    text = buf.decode(errors="replace")
    print("status: " + text.split("\r\n")[0])
    if '"framework_id"' in text:
        i = text.index('"framework_id"')
        v = json.loads("{" + text[i:text.index("}", i) + 1] + "}")
        print("framework_id: " + v["framework_id"]["value"])
    if '"error"' in text:
        print("error: " + text[text.index('"error"'):].split("\n")[0])
    print("heartbeats: %d" % text.count('"HEARTBEAT"'))


if sys.argv[2] == "fill":
    fill()
elif sys.argv[2] == "idle":
    idle()
else:
    subscribe(sys.argv[3], float(sys.argv[4]))
PY
conns() { python3 "$PHX_TEST_DIR/conns.py" "$@"; }

# --- the master's bound: 6 open, the 7th refused with a 503 at once
out=$(conns "$PHX_MASTER" fill)
note "$out"
assert_contains "$out" "refused at connection 7: HTTP/1.1 503 Service Unavailable"
assert_contains "$out" "too many HTTP connections (master.max_http_connections = 6): retry later"
assert_contains "$out" "then: closed"
assert_contains "$out" "held: $(printf 'HTTP/1.1 200 OK %.0s' {1..11})HTTP/1.1 200 OK"
assert_contains "$(cat "$PHX_TEST_DIR/master.log")" \
    "refused: 6 open (master.max_http_connections = 6)"
# room again once they closed
wait_for 10 curl -sf "http://$PHX_MASTER/health"
metrics=$(curl -sf "http://$PHX_MASTER/metrics")
assert_contains "$metrics" "phx_http_connections_refused_total 1"

# --- idle connections are closed; an event stream whose heartbeats flow stays
out=$(conns "$PHX_MASTER" idle)
note "$out"
[[ $out =~ closed\ after\ ([0-9]+)\ s$ ]] || fail "idle: $out"
((BASH_REMATCH[1] >= 2 && BASH_REMATCH[1] <= 6)) || fail "idle: $out"

# --- framework ids: up to 128 characters kept whole, longer refused
id100=$(printf 'f%.0s' {1..100})
out=$(conns "$PHX_MASTER" subscribe "$id100" 8)
note "$out"
assert_contains "$out" "status: HTTP/1.1 200 OK"
assert_contains "$out" "framework_id: $id100"$'\n'
assert_contains "$out" "stream open after 8 s"
id129=$(printf 'g%.0s' {1..129})
out=$(conns "$PHX_MASTER" subscribe "$id129" 0)
assert_contains "$out" "status: HTTP/1.1 400"
assert_contains "$out" 'field \"id.value\" must be 1-128 characters'
n=$(psql_q "SELECT count(*) FROM frameworks WHERE id = '$id100'")
assert_eq "1" "$n" "the framework is recorded under its whole id"

# --- batchd's bound (batchd holds none of its own: it is the master's client)
start_batchd
out=$(conns "$PHX_BATCHD" fill)
note "$out"
assert_contains "$out" "refused at connection 6: HTTP/1.1 503 Service Unavailable"
assert_contains "$out" "(batchd.max_http_connections = 5)"
assert_contains "$out" "then: closed"
assert_contains "$(cat "$PHX_TEST_DIR/batchd.log")" \
    "refused: 5 open (batchd.max_http_connections = 5)"
out=$(conns "$PHX_BATCHD" idle)
note "$out"
[[ $out =~ closed\ after\ ([0-9]+)\ s$ ]] || fail "batchd idle: $out"
((BASH_REMATCH[1] >= 2 && BASH_REMATCH[1] <= 6)) || fail "batchd idle: $out"
wait_for 10 curl -sf "http://$PHX_BATCHD/health"
alive "$master_pid" || fail "the master died"
note ok
