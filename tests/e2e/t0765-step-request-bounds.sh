#!/usr/bin/env bash
# timeout: 200
# What a step request asks to run is checked, and a job's steps at once are
# bounded.  The agent of `phx run` forwards the request as its caller wrote
# it, and the caller is any user inside a job: the master took argv, env
# and cwd as they came, so an argv of numbers, an env value that is not a
# string or a cwd object went out in every STEP_LAUNCH (the agents read
# them as NULL strings).  Now such a request is refused, naming the field,
# and no step is made.  And a job's user could start `phx run` steps
# without end (each a PMIx namespace and processes on every node of the
# job): past master.max_steps_per_job running at once one more is refused,
# saying so, until one ends.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;
    max_steps_per_job = 2;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
start_agent n2 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
wait_node n2 up
phx="$PHX_BUILD/bin/phx"

# A STEP_REQUEST as `phx run` sends it, with its command replaced.
cat >"$PHX_TEST_DIR/raw.py" <<'PY'
import json, os, socket, struct, sys, time
req = {"type": "STEP_REQUEST", "framework_id": os.environ["PHX_FRAMEWORK_ID"],
       "task_id": os.environ["PHX_TASK_ID"], "ntasks": 1,
       "argv": ["true"], "env": {"PATH": "/usr/bin:/bin"}, "cwd": "/"}
req.update(json.loads(sys.argv[1]))
for k in [k for k, v in req.items() if v == "DROP"]:
    del req[k]
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["PHX_AGENT_SOCKET"])
h = json.dumps(req).encode()
s.sendall(struct.pack("!II", len(h), 0) + h)
s.settimeout(10)
buf, seen = b"", []
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            hl, al = struct.unpack("!II", buf[:8])
            if len(buf) < 8 + hl + al:
                break
            f = json.loads(buf[8:8 + hl])
            buf = buf[8 + hl + al:]
            seen.append(f["type"] + (": " + f["message"] if "message" in f else ""))
except socket.timeout:
    seen.append("TIMEOUT")
print("%s -> %s" % (sys.argv[1], " | ".join(seen)))
PY

# The two steps run until the third was asked (a fixed "sleep 4" for them
# and "sleep 2" before the third: on a slow machine the third could come
# before both had started, or after one had ended, and be accepted)
rm -f "$PHX_TEST_DIR"/up.a "$PHX_TEST_DIR"/up.b "$PHX_TEST_DIR/stop"
STEP_MEM=64 step_job "
raw() { /usr/bin/python3 $PHX_TEST_DIR/raw.py \"\$1\"; }
raw '{}'
raw '{\"argv\": [\"true\", 7]}'
raw '{\"argv\": [1]}'
raw '{\"argv\": []}'
raw '{\"argv\": \"true\"}'
raw '{\"argv\": \"DROP\"}'
raw '{\"env\": {\"PATH\": \"/bin\", \"HOME\": 3}}'
raw '{\"env\": [\"PATH=/bin\"]}'
raw '{\"cwd\": {\"path\": \"/\"}}'
$phx run -n 1 sh -c 'touch $PHX_TEST_DIR/up.a; while [ ! -e $PHX_TEST_DIR/stop ]; do sleep 0.1; done' & a=\$!
$phx run -n 1 sh -c 'touch $PHX_TEST_DIR/up.b; while [ ! -e $PHX_TEST_DIR/stop ]; do sleep 0.1; done' & b=\$!
n=0
while [ ! -e $PHX_TEST_DIR/up.a ] || [ ! -e $PHX_TEST_DIR/up.b ]; do
    n=\$((n + 1)); [ \$n -lt 600 ] || break; sleep 0.1
done
$phx run -n 1 true; echo \"third rc=\$?\"
touch $PHX_TEST_DIR/stop
wait \$a; echo \"first rc=\$?\"
wait \$b; echo \"second rc=\$?\"
$phx run -n 1 true; echo \"after rc=\$?\"
"
out=$(cat "$PHX_TEST_DIR/out")
# a well-formed one runs
assert_contains "$out" "{} -> STEP_STARTED"
# the others are refused, naming the field, and never launched
assert_contains "$out" '{"argv": ["true", 7]} -> ERROR: argv[1]: not a string'
assert_contains "$out" '{"argv": [1]} -> ERROR: argv[0]: not a string'
assert_contains "$out" '{"argv": []} -> ERROR: argv: empty (no program to run)'
assert_contains "$out" '{"argv": "true"} -> ERROR: argv: not an array'
assert_contains "$out" '{"argv": "DROP"} -> ERROR: argv: missing'
assert_contains "$out" '{"env": {"PATH": "/bin", "HOME": 3}} -> ERROR: env["HOME"]: not a string'
assert_contains "$out" '{"env": ["PATH=/bin"]} -> ERROR: env: not an object of "NAME": "value"'
assert_contains "$out" '{"cwd": {"path": "/"}} -> ERROR: cwd: not a string'
n=$(grep -c "step refused" "$PHX_TEST_DIR/master.log" || true)
((n >= 8)) || fail "the master refused $n requests, not 8"
# two steps at once; the third waits for neither and is refused
assert_contains "$out" "job already runs 2 steps: at most 2 at once (master.max_steps_per_job)"
assert_contains "$out" "first rc=0"
assert_contains "$out" "second rc=0"
assert_not_contains "$out" "third rc=0"
assert_contains "$out" "after rc=0"
note ok
