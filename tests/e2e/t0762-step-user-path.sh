#!/usr/bin/env bash
# timeout: 90
# A step's ranks find their program in the PATH of `phx run`'s environment,
# as srun's do.  The agent exec'd them with glibc's execvpe, which searches
# the PATH of the calling process (the agent's, root's), not of the
# environment it is given: a program only in the user's PATH was "not
# found".  And an argv whose first element is not a string (the step
# socket takes any JSON) made the rank's process crash (exit 139) in
# execvpe(NULL); the agent now fails to execute it, with a message, and
# the master refuses such a request before any launch (step_check.c,
# t0763), naming the field.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

PHX_MASTER_EXTRA='allow_unauthenticated = true; offer_timeout = 30.0;'
PHX_AGENT_EXTRA='allow_root = true;'
phx_setup
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
D=$PHX_TEST_DIR
mkdir -p "$D/ubin"
printf '#!/bin/sh\necho "mine from $0"\n' >"$D/ubin/phx-only-here"
chmod a+rx "$D/ubin/phx-only-here"
cat >"$D/argv.py" <<'PY'
import json, os, socket, struct
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["PHX_AGENT_SOCKET"])
h = json.dumps({"type": "STEP_REQUEST", "framework_id": os.environ["PHX_FRAMEWORK_ID"],
    "task_id": os.environ["PHX_TASK_ID"], "ntasks": 1, "argv": [{"x": 1}, "y"],
    "env": {"PATH": "/usr/bin:/bin"}, "cwd": "/"}).encode()
s.sendall(struct.pack(">II", len(h), 0) + h)
s.settimeout(20)
got = b""
while True:
    d = s.recv(65536)
    if not d: break
    got += d
print(got.decode(errors="replace").replace("\0", ""))
PY

STEP_AGENTS=1 step_job "
PATH=$D/ubin:\$PATH timeout 30 $PHX_BUILD/bin/phx run -n 1 phx-only-here; echo \"path rc=\$?\"
timeout 30 python3 $D/argv.py
"
out=$(cat "$D/out")
assert_contains "$out" "mine from $D/ubin/phx-only-here"
assert_contains "$out" "path rc=0"
assert_contains "$out" '{"type":"ERROR","message":"argv[0]: not a string"}'
assert_not_contains "$out" '"exit_code":139'
note ok
