#!/usr/bin/env bash
# timeout: 180
# What a job's user can reach of the agent through a step: a rank inherits
# no descriptor of the agent (it once held the master connection); its
# TMPDIR is its own directory in a base only root writes in (a directory
# under a predictable name in /dev/shm let a user's symlink turn the
# agent's chown onto any file); the agent removes that tree without
# following the user's links; and the step socket serves no user without a
# task on the node.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
test_user phxu2
phx_setup
chmod a+x "$PHX_TEST_DIR"
start_master
start_agent n1 "synthetic:pack:1 numa:1 core:2 pu:1"
wait_node n1 up
start_batchd

secret=$PHX_TEST_DIR/secret
mkdir -m 0755 "$secret"
echo "root's" >"$secret/keep"
home=$(getent passwd phxu1 | cut -d: -f6)
cat >"$home/step.sh" <<EOF
#!/bin/sh
#SBATCH -n 1 -t 2
export PATH=$PHX_BUILD/bin:\$PATH
phx run -n 1 sh -c 'echo "TMP=\$TMPDIR"
for f in /proc/\$\$/fd/*; do echo "FD \${f##*/} \$(readlink \$f)"; done
ln -s $secret "\$TMPDIR/to-secret"
mkdir "\$TMPDIR/sub" && ln -s $secret/keep "\$TMPDIR/sub/to-keep"
ls -ld "\$TMPDIR" | cut -d" " -f1,3
ls -ld "\$(dirname "\$TMPDIR")" | cut -d" " -f1,3'
EOF
chown phxu1 "$home/step.sh"
id=$(as_user phxu1 phx submit --parsable step.sh)
wait_job "$id" COMPLETED 60
out=$(cat "$home/phx-$id.out")
note "$out"
tmp=$(sed -n 's/^TMP=//p' <<<"$out")
[[ -n $tmp ]] || fail "the rank printed no TMPDIR"
# 0, 1 and 2 and the pipe of $(readlink): no socket of the agent's
assert_contains "$out" "FD 0 "
assert_not_contains "$out" "socket:"
assert_contains "$out" "drwx------ phxu1"
assert_contains "$out" "drwx--x--x root"
[[ $tmp != /dev/shm/phx-n1-*-phx.* ]] || fail "a step directory under a predictable name: $tmp"
# the step's tree is gone, what its links pointed at is not
[[ ! -e $tmp ]] || fail "$tmp was not removed"
assert_eq "root's" "$(cat "$secret/keep")"

# The step socket: a user with no task here is turned away at once, before
# anything is read; one with a task may connect.
sock=$PHX_TEST_DIR/agent-n1/step.sock
chmod a+x "$PHX_TEST_DIR/agent-n1"
probe='import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
got = b""
try:
    s.sendall(b"\x00\x00\x10")  # the start of a frame header, never finished
except (ConnectionResetError, BrokenPipeError):
    pass
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
except ConnectionResetError:
    pass
except socket.timeout:
    print("open")
    sys.exit(0)
print("refused" if b"permission denied: the user runs no task" in got else "closed")'
assert_eq refused "$(runuser -u phxu2 -- python3 -c "$probe" "$sock")"
assert_contains "$(cat "$PHX_TEST_DIR/agent-n1.log")" "refused: the user runs no task on this node"
# phxu1 with a running job is served: the half frame times out instead
printf '#!/bin/sh\n#SBATCH -n 1 -t 2\nsleep 300\n' >"$home/hold.sh"
chown phxu1 "$home/hold.sh"
hold=$(as_user phxu1 phx submit --parsable hold.sh)
wait_job "$hold" RUNNING 30
assert_eq open "$(runuser -u phxu1 -- python3 -c "$probe" "$sock")"
phx cancel "$hold"
wait_job "$hold" CANCELLED 20

# Steps started do not count against the cap on waiting connections: a job
# may run many at once (srun ... & in a loop), more than 32.
cat >"$home/many.sh" <<EOF
#!/bin/sh
#SBATCH -n 1 -t 3
export PATH=$PHX_BUILD/bin:\$PATH
i=0
while [ \$i -lt 34 ]; do phx run -n 1 sleep 3 || echo "step failed" & i=\$((i + 1)); done
wait
echo "all ended"
EOF
chown phxu1 "$home/many.sh"
many=$(as_user phxu1 phx submit --parsable many.sh)
wait_job "$many" COMPLETED 90
assert_eq "all ended" "$(cat "$home/phx-$many.out")"
note ok
