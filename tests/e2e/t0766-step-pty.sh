#!/usr/bin/env bash
# timeout: 400
# phx run --pty (srun --pty): rank 0 of the step runs on a pseudo-terminal
# of its node, its controlling terminal in a session of its own, sized as
# phx run's terminal (or LINES x COLUMNS, or 24 x 80); what phx run reads
# is typed into it, its end is ^D; the other ranks read /dev/null.  Rank 0
# on the node of phx run and on another one (input and resizes through the
# master).  In a real terminal (python3's pty module) phx run puts it in
# raw mode for the step and restores it after: Ctrl-C reaches the remote
# program as a byte (its SIGINT there), and a resize reaches it as
# SIGWINCH with the new size.  Last, srun --pty in a batch script of a real
# user: the terminal is theirs (mode 0620).  Before, --pty was refused.
. "$(dirname "$0")/lib.sh"
. "$PHX_SRC/tests/e2e/phx.sh"

test_user phxu1
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

# Not a terminal: the size from LINES and COLUMNS; a terminal all the same.
step_job "LINES=33 COLUMNS=101 timeout 60 $phx run --pty -n1 sh -c 'tty; test -t 0 && echo stdin-is-a-tty; test -t 1 && echo stdout-is-a-tty; stty size; ps -o sid=,pid= -p \$\$' </dev/null"
assert_eq 0 "$(cat "$D/rc")" "phx run --pty's exit code"
out=$(tr -d '\r' <"$D/out")
assert_contains "$out" "/dev/pts/"
assert_contains "$out" "stdin-is-a-tty"
assert_contains "$out" "stdout-is-a-tty"
assert_contains "$out" "33 101"
read -r sid pid <<<"$(tail -1 <<<"$out")"
assert_eq "$pid" "$sid" "rank 0 leads its own session"
step_job "timeout 60 $phx run --pty -n1 sh -c 'stty size' </dev/null"
assert_contains "$(cat "$D/out")" "24 80"

# Input typed through a pipe reaches the remote shell; its exit code is
# the step's.  Here, and with rank 0 on the other node.
for where in "" "-N1 -w n2"; do
    step_job "printf 'echo hi-\$PHX_NODE\nexit 5\n' | timeout 60 $phx run --pty $where sh"
    assert_eq 5 "$(cat "$D/rc")" "exit code of sh on a terminal ($where)"
    node=n1
    [ -n "$where" ] && node=n2
    assert_contains "$(cat "$D/out")" "hi-$node"
done
# The input's end is the terminal's end of file, after a partial line too.
step_job "printf 'abc' | timeout 60 $phx run --pty -N1 -w n2 sh -c 'cat; echo; echo cat-ended'"
assert_eq 0 "$(cat "$D/rc")" "cat on a terminal ends with its input"
assert_contains "$(cat "$D/out")" "abc"
assert_contains "$(cat "$D/out")" "cat-ended"

# Everything rank 0 wrote before its exit comes, here and from n2 (the
# slave's last bytes may reach the master after the exit is seen).
for where in "-N1 -w n1" "-N1 -w n2"; do
    step_job "timeout 60 $phx run --pty $where seq 1 30000 </dev/null"
    assert_eq 0 "$(cat "$D/rc")"
    assert_eq 30000 "$(tr -d '\r' <"$D/out" | grep -c .)" "lines of rank 0 ($where)"
    assert_eq 30000 "$(tr -d '\r' <"$D/out" | tail -1)" "its last line ($where)"
done

# Rank 0 only: rank 1 reads /dev/null and has no terminal.
step_job "timeout 60 $phx run --pty -N2 -n2 sh -c 'if test -t 0; then echo rank\$PHX_PROCID-tty; else echo rank\$PHX_PROCID-notty; fi; cat' </dev/null"
assert_eq 0 "$(cat "$D/rc")"
assert_contains "$(cat "$D/out")" "rank0-tty"
assert_contains "$(cat "$D/out")" "rank1-notty"
assert_not_contains "$(cat "$D/out")" "rank1-tty"

