#!/usr/bin/env bash
# timeout: 300
# Who may talk to the agent's PMIx server.  Ranks connect over loopback
# TCP, which carries no peer credentials, and PMIx 4.2 believes the uid a
# client claims: before the gate, another local user claiming the owner's
# uid joined a step as its rank 0 and aborted it.  PMIx also read the
# connect message with blocking reads (a silent connection stalled every
# step of the node) and deadlocked on a module it did not load.  The
# agent's gate (pmix/gate.c) asks the kernel who owns each connecting
# socket and lets through only a step's own user, as one of its ranks here,
# with modules PMIx has; the steps run on meanwhile.
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
progs=$PHX_BUILD/tests/progs
hello=$PHX_SRC/tests/e2e/tools/pmix_hello.py
log=$PHX_TEST_DIR/agent-n1.log

# phxu1's job: a rank that sleeps (the window), then an MPI step.
home1=$(getent passwd phxu1 | cut -d: -f6)
cat >"$home1/victim.sh" <<SH
#!/bin/sh
#SBATCH -n 1 -t 2
export PATH=$PHX_BUILD/bin:\$PATH
phx run -n 1 sleep 20
echo "step rc \$?"
phx run -n 1 $progs/mpi_hello
echo "mpi rc \$?"
SH
chown phxu1 "$home1/victim.sh"
# phxu2's job: a step of its own, so that phxu2 gets past "runs no step".
home2=$(getent passwd phxu2 | cut -d: -f6)
printf '#!/bin/sh\n#SBATCH -n 1 -t 2\nexport PATH=%s/bin:$PATH\nphx run -n 1 sleep 30\n' \
    "$PHX_BUILD" >"$home2/own.sh"
chown phxu2 "$home2/own.sh"

rank_pid() { pgrep -u phxu1 -x sleep | head -n 1; }
id=$(as_user phxu1 phx submit --parsable victim.sh)
wait_for 30 rank_pid || fail "the victim's rank did not start"
pid=$(rank_pid)
mapfile -t pmix_env < <(tr '\0' '\n' <"/proc/$pid/environ" | grep '^PMIX_')
nspace=$(printf '%s\n' "${pmix_env[@]}" | sed -n 's/^PMIX_NAMESPACE=//p')
port=$(printf '%s\n' "${pmix_env[@]}" | sed -n 's/^PMIX_SERVER_URI4=.*:\([0-9]*\)$/\1/p')
note "victim step $nspace, PMIx server on port $port"
[[ -n $nspace && -n $port ]] || fail "no PMIx variables in the rank's environment"

# forge: phxu2 with libpmix, posing as rank 0 of phxu1's step (it claims
# phxu1's uid and gid: pmix_forge.c); if let in, it aborts the step.
forge() {
    runuser -u phxu2 -- env "${pmix_env[@]}" PHX_FORGE_UID="$(id -u phxu1)" \
        PHX_FORGE_GID="$(id -g phxu1)" "$progs/pmix_forge" 2>&1 | grep -v 'PMIX ERROR' || true
}
as() { runuser -u "$1" -- python3 "$hello" "$port" "${@:2}"; }

out=$(forge)
note "forger with no step: $out"
assert_contains "$out" "refused:"
assert_contains "$(cat "$log")" "PMIx: refused a connection (uid $(id -u phxu2), port"
assert_contains "$(cat "$log")" "runs no step here)"

# The owner itself, with what libpmix never sends: refused, and PMIx is
# none the worse (it deadlocked on the first two).
assert_eq closed "$(as phxu1 "$nspace" 0 psec=none)"
assert_contains "$(cat "$log")" 'security module "none", not "native"'
assert_eq closed "$(as phxu1 "$nspace" 0 bfrops=v99)"
assert_contains "$(cat "$log")" 'modules "v99", "hash" or buffer type 1 unknown'
assert_eq closed "$(as phxu1 "$nspace" 7)"
assert_contains "$(cat "$log")" "rank 7 is not a rank of $nspace here"
assert_eq closed "$(as phxu1 "$nspace" 0 uid=0)"
assert_contains "$(cat "$log")" "claims uid 0"
assert_eq closed "$(as phxu1 "$nspace" 0 kind=3)"
assert_contains "$(cat "$log")" "a tool or launcher (kind 3), not a rank"
# A silent connection: a stranger's is closed at once, the owner's after
# 2 s (PMIx alone kept it, and every other client waited behind it).
assert_eq closed "$(as phxu2 x 0 silent=1)"
assert_eq closed "$(as phxu1 "$nspace" 0 silent=5)"
assert_contains "$(cat "$log")" "no connect message within 2000 ms"

# phxu2 with a step of its own still cannot join phxu1's.
own=$(as_user phxu2 phx submit --parsable own.sh)
wait_for 30 pgrep -u phxu2 -x sleep || fail "phxu2's step did not start"
out=$(forge)
note "forger with a step: $out"
assert_contains "$out" "refused:"
assert_contains "$(cat "$log")" "uid $(id -u phxu2), port"
assert_contains "$(cat "$log")" "claims uid $(id -u phxu1))"
# and with the uid it has, it names a step that is not its own
assert_eq closed "$(as phxu2 "$nspace" 0)"
assert_contains "$(cat "$log")" "step $nspace is uid $(id -u phxu1)'s"

# 40 silent connections of the owner's, held 90 s, as phxu1: each waits
# for its message on its own (PMIx alone, or a gate that waited in turn,
# held every other connection behind them: 40 x 2 s).
runuser -u phxu1 -- python3 -c 'import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(40)]
time.sleep(90)' "$port" >"$PHX_TEST_DIR/flood" 2>&1 &
flood=$!
# The victim ran on: its sleeping rank was not aborted, its MPI step
# connected while the 40 were held.
wait_job "$id" COMPLETED 45
alive "$flood" || fail "the flood of silent connections ended early: $(cat "$PHX_TEST_DIR/flood")"
kill "$flood" 2>/dev/null || true
out=$(cat "$home1/phx-$id.out")
note "$out"
assert_contains "$out" "step rc 0"
assert_contains "$out" "rank 0 of 1 sum 1"
assert_contains "$out" "mpi rc 0"
phx cancel "$own"
wait_job "$own" CANCELLED 30
note ok
