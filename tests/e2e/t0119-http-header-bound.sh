#!/usr/bin/env bash
# timeout: 120
# batchd bounds the request line and headers it buffers, as the master
# does.  libevent's evhttp takes no bound unless told (its default is
# SIZE_MAX), and its timeout is an idle one: a client that kept sending
# one endless header made batchd buffer it all, before any credential was
# looked at, for as long as the bytes flowed (anyone who could reach the
# port could exhaust its memory).  A request whose headers pass
# PHX_HTTP_HEADERS_MAX (128 KiB, room for a 64 KiB munge credential) is now
# answered 400 (libevent's word for it) and its connection closed, the rest
# unread; a request with a
# credential of the largest size munge makes is still read.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

phx_setup
start_master
start_batchd
batchd_pid=$PHX_LAST_PID

cat >"$PHX_TEST_DIR/big.py" <<'PY'
"""big.py HOST:PORT BYTES: one GET whose one header holds BYTES bytes."""
import socket, sys

host, port = sys.argv[1].rsplit(":", 1)
size = int(sys.argv[2])
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nX-Pad: ")
sent, chunk = 0, b"a" * 65536
try:
    while sent < size:
        s.sendall(chunk[: min(len(chunk), size - sent)])
        sent += min(len(chunk), size - sent)
    s.sendall(b"\r\n\r\n")
except OSError as e:  # the server closed it: what it said is read below
    print("send stopped after %d bytes: %s" % (sent, e.__class__.__name__))
data = b""
try:
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
        if b"\r\n\r\n" in data:
            break
except OSError as e:
    print("recv: %s" % e.__class__.__name__)
print("status: " + data.decode(errors="replace").split("\r\n")[0])
PY

# 64 KiB of header: a request of the size a munge credential may take is read
# (and refused for want of a credential, as any other)
out=$(python3 "$PHX_TEST_DIR/big.py" "$PHX_BATCHD" $((64 * 1024)))
note "$out"
assert_contains "$out" "status: HTTP/1.1 401"

# 8 MiB of header: refused, and the connection closed, before it is all
# buffered (batchd read it all and answered 401)
refused() { # output of big.py
    [[ $1 =~ status:\ HTTP/1.1\ (400|413) ]] || fail "not refused: $1"
    assert_contains "$1" "send stopped after"
}
out=$(python3 "$PHX_TEST_DIR/big.py" "$PHX_BATCHD" $((8 * 1024 * 1024)))
note "$out"
refused "$out"

# the master's bound, the same
out=$(python3 "$PHX_TEST_DIR/big.py" "$PHX_MASTER" $((8 * 1024 * 1024)))
note "$out"
refused "$out"

wait_for 10 curl -sf "http://$PHX_BATCHD/health"
alive "$batchd_pid" || fail "batchd died"
note ok
