#!/usr/bin/env bash
# timeout: 300
# Resizes of phx run --pty's terminal are merged, not queued (doc/steps.md,
# "Terminal"): every hop (phx run, the agent of phx run, the master) holds
# the latest size of a step only and sends at most PHX_WINSIZE_RATE (10) a
# second.  Rank 0 runs on n2, its program watches its terminal's size every
# millisecond and counts the changes.  A client that writes 20,000 WINSIZE
# frames in a loop on its step connection (by hand, not phx run), then a
# real terminal around phx run resized 3,000 times as fast as it goes:
# rank 0 sees at most 10 changes a second (before, one for each frame: the
# agent and the master queued a STEP_WINSIZE for each), and the last size
# arrives.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
PHX_HEARTBEAT=0.5
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"
D=$PHX_TEST_DIR

# Rank 0: its terminal's size changes, counted until 42 x 142 stays 1.5 s.
cat >"$D/watch.py" <<'PY'
import fcntl, struct, termios, time
def size():
    r, c, _, _ = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
    return r, c
last, changes, first, lastt, start = size(), 0, None, None, time.time()
print("watching", flush=True)
while time.time() - start < 60:
    s, now = size(), time.time()
    if s != last:
        changes, last, lastt = changes + 1, s, now
        first = first or now
    if s == (42, 142) and lastt and now - lastt > 1.5:
        break
    time.sleep(0.001)
span = lastt - first if first else 0
print("changes=%d span=%.3f final=%dx%d" % (changes, span, last[0], last[1]), flush=True)
PY
# A step client by hand: STEP_REQUEST for rank 0 on n2 with a terminal,
# then, once rank 0 watches, 20,000 WINSIZE frames at once.
cat >"$D/flood.py" <<'PY'
import json, os, socket, struct, sys
def frame(h):
    b = json.dumps(h).encode()
    return struct.pack("!II", len(b), 0) + b
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["PHX_AGENT_SOCKET"])
s.sendall(frame({"type": "STEP_REQUEST", "framework_id": os.environ["PHX_FRAMEWORK_ID"],
                 "task_id": os.environ["PHX_TASK_ID"], "nodes": 1, "ntasks": 1,
                 "ntasks_per_node": 0, "cpus_per_task": 1, "label": False,
                 "argv": ["/usr/bin/python3", sys.argv[1]], "env": dict(os.environ),
                 "cwd": "/", "nodelist": "n2", "input": 0, "pty": {"rows": 24, "cols": 80}}))
buf, out, flooded = b"", b"", False
while True:
    data = s.recv(65536)
    if not data:
        break
    buf += data
    while len(buf) >= 8:
        hl, al = struct.unpack("!II", buf[:8])
        if len(buf) < 8 + hl + al:
            break
        h, a, buf = json.loads(buf[8:8 + hl]), buf[8 + hl:8 + hl + al], buf[8 + hl + al:]
        if h["type"] == "OUTPUT":
            out += a
        if h["type"] in ("DONE", "ERROR"):
            print(h, out.decode(errors="replace").replace("\r", ""), flush=True)
            sys.exit(0)
    if b"watching" in out and not flooded:
        flooded = True
        n = 20000
        s.sendall(b"".join(frame({"type": "WINSIZE", "rows": 10 + i % 200, "cols": 20 + i % 300})
                           for i in range(n - 1)) + frame({"type": "WINSIZE", "rows": 42, "cols": 142}))
        print("sent", n, flush=True)
PY
# A real terminal around phx run, resized 3,000 times once rank 0 watches.
cat >"$D/term.py" <<'PY'
import fcntl, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
out, resized = b"", False
while True:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if b"watching" in out and not resized:
        resized = True
        for i in range(3000):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 10 + i % 200, 20 + i % 300, 0, 0))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 42, 142, 0, 0))
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
PY

check() { # WHAT: rank 0's count in $D/out
    local line changes span
    line=$(grep -o 'changes=[0-9]* span=[0-9.]* final=[0-9x]*' "$D/out" | tail -1)
    [[ -n $line ]] || fail "$1: rank 0 said nothing: $(cat "$D/out")"
    note "$1: $line"
    assert_contains "$line" "final=42x142" "$1: the last size reaches rank 0"
    changes=${line#changes=}
    changes=${changes%% *}
    span=${line#*span=}
    span=${span%% *}
    # at most 10 a second, and the first at once
    python3 -c "import sys; c, s = int(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if c <= 10 * s + 2 else 1)" \
        "$changes" "$span" || fail "$1: $changes changes in $span s: more than 10 a second"
}

step_job "timeout 90 /usr/bin/python3 $D/flood.py $D/watch.py"
assert_contains "$(cat "$D/out")" "sent 20000"
assert_contains "$(cat "$D/out")" "'exit_code': 0"
check "WINSIZE frames in a loop"

step_job "timeout 90 /usr/bin/python3 $D/term.py $phx run --pty -N1 -w n2 /usr/bin/python3 $D/watch.py"
check "a terminal resized without end"
for n in n1 n2; do
    assert_not_contains "$(cat "$D/agent-$n.log")" "resize of its terminal is lost"
done
note ok
