#!/usr/bin/env bash
# timeout: 180
# A request's credential is checked when its head arrives, before its body
# is read (lib/http_guard.h).  libevent 2.1's evhttp read a request's whole
# body (up to 4 MiB) before batchd's handler looked at its credential, so
# clients with none, or with one munged refuses, could make batchd hold
# max_http_connections x 4 MiB.  Now a request declaring more than 16 KiB
# of body without a credential that decodes is answered 401 and closed
# having sent little of it, and batchd's peak RSS does not grow by the
# bodies; a good credential is decoded once, at the head, and the request
# served (a job of a 200 KiB script is submitted); the master likewise.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PHX_TEST_DIR/metrics.token"
chmod 600 "$PHX_TEST_DIR/metrics.token"
PHX_MASTER_EXTRA="metrics_token_file = \"$PHX_TEST_DIR/metrics.token\";"
phx_setup
start_master
master_pid=$PHX_LAST_PID
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_batchd
batchd_pid=$PHX_LAST_PID
as() { as_user "$@"; }

cat >"$PHX_TEST_DIR/flood.py" <<'PY'
"""flood.py HOST:PORT PID PATH N CRED|-: N connections at once, each a POST
of a 4 MiB body (its last byte held back) with "Authorization: Munge CRED"
(- for none); prints how far each got, the server's peak RSS growth, and
what each was answered."""
import socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
pid, path, n, cred = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
BODY = 4 << 20


def hwm():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])


head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path
head += "Content-Length: %d\r\n" % BODY
if cred != "-":
    head += "Authorization: Munge %s\r\n" % cred
head = (head + "\r\n").encode()
before = hwm()
conns, sent = [], []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    s.connect((host, int(port)))
    s.settimeout(5)
    got = 0
    try:
        s.sendall(head)
        chunk = b"{" * 16384
        while got < BODY - 1:
            k = min(len(chunk), BODY - 1 - got)
            s.sendall(chunk[:k])
            got += k
    except OSError:
        pass
    conns.append(s)
    sent.append(got)
time.sleep(0.5)
print("hwm_growth_kib=%d" % (hwm() - before))
print("max_body_sent=%d" % max(sent))
for s in conns:
    data = b""
    try:
        while b"\r\n\r\n" not in data or not data.endswith(b"}\n"):
            c = s.recv(65536)
            if not c:
                break
            data += c
    except OSError as e:
        data += (" (%s)" % e.__class__.__name__).encode()
    print("answer: " + data.decode(errors="replace").replace("\r\n", " | "))
PY

flood() { # HOST:PORT PID PATH N CRED: checks and prints the answers
    local out growth sent
    out=$(python3 "$PHX_TEST_DIR/flood.py" "$@")
    note "$out"
    growth=$(sed -n 's/^hwm_growth_kib=//p' <<<"$out")
    sent=$(sed -n 's/^max_body_sent=//p' <<<"$out")
    # before: each connection sent its 4 MiB and batchd held them all
    ((sent < 1024 * 1024)) || fail "a connection sent $sent bytes of its body"
    ((growth < 16 * 1024)) || fail "peak RSS grew by $growth KiB"
    assert_contains "$out" "401 Unauthorized"
    printf '%s\n' "$out"
}

# no credential
out=$(flood "$PHX_BATCHD" "$batchd_pid" /api/v1/jobs 16 -)
assert_contains "$out" 'missing \"Authorization: Munge <credential>\" header'
# a credential munged refuses: garbage, and one decoded once already
out=$(flood "$PHX_BATCHD" "$batchd_pid" /api/v1/jobs 16 "MUNGE:AwQFAAB0aGlzIGlzIG5vdCBh:")
assert_contains "$out" "munge credential"
cred=$(munge -S "$PHX_MUNGE_SOCKET" -s "POST /api/v1/jobs x")
unmunge -S "$PHX_MUNGE_SOCKET" <<<"$cred" >/dev/null
out=$(flood "$PHX_BATCHD" "$batchd_pid" /api/v1/jobs 4 "$cred")
assert_contains "$out" "munge credential replayed"
grep -q "refused before its body" "$PHX_TEST_DIR/batchd.log" ||
    fail "batchd did not log the refusal"

refused=$(curl -sf "http://$PHX_BATCHD/health" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["http_refused_before_body"])')
assert_eq 36 "$refused" "batchd's /health counts the 16 + 16 + 4 refusals"

# the master's scheduler API, without a credential or a stream id
out=$(flood "$PHX_MASTER" "$master_pid" /api/v1/scheduler 4 -)
assert_contains "$(curl -sf -H "Authorization: Bearer $(cat "$PHX_TEST_DIR/metrics.token")" \
    "http://$PHX_MASTER/metrics")" "phx_http_refused_before_body_total 4"

# a good credential: decoded at the head, and the job submitted (a script
# of 200 KiB: its body is past 16 KiB)
home1=$(getent passwd phxu1 | cut -d: -f6)
{
    echo '#!/bin/bash'
    echo '#PHX --time=5'
    for i in $(seq 5000); do echo "# padding line $i of a long job script ........"; done
    echo 'echo big'
} >"$home1/big.sh"
chown phxu1 "$home1/big.sh"
(($(stat -c %s "$home1/big.sh") > 200000)) || fail "script too small"
# batchd reads the nodes every 5 s: before its first read it refuses jobs
wait_for 15 batchd_nodes 1
out=$(as phxu1 phx submit big.sh)
note "$out"
[[ $out =~ ^Submitted\ job\ ([0-9]+)$ ]] || fail "unexpected answer: $out"
id=${BASH_REMATCH[1]}
as phxu1 phx show "$id" | grep -q "JobId=$id" || fail "job $id not shown"

alive "$batchd_pid" || fail "batchd died"
alive "$master_pid" || fail "master died"
wait_for 10 curl -sf "http://$PHX_BATCHD/health"
note ok