# Refused by name: --input and --label; a command is needed.
for o in "--input=0" "--label"; do
    step_job "$phx run --pty $o true"
    assert_eq 2 "$(cat "$D/rc")" "--pty $o"
    assert_contains "$(cat "$D/out")" "${o%%=*} is incompatible with --pty"
done
step_job "$phx run --pty"
assert_eq 2 "$(cat "$D/rc")" "--pty without a command"

# A real terminal for phx run: raw while the step runs, restored after;
# Ctrl-C is a byte for the remote terminal; a resize reaches rank 0.
cat >"$D/remote.sh" <<'SH'
stty size
stty -a <"$CT" | tr ' ;' '\n\n' | grep -x -e -icanon -e -isig -e -echo | tr '\n' ' '
echo
trap 'echo "winched $(stty size)"' WINCH
trap 'echo got-int; exit 7' INT
echo ready
while :; do sleep 0.1; done
SH
cat >"$D/client.sh" <<SH
export CT=\$(tty)
$phx run --pty -N1 -w \$RANK0 sh $D/remote.sh
echo "rc=\$?"
stty -a | tr ' ;' '\n\n' | grep -x -e icanon -e isig -e echo | tr '\n' ' '
echo
SH
cat >"$D/term.py" <<'PY'
import fcntl, os, pty, select, struct, sys, termios, time
rows, cols = int(sys.argv[1]), int(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.execvp(sys.argv[3], sys.argv[3:])
out = b""
def wait_for(text, secs=30):
    global out
    end = time.time() + secs
    while text not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
wait_for(b"ready")
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 140, 0, 0))
wait_for(b"winched 50 140")
os.write(fd, b"\x03")
wait_for(b"\xff", 30) # to the end
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
PY
for node in n1 n2; do
    step_job "RANK0=$node /usr/bin/python3 $D/term.py 37 91 sh $D/client.sh"
    out=$(cat "$D/out")
    assert_contains "$out" "37 91" "rank 0's terminal is phx run's size ($node)"
    assert_contains "$out" "-isig -icanon -echo" "phx run's terminal raw during the step ($node)"
    assert_contains "$out" "winched 50 140" "a resize reaches rank 0 ($node)"
    assert_contains "$out" "got-int" "Ctrl-C reaches rank 0 as a byte ($node)"
    assert_contains "$out" "rc=7"
    assert_contains "$out" "isig icanon echo" "phx run's terminal restored ($node)"
done

# srun --pty in a batch script of a real user: the terminal is theirs.
start_batchd
home1=$(getent passwd phxu1 | cut -d: -f6)
cat >"$home1/pty.sh" <<S
#!/bin/bash
#SBATCH -N 2
#SBATCH --time=2
#SBATCH -o t0766.out
export PATH=$PHX_BUILD/bin:\$PATH
srun --pty sh -c 'stat -c "owner=%U mode=%a" \$(tty); id -un' </dev/null
printf 'echo hi-from-srun\nexit 3\n' | srun --pty -N1 -w n2 bash --norc
echo "srun rc=\$?"
srun --pty -i 0 true
echo "srun -i rc=\$?"
S
chown phxu1 "$home1/pty.sh"
rm -f "$home1/t0766.out" # of an earlier run
as_user phxu1 phx submit --parsable pty.sh >/dev/null
wait_for 60 grep -q "srun -i rc" "$home1/t0766.out"
body=$(tr -d '\r' <"$home1/t0766.out")
note "$body"
assert_contains "$body" "owner=phxu1 mode=620"
assert_contains "$body" "hi-from-srun"
assert_contains "$body" "srun rc=3"
assert_contains "$body" "--input is incompatible with --pty"
assert_contains "$body" "srun -i rc=2"
# Steps without --pty carry no terminal (a "pty": null once made every
# agent warn about each of them).
step_job "$phx run -N2 -n2 true"
assert_eq 0 "$(cat "$D/rc")"
for n in n1 n2; do
    assert_not_contains "$(cat "$D/agent-$n.log")" "gets no terminal"
done
note ok
